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
use ingest::generator::kafka::{GeneratorTopics, KafkaSink};
use ingest::generator::sink::{SinkError, TruthSink};
use portfolio_aggregator::service::AggregatorService;
use rdkafka::producer::FutureProducer;
use scorer::service::ScorerService;
use sqlx::PgPool;
use trainer::from_book::BookTraining;
use trainer::xgb::XgbParams;

use self::sink::{start_group_at_end, DemoSink};
use crate::settings::Settings;
use crate::training::{summary, train_and_announce, Announcer, TrainingError};

mod sink;

/// One demo run: every setting (with `[demo]` already overridden by the command line), where
/// to listen, and when to stop by itself.
#[derive(Debug, Clone)]
pub struct DemoRequest {
    /// The whole settings tree.
    pub settings: Settings,
    /// Listen address of the dashboard and API (default `[infra.http] bind`).
    pub bind: Option<String>,
    /// Stop after this many live days (default: run until Ctrl-C).
    pub exit_after_days: Option<u32>,
}

/// The demo's trainings: the `train` command's defaults with the demo's rounds, promoting
/// only a better model.
fn training(settings: &Settings, tag: &str) -> BookTraining {
    let mut t = BookTraining::new(
        format!("var/demo/models/pd-{tag}.json").into(),
        XgbParams::for_credit(settings.demo.rounds),
        settings.domain.scaling.clone(),
    );
    t.version = Some(format!("pd-demo-{tag}-{}", chrono::Utc::now().timestamp()));
    t.promote_if_better = true;
    t
}

/// Train from the book and announce a promotion; the report is printed.
async fn retrain(
    pool: &PgPool,
    settings: &Settings,
    producer: &FutureProducer,
    tag: &str,
) -> Result<(), TrainingError> {
    let report = train_and_announce(
        pool,
        &training(settings, tag),
        &(),
        Some(Announcer {
            producer,
            topic: &settings.infra.kafka.topics.model_updates,
        }),
    )
    .await?;
    print!("{}", summary(&report));
    Ok(())
}

/// Run the demo until Ctrl-C (or `exit_after_days`).
pub async fn run(request: DemoRequest) -> anyhow::Result<()> {
    let DemoRequest {
        mut settings,
        bind,
        exit_after_days,
    } = request;
    let demo = settings.demo.clone();
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
    book::db::migrate(&pool)
        .await
        .context("migrating the book")?;
    let registry = prometheus::Registry::new();
    let producer: FutureProducer = runtime::kafka::producer_config(&brokers)
        .create()
        .context("creating the Kafka producer")?;

    let mut aggregator = settings.aggregator.clone();
    aggregator.metrics_bind = "127.0.0.1:0".into();
    let agg_task = tokio::spawn(portfolio_aggregator::service::run(
        AggregatorService::new(
            &brokers,
            &settings.infra.kafka,
            aggregator,
            settings.domain.clone(),
        ),
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
    let bind = bind.unwrap_or_else(|| settings.infra.http.bind.clone());
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
        GeneratorTopics::from(&topics),
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
        exit_after: exit_after_days,
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
        let closed = match book::queries::resolve_date(&pool, None).await {
            Ok(date) => Some(date),
            Err(book::queries::QueryError::NoClosedDay(_)) => None,
            Err(e) => return Err(e.into()),
        };
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
        retrain(&pool, &settings, &producer, "initial")
            .await
            .context("training the first model")?;
        start_group_at_end(&brokers, &settings.scorer.group_id, &topics.applications)?;
    }
    let mut scorer = settings.scorer.clone();
    scorer.metrics_bind = "127.0.0.1:0".into();
    let scorer_task = tokio::spawn(scorer::service::run(
        ScorerService::new(
            &brokers,
            &settings.infra.kafka,
            scorer,
            settings.domain.clone(),
        ),
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
    let retrain_pool = pool.clone();
    let retrain_producer = producer.clone();
    let retrain_shutdown = shutdown.clone();
    let retrain_task = tokio::spawn(async move {
        while let Some(day) = tokio::select! {
            d = retrain_rx.recv() => d,
            _ = retrain_shutdown.cancelled() => None,
        } {
            println!("Retraining on the book as of {day}…");
            let tag = day.to_string();
            if let Err(error) =
                retrain(&retrain_pool, &retrain_settings, &retrain_producer, &tag).await
            {
                println!("Retraining failed: {}", runtime::telemetry::chain(&error));
            }
        }
    });

    match gen_task.await? {
        Ok(_) => println!("The live stream has ended; still serving. Press Ctrl-C to stop."),
        Err(ingest::generator::GenerateError::Sink(SinkError::Stopped)) => {}
        Err(e) => println!("The stream stopped: {}", runtime::telemetry::chain(&e)),
    }
    if exit_after_days.is_some() {
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
                .map(|r| r.map(|_| ()).map_err(|e| runtime::telemetry::chain(&e))),
        ),
        (
            "aggregator",
            agg_task
                .await
                .map(|r| r.map(|_| ()).map_err(|e| runtime::telemetry::chain(&e))),
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
