//! `aggregate`: (a) events per second applied from the embedded Kafka cluster
//! to a private PostgreSQL with exactly-once commits, on a generated history; (b) the day-end of
//! a book of N open loans; (c) the portfolio summary read on that book. Prints one JSON line.

use std::time::{Duration, Instant};

use anyhow::Context;
use book::synthetic;
use clap::Args;
use futures::future::join_all;
use ingest::generator::sink::MemorySink;
use ingest::generator::{generate, GeneratorSettings};
use portfolio_aggregator::metrics::Metrics;
use portfolio_aggregator::service::{AggregatorService, AggregatorSettings};
use rdkafka::producer::{FutureProducer, FutureRecord};
use runtime::kafka::{producer_config, EmbeddedKafka};
use runtime::postgres::{connect, EmbeddedPostgres};
use runtime::settings::Topics;
use schemas::LoanEventBody;
use serde_json::json;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::http;
use crate::settings::Settings;
use crate::sys::proc_status_mb;

/// Flags of `aggregate`.
#[derive(Debug, Args)]
pub struct AggregateBench {
    /// Applications of the generated history streamed through Kafka (with their customers,
    /// decisions and every loan event).
    #[arg(long, default_value_t = 40_000)]
    applications: u64,
    /// Months over which the applications arrive (the history runs 12 months longer).
    #[arg(long, default_value_t = 6)]
    months: u32,
    /// Partitions per topic of the embedded cluster (it keeps at most 5 MB per partition, so
    /// the whole history must fit before it is consumed).
    #[arg(long, default_value_t = 12)]
    partitions: i32,
    /// Open loans in the book whose day-end and summary read are timed.
    #[arg(long, default_value_t = 1_000_000)]
    book: i64,
    /// Skip the streaming part.
    #[arg(long)]
    skip_stream: bool,
    /// Skip the day-end part.
    #[arg(long)]
    skip_book: bool,
    /// Publish only the last business day's close: the whole history arrives as one business
    /// day's traffic (no day-end barrier between batches) and ends with a single day-end.
    #[arg(long)]
    one_day: bool,
    /// After the day-end: `GET /api/portfolio/summary` through the HTTP edge on that book under
    /// this many concurrent connections (wrk, Debian package `wrk`), beside a plain warp route.
    #[arg(long, value_name = "CONNECTIONS")]
    http: Option<u32>,
    /// Seconds of each wrk run.
    #[arg(long, default_value_t = 20)]
    http_seconds: u32,
}

/// Run the benchmark.
pub async fn run(args: AggregateBench, settings: Settings) -> anyhow::Result<()> {
    let mut pg = EmbeddedPostgres::start_ephemeral()
        .await
        .context("starting a private PostgreSQL")?;
    let mut out = serde_json::Map::new();
    if !args.skip_stream {
        let pool = connect(pg.url(), 4).await?;
        book::db::migrate(&pool).await?;
        let figures = stream(&args, &settings, &pool).await?;
        out.extend(figures);
        pool.close().await;
    }
    if !args.skip_book {
        let pool = connect(pg.url(), 2).await?;
        // A fresh schema for the synthetic book.
        synthetic::reset_schema(&pool)
            .await
            .context("resetting the schema")?;
        let pool = {
            pool.close().await;
            connect(pg.url(), 2).await?
        };
        book::db::migrate(&pool).await?;
        let figures = book(&args, &settings, &pool).await?;
        out.extend(figures);
        if let Some(connections) = args.http {
            out.extend(http::run(&settings, &pool, connections, args.http_seconds).await?);
        }
        pool.close().await;
    }
    out.insert("max_rss_mb".into(), json!(proc_status_mb("VmHWM:")));
    pg.stop();
    println!("{}", serde_json::Value::Object(out));
    Ok(())
}

type Message = (String, String, Vec<u8>, Option<i32>);

/// Consumer group of the benchmark's aggregator.
const GROUP: &str = "bench-aggregator";

