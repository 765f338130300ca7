//! The scorer process is SIGKILLed at random moments while scoring 100,000 applications and
//! restarted each time, on a broker that lives in a process of its own. Afterwards every
//! application has a decision, and any duplicate is byte-identical to the first.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ingest::generator::sink::MemorySink;
use ingest::generator::{generate, GeneratorSettings};
use rand::{Rng, SeedableRng};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;
use runtime::kafka::{consumer_config, producer_config};
use trainer::xgb::XgbParams;

use tests::process::{start_broker, Killed};

const BIN: &str = env!("CARGO_BIN_EXE_credit-risk");

const APPLICATIONS: u64 = 100_000;

/// Start a scorer whose log goes to `log` (shown if the test fails).
fn start_scorer(bootstrap: &str, model: &str, log: &std::path::Path) -> Killed {
    Killed(
        Command::new(BIN)
            .args(["score", "--model", model, "--metrics-bind", "127.0.0.1:0"])
            .env("KAFKA_BROKERS", bootstrap)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
    )
}

/// The end of a scorer's log.
fn log_tail(log: &std::path::Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_restarted_scorers_decide_every_application_with_identical_duplicates() {
    let (_broker, bootstrap) = start_broker(BIN, 3);
    let dir = tempfile::tempdir().unwrap();
    let params = XgbParams {
        rounds: 30,
        max_depth: 4,
        ..XgbParams::default()
    };
    let artifact = trainer::quick::train_on_generated("kill-test", 3_000, 1, &params).unwrap();
    let model = dir.path().join("model.json");
    std::fs::write(&model, serde_json::to_vec(&artifact).unwrap()).unwrap();
    let model = model.to_string_lossy().into_owned();

    let mut sink = MemorySink::default();
    let settings = GeneratorSettings {
        applications: APPLICATIONS,
        months: 3,
        performance_months: 0,
        ..GeneratorSettings::default()
    };
    generate(&settings, &Default::default(), &mut sink, &mut |_, _| {}).unwrap();
    let mut pc = producer_config(&bootstrap);
    pc.set("queue.buffering.max.messages", "1000000");
    let producer: FutureProducer = pc.create().unwrap();
    let mut pending = Vec::new();
    for app in &sink.applications {
        let bytes = schemas::encode(app).unwrap();
        let record = FutureRecord::to("loan-applications")
            .key(&app.application_id)
            .payload(&bytes);
        pending.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
    }
    for p in pending {
        p.await.unwrap().map_err(|(e, _)| e).unwrap();
    }
    drop(sink);

    // Decisions are read while they are made: the test broker keeps about 5 MB per
    // partition, so a reader that waited for the end would find the oldest ones gone.
    let consumer: StreamConsumer = consumer_config(&bootstrap, "kill-test-check", 6_000)
        .create()
        .unwrap();
    consumer.subscribe(&["loan-decisions"]).unwrap();
    let checker = tokio::spawn(async move {
        let mut first: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        let mut duplicates = 0u64;
        let deadline = Instant::now() + Duration::from_secs(400);
        while (first.len() as u64) < APPLICATIONS && Instant::now() < deadline {
            let m = match tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await {
                Ok(m) => m.unwrap(),
                Err(_) => continue,
            };
            let key = m.key().unwrap().to_vec();
            let payload = m.payload().unwrap().to_vec();
            match first.get(&key) {
                Some(earlier) => {
                    assert_eq!(
                        earlier, &payload,
                        "a duplicate decision differs from the first"
                    );
                    duplicates += 1;
                }
                None => {
                    first.insert(key, payload);
                }
            }
        }
        (first, duplicates)
    });

    // Kill at random moments, restarting each time.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    for round in 0..4 {
        let log = dir.path().join(format!("scorer-{round}.log"));
        let scorer = start_scorer(&bootstrap, &model, &log);
        tokio::time::sleep(Duration::from_millis(rng.gen_range(2_000..6_000))).await;
        drop(scorer); // SIGKILL
    }
    let last_log = dir.path().join("scorer-last.log");
    let _last = start_scorer(&bootstrap, &model, &last_log);

    let (first, duplicates) = checker.await.unwrap();
    assert!(
        first.len() as u64 == APPLICATIONS,
        "only {} of {APPLICATIONS} decided; the last scorer's log ends:\n{}",
        first.len(),
        log_tail(&last_log)
    );
    eprintln!(
        "{} applications decided; {duplicates} byte-identical duplicates",
        first.len()
    );
}
