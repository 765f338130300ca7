//! Training from the book as a library call: the typed report, the registry row, the artifact
//! written and its promotion (the first model becomes champion; a weaker one is refused with
//! the reason recorded and nothing to announce).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use book::registry::{self, RegistryError};
use ingest::generator::GeneratorSettings;
use risk_core::settings::DomainSettings;
use runtime::postgres::connect;
use schemas::ModelAlias;
use tests::scratch::ScratchDatabase;
use trainer::from_book::{train_from_book, BookTraining};
use trainer::xgb::XgbParams;

fn request(dir: &std::path::Path, version: &str, params: XgbParams) -> BookTraining {
    let mut r = BookTraining::new(
        dir.join(format!("{version}.json")),
        params,
        DomainSettings::default().scaling,
    );
    r.version = Some(version.into());
    r.promote_if_better = true;
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_training_from_the_book_returns_its_report_and_registers_the_model() {
    let db = ScratchDatabase::create().await.unwrap();
    let pool = connect(&db.url, 2).await.unwrap();
    book::db::migrate(&pool).await.unwrap();

    // An empty book has nothing matured: a typed error, not a panic or an empty model.
    let dir = tempfile::tempdir().unwrap();
    let empty = train_from_book(
        &pool,
        &request(dir.path(), "none", XgbParams::for_credit(5)),
        &(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(empty, trainer::TrainError::NothingMatured),
        "{empty:?}"
    );

    let settings = GeneratorSettings {
        seed: 23,
        applications: 8_000,
        months: 12,
        performance_months: 12,
        ..GeneratorSettings::default()
    };
    tests::book::load_generated(&pool, &settings).await.unwrap();

    let first = train_from_book(
        &pool,
        &request(dir.path(), "lib-1", XgbParams::for_credit(80)),
        &(),
    )
    .await
    .unwrap();
    assert_eq!(first.model_version, "lib-1");
    assert!(first.promoted);
    assert!(first.auc_mean > 0.6, "AUC {}", first.auc_mean);
    assert_eq!(first.out_of_time.auc, first.auc_mean);
    assert!(first.rows > first.out_of_time_rows && first.out_of_time_rows > 100);
    assert_eq!(first.calibration.len(), 10);
    assert_eq!(first.importance.len(), risk_core::features::LEN);
    assert!(first
        .importance
        .windows(2)
        .all(|w| w[0].mean_abs_shap >= w[1].mean_abs_shap));
    let promotion = first.promotion.clone().expect("a promotion to announce");
    assert_eq!(promotion.model_version, "lib-1");
    assert_eq!(promotion.alias, ModelAlias::Champion);
    assert_eq!(promotion.previous_version, None);
    assert_eq!(promotion.artifact_uri, first.artifact);
    let path = first.artifact.trim_start_matches("file://");
    let written: risk_core::model::Artifact =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(written.model_version, "lib-1");

    let mut weak_params = XgbParams::for_credit(1);
    weak_params.max_depth = 1;
    let weak = train_from_book(&pool, &request(dir.path(), "lib-weak", weak_params), &())
        .await
        .unwrap();
    assert!(!weak.promoted);
    assert!(weak.promotion.is_none());
    let reasons = weak.comparison.as_ref().unwrap().reasons.join("; ");
    assert!(
        reasons.contains("does not beat champion lib-1"),
        "{reasons}"
    );

    let champion = registry::serving(&pool, "pd", ModelAlias::Champion)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(champion.model_version, "lib-1");
    let detail = registry::detail(&pool, "lib-weak").await.unwrap();
    assert_eq!(detail.alias, None);
    assert_eq!(detail.rows, weak.rows as i64);
    assert!(matches!(
        registry::detail(&pool, "never-trained").await,
        Err(RegistryError::NotFound(_))
    ));
    pool.close().await;
}
