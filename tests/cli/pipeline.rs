//! The whole pipeline in-process on embedded Kafka and PostgreSQL, as the demo runs it: a
//! generated world published to the real topics, the scorer deciding every application, the
//! aggregator keeping the book, while a second scorer and a second aggregator join the groups
//! and leave again mid-stream. Afterwards every application is decided once (any redelivered
//! decision byte-identical), every event is in the book once, the portfolio figures reconcile
//! with the events, and a retrain through the binary promotes a model the scorer then uses.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use ingest::generator::kafka::{GeneratorTopics, KafkaSink};
use ingest::generator::sink::{MemorySink, Sink, SinkError, TruthRow};
use ingest::generator::{generate, GeneratorSettings};
use portfolio_aggregator::service::{AggregatorService, AggregatorSettings};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;
use risk_core::settings::DomainSettings;
use runtime::kafka::{consumer_config, producer_config, EmbeddedKafka};
use runtime::postgres::connect;
use runtime::settings::Topics;
use schemas::{CustomerRegistered, Decision, LoanApplication, LoanEvent, LoanEventBody};
use scorer::service::{ScorerService, ScorerSettings};
use sqlx::PgPool;
use tests::scratch::ScratchDatabase;
use tokio_util::sync::CancellationToken;

const BIN: &str = env!("CARGO_BIN_EXE_credit-risk");

/// What was published, to check the book against.
#[derive(Default)]
struct Published {
    applications: Vec<String>,
    customers: HashSet<String>,
    disbursed: u64,
    principal: i64,
    payments: u64,
    paid: i64,
    written_off: u64,
    ticks: HashSet<NaiveDate>,
}

/// Publishes everything but the legacy decisions (the scorer decides), counting as it goes.
struct Counting {
    inner: KafkaSink<MemorySink>,
    seen: Published,
}

impl Sink for Counting {
    fn customer(&mut self, c: &CustomerRegistered) -> Result<(), SinkError> {
        self.seen.customers.insert(c.customer_id.clone());
        self.inner.customer(c)
    }
    fn application(&mut self, a: &LoanApplication) -> Result<(), SinkError> {
        self.seen.applications.push(a.application_id.clone());
        self.inner.application(a)
    }
    fn decision(&mut self, _: &Decision) -> Result<(), SinkError> {
        Ok(())
    }
    fn event(&mut self, e: &LoanEvent) -> Result<(), SinkError> {
        match &e.body {
            LoanEventBody::LoanDisbursed(d) => {
                self.seen.disbursed += 1;
                self.seen.principal += d.principal;
            }
            LoanEventBody::PaymentReceived(p) => {
                self.seen.payments += 1;
                self.seen.paid += p.amount;
            }
            LoanEventBody::LoanWrittenOff(_) => self.seen.written_off += 1,
            LoanEventBody::LoanMarkedLoss(_) => {}
            LoanEventBody::BusinessDayClosed(t) => {
                self.seen.ticks.insert(t.business_date);
            }
        }
        self.inner.event(e)
    }
    fn truth(&mut self, _: &TruthRow) -> Result<(), SinkError> {
        Ok(())
    }
    fn finish(&mut self) -> Result<(), SinkError> {
        self.inner.finish()
    }
}

fn scorer(brokers: &str, topics: &Topics, model: &str) -> ScorerService {
    ScorerService {
        brokers: brokers.into(),
        topics: topics.clone(),
        session_timeout_ms: 6_000,
        settings: ScorerSettings {
            group_id: "pipeline-scorer".into(),
            model_path: Some(model.into()),
            metrics_bind: "127.0.0.1:0".into(),
            ..ScorerSettings::default()
        },
        domain: DomainSettings::default(),
    }
}

