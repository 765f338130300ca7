//! The stored repayment cursors of loans and their schedules rewritten after a payment.

use super::batch::WriteError;
use super::disburse::slice_bound;
use chrono::NaiveDate;
use risk_core::dpd::{Cursor, NeedsRest, PrepaymentMode};
use risk_core::money::RateBps;
use sqlx::PgConnection;
use std::collections::{BTreeMap, HashMap};

/// A loan's cursor as stored.
#[derive(Debug, Clone)]
pub(super) struct Stored {
    pub(super) cursor: Cursor,
    /// Money received on it is a recovery.
    pub(super) written_off: bool,
}

/// The cursors of `loans` (each with the total its payments bring, `totals`), with the
/// instalments those totals can reach, or all of them from the next unpaid one with `to_end`.
pub(super) async fn cursors_of(
    tx: &mut PgConnection,
    loans: &[String],
    totals: &[i64],
    to_end: bool,
    mode: PrepaymentMode,
) -> Result<HashMap<String, Stored>, WriteError> {
    Ok(sqlx::query!(
        "SELECT s.loan_id, s.state, s.next_unpaid_seq, s.next_unpaid_paid, \
           s.outstanding_principal, l.disbursed_on, l.interest_rate_bps, l.emi, \
           cardinality(sc.due_on) AS \"length?\", \
           coalesce(sc.due_on[s.next_unpaid_seq - 1], l.disbursed_on) AS \"period_start!\", \
           sc.due_on[s.next_unpaid_seq:r.last] AS \"due_on?\", \
           sc.principal[s.next_unpaid_seq:r.last] AS \"principal?\", \
           sc.interest[s.next_unpaid_seq:r.last] AS \"interest?\" \
         FROM unnest($1::text[], $2::int8[]) AS u(loan_id, total) \
         JOIN loan_status s ON s.loan_id = u.loan_id \
         JOIN loans l ON l.loan_id = s.loan_id \
         LEFT JOIN loan_schedules sc ON sc.loan_id = s.loan_id AND s.state = 'ACTIVE' \
         CROSS JOIN LATERAL (SELECT CASE WHEN $3 THEN cardinality(sc.due_on) \
           ELSE s.next_unpaid_seq + least(u.total / greatest(1, \
             sc.principal[s.next_unpaid_seq] + sc.interest[s.next_unpaid_seq]), 100000)::int4 + 1 \
           END AS last) r",
        loans,
        totals,
        to_end
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|r| {
        let due_on = r.due_on.unwrap_or_default();
        let principal = r.principal.unwrap_or_default();
        let interest = r.interest.unwrap_or_default();
        let read = principal.len() == due_on.len() && interest.len() == due_on.len();
        let first = r
            .next_unpaid_seq
            .filter(|_| read && !due_on.is_empty())
            .and_then(|f| u32::try_from(f).ok());
        let rate = RateBps::clamped(r.interest_rate_bps);
        let cursor = match first {
            Some(first) => Cursor {
                first,
                paid: r.next_unpaid_paid,
                beyond: u32::try_from(
                    (i64::from(r.length.unwrap_or(0)) - i64::from(first) + 1 - due_on.len() as i64)
                        .max(0),
                )
                .unwrap_or(0),
                due_on,
                principal,
                interest,
                at: 0,
                outstanding: r.outstanding_principal,
                period_start: r.period_start,
                rate,
                emi: r.emi,
                mode,
            },
            // Not active (no schedule read), or nothing left to pay: payments are surplus.
            None => Cursor {
                first: 0,
                paid: 0,
                due_on: Vec::new(),
                principal: Vec::new(),
                interest: Vec::new(),
                at: 0,
                beyond: 0,
                outstanding: 0,
                period_start: r.disbursed_on,
                rate,
                emi: r.emi,
                mode,
            },
        };
        (
            r.loan_id,
            Stored {
                cursor,
                written_off: r.state == "WRITTEN_OFF",
            },
        )
    })
    .collect())
}

/// Whether a payment or write-off dated `date` is applied now: it is dated on or before the day
/// after the last closed day (so the next day-end counts it). Later ones wait for their day.
pub(super) fn effective_now(last_closed: Option<NaiveDate>, date: NaiveDate) -> bool {
    last_closed
        .and_then(|c| c.succ_opt())
        .is_some_and(|next| date <= next)
}

pub(super) fn cursor_bug(e: NeedsRest) -> sqlx::Error {
    sqlx::Error::Protocol(format!("payment cursor: {e} after it was read to its end"))
}

/// What a batch's payments did to one loan.
#[derive(Debug, Default)]
pub(super) struct Delta {
    pub(super) principal: i64,
    pub(super) interest: i64,
    pub(super) surplus: i64,
    pub(super) recovered: i64,
    pub(super) prepaid: i64,
    pub(super) rescheduled: bool,
    pub(super) last: NaiveDate,
}

/// Store the schedules a prepayment or a foreclosure recomputed: the instalments before the
/// cursor's first as they were, then the cursor's; the loan's instalment count and maturity
/// follow.
pub(super) async fn rewrite_schedules(
    tx: &mut PgConnection,
    deltas: &BTreeMap<&str, Delta>,
    cursors: &HashMap<String, Stored>,
) -> Result<(), WriteError> {
    let mut ids = Vec::new();
    let mut firsts = Vec::new();
    let mut from = Vec::new();
    let mut to = Vec::new();
    let mut dues = Vec::new();
    let mut principals = Vec::new();
    let mut interests = Vec::new();
    for (loan, d) in deltas {
        let Some(stored) = cursors.get(*loan).filter(|_| d.rescheduled) else {
            continue;
        };
        ids.push(loan.to_string());
        firsts.push(i32::try_from(stored.cursor.first).unwrap_or(i32::MAX));
        from.push(slice_bound(dues.len() + 1));
        for (due, p, i) in stored.cursor.rows() {
            dues.push(due);
            principals.push(p);
            interests.push(i);
        }
        to.push(slice_bound(dues.len()));
    }
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        "WITH t AS (SELECT * FROM unnest($1::text[], $2::int4[], $3::int4[], $4::int4[]) \
           AS t(id, f, a, b)), \
         s AS (UPDATE loan_schedules sc SET \
           due_on = sc.due_on[1:t.f - 1] || ($5::date[])[t.a:t.b], \
           principal = sc.principal[1:t.f - 1] || ($6::int8[])[t.a:t.b], \
           interest = sc.interest[1:t.f - 1] || ($7::int8[])[t.a:t.b] \
           FROM t WHERE sc.loan_id = t.id \
           RETURNING sc.loan_id, cardinality(sc.due_on) AS n, sc.due_on[cardinality(sc.due_on)] AS last) \
         UPDATE loans l SET instalments = s.n, maturity_on = greatest(s.last, l.first_due_on) \
         FROM s WHERE l.loan_id = s.loan_id",
        &ids,
        &firsts,
        &from,
        &to,
        &dues,
        &principals,
        &interests
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}
