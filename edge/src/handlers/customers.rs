//! `/api/customers/`: register (published as CustomerRegistered, answered once the aggregator
//! has stored it), change (published as CustomerUpdated; the aggregator keeps the record
//! before it and audits who changed what), read and read the history. Personal data only for
//! roles that may see it, every single read of it audited; an originator key may be scoped to
//! the customers it registered (`edge.originators_own_customers_only`).

use std::sync::Arc;
use std::time::Instant;

use book::customers::{self as book_customers, Customer};
use chrono::Utc;
use rdkafka::producer::FutureRecord;
use schemas::{CustomerRegistered, CustomerUpdated, EmploymentType, Residence};
use warp::http::StatusCode;

use super::{json, ok, Answer};
use crate::api::{self, CustomerBody, CustomerChangeBody, Page};
use crate::auth::{Principal, Role};
use crate::error::ApiError;
use crate::state::Edge;

fn view(c: &Customer, personal: bool) -> serde_json::Value {
    let mut v = serde_json::json!({
        "customer_id": c.customer_id,
        "registered_at": c.registered_at,
        "age": c.age,
        "employment_type": c.employment_type,
        "years_employed": c.years_employed,
        "monthly_income": c.monthly_income,
        "existing_emi": c.existing_emi,
        "dependents": c.dependents,
        "residence": c.residence,
        "region": c.region,
        "bureau": c.bureau,
    });
    if personal {
        if let Some(o) = v.as_object_mut() {
            o.insert("full_name".into(), c.full_name.clone().into());
            o.insert("email".into(), c.email.clone().into());
            o.insert("phone".into(), c.phone.clone().into());
            o.insert(
                "date_of_birth".into(),
                serde_json::to_value(c.date_of_birth).unwrap_or_default(),
            );
            o.insert("employer_name".into(), c.employer_name.clone().into());
        }
    }
    v
}

/// `GET /api/customers/?limit&offset`: `{customers, total, limit, offset}`. A list never
/// carries personal data, whoever asks: it is read one customer at a time, audited.
pub async fn list(edge: Arc<Edge>, who: Principal, page: Page) -> Answer {
    let (limit, offset) = page.bounds(edge.settings.max_page)?;
    // A scoped originator lists only the customers its key registered.
    let only = scoped(&edge, &who).then_some(who.key_id.as_str());
    let page = book_customers::list(&edge.pool, only, limit, offset).await?;
    let customers: Vec<serde_json::Value> = page.customers.iter().map(|c| view(c, false)).collect();
    ok(&serde_json::json!({
        "customers": customers, "total": page.total, "limit": limit, "offset": offset
    }))
}

/// `GET /api/customers/{id}`. A read of personal data (by a role that may see it) writes an
/// audit row: who, which customer, when.
pub async fn get(edge: Arc<Edge>, id: String, who: Principal) -> Answer {
    api::known_id("customer", &id)?;
    in_scope(&edge, &who, &id).await?;
    let customer = book_customers::get(&edge.pool, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no customer {id}")))?;
    let personal = who.role.sees_personal_data();
    if personal {
        audited(&edge, &who, "customer.personal_data_read", &id).await?;
    }
    ok(&view(&customer, personal))
}

/// Write an audit row: `who` did `action` on customer `id`.
async fn audited(edge: &Edge, who: &Principal, action: &str, id: &str) -> Result<(), ApiError> {
    book::audit::record_now(&edge.pool, &who.key_id, action, id, serde_json::json!({})).await?;
    Ok(())
}

/// Whether `who` is an originator confined to the customers it registered.
pub(crate) fn scoped(edge: &Edge, who: &Principal) -> bool {
    edge.settings.originators_own_customers_only && who.role == Role::Originator
}

/// 404 (as for a customer that does not exist) when a scoped originator asks for a customer
/// its key did not register.
pub(crate) async fn in_scope(edge: &Edge, who: &Principal, id: &str) -> Result<(), ApiError> {
    if !scoped(edge, who) {
        return Ok(());
    }
    if book_customers::registered_by(&edge.pool, id, &who.key_id).await? {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("no customer {id}")))
    }
}

/// An employment label as registrations and changes accept it.
fn employment_of(label: &str) -> Result<EmploymentType, ApiError> {
    api::employment(label).ok_or_else(|| {
        ApiError::invalid_field(
            "employment_type",
            "employment_type must be salaried, self_employed, business, retired or other",
        )
    })
}

/// A residence label as registrations and changes accept it.
fn residence_of(label: &str) -> Result<Residence, ApiError> {
    api::residence(label).ok_or_else(|| {
        ApiError::invalid_field(
            "residence",
            "residence must be own, rent, mortgaged or family",
        )
    })
}

