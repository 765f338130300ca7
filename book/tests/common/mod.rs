//! Shared by the book's tests: a batch applied as the service commits it, dates, and what the
//! tests read back from the book to compare with `risk_core::book::Book`.

#![allow(dead_code, clippy::unwrap_used)]

use book::message::Incoming;
use book::write::{apply_batch, ApplyContext, BatchOutcome};
use chrono::NaiveDate;
use risk_core::book::Loan;
use risk_core::book::{Book, Figures};
use sqlx::PgPool;

/// One batch in one transaction, as the service commits it.
pub async fn apply(pool: &PgPool, ctx: &ApplyContext, batch: &[Incoming]) -> BatchOutcome {
    let mut tx = pool.begin().await.unwrap();
    let out = apply_batch(&mut tx, ctx, batch).await.unwrap();
    tx.commit().await.unwrap();
    out
}

/// A date.
pub fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

/// The reference's current PD when the book has none (origination PDs only).
pub fn no_current_pd(_: &Loan, _: NaiveDate) -> Option<f64> {
    None
}

/// A class or stage change: loan, date, from class, to class, from stage, to stage, reason.
pub type History = (String, NaiveDate, String, String, i16, i16, String);

/// Every change of class or stage the day-ends recorded, by loan, date and reason.
pub async fn sql_history(pool: &PgPool) -> Vec<History> {
    sqlx::query_as(
        "SELECT loan_id::text, business_date, from_class, to_class, from_stage, to_stage, reason \
         FROM status_history ORDER BY 1, 2, 7",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// The reference's changes, in the same order.
pub fn reference_history(book: &Book) -> Vec<History> {
    let mut out: Vec<History> = book
        .transitions
        .iter()
        .map(|t| {
            (
                t.loan_id.clone(),
                t.date,
                t.from_class.clone(),
                t.to_class.clone(),
                t.from_stage,
                t.to_stage,
                t.reason.clone(),
            )
        })
        .collect();
    out.sort_by(|a, b| (&a.0, a.1, &a.6).cmp(&(&b.0, b.1, &b.6)));
    out
}

/// Every loan's figures after the last day-end, by loan id.
pub async fn sql_figures(pool: &PgPool) -> Vec<(String, Figures)> {
    type Row = (
        String,
        String,
        Option<NaiveDate>,
        i32,
        i64,
        i64,
        i16,
        i64,
        i64,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT loan_id::text, asset_class, npa_since, dpd, arrears, outstanding_principal, \
           stage, provision, ecl FROM loan_status ORDER BY loan_id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(
            |(id, class, npa_since, dpd, arrears, outstanding, stage, provision, ecl)| {
                (
                    id,
                    Figures {
                        class,
                        npa_since,
                        dpd,
                        arrears,
                        outstanding,
                        stage,
                        provision,
                        ecl,
                    },
                )
            },
        )
        .collect()
}
