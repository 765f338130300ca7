//! The ingest stage on the embedded cluster: JSON applications from the raw topic become Avro
//! applications keyed by id; garbage and invalid values are dead-lettered with their headers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::time::Duration;

use ingest::raw::IngestTopics;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;
use runtime::kafka::{consumer_config, producer_config, EmbeddedKafka};
use tests::{sample_application, unique};
use tokio_util::sync::CancellationToken;

async fn drain(brokers: &str, topic: &str, n: usize) -> Vec<rdkafka::message::OwnedMessage> {
    let c: StreamConsumer = consumer_config(brokers, &unique("read"), 6_000)
        .create()
        .unwrap();
    c.subscribe(&[topic]).unwrap();
    let mut out = Vec::new();
    while out.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(30), c.recv())
            .await
            .expect("messages arrive")
            .unwrap();
        out.push(m.detach());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_json_applications_are_published_and_the_rest_dead_lettered_with_headers() {
    let topics = IngestTopics {
        raw: unique("raw"),
        applications: unique("apps"),
        dlq: unique("raw-dlq"),
    };
    let kafka = EmbeddedKafka::start(
        1,
        &[
            (topics.raw.clone(), 3),
            (topics.applications.clone(), 3),
            (topics.dlq.clone(), 1),
        ],
    )
    .unwrap();
    let brokers = kafka.bootstrap_servers().to_string();
    let producer: FutureProducer = producer_config(&brokers).create().unwrap();
    let mut good = HashSet::new();
    let mut inputs: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..95 {
        let mut app = sample_application(&format!("RAW-{i}"));
        app.loan.amount += i64::from(i);
        good.insert(app.application_id.clone());
        let mut v = serde_json::to_value(&app).unwrap();
        if i % 2 == 0 {
            // An LOS may leave the defaults out.
            let o = v.as_object_mut().unwrap();
            o.remove("submitted_at");
            o.remove("channel");
            o.remove("currency");
        }
        inputs.push((app.application_id.clone(), serde_json::to_vec(&v).unwrap()));
    }
    let mut bad_age = serde_json::to_value(sample_application("BAD-AGE")).unwrap();
    bad_age["applicant"]["age"] = 7.into();
    let bad: Vec<(String, Vec<u8>)> = vec![
        ("g1".into(), b"\x00\x01garbage".to_vec()),
        ("g2".into(), b"{\"application_id\": ".to_vec()),
        ("m1".into(), br#"{"application_id": "M1"}"#.to_vec()),
        ("BAD-AGE".into(), serde_json::to_vec(&bad_age).unwrap()),
        ("arr".into(), b"[1, 2]".to_vec()),
    ];
    inputs.extend(bad.clone());
    for (k, v) in &inputs {
        producer
            .send(
                FutureRecord::to(&topics.raw).key(k).payload(v),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
    let shutdown = CancellationToken::new();
    let consumer: StreamConsumer = consumer_config(&brokers, &unique("ingest"), 6_000)
        .create()
        .unwrap();
    let stage = tokio::spawn(ingest::raw::run(
        consumer,
        producer_config(&brokers).create().unwrap(),
        topics.clone(),
        50,
        shutdown.clone(),
    ));

    let published = drain(&brokers, &topics.applications, good.len()).await;
    let mut seen = HashSet::new();
    for m in &published {
        let app: schemas::LoanApplication = schemas::decode(m.payload().unwrap()).unwrap();
        assert_eq!(m.key().unwrap(), app.application_id.as_bytes());
        seen.insert(app.application_id);
    }
    assert_eq!(seen, good);
    let dead = drain(&brokers, &topics.dlq, bad.len()).await;
    let mut keys = HashSet::new();
    for m in &dead {
        let h = m.headers().unwrap();
        let header = |name: &str| {
            h.iter()
                .find(|x| x.key == name)
                .and_then(|x| x.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap()
        };
        assert_eq!(header("source_topic"), topics.raw);
        assert!(header("source_offset").parse::<i64>().is_ok());
        assert!(["undecodable", "invalid"].contains(&header("error_class").as_str()));
        assert!(!header("error_message").is_empty());
        keys.insert(String::from_utf8_lossy(m.key().unwrap()).into_owned());
        let original = &bad
            .iter()
            .find(|(k, _)| k.as_bytes() == m.key().unwrap())
            .unwrap()
            .1;
        assert_eq!(
            m.payload().unwrap(),
            &original[..],
            "the original bytes are kept"
        );
    }
    assert_eq!(keys.len(), bad.len());
    shutdown.cancel();
    let counts = stage.await.unwrap().unwrap();
    assert_eq!(counts.published, 95);
    assert_eq!(counts.rejected, 5);
}
