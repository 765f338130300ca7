//! `credit-risk aggregate`: the consumer loop that keeps the book.
//!
//! The loop runs on a thread of its own with a `BaseConsumer`, so the rebalance callback can
//! read the stored offsets from PostgreSQL before the partitions start fetching. Messages are
//! batched (size or timer); a batch, its dead letters and its offsets commit together. A
//! day-end tick ends its batch at once: its partition pauses until every partition of the
//! events topic has delivered the tick and the day is closed, so no event of the next day is
//! applied before the day-end of this one. While PostgreSQL is unreachable the consumer
//! pauses, keeps its group membership, and retries the same batch with backoff.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use risk_core::settings::DomainSettings;
use runtime::settings::Topics;
use schemas::LoanEventBody;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use crate::apply::{apply_batch, ApplyContext, BatchOutcome};
use crate::message::{parse, Incoming, Payload, Rejection, Source};
use crate::metrics::Metrics;

/// Aggregator settings (`[aggregator]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AggregatorSettings {
    /// Consumer group shared by all aggregator processes.
    pub group_id: String,
    /// Most messages per batch (5,000: amortises the transaction; bounds memory).
    pub batch_size: usize,
    /// Longest wait to fill a batch once one message is in hand, ms.
    pub linger_ms: u64,
    /// Longest backoff between attempts while the database is unreachable, ms.
    pub max_backoff_ms: u64,
    /// Transactions a batch is applied in at once (2: PostgreSQL works on two cores). The
    /// batch is split by partition number; each part commits its own partitions' changes and
    /// offsets, so each is exactly-once on its own. 1 applies a batch in one transaction.
    pub concurrent_transactions: usize,
    /// Where `/metrics` is served.
    pub metrics_bind: String,
}

impl Default for AggregatorSettings {
    fn default() -> Self {
        Self {
            group_id: "credit-risk-aggregator".into(),
            batch_size: 5_000,
            linger_ms: 50,
            max_backoff_ms: 5_000,
            concurrent_transactions: 2,
            metrics_bind: "127.0.0.1:9465".into(),
        }
    }
}

/// Everything the service needs.
#[derive(Debug, Clone)]
pub struct AggregatorService {
    /// Bootstrap servers.
    pub brokers: String,
    /// Topic names.
    pub topics: Topics,
    /// Consumer session timeout, ms.
    pub session_timeout_ms: u32,
    /// Stage settings.
    pub settings: AggregatorSettings,
    /// Domain settings.
    pub domain: DomainSettings,
}

/// Why the aggregator stopped.
#[derive(Debug, thiserror::Error)]
pub enum AggregatorError {
    /// Kafka client failure.
    #[error("Kafka: {0}")]
    Kafka(String),
    /// Database failure that retrying cannot fix.
    #[error("PostgreSQL: {0}")]
    Database(String),
    /// Metrics endpoint failure.
    #[error("metrics: {0}")]
    Metrics(String),
}

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

/// Consumer context: seeks to the offsets stored in PostgreSQL on assignment; lag metric.
struct AggregatorContext {
    pool: PgPool,
    handle: Handle,
    group: String,
    metrics: Metrics,
}

impl ClientContext for AggregatorContext {
    fn stats(&self, statistics: Statistics) {
        self.metrics
            .consumer_lag
            .set(runtime::kafka::consumer_lag(&statistics));
    }
}

impl ConsumerContext for AggregatorContext {
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Assign(tpl) = rebalance else {
            tracing::info!(?rebalance, "Rebalance");
            return;
        };
        let elements = tpl.elements();
        let topics: Vec<String> = elements.iter().map(|e| e.topic().to_string()).collect();
        let partitions: Vec<i32> = elements.iter().map(|e| e.partition()).collect();
        let stored = self.handle.block_on(
            sqlx::query!(
                "SELECT o.topic, o.partition, o.next_offset FROM consumer_offsets o \
                 JOIN unnest($2::text[], $3::int4[]) AS k(t, p) \
                   ON o.topic = k.t AND o.partition = k.p \
                 WHERE o.consumer_group = $1",
                &self.group,
                &topics,
                &partitions
            )
            .fetch_all(&self.pool),
        );
        match stored {
            Ok(rows) => {
                let offsets: HashMap<(String, i32), i64> = rows
                    .into_iter()
                    .map(|r| ((r.topic, r.partition), r.next_offset))
                    .collect();
                let mut with_offsets = TopicPartitionList::new();
                for (t, p) in topics.iter().zip(&partitions) {
                    let offset = offsets
                        .get(&(t.clone(), *p))
                        .map_or(Offset::Stored, |o| Offset::Offset(*o));
                    if let Err(error) = with_offsets.add_partition_offset(t, *p, offset) {
                        tracing::warn!(%error, "Cannot set a start offset");
                    }
                }
                if let Err(error) = consumer.assign(&with_offsets) {
                    tracing::warn!(%error, "Cannot seek to the stored offsets");
                }
                tracing::info!(
                    partitions = partitions.len(),
                    from_database = offsets.len(),
                    "Assigned; starting from the offsets stored with the book"
                );
            }
            Err(error) => {
                // Safe either way: messages below the stored offsets are skipped in the batch
                // transaction.
                tracing::warn!(%error, "Cannot read stored offsets; starting from Kafka's");
            }
        }
    }
}

