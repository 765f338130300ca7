//! Exactly-once into PostgreSQL. A generated stream of more than 200,000 loan events is applied
//! three times, each by `credit-risk aggregate` processes on a broker in a process of its own
//! (six partitions: the embedded broker keeps at most 5 MB per partition):
//! uninterrupted; with the aggregator SIGKILLed at random moments and restarted; and with its
//! PostgreSQL crashed and restarted mid-stream. Every table's checksum must be the same in the
//! three books. Then the whole stream is published a second time and the book does not change.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use futures::future::join_all;
use ingest::generator::sink::MemorySink;
use ingest::generator::{generate, GeneratorSettings};
use rand::{Rng, SeedableRng};
use rdkafka::producer::{FutureProducer, FutureRecord};
use risk_core::settings::DomainSettings;
use runtime::kafka::producer_config;
use runtime::postgres::{connect, EmbeddedPostgres};
use runtime::settings::Topics;
use schemas::LoanEventBody;
use sqlx::PgPool;
use tests::scratch::ScratchDatabase;

use tests::process::{start_broker, Killed};

const BIN: &str = env!("CARGO_BIN_EXE_credit-risk");

const PARTITIONS: i32 = 6;
/// SIGKILLs of the aggregator during the stream.
const KILLS: u32 = 8;

