//! `credit-risk bench score`: inference latency (native vs XGBoost's C API) and end-to-end
//! throughput and latency through the embedded Kafka cluster. Prints one JSON line.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Subcommand};
use ingest::generator::sink::MemorySink;
use ingest::generator::{generate, GeneratorSettings};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;
use risk_core::features;
use risk_core::model::Artifact;
use runtime::kafka::{consumer_config, producer_config, EmbeddedKafka};
use runtime::settings::Topics;
use schemas::{Decision, LoanApplication};
use scorer::decide::{decide, Explain};
use scorer::service::{ScorerService, ScorerSettings};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use trainer::xgb::{self, XgbParams};

use crate::settings::Settings;
use crate::stages::ExplainArg;

/// Benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// The scorer: inference latency and end-to-end throughput.
    Score(ScoreBench),
    /// The aggregator: events applied per second with exactly-once commits, day-end time and
    /// summary read time on a large book.
    Aggregate(crate::bench_aggregate::AggregateBench),
    /// The trainer: N matured loans from PostgreSQL to a registered model, beside the Python
    /// peer (pandas read_sql + xgboost.train).
    Train(crate::bench_train::TrainBench),
}

/// Flags of `bench score`.
#[derive(Debug, Args)]
pub struct ScoreBench {
    /// Applications sent through the embedded cluster.
    #[arg(long, default_value_t = 100_000)]
    applications: u64,
    /// Which decisions carry reasons.
    #[arg(long, value_enum, default_value_t = ExplainArg::NonApproved)]
    explain: ExplainArg,
    /// Offer applications at this rate (per second) while scoring, for latency; default: all
    /// produced first, for throughput.
    #[arg(long)]
    rate: Option<u64>,
    /// Model artifact; default: train 300 trees of depth 6 on 50,000 generated applications.
    #[arg(long)]
    model: Option<std::path::PathBuf>,
    /// Skip the end-to-end part.
    #[arg(long, conflicts_with = "throughput_only")]
    latency_only: bool,
    /// Skip the single-application inference part.
    #[arg(long)]
    throughput_only: bool,
    /// Instead of the end-to-end run: a `credit-risk score` process of its own, offered
    /// applications as fast as it decides them for this many seconds, its resident memory
    /// sampled every ten.
    #[arg(long, conflicts_with = "rate")]
    soak_secs: Option<u64>,
    /// Brokers of the embedded cluster (1, as the Python peer's mock cluster).
    #[arg(long, default_value_t = 1)]
    brokers: i32,
}

/// Run a benchmark.
pub async fn run(command: BenchCommand, settings: Settings) -> anyhow::Result<()> {
    match command {
        BenchCommand::Score(args) => score(args, settings).await,
        BenchCommand::Aggregate(args) => crate::bench_aggregate::run(args, settings).await,
        BenchCommand::Train(args) => crate::bench_train::run(args, settings).await,
    }
}

fn per_call_us(elapsed: Duration, n: usize) -> f64 {
    elapsed.as_secs_f64() * 1e6 / n.max(1) as f64
}

fn applications(n: u64, seed: u64) -> anyhow::Result<Vec<LoanApplication>> {
    let mut sink = MemorySink::default();
    let g = GeneratorSettings {
        applications: n,
        seed,
        months: 6,
        performance_months: 0,
        ..GeneratorSettings::default()
    };
    generate(&g, &Default::default(), &mut sink, &mut |_, _| {})?;
    Ok(sink.applications)
}

