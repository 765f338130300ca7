//! The day-end of a business date, set-based in SQL: a handful of statements whatever the size
//! of the book, never a loop of per-loan round trips.
//!
//! 1. Loans still missing their purpose, region, grade or origination PD take them from the
//!    application, the customer and the decision that have arrived since.
//! 2. At the first day-end of a month, the month just ended is rolled from month-end cut-offs:
//!    each loan's bucket and balance at the last day-end of the month before against its bucket
//!    at the last day-end of the month (both recorded by the day-ends, so the new day's events
//!    change neither); loans disbursed during the month are not in it.
//! 3. Every open loan is aged: DPD from its oldest unpaid instalment, arrears, the IRAC class
//!    (SMA buckets, NPA on DPD above the threshold, NPA sub-classes by time as NPA, upgrade only
//!    when all arrears are paid, Loss when marked), borrower-wise NPA, the IFRS 9 stage (DPD
//!    backstops, credit impairment, PD-ratio trigger against the origination PD), interest
//!    recognised or held in suspense, the IRAC provision and the ECL. A `status_history` row is
//!    written for every change of class or stage.
//! 4. The `portfolio_daily` snapshot of the date.
//!
//! The rules are the same as `risk_core`'s (`irac`, `ifrs9`, `provisioning`), with the same
//! settings; a test plays generated books through both and compares loan by loan.
//!
//! # Layout
//! This module closes the day (steps 1 and 2, statistics, the settings); `age`: step 3;
//! `snapshot`: step 4.

use std::time::Instant;

use chrono::{Datelike, NaiveDate};
use risk_core::settings::DomainSettings;
use serde::Serialize;
use sqlx::PgConnection;

mod age;
mod snapshot;

use self::age::age;
use self::snapshot::snapshot;

/// What a day-end did.
#[derive(Debug, Clone, Serialize)]
pub struct DayEndReport {
    /// Business date closed.
    pub business_date: NaiveDate,
    /// Loans aged (open loans and loans whose figures had to be released).
    pub loans_aged: i64,
    /// Loans whose state changed.
    pub loans_changed: i64,
    /// Class or stage transitions recorded.
    pub transitions: i64,
    /// Gross NPA ratio after the day-end.
    pub gross_npa_ratio: f64,
    /// Wall time of the day-end, seconds.
    pub seconds: f64,
}

/// Close business date `date`: age the book and take the snapshot, inside the caller's
/// transaction.
pub async fn close_day(
    tx: &mut PgConnection,
    date: NaiveDate,
    domain: &DomainSettings,
) -> Result<DayEndReport, sqlx::Error> {
    let started = Instant::now();
    // The statements are large but cheap per row; compiling them (JIT) costs more than running.
    sqlx::query!("SET LOCAL jit = off")
        .execute(&mut *tx)
        .await?;
    // The joins and groupings of a large book sort and hash in memory rather than on disk
    // (PostgreSQL's default, 4 MB, spills a book of a million loans several times over).
    sqlx::query!("SET LOCAL work_mem = '256MB'")
        .execute(&mut *tx)
        .await?;
    fill_loan_attributes(tx).await?;
    refresh_statistics(tx).await?;
    let previous: Option<NaiveDate> = sqlx::query_scalar!(
        "SELECT max(business_date) FROM business_days \
         WHERE closed_at IS NOT NULL AND business_date < $1",
        date
    )
    .fetch_one(&mut *tx)
    .await?;
    if let Some(prev) = previous {
        if (prev.year(), prev.month()) != (date.year(), date.month()) {
            roll_month(tx, prev).await?;
        }
    }
    let (aged, changed, transitions) = age(tx, date, domain).await?;
    let gross_npa_ratio = snapshot(tx, date).await?;
    let seconds = started.elapsed().as_secs_f64();
    sqlx::query!(
        "UPDATE business_days SET closed_at = now(), loans_aged = $2, seconds = $3 \
         WHERE business_date = $1",
        date,
        i32::try_from(aged).unwrap_or(i32::MAX),
        seconds
    )
    .execute(&mut *tx)
    .await?;
    Ok(DayEndReport {
        business_date: date,
        loans_aged: aged,
        loans_changed: changed,
        transitions,
        gross_npa_ratio,
        seconds,
    })
}

