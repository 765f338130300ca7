//! The aggregator on the embedded cluster and PostgreSQL: the RBI worked example played as
//! events, borrower-wise NPA, upgrade rules, dead letters, and the portfolio queries.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use chrono::{NaiveDate, TimeZone, Utc};
use portfolio_aggregator::metrics::Metrics;
use portfolio_aggregator::service::{AggregatorService, AggregatorSettings};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;
use risk_core::dpd::{delinquency, Payment};
use risk_core::money::RateBps;
use risk_core::schedule::schedule;
use risk_core::settings::DomainSettings;
use runtime::kafka::{consumer_config, producer_config, EmbeddedKafka};
use runtime::postgres::connect;
use runtime::settings::Topics;
use schemas::{
    encode, BusinessDayClosed, LoanDisbursed, LoanEvent, LoanEventBody, PaymentReceived,
};
use sqlx::PgPool;
use tests::scratch::ScratchDatabase;
use tests::unique;
use tokio_util::sync::CancellationToken;

fn topics() -> Topics {
    Topics {
        applications: unique("apps"),
        decisions: unique("decisions"),
        events: unique("events"),
        customers: unique("customers"),
        ..Topics::default()
    }
}

struct Harness {
    _kafka: EmbeddedKafka,
    _db: ScratchDatabase,
    pool: PgPool,
    producer: FutureProducer,
    topics: Topics,
    brokers: String,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Harness {
    async fn start(event_partitions: i32) -> Self {
        runtime::telemetry::init(&runtime::settings::TelemetrySettings::default());
        let topics = topics();
        let mut all = vec![
            (topics.applications.clone(), 2),
            (topics.decisions.clone(), 2),
            (topics.events.clone(), event_partitions),
            (topics.customers.clone(), 2),
        ];
        for t in [
            &topics.applications,
            &topics.decisions,
            &topics.events,
            &topics.customers,
        ] {
            all.push((topics.dlq(t), 1));
        }
        let kafka = EmbeddedKafka::start(1, &all).unwrap();
        let brokers = kafka.bootstrap_servers().to_string();
        let db = ScratchDatabase::create().await.unwrap();
        let pool = connect(&db.url, 4).await.unwrap();
        book::db::migrate(&pool).await.unwrap();
        let producer: FutureProducer = producer_config(&brokers).create().unwrap();
        let mut h = Self {
            _kafka: kafka,
            _db: db,
            pool,
            producer,
            topics,
            brokers,
            shutdown: CancellationToken::new(),
            task: None,
        };
        h.run_aggregator();
        h
    }

    fn run_aggregator(&mut self) {
        let svc = AggregatorService {
            brokers: self.brokers.clone(),
            topics: self.topics.clone(),
            session_timeout_ms: 6_000,
            settings: AggregatorSettings {
                group_id: unique("aggregator"),
                linger_ms: 5,
                ..AggregatorSettings::default()
            },
            domain: DomainSettings::default(),
        };
        let metrics = Metrics::new(&prometheus::Registry::new()).unwrap();
        let pool = self.pool.clone();
        let shutdown = self.shutdown.clone();
        self.task = Some(tokio::spawn(async move {
            portfolio_aggregator::service::run_loop(svc, pool, metrics, shutdown)
                .await
                .unwrap();
        }));
    }

    async fn event(&self, id: &str, body: LoanEventBody, partition: Option<i32>) {
        let key = body.loan_id().unwrap_or(id).to_string();
        let e = LoanEvent {
            event_id: id.to_string(),
            occurred_at: Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap(),
            body,
        };
        let payload = encode(&e).unwrap();
        let mut record = FutureRecord::to(&self.topics.events)
            .key(&key)
            .payload(&payload);
        if let Some(p) = partition {
            record = record.partition(p);
        }
        self.producer
            .send(record, Duration::from_secs(10))
            .await
            .unwrap();
    }

    async fn raw(&self, topic: &str, key: &str, bytes: &[u8]) {
        self.producer
            .send(
                FutureRecord::to(topic).key(key).payload(bytes),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }

    /// Day-end ticks for every date from `from` to `to`, to every partition.
    async fn days(&self, from: NaiveDate, to: NaiveDate, partitions: i32) {
        let mut d = from;
        while d <= to {
            for p in 0..partitions {
                self.event(
                    &format!("EOD-{d}"),
                    LoanEventBody::BusinessDayClosed(BusinessDayClosed { business_date: d }),
                    Some(p),
                )
                .await;
            }
            d = d.succ_opt().unwrap();
        }
    }

    async fn wait_closed(&self, date: NaiveDate) {
        let started = Instant::now();
        loop {
            let closed: Option<bool> = sqlx::query_scalar(
                "SELECT closed_at IS NOT NULL FROM business_days WHERE business_date = $1",
            )
            .bind(date)
            .fetch_optional(&self.pool)
            .await
            .unwrap();
            if closed == Some(true) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "day {date} not closed"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn class(&self, loan: &str) -> (String, i32, Option<NaiveDate>) {
        sqlx::query_as("SELECT asset_class, dpd, npa_since FROM loan_status WHERE loan_id = $1")
            .bind(loan)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
        self.pool.close().await;
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // A failed assertion must not leave the aggregator running against a stopped broker.
        self.shutdown.cancel();
    }
}

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rbi_worked_example_played_through_kafka_classifies_day_by_day() {
    let h = Harness::start(2).await;
    let rate = 1_200;
    let principal = 100_000_000;
    let first_due = d(2025, 3, 31);
    let disburse = |loan: &str| {
        LoanEventBody::LoanDisbursed(LoanDisbursed {
            loan_id: loan.into(),
            application_id: format!("APP-{loan}"),
            customer_id: "CUST-W".into(),
            principal,
            interest_rate_bps: rate,
            tenure_months: 36,
            disbursed_on: d(2025, 3, 1),
            first_due_on: first_due,
            collateral_value: None,
        })
    };
    // Loan A is never paid; loan B, same borrower, is paid on every due date.
    h.event("E-A", disburse("LOAN-A"), None).await;
    h.event("E-B", disburse("LOAN-B"), None).await;
    let sched = schedule(principal, RateBps::parse(rate).unwrap(), 36, first_due);
    let end = d(2026, 7, 3);
    let mut day = d(2025, 3, 1);
    while day <= end {
        for inst in sched.iter().filter(|i| i.due_on == day) {
            h.event(
                &format!("PAY-B-{}", inst.seq),
                LoanEventBody::PaymentReceived(PaymentReceived {
                    payment_id: format!("PB-{}", inst.seq),
                    loan_id: "LOAN-B".into(),
                    amount: inst.amount(),
                    paid_on: day,
                }),
                None,
            )
            .await;
        }
        h.days(day, day, 2).await;
        day = day.succ_opt().unwrap();
    }
    h.wait_closed(end).await;

    let history: Vec<(NaiveDate, String, String)> = sqlx::query_as(
        "SELECT business_date, from_class, to_class FROM status_history \
         WHERE loan_id = 'LOAN-A' AND from_class <> to_class ORDER BY business_date",
    )
    .fetch_all(&h.pool)
    .await
    .unwrap();
    let expected = vec![
        (d(2025, 3, 31), "STANDARD", "SMA0"),
        (d(2025, 4, 30), "SMA0", "SMA1"),
        (d(2025, 5, 30), "SMA1", "SMA2"),
        (d(2025, 6, 29), "SMA2", "SUBSTANDARD"),
        (d(2026, 6, 29), "SUBSTANDARD", "D1"),
    ];
    let got: Vec<(NaiveDate, &str, &str)> = history
        .iter()
        .map(|(d, f, t)| (*d, f.as_str(), t.as_str()))
        .collect();
    assert_eq!(got, expected);
    // DPD on the NPA date is 91; the borrower's performing loan is NPA with it (borrower-wise).
    let dpd_at_npa: i32 = sqlx::query_scalar(
        "SELECT dpd FROM status_history WHERE loan_id = 'LOAN-A' AND business_date = '2025-06-29'",
    )
    .fetch_one(&h.pool)
    .await
    .unwrap();
    assert_eq!(dpd_at_npa, 91);
    let b_history: Vec<(NaiveDate, String)> = sqlx::query_as(
        "SELECT business_date, to_class FROM status_history \
         WHERE loan_id = 'LOAN-B' AND from_class <> to_class ORDER BY business_date",
    )
    .fetch_all(&h.pool)
    .await
    .unwrap();
    assert_eq!(
        b_history.first(),
        Some(&(d(2025, 6, 29), "SUBSTANDARD".to_string()))
    );
    assert_eq!(h.class("LOAN-B").await.0, "D1");
    assert_eq!(
        h.class("LOAN-A").await,
        ("D1".into(), 460, Some(d(2025, 6, 29)))
    );

    // A partial payment of the arrears does not upgrade.
    let payments_so_far: Vec<Payment> = Vec::new();
    let arrears = delinquency(
        &sched,
        RateBps::parse(rate).unwrap(),
        d(2025, 3, 1),
        &payments_so_far,
        d(2026, 7, 4),
    )
    .arrears;
    h.event(
        "PAY-A-1",
        LoanEventBody::PaymentReceived(PaymentReceived {
            payment_id: "PA-1".into(),
            loan_id: "LOAN-A".into(),
            amount: arrears / 2,
            paid_on: d(2026, 7, 4),
        }),
        None,
    )
    .await;
    h.days(d(2026, 7, 4), d(2026, 7, 4), 2).await;
    h.wait_closed(d(2026, 7, 4)).await;
    let (class, dpd, since) = h.class("LOAN-A").await;
    assert_eq!(class, "D1");
    assert!(dpd > 0);
    assert_eq!(since, Some(d(2025, 6, 29)));

    // Paying every arrear upgrades both loans of the borrower to Standard.
    let paid = vec![Payment {
        amount: arrears / 2,
        paid_on: d(2026, 7, 4),
    }];
    let rest = delinquency(
        &sched,
        RateBps::parse(rate).unwrap(),
        d(2025, 3, 1),
        &paid,
        d(2026, 7, 5),
    )
    .arrears;
    h.event(
        "PAY-A-2",
        LoanEventBody::PaymentReceived(PaymentReceived {
            payment_id: "PA-2".into(),
            loan_id: "LOAN-A".into(),
            amount: rest,
            paid_on: d(2026, 7, 5),
        }),
        None,
    )
    .await;
    h.days(d(2026, 7, 5), d(2026, 7, 5), 2).await;
    h.wait_closed(d(2026, 7, 5)).await;
    assert_eq!(h.class("LOAN-A").await, ("STANDARD".into(), 0, None));
    assert_eq!(h.class("LOAN-B").await, ("STANDARD".into(), 0, None));

    // The portfolio figures of the last closed date, and of a past one.
    let now = book::queries::summary(&h.pool, None).await.unwrap();
    assert_eq!(now.business_date, d(2026, 7, 5));
    assert_eq!(now.npa_amount, 0);
    let past = book::queries::summary(&h.pool, Some(d(2025, 12, 31)))
        .await
        .unwrap();
    assert_eq!(past.business_date, d(2025, 12, 31));
    assert_eq!(past.npa_loans, 2);
    let outstanding: i64 =
        sqlx::query_scalar("SELECT sum(outstanding_principal)::int8 FROM loan_status")
            .fetch_one(&h.pool)
            .await
            .unwrap();
    assert_eq!(now.outstanding, outstanding);
    let npa = book::queries::npa_analysis(&h.pool, Some(d(2025, 12, 31)))
        .await
        .unwrap();
    assert!(npa
        .by_class
        .iter()
        .any(|g| g.key == "SUBSTANDARD" && g.loans == 2));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_go_to_the_dead_letter_topic_with_headers_and_the_stream_moves_on() {
    let h = Harness::start(1).await;
    h.raw(&h.topics.events, "junk", b"not avro at all").await;
    h.event(
        "E-ORPHAN",
        LoanEventBody::PaymentReceived(PaymentReceived {
            payment_id: "P-ORPHAN".into(),
            loan_id: "NO-SUCH-LOAN".into(),
            amount: 100,
            paid_on: d(2025, 1, 2),
        }),
        None,
    )
    .await;
    h.raw(&h.topics.decisions, "junk", &[0xC3, 0x01, 1, 2, 3])
        .await;
    h.event(
        "E-OK",
        LoanEventBody::LoanDisbursed(LoanDisbursed {
            loan_id: "LOAN-OK".into(),
            application_id: "APP-OK".into(),
            customer_id: "CUST-OK".into(),
            principal: 5_000_000,
            interest_rate_bps: 1_100,
            tenure_months: 12,
            disbursed_on: d(2025, 1, 1),
            first_due_on: d(2025, 2, 1),
            collateral_value: None,
        }),
        None,
    )
    .await;
    h.days(d(2025, 1, 2), d(2025, 1, 2), 1).await;
    h.wait_closed(d(2025, 1, 2)).await;

    let consumer: StreamConsumer = consumer_config(&h.brokers, &unique("dlq"), 6_000)
        .create()
        .unwrap();
    consumer
        .subscribe(&[
            &h.topics.dlq(&h.topics.events),
            &h.topics.dlq(&h.topics.decisions),
        ])
        .unwrap();
    let mut classes = Vec::new();
    while classes.len() < 3 {
        let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("dead letters")
            .unwrap();
        let headers = m.headers().unwrap();
        let header = |k: &str| {
            headers
                .iter()
                .find(|h| h.key == k)
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap()
        };
        assert!(
            header("source_topic") == h.topics.events
                || header("source_topic") == h.topics.decisions
        );
        assert!(header("source_offset").parse::<i64>().is_ok());
        assert!(header("source_partition").parse::<i32>().is_ok());
        assert!(!header("error_message").is_empty());
        classes.push(header("error_class"));
    }
    classes.sort();
    assert!(classes.contains(&"unknown_loan".to_string()), "{classes:?}");
    let loans: i64 = sqlx::query_scalar("SELECT count(*) FROM loans")
        .fetch_one(&h.pool)
        .await
        .unwrap();
    assert_eq!(loans, 1);
    h.stop().await;
}