async fn score(args: ScoreBench, settings: Settings) -> anyhow::Result<()> {
    let dir = tempfile_dir()?;
    let (artifact_path, artifact): (std::path::PathBuf, Artifact) = match &args.model {
        Some(p) => (p.clone(), serde_json::from_slice(&std::fs::read(p)?)?),
        None => {
            eprintln!("Training a 300-tree depth-6 model on 50,000 generated applications…");
            let params = XgbParams {
                rounds: 300,
                max_depth: 6,
                ..XgbParams::default()
            };
            let a = tokio::task::spawn_blocking(move || {
                trainer::quick::train_on_generated("bench-300x6", 50_000, 7, &params)
            })
            .await?
            .map_err(|e| anyhow::anyhow!(e))?;
            let p = dir.join("bench-model.json");
            std::fs::write(&p, serde_json::to_vec(&a)?)?;
            (p, a)
        }
    };
    let latency = if args.throughput_only {
        serde_json::Value::Null
    } else {
        tokio::task::spawn_blocking({
            let artifact = artifact.clone();
            let domain = settings.domain.clone();
            move || latency(&artifact, &domain)
        })
        .await??
    };
    let mut report =
        json!({ "latency": latency, "explain": format!("{:?}", Explain::from(args.explain)) });
    if let Some(seconds) = args.soak_secs {
        let figures = soak(&args, &artifact_path, seconds).await?;
        if let Some(obj) = report.as_object_mut() {
            obj.insert("soak".into(), figures);
        }
    } else if !args.latency_only {
        let e2e = end_to_end(&args, &settings, &artifact_path).await?;
        if let (Some(obj), Some(e)) = (report.as_object_mut(), e2e.as_object()) {
            for (k, v) in e {
                obj.insert(k.clone(), v.clone());
            }
        }
    }
    println!("{report}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let d = std::env::temp_dir().join(format!("credit-risk-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

/// Per-application costs of the native path and of XGBoost's C API, on the same model.
fn latency(
    artifact: &Artifact,
    domain: &risk_core::settings::DomainSettings,
) -> anyhow::Result<serde_json::Value> {
    let bytes = serde_json::to_vec(artifact)?;
    let model = Artifact::load(&bytes, features::VERSION, &features::names())?;
    let apps = applications(20_000, 11)?;
    let rows: Vec<[f32; features::LEN]> = apps.iter().map(features::compute).collect();

    let mut sink = 0.0f32;
    // Eleven passes of 60 ms or so: the median, and the best (the pass least disturbed by the
    // machine's other load; its speed drifts between seconds).
    let mut passes = Vec::new();
    for _ in 0..11 {
        let t = Instant::now();
        for r in &rows {
            sink += model.flat.predict(r);
        }
        passes.push(per_call_us(t.elapsed(), rows.len()));
    }
    passes.sort_by(f64::total_cmp);
    let native_pd = passes[passes.len() / 2];
    let native_pd_best = passes[0];

    let t = Instant::now();
    for a in &apps {
        sink += model.flat.predict(&features::compute(a));
    }
    let native_features_pd = per_call_us(t.elapsed(), apps.len());

    let n_shap = 5_000;
    let mut passes = Vec::new();
    let mut phi_sum = 0.0;
    for _ in 0..5 {
        let t = Instant::now();
        for r in rows.iter().take(n_shap) {
            phi_sum += model
                .explainer
                .contributions(&model.ensemble, r)
                .iter()
                .sum::<f64>();
        }
        passes.push(per_call_us(t.elapsed(), n_shap));
    }
    passes.sort_by(f64::total_cmp);
    let native_shap = passes[passes.len() / 2];

    // The scorer's path: a batch's explanations together (32 rows at a time).
    let refs: Vec<&[f32]> = rows.iter().take(n_shap).map(|r| &r[..]).collect();
    let mut passes = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let phis = model.explainer.contributions_batch(&model.ensemble, &refs);
        phi_sum += phis.iter().map(|p| p.iter().sum::<f64>()).sum::<f64>();
        passes.push(per_call_us(t.elapsed(), refs.len()));
    }
    passes.sort_by(f64::total_cmp);
    let native_shap_batch = passes[passes.len() / 2];

    let at = chrono::Utc::now();
    let mut passes = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        for a in apps.iter().take(n_shap) {
            let d = decide(
                a,
                &features::compute(a),
                &model,
                None,
                domain,
                Explain::All,
                at,
            );
            sink += d.pd as f32;
        }
        passes.push(per_call_us(t.elapsed(), n_shap));
    }
    passes.sort_by(f64::total_cmp);
    let decide_all = passes[passes.len() / 2];

    let booster = xgb::load_json(&artifact.xgboost_model.to_string())?;
    let n_single = 5_000;
    let t = Instant::now();
    for r in rows.iter().take(n_single) {
        let m = xgb::matrix(r, features::LEN, None)?;
        sink += xgb::predict(&booster, &m)?[0];
    }
    let xgb_single = per_call_us(t.elapsed(), n_single);

    let flat: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    let t = Instant::now();
    let m = xgb::matrix(&flat, features::LEN, None)?;
    let batch = xgb::predict(&booster, &m)?;
    let xgb_batch = per_call_us(t.elapsed(), rows.len());

    // Parity on this model, as a guard on the figures.
    let worst = rows
        .iter()
        .zip(&batch)
        .map(|(r, p)| (model.flat.predict(r) - p).abs())
        .fold(0.0f32, f32::max);

    let n_contrib = 1_000;
    let m = xgb::matrix(&flat[..n_contrib * features::LEN], features::LEN, None)?;
    let t = Instant::now();
    let _ = xgb::contributions(&booster, &m)?;
    let xgb_contrib = per_call_us(t.elapsed(), n_contrib);
    std::hint::black_box((sink, phi_sum));
    Ok(json!({
        "trees": model.ensemble.trees.len(),
        "max_depth": model.ensemble.max_depth(),
        "native_pd_us": native_pd,
        "native_pd_best_pass_us": native_pd_best,
        "native_features_and_pd_us": native_features_pd,
        "native_treeshap_us": native_shap,
        "native_treeshap_in_batch_us": native_shap_batch,
        "native_treeshap_table_mb": model.explainer.table_bytes() as f64 / 1e6,
        "native_decision_with_reasons_us": decide_all,
        "xgboost_c_single_row_us": xgb_single,
        "xgboost_c_batch_per_row_us": xgb_batch,
        "xgboost_c_contributions_per_row_us": xgb_contrib,
        "max_abs_pd_difference": worst,
    }))
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

/// A field of `/proc/self/status` in MB (`VmRSS` now, `VmHWM` the peak).
pub(crate) fn proc_status_mb(field: &str) -> f64 {
    status_mb("/proc/self/status", field)
}

/// A field of a `/proc/<pid>/status` file in MB; 0 when it cannot be read.
fn status_mb(path: &str, field: &str) -> f64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| (kb / 1024.0 * 10.0).round() / 10.0)
}

