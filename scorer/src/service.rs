//! `credit-risk score`: wires settings, Kafka clients, models, metrics and the pipeline.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::StreamConsumer;
use rdkafka::producer::FutureProducer;
use risk_core::settings::DomainSettings;
use runtime::settings::Topics;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::decide::Explain;
use crate::error::ScorerError;
use crate::metrics::Metrics;
use crate::models::{self, Models};
use crate::pipeline::{self, ScorerConfig, ScorerContext};

/// Scorer settings (`[scorer]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScorerSettings {
    /// Consumer group shared by all scorer processes.
    pub group_id: String,
    /// Most applications per batch (1,000: amortises produce and commit overhead).
    pub batch_size: usize,
    /// Longest wait to fill a batch, ms (1: bounds the added latency; under load batches fill
    /// before it expires).
    pub linger_ms: u64,
    /// How long the decisions producer waits to fill a request, ms (0: low latency; under
    /// load, decisions queued while a request is in flight still go out together).
    pub producer_linger_ms: u32,
    /// Which decisions carry reasons.
    pub explain: Explain,
    /// Kafka transactions (consume-transform-produce) instead of at-least-once.
    pub exactly_once: bool,
    /// Transactional id prefix (the process id is appended) in exactly-once mode.
    pub transactional_id: String,
    /// Artifact to start from; otherwise the champion on the model-updates topic.
    pub model_path: Option<PathBuf>,
    /// Applications in the PSI window (5,000: stable deciles, minutes of traffic).
    pub psi_window: usize,
    /// Where `/metrics` is served.
    pub metrics_bind: String,
    /// Longest a fetch waits for data, ms (2: decisions within milliseconds at low traffic).
    pub fetch_wait_max_ms: u32,
    /// Threads that score one batch together (0: one per core).
    pub scoring_threads: usize,
}

impl Default for ScorerSettings {
    fn default() -> Self {
        Self {
            group_id: "credit-risk-scorer".into(),
            batch_size: 1_000,
            linger_ms: 1,
            producer_linger_ms: 0,
            explain: Explain::NonApproved,
            exactly_once: false,
            transactional_id: "credit-risk-scorer".into(),
            model_path: None,
            psi_window: 5_000,
            metrics_bind: "127.0.0.1:9464".into(),
            fetch_wait_max_ms: 2,
            scoring_threads: 0,
        }
    }
}

/// Everything the service needs.
pub struct ScorerService {
    /// Bootstrap servers.
    pub brokers: String,
    /// Topic names.
    pub topics: Topics,
    /// Consumer session timeout.
    pub session_timeout_ms: u32,
    /// Scorer settings.
    pub settings: ScorerSettings,
    /// Domain settings.
    pub domain: DomainSettings,
}

impl ScorerService {
    /// The stage on `brokers`, with the topics and session timeout of `kafka`.
    pub fn new(
        brokers: &str,
        kafka: &runtime::settings::KafkaSettings,
        settings: ScorerSettings,
        domain: DomainSettings,
    ) -> Self {
        Self {
            brokers: brokers.to_string(),
            topics: kafka.topics.clone(),
            session_timeout_ms: kafka.session_timeout_ms,
            settings,
            domain,
        }
    }
}

/// Build the consumer the pipeline uses.
pub fn consumer(
    svc: &ScorerService,
    metrics: Metrics,
) -> Result<Arc<pipeline::ScorerConsumer>, ScorerError> {
    let mut c = runtime::kafka::consumer_config(
        &svc.brokers,
        &svc.settings.group_id,
        svc.session_timeout_ms,
    );
    c.set("statistics.interval.ms", "5000");
    // Low latency: a fetch returns after at most this long even when little data is waiting.
    c.set(
        "fetch.wait.max.ms",
        svc.settings.fetch_wait_max_ms.to_string(),
    );
    if svc.settings.exactly_once {
        c.set("enable.auto.commit", "false");
    }
    let consumer: pipeline::ScorerConsumer = c.create_with_context(ScorerContext { metrics })?;
    Ok(Arc::new(consumer))
}

/// Build the producer the pipeline uses.
pub fn producer(svc: &ScorerService) -> Result<FutureProducer, ScorerError> {
    let mut p = runtime::kafka::producer_config(&svc.brokers);
    p.set("batch.num.messages", "10000");
    p.set("linger.ms", svc.settings.producer_linger_ms.to_string());
    if svc.settings.exactly_once {
        p.set(
            "transactional.id",
            format!("{}-{}", svc.settings.transactional_id, std::process::id()),
        );
    }
    Ok(p.create()?)
}

/// Run the scorer until `shutdown`; returns decisions produced.
pub async fn run(
    svc: ScorerService,
    registry: prometheus::Registry,
    shutdown: CancellationToken,
) -> Result<u64, ScorerError> {
    let metrics = Metrics::new(&registry)?;
    let addr: SocketAddr = svc
        .settings
        .metrics_bind
        .parse()
        .map_err(|_| ScorerError::MetricsBind(svc.settings.metrics_bind.clone()))?;
    let (bound, _server) = runtime::metrics::serve(registry, addr, shutdown.clone())?;
    tracing::info!(%bound, "Serving /metrics");

    let initial = match &svc.settings.model_path {
        Some(path) => {
            let champion = Arc::new(models::load(path)?);
            Some(Models {
                champion,
                challenger: None,
            })
        }
        None => None,
    };
    let updates: StreamConsumer = runtime::kafka::consumer_config(
        &svc.brokers,
        &format!("{}-models-{}", svc.settings.group_id, std::process::id()),
        svc.session_timeout_ms,
    )
    .create()?;
    let (rx, follower) = models::follow(
        updates,
        svc.topics.model_updates.clone(),
        initial,
        shutdown.clone(),
    )
    .await?;
    let champion = rx
        .borrow()
        .as_ref()
        .map(|m| m.champion.artifact.model_version.clone());
    let Some(version) = champion else {
        return Err(ScorerError::NoChampion(svc.topics.model_updates.clone()));
    };
    tracing::info!(model = %version, "Scoring with champion");
    let config = ScorerConfig {
        applications_topic: svc.topics.applications.clone(),
        decisions_topic: svc.topics.decisions.clone(),
        dlq_topic: svc.topics.dlq(&svc.topics.applications),
        batch_size: svc.settings.batch_size.max(1),
        linger: Duration::from_millis(svc.settings.linger_ms),
        explain: svc.settings.explain,
        exactly_once: svc.settings.exactly_once,
        domain: svc.domain.clone(),
        psi_window: svc.settings.psi_window,
        scoring_threads: match svc.settings.scoring_threads {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        },
    };
    let consumer = consumer(&svc, metrics.clone())?;
    let producer = producer(&svc)?;
    let result = pipeline::run(consumer, producer, config, rx, metrics, shutdown.clone()).await;
    shutdown.cancel();
    let _ = follower.await;
    result
}
