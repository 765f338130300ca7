//! The scorer on the embedded cluster: every valid application decided once, every bad one
//! dead-lettered with its headers, and a promotion mid-stream taking over without loss.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use ingest::generator::sink::MemorySink;
use ingest::generator::{generate, GeneratorSettings};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;
use risk_core::settings::DomainSettings;
use runtime::kafka::{consumer_config, producer_config, EmbeddedKafka};
use runtime::settings::Topics;
use schemas::{decode, encode, Decision, LoanApplication, ModelAlias, ModelPromoted};
use scorer::decide::Explain;
use scorer::service::{ScorerService, ScorerSettings};
use tests::unique;
use tokio_util::sync::CancellationToken;
use trainer::xgb::XgbParams;

fn topics() -> Topics {
    Topics {
        applications: unique("apps"),
        decisions: unique("decisions"),
        model_updates: unique("models"),
        ..Topics::default()
    }
}

fn start_cluster(t: &Topics) -> EmbeddedKafka {
    EmbeddedKafka::start(
        3,
        &[
            (t.applications.clone(), 6),
            (t.decisions.clone(), 6),
            (t.dlq(&t.applications), 3),
            (t.model_updates.clone(), 1),
        ],
    )
    .unwrap()
}

fn write_model(dir: &Path, version: &str, seed: u64) -> String {
    let params = XgbParams {
        rounds: 40,
        max_depth: 4,
        ..XgbParams::default()
    };
    let artifact = trainer::quick::train_on_generated(version, 4_000, seed, &params).unwrap();
    let path = dir.join(format!("{version}.json"));
    std::fs::write(&path, serde_json::to_vec(&artifact).unwrap()).unwrap();
    path.to_string_lossy().into_owned()
}

fn applications(n: u64, seed: u64) -> Vec<LoanApplication> {
    let mut sink = MemorySink::default();
    let settings = GeneratorSettings {
        applications: n,
        seed,
        months: 3,
        performance_months: 0,
        ..GeneratorSettings::default()
    };
    generate(
        &settings,
        &DomainSettings::default(),
        &mut sink,
        &mut |_, _| {},
    )
    .unwrap();
    sink.applications
}

