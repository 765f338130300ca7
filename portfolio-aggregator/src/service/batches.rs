//! Batches: collected from the consumer, committed (retried while the database is down,
//! split to find a message the database refuses), and counted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use rdkafka::consumer::Consumer;
use rdkafka::{Message, Offset, TopicPartitionList};
use schemas::LoanEventBody;

use super::error::AggregatorError;
use super::error::CommitError;
use super::state::Loop;
use book::message::{parse, Incoming, Payload, Rejection, Source};
use book::write::BatchOutcome;

impl Loop {
    pub(super) fn run(&mut self) -> Result<(), AggregatorError> {
        let linger = Duration::from_millis(self.svc.settings.linger_ms);
        let batch_size = self.svc.settings.batch_size.max(1);
        let mut pending: Vec<Incoming> = Vec::with_capacity(batch_size);
        let mut first_at: Option<Instant> = None;
        let mut last_wait_check = Instant::now();
        let mut last_reconcile = Instant::now();
        while !self.shutdown.is_cancelled() {
            if !self.waiting.is_empty()
                && last_wait_check.elapsed() >= Duration::from_millis(20)
                && pending.is_empty()
            {
                last_wait_check = Instant::now();
                self.release_closed_days()?;
            }
            if last_reconcile.elapsed() >= Duration::from_secs(1) && pending.is_empty() {
                last_reconcile = Instant::now();
                self.reconcile_pauses();
            }
            let mut barrier = false;
            if let Some(m) = self.next_message(Duration::from_millis(10)) {
                if let Some(date) = tick_date(&m) {
                    // Later messages of this partition belong to the next day: hold them, and
                    // flush as soon as every events partition of this consumer is at the tick.
                    self.waiting.insert(m.partition, date);
                    barrier = self.all_at_barrier();
                }
                pending.push(m);
                first_at.get_or_insert_with(Instant::now);
            }
            let due = first_at.is_some_and(|t| t.elapsed() >= linger);
            if barrier || pending.len() >= batch_size || (due && !pending.is_empty()) {
                self.flush(&mut pending)?;
                first_at = None;
            }
        }
        if !pending.is_empty() {
            self.flush(&mut pending)?;
        }
        Ok(())
    }

    /// The next message: released ones first, then the consumer's. A message of a partition
    /// waiting at a day-end is held until the day closes.
    pub(super) fn next_message(&mut self, timeout: Duration) -> Option<Incoming> {
        loop {
            let m = match self.replay.pop_front() {
                Some(m) => m,
                None => self.poll(timeout)?,
            };
            if m.source == Source::Events && self.waiting.contains_key(&m.partition) {
                self.held.entry(m.partition).or_default().push_back(m);
                continue;
            }
            return Some(m);
        }
    }

    /// One message from the consumer, decoded; `None` on timeout or error.
    pub(super) fn poll(&mut self, timeout: Duration) -> Option<Incoming> {
        match self.consumer.poll(timeout)? {
            Err(error) => {
                tracing::warn!(%error, "Kafka consumer error");
                None
            }
            Ok(m) => {
                let source = *self.sources.get(m.topic())?;
                let bytes = m.payload().unwrap_or_default().to_vec();
                let payload = if bytes.is_empty() {
                    Err(Rejection {
                        class: "empty",
                        message: "message has no payload".into(),
                    })
                } else {
                    parse(source, &bytes)
                };
                Some(Incoming {
                    source,
                    topic: m.topic().to_string(),
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    bytes,
                    payload,
                })
            }
        }
    }
    /// Apply and commit `pending` in up to `concurrent_transactions` transactions at once, one
    /// per share of its partitions; on success the batch is cleared. A share whose transaction
    /// fails goes through `flush_one` (retries, splitting, dead letters); a share that committed
    /// stays committed (its offsets are stored with it).
    pub(super) fn flush(&mut self, pending: &mut Vec<Incoming>) -> Result<(), AggregatorError> {
        let lanes = self.svc.settings.concurrent_transactions.max(1);
        let mut shares: Vec<Vec<Incoming>> = (0..lanes).map(|_| Vec::new()).collect();
        for m in pending.drain(..) {
            let lane = usize::try_from(m.partition).unwrap_or(0) % lanes;
            shares[lane].push(m);
        }
        shares.retain(|s| !s.is_empty());
        let started = Instant::now();
        let tasks: Vec<_> = shares
            .into_iter()
            .map(|share| {
                let committer = Arc::clone(&self.committer);
                self.handle.spawn(async move {
                    let result = committer.commit(&share).await;
                    (share, result)
                })
            })
            .collect();
        for task in tasks {
            let (mut share, result) = self.handle.block_on(task)?;
            match result {
                Ok(outcome) => self.after_commit(&share, outcome, started),
                Err(error) => {
                    tracing::warn!(
                        error = %runtime::telemetry::chain(&error),
                        size = share.len(),
                        "A share of the batch failed; applying it alone"
                    );
                    self.flush_one(&mut share)?;
                }
            }
        }
        Ok(())
    }

