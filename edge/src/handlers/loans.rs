//! `/api/loans/*`: apply (publish, wait for the decision), applications and loans with their
//! detail, and `/api/whatif` (score a modified application; nothing published or stored).

use std::sync::Arc;

use chrono::Utc;
use rdkafka::producer::FutureRecord;
use schemas::{Applicant, Decision, LoanApplication, LoanTerms};
use sqlx::Row;
use warp::http::StatusCode;

use super::{json, ok, Answer};
use crate::api::{self, DecisionView, Page, SeedApply};
use crate::auth::{self, Principal};
use crate::error::ApiError;
use crate::Edge;

/// A body is a full application when it carries an `applicant`; else the seed's short body.
async fn application(edge: &Edge, body: serde_json::Value) -> Result<LoanApplication, ApiError> {
    let app = if body.get("applicant").is_some() {
        let mut body = body;
        if let Some(o) = body.as_object_mut() {
            o.entry("application_id")
                .or_insert_with(|| new_application_id().into());
            o.entry("submitted_at")
                .or_insert_with(|| Utc::now().timestamp_millis().into());
            o.entry("channel").or_insert_with(|| "api".into());
            o.entry("currency").or_insert_with(|| "INR".into());
        }
        api::parse::<LoanApplication>(body)?
    } else {
        let seed: SeedApply = api::parse(body)?;
        from_seed(edge, seed).await?
    };
    api::text("channel", &app.channel, 32)?;
    api::text("currency", &app.currency, 3)?;
    schemas::validate::check(&app).map_err(|message| {
        let field = message
            .split_whitespace()
            .next()
            .unwrap_or("application")
            .to_string();
        ApiError::invalid_field(&field, message)
    })?;
    Ok(app)
}

fn new_application_id() -> String {
    format!("A-{}", uuid::Uuid::new_v4().simple())
}

/// The seed's body, with the applicant filled from the stored customer.
async fn from_seed(edge: &Edge, seed: SeedApply) -> Result<LoanApplication, ApiError> {
    let customer_id = seed.customer_id.parse("customer_id")?;
    let row = sqlx::query(
        "SELECT age, date_of_birth, employment_type, years_employed, monthly_income, \
           existing_emi, dependents, residence, bureau FROM customers WHERE customer_id = $1",
    )
    .bind(&customer_id)
    .fetch_optional(&edge.pool)
    .await?
    .ok_or_else(|| {
        ApiError::invalid_field(
            "customer_id",
            format!("no customer {customer_id}: register it first (POST /api/customers/)"),
        )
    })?;
    let text = |i: usize| -> Result<serde_json::Value, sqlx::Error> {
        Ok(serde_json::Value::String(row.try_get::<String, _>(i)?))
    };
    let stored = |e: serde_json::Error| ApiError::internal("stored customer", &e);
    let age: Option<i32> = row.try_get(0)?;
    let dob: Option<chrono::NaiveDate> = row.try_get(1)?;
    let age = age
        .or_else(|| dob.map(|d| api::age_on(d, Utc::now().date_naive())))
        .unwrap_or(0);
    let purpose = api::purpose(&seed.loan_purpose).ok_or_else(|| {
        ApiError::invalid_field(
            "loan_purpose",
            "loan_purpose must name home, auto, personal, education, business or gold",
        )
    })?;
    if !seed.interest_rate.is_finite() || !(0.0..=100.0).contains(&seed.interest_rate) {
        return Err(ApiError::invalid_field(
            "interest_rate",
            "interest_rate is a percentage, 0-100",
        ));
    }
    if let Some(c) = &seed.channel {
        api::text("channel", c, 32)?;
    }
    let application_id = match seed.application_id {
        Some(id) if schemas::validate::valid_id(&id) => id,
        Some(_) => {
            return Err(ApiError::invalid_field(
                "application_id",
                "application_id must be 1-64 characters of [A-Za-z0-9_-]",
            ))
        }
        None => new_application_id(),
    };
    Ok(LoanApplication {
        application_id,
        customer_id,
        submitted_at: Utc::now(),
        channel: seed.channel.unwrap_or_else(|| "api".into()),
        applicant: Applicant {
            age,
            employment_type: serde_json::from_value(text(2)?).map_err(stored)?,
            years_employed: row.try_get(3)?,
            monthly_income: row.try_get(4)?,
            existing_emi: row.try_get(5)?,
            dependents: row.try_get(6)?,
            residence: serde_json::from_value(text(7)?).map_err(stored)?,
        },
        bureau: row
            .try_get::<Option<serde_json::Value>, _>(8)?
            .map(serde_json::from_value)
            .transpose()
            .map_err(stored)?,
        loan: LoanTerms {
            amount: api::to_minor("loan_amount", seed.loan_amount)?,
            tenure_months: seed.loan_tenure_months,
            interest_rate_bps: (seed.interest_rate * 100.0).round() as i32,
            purpose,
            collateral_value: seed
                .collateral_value
                .map(|c| api::to_minor("collateral_value", c))
                .transpose()?,
        },
        currency: "INR".into(),
    })
}