fn start_aggregator(bootstrap: &str, database: &str, group: &str) -> Killed {
    Killed(
        Command::new(BIN)
            .args(["aggregate", "--metrics-bind", "127.0.0.1:0"])
            .env("KAFKA_BROKERS", bootstrap)
            .env("DATABASE_URL", database)
            .env("CREDIT__AGGREGATOR__GROUP_ID", group)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

struct Stream {
    records: Vec<(String, String, Vec<u8>, Option<i32>)>,
    events: Vec<(String, String, Vec<u8>, Option<i32>)>,
    decisions: i64,
    last_day: NaiveDate,
}

fn stream(topics: &Topics) -> Stream {
    let settings = GeneratorSettings {
        seed: 5,
        applications: 36_000,
        months: 6,
        ..GeneratorSettings::default()
    };
    let mut sink = MemorySink::default();
    generate(
        &settings,
        &DomainSettings::default(),
        &mut sink,
        &mut |_, _| {},
    )
    .unwrap();
    let mut records = Vec::new();
    for c in &sink.customers {
        records.push((
            topics.customers.clone(),
            c.customer_id.clone(),
            schemas::encode(c).unwrap(),
            None,
        ));
    }
    for a in &sink.applications {
        records.push((
            topics.applications.clone(),
            a.application_id.clone(),
            schemas::encode(a).unwrap(),
            None,
        ));
    }
    for d in &sink.decisions {
        records.push((
            topics.decisions.clone(),
            d.application_id.clone(),
            schemas::encode(d).unwrap(),
            None,
        ));
    }
    let mut events = Vec::new();
    let mut last_day = NaiveDate::default();
    for e in &sink.events {
        let payload = schemas::encode(e).unwrap();
        match (&e.body, e.body.loan_id()) {
            (LoanEventBody::BusinessDayClosed(b), _) => {
                last_day = b.business_date;
                for p in 0..PARTITIONS {
                    events.push((
                        topics.events.clone(),
                        e.event_id.clone(),
                        payload.clone(),
                        Some(p),
                    ));
                }
            }
            (_, Some(loan)) => {
                events.push((topics.events.clone(), loan.to_string(), payload, None))
            }
            (_, None) => unreachable!(),
        }
    }
    let loan_events = sink
        .events
        .iter()
        .filter(|e| !matches!(e.body, LoanEventBody::BusinessDayClosed(_)))
        .count();
    assert!(loan_events >= 200_000, "{loan_events} loan events");
    Stream {
        records,
        events,
        decisions: sink.decisions.len() as i64,
        last_day,
    }
}

async fn publish(producer: &FutureProducer, messages: &[(String, String, Vec<u8>, Option<i32>)]) {
    for chunk in messages.chunks(5_000) {
        let sends = chunk.iter().map(|(topic, key, payload, partition)| {
            let mut r = FutureRecord::to(topic).key(key).payload(payload);
            if let Some(p) = partition {
                r = r.partition(*p);
            }
            producer.send(r, Duration::from_secs(60))
        });
        for result in join_all(sends).await {
            result.map_err(|(e, _)| e).unwrap();
        }
    }
}

async fn scalar(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar::<_, Option<i64>>(sql)
        .fetch_one(pool)
        .await
        .ok()
        .flatten()
        .unwrap_or(-1)
}

async fn closed(pool: &PgPool, day: NaiveDate) -> bool {
    sqlx::query_scalar::<_, bool>(
        "SELECT EXISTS (SELECT 1 FROM business_days WHERE business_date = $1 AND closed_at IS NOT NULL)",
    )
    .bind(day)
    .fetch_one(pool)
    .await
    .unwrap_or(false)
}

/// Checksum of every table of the book (columns that record wall-clock time left out).
async fn checksum(pool: &PgPool) -> Vec<(String, i64, String)> {
    let tables = [
        ("customers", "SELECT * FROM customers"),
        ("applications", "SELECT * FROM applications"),
        ("decisions", "SELECT * FROM decisions"),
        ("decision_reasons", "SELECT * FROM decision_reasons"),
        ("customer_risk", "SELECT * FROM customer_risk"),
        ("loans", "SELECT * FROM loans"),
        ("loan_schedules", "SELECT * FROM loan_schedules"),
        ("instalments", "SELECT * FROM instalments"),
        ("payments", "SELECT * FROM payments"),
        ("loan_status", "SELECT * FROM loan_status"),
        ("status_history", "SELECT * FROM status_history"),
        ("applied_events", "SELECT * FROM applied_events"),
        ("repayment_daily", "SELECT * FROM repayment_daily"),
        ("vintage_hits", "SELECT * FROM vintage_hits"),
        ("roll_rates", "SELECT * FROM roll_rates"),
        (
            "portfolio_daily",
            "SELECT business_date, total_loans, active_loans, closed_loans, written_off_loans, \
               defaulted_loans, total_disbursed, outstanding, npa_loans, npa_amount, \
               npa_provisions, provisions, ecl, par30, par90, written_off_amount, collected, \
               decided, approved, referred, declined, by_class, by_stage, by_dpd_bucket, \
               by_purpose, by_region, by_grade, by_status, by_vintage FROM portfolio_daily",
        ),
        (
            "business_days",
            "SELECT business_date, partitions, (SELECT array_agg(t ORDER BY t) FROM unnest(ticks) t), \
               closed_at IS NOT NULL, loans_aged FROM business_days",
        ),
    ];
    let mut out = Vec::new();
    for (name, select) in tables {
        let (rows, md5): (i64, String) = sqlx::query_as(&format!(
            "SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') \
             FROM ({select}) t"
        ))
        .fetch_one(pool)
        .await
        .unwrap();
        out.push((name.to_string(), rows, md5));
    }
    out
}

async fn wait_until<F, Fut>(what: &str, limit: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !f().await {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_restarted_and_database_crashed_aggregators_keep_the_same_book() {
    let (_broker, bootstrap) = start_broker(BIN, PARTITIONS);
    let topics = Topics::default();
    let s = stream(&topics);
    let producer: FutureProducer = producer_config(&bootstrap).create().unwrap();

    let reference_db = ScratchDatabase::create().await.unwrap();
    let killed_db = ScratchDatabase::create().await.unwrap();
    // A durable cluster (fsync and synchronous commit on): exactly-once across a database
    // crash presumes the database keeps what it acknowledged.
    let crash_dir = tempfile::tempdir().unwrap();
    let mut crashing = EmbeddedPostgres::start(&crash_dir.path().join("pg"))
        .await
        .unwrap();
    let urls = [
        reference_db.url.expose().to_string(),
        killed_db.url.expose().to_string(),
        crashing.url().expose().to_string(),
    ];
    let mut pools = Vec::new();
    for u in &urls {
        pools.push(
            connect(&runtime::settings::Secret::new(u.clone()), 2)
                .await
                .unwrap(),
        );
    }

    // Customers, applications and decisions first, so every day-end sees the same decisions.
    publish(&producer, &s.records).await;
    let mut reference = Some(start_aggregator(&bootstrap, &urls[0], "book-reference"));
    let mut killed = Some(start_aggregator(&bootstrap, &urls[1], "book-killed"));
    let mut crashed = Some(start_aggregator(&bootstrap, &urls[2], "book-crashed"));
    for pool in &pools {
        wait_until("records applied", Duration::from_secs(300), || async {
            scalar(pool, "SELECT count(*) FROM decisions").await == s.decisions
        })
        .await;
    }
    let events = s.events.clone();
    let producer_task = {
        let producer = producer.clone();
        tokio::spawn(async move { publish(&producer, &events).await })
    };

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(17);
    let mut kills = 0;
    let mut db_crashed = false;
    let started = Instant::now();
    let progress = "SELECT coalesce(sum(next_offset), 0)::int8 FROM consumer_offsets";
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(1_800),
            "runs did not finish"
        );
        let done_killed = closed(&pools[1], s.last_day).await;
        if !done_killed && kills < KILLS {
            // Once the fresh process has made progress, SIGKILL it at a random moment.
            let base = scalar(&pools[1], progress).await;
            let since = Instant::now();
            while scalar(&pools[1], progress).await <= base
                && since.elapsed() < Duration::from_secs(120)
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            tokio::time::sleep(Duration::from_millis(rng.gen_range(100..3_000))).await;
            killed.take();
            kills += 1;
            killed = Some(start_aggregator(&bootstrap, &urls[1], "book-killed"));
        } else {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let days_crashed = scalar(
            &pools[2],
            "SELECT count(*) FROM business_days WHERE closed_at IS NOT NULL",
        )
        .await;
        if !db_crashed && days_crashed > 60 {
            crashing.crash_and_restart(Duration::from_secs(3)).unwrap();
            db_crashed = true;
        }
        if done_killed
            && closed(&pools[0], s.last_day).await
            && db_crashed
            && closed(&pools[2], s.last_day).await
        {
            break;
        }
    }
    producer_task.await.unwrap();
    reference.take();
    crashed.take();

    let expected = checksum(&pools[0]).await;
    // Every table is exercised (the generated lender's decisions carry no reason codes).
    assert!(
        expected
            .iter()
            .all(|(name, rows, _)| *rows > 0 || name == "decision_reasons"),
        "{expected:?}"
    );
    assert_eq!(checksum(&pools[1]).await, expected, "after {kills} kills");
    assert_eq!(
        checksum(&pools[2]).await,
        expected,
        "after a database crash"
    );

    // The whole stream a second time: nothing changes.
    killed.take();
    let mut again = s.records.clone();
    again.extend(s.events.iter().cloned());
    publish(&producer, &again).await;
    let group_offsets = "SELECT coalesce(sum(next_offset), 0)::int8 FROM consumer_offsets \
                         WHERE consumer_group = 'book-killed'";
    let before = scalar(&pools[1], group_offsets).await;
    let total = before + again.len() as i64;
    let _replay = start_aggregator(&bootstrap, &urls[1], "book-killed");
    wait_until("the replay consumed", Duration::from_secs(600), || async {
        scalar(&pools[1], group_offsets).await >= total
    })
    .await;
    assert_eq!(
        checksum(&pools[1]).await,
        expected,
        "after replaying the stream"
    );
    for p in pools {
        p.close().await;
    }
    crashing.stop();
}
