//! Loans known to the book: events on a loan never disbursed are refused.

use std::collections::HashSet;

use chrono::NaiveDate;
use schemas::LoanAction;
use sqlx::PgConnection;

use super::batch::{BatchOutcome, WriteError};
use crate::message::Rejection;

/// Which of the actions' loans the book knows.
pub(super) async fn known_loans(
    tx: &mut PgConnection,
    actions: &[(usize, &LoanAction)],
) -> Result<HashSet<String>, WriteError> {
    let ids: Vec<String> = actions.iter().map(|(_, a)| a.loan_id.clone()).collect();
    Ok(sqlx::query_scalar!(
        "SELECT loan_id FROM loan_status WHERE loan_id = ANY($1)",
        &ids
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect())
}

/// Refuse the actions on unknown loans; the ids and dates of the others.
pub(super) fn reject_unknown(
    actions: &[(usize, &LoanAction)],
    known: &HashSet<String>,
    out: &mut BatchOutcome,
) -> (Vec<String>, Vec<NaiveDate>) {
    let mut ids = Vec::new();
    let mut dates = Vec::new();
    for (i, a) in actions {
        if known.contains(&a.loan_id) {
            ids.push(a.loan_id.clone());
            dates.push(a.on);
        } else {
            out.rejected.push((
                *i,
                Rejection {
                    class: "unknown_loan",
                    message: "no disbursed loan has this loan_id".into(),
                },
            ));
        }
    }
    (ids, dates)
}