/// `POST /api/loans/apply`: publish the application and answer with its decision (200), or
/// with a link to poll (202) when it is not decided within the configured wait.
pub async fn apply(edge: Arc<Edge>, who: Principal, body: serde_json::Value) -> Answer {
    let given_time = body.get("submitted_at").is_some();
    let app = application(&edge, body).await?;
    super::customers::in_scope(&edge, &who, &app.customer_id).await?;
    if let Some(answer) = stored(&edge, &app, given_time).await? {
        return Ok(answer);
    }
    let bytes = schemas::encode(&app).map_err(|e| ApiError::internal("encoding", &e))?;
    let wait = edge.decisions.wait(&app.application_id);
    edge.producer
        .send(
            FutureRecord::to(&edge.topics.applications)
                .key(&app.application_id)
                .payload(&bytes),
            crate::ms(edge.settings.apply_timeout_ms),
        )
        .await
        .map_err(|(e, _)| {
            tracing::warn!(error = %e, "Publishing an application failed");
            ApiError::unavailable("Kafka did not accept the application; retry")
        })?;
    match wait.within(crate::ms(edge.settings.apply_timeout_ms)).await {
        Some(d) => {
            edge.metrics
                .applications
                .with_label_values(&["decided"])
                .inc();
            served(&edge, &who, &d).await?;
            Ok(json(&DecisionView::from(&d), StatusCode::OK))
        }
        None => {
            edge.metrics
                .applications
                .with_label_values(&["pending"])
                .inc();
            let poll = format!("/api/loans/applications/{}", app.application_id);
            let mut res = json(
                &serde_json::json!({
                    "application_id": app.application_id,
                    "status": "pending",
                    "message": "published; not decided within the wait",
                    "poll": poll,
                }),
                StatusCode::ACCEPTED,
            );
            if let Ok(v) = warp::http::HeaderValue::from_str(&poll) {
                res.headers_mut().insert("location", v);
            }
            Ok(res)
        }
    }
}

/// An application id already stored: the same application again (a retry; the submission time
/// may be left out) is not published again and answers 202 with where its decision is; any
/// other application is refused with 409. Stored applications and decisions are never rewritten.
async fn stored(
    edge: &Edge,
    app: &LoanApplication,
    given_time: bool,
) -> Result<Option<warp::reply::Response>, ApiError> {
    let row: Option<(serde_json::Value,)> =
        sqlx::query_as("SELECT payload FROM applications WHERE application_id = $1")
            .bind(&app.application_id)
            .fetch_optional(&edge.pool)
            .await?;
    let Some((payload,)) = row else {
        return Ok(None);
    };
    let mut same = serde_json::to_value(app).map_err(|e| ApiError::internal("json", &e))?;
    if !given_time {
        if let (Some(o), Some(t)) = (same.as_object_mut(), payload.get("submitted_at")) {
            o.insert("submitted_at".into(), t.clone());
        }
    }
    if same != payload {
        return Err(ApiError::conflict(format!(
            "application {} is already stored with other contents; a correction is a new \
             application",
            app.application_id
        )));
    }
    let poll = format!("/api/loans/applications/{}", app.application_id);
    let decided: Option<(String,)> =
        sqlx::query_as("SELECT decision FROM decisions WHERE application_id = $1")
            .bind(&app.application_id)
            .fetch_optional(&edge.pool)
            .await?;
    let mut res = json(
        &serde_json::json!({
            "application_id": app.application_id,
            "status": if decided.is_some() { "decided" } else { "pending" },
            "message": "already submitted; nothing was published again",
            "poll": poll,
        }),
        StatusCode::ACCEPTED,
    );
    if let Ok(v) = warp::http::HeaderValue::from_str(&poll) {
        res.headers_mut().insert("location", v);
    }
    Ok(Some(res))
}

