//! The consumer loop's state: the stage, its clients, the day barrier's held partitions and
//! the run's totals. Its methods live by job in `batches` and `barrier`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use book::message::{Incoming, Source};
use chrono::NaiveDate;
use serde::Serialize;
use sqlx::PgPool;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use super::commit::Committer;
use super::context::AggregatorConsumer;
use super::settings::AggregatorService;
use crate::metrics::Metrics;

/// Totals of a run.
#[derive(Debug, Default, Clone, Serialize)]
pub struct RunTotals {
    /// Messages applied.
    pub applied: u64,
    /// Messages skipped (already applied).
    pub skipped: u64,
    /// Messages dead-lettered.
    pub dead_lettered: u64,
    /// Batches committed.
    pub batches: u64,
    /// Day-ends run by this process.
    pub day_ends: u64,
}

pub(super) struct Loop {
    pub(super) svc: AggregatorService,
    pub(super) pool: PgPool,
    pub(super) metrics: Metrics,
    pub(super) handle: Handle,
    pub(super) consumer: AggregatorConsumer,
    pub(super) committer: Arc<Committer>,
    pub(super) sources: HashMap<String, Source>,
    /// Events partitions waiting at a day-end tick, with the date they wait for.
    pub(super) waiting: HashMap<i32, NaiveDate>,
    /// Messages of waiting partitions, in order, kept until their day closes.
    pub(super) held: HashMap<i32, VecDeque<Incoming>>,
    /// Messages released by a closed day, delivered before anything newly polled.
    pub(super) replay: VecDeque<Incoming>,
    pub(super) totals: RunTotals,
    pub(super) shutdown: CancellationToken,
}
