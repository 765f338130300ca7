//! `credit-risk demo`: the whole product in one process on the embedded defaults.
//!
//! 1. An embedded Kafka cluster and a private PostgreSQL (a fresh book in `var/demo/pg`).
//! 2. The aggregator, and the HTTP edge (dashboard, API, metrics), from the start.
//! 3. A synthetic loan history (the legacy lender's decisions and the loans' lives) published
//!    through the real topics at full speed, until the aggregator has closed its last day.
//! 4. A first model trained from the book and promoted; the scorer starts on it.
//! 5. The live stream: the same lender's world goes on day by day at a set pace, but now the
//!    scorer decides every application and only loans it approves are disbursed; a retrain
//!    every N simulated days promotes only a better model.
//!
//! One metrics registry serves every stage's metrics at the edge's `/metrics`.

use std::collections::{HashMap, HashSet};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{Months, NaiveDate};
use clap::Args;
use edge::decisions::{DecisionWaiter, Wait};
use ingest::generator::kafka::{GeneratorTopics, KafkaSink};
use ingest::generator::sink::{Sink, SinkError, TruthRow, TruthSink};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use schemas::{CustomerRegistered, Decision, LoanApplication, LoanEvent, LoanEventBody, Outcome};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::settings::Settings;

/// `[demo]` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DemoSettings {
    /// Months of history loaded before the live stream (18: loans of the first six months have
    /// completed the 12-month performance window, so the first model has outcomes to learn).
    pub history_months: u32,
    /// Applications a month, history and live (500: the history loads in about a minute).
    pub applications_per_month: u64,
    /// Months of live stream after the history.
    pub live_months: u32,
    /// Simulated business days per minute of the live stream.
    pub days_per_minute: f64,
    /// Retrain from the book every this many simulated days, promoting only a better model.
    pub retrain_every_days: u32,
    /// Boosting rounds of the demo's models (200: seconds on the demo's book).
    pub rounds: u32,
    /// Seed of the synthetic world.
    pub seed: u64,
    /// Data directory of the demo's private PostgreSQL (emptied when a demo starts).
    pub data_dir: std::path::PathBuf,
}

impl Default for DemoSettings {
    fn default() -> Self {
        Self {
            history_months: 18,
            applications_per_month: 500,
            live_months: 24,
            days_per_minute: 20.0,
            retrain_every_days: 90,
            rounds: 200,
            seed: 42,
            data_dir: "var/demo/pg".into(),
        }
    }
}

/// Flags of `demo`; each overrides `[demo]`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Months of history before the live stream.
    #[arg(long)]
    history_months: Option<u32>,
    /// Applications a month.
    #[arg(long)]
    applications_per_month: Option<u64>,
    /// Months of live stream.
    #[arg(long)]
    live_months: Option<u32>,
    /// Simulated business days per minute of the live stream.
    #[arg(long)]
    days_per_minute: Option<f64>,
    /// Retrain every this many simulated days (0: never).
    #[arg(long)]
    retrain_every_days: Option<u32>,
    /// Listen address of the dashboard and API (default `[infra.http] bind`).
    #[arg(long)]
    bind: Option<String>,
    /// Stop once the history is loaded, the first model promoted and the live stream has run
    /// this many simulated days (for scripted checks); default: run until Ctrl-C.
    #[arg(long)]
    exit_after_days: Option<u32>,
}

fn train_args(rounds: u32, tag: &str) -> anyhow::Result<crate::stages::TrainArgs> {
    let out = format!("var/demo/models/pd-{tag}.json");
    let version = format!("pd-demo-{tag}-{}", chrono::Utc::now().timestamp());
    crate::stages::TrainArgs::from_words([
        "train",
        "--from-db",
        "--promote-if-better",
        "--rounds",
        &rounds.to_string(),
        "--out",
        &out,
        "--version",
        &version,
    ])
}

