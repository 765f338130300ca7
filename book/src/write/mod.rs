//! One batch of consumed messages applied to the book in one transaction, with the offsets.
//!
//! Within the transaction the batch's partitions are locked in `consumer_offsets` first; a
//! message below its partition's stored offset was applied before (a redelivery after a crash,
//! or by a previous owner of the partition) and is skipped. Customers, applications and
//! decisions are upserts by their natural key; loan events are applied once per event id.
//! Everything is set-based: one statement per kind of change, whatever the batch size.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::NaiveDate;
use risk_core::settings::DomainSettings;
use schemas::{CustomerRegistered, CustomerUpdated, Decision, LoanApplication, LoanEventBody};
use sqlx::PgConnection;

use crate::dayend::DayEndReport;
use crate::message::{Incoming, Payload, Rejection, Source};

mod applications;
mod cursors;
mod customers;
mod disburse;
mod events;
pub mod offsets;
mod payments;
mod symbols;
mod write_offs;

use self::applications::{insert_applications, insert_decisions};
use self::customers::{apply_customer_updates, insert_customers, upsert_customer_risk};
use self::events::{apply_events, record_ticks};
use self::offsets::lock_offsets;
pub use symbols::{employment_symbol, outcome_symbol, residence_symbol};

/// What a batch needs to know besides its messages.
#[derive(Debug, Clone)]
pub struct ApplyContext {
    /// Consumer group whose offsets are kept.
    pub group: String,
    /// Partitions of the events topic: a day closes when every one has delivered its tick.
    pub event_partitions: i32,
    /// Domain settings (day-end thresholds and rates).
    pub domain: DomainSettings,
}

/// What applying a batch did.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    /// Messages applied (including ones that changed nothing, such as identical upserts).
    pub applied: usize,
    /// Messages below the stored offsets (applied before).
    pub skipped: usize,
    /// Loan events whose event id was applied before.
    pub duplicates: usize,
    /// Messages refused: index into the batch and why.
    pub rejected: Vec<(usize, Rejection)>,
    /// Day-end ticks recorded: (partition, business date, whether the day is now closed).
    pub ticks: Vec<(i32, NaiveDate, bool)>,
    /// Day-ends run by this batch.
    pub closed: Vec<DayEndReport>,
    /// Loan events dated on or before the last closed business date.
    pub late: usize,
    /// Next offsets per (topic, partition) after this batch.
    pub offsets: Vec<(String, i32, i64)>,
    /// Events partitions held at a day-end tick, with the date they wait for.
    pub held: Vec<(i32, NaiveDate)>,
}

/// Apply `batch` inside the caller's transaction. The caller commits (after dead-lettering the
/// rejected messages) or rolls back.
pub async fn apply_batch(
    tx: &mut PgConnection,
    ctx: &ApplyContext,
    batch: &[Incoming],
) -> Result<BatchOutcome, sqlx::Error> {
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

/// Records are append-only: the first record of each key in the batch is kept; a later one
/// that is identical changes nothing, a different one is refused as a conflict.
fn first_by_key<'a, T: PartialEq, K: std::hash::Hash + Eq>(
    items: &[(usize, &'a T)],
    key: impl Fn(&T) -> K,
    what: &str,
    out: &mut BatchOutcome,
) -> Vec<(usize, &'a T)> {
    let mut index: HashMap<K, usize> = HashMap::new();
    let mut kept: Vec<(usize, &'a T)> = Vec::new();
    for &(i, item) in items {
        match index.entry(key(item)) {
            std::collections::hash_map::Entry::Occupied(e) => {
                if kept[*e.get()].1 != item {
                    out.rejected.push((i, conflict(what)));
                }
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(kept.len());
                kept.push((i, item));
            }
        }
    }
    kept
}

/// A record whose id is stored with other contents: history is never rewritten.
fn conflict(what: &str) -> Rejection {
    Rejection {
        class: "conflict",
        message: format!(
            "{what} is already stored with other contents; a correction is a new record"
        ),
    }
}

/// Refuse the records whose key is in `stored_differently`; the rest go on.
fn drop_conflicts<'a, T>(
    rows: Vec<(usize, &'a T)>,
    key: impl Fn(&T) -> &str,
    stored_differently: &HashSet<String>,
    what: &str,
    out: &mut BatchOutcome,
) -> Vec<(usize, &'a T)> {
    rows.into_iter()
        .filter(|(i, r)| {
            let clash = stored_differently.contains(key(r));
            if clash {
                out.rejected.push((*i, conflict(what)));
            }
            !clash
        })
        .collect()
}