/// The audit row for a decision served to a caller.
async fn served(edge: &Edge, who: &Principal, d: &Decision) -> Result<(), ApiError> {
    let mut conn = edge.pool.acquire().await?;
    auth::audit(
        &mut conn,
        &who.key_id,
        "decision.served",
        &d.application_id,
        serde_json::json!({
            "decision": d.decision, "model_version": d.model_version, "score": d.score
        }),
    )
    .await?;
    Ok(())
}

/// `POST /api/whatif`: the champion's decision on a (modified) application, with reasons;
/// nothing is published or stored.
pub async fn whatif(edge: Arc<Edge>, who: Principal, body: serde_json::Value) -> Answer {
    let app = application(&edge, body).await?;
    super::customers::in_scope(&edge, &who, &app.customer_id).await?;
    let models = edge
        .models
        .borrow()
        .clone()
        .ok_or_else(|| ApiError::unavailable("no champion model has been promoted yet"))?;
    let x = risk_core::features::compute(&app);
    let d = scorer::decide::decide(
        &app,
        &x,
        &models.champion,
        models.challenger.as_deref(),
        &edge.domain,
        scorer::decide::Explain::All,
        Utc::now(),
    );
    let mut v = serde_json::to_value(DecisionView::from(&d))
        .map_err(|e| ApiError::internal("whatif", &e))?;
    if let Some(o) = v.as_object_mut() {
        o.insert("recorded".into(), false.into());
        o.insert(
            "challenger".into(),
            serde_json::to_value(&d.challenger).unwrap_or_default(),
        );
    }
    ok(&v)
}

fn outcome_filter(status: &str) -> Result<&'static str, ApiError> {
    match status.to_ascii_lowercase().as_str() {
        "approved" | "approve" => Ok("APPROVE"),
        "rejected" | "declined" | "decline" => Ok("DECLINE"),
        "under_review" | "referred" | "refer" => Ok("REFER"),
        _ => Err(ApiError::invalid_field(
            "status",
            "status must be approved, rejected or under_review",
        )),
    }
}

/// `GET /api/loans/applications?status&customer_id&limit&offset`.
pub async fn applications(edge: Arc<Edge>, who: Principal, page: Page) -> Answer {
    let (limit, offset) = page.bounds(edge.settings.max_page)?;
    let outcome = page.status.as_deref().map(outcome_filter).transpose()?;
    api::filter_id("customer_id", page.customer_id.as_deref())?;
    // A scoped originator sees the applications of the customers its key registered.
    let only = super::customers::scoped(&edge, &who).then_some(who.key_id.as_str());
    let filter = |mine: u8| {
        format!(
            "WHERE ($1::text IS NULL OR d.decision = $1) \
               AND ($2::text IS NULL OR a.customer_id = $2) \
               AND (${mine}::text IS NULL OR a.customer_id IN (SELECT customer_id \
                 FROM customer_registrations WHERE key_id = ${mine}))"
        )
    };
    let total: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM applications a LEFT JOIN decisions d USING (application_id) {}",
        filter(3)
    ))
    .bind(outcome)
    .bind(&page.customer_id)
    .bind(only)
    .fetch_one(&edge.pool)
    .await?;
    let filter = filter(5);
    let rows = sqlx::query(&format!(
        "SELECT a.application_id, a.customer_id, a.submitted_at, a.purpose, a.amount, \
           a.tenure_months, a.interest_rate_bps, d.decision, d.score, d.pd, d.grade, \
           d.model_version, d.decided_at \
         FROM applications a LEFT JOIN decisions d USING (application_id) {filter} \
         ORDER BY a.submitted_at DESC, a.application_id LIMIT $3 OFFSET $4"
    ))
    .bind(outcome)
    .bind(&page.customer_id)
    .bind(limit)
    .bind(offset)
    .bind(only)
    .fetch_all(&edge.pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let decision: Option<String> = r.try_get(7)?;
        out.push(serde_json::json!({
            "application_id": r.try_get::<String, _>(0)?,
            "customer_id": r.try_get::<String, _>(1)?,
            "submitted_at": r.try_get::<chrono::DateTime<Utc>, _>(2)?,
            "loan_purpose": r.try_get::<String, _>(3)?,
            "loan_amount": r.try_get::<i64, _>(4)?,
            "loan_tenure_months": r.try_get::<i32, _>(5)?,
            "interest_rate_bps": r.try_get::<i32, _>(6)?,
            "status": seed_status(decision.as_deref()),
            "decision": decision,
            "credit_score": r.try_get::<Option<i32>, _>(8)?,
            "risk_probability": r.try_get::<Option<f64>, _>(9)?,
            "grade": r.try_get::<Option<String>, _>(10)?,
            "model_version": r.try_get::<Option<String>, _>(11)?,
            "decided_at": r.try_get::<Option<chrono::DateTime<Utc>>, _>(12)?,
        }));
    }
    ok(&serde_json::json!({
        "applications": out, "total": total, "limit": limit, "offset": offset
    }))
}

