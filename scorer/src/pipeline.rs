//! The consumer loop: batches of applications → decisions, offsets stored only once the
//! decisions (and any dead letters) are acknowledged by the broker.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use futures::future::try_join_all;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::message::{OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use risk_core::features;
use risk_core::settings::DomainSettings;
use schemas::{Decision, LoanApplication};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::decide::{decide_batch, Explain, Item};
use crate::error::ScorerError;
use crate::metrics::Metrics;
use crate::models::Models;
use crate::psi::PsiWindow;
use crate::validate;

/// How the scorer runs.
#[derive(Debug, Clone)]
pub struct ScorerConfig {
    /// Topic of applications.
    pub applications_topic: String,
    /// Topic of decisions.
    pub decisions_topic: String,
    /// Dead-letter topic of the applications topic.
    pub dlq_topic: String,
    /// Most applications scored together.
    pub batch_size: usize,
    /// Longest wait to fill a batch once one message is in hand.
    pub linger: Duration,
    /// Which decisions get reasons.
    pub explain: Explain,
    /// Consume-transform-produce in Kafka transactions.
    pub exactly_once: bool,
    /// Domain settings.
    pub domain: DomainSettings,
    /// Applications in the PSI window.
    pub psi_window: usize,
    /// Threads that score one batch together.
    pub scoring_threads: usize,
}

/// Consumer context: lag from librdkafka's statistics, rebalance logging.
pub struct ScorerContext {
    /// Metrics to update.
    pub metrics: Metrics,
}

impl ClientContext for ScorerContext {
    fn stats(&self, statistics: Statistics) {
        self.metrics
            .consumer_lag
            .set(runtime::kafka::consumer_lag(&statistics));
    }
}

impl ConsumerContext for ScorerContext {
    fn pre_rebalance(
        &self,
        _: &rdkafka::consumer::BaseConsumer<Self>,
        rebalance: &rdkafka::consumer::Rebalance<'_>,
    ) {
        // Batches complete (acknowledged, offsets stored) before the next poll, so nothing is
        // in flight here; librdkafka commits the stored offsets on revoke.
        tracing::info!(?rebalance, "Rebalance");
    }
}

/// The scoring consumer.
pub type ScorerConsumer = StreamConsumer<ScorerContext>;

/// Batches whose decisions may await acknowledgement while later batches are scored.
const MAX_IN_FLIGHT: usize = 4;

type Acks = Vec<rdkafka::producer::future_producer::OwnedDeliveryResult>;

/// A produced batch awaiting its acknowledgements.
struct Pending {
    acks: tokio::task::JoinHandle<Result<Acks, futures::channel::oneshot::Canceled>>,
    /// The last offset of each partition in the batch.
    offsets: Vec<(i32, i64)>,
    decided_at: Vec<DateTime<Utc>>,
    decided: u64,
}

/// Wait for a batch's acknowledgements, then store its offsets. A failed delivery is fatal:
/// the offsets stay unstored and the batch is redelivered after restart.
async fn complete(
    p: Pending,
    consumer: &ScorerConsumer,
    topic: &str,
    metrics: &Metrics,
    store: bool,
) -> Result<u64, ScorerError> {
    let acks = p.acks.await?.map_err(|_| ScorerError::DeliveryDropped)?;
    if let Some((e, _)) = acks.iter().find_map(|r| r.as_ref().err()) {
        return Err(ScorerError::Kafka(e.clone()));
    }
    let now = Utc::now();
    for at in &p.decided_at {
        let seconds = (now - *at).num_microseconds().unwrap_or(0) as f64 / 1e6;
        metrics.end_to_end_seconds.observe(seconds.max(0.0));
    }
    metrics.produced.inc_by(p.decided);
    if store {
        for (partition, offset) in &p.offsets {
            if let Err(error) = consumer.store_offset(topic, *partition, *offset) {
                // The partition was revoked meanwhile: its new owner will redeliver, and a
                // redelivered application yields a byte-identical decision.
                tracing::debug!(%error, partition, "Offset not stored");
            }
        }
    }
    Ok(p.decided)
}