/// An embedded cluster with the scorer's topics, and `n` generated applications encoded for
/// them (key, bytes).
async fn cluster_with_applications(
    brokers: i32,
    topics: &Topics,
    n: u64,
    seed: u64,
) -> anyhow::Result<(EmbeddedKafka, Vec<(String, Vec<u8>)>)> {
    let kafka = EmbeddedKafka::start(
        brokers,
        &[
            (topics.applications.clone(), 6),
            (topics.decisions.clone(), 6),
            (topics.dlq(&topics.applications), 1),
            (topics.model_updates.clone(), 1),
        ],
    )?;
    let apps = tokio::task::spawn_blocking(move || applications(n, seed)).await??;
    let payloads = apps
        .iter()
        .map(|a| Ok((a.application_id.clone(), schemas::encode(a)?)))
        .collect::<anyhow::Result<_>>()?;
    Ok((kafka, payloads))
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

/// A `credit-risk score` process of its own at full rate for `seconds`: applications offered
/// as fast as it decides them (at most 30,000 waiting), its resident memory sampled every ten
/// seconds from `/proc/<pid>/status`.
async fn soak(
    args: &ScoreBench,
    model: &std::path::Path,
    seconds: u64,
) -> anyhow::Result<serde_json::Value> {
    let topics = Topics::default();
    let (kafka, payloads) = cluster_with_applications(args.brokers, &topics, 50_000, 5).await?;
    let explain = match Explain::from(args.explain) {
        Explain::None => "none",
        Explain::NonApproved => "non-approved",
        Explain::All => "all",
    };
    let scorer = std::process::Command::new(std::env::current_exe()?)
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

/// A child process killed when dropped.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Applications through the embedded cluster and the real scorer service.
async fn end_to_end(
    args: &ScoreBench,
    settings: &Settings,
    model: &std::path::Path,
) -> anyhow::Result<serde_json::Value> {
    let id = std::process::id();
    let topics = Topics {
        applications: format!("bench-apps-{id}"),
        decisions: format!("bench-decisions-{id}"),
        model_updates: format!("bench-models-{id}"),
        ..Topics::default()
    };
    let (kafka, payloads) =
        cluster_with_applications(args.brokers, &topics, args.applications, 99).await?;
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
    let svc = ScorerService {
        brokers: kafka.bootstrap_servers().to_string(),
        topics: topics.clone(),
        session_timeout_ms: settings.infra.kafka.session_timeout_ms,
        settings: ScorerSettings {
            group_id: format!("bench-scorer-{id}"),
            model_path: Some(model.to_path_buf()),
            explain: args.explain.into(),
            metrics_bind: "127.0.0.1:0".into(),
            ..settings.scorer.clone()
        },
        domain: settings.domain.clone(),
    };
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
    let (collector, idle) = if args.rate.is_some() {
        (Some(tokio::spawn(collect)), None)
    } else {
        (None, Some(collect))
    };

    let mut payloads = Some(payloads);
    if args.rate.is_none() {
        eprintln!("Producing {expected} applications…");
        produce_all(payloads.take().unwrap_or_default(), None).await;
    }
    let reg = registry.clone();
    let stop = shutdown.clone();
    let scorer = tokio::spawn(async move { scorer::service::run(svc, reg, stop).await });
    let offered = if let Some(rate) = args.rate {
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
        "offered_rate": args.rate,
        "decisions_received": latencies.len(),
        "outcomes": outcomes,
    }))
}