/// Tables the day-end reads whose statistics are refreshed when they have grown by half since
/// PostgreSQL last sampled them (or were never sampled).
const AGED_TABLES: [&str; 5] = [
    "loans",
    "loan_status",
    "customer_risk",
    "decisions",
    "loan_schedules",
];

/// Sample the tables a book that grows faster than autovacuum looks at (a replayed history,
/// a bulk load) has outgrown, so the day-end is planned for the book it has, not the one the
/// statistics remember. A book of steady size (a daily day-end) is left to autovacuum.
async fn refresh_statistics(tx: &mut PgConnection) -> Result<(), sqlx::Error> {
    let tables: Vec<String> = AGED_TABLES.map(String::from).to_vec();
    let stale: Vec<String> = sqlx::query_scalar!(
        "SELECT t.relname::text AS \"relname!\" \
         FROM pg_stat_user_tables t JOIN pg_class c ON c.oid = t.relid \
         WHERE t.relname = ANY($1) AND t.schemaname = current_schema() \
           AND t.n_live_tup > 100 AND (c.reltuples < 0 OR t.n_live_tup > 1.5 * c.reltuples)",
        &tables
    )
    .fetch_all(&mut *tx)
    .await?;
    if !stale.is_empty() {
        // As the tables' owner (ANALYZE needs it), whatever role the aggregator runs as.
        sqlx::query!("SELECT refresh_book_statistics($1)", &stale)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

async fn fill_loan_attributes(tx: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE loans l SET purpose = coalesce(l.purpose, a.purpose), \
           region = coalesce(l.region, c.region), grade = coalesce(l.grade, d.grade), \
           origination_pd = coalesce(l.origination_pd, d.pd) \
         FROM loans m \
         LEFT JOIN applications a ON a.application_id = m.application_id \
         LEFT JOIN decisions d ON d.application_id = m.application_id \
         LEFT JOIN customers c ON c.customer_id = m.customer_id \
         WHERE l.loan_id = m.loan_id \
           AND (m.purpose IS NULL OR m.region IS NULL OR m.grade IS NULL \
                OR m.origination_pd IS NULL) \
           AND (a.purpose IS NOT NULL OR c.region IS NOT NULL OR d.grade IS NOT NULL)"
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Roll the month of `last_day` (the month's last day-end): each loan open at the last day-end
/// of the month before, from its bucket then to its bucket at `last_day`'s day-end (Closed and
/// Written-off included), by count and by its balance then; then the next month's opening
/// population: the loans open at `last_day`'s day-end. Runs before the new day is aged, so the
/// day-end figures read are still `last_day`'s.
async fn roll_month(tx: &mut PgConnection, last_day: NaiveDate) -> Result<(), sqlx::Error> {
    let month = last_day.with_day(1).unwrap_or(last_day);
    sqlx::query!(
        "INSERT INTO roll_rates (month, from_bucket, to_bucket, loans, balance) \
         SELECT $1, month_start_bucket, dayend_bucket, count(*), \
           coalesce(sum(month_start_balance), 0) \
         FROM loan_status WHERE month_start_bucket IS NOT NULL AND dayend_bucket IS NOT NULL \
         GROUP BY 2, 3 \
         ON CONFLICT DO NOTHING",
        month
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE loan_status SET \
           month_start_bucket = CASE WHEN dayend_bucket NOT IN ('CLOSED', 'WRITTEN_OFF') \
             THEN dayend_bucket END, \
           month_start_balance = CASE WHEN dayend_bucket NOT IN ('CLOSED', 'WRITTEN_OFF') \
             THEN dayend_balance END \
         WHERE month_start_bucket IS NOT NULL \
            OR dayend_bucket NOT IN ('CLOSED', 'WRITTEN_OFF')"
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}
