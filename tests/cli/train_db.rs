//! `credit-risk train --from-db` on a book kept by the aggregator: the first model becomes
//! champion, a worse challenger is refused with the reason recorded, and the registry and the
//! audit log say so.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use ingest::generator::GeneratorSettings;
use runtime::postgres::connect;
use tests::scratch::ScratchDatabase;

const BIN: &str = env!("CARGO_BIN_EXE_credit-risk");

fn train(url: &str, dir: &std::path::Path, extra: &[&str]) -> serde_json::Value {
    let out = Command::new(BIN)
        .args([
            "train",
            "--from-db",
            "--promote-if-better",
            "--json",
            "--out",
        ])
        .arg(dir.join(format!("{}.json", extra.join("_"))))
        .args(extra)
        .env("DATABASE_URL", url)
        .env_remove("KAFKA_BROKERS")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_model_is_promoted_and_a_worse_one_refused_with_its_reason() {
    let db = ScratchDatabase::create().await.unwrap();
    let pool = connect(&db.url, 2).await.unwrap();
    book::db::migrate(&pool).await.unwrap();
    let settings = GeneratorSettings {
        seed: 21,
        applications: 12_000,
        months: 12,
        performance_months: 12,
        ..GeneratorSettings::default()
    };
    tests::book::load_generated(&pool, &settings).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let url = db.url.expose().to_string();
    let first = train(
        &url,
        dir.path(),
        &["--rounds", "150", "--version", "champ-1"],
    );
    assert_eq!(first["promoted"], true, "{first}");
    assert!(first["auc_mean"].as_f64().unwrap() > 0.65, "{first}");
    assert!(first["out_of_time_rows"].as_u64().unwrap() > 100);
    let weak = train(
        &url,
        dir.path(),
        &["--rounds", "1", "--max-depth", "1", "--version", "weak-1"],
    );
    assert_eq!(weak["promoted"], false, "{weak}");

    let (alias, reasons): (Option<String>, serde_json::Value) = sqlx::query_as(
        "SELECT alias, comparison->'reasons' FROM models WHERE model_version = 'weak-1'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(alias, None);
    assert!(
        reasons
            .to_string()
            .contains("does not beat champion champ-1"),
        "{reasons}"
    );
    let champion: String =
        sqlx::query_scalar("SELECT model_version FROM models WHERE alias = 'champion'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(champion, "champ-1");
    let actions: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_log ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(actions, vec!["model.promoted", "model.registered"]);
    pool.close().await;
}