/// What one message became.
enum Outcome {
    Decided(Box<Decision>, DateTime<Utc>),
    Dead {
        class: &'static str,
        message: String,
    },
}

fn message_time(m: &OwnedMessage) -> Option<DateTime<Utc>> {
    m.timestamp()
        .to_millis()
        .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
}

/// Batches smaller than this are scored on one thread (threads cost more than they save).
const PARALLEL_MIN: usize = 64;

/// Score a batch (CPU work; run off the async runtime), split over `config.scoring_threads`.
/// Outcomes keep the batch's order; drift monitoring sees the applications in that order too.
fn score_batch(
    batch: &[OwnedMessage],
    models: &Models,
    config: &ScorerConfig,
    psi: &mut PsiWindow,
) -> Vec<Outcome> {
    let threads = if batch.len() >= PARALLEL_MIN {
        config.scoring_threads.max(1)
    } else {
        1
    };
    let scored: Vec<(Outcome, Option<[f32; features::LEN]>)> = if threads == 1 {
        score_slice(batch, models, config)
    } else {
        let chunk = batch.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let parts: Vec<_> = batch
                .chunks(chunk)
                .map(|part| scope.spawn(move || score_slice(part, models, config)))
                .collect();
            parts
                .into_iter()
                .flat_map(|part| match part.join() {
                    Ok(scored) => scored,
                    Err(panic) => std::panic::resume_unwind(panic),
                })
                .collect()
        })
    };
    scored
        .into_iter()
        .map(|(outcome, x)| {
            if let Some(x) = x {
                psi.observe(&x);
            }
            outcome
        })
        .collect()
}

/// An application read from its message, with its features and decision time; or why not.
type Read = Result<(LoanApplication, [f32; features::LEN], DateTime<Utc>), Outcome>;

/// Score messages in order; each decided one comes with its feature vector.
fn score_slice(
    batch: &[OwnedMessage],
    models: &Models,
    config: &ScorerConfig,
) -> Vec<(Outcome, Option<[f32; features::LEN]>)> {
    let read: Vec<Read> = batch
        .iter()
        .map(|m| {
            let app: LoanApplication =
                schemas::decode(m.payload().unwrap_or_default()).map_err(|e| Outcome::Dead {
                    class: e.class(),
                    message: e.to_string(),
                })?;
            validate::check(&app).map_err(|e| Outcome::Dead {
                class: "invalid",
                message: e.message,
            })?;
            // The decision time is the application's broker timestamp, so a replayed message
            // yields a byte-identical decision.
            let at = message_time(m).unwrap_or(app.submitted_at);
            let x = features::compute(&app);
            Ok((app, x, at))
        })
        .collect();
    let items: Vec<Item<'_>> = read
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|(app, x, at)| (app, x, *at))
        .collect();
    let mut decisions = decide_batch(
        &items,
        &models.champion,
        models.challenger.as_deref(),
        &config.domain,
        config.explain,
    )
    .into_iter();
    read.into_iter()
        .map(|r| match r {
            Ok((_, x, at)) => match decisions.next() {
                Some(d) => (Outcome::Decided(Box::new(d), at), Some(x)),
                None => (
                    Outcome::Dead {
                        class: "internal",
                        message: "no decision was made".into(),
                    },
                    None,
                ),
            },
            Err(dead) => (dead, None),
        })
        .collect()
}

fn dlq_headers(m: &OwnedMessage, class: &str, message: &str) -> OwnedHeaders {
    runtime::kafka::dlq_headers(m.topic(), m.partition(), m.offset(), class, message)
}