    /// Apply and commit `pending` in one transaction, retrying while the database is
    /// unreachable; on success the batch is cleared.
    pub(super) fn flush_one(&mut self, pending: &mut Vec<Incoming>) -> Result<(), AggregatorError> {
        let mut backoff = Duration::from_millis(100);
        let mut paused_all: Option<TopicPartitionList> = None;
        loop {
            let started = Instant::now();
            match self.commit_batch(pending) {
                Ok(outcome) => {
                    if let Some(tpl) = paused_all.take() {
                        let _ = self.consumer.resume(&tpl);
                        // Keep waiting partitions paused.
                        for (p, d) in self.waiting.clone() {
                            self.pause_waiting(p, d);
                        }
                    }
                    self.after_commit(pending, outcome, started);
                    pending.clear();
                    return Ok(());
                }
                Err(error @ CommitError::Data { .. }) if pending.len() > 1 => {
                    // A message the database refuses: find it by halving, dead-letter it alone.
                    tracing::warn!(%error, size = pending.len(), "Batch refused; splitting");
                    let mut second = pending.split_off(pending.len() / 2);
                    self.flush_one(pending)?;
                    self.flush_one(&mut second)?;
                    pending.clear();
                    return Ok(());
                }
                Err(CommitError::Data { class, message }) => {
                    tracing::warn!(class, %message, "Message cannot be written; dead-lettering");
                    if let Some(m) = pending.first_mut() {
                        m.payload = Err(Rejection { class, message });
                    }
                }
                Err(error) => {
                    self.metrics.retries.inc();
                    tracing::warn!(error = %runtime::telemetry::chain(&error), retry_in_ms = backoff.as_millis() as u64, "Cannot commit the batch; retrying");
                    if paused_all.is_none() {
                        if let Ok(tpl) = self.consumer.assignment() {
                            let _ = self.consumer.pause(&tpl);
                            paused_all = Some(tpl);
                        }
                    }
                    let until = Instant::now() + backoff;
                    while Instant::now() < until {
                        if self.shutdown.is_cancelled() {
                            return Err(AggregatorError::Uncommitted(error));
                        }
                        // Keep the group membership; buffered messages join the batch.
                        if let Some(m) = self.next_message(Duration::from_millis(50)) {
                            pending.push(m);
                        }
                    }
                    backoff =
                        (backoff * 2).min(Duration::from_millis(self.svc.settings.max_backoff_ms));
                }
            }
        }
    }

    pub(super) fn commit_batch(&self, batch: &[Incoming]) -> Result<BatchOutcome, CommitError> {
        self.handle.block_on(self.committer.commit(batch))
    }