/// Run the demo until Ctrl-C (or `--exit-after-days`).
pub async fn run(args: DemoArgs, mut settings: Settings) -> anyhow::Result<()> {
    let mut demo = settings.demo.clone();
    if let Some(v) = args.history_months {
        demo.history_months = v;
    }
    if let Some(v) = args.applications_per_month {
        demo.applications_per_month = v;
    }
    if let Some(v) = args.live_months {
        demo.live_months = v;
    }
    if let Some(v) = args.days_per_minute {
        demo.days_per_minute = v;
    }
    if let Some(v) = args.retrain_every_days {
        demo.retrain_every_days = v;
    }
    anyhow::ensure!(
        demo.history_months >= 13,
        "history_months must be at least 13: the first model needs loans past the 12-month \
         performance window"
    );
    anyhow::ensure!(
        demo.days_per_minute > 0.0 && demo.applications_per_month > 0,
        "days_per_minute and applications_per_month must be positive"
    );
    let shutdown = runtime::shutdown::on_signals();
    let started = Instant::now();
    if settings.infra.database.url.is_none() {
        if demo.data_dir.exists() {
            std::fs::remove_dir_all(&demo.data_dir)
                .with_context(|| format!("emptying {}", demo.data_dir.display()))?;
        }
        settings.infra.database.embedded_dir = demo.data_dir.clone();
    }
    let infra = runtime::infra::Infra::start(&settings.infra, true)
        .await
        .context("starting Kafka and PostgreSQL")?;
    let url = infra
        .database_url
        .clone()
        .context("the demo needs PostgreSQL")?;
    let brokers = infra.brokers.clone();
    // The stages started below talk to these servers, whatever their settings said.
    settings.infra.kafka.brokers = Some(brokers.clone());
    settings.infra.database.url = Some(url.clone());
    let topics = settings.infra.kafka.topics.clone();
    let pool = runtime::postgres::connect(&url, settings.infra.database.max_connections)
        .await
        .context("connecting to PostgreSQL")?;
    portfolio_aggregator::db::migrate(&pool)
        .await
        .context("migrating the book")?;
    let registry = prometheus::Registry::new();

    let mut aggregator = settings.aggregator.clone();
    aggregator.metrics_bind = "127.0.0.1:0".into();
    let agg_task = tokio::spawn(portfolio_aggregator::service::run(
        portfolio_aggregator::service::AggregatorService {
            brokers: brokers.clone(),
            topics: topics.clone(),
            session_timeout_ms: settings.infra.kafka.session_timeout_ms,
            settings: aggregator,
            domain: settings.domain.clone(),
        },
        pool.clone(),
        registry.clone(),
        shutdown.clone(),
    ));

    let edge = edge::build(
        pool.clone(),
        &brokers,
        topics.clone(),
        settings.edge.clone(),
        settings.domain.clone(),
        registry.clone(),
        shutdown.clone(),
    )
    .await?;
    let bind = args
        .bind
        .unwrap_or_else(|| settings.infra.http.bind.clone());
    let (addr, edge_task) = edge::serve(edge.clone(), &bind, shutdown.clone())?;
    let admin =
        edge::auth::create_key(&pool, edge::auth::Role::Admin, "demo admin", "demo").await?;
    let analyst =
        edge::auth::create_key(&pool, edge::auth::Role::Analyst, "demo analyst", "demo").await?;
    let originator = edge::auth::create_key(
        &pool,
        edge::auth::Role::Originator,
        "demo originator",
        "demo",
    )
    .await?;
    println!("credit-risk demo");
    println!("  Dashboard:        http://{addr}/#key={}", analyst.key);
    println!("  API:              http://{addr}/api  (OpenAPI at http://{addr}/openapi.json)");
    println!("  Metrics:          http://{addr}/metrics  (with an analyst or admin key)");
    println!("  API keys:         admin      {}", admin.key);
    println!("                    analyst    {}", analyst.key);
    println!("                    originator {}", originator.key);
    println!("  Kafka bootstrap:  {brokers}");
    println!("  PostgreSQL:       {}", url.masked());
    println!("Press Ctrl-C to stop.");
    println!(
        "Loading {} months of history ({} applications a month)…",
        demo.history_months, demo.applications_per_month
    );

    // The synthetic world: history, then live.
    let mut generator = settings.generator.clone();
    generator.seed = demo.seed;
    generator.months = demo.history_months + demo.live_months;
    generator.applications = demo.applications_per_month * u64::from(generator.months);
    generator.performance_months = 0;
    let live_from = generator
        .start
        .checked_add_months(Months::new(demo.history_months))
        .context("history too long")?;
    let last_history_day = live_from.pred_opt().context("bad start date")?;
    let (history_done_tx, history_done_rx) = tokio::sync::oneshot::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<bool>();
    let (retrain_tx, mut retrain_rx) = tokio::sync::mpsc::unbounded_channel::<NaiveDate>();
    let mut config = runtime::kafka::producer_config(&brokers);
    config.set("queue.buffering.max.messages", "200000");
    let inner = KafkaSink::new(
        &config,
        GeneratorTopics {
            applications: topics.applications.clone(),
            decisions: topics.decisions.clone(),
            events: topics.events.clone(),
            customers: topics.customers.clone(),
        },
        TruthSink::create(std::path::Path::new("var/demo/generated"))?,
    )?;
    let sink = DemoSink {
        inner,
        last_history_day,
        live: false,
        history_done: Some(history_done_tx),
        go: go_rx,
        waiter: edge.decisions.clone(),
        pending: HashMap::new(),
        dropped: HashSet::new(),
        day: Duration::from_secs_f64(60.0 / demo.days_per_minute),
        next_tick: Instant::now(),
        shutdown: shutdown.clone(),
        handle: tokio::runtime::Handle::current(),
        retrain: retrain_tx,
        retrain_every: demo.retrain_every_days,
        live_days: 0,
        exit_after: args.exit_after_days,
    };
    let domain = settings.domain.clone();
    let gen_task = tokio::task::spawn_blocking(move || {
        let mut sink = sink;
        ingest::generator::generate(&generator, &domain, &mut sink, &mut |_, _| {})
    });

    // Wait for the history to be published and booked.
    tokio::select! {
        r = history_done_rx => { r.context("the generator stopped before the end of the history")?; }
        _ = shutdown.cancelled() => {}
    }
    let mut last_report = Instant::now();
    while !shutdown.is_cancelled() {
        let closed: Option<NaiveDate> =
            sqlx::query_scalar("SELECT max(business_date) FROM portfolio_daily")
                .fetch_one(&pool)
                .await?;
        if closed.is_some_and(|d| d >= last_history_day) {
            break;
        }
        if agg_task.is_finished() {
            shutdown.cancel();
            let _ = go_tx.send(false);
            return match agg_task.await? {
                Err(e) => Err(anyhow::Error::new(e).context("the aggregator stopped")),
                Ok(_) => Err(anyhow::anyhow!("the aggregator stopped")),
            };
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            println!(
                "  the book has closed {} (history ends {last_history_day}); {:.0} s",
                closed.map_or("no day yet".into(), |d| d.to_string()),
                started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if !shutdown.is_cancelled() {
        println!(
            "History booked to {last_history_day} in {:.0} s; training the first model…",
            started.elapsed().as_secs_f64()
        );
        crate::stages::train(train_args(demo.rounds, "initial")?, settings.clone())
            .await
            .context("training the first model")?;
        start_group_at_end(&brokers, &settings.scorer.group_id, &topics.applications)?;
    }
    let mut scorer = settings.scorer.clone();
    scorer.metrics_bind = "127.0.0.1:0".into();
    let scorer_task = tokio::spawn(scorer::service::run(
        scorer::service::ScorerService {
            brokers: brokers.clone(),
            topics: topics.clone(),
            session_timeout_ms: settings.infra.kafka.session_timeout_ms,
            settings: scorer,
            domain: settings.domain.clone(),
        },
        registry.clone(),
        shutdown.clone(),
    ));
    // Let the scorer join its group and load the champion before the first live application.
    let ready = Instant::now();
    while edge.models.borrow().is_none() && ready.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    if !shutdown.is_cancelled() {
        println!(
            "Live: {} simulated days a minute; the scorer decides every application. Ready in {:.0} s.",
            demo.days_per_minute,
            started.elapsed().as_secs_f64()
        );
    }
    let _ = go_tx.send(!shutdown.is_cancelled());

    let retrain_settings = settings.clone();
    let rounds = demo.rounds;
    let retrain_shutdown = shutdown.clone();
    let retrain_task = tokio::spawn(async move {
        while let Some(day) = tokio::select! {
            d = retrain_rx.recv() => d,
            _ = retrain_shutdown.cancelled() => None,
        } {
            println!("Retraining on the book as of {day}…");
            match train_args(rounds, &day.to_string()) {
                Ok(a) => {
                    if let Err(error) = crate::stages::train(a, retrain_settings.clone()).await {
                        println!("Retraining failed: {error:#}");
                    }
                }
                Err(error) => println!("Retraining failed: {error:#}"),
            }
        }
    });

    match gen_task.await? {
        Ok(_) => println!("The live stream has ended; still serving. Press Ctrl-C to stop."),
        Err(ingest::generator::GenerateError::Sink(SinkError::Stopped)) => {}
        Err(e) => println!("The stream stopped: {e}"),
    }
    if args.exit_after_days.is_some() {
        shutdown.cancel();
    }
    shutdown.cancelled().await;
    println!("Stopping…");
    let _ = retrain_task.await;
    for (name, result) in [
        (
            "scorer",
            scorer_task
                .await
                .map(|r| r.map(|_| ()).map_err(|e| e.to_string())),
        ),
        (
            "aggregator",
            agg_task
                .await
                .map(|r| r.map(|_| ()).map_err(|e| e.to_string())),
        ),
    ] {
        if let Ok(Err(e)) = result {
            println!("The {name} stopped with an error: {e}");
        }
    }
    let _ = edge_task.await;
    pool.close().await;
    let data = infra
        .embedded_postgres()
        .map(|pg| pg.data_dir().to_path_buf());
    infra.stop();
    match data {
        Some(dir) => println!(
            "Stopped. The book is in {} (start it with `pg_ctl -D {0}`); ground truth in var/demo/generated; models in var/demo/models.",
            dir.display()
        ),
        None => println!("Stopped."),
    }
    Ok(())
}

/// Commit `group`'s offsets at the end of `topic`, so a scorer joining it decides only what
/// arrives from now on (the history's applications were decided by the legacy lender).
fn start_group_at_end(brokers: &str, group: &str, topic: &str) -> anyhow::Result<()> {
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut tpl = TopicPartitionList::new();
    for t in metadata.topics() {
        for p in t.partitions() {
            let (_, high) = consumer.fetch_watermarks(topic, p.id(), Duration::from_secs(10))?;
            tpl.add_partition_offset(topic, p.id(), Offset::Offset(high))?;
        }
    }
    consumer.commit(&tpl, CommitMode::Sync)?;
    Ok(())
}

/// Publishes the synthetic world: the history as it happened, then (after the handshake) the
/// live days at a pace, with the scorer's decisions replacing the legacy lender's.
struct DemoSink {
    inner: KafkaSink<TruthSink>,
    last_history_day: NaiveDate,
    live: bool,
    history_done: Option<tokio::sync::oneshot::Sender<()>>,
    go: mpsc::Receiver<bool>,
    waiter: DecisionWaiter,
    pending: HashMap<String, (NaiveDate, Wait)>,
    dropped: HashSet<String>,
    day: Duration,
    next_tick: Instant,
    shutdown: CancellationToken,
    handle: tokio::runtime::Handle,
    retrain: tokio::sync::mpsc::UnboundedSender<NaiveDate>,
    retrain_every: u32,
    live_days: u32,
    exit_after: Option<u32>,
}

impl DemoSink {
    fn check(&self) -> Result<(), SinkError> {
        if self.shutdown.is_cancelled() {
            Err(SinkError::Stopped)
        } else {
            Ok(())
        }
    }
}

impl Sink for DemoSink {
    fn customer(&mut self, c: &CustomerRegistered) -> Result<(), SinkError> {
        self.check()?;
        self.inner.customer(c)
    }

    fn application(&mut self, a: &LoanApplication) -> Result<(), SinkError> {
        self.check()?;
        if self.live {
            let day = a.submitted_at.date_naive();
            self.pending.insert(
                a.application_id.clone(),
                (day, self.waiter.wait(&a.application_id)),
            );
        }
        self.inner.application(a)
    }

    fn decision(&mut self, d: &Decision) -> Result<(), SinkError> {
        if self.live {
            // Live, the scorer decides; the legacy lender's decision is not published.
            Ok(())
        } else {
            self.inner.decision(d)
        }
    }

    fn event(&mut self, e: &LoanEvent) -> Result<(), SinkError> {
        self.check()?;
        match &e.body {
            LoanEventBody::LoanDisbursed(d) if self.live => {
                if let Some((_, wait)) = self.pending.remove(&d.application_id) {
                    let decided = self.handle.block_on(wait.within(Duration::from_secs(10)));
                    if !decided.is_some_and(|x| x.decision == Outcome::Approve) {
                        self.dropped.insert(d.loan_id.clone());
                        return Ok(());
                    }
                }
                self.inner.event(e)
            }
            LoanEventBody::BusinessDayClosed(t) => {
                if self.live {
                    let now = Instant::now();
                    if self.next_tick > now {
                        std::thread::sleep(self.next_tick - now);
                    }
                    self.check()?;
                    self.next_tick = Instant::now().max(self.next_tick) + self.day;
                    self.inner.event(e)?;
                    self.live_days += 1;
                    let horizon = t.business_date - chrono::Duration::days(10);
                    self.pending.retain(|_, (day, _)| *day >= horizon);
                    if self.retrain_every > 0 && self.live_days.is_multiple_of(self.retrain_every) {
                        let _ = self.retrain.send(t.business_date);
                    }
                    if self.exit_after.is_some_and(|n| self.live_days >= n) {
                        return Err(SinkError::Stopped);
                    }
                    return Ok(());
                }
                self.inner.event(e)?;
                if t.business_date >= self.last_history_day {
                    if let Some(tx) = self.history_done.take() {
                        let _ = tx.send(());
                    }
                    // Wait for the book to catch up, the first model and the scorer.
                    if !self.go.recv().unwrap_or(false) {
                        return Err(SinkError::Stopped);
                    }
                    self.live = true;
                    self.next_tick = Instant::now();
                }
                Ok(())
            }
            body => {
                if body.loan_id().is_some_and(|id| self.dropped.contains(id)) {
                    return Ok(());
                }
                self.inner.event(e)
            }
        }
    }

    fn truth(&mut self, t: &TruthRow) -> Result<(), SinkError> {
        self.inner.truth(t)
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.inner.finish()
    }
}
