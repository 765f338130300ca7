//! The HTTP edge: the REST API (seed-compatible paths and field names, plus the book's
//! regulatory figures), its OpenAPI document, API keys with roles, per-key rate limits, the
//! dashboard page and Prometheus metrics.
//!
//! The edge never writes the book: it publishes customers and applications to Kafka and reads
//! what the aggregator keeps in PostgreSQL. It writes only API keys and the audit log.
//!
//! # Layout
//! - [`routes`]: the route table (the one list the router, the metrics labels and the OpenAPI
//!   test share) and the filters.
//! - [`handlers`]: one module per resource.
//! - [`api`]: request and response bodies, and the seed's shapes.
//! - [`auth`]: keys, roles, rate limits. [`error`]: the JSON error shape and `recover`.
//! - [`decisions`]: waiting for the decision on a published application.
//! - [`openapi`]: `/openapi.json`. [`dashboard`]: the page at `/`. [`metrics`]: `edge_*`.

use std::net::SocketAddr;
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

pub mod api;
pub mod auth;
pub mod cache;
pub mod dashboard;
pub mod decisions;
pub mod error;
pub mod handlers;
pub mod metrics;
pub mod openapi;
pub mod routes;

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
    /// Most rows a list endpoint returns per page.
    pub max_page: i64,
    /// How long a portfolio answer is served from memory, ms (1,000: the figures change once
    /// per business day; 0 disables the cache).
    pub portfolio_cache_ms: u64,
}

impl Default for EdgeSettings {
    fn default() -> Self {
        Self {
            apply_timeout_ms: 5_000,
            customer_timeout_ms: 5_000,
            body_limit_bytes: 64 * 1024,
            rate_limit_per_sec: 100.0,
            rate_limit_burst: 200.0,
            max_page: 500,
            portfolio_cache_ms: 1_000,
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
    #[error("Kafka: {0}")]
    Kafka(String),
    /// The listen address is taken or invalid.
    #[error("cannot listen on {0}: {1}")]
    Bind(String, String),
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
        .create()
        .map_err(|e| EdgeError::Kafka(e.to_string()))?;
    let waiter = decisions::DecisionWaiter::default();
    waiter
        .start(brokers, &topics.decisions, shutdown.clone())
        .map_err(|e| EdgeError::Kafka(e.to_string()))?;
    let follower: rdkafka::consumer::StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set(
            "group.id",
            format!("credit-risk-edge-models-{}", uuid::Uuid::new_v4()),
        )
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| EdgeError::Kafka(e.to_string()))?;
    let (models, _) = scorer::models::follow(
        follower,
        topics.model_updates.clone(),
        None,
        shutdown.clone(),
    )
    .await
    .map_err(|e| EdgeError::Kafka(e.to_string()))?;
    let metrics = metrics::Metrics::new(&registry)?;
    Ok(Arc::new(Edge {
        keys: auth::Keys::new(pool.clone()),
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

/// Serve the API until `shutdown`; returns the bound address (port 0 → a free one).
pub fn serve(
    edge: Arc<Edge>,
    addr: &str,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), EdgeError> {
    let parsed: SocketAddr = addr
        .parse()
        .map_err(|e: std::net::AddrParseError| EdgeError::Bind(addr.into(), e.to_string()))?;
    let (bound, server) = warp::serve(routes::routes(edge))
        .try_bind_with_graceful_shutdown(parsed, async move { shutdown.cancelled().await })
        .map_err(|e| EdgeError::Bind(addr.into(), e.to_string()))?;
    Ok((bound, tokio::spawn(server)))
}

/// Timeout helper shared by handlers.
pub(crate) fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}