    pub(super) fn after_commit(
        &mut self,
        batch: &[Incoming],
        outcome: BatchOutcome,
        started: Instant,
    ) {
        let m = &self.metrics;
        m.batch_seconds.observe(started.elapsed().as_secs_f64());
        m.batch_size.observe(batch.len() as f64);
        m.skipped
            .inc_by((outcome.skipped + outcome.duplicates) as u64);
        m.late_events.inc_by(outcome.late as u64);
        let rejected: std::collections::HashSet<usize> =
            outcome.rejected.iter().map(|(i, _)| *i).collect();
        for (i, msg) in batch.iter().enumerate() {
            if !rejected.contains(&i) && msg.payload.is_ok() {
                m.applied
                    .with_label_values(&[source_label(msg.source)])
                    .inc();
            }
        }
        for (_, r) in &outcome.rejected {
            m.dead_lettered.with_label_values(&[r.class]).inc();
        }
        for report in &outcome.closed {
            m.day_end_seconds.observe(report.seconds);
            m.npa_ratio.set(report.gross_npa_ratio);
            m.last_business_day.set(
                report
                    .business_date
                    .signed_duration_since(NaiveDate::default())
                    .num_days(),
            );
            tracing::info!(date = %report.business_date, loans = report.loans_aged,
                changed = report.loans_changed, transitions = report.transitions,
                seconds = report.seconds, npa_ratio = report.gross_npa_ratio, "Day closed");
        }
        self.totals.applied += outcome.applied as u64;
        self.totals.skipped += (outcome.skipped + outcome.duplicates) as u64;
        self.totals.dead_lettered += outcome.rejected.len() as u64;
        self.totals.batches += 1;
        self.totals.day_ends += outcome.closed.len() as u64;
        // Kafka's committed offsets follow the book's, for lag monitoring only.
        let mut tpl = TopicPartitionList::new();
        for (topic, partition, next) in &outcome.offsets {
            let _ = tpl.add_partition_offset(topic, *partition, Offset::Offset(*next));
        }
        if let Err(error) = self.consumer.store_offsets(&tpl) {
            tracing::debug!(%error, "Cannot store offsets for the lag monitor");
        }
        // Messages of a held partition at or beyond its next offset were not applied: they go
        // before anything held since (they are older).
        let events = self.svc.topics.events.clone();
        for (partition, date) in &outcome.held {
            // The book is authoritative: the partition waits for the day it has ticked in
            // PostgreSQL (a later tick seen in this batch is among the held messages).
            self.waiting.insert(*partition, *date);
            let next = outcome
                .offsets
                .iter()
                .find(|(t, p, _)| *t == events && p == partition)
                .map_or(0, |(_, _, o)| *o);
            let older: Vec<Incoming> = batch
                .iter()
                .filter(|m| {
                    m.source == Source::Events && m.partition == *partition && m.offset >= next
                })
                .cloned()
                .collect();
            let queue = self.held.entry(*partition).or_default();
            for m in older.into_iter().rev() {
                queue.push_front(m);
            }
        }
        // Partitions whose day closed go on at once; the others pause until it closes.
        let closed: std::collections::HashSet<NaiveDate> =
            outcome.ticks.iter().filter(|t| t.2).map(|t| t.1).collect();
        type Waiting = Vec<(i32, NaiveDate)>;
        let (ready, blocked): (Waiting, Waiting) = self
            .waiting
            .iter()
            .map(|(p, d)| (*p, *d))
            .partition(|(_, d)| closed.contains(d));
        for (p, d) in blocked {
            self.pause_waiting(p, d);
        }
        let ready: Vec<i32> = ready.into_iter().map(|(p, _)| p).collect();
        if let Err(error) = self.resume_from_book(&ready) {
            tracing::warn!(error = %runtime::telemetry::chain(&error), "Cannot resume after the day-end");
        }
    }
}

fn tick_date(m: &Incoming) -> Option<NaiveDate> {
    match &m.payload {
        Ok(Payload::Event(e)) => match &e.body {
            LoanEventBody::BusinessDayClosed(b) => Some(b.business_date),
            _ => None,
        },
        _ => None,
    }
}

fn source_label(s: Source) -> &'static str {
    match s {
        Source::Customers => "customers",
        Source::Applications => "applications",
        Source::Decisions => "decisions",
        Source::Events => "events",
    }
}
