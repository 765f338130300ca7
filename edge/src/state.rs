//! The edge's settings and the state every handler shares: the book's pool, the producer,
//! the decision waiter, the models followed, keys, limits, metrics and the read cache.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::FutureProducer;
use risk_core::settings::DomainSettings;
use runtime::settings::Topics;
use scorer::models::Models;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{auth, cache, decisions, metrics};

/// Edge settings (`[edge]`; the listen address is `[infra.http] bind`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EdgeSettings {
    /// How long `POST /api/loans/apply` waits for the decision before answering 202 with a
    /// link to poll, ms (5,000: a scorer decides in milliseconds; the wait covers a rebalance).
    pub apply_timeout_ms: u64,
    /// How long `POST /api/customers/` waits for the aggregator to store the customer before
    /// answering 202, ms.
    pub customer_timeout_ms: u64,
    /// Largest request body, bytes (64 KiB: an application is under 2 KiB).
    pub body_limit_bytes: u64,
    /// Requests per second per API key (sustained); 0 disables the limit.
    pub rate_limit_per_sec: f64,
    /// Requests a key may burst above the sustained rate.
    pub rate_limit_burst: f64,
    /// Database lookups of keys not already verified, per client address a second (before any
    /// key is known: unknown keys from one address cost the database at most this).
    pub key_lookups_per_sec: f64,
    /// Lookups a client address may burst above that rate.
    pub key_lookups_burst: f64,
    /// Most rows a list endpoint returns per page.
    pub max_page: i64,
    /// How long a portfolio answer is served from memory, ms (1,000: the figures change once
    /// per business day; 0 disables the cache).
    pub portfolio_cache_ms: u64,
    /// A connection that has not sent a request's headers within this is closed, ms.
    pub header_timeout_ms: u64,
    /// A request not answered within this (a body still arriving included) gets 408 and its
    /// connection is closed, ms.
    pub request_timeout_ms: u64,
    /// Connections served at once; past it a new connection gets 503 and is closed.
    pub max_connections: usize,
    /// Where Prometheus scrapes `/metrics` without a key (e.g. `0.0.0.0:9466`, a port kept
    /// inside the cluster); empty: no such listener. On the API's own port `/metrics` needs an
    /// analyst or admin key, so the public port shows no business figures.
    pub metrics_bind: String,
    /// An originator key sees and changes only the customers it registered itself.
    pub originators_own_customers_only: bool,
}

impl Default for EdgeSettings {
    fn default() -> Self {
        Self {
            apply_timeout_ms: 5_000,
            customer_timeout_ms: 5_000,
            body_limit_bytes: 64 * 1024,
            rate_limit_per_sec: 100.0,
            rate_limit_burst: 200.0,
            key_lookups_per_sec: 5.0,
            key_lookups_burst: 20.0,
            max_page: 500,
            portfolio_cache_ms: 1_000,
            header_timeout_ms: 10_000,
            request_timeout_ms: 30_000,
            max_connections: 1_024,
            metrics_bind: String::new(),
            originators_own_customers_only: false,
        }
    }
}

/// Everything a request may need, shared by every handler.
pub struct Edge {
    /// The book (read) and the keys and audit log (write).
    pub pool: PgPool,
    /// Publishes customers, applications and promotions.
    pub producer: FutureProducer,
    /// Topic names.
    pub topics: Topics,
    /// Kafka bootstrap servers (for `/ready`).
    pub brokers: String,
    /// Settings.
    pub settings: EdgeSettings,
    /// Domain rules (what-if scoring, stress tests).
    pub domain: DomainSettings,
    /// Requests waiting for decisions.
    pub decisions: decisions::DecisionWaiter,
    /// The champion (and challenger) as promoted on the model-updates topic.
    pub models: watch::Receiver<Option<Models>>,
    /// API keys.
    pub keys: auth::Keys,
    /// Per-key rate limits.
    pub limiter: auth::RateLimiter,
    /// `edge_*` metrics.
    pub metrics: metrics::Metrics,
    /// The registry `/metrics` serves.
    pub registry: prometheus::Registry,
    /// Portfolio answers kept for `portfolio_cache_ms`.
    pub cache: cache::ReadCache,
}

/// Why the edge could not start.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    /// Kafka clients could not be created.
    #[error("Kafka")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The model-updates topic could not be followed.
    #[error("following the model-updates topic")]
    Models(#[from] scorer::error::ScorerError),
    /// The listen address is invalid.
    #[error("{0} is not a listen address")]
    Address(String),
    /// The listen address is taken or cannot be bound.
    #[error("cannot listen on {address}")]
    Bind {
        /// The address.
        address: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Metrics could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// Build the shared state: producer, decision tail, model follower.
pub async fn build(
    pool: PgPool,
    brokers: &str,
    topics: Topics,
    settings: EdgeSettings,
    domain: DomainSettings,
    registry: prometheus::Registry,
    shutdown: CancellationToken,
) -> Result<Arc<Edge>, EdgeError> {
    let producer: FutureProducer = runtime::kafka::producer_config(brokers)
        .set("linger.ms", "0")
        .create()?;
    let waiter = decisions::DecisionWaiter::default();
    waiter.start(brokers, &topics.decisions, shutdown.clone())?;
    let follower: rdkafka::consumer::StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set(
            "group.id",
            format!("credit-risk-edge-models-{}", uuid::Uuid::new_v4()),
        )
        .set("enable.auto.commit", "false")
        .create()?;
    let (models, _) = scorer::models::follow(
        follower,
        topics.model_updates.clone(),
        None,
        shutdown.clone(),
    )
    .await?;
    let metrics = metrics::Metrics::new(&registry)?;
    Ok(Arc::new(Edge {
        keys: auth::Keys::new(
            pool.clone(),
            settings.key_lookups_per_sec,
            settings.key_lookups_burst,
        ),
        limiter: auth::RateLimiter::new(settings.rate_limit_per_sec, settings.rate_limit_burst),
        cache: cache::ReadCache::new(Duration::from_millis(settings.portfolio_cache_ms)),
        pool,
        producer,
        topics,
        brokers: brokers.to_string(),
        settings,
        domain,
        decisions: waiter,
        models,
        metrics,
        registry,
    }))
}

/// Timeout helper shared by handlers.
pub(crate) fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}
