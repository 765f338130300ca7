//! Applications and their decisions as the edge reads them: the stored payloads, the decision
//! with its reasons, and the filtered list. The aggregator stores them; nothing here writes.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;

/// The stored payload of the application `id`, if any.
pub async fn payload(pool: &PgPool, id: &str) -> Result<Option<Value>, sqlx::Error> {
    sqlx::query_scalar("SELECT payload FROM applications WHERE application_id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// The outcome (`APPROVE`, `REFER`, `DECLINE`) of the application `id`, once decided.
pub async fn outcome(pool: &PgPool, id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT decision FROM decisions WHERE application_id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// A stored application: its payload and its customer.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StoredApplication {
    /// The application as published.
    pub payload: Value,
    /// Its customer.
    pub customer_id: String,
}

/// The application `id`, if stored.
pub async fn stored(pool: &PgPool, id: &str) -> Result<Option<StoredApplication>, sqlx::Error> {
    sqlx::query_as("SELECT payload, customer_id FROM applications WHERE application_id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// The payloads of the latest `limit` applications, most recently submitted first.
pub async fn latest_payloads(pool: &PgPool, limit: i64) -> Result<Vec<Value>, sqlx::Error> {
    sqlx::query_scalar("SELECT payload FROM applications ORDER BY submitted_at DESC LIMIT $1")
        .bind(limit)
        .fetch_all(pool)
        .await
}

/// Which applications a list shows; each filter applies when given.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApplicationFilter<'a> {
    /// Only those with this outcome (`APPROVE`, `REFER`, `DECLINE`).
    pub outcome: Option<&'a str>,
    /// Only this customer's.
    pub customer_id: Option<&'a str>,
    /// Only those of the customers this API key registered.
    pub registered_by: Option<&'a str>,
}

/// An application as listed, with its decision when it has one.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ApplicationRow {
    /// Id.
    pub application_id: String,
    /// Customer.
    pub customer_id: String,
    /// When submitted.
    pub submitted_at: DateTime<Utc>,
    /// Loan purpose (schema symbol).
    pub purpose: String,
    /// Amount asked, minor units.
    pub amount: i64,
    /// Tenure, months.
    pub tenure_months: i32,
    /// Rate, basis points a year.
    pub interest_rate_bps: i32,
    /// Outcome, once decided.
    pub decision: Option<String>,
    /// Credit score.
    pub score: Option<i32>,
    /// 12-month PD.
    pub pd: Option<f64>,
    /// Risk grade.
    pub grade: Option<String>,
    /// The model that decided.
    pub model_version: Option<String>,
    /// When decided.
    pub decided_at: Option<DateTime<Utc>>,
}

/// One page of applications and how many match in all.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplicationPage {
    /// Applications matching the filter.
    pub total: i64,
    /// The page, most recently submitted first.
    pub applications: Vec<ApplicationRow>,
}

/// The filter of a list; `$1` outcome, `$2` customer, `$n` registering key.
fn filter_sql(key: u8) -> String {
    format!(
        "WHERE ($1::text IS NULL OR d.decision = $1) \
           AND ($2::text IS NULL OR a.customer_id = $2) \
           AND (${key}::text IS NULL OR a.customer_id IN (SELECT customer_id \
             FROM customer_registrations WHERE key_id = ${key}))"
    )
}

/// Applications matching `filter`, `limit` from `offset`, most recently submitted first.
pub async fn list(
    pool: &PgPool,
    filter: &ApplicationFilter<'_>,
    limit: i64,
    offset: i64,
) -> Result<ApplicationPage, sqlx::Error> {
    let total: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM applications a LEFT JOIN decisions d USING (application_id) {}",
        filter_sql(3)
    ))
    .bind(filter.outcome)
    .bind(filter.customer_id)
    .bind(filter.registered_by)
    .fetch_one(pool)
    .await?;
    let applications = sqlx::query_as(&format!(
        "SELECT a.application_id, a.customer_id, a.submitted_at, a.purpose, a.amount, \
           a.tenure_months, a.interest_rate_bps, d.decision, d.score, d.pd, d.grade, \
           d.model_version, d.decided_at \
         FROM applications a LEFT JOIN decisions d USING (application_id) {} \
         ORDER BY a.submitted_at DESC, a.application_id LIMIT $3 OFFSET $4",
        filter_sql(5)
    ))
    .bind(filter.outcome)
    .bind(filter.customer_id)
    .bind(limit)
    .bind(offset)
    .bind(filter.registered_by)
    .fetch_all(pool)
    .await?;
    Ok(ApplicationPage {
        total,
        applications,
    })
}

/// A stored decision.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DecisionRecord {
    /// Customer.
    pub customer_id: String,
    /// When decided.
    pub decided_at: DateTime<Utc>,
    /// The model that decided.
    pub model_version: String,
    /// 12-month PD.
    pub pd: f64,
    /// Credit score.
    pub score: i32,
    /// Risk grade.
    pub grade: String,
    /// Outcome (`APPROVE`, `REFER`, `DECLINE`).
    pub decision: String,
    /// Policy rules that fired.
    pub rule_hits: Vec<String>,
    /// Instalment, minor units a month.
    pub emi: i64,
    /// Fixed obligations to income.
    pub foir: f64,
    /// Loan to value, when secured.
    pub ltv: Option<f64>,
    /// The challenger scored in shadow, if any.
    pub challenger_version: Option<String>,
    /// Its PD.
    pub challenger_pd: Option<f64>,
}

/// The decision on the application `id`, if any.
pub async fn decision(pool: &PgPool, id: &str) -> Result<Option<DecisionRecord>, sqlx::Error> {
    sqlx::query_as(
        "SELECT customer_id, decided_at, model_version, pd, score, grade, decision, rule_hits, \
           emi, foir, ltv, challenger_version, challenger_pd \
         FROM decisions WHERE application_id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// One reason of a decision.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Reason {
    /// Reason code.
    pub code: String,
    /// The feature behind it.
    pub feature: String,
    /// The feature's value.
    pub value: Option<f64>,
    /// Its points.
    pub points: f64,
}

/// The reasons of the decision on the application `id`, by rank.
pub async fn reasons(pool: &PgPool, id: &str) -> Result<Vec<Reason>, sqlx::Error> {
    sqlx::query_as(
        "SELECT code, feature, value, points FROM decision_reasons \
         WHERE application_id = $1 ORDER BY rank",
    )
    .bind(id)
    .fetch_all(pool)
    .await
}
