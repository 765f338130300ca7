//! What every read shares: its errors, the closed business date it answers for, and ratios.

use chrono::NaiveDate;
use sqlx::PgPool;

/// Why a query has no answer.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// No business day has been closed (on or before the date asked).
    #[error("no business day has been closed{}", .0.map(|d| format!(" on or before {d}")).unwrap_or_default())]
    NoClosedDay(Option<NaiveDate>),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// A vintage of the snapshot is not a month's first day (a defect).
    #[error("the snapshot's vintage {0:?} is not a date")]
    Vintage(String),
    /// A stored snapshot column does not read as its breakdown (a defect, never an empty
    /// breakdown).
    #[error("the snapshot of {date} has a malformed {column}")]
    Snapshot {
        /// Business date.
        date: NaiveDate,
        /// Column.
        column: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// Approved over approved and declined (DOMAIN.md: referred applications are not decided yet).
pub(super) fn approval_rate(approved: i64, declined: i64) -> f64 {
    ratio(approved, approved + declined)
}

pub(super) fn ratio(n: i64, d: i64) -> f64 {
    if d > 0 {
        n as f64 / d as f64
    } else {
        0.0
    }
}

/// The closed business date a query answers for: the latest closed on or before `as_of`.
pub async fn resolve_date(
    pool: &PgPool,
    as_of: Option<NaiveDate>,
) -> Result<NaiveDate, QueryError> {
    let date: Option<NaiveDate> = sqlx::query_scalar!(
        "SELECT max(business_date) FROM portfolio_daily \
         WHERE $1::date IS NULL OR business_date <= $1",
        as_of
    )
    .fetch_one(pool)
    .await?;
    date.ok_or(QueryError::NoClosedDay(as_of))
}
