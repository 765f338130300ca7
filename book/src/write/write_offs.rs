//! Write-offs, releases of payments held for them, and loss marking.

use super::batch::BatchOutcome;
use super::batch::WriteError;
use super::cursors::effective_now;
use super::known::{known_loans, reject_unknown};
use super::payments::{book_payments, counted_on, write_daily, Arrival, Daily};
use crate::message::Rejection;
use chrono::NaiveDate;
use risk_core::dpd::PrepaymentMode;
use schemas::{LoanAction, PaymentReceived};
use sqlx::PgConnection;
use std::collections::{HashMap, HashSet};

/// Check the batch's write-offs (an open loan, on or after its disbursal); apply those dated
/// for now, keep the others for their day-end.
pub(super) async fn write_off(
    tx: &mut PgConnection,
    actions: &[(usize, &LoanAction)],
    at: &Arrival<'_>,
    out: &mut BatchOutcome,
) -> Result<(), WriteError> {
    let last_closed = at.last_closed;
    if actions.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = actions.iter().map(|(_, a)| a.loan_id.clone()).collect();
    let loans: HashMap<String, (String, NaiveDate)> = sqlx::query!(
        "SELECT s.loan_id, s.state, l.disbursed_on FROM loan_status s \
         JOIN loans l USING (loan_id) WHERE s.loan_id = ANY($1)",
        &ids
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|r| (r.loan_id, (r.state, r.disbursed_on)))
    .collect();
    let mut now = Vec::new();
    let mut later = Vec::new();
    let mut seen = HashSet::new();
    for (i, a) in actions {
        let refused = match loans.get(&a.loan_id) {
            None => Some(("unknown_loan", "no disbursed loan has this loan_id")),
            Some((_, d)) if a.on < *d => Some((
                "before_disbursal",
                "the write-off is dated before the disbursal",
            )),
            Some((state, _)) if state != "ACTIVE" || !seen.insert(a.loan_id.as_str()) => {
                Some(("not_open", "the loan is closed or already written off"))
            }
            Some(_) => None,
        };
        match refused {
            Some((class, message)) => out.rejected.push((
                *i,
                Rejection {
                    class,
                    message: message.into(),
                },
            )),
            None if effective_now(last_closed, a.on) => now.push((a.loan_id.clone(), a.on)),
            None => later.push((
                a.loan_id.clone(),
                a.on,
                at.partition_of.get(i).copied().unwrap_or(0),
            )),
        }
    }
    if !later.is_empty() {
        sqlx::query!(
            "INSERT INTO pending_events (business_date, kind, loan_id, partition) \
             SELECT d, 'write_off', l, k FROM unnest($1::date[], $2::text[], $3::int4[]) \
               WITH ORDINALITY AS t(d, l, k, n) ORDER BY n",
            &later.iter().map(|w| w.1).collect::<Vec<_>>(),
            &later.iter().map(|w| w.0.clone()).collect::<Vec<_>>(),
            &later.iter().map(|w| w.2).collect::<Vec<_>>()
        )
        .execute(&mut *tx)
        .await?;
    }
    apply_write_offs(tx, &now, last_closed).await
}

