//! What the training job reads from the book: matured loans with the application as submitted
//! and whether they went 90 days past due within the performance window.

use chrono::NaiveDate;
use futures::stream::BoxStream;
use sqlx::PgPool;

/// One matured loan.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MaturedLoan {
    /// The application as submitted (JSON).
    pub payload: String,
    /// Disbursal date.
    pub disbursed_on: NaiveDate,
    /// Whether it was more than 90 days past due within the window.
    pub defaulted: bool,
}

/// The last closed business date: labels are read as of it.
pub async fn labels_as_of(pool: &PgPool) -> Result<Option<NaiveDate>, sqlx::Error> {
    sqlx::query_scalar("SELECT max(business_date) FROM business_days WHERE closed_at IS NOT NULL")
        .fetch_one(pool)
        .await
}

/// Loans disbursed on or before `disbursed_by`, in origination order, labelled over
/// `window_months` after disbursal (streamed; nothing is held but the current row).
pub fn matured(
    pool: &PgPool,
    disbursed_by: NaiveDate,
    window_months: i32,
) -> BoxStream<'_, Result<MaturedLoan, sqlx::Error>> {
    sqlx::query_as(
        "SELECT a.payload::text AS payload, l.disbursed_on, \
           (s.first_dpd90_on IS NOT NULL \
             AND s.first_dpd90_on <= (l.disbursed_on + make_interval(months => $2))::date) \
             AS defaulted \
         FROM loans l JOIN applications a USING (application_id) JOIN loan_status s USING (loan_id) \
         WHERE l.disbursed_on <= $1 ORDER BY l.disbursed_on, l.loan_id",
    )
    .bind(disbursed_by)
    .bind(window_months)
    .fetch(pool)
}
