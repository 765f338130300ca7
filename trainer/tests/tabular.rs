//! CSV loading and cross-validation: clear refusals, encoding, missing values, folds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use trainer::cv::{cross_validate, stratified_folds};
use trainer::tabular::load;
use trainer::xgb::XgbParams;

fn csv(text: &str) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), text).unwrap();
    f
}

#[test]
fn a_csv_without_the_target_column_is_refused_by_name() {
    let f = csv("a,b\n1,2\n");
    let err = load(f.path(), "target", &[]).unwrap_err().to_string();
    assert!(err.contains("no target column \"target\""), "{err}");
}

#[test]
fn an_empty_or_single_class_dataset_is_refused() {
    let empty = csv("a,target\n");
    assert!(load(empty.path(), "target", &[])
        .unwrap_err()
        .to_string()
        .contains("no rows"));
    let single = csv("a,target\n1,0\n2,0\n");
    assert!(load(single.path(), "target", &[])
        .unwrap_err()
        .to_string()
        .contains("single class"));
}

#[test]
fn a_prohibited_attribute_is_refused_unless_dropped() {
    let f = csv("income,SEX,MARRIAGE,target\n1,1,2,0\n2,2,1,1\n");
    let err = load(f.path(), "target", &[]).unwrap_err().to_string();
    assert!(err.contains("SEX") && err.contains("MARRIAGE"), "{err}");
    let ok = load(f.path(), "target", &["SEX".into(), "MARRIAGE".into()]).unwrap();
    assert_eq!(ok.columns, vec!["income"]);
}

#[test]
fn text_columns_are_encoded_and_missing_values_stay_missing() {
    let f = csv("job,amount,target\nclerk,10,0\n,NA,1\nanalyst,,0\nclerk,7.5,1\n");
    let t = load(f.path(), "target", &[]).unwrap();
    assert_eq!(t.categorical, vec!["job"]);
    assert_eq!(t.rows[0], 1.0); // clerk: second of [analyst, clerk]
    assert!(t.rows[2].is_nan() && t.rows[3].is_nan() && t.rows[5].is_nan());
    assert_eq!(t.rows[4], 0.0);
    assert_eq!(t.rows[7], 7.5);
}

#[test]
fn a_non_binary_target_is_refused_with_its_row() {
    let f = csv("a,target\n1,0\n2,yes\n");
    let err = load(f.path(), "target", &[]).unwrap_err().to_string();
    assert!(err.contains("row 3"), "{err}");
}

#[test]
fn folds_keep_the_bad_rate_and_the_same_seed_gives_the_same_folds() {
    let labels: Vec<f32> = (0..1000)
        .map(|i| if i % 5 == 0 { 1.0 } else { 0.0 })
        .collect();
    let a = stratified_folds(&labels, 5, 42);
    assert_eq!(a, stratified_folds(&labels, 5, 42));
    for f in 0..5 {
        let bads = (0..1000).filter(|i| a[*i] == f && labels[*i] > 0.5).count();
        assert_eq!(bads, 40);
    }
}

#[test]
fn cross_validation_finds_a_real_signal() {
    let n = 2_000;
    let mut rows = Vec::new();
    let mut labels = Vec::new();
    for i in 0..n {
        let x = (i % 100) as f32 / 100.0;
        rows.push(x);
        rows.push(((i * 7919) % 13) as f32);
        labels.push(if (i * 31 % 100) as f32 / 100.0 < x {
            1.0
        } else {
            0.0
        });
    }
    let params = XgbParams {
        rounds: 30,
        max_depth: 3,
        ..XgbParams::default()
    };
    let report = cross_validate(&rows, &labels, 2, &params, 5, 1, |_, _| {}).unwrap();
    assert!(report.auc_mean > 0.7, "AUC {}", report.auc_mean);
    assert_eq!(report.fold_auc.len(), 5);
}