fn seed_status(decision: Option<&str>) -> &'static str {
    match decision {
        Some("APPROVE") => "approved",
        Some("DECLINE") => "rejected",
        Some("REFER") => "under_review",
        _ => "pending",
    }
}

/// `GET /api/loans/applications/{id}`: the application, its decision and reasons, and the loan.
pub async fn application_detail(edge: Arc<Edge>, id: String, who: Principal) -> Answer {
    api::known_id("application", &id)?;
    let stored: Option<(serde_json::Value, String)> =
        sqlx::query_as("SELECT payload, customer_id FROM applications WHERE application_id = $1")
            .bind(&id)
            .fetch_optional(&edge.pool)
            .await?;
    if let Some((_, customer_id)) = &stored {
        match super::customers::in_scope(&edge, &who, customer_id).await {
            Err(e) if e.status == StatusCode::NOT_FOUND => {
                return Err(ApiError::not_found(format!("no application {id}")));
            }
            other => other?,
        }
    } else if super::customers::scoped(&edge, &who) {
        return Err(ApiError::not_found(format!("no application {id}")));
    }
    let app: Option<serde_json::Value> = stored.map(|(payload, _)| payload);
    let d = sqlx::query(
        "SELECT customer_id, decided_at, model_version, pd, score, grade, decision, rule_hits, \
           emi, foir, ltv, challenger_version, challenger_pd \
         FROM decisions WHERE application_id = $1",
    )
    .bind(&id)
    .fetch_optional(&edge.pool)
    .await?;
    if app.is_none() && d.is_none() {
        return Err(ApiError::not_found(format!(
            "no application {id} in the book (a just-published one appears once stored)"
        )));
    }
    let reasons = sqlx::query(
        "SELECT code, feature, value, points FROM decision_reasons \
         WHERE application_id = $1 ORDER BY rank",
    )
    .bind(&id)
    .fetch_all(&edge.pool)
    .await?
    .iter()
    .map(|r| {
        Ok(serde_json::json!({
            "code": r.try_get::<String, _>(0)?,
            "feature": r.try_get::<String, _>(1)?,
            "value": r.try_get::<Option<f64>, _>(2)?,
            "points": r.try_get::<f64, _>(3)?,
        }))
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let loan_id: Option<String> =
        sqlx::query_scalar("SELECT loan_id FROM loans WHERE application_id = $1")
            .bind(&id)
            .fetch_optional(&edge.pool)
            .await?;
    let decision = match &d {
        Some(r) => {
            let outcome: String = r.try_get(6)?;
            serde_json::json!({
                "customer_id": r.try_get::<String, _>(0)?,
                "decided_at": r.try_get::<chrono::DateTime<Utc>, _>(1)?,
                "model_version": r.try_get::<String, _>(2)?,
                "risk_probability": r.try_get::<f64, _>(3)?,
                "credit_score": r.try_get::<i32, _>(4)?,
                "grade": r.try_get::<String, _>(5)?,
                "status": seed_status(Some(&outcome)),
                "decision": outcome,
                "rule_hits": r.try_get::<Vec<String>, _>(7)?,
                "emi": r.try_get::<i64, _>(8)?,
                "foir": r.try_get::<f64, _>(9)?,
                "ltv": r.try_get::<Option<f64>, _>(10)?,
                "challenger": r.try_get::<Option<String>, _>(11)?.map(|v| serde_json::json!({
                    "model_version": v,
                    "pd": r.try_get::<Option<f64>, _>(12).ok().flatten(),
                })),
                "reasons": reasons,
            })
        }
        None => serde_json::Value::Null,
    };
    let status = d
        .as_ref()
        .and_then(|r| r.try_get::<String, _>(6).ok())
        .map_or("pending", |o| seed_status(Some(&o)));
    ok(&serde_json::json!({
        "application_id": id,
        "status": status,
        "application": app,
        "decision": decision,
        "loan_id": loan_id,
    }))
}

/// `GET /api/loans/loans?status&customer_id&limit&offset`.
pub async fn loans(edge: Arc<Edge>, _who: Principal, page: Page) -> Answer {
    let (limit, offset) = page.bounds(edge.settings.max_page)?;
    api::filter_id("customer_id", page.customer_id.as_deref())?;
    let state = match page.status.as_deref().map(str::to_ascii_uppercase) {
        None => None,
        Some(s) if ["ACTIVE", "CLOSED", "WRITTEN_OFF"].contains(&s.as_str()) => Some(s),
        Some(_) => {
            return Err(ApiError::invalid_field(
                "status",
                "status must be ACTIVE, CLOSED or WRITTEN_OFF",
            ))
        }
    };
    let filter = "WHERE ($1::text IS NULL OR s.state = $1) \
                  AND ($2::text IS NULL OR l.customer_id = $2)";
    let total: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM loans l JOIN loan_status s USING (loan_id) {filter}"
    ))
    .bind(&state)
    .bind(&page.customer_id)
    .fetch_one(&edge.pool)
    .await?;
    let rows = sqlx::query(&format!(
        "SELECT l.loan_id, l.application_id, l.customer_id, l.principal, l.interest_rate_bps, \
           l.tenure_months, l.emi, l.disbursed_on, l.purpose, l.grade, s.state, \
           s.outstanding_principal, s.dpd, s.asset_class, s.stage, s.provision \
         FROM loans l JOIN loan_status s USING (loan_id) {filter} \
         ORDER BY l.disbursed_on DESC, l.loan_id LIMIT $3 OFFSET $4"
    ))
    .bind(&state)
    .bind(&page.customer_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(&edge.pool)
    .await?;
    let out = rows
        .iter()
        .map(|r| {
            Ok(serde_json::json!({
                "loan_id": r.try_get::<String, _>(0)?,
                "application_id": r.try_get::<String, _>(1)?,
                "customer_id": r.try_get::<String, _>(2)?,
                "principal": r.try_get::<i64, _>(3)?,
                "interest_rate_bps": r.try_get::<i32, _>(4)?,
                "tenure_months": r.try_get::<i32, _>(5)?,
                "emi": r.try_get::<i64, _>(6)?,
                "disbursed_on": r.try_get::<chrono::NaiveDate, _>(7)?,
                "purpose": r.try_get::<Option<String>, _>(8)?,
                "grade": r.try_get::<Option<String>, _>(9)?,
                "status": r.try_get::<String, _>(10)?,
                "outstanding": r.try_get::<i64, _>(11)?,
                "dpd": r.try_get::<i32, _>(12)?,
                "asset_class": r.try_get::<String, _>(13)?,
                "ifrs9_stage": r.try_get::<i16, _>(14)?,
                "provision": r.try_get::<i64, _>(15)?,
            }))
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    ok(&serde_json::json!({ "loans": out, "total": total, "limit": limit, "offset": offset }))
}

/// `GET /api/loans/loans/{id}`: terms, status, schedule, payments and the DPD/class history.
pub async fn loan_detail(edge: Arc<Edge>, id: String, _who: Principal) -> Answer {
    api::known_id("loan", &id)?;
    let loan: Option<serde_json::Value> = sqlx::query_scalar(
        "SELECT to_jsonb(l) || jsonb_build_object('status', to_jsonb(s) - 'loan_id') \
         FROM loans l JOIN loan_status s USING (loan_id) WHERE l.loan_id = $1",
    )
    .bind(&id)
    .fetch_optional(&edge.pool)
    .await?;
    let Some(mut loan) = loan else {
        return Err(ApiError::not_found(format!("no loan {id}")));
    };
    let list = |sql: &'static str| {
        let pool = edge.pool.clone();
        let id = id.clone();
        async move {
            sqlx::query_scalar::<_, serde_json::Value>(sql)
                .bind(id)
                .fetch_all(&pool)
                .await
        }
    };
    let schedule =
        list("SELECT to_jsonb(i) - 'loan_id' FROM instalments i WHERE loan_id = $1 ORDER BY seq")
            .await?;
    let payments = list(
        "SELECT to_jsonb(p) - 'loan_id' FROM payments p WHERE loan_id = $1 \
         ORDER BY paid_on, payment_id",
    )
    .await?;
    let history = list(
        "SELECT to_jsonb(h) - 'loan_id' FROM status_history h WHERE loan_id = $1 \
         ORDER BY business_date",
    )
    .await?;
    if let Some(o) = loan.as_object_mut() {
        o.insert("schedule".into(), schedule.into());
        o.insert("payments".into(), payments.into());
        o.insert("status_history".into(), history.into());
    }
    ok(&loan)
}