/// Write loans off: the outstanding principal leaves the book, the loan keeps its last
/// classification and the arrears it is written off with (due on or before the date, unpaid)
/// until recovered; the history records the write-off.
pub(super) async fn apply_write_offs(
    tx: &mut PgConnection,
    write_offs: &[(String, NaiveDate)],
    last_closed: Option<NaiveDate>,
) -> Result<(), WriteError> {
    if write_offs.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        "WITH u AS (SELECT * FROM unnest($1::text[], $2::date[], $3::date[]) \
           AS u(loan_id, on_date, counted_on)), \
         w AS (UPDATE loan_status s SET state = 'WRITTEN_OFF', written_off_on = u.on_date, \
           written_off_amount = s.outstanding_principal, outstanding_principal = 0, \
           unrecovered_arrears = coalesce(( \
             SELECT sum(x.p + x.i) FROM loan_schedules sc \
             CROSS JOIN LATERAL unnest(sc.due_on[s.next_unpaid_seq:], \
               sc.principal[s.next_unpaid_seq:], sc.interest[s.next_unpaid_seq:]) AS x(d, p, i) \
             WHERE sc.loan_id = s.loan_id AND x.d <= u.on_date), 0)::int8 \
             - CASE WHEN s.next_unpaid_due_on <= u.on_date THEN s.next_unpaid_paid ELSE 0 END \
           FROM u WHERE s.loan_id = u.loan_id AND s.state = 'ACTIVE' \
           RETURNING s.loan_id, u.counted_on, s.asset_class, s.stage, s.dpd, \
             s.written_off_amount) \
         INSERT INTO status_history (loan_id, business_date, from_class, to_class, from_stage, \
           to_stage, dpd, outstanding, reason) \
         SELECT loan_id, counted_on, asset_class, asset_class, stage, stage, dpd, \
           coalesce(written_off_amount, 0), 'write_off' FROM w \
         ON CONFLICT DO NOTHING",
        &write_offs.iter().map(|w| w.0.clone()).collect::<Vec<_>>(),
        &write_offs.iter().map(|w| w.1).collect::<Vec<_>>(),
        &write_offs
            .iter()
            .map(|w| counted_on(last_closed, w.1))
            .collect::<Vec<_>>()
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Apply the payments and write-offs that waited for day-ends up to `date` — those that arrived
/// on `partition` when given, else all — each loan's in date order, then arrival order.
pub(super) async fn release_pending(
    tx: &mut PgConnection,
    date: NaiveDate,
    mode: PrepaymentMode,
    partition: Option<i32>,
) -> Result<(), WriteError> {
    let last_closed: Option<NaiveDate> = sqlx::query_scalar!(
        "SELECT max(business_date) FROM business_days WHERE closed_at IS NOT NULL"
    )
    .fetch_one(&mut *tx)
    .await?;
    let rows = sqlx::query!(
        "DELETE FROM pending_events WHERE business_date <= $1 \
           AND ($2::int4 IS NULL OR partition = $2) \
         RETURNING seq, business_date, kind, loan_id, payment_id, amount",
        date,
        partition
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut rows: Vec<_> = rows.into_iter().collect();
    rows.sort_by_key(|r| (r.business_date, r.seq));
    // Each loan's events in order, in layers: a layer holds, for every loan, its next run of
    // one kind (payments, or a write-off), so a loan's payment and write-off keep their order
    // while the payments of all loans without a write-off go in one call.
    let mut run_of: HashMap<&str, (usize, &str)> = HashMap::new();
    let mut layers: Vec<Vec<usize>> = Vec::new();
    for (k, r) in rows.iter().enumerate() {
        let layer = match run_of.get_mut(r.loan_id.as_str()) {
            Some((layer, kind)) if *kind == r.kind.as_str() => *layer,
            Some((layer, kind)) => {
                *layer += 1;
                *kind = r.kind.as_str();
                *layer
            }
            None => {
                run_of.insert(r.loan_id.as_str(), (0, r.kind.as_str()));
                0
            }
        };
        if layers.len() <= layer {
            layers.resize_with(layer + 1, Vec::new);
        }
        layers[layer].push(k);
    }
    let mut daily = Daily::new();
    for layer in &layers {
        let payments: Vec<PaymentReceived> = layer
            .iter()
            .map(|&k| &rows[k])
            .filter(|r| r.kind == "payment")
            .map(|r| PaymentReceived {
                payment_id: r.payment_id.clone().unwrap_or_default(),
                loan_id: r.loan_id.clone(),
                amount: r.amount.unwrap_or(0),
                paid_on: r.business_date,
            })
            .collect();
        let refs: Vec<&PaymentReceived> = payments.iter().collect();
        book_payments(tx, &refs, last_closed, mode, &mut daily).await?;
        let w: Vec<(String, NaiveDate)> = layer
            .iter()
            .map(|&k| &rows[k])
            .filter(|r| r.kind != "payment")
            .map(|r| (r.loan_id.clone(), r.business_date))
            .collect();
        if !w.is_empty() {
            apply_write_offs(tx, &w, last_closed).await?;
        }
    }
    write_daily(tx, &daily).await
}

pub(super) async fn mark_loss(
    tx: &mut PgConnection,
    actions: &[(usize, &LoanAction)],
    out: &mut BatchOutcome,
) -> Result<(), WriteError> {
    if actions.is_empty() {
        return Ok(());
    }
    let known = known_loans(tx, actions).await?;
    let (ids, dates) = reject_unknown(actions, &known, out);
    // Loss is the lender's decision; the day-end of that date classifies the loan as Loss.
    sqlx::query!(
        "UPDATE loan_status s SET loss_on = least(coalesce(s.loss_on, u.on_date), u.on_date) \
         FROM unnest($1::text[], $2::date[]) AS u(loan_id, on_date) \
         WHERE s.loan_id = u.loan_id",
        &ids,
        &dates
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}