/// Run until `shutdown`: consume, score, produce, store offsets. Returns decisions produced.
pub async fn run(
    consumer: Arc<ScorerConsumer>,
    producer: FutureProducer,
    config: ScorerConfig,
    mut models: watch::Receiver<Option<Models>>,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> Result<u64, ScorerError> {
    // Shared with the scoring task of every batch without copying the settings.
    let config = Arc::new(config);
    consumer.subscribe(&[&config.applications_topic])?;
    if config.exactly_once {
        producer.init_transactions(Duration::from_secs(30))?;
    }
    let mut current = models
        .borrow_and_update()
        .clone()
        .ok_or(ScorerError::NoModel("no champion model"))?;
    let mut psi = PsiWindow::new(
        &current.champion.artifact.feature_distributions,
        config.psi_window,
    );
    set_model_info(&metrics, &current);
    let mut produced = 0u64;
    let mut in_flight: VecDeque<Pending> = VecDeque::new();
    let mut scores: Vec<(String, prometheus::Histogram)> = Vec::new();
    loop {
        let first = tokio::select! {
            m = consumer.recv() => m?.detach(),
            // While idle, finish batches whose acknowledgements have arrived.
            _ = tokio::time::sleep(Duration::from_millis(1)), if !in_flight.is_empty() => {
                while in_flight.front().is_some_and(|p| p.acks.is_finished()) {
                    if let Some(p) = in_flight.pop_front() {
                        produced += complete(p, &consumer, &config.applications_topic, &metrics, true).await?;
                    }
                }
                continue;
            }
            _ = shutdown.cancelled() => break,
        };
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + config.linger;
        while batch.len() < config.batch_size {
            match tokio::time::timeout_at(deadline, consumer.recv()).await {
                Ok(Ok(m)) => batch.push(m.detach()),
                Ok(Err(e)) => return Err(ScorerError::Kafka(e)),
                Err(_) => break,
            }
        }
        metrics.consumed.inc_by(batch.len() as u64);
        // A promotion takes effect between batches: each message is scored exactly once,
        // by the model current when its batch started.
        if models.has_changed().unwrap_or(false) {
            if let Some(next) = models.borrow_and_update().clone() {
                current = next;
                psi = PsiWindow::new(
                    &current.champion.artifact.feature_distributions,
                    config.psi_window,
                );
                set_model_info(&metrics, &current);
                metrics.model_swaps.inc();
            }
        }
        let started = Instant::now();
        let (outcomes, batch, psi_back) = {
            let models = current.clone();
            let cfg = Arc::clone(&config);
            let mut window = psi;
            tokio::task::spawn_blocking(move || {
                let outcomes = score_batch(&batch, &models, &cfg, &mut window);
                (outcomes, batch, window)
            })
            .await?
        };
        psi = psi_back;
        metrics
            .scoring_seconds
            .observe(started.elapsed().as_secs_f64());

        if config.exactly_once {
            producer.begin_transaction()?;
        }
        let mut sends = Vec::with_capacity(batch.len());
        let mut decided_at = Vec::with_capacity(batch.len());
        let mut by_outcome = [0u64; 3];
        for (m, outcome) in batch.iter().zip(&outcomes) {
            let key = m.key().unwrap_or_default();
            // librdkafka copies the payload, so the encoded bytes may be dropped after send.
            let send = match outcome {
                Outcome::Decided(d, at) => {
                    let bytes = schemas::encode(d.as_ref())?;
                    by_outcome[outcome_index(d.decision)] += 1;
                    metrics.pd.observe(d.pd);
                    score_histogram(&mut scores, &metrics, &d.grade).observe(f64::from(d.score));
                    decided_at.push(*at);
                    producer
                        .send_result(
                            FutureRecord::to(&config.decisions_topic)
                                .key(key)
                                .payload(bytes.as_slice()),
                        )
                        .map_err(|(e, _)| ScorerError::Kafka(e))?
                }
                Outcome::Dead { class, message } => {
                    metrics.dead_lettered.with_label_values(&[class]).inc();
                    tracing::warn!(
                        partition = m.partition(),
                        offset = m.offset(),
                        class,
                        "Application dead-lettered"
                    );
                    producer
                        .send_result(
                            FutureRecord::to(&config.dlq_topic)
                                .key(key)
                                .payload(m.payload().unwrap_or_default())
                                .headers(dlq_headers(m, class, message)),
                        )
                        .map_err(|(e, _)| ScorerError::Kafka(e))?
                }
            };
            sends.push(send);
        }
        for (outcome, count) in OUTCOMES.iter().zip(by_outcome) {
            if count > 0 {
                metrics
                    .decisions
                    .with_label_values(&[outcome_label(*outcome)])
                    .inc_by(count);
            }
        }
        let decided = by_outcome.iter().sum();
        let mut offsets: Vec<(i32, i64)> = Vec::new();
        for m in &batch {
            match offsets.iter_mut().find(|(p, _)| *p == m.partition()) {
                Some(last) => last.1 = last.1.max(m.offset()),
                None => offsets.push((m.partition(), m.offset())),
            }
        }
        let pending = Pending {
            acks: tokio::spawn(try_join_all(sends)),
            offsets,
            decided_at,
            decided,
        };
        if config.exactly_once {
            produced += complete(
                pending,
                &consumer,
                &config.applications_topic,
                &metrics,
                false,
            )
            .await?;
            let mut offsets = TopicPartitionList::new();
            for m in &batch {
                offsets.add_partition_offset(
                    m.topic(),
                    m.partition(),
                    Offset::Offset(m.offset() + 1),
                )?;
            }
            let group = consumer
                .group_metadata()
                .ok_or(ScorerError::NoGroupMetadata)?;
            producer.send_offsets_to_transaction(&offsets, &group, Duration::from_secs(30))?;
            producer.commit_transaction(Duration::from_secs(30))?;
        } else {
            // Up to MAX_IN_FLIGHT batches await their acknowledgements while the next ones are
            // scored; offsets are stored strictly in batch order as acknowledgements complete.
            in_flight.push_back(pending);
            while in_flight.len() > MAX_IN_FLIGHT
                || in_flight.front().is_some_and(|p| p.acks.is_finished())
            {
                if let Some(p) = in_flight.pop_front() {
                    produced +=
                        complete(p, &consumer, &config.applications_topic, &metrics, true).await?;
                }
            }
        }
        for (feature, value) in psi.current() {
            metrics.psi.with_label_values(&[feature]).set(value);
        }
    }
    // Drain: wait for every batch still in flight, then commit before leaving the group.
    while let Some(p) = in_flight.pop_front() {
        produced += complete(p, &consumer, &config.applications_topic, &metrics, true).await?;
    }
    if !config.exactly_once {
        match consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => {}
            Err(rdkafka::error::KafkaError::ConsumerCommit(
                rdkafka::types::RDKafkaErrorCode::NoOffset,
            )) => {}
            Err(error) => {
                tracing::warn!(%error, "Final commit failed; the last batch may be redelivered")
            }
        }
    }
    let _ = producer.flush(Duration::from_secs(10));
    Ok(produced)
}

