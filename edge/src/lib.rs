//! The HTTP edge: the REST API (seed-compatible paths and field names, plus the book's
//! regulatory figures), its OpenAPI document, API keys with roles, per-key rate limits, the
//! dashboard page and Prometheus metrics.
//!
//! The edge never writes the book: it publishes customers and applications to Kafka and reads
//! what the aggregator keeps in PostgreSQL. It writes only API keys and the audit log.
//!
//! Every statement against the database is a typed function of the `book` crate; the edge
//! holds no SQL.
//!
//! # Layout
//! - [`route_table`]: the route table, the one list of route facts (method, path, roles) that
//!   the router, the metrics labels and the OpenAPI document read.
//! - [`routes`]: the warp filters serving the table's routes (uses [`route_table`] and
//!   [`openapi`]).
//! - [`openapi`]: `/openapi.json`, built from [`route_table`].
//! - [`handlers`]: one module per resource.
//! - [`api`]: request and response bodies, and the seed's shapes.
//! - [`auth`]: keys, roles, rate limits. [`error`]: the JSON error shape and `recover`.
//! - [`decisions`]: waiting for the decision on a published application.
//! - [`cache`]: portfolio answers kept in memory for a moment.
//! - [`dashboard`]: the page at `/`. [`metrics`]: `edge_*`.

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
pub mod route_table;
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

/// The address of a request's connection, as the server records it.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// Serve the API until `shutdown`; returns the bound address (port 0 → a free one). A
/// connection must send a request's headers within `header_timeout_ms` and have its request
/// answered within `request_timeout_ms` (408, then closed); at most `max_connections` are
/// served at once (503, then closed).
pub fn serve(
    edge: Arc<Edge>,
    addr: &str,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), EdgeError> {
    use warp::hyper::server::conn::AddrStream;
    use warp::hyper::service::{make_service_fn, service_fn, Service};
    use warp::hyper::{Body, Response, StatusCode};

    let parsed: SocketAddr = addr
        .parse()
        .map_err(|e: std::net::AddrParseError| EdgeError::Bind(addr.into(), e.to_string()))?;
    let settings = edge.settings.clone();
    if !settings.metrics_bind.is_empty() {
        let metrics_addr: SocketAddr =
            settings
                .metrics_bind
                .parse()
                .map_err(|e: std::net::AddrParseError| {
                    EdgeError::Bind(settings.metrics_bind.clone(), e.to_string())
                })?;
        let (bound, _) =
            runtime::metrics::serve(edge.registry.clone(), metrics_addr, shutdown.clone())
                .map_err(|e| EdgeError::Bind(settings.metrics_bind.clone(), e.to_string()))?;
        tracing::info!(%bound, "Serving /metrics for Prometheus");
    }
    let request_timeout = ms(settings.request_timeout_ms);
    let permits = Arc::new(tokio::sync::Semaphore::new(settings.max_connections.max(1)));
    let svc = warp::service(routes::routes(edge));
    // The API's error shape, with the connection closed after it.
    let refuse = |status: StatusCode, code: &str, message: &str| {
        let body =
            serde_json::json!({"error": code, "message": message, "details": null}).to_string();
        let mut r = Response::new(Body::from(body));
        *r.status_mut() = status;
        r.headers_mut()
            .insert("connection", warp::http::HeaderValue::from_static("close"));
        r.headers_mut().insert(
            "content-type",
            warp::http::HeaderValue::from_static("application/json"),
        );
        r
    };
    let make = make_service_fn(move |conn: &AddrStream| {
        let client = ClientAddr(conn.remote_addr());
        let svc = svc.clone();
        // Held by the connection's service: released when the connection closes.
        let permit = Arc::clone(&permits).try_acquire_owned().ok().map(Arc::new);
        async move {
            Ok::<_, std::convert::Infallible>(service_fn(move |mut req| {
                let mut svc = svc.clone();
                let permit = permit.clone();
                async move {
                    if permit.is_none() {
                        return Ok::<_, std::convert::Infallible>(refuse(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "unavailable",
                            "too many connections; retry",
                        ));
                    }
                    req.extensions_mut().insert(client);
                    match tokio::time::timeout(request_timeout, svc.call(req)).await {
                        Ok(Ok(r)) => Ok(r),
                        Ok(Err(never)) => match never {},
                        Err(_) => Ok(refuse(
                            StatusCode::REQUEST_TIMEOUT,
                            "request_timeout",
                            "the request was not complete in time",
                        )),
                    }
                }
            }))
        }
    });
    let server = warp::hyper::Server::try_bind(&parsed)
        .map_err(|e| EdgeError::Bind(addr.into(), e.to_string()))?
        .http1_header_read_timeout(ms(settings.header_timeout_ms))
        .serve(make);
    let bound = server.local_addr();
    let server = server.with_graceful_shutdown(async move { shutdown.cancelled().await });
    Ok((
        bound,
        tokio::spawn(async move {
            if let Err(error) = server.await {
                tracing::warn!(%error, "The HTTP server stopped");
            }
        }),
    ))
}

/// Timeout helper shared by handlers.
pub(crate) fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}
