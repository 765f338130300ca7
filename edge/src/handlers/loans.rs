//! `/api/loans/*`: apply (publish, wait for the decision), applications and loans with their
//! detail, and `/api/whatif` (score a modified application; nothing published or stored).

use std::sync::Arc;

use book::applications::{self as book_applications, ApplicationFilter};
use book::loans::{self as book_loans, LoanFilter};
use chrono::Utc;
use rdkafka::producer::FutureRecord;
use schemas::{Applicant, Decision, LoanApplication, LoanTerms};
use warp::http::StatusCode;

use super::{json, ok, Answer};
use crate::api::{self, DecisionView, Page, SeedApply};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::Edge;

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
    schemas::validate::check(&app).map_err(|e| ApiError::invalid_field(e.field, e.message))?;
    Ok(app)
}

fn new_application_id() -> String {
    format!("A-{}", uuid::Uuid::new_v4().simple())
}

/// The seed's body, with the applicant filled from the stored customer.
async fn from_seed(edge: &Edge, seed: SeedApply) -> Result<LoanApplication, ApiError> {
    let customer_id = seed.customer_id.parse("customer_id")?;
    let row = book::customers::applicant(&edge.pool, &customer_id)
        .await?
        .ok_or_else(|| {
            ApiError::invalid_field(
                "customer_id",
                format!("no customer {customer_id}: register it first (POST /api/customers/)"),
            )
        })?;
    let text = |t: &str| serde_json::Value::String(t.to_string());
    let stored = |e: serde_json::Error| ApiError::internal("stored customer", &e);
    let age = row
        .age
        .or_else(|| {
            row.date_of_birth
                .map(|d| api::age_on(d, Utc::now().date_naive()))
        })
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
            employment_type: serde_json::from_value(text(&row.employment_type)).map_err(stored)?,
            years_employed: row.years_employed,
            monthly_income: row.monthly_income,
            existing_emi: row.existing_emi,
            dependents: row.dependents,
            residence: serde_json::from_value(text(&row.residence)).map_err(stored)?,
        },
        bureau: row
            .bureau
            .clone()
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
            crate::state::ms(edge.settings.apply_timeout_ms),
        )
        .await
        .map_err(|(e, _)| {
            tracing::warn!(error = %e, "Publishing an application failed");
            ApiError::unavailable("Kafka did not accept the application; retry")
        })?;
    match wait
        .within(crate::state::ms(edge.settings.apply_timeout_ms))
        .await
    {
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
    let Some(payload) = book_applications::payload(&edge.pool, &app.application_id).await? else {
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
    let decided = book_applications::outcome(&edge.pool, &app.application_id).await?;
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
    book::audit::record_now(
        &edge.pool,
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
    let page = book_applications::list(
        &edge.pool,
        &ApplicationFilter {
            outcome,
            customer_id: page.customer_id.as_deref(),
            registered_by: only,
        },
        limit,
        offset,
    )
    .await?;
    let out: Vec<serde_json::Value> = page
        .applications
        .iter()
        .map(|r| {
            serde_json::json!({
                "application_id": r.application_id,
                "customer_id": r.customer_id,
                "submitted_at": r.submitted_at,
                "loan_purpose": r.purpose,
                "loan_amount": r.amount,
                "loan_tenure_months": r.tenure_months,
                "interest_rate_bps": r.interest_rate_bps,
                "status": seed_status(r.decision.as_deref()),
                "decision": r.decision,
                "credit_score": r.score,
                "risk_probability": r.pd,
                "grade": r.grade,
                "model_version": r.model_version,
                "decided_at": r.decided_at,
            })
        })
        .collect();
    ok(&serde_json::json!({
        "applications": out, "total": page.total, "limit": limit, "offset": offset
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
    let stored = book_applications::stored(&edge.pool, &id).await?;
    if let Some(a) = &stored {
        match super::customers::in_scope(&edge, &who, &a.customer_id).await {
            Err(e) if e.status == StatusCode::NOT_FOUND => {
                return Err(ApiError::not_found(format!("no application {id}")));
            }
            other => other?,
        }
    } else if super::customers::scoped(&edge, &who) {
        return Err(ApiError::not_found(format!("no application {id}")));
    }
    let app: Option<serde_json::Value> = stored.map(|a| a.payload);
    let d = book_applications::decision(&edge.pool, &id).await?;
    if app.is_none() && d.is_none() {
        return Err(ApiError::not_found(format!(
            "no application {id} in the book (a just-published one appears once stored)"
        )));
    }
    let reasons: Vec<serde_json::Value> = book_applications::reasons(&edge.pool, &id)
        .await?
        .iter()
        .map(|r| {
            serde_json::json!({
                "code": r.code,
                "feature": r.feature,
                "value": r.value,
                "points": r.points,
            })
        })
        .collect();
    let loan_id = book_loans::of_application(&edge.pool, &id).await?;
    let decision = match &d {
        Some(r) => serde_json::json!({
            "customer_id": r.customer_id,
            "decided_at": r.decided_at,
            "model_version": r.model_version,
            "risk_probability": r.pd,
            "credit_score": r.score,
            "grade": r.grade,
            "status": seed_status(Some(&r.decision)),
            "decision": r.decision,
            "rule_hits": r.rule_hits,
            "emi": r.emi,
            "foir": r.foir,
            "ltv": r.ltv,
            "challenger": r.challenger_version.as_ref().map(|v| serde_json::json!({
                "model_version": v,
                "pd": r.challenger_pd,
            })),
            "reasons": reasons,
        }),
        None => serde_json::Value::Null,
    };
    let status = d
        .as_ref()
        .map_or("pending", |r| seed_status(Some(&r.decision)));
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
    let page = book_loans::list(
        &edge.pool,
        &LoanFilter {
            state: state.as_deref(),
            customer_id: page.customer_id.as_deref(),
        },
        limit,
        offset,
    )
    .await?;
    let out: Vec<serde_json::Value> = page
        .loans
        .iter()
        .map(|r| {
            serde_json::json!({
                "loan_id": r.loan_id,
                "application_id": r.application_id,
                "customer_id": r.customer_id,
                "principal": r.principal,
                "interest_rate_bps": r.interest_rate_bps,
                "tenure_months": r.tenure_months,
                "emi": r.emi,
                "disbursed_on": r.disbursed_on,
                "purpose": r.purpose,
                "grade": r.grade,
                "status": r.state,
                "outstanding": r.outstanding_principal,
                "dpd": r.dpd,
                "asset_class": r.asset_class,
                "ifrs9_stage": r.stage,
                "provision": r.provision,
            })
        })
        .collect();
    ok(&serde_json::json!({ "loans": out, "total": page.total, "limit": limit, "offset": offset }))
}

/// `GET /api/loans/loans/{id}`: terms, status, schedule, payments and the DPD/class history.
pub async fn loan_detail(edge: Arc<Edge>, id: String, _who: Principal) -> Answer {
    api::known_id("loan", &id)?;
    let Some(record) = book_loans::record(&edge.pool, &id).await? else {
        return Err(ApiError::not_found(format!("no loan {id}")));
    };
    let mut loan = record.loan;
    if let Some(o) = loan.as_object_mut() {
        o.insert("schedule".into(), record.schedule.into());
        o.insert("payments".into(), record.payments.into());
        o.insert("status_history".into(), record.status_history.into());
    }
    ok(&loan)
}
