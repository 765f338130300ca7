//! `score`'s Kafka part: applications through the embedded cluster and the scorer service
//! (throughput, or latency under an offered rate), or a soak of the product's scorer process.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;
use runtime::kafka::{consumer_config, producer_config};
use runtime::settings::Topics;
use schemas::Decision;
use scorer::decide::Explain;
use scorer::service::{ScorerService, ScorerSettings};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::settings::Settings;
use crate::sys::{product_binary, status_mb, ChildGuard};
use crate::workload::cluster_with_applications;

/// What the end-to-end run offers the scorer.
#[derive(Debug, Clone, Copy)]
pub struct Offer {
    /// Brokers of the embedded cluster.
    pub brokers: i32,
    /// Applications sent.
    pub applications: u64,
    /// Offered per second while scoring; `None`: all produced first.
    pub rate: Option<u64>,
    /// Which decisions carry reasons.
    pub explain: Explain,
}

fn counter(registry: &prometheus::Registry, name: &str) -> f64 {
    registry
        .gather()
        .iter()
        .find(|f| f.name() == name)
        .and_then(|f| f.get_metric().first().map(|m| m.get_counter().get_value()))
        .unwrap_or(0.0)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Decisions on a topic so far: the sum of its partitions' high watermarks.
fn produced_so_far(consumer: &rdkafka::consumer::BaseConsumer, topic: &str) -> anyhow::Result<i64> {
    let mut total = 0;
    for partition in 0..6 {
        let (_, high) = consumer.fetch_watermarks(topic, partition, Duration::from_secs(10))?;
        total += high;
    }
    Ok(total)
}

/// The product's `credit-risk score` process at full rate for `seconds`: applications offered
/// as fast as it decides them (at most 30,000 waiting), its resident memory sampled every ten
/// seconds from `/proc/<pid>/status`.
pub async fn soak(
    brokers: i32,
    explain: Explain,
    model: &Path,
    seconds: u64,
) -> anyhow::Result<serde_json::Value> {
    let topics = Topics::default();
    let (kafka, payloads) = cluster_with_applications(brokers, &topics, 50_000, 5).await?;
    let explain = match explain {
        Explain::None => "none",
        Explain::NonApproved => "non-approved",
        Explain::All => "all",
    };
    let scorer = std::process::Command::new(product_binary()?)
        .args(["score", "--metrics-bind", "127.0.0.1:0", "--model"])
        .arg(model)
        .env("KAFKA_BROKERS", kafka.bootstrap_servers())
        .env("CREDIT__SCORER__EXPLAIN", explain)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let pid = scorer.id();
    let scorer = ChildGuard(scorer);
    let status = format!("/proc/{pid}/status");
    let rss_of = |field: &str| status_mb(&status, field);
    let watcher: rdkafka::consumer::BaseConsumer =
        consumer_config(kafka.bootstrap_servers(), "soak-watch", 6_000).create()?;
    let producer: FutureProducer = producer_config(kafka.bootstrap_servers()).create()?;
    let started = Instant::now();
    let end = started + Duration::from_secs(seconds);
    let mut next_sample = started + Duration::from_secs(10);
    let mut samples = Vec::new();
    let mut sent = 0i64;
    let mut in_flight = std::collections::VecDeque::new();
    let mut decided = 0i64;
    'offer: for (key, bytes) in payloads.iter().cycle() {
        // Offer no more than 30,000 ahead of the decisions (the broker's log is capped).
        while sent - decided >= 30_000 || Instant::now() >= next_sample {
            let now = Instant::now();
            if now >= end {
                break 'offer;
            }
            decided = produced_so_far(&watcher, &topics.decisions)?;
            if now >= next_sample {
                let rss = rss_of("VmRSS:");
                eprintln!(
                    "{:>4} s: {decided} decisions, scorer resident {rss} MB",
                    started.elapsed().as_secs()
                );
                samples.push(json!({ "s": started.elapsed().as_secs(), "decisions": decided, "rss_mb": rss }));
                next_sample += Duration::from_secs(10);
            }
            if sent - decided >= 30_000 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        if in_flight.len() >= 10_000 {
            if let Some(f) = in_flight.pop_front() {
                let _ = f.await;
            }
        }
        match producer.send_result(
            FutureRecord::to(&topics.applications)
                .key(key)
                .payload(bytes),
        ) {
            Ok(f) => {
                in_flight.push_back(f);
                sent += 1;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
    let peak = rss_of("VmHWM:");
    drop(scorer);
    let rss: Vec<f64> = samples
        .iter()
        .filter_map(|s| s["rss_mb"].as_f64())
        .collect();
    let later: Vec<f64> = samples
        .iter()
        .filter(|s| s["s"].as_u64().unwrap_or(0) > 60)
        .filter_map(|s| s["rss_mb"].as_f64())
        .collect();
    Ok(json!({
        "seconds": seconds,
        "applications_offered": sent,
        "decisions": decided,
        "decisions_per_sec": decided as f64 / started.elapsed().as_secs_f64(),
        "scorer_rss_mb_max": rss.iter().copied().fold(0.0, f64::max),
        "scorer_rss_mb_after_first_minute_min": later.iter().copied().fold(f64::INFINITY, f64::min),
        "scorer_rss_mb_after_first_minute_max": later.iter().copied().fold(0.0, f64::max),
        "scorer_peak_rss_mb": peak,
        "samples": samples,
    }))
}

/// Applications through the embedded cluster and the real scorer service.
pub async fn end_to_end(
    offer: &Offer,
    settings: &Settings,
    model: &Path,
) -> anyhow::Result<serde_json::Value> {
    let id = std::process::id();
    let topics = Topics {
        applications: format!("bench-apps-{id}"),
        decisions: format!("bench-decisions-{id}"),
        model_updates: format!("bench-models-{id}"),
        ..Topics::default()
    };
    let (kafka, payloads) =
        cluster_with_applications(offer.brokers, &topics, offer.applications, 99).await?;
    let mut pc = producer_config(kafka.bootstrap_servers());
    pc.set("queue.buffering.max.messages", "1000000");
    let producer: FutureProducer = pc.create()?;
    let produce_all = |payloads: Vec<(String, Vec<u8>)>, rate: Option<u64>| {
        let producer = producer.clone();
        let topic = topics.applications.clone();
        async move {
            let start = Instant::now();
            let mut pending = Vec::with_capacity(payloads.len());
            for (i, (key, bytes)) in payloads.iter().enumerate() {
                if let Some(r) = rate {
                    let due = start + Duration::from_secs_f64(i as f64 / r as f64);
                    tokio::time::sleep_until(due.into()).await;
                }
                loop {
                    match producer.send_result(FutureRecord::to(&topic).key(key).payload(bytes)) {
                        Ok(f) => {
                            pending.push(f);
                            break;
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
                    }
                }
            }
            for f in pending {
                let _ = f.await;
            }
        }
    };

    let registry = prometheus::Registry::new();
    let shutdown = CancellationToken::new();
    let kafka_settings = runtime::settings::KafkaSettings {
        topics: topics.clone(),
        ..settings.infra.kafka.clone()
    };
    let svc = ScorerService::new(
        kafka.bootstrap_servers(),
        &kafka_settings,
        ScorerSettings {
            group_id: format!("bench-scorer-{id}"),
            model_path: Some(model.to_path_buf()),
            explain: offer.explain,
            metrics_bind: "127.0.0.1:0".into(),
            ..settings.scorer.clone()
        },
        settings.domain.clone(),
    );
    let mut cc = consumer_config(
        kafka.bootstrap_servers(),
        &format!("bench-check-{id}"),
        6_000,
    );
    cc.set("fetch.wait.max.ms", "5");
    let decisions: StreamConsumer = cc.create()?;
    decisions.subscribe(&[&topics.decisions])?;
    let expected = payloads.len();
    // Reads every decision back. Under an offered rate it runs alongside the scorer (the
    // latencies are the point); in a throughput run it starts once the last decision is
    // acknowledged, so that it does not take the scorer's cores while it is timed.
    let collect = async move {
        let mut latencies = Vec::with_capacity(expected);
        let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
        while latencies.len() < expected {
            let m = match tokio::time::timeout(Duration::from_secs(60), decisions.recv()).await {
                Ok(Ok(m)) => m,
                _ => break,
            };
            if let Ok(d) = schemas::decode::<Decision>(m.payload().unwrap_or_default()) {
                let ms = (chrono::Utc::now() - d.decided_at)
                    .num_microseconds()
                    .unwrap_or(0) as f64
                    / 1e3;
                latencies.push(ms);
                *outcomes.entry(format!("{:?}", d.decision)).or_default() += 1;
            }
        }
        (latencies, outcomes)
    };
    let (collector, idle) = if offer.rate.is_some() {
        (Some(tokio::spawn(collect)), None)
    } else {
        (None, Some(collect))
    };

    let mut payloads = Some(payloads);
    if offer.rate.is_none() {
        eprintln!("Producing {expected} applications…");
        produce_all(payloads.take().unwrap_or_default(), None).await;
    }
    let reg = registry.clone();
    let stop = shutdown.clone();
    let scorer = tokio::spawn(async move { scorer::service::run(svc, reg, stop).await });
    let offered = if let Some(rate) = offer.rate {
        // Let the scorer join its group before offering load.
        tokio::time::sleep(Duration::from_secs(4)).await;
        let p = tokio::spawn(produce_all(payloads.take().unwrap_or_default(), Some(rate)));
        Some(p)
    } else {
        None
    };
    let mut t0 = None;
    let t1;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let consumed = counter(&registry, "scorer_messages_consumed_total");
        let produced = counter(&registry, "scorer_decisions_produced_total");
        if t0.is_none() && consumed > 0.0 {
            t0 = Some(Instant::now());
        }
        if produced >= expected as f64 {
            t1 = Instant::now();
            break;
        }
        if Instant::now() > deadline || scorer.is_finished() {
            anyhow::bail!("the scorer stopped or stalled at {produced} of {expected} decisions");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    if let Some(p) = offered {
        p.await?;
    }
    let collector = match (collector, idle) {
        (Some(running), _) => running,
        (None, idle) => tokio::spawn(idle.context("the collector was neither run nor kept")?),
    };
    let (mut latencies, outcomes) = collector.await.context("collector")?;
    shutdown.cancel();
    scorer.await??;
    latencies.sort_by(f64::total_cmp);
    let seconds = (t1 - t0.unwrap_or(t1)).as_secs_f64();
    Ok(json!({
        "events": expected,
        "seconds": seconds,
        "events_per_sec": expected as f64 / seconds.max(1e-9),
        "p50_ms": percentile(&latencies, 0.50),
        "p99_ms": percentile(&latencies, 0.99),
        "offered_rate": offer.rate,
        "decisions_received": latencies.len(),
        "outcomes": outcomes,
    }))
}