async fn publish(producer: &FutureProducer, topic: &str, key: &str, payload: &[u8]) {
    producer
        .send(
            FutureRecord::to(topic).key(key).payload(payload),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();
}

fn service(kafka: &EmbeddedKafka, t: &Topics, model: Option<String>) -> ScorerService {
    ScorerService {
        brokers: kafka.bootstrap_servers().to_string(),
        topics: t.clone(),
        session_timeout_ms: 6_000,
        settings: ScorerSettings {
            group_id: unique("scorer"),
            model_path: model.map(Into::into),
            explain: Explain::NonApproved,
            metrics_bind: "127.0.0.1:0".into(),
            ..ScorerSettings::default()
        },
        domain: DomainSettings::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_valid_application_is_decided_once_and_every_bad_one_is_dead_lettered() {
    let t = topics();
    let kafka = start_cluster(&t);
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path(), "m-a", 1);
    let apps = applications(20_000, 3);
    let producer: FutureProducer = producer_config(kafka.bootstrap_servers()).create().unwrap();

    // 1% bad: half garbage bytes, half well-formed Avro with invalid values.
    let mut valid = HashSet::new();
    let mut bad = 0u64;
    let mut sends = Vec::new();
    for (i, app) in apps.iter().enumerate() {
        let (key, payload) = match i % 100 {
            17 => (app.application_id.clone(), vec![0xC3, 0x01, 0xde, 0xad]),
            59 => {
                let mut broken = app.clone();
                broken.loan.amount = -1;
                (app.application_id.clone(), encode(&broken).unwrap())
            }
            _ => {
                valid.insert(app.application_id.clone());
                (app.application_id.clone(), encode(app).unwrap())
            }
        };
        if i % 100 == 17 || i % 100 == 59 {
            bad += 1;
        }
        let record = FutureRecord::to(&t.applications)
            .key(&key)
            .payload(&payload);
        sends.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
    }
    for s in sends {
        s.await.unwrap().map_err(|(e, _)| e).unwrap();
    }

    let shutdown = CancellationToken::new();
    let svc = service(&kafka, &t, Some(model));
    let task = tokio::spawn(scorer::service::run(
        svc,
        prometheus::Registry::new(),
        shutdown.clone(),
    ));

    let consumer: StreamConsumer =
        consumer_config(kafka.bootstrap_servers(), &unique("check"), 6_000)
            .create()
            .unwrap();
    let dlq = t.dlq(&t.applications);
    consumer
        .subscribe(&[t.decisions.as_str(), dlq.as_str()])
        .unwrap();
    let mut decided: HashMap<String, u32> = HashMap::new();
    let mut dead = 0u64;
    while (decided.len() as u64) < valid.len() as u64 || dead < bad {
        let m = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .unwrap()
            .unwrap();
        if m.topic() == dlq {
            let headers = m.headers().unwrap();
            let names: Vec<&str> = headers.iter().map(|h| h.key).collect();
            for expected in [
                "source_topic",
                "source_partition",
                "source_offset",
                "error_class",
                "error_message",
            ] {
                assert!(names.contains(&expected), "missing header {expected}");
            }
            dead += 1;
        } else {
            let d: Decision = decode(m.payload().unwrap()).unwrap();
            assert_eq!(m.key().unwrap(), d.application_id.as_bytes());
            assert!(!d.decision_reasons_invented(), "{d:?}");
            *decided.entry(d.application_id).or_default() += 1;
        }
    }
    assert!(
        tokio::time::timeout(Duration::from_secs(3), consumer.recv())
            .await
            .is_err(),
        "extra messages"
    );
    assert_eq!(dead, bad);
    assert_eq!(decided.len(), valid.len());
    assert!(decided.keys().all(|k| valid.contains(k)));
    assert!(
        decided.values().all(|n| *n == 1),
        "an application was decided twice"
    );
    shutdown.cancel();
    task.await.unwrap().unwrap();
}

/// Checks on a decision's reasons: a declined or referred decision is explained by features
/// of the catalogue, never by invented codes.
trait ReasonCheck {
    fn decision_reasons_invented(&self) -> bool;
}

impl ReasonCheck for Decision {
    fn decision_reasons_invented(&self) -> bool {
        use schemas::Outcome;
        let names = risk_core::features::names();
        match self.decision {
            Outcome::Approve => !self.reasons.is_empty(),
            // Knock-outs explain themselves through rule_hits; a model-driven decline or
            // referral always has at least one reason.
            _ if self.reasons.is_empty() => self.rule_hits.is_empty(),
            _ => {
                self.reasons.len() > 4
                    || self.reasons.iter().any(|r| {
                        !names.contains(&r.feature.as_str())
                            || scorer::catalogue::code(&r.feature) != Some(r.code.as_str())
                            || r.points >= 0.0
                    })
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_promoted_mid_stream_takes_over_without_losing_a_message() {
    let t = topics();
    let kafka = start_cluster(&t);
    let dir = tempfile::tempdir().unwrap();
    let first = write_model(dir.path(), "m-first", 1);
    let second = write_model(dir.path(), "m-second", 2);
    let producer: FutureProducer = producer_config(kafka.bootstrap_servers()).create().unwrap();
    let promote = |version: &str, uri: &str| ModelPromoted {
        model_name: "pd".into(),
        model_version: version.into(),
        alias: ModelAlias::Champion,
        feature_set_version: risk_core::features::VERSION.into(),
        artifact_uri: format!("file://{uri}"),
        promoted_at: chrono::Utc::now(),
        promoted_by: "test".into(),
        previous_version: None,
    };
    publish(
        &producer,
        &t.model_updates,
        "pd",
        &encode(&promote("m-first", &first)).unwrap(),
    )
    .await;

    let shutdown = CancellationToken::new();
    let task = tokio::spawn(scorer::service::run(
        service(&kafka, &t, None),
        prometheus::Registry::new(),
        shutdown.clone(),
    ));
    let consumer: StreamConsumer =
        consumer_config(kafka.bootstrap_servers(), &unique("check"), 6_000)
            .create()
            .unwrap();
    consumer.subscribe(&[t.decisions.as_str()]).unwrap();

    let apps = applications(6_000, 5);
    let (before, after) = apps.split_at(3_000);
    for a in before {
        publish(
            &producer,
            &t.applications,
            &a.application_id,
            &encode(a).unwrap(),
        )
        .await;
    }
    let mut versions: HashMap<String, String> = HashMap::new();
    let mut order: Vec<(i32, String)> = Vec::new();
    while versions.len() < before.len() {
        let m = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .unwrap()
            .unwrap();
        let d: Decision = decode(m.payload().unwrap()).unwrap();
        order.push((m.partition(), d.model_version.clone()));
        assert!(versions.insert(d.application_id, d.model_version).is_none());
    }
    assert!(versions.values().all(|v| v == "m-first"));
    publish(
        &producer,
        &t.model_updates,
        "pd",
        &encode(&promote("m-second", &second)).unwrap(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for a in after {
        publish(
            &producer,
            &t.applications,
            &a.application_id,
            &encode(a).unwrap(),
        )
        .await;
    }
    while versions.len() < apps.len() {
        let m = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .unwrap()
            .unwrap();
        let d: Decision = decode(m.payload().unwrap()).unwrap();
        order.push((m.partition(), d.model_version.clone()));
        assert!(
            versions.insert(d.application_id, d.model_version).is_none(),
            "decided twice"
        );
    }
    // Every application sent after the promotion was seen is decided by the new champion.
    assert!(after
        .iter()
        .all(|a| versions[&a.application_id] == "m-second"));
    // Per partition, the versions switch once and never back.
    for p in 0..6 {
        let seq: Vec<&String> = order
            .iter()
            .filter(|(q, _)| *q == p)
            .map(|(_, v)| v)
            .collect();
        let switches = seq.windows(2).filter(|w| w[0] != w[1]).count();
        assert!(switches <= 1);
    }
    shutdown.cancel();
    task.await.unwrap().unwrap();
}
