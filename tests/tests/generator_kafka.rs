//! The generator publishes a whole history to Kafka: every record arrives, decodable, keyed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::Duration;

use ingest::generator::kafka::{GeneratorTopics, KafkaSink};
use ingest::generator::sink::TruthSink;
use ingest::generator::{generate, GeneratorSettings};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::Message;
use risk_core::settings::DomainSettings;
use runtime::kafka::{consumer_config, producer_config, EmbeddedKafka};
use schemas::{decode, LoanEvent, LoanEventBody};
use tests::unique;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_history_arrives_whole_on_the_topics() -> anyhow::Result<()> {
    let topics = GeneratorTopics {
        applications: unique("apps"),
        decisions: unique("decisions"),
        events: unique("events"),
        customers: unique("customers"),
    };
    let partitions = 3;
    let kafka = EmbeddedKafka::start(
        3,
        &[
            (topics.applications.clone(), partitions),
            (topics.decisions.clone(), partitions),
            (topics.events.clone(), partitions),
            (topics.customers.clone(), partitions),
        ],
    )?;
    let truth_dir = tempfile::tempdir()?;
    let settings = GeneratorSettings {
        applications: 300,
        months: 2,
        performance_months: 2,
        ..GeneratorSettings::default()
    };
    let brokers = kafka.bootstrap_servers().to_string();
    let topics_for_sink = topics.clone();
    let truth_path = truth_dir.path().to_path_buf();
    let summary = tokio::task::spawn_blocking(move || {
        let mut sink = KafkaSink::new(
            &producer_config(&brokers),
            topics_for_sink,
            TruthSink::create(&truth_path)?,
        )?;
        anyhow::Ok(generate(
            &settings,
            &DomainSettings::default(),
            &mut sink,
            &mut |_, _| {},
        )?)
    })
    .await??;

    let consumer: StreamConsumer =
        consumer_config(kafka.bootstrap_servers(), &unique("g"), 6_000).create()?;
    consumer.subscribe(&[
        topics.applications.as_str(),
        topics.decisions.as_str(),
        topics.events.as_str(),
        topics.customers.as_str(),
    ])?;
    let ticks = summary.business_days;
    let expected_events = summary.events - ticks + ticks * partitions as u64;
    let expected = summary.applications * 2 + summary.customers + expected_events;
    let mut per_topic: HashMap<String, u64> = HashMap::new();
    let mut seen = 0u64;
    while seen < expected {
        let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await??;
        *per_topic.entry(m.topic().to_string()).or_default() += 1;
        seen += 1;
        if m.topic() == topics.events {
            let event: LoanEvent = decode(m.payload().unwrap())?;
            let key = std::str::from_utf8(m.key().unwrap())?;
            match &event.body {
                LoanEventBody::BusinessDayClosed(_) => assert_eq!(key, event.event_id),
                body => assert_eq!(Some(key), body.loan_id()),
            }
        }
    }
    assert_eq!(per_topic[&topics.applications], summary.applications);
    assert_eq!(per_topic[&topics.decisions], summary.applications);
    assert_eq!(per_topic[&topics.customers], summary.customers);
    assert_eq!(per_topic[&topics.events], expected_events);
    // Nothing more than expected.
    assert!(
        tokio::time::timeout(Duration::from_secs(2), consumer.recv())
            .await
            .is_err()
    );
    let truth = std::fs::read_to_string(truth_dir.path().join("ground_truth.csv"))?;
    assert_eq!(truth.lines().count() as u64, summary.applications + 1);
    Ok(())
}
