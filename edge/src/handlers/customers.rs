//! `/api/customers/`: register (published as CustomerRegistered, answered once the aggregator
//! has stored it) and read. Personal data only for roles that may see it.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use rdkafka::producer::FutureRecord;
use schemas::{CustomerRegistered, Residence};
use sqlx::Row;
use warp::http::StatusCode;

use super::{json, ok, Answer};
use crate::api::{self, CustomerBody, Page};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::Edge;

const COLUMNS: &str = "customer_id, registered_at, full_name, email, phone, date_of_birth, age, \
     employment_type, employer_name, years_employed, monthly_income, existing_emi, dependents, \
     residence, region, bureau";

fn view(r: &sqlx::postgres::PgRow, personal: bool) -> Result<serde_json::Value, sqlx::Error> {
    let mut v = serde_json::json!({
        "customer_id": r.try_get::<String, _>(0)?,
        "registered_at": r.try_get::<chrono::DateTime<Utc>, _>(1)?,
        "age": r.try_get::<Option<i32>, _>(6)?,
        "employment_type": r.try_get::<String, _>(7)?,
        "years_employed": r.try_get::<f32, _>(9)?,
        "monthly_income": r.try_get::<i64, _>(10)?,
        "existing_emi": r.try_get::<i64, _>(11)?,
        "dependents": r.try_get::<i32, _>(12)?,
        "residence": r.try_get::<String, _>(13)?,
        "region": r.try_get::<String, _>(14)?,
        "bureau": r.try_get::<Option<serde_json::Value>, _>(15)?,
    });
    if personal {
        if let Some(o) = v.as_object_mut() {
            o.insert("full_name".into(), r.try_get::<String, _>(2)?.into());
            o.insert("email".into(), r.try_get::<String, _>(3)?.into());
            o.insert("phone".into(), r.try_get::<String, _>(4)?.into());
            o.insert(
                "date_of_birth".into(),
                serde_json::to_value(r.try_get::<Option<chrono::NaiveDate>, _>(5)?)
                    .unwrap_or_default(),
            );
            o.insert(
                "employer_name".into(),
                r.try_get::<Option<String>, _>(8)?.into(),
            );
        }
    }
    Ok(v)
}

/// `GET /api/customers/?limit&offset`: `{customers, total, limit, offset}`. A list never
/// carries personal data, whoever asks: it is read one customer at a time, audited.
pub async fn list(edge: Arc<Edge>, _who: Principal, page: Page) -> Answer {
    let (limit, offset) = page.bounds(edge.settings.max_page)?;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM customers")
        .fetch_one(&edge.pool)
        .await?;
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM customers ORDER BY customer_id LIMIT $1 OFFSET $2"
    ))
    .bind(limit)
    .bind(offset)
    .fetch_all(&edge.pool)
    .await?;
    let customers = rows
        .iter()
        .map(|r| view(r, false))
        .collect::<Result<Vec<_>, _>>()?;
    ok(&serde_json::json!({
        "customers": customers, "total": total, "limit": limit, "offset": offset
    }))
}

/// `GET /api/customers/{id}`. A read of personal data (by a role that may see it) writes an
/// audit row: who, which customer, when.
pub async fn get(edge: Arc<Edge>, id: String, who: Principal) -> Answer {
    api::known_id("customer", &id)?;
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM customers WHERE customer_id = $1"
    ))
    .bind(&id)
    .fetch_optional(&edge.pool)
    .await?
    .ok_or_else(|| ApiError::not_found(format!("no customer {id}")))?;
    let personal = who.role.sees_personal_data();
    if personal {
        let mut conn = edge.pool.acquire().await?;
        crate::auth::audit(
            &mut conn,
            &who.key_id,
            "customer.personal_data_read",
            &id,
            serde_json::json!({}),
        )
        .await?;
    }
    ok(&view(&row, personal)?)
}

