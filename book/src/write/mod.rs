//! One batch of consumed messages applied to the book in one transaction, with the offsets.
//!
//! Within the transaction the batch's partitions are locked in `consumer_offsets` first; a
//! message below its partition's stored offset was applied before (a redelivery after a crash,
//! or by a previous owner of the partition) and is skipped. Customers, applications and
//! decisions are upserts by their natural key; loan events are applied once per event id.
//! Everything is set-based: one statement per kind of change, whatever the batch size.
//!
//! # Layout
//! - `batch`: the context and outcome of a batch, [`WriteError`], and the shared helpers.
//! - [`offsets`]: the consumed offsets kept with the book.
//! - `customers`, `applications`: registrations and changes; applications and decisions.
//! - `events`: loan events dispatched by kind, and the day-end ticks.
//! - `disburse`, `payments`, `cursors`, `write_offs`, `known`: disbursals; payments allocated
//!   through the schedule; the stored repayment cursors; write-offs and losses; loans known.
//! - `symbols`: the schema symbols stored for enumerations.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use schemas::{CustomerRegistered, CustomerUpdated, Decision, LoanApplication, LoanEventBody};
use sqlx::PgConnection;

use crate::message::{Incoming, Payload, Source};

mod applications;
mod batch;
mod cursors;
mod customers;
mod disburse;
mod events;
mod known;
pub mod offsets;
mod payments;
mod symbols;
mod write_offs;

use self::applications::{insert_applications, insert_decisions};
pub use self::batch::{ApplyContext, BatchOutcome, WriteError};
use self::customers::{apply_customer_updates, insert_customers, upsert_customer_risk};
use self::events::{apply_events, record_ticks};
use self::offsets::lock_offsets;
pub use symbols::{employment_symbol, outcome_symbol, residence_symbol};

/// Apply `batch` inside the caller's transaction. The caller commits (after dead-lettering the
/// rejected messages) or rolls back.
pub async fn apply_batch(
    tx: &mut PgConnection,
    ctx: &ApplyContext,
    batch: &[Incoming],
) -> Result<BatchOutcome, WriteError> {
    let mut out = BatchOutcome::default();
    let stored = lock_offsets(tx, &ctx.group, batch).await?;

    // Events partitions that delivered the tick of a day not yet closed wait for the day-end:
    // their later messages belong to the next day and are held back (fetched again later).
    let mut open: HashMap<i32, NaiveDate> = HashMap::new();
    for day in
        sqlx::query!("SELECT business_date, ticks FROM business_days WHERE closed_at IS NULL")
            .fetch_all(&mut *tx)
            .await?
    {
        for p in day.ticks {
            open.entry(p).or_insert(day.business_date);
        }
    }

    // Keep the messages at or above the stored offsets; compute the next offsets.
    let mut next: BTreeMap<(String, i32), i64> = BTreeMap::new();
    let mut kept: Vec<(usize, &Incoming)> = Vec::with_capacity(batch.len());
    for (i, m) in batch.iter().enumerate() {
        let key = (m.topic.clone(), m.partition);
        let from = stored.get(&key).copied().unwrap_or(0);
        let n = next.entry(key).or_insert(from);
        if m.offset < from {
            out.skipped += 1;
            continue;
        }
        if m.source == Source::Events {
            if let Some(date) = open.get(&m.partition) {
                out.held.push((m.partition, *date));
                continue;
            }
        }
        *n = (*n).max(m.offset + 1);
        kept.push((i, m));
        if let Ok(Payload::Event(e)) = &m.payload {
            if let LoanEventBody::BusinessDayClosed(b) = &e.body {
                open.insert(m.partition, b.business_date);
            }
        }
    }
    out.held.sort_unstable();
    out.held.dedup();

    let mut customers: Vec<(usize, &CustomerRegistered)> = Vec::new();
    let mut updates: Vec<(usize, &CustomerUpdated)> = Vec::new();
    let mut applications: Vec<(usize, &LoanApplication)> = Vec::new();
    let mut decisions: Vec<(usize, &Decision)> = Vec::new();
    let mut events: Vec<(usize, &Incoming, &schemas::LoanEvent)> = Vec::new();
    for (i, m) in &kept {
        match &m.payload {
            Err(r) => out.rejected.push((*i, r.clone())),
            Ok(Payload::Customer(c)) => customers.push((*i, c)),
            Ok(Payload::CustomerUpdate(u)) => updates.push((*i, u)),
            Ok(Payload::Application(a)) => applications.push((*i, a)),
            Ok(Payload::Decision(d)) => decisions.push((*i, d)),
            Ok(Payload::Event(e)) => events.push((*i, m, e)),
        }
    }
    let records = customers.len() + updates.len() + applications.len() + decisions.len();
    let refused_before = out.rejected.len();
    insert_customers(tx, &customers, &mut out).await?;
    apply_customer_updates(tx, &updates, &mut out).await?;
    insert_applications(tx, &applications, &mut out).await?;
    let risk = insert_decisions(tx, &decisions, &mut out).await?;
    out.applied += records - (out.rejected.len() - refused_before);
    let ticks = apply_events(tx, &events, ctx.domain.servicing.prepayment, &mut out).await?;
    // Rows other transactions may also write (a customer's decisions arrive on several
    // partitions; the day row is shared) are written last, in a fixed order, so concurrent
    // batches hold them only briefly and never wait on each other in a cycle.
    upsert_customer_risk(tx, &risk).await?;
    record_ticks(tx, ctx, &ticks, &mut out).await?;

    let (topics, partitions, offsets): (Vec<String>, Vec<i32>, Vec<i64>) = next
        .iter()
        .map(|((t, p), o)| (t.clone(), *p, *o))
        .fold((vec![], vec![], vec![]), |mut acc, (t, p, o)| {
            acc.0.push(t);
            acc.1.push(p);
            acc.2.push(o);
            acc
        });
    sqlx::query!(
        "UPDATE consumer_offsets o SET next_offset = n.next_offset, updated_at = now() \
         FROM unnest($2::text[], $3::int4[], $4::int8[]) AS n(topic, partition, next_offset) \
         WHERE o.consumer_group = $1 AND o.topic = n.topic AND o.partition = n.partition \
           AND o.next_offset <> n.next_offset",
        &ctx.group,
        &topics,
        &partitions,
        &offsets
    )
    .execute(&mut *tx)
    .await?;
    out.offsets = next.into_iter().map(|((t, p), o)| (t, p, o)).collect();
    Ok(out)
}
