//! `credit-risk aggregate`: the consumer loop that keeps the book.
//!
//! The loop runs on a thread of its own with a `BaseConsumer`, so the rebalance callback can
//! read the stored offsets from PostgreSQL before the partitions start fetching. Messages are
//! batched (size or timer); a batch, its dead letters and its offsets commit together. A
//! day-end tick ends its batch at once: its partition pauses until every partition of the
//! events topic has delivered the tick and the day is closed, so no event of the next day is
//! applied before the day-end of this one. While PostgreSQL is unreachable the consumer
//! pauses, keeps its group membership, and retries the same batch with backoff.
//!
//! # Layout
//! - [`settings`]: `[aggregator]` and the stage's description.
//! - [`context`]: the consumer context (offsets from the book on assignment, lag).
//! - `batches`: the loop's batches, commits with retry and their metrics.
//! - `barrier`: the day barrier on the events partitions.
//! - `commit`: one batch with its dead letters and offsets in one transaction.
//! - [`error`]: why the aggregator stopped.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::producer::FutureProducer;
use sqlx::PgPool;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use self::commit::Committer;
use self::context::{AggregatorConsumer, AggregatorContext};
use crate::metrics::Metrics;
use book::message::Source;
use book::write::ApplyContext;

mod barrier;
mod batches;
mod commit;
pub mod context;
pub mod error;
pub mod settings;
mod state;

pub use error::AggregatorError;
pub use settings::{AggregatorService, AggregatorSettings};
use state::Loop;
pub use state::RunTotals;

/// Run the aggregator until `shutdown`. The book's schema must be migrated.
pub async fn run(
    svc: AggregatorService,
    pool: PgPool,
    registry: prometheus::Registry,
    shutdown: CancellationToken,
) -> Result<RunTotals, AggregatorError> {
    let metrics = Metrics::new(&registry)?;
    let addr: SocketAddr = svc
        .settings
        .metrics_bind
        .parse()
        .map_err(|_| AggregatorError::MetricsBind(svc.settings.metrics_bind.clone()))?;
    let (bound, _server) = runtime::metrics::serve(registry, addr, shutdown.clone())?;
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
    tokio::task::spawn_blocking(move || consume(svc, pool, metrics, shutdown, handle)).await?
}

fn consume(
    svc: AggregatorService,
    pool: PgPool,
    metrics: Metrics,
    shutdown: CancellationToken,
    handle: Handle,
) -> Result<RunTotals, AggregatorError> {
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
    let consumer: AggregatorConsumer = config.create_with_context(AggregatorContext {
        pool: pool.clone(),
        handle: handle.clone(),
        group: svc.settings.group_id.clone(),
        metrics: metrics.clone(),
    })?;
    let producer: FutureProducer = runtime::kafka::producer_config(&svc.brokers).create()?;
    let metadata = consumer.fetch_metadata(Some(&svc.topics.events), Duration::from_secs(10))?;
    let event_partitions = metadata
        .topics()
        .first()
        .map_or(0, |t| t.partitions().len());
    if event_partitions == 0 {
        return Err(AggregatorError::MissingTopic(svc.topics.events.clone()));
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
    consumer.subscribe(&names)?;
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
