//! Customers as the edge reads them: the stored record, its changes, and which API key
//! registered whom. The records themselves are written by the aggregator; the edge writes only
//! the claim of an id by the key registering it.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use sqlx::PgPool;

/// The columns of a [`Customer`], in the order of its fields.
const COLUMNS: &str = "customer_id, registered_at, full_name, email, phone, date_of_birth, age, \
     employment_type, employer_name, years_employed, monthly_income, existing_emi, dependents, \
     residence, region, bureau";

/// Rows of `customers` registered by the key `$1`, or every row when `$1` is null.
const REGISTERED_BY: &str = "($1::text IS NULL OR customer_id IN (SELECT customer_id \
     FROM customer_registrations WHERE key_id = $1))";

/// A stored customer, personal data included (callers decide who sees it).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Customer {
    /// Id.
    pub customer_id: String,
    /// When it was registered.
    pub registered_at: DateTime<Utc>,
    /// Full name (personal).
    pub full_name: String,
    /// E-mail (personal).
    pub email: String,
    /// Phone (personal).
    pub phone: String,
    /// Birth date (personal).
    pub date_of_birth: Option<NaiveDate>,
    /// Age when registered.
    pub age: Option<i32>,
    /// Employment type (schema symbol).
    pub employment_type: String,
    /// Employer (personal).
    pub employer_name: Option<String>,
    /// Years employed.
    pub years_employed: f32,
    /// Monthly income, minor units.
    pub monthly_income: i64,
    /// Existing EMIs, minor units a month.
    pub existing_emi: i64,
    /// Dependents.
    pub dependents: i32,
    /// Residence (schema symbol).
    pub residence: String,
    /// Region.
    pub region: String,
    /// Bureau data, if any.
    pub bureau: Option<Value>,
}

/// One page of customers and how many there are in all.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerPage {
    /// Customers matching the filter.
    pub total: i64,
    /// The page, by customer id.
    pub customers: Vec<Customer>,
}

/// Customers by id, `limit` from `offset`; only those registered by the key `registered_by`
/// when given.
pub async fn list(
    pool: &PgPool,
    registered_by: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<CustomerPage, sqlx::Error> {
    let total: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM customers WHERE {REGISTERED_BY}"
    ))
    .bind(registered_by)
    .fetch_one(pool)
    .await?;
    let customers = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM customers WHERE {REGISTERED_BY} \
         ORDER BY customer_id LIMIT $2 OFFSET $3"
    ))
    .bind(registered_by)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    Ok(CustomerPage { total, customers })
}

/// The customer `id`, if stored.
pub async fn get(pool: &PgPool, id: &str) -> Result<Option<Customer>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM customers WHERE customer_id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// The customer `id` if it is stored with a registration time at or after `since` (a
/// registration just published, once the aggregator has stored it).
pub async fn registered_since(
    pool: &PgPool,
    id: &str,
    since: DateTime<Utc>,
) -> Result<Option<Customer>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM customers WHERE customer_id = $1 AND registered_at >= $2"
    ))
    .bind(id)
    .bind(since)
    .fetch_optional(pool)
    .await
}

/// Whether the customer `id` is stored.
pub async fn exists(pool: &PgPool, id: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM customers WHERE customer_id = $1)")
        .bind(id)
        .fetch_one(pool)
        .await
}

/// When the customer `id` was registered, if it is stored.
pub async fn registered_at(pool: &PgPool, id: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar("SELECT registered_at FROM customers WHERE customer_id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Whether the key `key_id` registered the customer `id`.
pub async fn registered_by(pool: &PgPool, id: &str, key_id: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM customer_registrations WHERE customer_id = $1 \
           AND key_id = $2)",
    )
    .bind(id)
    .bind(key_id)
    .fetch_one(pool)
    .await
}

/// Claim the id `id` for the key `key_id` unless a key has claimed it already: the key holding
/// the claim afterwards (`key_id` itself when the claim is new or was its own), or `None`.
pub async fn claim(pool: &PgPool, id: &str, key_id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "WITH ins AS (INSERT INTO customer_registrations (customer_id, key_id) VALUES ($1, $2) \
           ON CONFLICT DO NOTHING RETURNING key_id) \
         SELECT key_id FROM ins UNION ALL \
         SELECT key_id FROM customer_registrations WHERE customer_id = $1 LIMIT 1",
    )
    .bind(id)
    .bind(key_id)
    .fetch_optional(pool)
    .await
}

/// The version the change `update_id` produced, once the aggregator has applied it.
pub async fn change_version(pool: &PgPool, update_id: &str) -> Result<Option<i32>, sqlx::Error> {
    sqlx::query_scalar("SELECT version FROM customer_changes WHERE update_id = $1")
        .bind(update_id)
        .fetch_optional(pool)
        .await
}

/// One applied change of a customer.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct CustomerChange {
    /// The version it produced.
    pub version: i32,
    /// The change's id.
    pub update_id: String,
    /// When it was applied.
    pub changed_at: DateTime<Utc>,
    /// Who made it (an API key id).
    pub changed_by: String,
    /// Why, if given.
    pub reason: Option<String>,
    /// The fields it set (by name; unset ones null or absent).
    pub changes: Value,
    /// The record before it.
    pub previous: Value,
}

/// Every change of the customer `id`, newest first.
pub async fn changes(pool: &PgPool, id: &str) -> Result<Vec<CustomerChange>, sqlx::Error> {
    sqlx::query_as(
        "SELECT version, update_id, changed_at, changed_by, reason, changes, previous \
         FROM customer_changes WHERE customer_id = $1 ORDER BY version DESC",
    )
    .bind(id)
    .fetch_all(pool)
    .await
}

/// What an application takes from its stored customer.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ApplicantRecord {
    /// Age when registered.
    pub age: Option<i32>,
    /// Birth date.
    pub date_of_birth: Option<NaiveDate>,
    /// Employment type (schema symbol).
    pub employment_type: String,
    /// Years employed.
    pub years_employed: f32,
    /// Monthly income, minor units.
    pub monthly_income: i64,
    /// Existing EMIs, minor units a month.
    pub existing_emi: i64,
    /// Dependents.
    pub dependents: i32,
    /// Residence (schema symbol).
    pub residence: String,
    /// Bureau data, if any.
    pub bureau: Option<Value>,
}

/// The applicant fields of the customer `id`, if stored.
pub async fn applicant(pool: &PgPool, id: &str) -> Result<Option<ApplicantRecord>, sqlx::Error> {
    sqlx::query_as(
        "SELECT age, date_of_birth, employment_type, years_employed, monthly_income, \
           existing_emi, dependents, residence, bureau FROM customers WHERE customer_id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}
