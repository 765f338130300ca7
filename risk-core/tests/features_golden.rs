//! Pins feature set v1's output for fixed applications, so a change to the features (which would
//! silently break every trained model) fails here. Regenerate deliberately, with a new
//! `features::VERSION`, by running with `UPDATE_GOLDEN=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use risk_core::features;
use schemas::LoanApplication;
use serde_json::{json, Value};

const APPLICATIONS: &str = include_str!("golden/applications.json");
const GOLDEN_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/features_v1.json");

fn as_json(v: f32) -> Value {
    if v.is_nan() {
        Value::Null
    } else {
        // Shortest text that round-trips the f32 exactly.
        json!(format!("{v:?}"))
    }
}

fn computed() -> Value {
    let apps: Vec<LoanApplication> = serde_json::from_str(APPLICATIONS).unwrap();
    let rows: Vec<Value> = apps
        .iter()
        .map(|a| {
            let row = features::compute(a);
            let named: serde_json::Map<String, Value> = features::names()
                .into_iter()
                .zip(row)
                .map(|(n, v)| (n.to_string(), as_json(v)))
                .collect();
            json!({"application_id": a.application_id, "features": named})
        })
        .collect();
    json!({"version": features::VERSION, "rows": rows})
}

#[test]
fn feature_set_v1_matches_its_golden_file() {
    let now = computed();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(
            GOLDEN_PATH,
            serde_json::to_string_pretty(&now).unwrap() + "\n",
        )
        .unwrap();
    }
    let golden: Value =
        serde_json::from_str(&std::fs::read_to_string(GOLDEN_PATH).unwrap()).unwrap();
    assert_eq!(
        now, golden,
        "feature output changed; bump features::VERSION and regenerate"
    );
}

#[test]
fn a_thin_file_applicant_has_missing_bureau_features_not_zeros() {
    let apps: Vec<LoanApplication> = serde_json::from_str(APPLICATIONS).unwrap();
    let thin = apps.iter().find(|a| a.bureau.is_none()).unwrap();
    let row = features::compute(thin);
    let names = features::names();
    let at = |n: &str| row[names.iter().position(|x| *x == n).unwrap()];
    assert!(at("bureau_score").is_nan());
    assert_eq!(at("thin_file"), 1.0);
}

#[test]
fn an_unsecured_loan_has_missing_ltv() {
    let apps: Vec<LoanApplication> = serde_json::from_str(APPLICATIONS).unwrap();
    let unsecured = apps
        .iter()
        .find(|a| a.loan.collateral_value.is_none())
        .unwrap();
    let names = features::names();
    let ltv = features::compute(unsecured)[names.iter().position(|x| *x == "ltv").unwrap()];
    assert!(ltv.is_nan());
}