async fn stream(
    args: &AggregateBench,
    settings: &Settings,
    pool: &PgPool,
) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    let topics = Topics {
        partitions: args.partitions,
        ..settings.infra.kafka.topics.clone()
    };
    let kafka = EmbeddedKafka::start(1, &topics.all())?;
    let brokers = kafka.bootstrap_servers().to_string();
    eprintln!("Generating {} applications …", args.applications);
    let mut sink = MemorySink::default();
    let g = GeneratorSettings {
        applications: args.applications,
        months: args.months,
        ..GeneratorSettings::default()
    };
    generate(&g, &settings.domain, &mut sink, &mut |_, _| {})?;
    let mut messages: Vec<Message> = Vec::new();
    for c in &sink.customers {
        messages.push((
            topics.customers.clone(),
            c.customer_id.clone(),
            schemas::encode(c)?,
            None,
        ));
    }
    for a in &sink.applications {
        messages.push((
            topics.applications.clone(),
            a.application_id.clone(),
            schemas::encode(a)?,
            None,
        ));
    }
    for d in &sink.decisions {
        messages.push((
            topics.decisions.clone(),
            d.application_id.clone(),
            schemas::encode(d)?,
            None,
        ));
    }
    let final_day = sink.events.iter().rev().find_map(|e| match &e.body {
        LoanEventBody::BusinessDayClosed(b) => Some(b.business_date),
        _ => None,
    });
    let mut last_day = None;
    let mut loan_events = 0u64;
    for e in &sink.events {
        let payload = schemas::encode(e)?;
        match (&e.body, e.body.loan_id()) {
            (LoanEventBody::BusinessDayClosed(b), _) => {
                if args.one_day && Some(b.business_date) != final_day {
                    continue;
                }
                last_day = Some(b.business_date);
                for p in 0..topics.partitions {
                    messages.push((
                        topics.events.clone(),
                        e.event_id.clone(),
                        payload.clone(),
                        Some(p),
                    ));
                }
            }
            (_, loan) => {
                loan_events += 1;
                messages.push((
                    topics.events.clone(),
                    loan.unwrap_or_default().to_string(),
                    payload,
                    None,
                ));
            }
        }
    }
    let last_day = last_day.context("the history has no business day")?;
    eprintln!("Publishing {} messages …", messages.len());
    let producer: FutureProducer = producer_config(&brokers)
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "1000000")
        .create()?;
    for chunk in messages.chunks(20_000) {
        let sends = chunk.iter().map(|(topic, key, payload, partition)| {
            let mut r = FutureRecord::to(topic).key(key).payload(payload);
            if let Some(p) = partition {
                r = r.partition(*p);
            }
            producer.send(r, Duration::from_secs(60))
        });
        for result in join_all(sends).await {
            result.map_err(|(e, _)| e)?;
        }
    }
    let total = messages.len();
    drop(messages);
    drop(sink);

    eprintln!("Applying …");
    let kafka = runtime::settings::KafkaSettings {
        topics,
        ..settings.infra.kafka.clone()
    };
    let svc = AggregatorService::new(
        &brokers,
        &kafka,
        AggregatorSettings {
            group_id: GROUP.into(),
            ..settings.aggregator.clone()
        },
        settings.domain.clone(),
    );
    let metrics = Metrics::new(&prometheus::Registry::new())?;
    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let task = tokio::spawn(portfolio_aggregator::service::run_loop(
        svc,
        pool.clone(),
        metrics.clone(),
        shutdown.clone(),
    ));
    loop {
        // Done when the last day is closed and every message of every topic is applied: the
        // offsets the book stores (each partition's next offset) add up to all messages.
        let progress = synthetic::stream_progress(pool, last_day, GROUP).await?;
        if progress.day_closed && progress.next_offsets >= i64::try_from(total).unwrap_or(i64::MAX)
        {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(3_600),
            "the history was not applied within an hour"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    shutdown.cancel();
    let totals = task.await??;
    let book_totals = synthetic::stream_totals(pool).await?;
    let (day_ends, day_end_seconds) = (book_totals.day_ends, book_totals.day_end_seconds);
    let mut m = serde_json::Map::new();
    m.insert("events".into(), json!(total));
    m.insert("loan_events".into(), json!(loan_events));
    m.insert("seconds".into(), json!(round3(seconds)));
    m.insert(
        "events_per_sec".into(),
        json!((total as f64 / seconds).round()),
    );
    m.insert("batches".into(), json!(totals.batches));
    m.insert("applied".into(), json!(totals.applied));
    m.insert("dead_lettered".into(), json!(totals.dead_lettered));
    m.insert("day_ends".into(), json!(day_ends));
    m.insert(
        "day_end_seconds_total".into(),
        json!(round3(day_end_seconds)),
    );
    m.insert("loans_booked".into(), json!(book_totals.loans));
    let apply_seconds = seconds - day_end_seconds;
    if apply_seconds > 0.0 {
        m.insert(
            "events_per_sec_excluding_day_ends".into(),
            json!((total as f64 / apply_seconds).round()),
        );
    }
    m.insert("one_day".into(), json!(args.one_day));
    drop(kafka);
    Ok(m)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// A synthetic book of `n` open loans (12–60 months, a realistic share in arrears), built in
/// SQL by [`book::synthetic`], then two day-ends and the summary read timed.
async fn book(
    args: &AggregateBench,
    settings: &Settings,
    pool: &PgPool,
) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    let n = args.book.max(1);
    eprintln!("Building a book of {n} open loans …");
    let built = Instant::now();
    synthetic::build_open_book(pool, n).await?;
    let build_seconds = built.elapsed().as_secs_f64();
    let open = synthetic::active_loans(pool).await?;
    eprintln!("Book built in {build_seconds:.1} s; running the day-end …");
    let date = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).context("date")?;
    synthetic::open_business_day(pool, date).await?;
    let mut tx = pool.begin().await?;
    let started = Instant::now();
    let report = book::dayend::close_day(&mut tx, date, &settings.domain).await?;
    tx.commit().await?;
    let day_end_seconds = started.elapsed().as_secs_f64();
    // A second day-end: the steady state, where most loans do not change.
    let next = date.succ_opt().context("date")?;
    synthetic::open_business_day(pool, next).await?;
    let mut tx = pool.begin().await?;
    let started = Instant::now();
    let second = book::dayend::close_day(&mut tx, next, &settings.domain).await?;
    tx.commit().await?;
    let second_seconds = started.elapsed().as_secs_f64();

    let mut reads = Vec::with_capacity(1_000);
    for _ in 0..1_000 {
        let t = Instant::now();
        let s = book::queries::summary(pool, None).await?;
        reads.push(t.elapsed().as_secs_f64() * 1e3);
        anyhow::ensure!(s.active_loans == open, "summary disagrees with the book");
    }
    reads.sort_by(f64::total_cmp);
    let mut m = serde_json::Map::new();
    m.insert("book_open_loans".into(), json!(open));
    m.insert("book_build_seconds".into(), json!(round3(build_seconds)));
    m.insert("day_end_seconds".into(), json!(round3(day_end_seconds)));
    m.insert("day_end_loans_changed".into(), json!(report.loans_changed));
    m.insert(
        "day_end_npa_ratio".into(),
        json!(round3(report.gross_npa_ratio)),
    );
    m.insert(
        "second_day_end_seconds".into(),
        json!(round3(second_seconds)),
    );
    m.insert(
        "second_day_end_loans_changed".into(),
        json!(second.loans_changed),
    );
    m.insert(
        "summary_p50_ms".into(),
        json!(round3(reads[reads.len() / 2])),
    );
    m.insert(
        "summary_p99_ms".into(),
        json!(round3(reads[reads.len() * 99 / 100])),
    );
    Ok(m)
}