type AggregatorConsumer = BaseConsumer<AggregatorContext>;

/// Run the aggregator until `shutdown`. The book's schema must be migrated.
pub async fn run(
    svc: AggregatorService,
    pool: PgPool,
    registry: prometheus::Registry,
    shutdown: CancellationToken,
) -> Result<RunTotals, AggregatorError> {
    let metrics = Metrics::new(&registry).map_err(|e| AggregatorError::Metrics(e.to_string()))?;
    let addr: SocketAddr = svc.settings.metrics_bind.parse().map_err(|_| {
        AggregatorError::Metrics(format!(
            "metrics_bind {} is not an address",
            svc.settings.metrics_bind
        ))
    })?;
    let (bound, _server) = runtime::metrics::serve(registry, addr, shutdown.clone())
        .map_err(|e| AggregatorError::Metrics(e.to_string()))?;
    tracing::info!(%bound, "Serving /metrics");
    run_loop(svc, pool, metrics, shutdown).await
}

/// The loop without the metrics endpoint (tests and benchmarks register their own metrics).
pub async fn run_loop(
    svc: AggregatorService,
    pool: PgPool,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> Result<RunTotals, AggregatorError> {
    let handle = Handle::current();
    tokio::task::spawn_blocking(move || consume(svc, pool, metrics, shutdown, handle))
        .await
        .map_err(|e| AggregatorError::Kafka(format!("consumer thread failed: {e}")))?
}

struct Loop {
    svc: AggregatorService,
    pool: PgPool,
    metrics: Metrics,
    handle: Handle,
    consumer: AggregatorConsumer,
    committer: Arc<Committer>,
    sources: HashMap<String, Source>,
    /// Events partitions waiting at a day-end tick, with the date they wait for.
    waiting: HashMap<i32, NaiveDate>,
    /// Messages of waiting partitions, in order, kept until their day closes.
    held: HashMap<i32, VecDeque<Incoming>>,
    /// Messages released by a closed day, delivered before anything newly polled.
    replay: VecDeque<Incoming>,
    totals: RunTotals,
    shutdown: CancellationToken,
}

fn consume(
    svc: AggregatorService,
    pool: PgPool,
    metrics: Metrics,
    shutdown: CancellationToken,
    handle: Handle,
) -> Result<RunTotals, AggregatorError> {
    let kafka = |e: rdkafka::error::KafkaError| AggregatorError::Kafka(e.to_string());
    let mut config = runtime::kafka::consumer_config(
        &svc.brokers,
        &svc.settings.group_id,
        svc.session_timeout_ms,
    );
    config.set("statistics.interval.ms", "5000");
    // Bounded prefetch per partition: memory stays flat whatever the backlog.
    config.set("queued.max.messages.kbytes", "4096");
    // A partition whose prefetch queue was full is fetched again as soon as it has room, not
    // after librdkafka's default 1 s postponement (which stalls a backlog a second at a time).
    config.set("fetch.queue.backoff.ms", "10");
    // A partition resumed after a day-end fetches again at once rather than after a long poll.
    config.set("fetch.wait.max.ms", "20");
    let consumer: AggregatorConsumer = config
        .create_with_context(AggregatorContext {
            pool: pool.clone(),
            handle: handle.clone(),
            group: svc.settings.group_id.clone(),
            metrics: metrics.clone(),
        })
        .map_err(kafka)?;
    let producer: FutureProducer = runtime::kafka::producer_config(&svc.brokers)
        .create()
        .map_err(kafka)?;
    let metadata = consumer
        .fetch_metadata(Some(&svc.topics.events), Duration::from_secs(10))
        .map_err(kafka)?;
    let event_partitions = metadata
        .topics()
        .first()
        .map_or(0, |t| t.partitions().len());
    if event_partitions == 0 {
        return Err(AggregatorError::Kafka(format!(
            "topic {} does not exist",
            svc.topics.events
        )));
    }
    let t = &svc.topics;
    let sources: HashMap<String, Source> = [
        (t.customers.clone(), Source::Customers),
        (t.applications.clone(), Source::Applications),
        (t.decisions.clone(), Source::Decisions),
        (t.events.clone(), Source::Events),
    ]
    .into_iter()
    .collect();
    let names: Vec<&str> = sources.keys().map(String::as_str).collect();
    consumer.subscribe(&names).map_err(kafka)?;
    let ctx = ApplyContext {
        group: svc.settings.group_id.clone(),
        event_partitions: i32::try_from(event_partitions).unwrap_or(i32::MAX),
        domain: svc.domain.clone(),
    };
    let committer = Arc::new(Committer {
        pool: pool.clone(),
        ctx,
        producer,
        topics: svc.topics.clone(),
    });
    let mut l = Loop {
        svc,
        pool,
        metrics,
        handle,
        consumer,
        committer,
        sources,
        waiting: HashMap::new(),
        held: HashMap::new(),
        replay: VecDeque::new(),
        totals: RunTotals::default(),
        shutdown,
    };
    l.run()?;
    Ok(l.totals)
}

impl Loop {
    fn run(&mut self) -> Result<(), AggregatorError> {
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
    fn next_message(&mut self, timeout: Duration) -> Option<Incoming> {
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
    fn poll(&mut self, timeout: Duration) -> Option<Incoming> {
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

    /// Resume the events partitions whose day has closed, from the offsets in the book.
    fn release_closed_days(&mut self) -> Result<(), AggregatorError> {
        let dates: Vec<NaiveDate> = self.waiting.values().copied().collect();
        let closed: Vec<NaiveDate> = self
            .handle
            .block_on(
                sqlx::query_scalar!(
                    "SELECT business_date FROM business_days \
                     WHERE business_date = ANY($1) AND closed_at IS NOT NULL",
                    &dates
                )
                .fetch_all(&self.pool),
            )
            .unwrap_or_default();
        if closed.is_empty() {
            return Ok(());
        }
        let ready: Vec<i32> = self
            .waiting
            .iter()
            .filter(|(_, d)| closed.contains(d))
            .map(|(p, _)| *p)
            .collect();
        self.resume_from_book(&ready)
    }

    /// Resume waiting partitions: their held messages are delivered first, in order.
    fn resume_from_book(&mut self, partitions: &[i32]) -> Result<(), AggregatorError> {
        if partitions.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for p in partitions {
            tpl.add_partition(&self.svc.topics.events, *p);
            self.waiting.remove(p);
            if let Some(held) = self.held.remove(p) {
                self.replay.extend(held);
            }
        }
        self.consumer
            .resume(&tpl)
            .map_err(|e| AggregatorError::Kafka(format!("cannot resume partitions: {e}")))
    }

    /// Make the consumer's pause state match the loop's: waiting events partitions paused,
    /// every other assigned partition fetching (a rebalance or a failed call can leave them
    /// otherwise).
    fn reconcile_pauses(&mut self) {
        let Ok(assignment) = self.consumer.assignment() else {
            return;
        };
        let events = &self.svc.topics.events;
        let mut pause = TopicPartitionList::new();
        let mut resume = TopicPartitionList::new();
        for e in assignment.elements() {
            if e.topic() == events && self.waiting.contains_key(&e.partition()) {
                pause.add_partition(e.topic(), e.partition());
            } else {
                resume.add_partition(e.topic(), e.partition());
            }
        }
        if pause.count() > 0 {
            let _ = self.consumer.pause(&pause);
        }
        if resume.count() > 0 {
            let _ = self.consumer.resume(&resume);
        }
    }

    /// Whether every events partition assigned to this consumer waits at a day-end tick.
    fn all_at_barrier(&self) -> bool {
        let Ok(assignment) = self.consumer.assignment() else {
            return false;
        };
        let events = &self.svc.topics.events;
        let mut any = false;
        for e in assignment.elements() {
            if e.topic() == events {
                any = true;
                if !self.waiting.contains_key(&e.partition()) {
                    return false;
                }
            }
        }
        any
    }

    fn pause_waiting(&mut self, partition: i32, date: NaiveDate) {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.svc.topics.events, partition);
        if let Err(error) = self.consumer.pause(&tpl) {
            tracing::warn!(%error, "Cannot pause a partition at the day-end tick");
        }
        self.waiting.insert(partition, date);
    }

    /// Apply and commit `pending` in up to `concurrent_transactions` transactions at once, one
    /// per share of its partitions; on success the batch is cleared. A share whose transaction
    /// fails goes through `flush_one` (retries, splitting, dead letters); a share that committed
    /// stays committed (its offsets are stored with it).
    fn flush(&mut self, pending: &mut Vec<Incoming>) -> Result<(), AggregatorError> {
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
            let (mut share, result) = self
                .handle
                .block_on(task)
                .map_err(|e| AggregatorError::Database(format!("batch task failed: {e}")))?;
            match result {
                Ok(outcome) => self.after_commit(&share, outcome, started),
                Err(error) => {
                    tracing::warn!(
                        error = error.message(),
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
    fn flush_one(&mut self, pending: &mut Vec<Incoming>) -> Result<(), AggregatorError> {
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
                Err(FlushError::Data(error)) if pending.len() > 1 => {
                    // A message the database refuses: find it by halving, dead-letter it alone.
                    tracing::warn!(%error, size = pending.len(), "Batch refused; splitting");
                    let mut second = pending.split_off(pending.len() / 2);
                    self.flush_one(pending)?;
                    self.flush_one(&mut second)?;
                    pending.clear();
                    return Ok(());
                }
                Err(FlushError::Data(error)) => {
                    tracing::warn!(%error, "Message refused by the database; dead-lettering");
                    if let Some(m) = pending.first_mut() {
                        m.payload = Err(Rejection {
                            class: "refused_by_database",
                            message: error,
                        });
                    }
                }
                Err(FlushError::Kafka(error)) | Err(FlushError::Unavailable(error)) => {
                    self.metrics.retries.inc();
                    tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "Cannot commit the batch; retrying");
                    if paused_all.is_none() {
                        if let Ok(tpl) = self.consumer.assignment() {
                            let _ = self.consumer.pause(&tpl);
                            paused_all = Some(tpl);
                        }
                    }
                    let until = Instant::now() + backoff;
                    while Instant::now() < until {
                        if self.shutdown.is_cancelled() {
                            return Err(AggregatorError::Database(format!(
                                "stopped while the batch could not be committed: {error}"
                            )));
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

    fn commit_batch(&self, batch: &[Incoming]) -> Result<BatchOutcome, FlushError> {
        self.handle.block_on(self.committer.commit(batch))
    }

    fn after_commit(&mut self, batch: &[Incoming], outcome: BatchOutcome, started: Instant) {
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
            tracing::warn!(%error, "Cannot resume after the day-end");
        }
    }
}

/// What a batch's transaction needs, shared with the tasks that commit batches.
struct Committer {
    pool: PgPool,
    ctx: ApplyContext,
    producer: FutureProducer,
    topics: Topics,
}

impl Committer {
    /// Apply `batch` and dead-letter its rejected messages in one transaction, with its
    /// offsets.
    async fn commit(&self, batch: &[Incoming]) -> Result<BatchOutcome, FlushError> {
        let mut tx = self.pool.begin().await.map_err(FlushError::from)?;
        let outcome = apply_batch(&mut tx, &self.ctx, batch)
            .await
            .map_err(FlushError::from)?;
        self.dead_letter(batch, &outcome.rejected).await?;
        tx.commit().await.map_err(FlushError::from)?;
        Ok(outcome)
    }

    async fn dead_letter(
        &self,
        batch: &[Incoming],
        rejected: &[(usize, Rejection)],
    ) -> Result<(), FlushError> {
        let topics: Vec<String> = rejected
            .iter()
            .map(|(i, _)| {
                batch
                    .get(*i)
                    .map(|m| self.topics.dlq(&m.topic))
                    .unwrap_or_default()
            })
            .collect();
        let mut sends = Vec::with_capacity(rejected.len());
        for ((i, r), dlq) in rejected.iter().zip(&topics) {
            let Some(m) = batch.get(*i) else { continue };
            let headers =
                runtime::kafka::dlq_headers(&m.topic, m.partition, m.offset, r.class, &r.message);
            let mut record = FutureRecord::to(dlq).payload(&m.bytes).headers(headers);
            if let Some(k) = &m.key {
                record = record.key(k);
            }
            sends.push(self.producer.send(record, Duration::from_secs(30)));
        }
        for s in sends {
            s.await
                .map_err(|(e, _)| FlushError::Kafka(format!("dead-letter delivery failed: {e}")))?;
        }
        Ok(())
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

enum FlushError {
    /// The database refused the data (a constraint or a value): retrying cannot help.
    Data(String),
    /// The database is unreachable or failed: retry.
    Unavailable(String),
    /// Dead letters could not be delivered: retry.
    Kafka(String),
}

impl FlushError {
    fn message(&self) -> &str {
        match self {
            Self::Data(m) | Self::Unavailable(m) | Self::Kafka(m) => m,
        }
    }
}

impl From<sqlx::Error> for FlushError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e {
            let code = db.code().map(|c| c.to_string()).unwrap_or_default();
            // SQLSTATE classes 22 (data exception) and 23 (integrity constraint violation).
            if code.starts_with("22") || code.starts_with("23") {
                return Self::Data(db.message().to_string());
            }
        }
        Self::Unavailable(e.to_string())
    }
}
