//! What a batch is applied with and what it did, the typed failures of a write, and the
//! helpers every kind of record shares (first record per key, conflicts refused).

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use risk_core::settings::DomainSettings;

use crate::dayend::DayEndReport;
use crate::message::Rejection;

/// Why a batch could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The database failed or refused a statement.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// A record could not be written as JSON.
    #[error("a record could not be written as JSON")]
    Json(#[from] serde_json::Error),
    /// A loan's repayment cursor needed instalments after its schedule was read to its end
    /// (a defect: the record is dead-lettered, never retried forever).
    #[error("a payment's repayment cursor")]
    Cursor(#[from] risk_core::dpd::NeedsRest),
}

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

/// Records are append-only: the first record of each key in the batch is kept; a later one
/// that is identical changes nothing, a different one is refused as a conflict.
pub(super) fn first_by_key<'a, T: PartialEq, K: std::hash::Hash + Eq>(
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
pub(super) fn conflict(what: &str) -> Rejection {
    Rejection {
        class: "conflict",
        message: format!(
            "{what} is already stored with other contents; a correction is a new record"
        ),
    }
}

/// Refuse the records whose key is in `stored_differently`; the rest go on.
pub(super) fn drop_conflicts<'a, T>(
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