fn aggregator(brokers: &str, topics: &Topics) -> AggregatorService {
    AggregatorService {
        brokers: brokers.into(),
        topics: topics.clone(),
        session_timeout_ms: 6_000,
        settings: AggregatorSettings {
            group_id: "pipeline-aggregator".into(),
            metrics_bind: "127.0.0.1:0".into(),
            ..AggregatorSettings::default()
        },
        domain: DomainSettings::default(),
    }
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

/// Every message of `topic` from the beginning, by key.
async fn read_all(brokers: &str, topic: &str, expected: usize) -> HashMap<String, Vec<Vec<u8>>> {
    let consumer: StreamConsumer = consumer_config(brokers, &tests::unique("read"), 6_000)
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut out: HashMap<String, Vec<Vec<u8>>> = HashMap::new();
    let mut n = 0usize;
    let deadline = Instant::now() + Duration::from_secs(60);
    while n < expected || out.len() < expected {
        let m = tokio::time::timeout(Duration::from_secs(5), consumer.recv()).await;
        let Ok(Ok(m)) = m else {
            assert!(
                Instant::now() < deadline,
                "read {n} of {expected} from {topic}"
            );
            if n >= expected {
                break;
            }
            continue;
        };
        let key = String::from_utf8(m.key().unwrap().to_vec()).unwrap();
        out.entry(key)
            .or_default()
            .push(m.payload().unwrap().to_vec());
        n += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_pipeline_decides_every_application_once_books_every_event_once_through_a_rebalance_and_serves_a_retrained_model(
) {
    runtime::telemetry::init(&runtime::settings::TelemetrySettings::default());
    let topics = Topics::default();
    let kafka = EmbeddedKafka::start(3, &topics.all()).unwrap();
    let brokers = kafka.bootstrap_servers().to_string();
    let db = ScratchDatabase::create().await.unwrap();
    let pool = connect(&db.url, 8).await.unwrap();
    book::db::migrate(&pool).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let params = trainer::xgb::XgbParams {
        rounds: 40,
        max_depth: 4,
        ..trainer::xgb::XgbParams::default()
    };
    let artifact = trainer::quick::train_on_generated("pd-initial", 4_000, 3, &params).unwrap();
    let model = dir.path().join("initial.json");
    std::fs::write(&model, serde_json::to_vec(&artifact).unwrap()).unwrap();
    let model = model.to_string_lossy().into_owned();

    let stop_all = CancellationToken::new();
    let agg_a = tokio::spawn(portfolio_aggregator::service::run(
        aggregator(&brokers, &topics),
        pool.clone(),
        prometheus::Registry::new(),
        stop_all.clone(),
    ));
    let scorer_a = tokio::spawn(scorer::service::run(
        scorer(&brokers, &topics, &model),
        prometheus::Registry::new(),
        stop_all.clone(),
    ));

    // The world: 14 months of a lender's history, published to the real topics.
    let settings = GeneratorSettings {
        applications: 4_000,
        months: 20,
        performance_months: 0,
        seed: 11,
        ..GeneratorSettings::default()
    };
    let gen_topics = GeneratorTopics {
        applications: topics.applications.clone(),
        decisions: topics.decisions.clone(),
        events: topics.events.clone(),
        customers: topics.customers.clone(),
    };
    let producer_cfg = producer_config(&brokers);
    let published = tokio::task::spawn_blocking(move || {
        let mut sink = Counting {
            inner: KafkaSink::new(&producer_cfg, gen_topics, MemorySink::default()).unwrap(),
            seen: Published::default(),
        };
        generate(
            &settings,
            &DomainSettings::default(),
            &mut sink,
            &mut |_, _| {},
        )
        .unwrap();
        sink.seen
    })
    .await
    .unwrap();
    let last_day = *published.ticks.iter().max().unwrap();

    // Mid-stream, a second scorer and a second aggregator join, then leave.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stop_b = CancellationToken::new();
    let agg_b = tokio::spawn(portfolio_aggregator::service::run(
        aggregator(&brokers, &topics),
        pool.clone(),
        prometheus::Registry::new(),
        stop_b.clone(),
    ));
    let scorer_b = tokio::spawn(scorer::service::run(
        scorer(&brokers, &topics, &model),
        prometheus::Registry::new(),
        stop_b.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(15)).await;
    let closed_mid: Option<NaiveDate> = sqlx::query_scalar(
        "SELECT max(business_date) FROM business_days WHERE closed_at IS NOT NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    stop_b.cancel();
    let totals_b = agg_b.await.unwrap().unwrap();
    scorer_b.await.unwrap().unwrap();
    assert!(
        closed_mid.is_none_or(|d| d < last_day),
        "the stream should still be running when the second members leave"
    );
    assert!(
        totals_b.applied > 0,
        "the second aggregator took a share of the partitions"
    );

    // Wait for the book to close the last day and hold every decision.
    let n = published.applications.len() as i64;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let closed: Option<NaiveDate> = sqlx::query_scalar(
            "SELECT max(business_date) FROM business_days WHERE closed_at IS NOT NULL",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        let decided = count(&pool, "SELECT count(*) FROM decisions").await;
        if closed == Some(last_day) && decided == n {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "book at {closed:?} of {last_day}, {decided} of {n} decisions"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Every application decided; any redelivered decision is byte-identical.
    let decisions = read_all(&brokers, &topics.decisions, published.applications.len()).await;
    let ids: HashSet<&String> = published.applications.iter().collect();
    assert_eq!(decisions.len(), ids.len());
    for (id, copies) in &decisions {
        assert!(
            ids.contains(id),
            "a decision for an unknown application {id}"
        );
        assert!(
            copies.iter().all(|c| c == &copies[0]),
            "{id}: copies differ"
        );
    }

    // Every event in the book once; nothing dead-lettered.
    assert_eq!(count(&pool, "SELECT count(*) FROM applications").await, n);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM customers").await,
        published.customers.len() as i64
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM loans").await,
        published.disbursed as i64
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM payments").await,
        published.payments as i64
    );
    assert_eq!(
        count(&pool, "SELECT coalesce(sum(amount), 0)::int8 FROM payments").await,
        published.paid
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM loan_status WHERE written_off_on IS NOT NULL"
        )
        .await,
        published.written_off as i64
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM business_days WHERE closed_at IS NOT NULL"
        )
        .await,
        published.ticks.len() as i64
    );
    for t in [
        &topics.applications,
        &topics.decisions,
        &topics.events,
        &topics.customers,
    ] {
        let (low, high) = {
            let c: StreamConsumer = consumer_config(&brokers, &tests::unique("dlq"), 6_000)
                .create()
                .unwrap();
            c.fetch_watermarks(&topics.dlq(t), 0, Duration::from_secs(10))
                .unwrap()
        };
        assert_eq!(high - low, 0, "{} has dead letters", topics.dlq(t));
    }

    // The portfolio figures reconcile with the events and the loans.
    let s = book::queries::summary(&pool, None).await.unwrap();
    assert_eq!(s.business_date, last_day);
    assert_eq!(s.total_loans, published.disbursed as i64);
    assert_eq!(s.total_disbursed, published.principal);
    assert_eq!(s.collected, published.paid);
    assert_eq!(s.decided, n);
    assert_eq!(
        s.outstanding,
        count(&pool, "SELECT coalesce(sum(outstanding_principal), 0)::int8 FROM loan_status WHERE state = 'ACTIVE'").await
    );
    assert_eq!(
        s.npa_amount,
        count(&pool, "SELECT coalesce(sum(outstanding_principal), 0)::int8 FROM loan_status \
                      WHERE state = 'ACTIVE' AND asset_class IN ('SUBSTANDARD', 'D1', 'D2', 'D3', 'LOSS')").await
    );
    assert!(s.npa_amount > 0 && s.ecl > 0);

    // A retrain through the binary promotes a model; the scorer then decides with it.
    let out = Command::new(BIN)
        .args([
            "train",
            "--from-db",
            "--promote-if-better",
            "--rounds",
            "60",
            "--version",
            "pd-retrained-1",
            "--out",
        ])
        .arg(dir.path().join("retrained.json"))
        .env("KAFKA_BROKERS", &brokers)
        .env("DATABASE_URL", db.url.expose())
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (alias, comparison): (Option<String>, Option<serde_json::Value>) = sqlx::query_as(
        "SELECT alias, comparison FROM models WHERE model_version = 'pd-retrained-1'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(alias.as_deref(), Some("champion"), "{comparison:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let producer: FutureProducer = producer_config(&brokers).create().unwrap();
    let mut fresh = Vec::new();
    for i in 0..50 {
        let mut app = tests::sample_application(&format!("after-retrain-{i}"));
        app.loan.amount += i64::from(i) * 10_000;
        producer
            .send(
                FutureRecord::to(&topics.applications)
                    .key(&app.application_id)
                    .payload(&schemas::encode(&app).unwrap()),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
        fresh.push(app.application_id);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let versions: Vec<String> = sqlx::query_scalar(
            "SELECT model_version FROM decisions WHERE application_id LIKE 'after-retrain-%'",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        if versions.len() == fresh.len() {
            assert!(
                versions.iter().all(|v| v == "pd-retrained-1"),
                "{versions:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} decided",
            versions.len(),
            fresh.len()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    stop_all.cancel();
    agg_a.await.unwrap().unwrap();
    scorer_a.await.unwrap().unwrap();
}