const OUTCOMES: [schemas::Outcome; 3] = [
    schemas::Outcome::Approve,
    schemas::Outcome::Refer,
    schemas::Outcome::Decline,
];

fn outcome_index(o: schemas::Outcome) -> usize {
    match o {
        schemas::Outcome::Approve => 0,
        schemas::Outcome::Refer => 1,
        schemas::Outcome::Decline => 2,
    }
}

/// The score histogram of a grade, looked up in the registry once per grade.
fn score_histogram<'a>(
    cache: &'a mut Vec<(String, prometheus::Histogram)>,
    metrics: &Metrics,
    grade: &str,
) -> &'a prometheus::Histogram {
    let at = match cache.iter().position(|(g, _)| g == grade) {
        Some(at) => at,
        None => {
            cache.push((grade.to_string(), metrics.score.with_label_values(&[grade])));
            cache.len() - 1
        }
    };
    &cache[at].1
}

fn outcome_label(o: schemas::Outcome) -> &'static str {
    match o {
        schemas::Outcome::Approve => "approve",
        schemas::Outcome::Refer => "refer",
        schemas::Outcome::Decline => "decline",
    }
}

fn set_model_info(metrics: &Metrics, models: &Models) {
    metrics.model_info.reset();
    metrics
        .model_info
        .with_label_values(&["champion", &models.champion.artifact.model_version])
        .set(1);
    if let Some(c) = &models.challenger {
        metrics
            .model_info
            .with_label_values(&["challenger", &c.artifact.model_version])
            .set(1);
    }
}
