//! Loans as the edge reads them: the filtered list with each loan's current status, and one
//! loan whole (terms, status, schedule, payments, DPD and class history). The aggregator
//! writes them; nothing here does.

use chrono::NaiveDate;
use serde_json::Value;
use sqlx::PgPool;

/// The loan disbursed for the application `application_id`, if any.
pub async fn of_application(
    pool: &PgPool,
    application_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT loan_id FROM loans WHERE application_id = $1")
        .bind(application_id)
        .fetch_optional(pool)
        .await
}

/// Which loans a list shows; each filter applies when given.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoanFilter<'a> {
    /// Only loans in this state (`ACTIVE`, `CLOSED`, `WRITTEN_OFF`).
    pub state: Option<&'a str>,
    /// Only this customer's.
    pub customer_id: Option<&'a str>,
}

/// A loan as listed, with its current status.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct LoanRow {
    /// Id.
    pub loan_id: String,
    /// The application it was disbursed for.
    pub application_id: String,
    /// Customer.
    pub customer_id: String,
    /// Principal disbursed, minor units.
    pub principal: i64,
    /// Rate, basis points a year.
    pub interest_rate_bps: i32,
    /// Tenure, months.
    pub tenure_months: i32,
    /// Instalment, minor units a month.
    pub emi: i64,
    /// Disbursal date.
    pub disbursed_on: NaiveDate,
    /// Purpose (schema symbol).
    pub purpose: Option<String>,
    /// Risk grade at origination.
    pub grade: Option<String>,
    /// `ACTIVE`, `CLOSED` or `WRITTEN_OFF`.
    pub state: String,
    /// Principal outstanding, minor units.
    pub outstanding_principal: i64,
    /// Days past due.
    pub dpd: i32,
    /// IRAC asset class.
    pub asset_class: String,
    /// IFRS 9 stage.
    pub stage: i16,
    /// IRAC provision, minor units.
    pub provision: i64,
}

/// One page of loans and how many match in all.
#[derive(Debug, Clone, PartialEq)]
pub struct LoanPage {
    /// Loans matching the filter.
    pub total: i64,
    /// The page, most recently disbursed first.
    pub loans: Vec<LoanRow>,
}

/// The filter of a list; `$1` state, `$2` customer.
const FILTER: &str = "WHERE ($1::text IS NULL OR s.state = $1) \
                      AND ($2::text IS NULL OR l.customer_id = $2)";

/// Loans matching `filter`, `limit` from `offset`, most recently disbursed first.
pub async fn list(
    pool: &PgPool,
    filter: &LoanFilter<'_>,
    limit: i64,
    offset: i64,
) -> Result<LoanPage, sqlx::Error> {
    let total: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM loans l JOIN loan_status s USING (loan_id) {FILTER}"
    ))
    .bind(filter.state)
    .bind(filter.customer_id)
    .fetch_one(pool)
    .await?;
    let loans = sqlx::query_as(&format!(
        "SELECT l.loan_id, l.application_id, l.customer_id, l.principal, l.interest_rate_bps, \
           l.tenure_months, l.emi, l.disbursed_on, l.purpose, l.grade, s.state, \
           s.outstanding_principal, s.dpd, s.asset_class, s.stage, s.provision \
         FROM loans l JOIN loan_status s USING (loan_id) {FILTER} \
         ORDER BY l.disbursed_on DESC, l.loan_id LIMIT $3 OFFSET $4"
    ))
    .bind(filter.state)
    .bind(filter.customer_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    Ok(LoanPage { total, loans })
}

/// One loan whole, each record as PostgreSQL renders its row in JSON (every column by name,
/// the loan id left out of the nested ones).
#[derive(Debug, Clone, PartialEq)]
pub struct LoanRecord {
    /// The loan's terms, with its current status under `status`.
    pub loan: Value,
    /// Its instalments, in order.
    pub schedule: Vec<Value>,
    /// Its payments, by value date.
    pub payments: Vec<Value>,
    /// Its DPD, class and stage changes, by business date.
    pub status_history: Vec<Value>,
}

/// The loan `id` with its schedule, payments and status history, if it exists.
pub async fn record(pool: &PgPool, id: &str) -> Result<Option<LoanRecord>, sqlx::Error> {
    let loan: Option<Value> = sqlx::query_scalar(
        "SELECT to_jsonb(l) || jsonb_build_object('status', to_jsonb(s) - 'loan_id') \
         FROM loans l JOIN loan_status s USING (loan_id) WHERE l.loan_id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    let Some(loan) = loan else {
        return Ok(None);
    };
    let rows = |sql: &'static str| sqlx::query_scalar::<_, Value>(sql).bind(id).fetch_all(pool);
    let schedule =
        rows("SELECT to_jsonb(i) - 'loan_id' FROM instalments i WHERE loan_id = $1 ORDER BY seq")
            .await?;
    let payments = rows(
        "SELECT to_jsonb(p) - 'loan_id' FROM payments p WHERE loan_id = $1 \
         ORDER BY paid_on, payment_id",
    )
    .await?;
    let status_history = rows(
        "SELECT to_jsonb(h) - 'loan_id' FROM status_history h WHERE loan_id = $1 \
         ORDER BY business_date",
    )
    .await?;
    Ok(Some(LoanRecord {
        loan,
        schedule,
        payments,
        status_history,
    }))
}