/// A registration body → the event, checked field by field.
pub fn registration(body: CustomerBody) -> Result<CustomerRegistered, ApiError> {
    let customer_id = match &body.customer_id {
        Some(id) => id.parse("customer_id")?,
        None => format!("C-{}", uuid::Uuid::new_v4().simple()),
    };
    let full_name = body
        .full_name
        .clone()
        .or_else(|| match (&body.first_name, &body.last_name) {
            (Some(f), Some(l)) => Some(format!("{f} {l}")),
            (Some(f), None) => Some(f.clone()),
            (None, Some(l)) => Some(l.clone()),
            (None, None) => None,
        })
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty() && n.len() <= 200)
        .ok_or_else(|| ApiError::invalid_field("full_name", "full_name is required"))?;
    api::text("full_name", &full_name, 200)?;
    api::text("email", &body.email, 254)?;
    api::text("phone", &body.phone, 32)?;
    api::text("region", &body.region, 64)?;
    if let Some(e) = &body.employer_name {
        api::text("employer_name", e, 200)?;
    }
    if !body.email.contains('@') || body.email.len() > 254 {
        return Err(ApiError::invalid_field("email", "email is not an address"));
    }
    if body.phone.trim().len() < 5 || body.phone.len() > 32 {
        return Err(ApiError::invalid_field("phone", "phone is not a number"));
    }
    let employment_type = api::employment(&body.employment_type).ok_or_else(|| {
        ApiError::invalid_field(
            "employment_type",
            "employment_type must be salaried, self_employed, business, retired or other",
        )
    })?;
    let residence: Residence = api::residence(&body.residence).ok_or_else(|| {
        ApiError::invalid_field(
            "residence",
            "residence must be own, rent, mortgaged or family",
        )
    })?;
    let monthly_income = match (body.monthly_income, body.annual_income) {
        (Some(m), _) => api::to_minor("monthly_income", m)?,
        (None, Some(a)) => api::to_minor("annual_income", a)? / 12,
        (None, None) => {
            return Err(ApiError::invalid_field(
                "monthly_income",
                "monthly_income (or annual_income) is required",
            ))
        }
    };
    let age = match (body.age, body.date_of_birth) {
        (Some(a), _) => Some(a),
        (None, Some(dob)) => Some(api::age_on(dob, Utc::now().date_naive())),
        (None, None) => None,
    };
    if age.is_none_or(|a| !(18..=100).contains(&a)) {
        return Err(ApiError::invalid_field(
            "age",
            "age (or date_of_birth) is required and must be 18-100",
        ));
    }
    if !(0.0..=80.0).contains(&body.years_employed) {
        return Err(ApiError::invalid_field(
            "years_employed",
            "years_employed must be 0-80",
        ));
    }
    if !(0..=20).contains(&body.dependents) {
        return Err(ApiError::invalid_field(
            "dependents",
            "dependents must be 0-20",
        ));
    }
    if body.region.is_empty() || body.region.len() > 64 {
        return Err(ApiError::invalid_field(
            "region",
            "region must be 1-64 characters",
        ));
    }
    Ok(CustomerRegistered {
        customer_id,
        registered_at: Utc::now(),
        full_name,
        email: body.email.trim().to_string(),
        phone: body.phone.trim().to_string(),
        date_of_birth: body.date_of_birth,
        age,
        employment_type,
        employer_name: body.employer_name.clone(),
        years_employed: body.years_employed,
        monthly_income,
        existing_emi: api::to_minor("existing_emi", body.existing_emi)?,
        dependents: body.dependents,
        residence,
        region: body.region.clone(),
        bureau: body.bureau.clone(),
    })
}

/// `POST /api/customers/`: 201 once stored, 202 when the book has not caught up in time, 409
/// when the id is already registered.
pub async fn register(edge: Arc<Edge>, who: Principal, body: serde_json::Value) -> Answer {
    let c = registration(api::parse::<CustomerBody>(body)?)?;
    // A registration is never an update: an id already registered is refused.
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM customers WHERE customer_id = $1)")
            .bind(&c.customer_id)
            .fetch_one(&edge.pool)
            .await?;
    if exists {
        return Err(ApiError::conflict(format!(
            "customer {} is already registered; registering it again changes nothing",
            c.customer_id
        )));
    }
    let bytes = schemas::encode(&c).map_err(|e| ApiError::internal("encoding customer", &e))?;
    edge.producer
        .send(
            FutureRecord::to(&edge.topics.customers)
                .key(&c.customer_id)
                .payload(&bytes),
            crate::ms(edge.settings.customer_timeout_ms),
        )
        .await
        .map_err(|(e, _)| {
            tracing::warn!(error = %e, "Publishing a customer failed");
            ApiError::unavailable("Kafka did not accept the customer; retry")
        })?;
    tracing::info!(key_id = %who.key_id, customer_id = %c.customer_id, "Customer registered");
    let started = Instant::now();
    let deadline = crate::ms(edge.settings.customer_timeout_ms);
    while started.elapsed() < deadline {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM customers WHERE customer_id = $1 AND registered_at >= $2"
        ))
        .bind(&c.customer_id)
        .bind(c.registered_at - chrono::Duration::milliseconds(1))
        .fetch_optional(&edge.pool)
        .await?;
        if let Some(row) = row {
            return Ok(json(
                &view(&row, who.role.sees_personal_data())?,
                StatusCode::CREATED,
            ));
        }
        tokio::time::sleep(crate::ms(25)).await;
    }
    Ok(json(
        &serde_json::json!({
            "customer_id": c.customer_id,
            "status": "accepted",
            "message": "published; the book has not stored it yet",
            "poll": format!("/api/customers/{}", c.customer_id),
        }),
        StatusCode::ACCEPTED,
    ))
}
