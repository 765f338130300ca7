//! Loan events: dispatch by kind, unknown loans, and the day-end ticks that close a day.

use super::batch::{ApplyContext, BatchOutcome, WriteError};
use super::disburse::disburse;
use super::payments::{receive_payments, write_daily, Arrival, Daily};
use super::write_offs::{mark_loss, release_pending, write_off};
use crate::dayend::{self};
use crate::message::Incoming;
use chrono::NaiveDate;
use risk_core::dpd::PrepaymentMode;
use schemas::LoanEventBody;
use sqlx::PgConnection;
use std::collections::{HashMap, HashSet};

/// A day-end tick of the batch: (partition, business date).
pub(super) type Tick = (i32, NaiveDate);

/// Apply the batch's loan events; returns its day-end ticks, for `record_ticks`.
pub(super) async fn apply_events(
    tx: &mut PgConnection,
    events: &[(usize, &Incoming, &schemas::LoanEvent)],
    mode: PrepaymentMode,
    out: &mut BatchOutcome,
) -> Result<Vec<Tick>, WriteError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    // Event ids: first occurrence in the batch, and not applied before.
    let mut seen = HashSet::new();
    let mut candidates = Vec::new();
    let mut ticks = Vec::new();
    for &(i, m, e) in events {
        if let LoanEventBody::BusinessDayClosed(b) = &e.body {
            ticks.push((m.partition, b.business_date));
            continue;
        }
        if seen.insert(e.event_id.as_str()) {
            candidates.push((i, e));
        } else {
            out.duplicates += 1;
        }
    }
    let ids: Vec<String> = candidates.iter().map(|(_, e)| e.event_id.clone()).collect();
    let fresh: HashSet<String> = if ids.is_empty() {
        HashSet::new()
    } else {
        sqlx::query_scalar!(
            "INSERT INTO applied_events (event_id) SELECT unnest($1::text[]) \
             ON CONFLICT DO NOTHING RETURNING event_id",
            &ids
        )
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect()
    };
    let last_closed: Option<NaiveDate> = sqlx::query_scalar!(
        "SELECT max(business_date) FROM business_days WHERE closed_at IS NOT NULL"
    )
    .fetch_one(&mut *tx)
    .await?;
    let mut disbursals = Vec::new();
    let mut payments = Vec::new();
    // Payments of a loan after its write-off in the same batch: applied after the write-off.
    let mut after_write_off = Vec::new();
    let mut written_off: HashSet<&str> = HashSet::new();
    let mut write_offs = Vec::new();
    let mut losses = Vec::new();
    for (i, e) in candidates {
        if !fresh.contains(&e.event_id) {
            out.duplicates += 1;
            continue;
        }
        if last_closed.is_some_and(|c| e.body.date() <= c) {
            out.late += 1;
        }
        match &e.body {
            LoanEventBody::LoanDisbursed(d) => disbursals.push((i, d)),
            LoanEventBody::PaymentReceived(p) if written_off.contains(p.loan_id.as_str()) => {
                after_write_off.push((i, p));
            }
            LoanEventBody::PaymentReceived(p) => payments.push((i, p)),
            LoanEventBody::LoanWrittenOff(a) => {
                written_off.insert(a.loan_id.as_str());
                write_offs.push((i, a));
            }
            LoanEventBody::LoanMarkedLoss(a) => losses.push((i, a)),
            LoanEventBody::BusinessDayClosed(_) => {}
        }
    }
    out.applied +=
        disbursals.len() + payments.len() + after_write_off.len() + write_offs.len() + losses.len();
    // Each loan's payments and write-off keep their order in the stream.
    let mut daily = Daily::new();
    disburse(tx, &disbursals, out).await?;
    let partition_of: HashMap<usize, i32> =
        events.iter().map(|(i, m, _)| (*i, m.partition)).collect();
    let at = Arrival {
        last_closed,
        partition_of: &partition_of,
    };
    receive_payments(tx, &payments, &at, mode, &mut daily, out).await?;
    write_off(tx, &write_offs, &at, out).await?;
    receive_payments(tx, &after_write_off, &at, mode, &mut daily, out).await?;
    mark_loss(tx, &losses, out).await?;
    write_daily(tx, &daily).await?;
    Ok(ticks)
}

/// Record the batch's day-end ticks, running the day-end of each day they complete.
///
/// A batch holds at most one tick per partition (a partition's later messages wait until its
/// day closes), all of open days. Each ticking partition's waiting events are applied first,
/// before any day's row is locked, so two transactions apply theirs side by side and take the
/// shared rows in one order (repayment counters, then the day); the tick that completes a day
/// is counted once every other partition's is committed, with what it applied.
pub(super) async fn record_ticks(
    tx: &mut PgConnection,
    ctx: &ApplyContext,
    ticks: &[Tick],
    out: &mut BatchOutcome,
) -> Result<(), WriteError> {
    let mode = ctx.domain.servicing.prepayment;
    let mut closed_dates = HashSet::new();
    let mut open = Vec::with_capacity(ticks.len());
    for &(partition, date) in ticks {
        out.applied += 1;
        // A tick of a day already closed (a replay) changes nothing.
        let closed = sqlx::query_scalar!(
            "SELECT closed_at IS NOT NULL AS \"closed!\" FROM business_days \
             WHERE business_date = $1",
            date
        )
        .fetch_optional(&mut *tx)
        .await?;
        if closed == Some(true) {
            closed_dates.insert(date);
            continue;
        }
        // The partition has delivered the day's tick: nothing more of its loans is applied
        // until the day closes, so what waited for this day on it is applied now.
        release_pending(tx, date, mode, Some(partition)).await?;
        open.push((partition, date));
    }
    for (partition, date) in open {
        if record_tick(tx, ctx, partition, date, out).await? {
            closed_dates.insert(date);
        }
    }
    for &(partition, date) in ticks {
        out.ticks
            .push((partition, date, closed_dates.contains(&date)));
    }
    Ok(())
}

/// Record partition `partition`'s tick for `date` (its waiting events already applied); run the
/// day-end when it is the last one. Returns whether the day is closed.
pub(super) async fn record_tick(
    tx: &mut PgConnection,
    ctx: &ApplyContext,
    partition: i32,
    date: NaiveDate,
    out: &mut BatchOutcome,
) -> Result<bool, WriteError> {
    let row = sqlx::query!(
        "INSERT INTO business_days AS b (business_date, partitions, ticks) \
         VALUES ($1, $2, ARRAY[$3::int4]) \
         ON CONFLICT (business_date) DO UPDATE SET ticks = CASE \
           WHEN $3 = ANY(b.ticks) THEN b.ticks ELSE b.ticks || $3 END \
         RETURNING cardinality(ticks) AS \"ticked!\", partitions, \
           closed_at IS NOT NULL AS \"closed!\"",
        date,
        ctx.event_partitions,
        partition
    )
    .fetch_one(&mut *tx)
    .await?;
    let (ticked, partitions, closed) = (row.ticked, row.partitions, row.closed);
    if closed {
        return Ok(true);
    }
    if ticked < partitions {
        return Ok(false);
    }
    release_pending(tx, date, ctx.domain.servicing.prepayment, None).await?;
    let report = dayend::close_day(tx, date, &ctx.domain).await?;
    out.closed.push(report);
    Ok(true)
}
