//! `credit-risk bench aggregate`: (a) events per second applied from the embedded Kafka cluster
//! to a private PostgreSQL with exactly-once commits, on a generated history; (b) the day-end of
//! a book of N open loans; (c) the portfolio summary read on that book. Prints one JSON line.

use std::time::{Duration, Instant};

use anyhow::Context;
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

use crate::settings::Settings;

/// Flags of `bench aggregate`.
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
        portfolio_aggregator::db::migrate(&pool).await?;
        let figures = stream(&args, &settings, &pool).await?;
        out.extend(figures);
        pool.close().await;
    }
    if !args.skip_book {
        let pool = connect(pg.url(), 2).await?;
        // A fresh schema for the synthetic book.
        sqlx::query("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
            .execute(&pool)
            .await
            .ok();
        let pool = {
            pool.close().await;
            connect(pg.url(), 2).await?
        };
        portfolio_aggregator::db::migrate(&pool).await?;
        let figures = book(&args, &settings, &pool).await?;
        out.extend(figures);
        if let Some(connections) = args.http {
            out.extend(
                crate::bench_http::run(&settings, &pool, connections, args.http_seconds).await?,
            );
        }
        pool.close().await;
    }
    out.insert(
        "max_rss_mb".into(),
        json!(crate::bench::proc_status_mb("VmHWM:")),
    );
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
    let svc = AggregatorService {
        brokers,
        topics,
        session_timeout_ms: settings.infra.kafka.session_timeout_ms,
        settings: AggregatorSettings {
            group_id: GROUP.into(),
            ..settings.aggregator.clone()
        },
        domain: settings.domain.clone(),
    };
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
        let (closed, consumed): (bool, i64) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM business_days WHERE business_date = $1 \
               AND closed_at IS NOT NULL), \
             (SELECT coalesce(sum(next_offset), 0)::int8 FROM consumer_offsets \
               WHERE consumer_group = $2)",
        )
        .bind(last_day)
        .bind(GROUP)
        .fetch_one(pool)
        .await?;
        if closed && consumed >= i64::try_from(total).unwrap_or(i64::MAX) {
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
    let (day_ends, day_end_seconds): (i64, f64) = sqlx::query_as(
        "SELECT count(*), coalesce(sum(seconds), 0) FROM business_days WHERE closed_at IS NOT NULL",
    )
    .fetch_one(pool)
    .await?;
    let loans: i64 = sqlx::query_scalar("SELECT count(*) FROM loans")
        .fetch_one(pool)
        .await?;
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
    m.insert("loans_booked".into(), json!(loans));
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
/// SQL, then one day-end and the summary read timed.
async fn book(
    args: &AggregateBench,
    settings: &Settings,
    pool: &PgPool,
) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    let n = args.book.max(1);
    eprintln!("Building a book of {n} open loans …");
    let built = Instant::now();
    // Loans disbursed over 24 months before 2026-01-01; EMI schedules from a fixed principal
    // split (the day-end reads due dates and unpaid amounts, not the amortisation maths).
    let statements = [
        "INSERT INTO customers (customer_id, registered_at, full_name, email, phone, \
           employment_type, years_employed, monthly_income, existing_emi, dependents, residence, \
           region) \
         SELECT 'C' || i, '2023-01-01', 'Customer', 'c@example.com', '0', 'salaried', 5, \
           10000000, 0, 1, 'rent', (ARRAY['north','south','east','west','central'])[1 + i % 5] \
         FROM generate_series(1, $1 / 2) i",
        "INSERT INTO loans (loan_id, application_id, customer_id, principal, interest_rate_bps, \
           tenure_months, emi, instalments, disbursed_on, first_due_on, maturity_on, \
           collateral_value, purpose, region, grade, origination_pd) \
         SELECT 'L' || i, 'A' || i, 'C' || (1 + i % ($1 / 2)), 12000000, 1200, t, 12000000 / t, t, \
           d, d + 30, d + 30 * t, CASE WHEN i % 3 = 0 THEN 20000000 END, \
           (ARRAY['home','auto','personal','education','business','gold'])[1 + i % 6], \
           (ARRAY['north','south','east','west','central'])[1 + i % 5], \
           (ARRAY['A','B','C','D','E'])[1 + i % 5], 0.01 + (i % 20) / 100.0 \
         FROM (SELECT i, (12 * (1 + i % 5))::int AS t, \
                 DATE '2024-01-01' + (i % 730)::int AS d FROM generate_series(1, $1) i) s",
        "INSERT INTO loan_schedules (loan_id, due_on, principal, interest) \
         SELECT loan_id, \
           ARRAY(SELECT first_due_on + (k - 1) * 30 FROM generate_series(1, instalments) k), \
           array_fill(emi, ARRAY[instalments]), array_fill(0::int8, ARRAY[instalments]) \
         FROM loans",
        // Every instalment due before the business date is paid, except from the first one a
        // loan misses on: all of them for one loan in 17, one instalment in 97 for the rest.
        "INSERT INTO loan_status (loan_id, customer_id, state, outstanding_principal, \
           next_unpaid_seq, next_unpaid_due_on) \
         SELECT l.loan_id, l.customer_id, 'ACTIVE', l.emi * (l.instalments - u.k + 1), \
           u.k, l.first_due_on + (u.k - 1) * 30 \
         FROM (SELECT loan_id, customer_id, first_due_on, emi, instalments, \
                 substr(loan_id, 2)::int AS n FROM loans) l \
         CROSS JOIN LATERAL (SELECT min(k) AS k FROM generate_series(1, l.instalments) k \
           WHERE NOT (l.first_due_on + (k - 1) * 30 < DATE '2026-01-01' \
             AND l.n % 17 <> 0 AND (l.n * 31 + k) % 97 <> 0)) u \
         WHERE u.k IS NOT NULL",
        "ANALYZE",
    ];
    for sql in statements {
        let q = sqlx::query(sql);
        let q = if sql.contains("$1") { q.bind(n) } else { q };
        q.execute(pool).await?;
    }
    let build_seconds = built.elapsed().as_secs_f64();
    let open: i64 = sqlx::query_scalar("SELECT count(*) FROM loan_status WHERE state = 'ACTIVE'")
        .fetch_one(pool)
        .await?;
    eprintln!("Book built in {build_seconds:.1} s; running the day-end …");
    let date = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).context("date")?;
    sqlx::query(
        "INSERT INTO business_days (business_date, partitions, ticks) VALUES ($1, 1, '{0}')",
    )
    .bind(date)
    .execute(pool)
    .await?;
    let mut tx = pool.begin().await?;
    let started = Instant::now();
    let report = portfolio_aggregator::dayend::close_day(&mut tx, date, &settings.domain).await?;
    tx.commit().await?;
    let day_end_seconds = started.elapsed().as_secs_f64();
    // A second day-end: the steady state, where most loans do not change.
    let next = date.succ_opt().context("date")?;
    sqlx::query(
        "INSERT INTO business_days (business_date, partitions, ticks) VALUES ($1, 1, '{0}')",
    )
    .bind(next)
    .execute(pool)
    .await?;
    let mut tx = pool.begin().await?;
    let started = Instant::now();
    let second = portfolio_aggregator::dayend::close_day(&mut tx, next, &settings.domain).await?;
    tx.commit().await?;
    let second_seconds = started.elapsed().as_secs_f64();

    let mut reads = Vec::with_capacity(1_000);
    for _ in 0..1_000 {
        let t = Instant::now();
        let s = portfolio_aggregator::queries::summary(pool, None).await?;
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