fn years_employed(y: f32) -> Result<(), ApiError> {
    if (0.0..=80.0).contains(&y) {
        Ok(())
    } else {
        Err(ApiError::invalid_field(
            "years_employed",
            "years_employed must be 0-80",
        ))
    }
}

fn dependents(d: i32) -> Result<(), ApiError> {
    if (0..=20).contains(&d) {
        Ok(())
    } else {
        Err(ApiError::invalid_field(
            "dependents",
            "dependents must be 0-20",
        ))
    }
}

/// A change body → the event, checked field by field with the registration's rules.
pub fn change_of(
    id: &str,
    who: &Principal,
    body: CustomerChangeBody,
) -> Result<CustomerUpdated, ApiError> {
    if let Some(n) = &body.full_name {
        api::person_name("full_name", n)?;
    }
    if let Some(e) = &body.email {
        api::email(e)?;
    }
    if let Some(p) = &body.phone {
        api::phone(p)?;
    }
    if let Some(e) = &body.employer_name {
        api::plain_text("employer_name", e, 200)?;
    }
    if let Some(r) = &body.region {
        api::plain_text("region", r, 64)?;
    }
    if let Some(r) = &body.reason {
        api::plain_text("reason", r, 500)?;
    }
    body.years_employed.map(years_employed).transpose()?;
    body.dependents.map(dependents).transpose()?;
    let employment_type = body
        .employment_type
        .as_deref()
        .map(employment_of)
        .transpose()?;
    let residence = body.residence.as_deref().map(residence_of).transpose()?;
    let update = CustomerUpdated {
        update_id: format!("U-{}", uuid::Uuid::new_v4().simple()),
        customer_id: id.to_string(),
        updated_at: Utc::now(),
        updated_by: who.key_id.clone(),
        reason: body.reason.map(|r| r.trim().to_string()),
        full_name: body.full_name.map(|n| n.trim().to_string()),
        email: body.email.map(|e| e.trim().to_string()),
        phone: body.phone.map(|p| p.trim().to_string()),
        employment_type,
        employer_name: body.employer_name.map(|e| e.trim().to_string()),
        years_employed: body.years_employed,
        monthly_income: body
            .monthly_income
            .map(|m| api::to_minor("monthly_income", m))
            .transpose()?,
        existing_emi: body
            .existing_emi
            .map(|m| api::to_minor("existing_emi", m))
            .transpose()?,
        dependents: body.dependents,
        residence,
        region: body.region.map(|r| r.trim().to_string()),
    };
    if update.changed_fields().is_empty() {
        return Err(ApiError::invalid_field(
            "body",
            "give at least one field to change",
        ));
    }
    Ok(update)
}

/// `PATCH /api/customers/{id}`: publish the change; 200 with the customer once the aggregator
/// has applied it, 202 with a link when it has not yet.
pub async fn change(
    edge: Arc<Edge>,
    id: String,
    who: Principal,
    body: serde_json::Value,
) -> Answer {
    api::known_id("customer", &id)?;
    in_scope(&edge, &who, &id).await?;
    let update = change_of(&id, &who, api::parse::<CustomerChangeBody>(body)?)?;
    if !book_customers::exists(&edge.pool, &id).await? {
        return Err(ApiError::not_found(format!("no customer {id}")));
    }
    let bytes =
        schemas::encode(&update).map_err(|e| ApiError::internal("encoding a change", &e))?;
    publish(&edge, &update.customer_id, &bytes, "change").await?;
    tracing::info!(
        key_id = %who.key_id,
        customer_id = %id,
        update_id = %update.update_id,
        fields = ?update.changed_fields(),
        "Customer change published"
    );
    let started = Instant::now();
    let deadline = crate::state::ms(edge.settings.customer_timeout_ms);
    while started.elapsed() < deadline {
        let version = book_customers::change_version(&edge.pool, &update.update_id).await?;
        if let Some(version) = version {
            let customer = book_customers::get(&edge.pool, &id)
                .await?
                .ok_or(sqlx::Error::RowNotFound)?;
            let personal = who.role.sees_personal_data();
            if personal {
                audited(&edge, &who, "customer.personal_data_read", &id).await?;
            }
            let mut v = view(&customer, personal);
            if let Some(o) = v.as_object_mut() {
                o.insert("version".into(), version.into());
                o.insert("update_id".into(), update.update_id.clone().into());
            }
            return Ok(json(&v, StatusCode::OK));
        }
        tokio::time::sleep(crate::state::ms(25)).await;
    }
    Ok(json(
        &serde_json::json!({
            "customer_id": id,
            "update_id": update.update_id,
            "status": "accepted",
            "message": "published; the book has not applied it yet",
            "poll": format!("/api/customers/{id}/history"),
        }),
        StatusCode::ACCEPTED,
    ))
}

/// `GET /api/customers/{id}/history`: each change, newest first: version, when, who, why,
/// which fields, and their values before it. A read of personal data: audited.
pub async fn history(edge: Arc<Edge>, id: String, who: Principal) -> Answer {
    api::known_id("customer", &id)?;
    in_scope(&edge, &who, &id).await?;
    let registered = book_customers::registered_at(&edge.pool, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no customer {id}")))?;
    let rows = book_customers::changes(&edge.pool, &id).await?;
    let mut versions = Vec::with_capacity(rows.len());
    for r in &rows {
        let fields: Vec<String> = r
            .changes
            .as_object()
            .map(|o| {
                CHANGEABLE
                    .iter()
                    .filter(|f| o.get(**f).is_some_and(|v| !v.is_null()))
                    .map(|f| (*f).to_string())
                    .collect()
            })
            .unwrap_or_default();
        let before: serde_json::Map<String, serde_json::Value> = fields
            .iter()
            .map(|f| (f.clone(), r.previous.get(f).cloned().unwrap_or_default()))
            .collect();
        versions.push(serde_json::json!({
            "version": r.version,
            "update_id": r.update_id,
            "changed_at": r.changed_at,
            "changed_by": r.changed_by,
            "reason": r.reason,
            "fields": fields,
            "before": before,
        }));
    }
    audited(&edge, &who, "customer.history_read", &id).await?;
    ok(&serde_json::json!({
        "customer_id": id,
        "registered_at": registered,
        "versions": versions,
    }))
}

/// The fields a change may set, as named in `customers` and in `CustomerUpdated`.
const CHANGEABLE: [&str; 11] = [
    "full_name",
    "email",
    "phone",
    "employment_type",
    "employer_name",
    "years_employed",
    "monthly_income",
    "existing_emi",
    "dependents",
    "residence",
    "region",
];

/// Publish a customer record or change (`what`) on the customers topic, keyed by customer.
async fn publish(edge: &Edge, customer_id: &str, bytes: &[u8], what: &str) -> Result<(), ApiError> {
    edge.producer
        .send(
            FutureRecord::to(&edge.topics.customers)
                .key(customer_id)
                .payload(bytes),
            crate::state::ms(edge.settings.customer_timeout_ms),
        )
        .await
        .map_err(|(e, _)| {
            tracing::warn!(error = %e, what, "Publishing on the customers topic failed");
            ApiError::unavailable(format!("Kafka did not accept the {what}; retry"))
        })?;
    Ok(())
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
    api::person_name("full_name", &full_name)?;
    api::email(&body.email)?;
    api::phone(&body.phone)?;
    api::plain_text("region", &body.region, 64)?;
    if let Some(e) = &body.employer_name {
        api::plain_text("employer_name", e, 200)?;
    }
    let employment_type = employment_of(&body.employment_type)?;
    let residence = residence_of(&body.residence)?;
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
    years_employed(body.years_employed)?;
    dependents(body.dependents)?;
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
    if book_customers::exists(&edge.pool, &c.customer_id).await? {
        return Err(ApiError::conflict(format!(
            "customer {} is already registered; registering it again changes nothing",
            c.customer_id
        )));
    }
    // The id is claimed for this key before it is published: another key registering the same
    // id before the book has stored it is refused too (a retry by the same key goes on).
    let claimed = book_customers::claim(&edge.pool, &c.customer_id, &who.key_id).await?;
    if claimed.as_deref() != Some(who.key_id.as_str()) {
        return Err(ApiError::conflict(format!(
            "customer {} is already being registered; registering it again changes nothing",
            c.customer_id
        )));
    }
    let bytes = schemas::encode(&c).map_err(|e| ApiError::internal("encoding customer", &e))?;
    publish(&edge, &c.customer_id, &bytes, "customer").await?;
    tracing::info!(key_id = %who.key_id, customer_id = %c.customer_id, "Customer registered");
    // Who registered whom, in the audit trail.
    audited(&edge, &who, "customer.registered", &c.customer_id).await?;
    let started = Instant::now();
    let deadline = crate::state::ms(edge.settings.customer_timeout_ms);
    while started.elapsed() < deadline {
        let stored = book_customers::registered_since(
            &edge.pool,
            &c.customer_id,
            c.registered_at - chrono::Duration::milliseconds(1),
        )
        .await?;
        if let Some(customer) = stored {
            return Ok(json(
                &view(&customer, who.role.sees_personal_data()),
                StatusCode::CREATED,
            ));
        }
        tokio::time::sleep(crate::state::ms(25)).await;
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
