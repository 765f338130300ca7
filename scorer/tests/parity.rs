//! Native inference and TreeSHAP agree with XGBoost itself, on models trained here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use risk_core::model::{Ensemble, Explainer};
use trainer::xgb::{self, Mode, XgbParams};

const COLS: usize = 8;

/// Rows with missing values (NaN), exact zeros and a non-linear signal.
fn data(rows: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut x = Vec::with_capacity(rows * COLS);
    let mut y = Vec::with_capacity(rows);
    for _ in 0..rows {
        let row: Vec<f32> = (0..COLS)
            .map(|c| match rng.gen_range(0..20) {
                0 => f32::NAN,
                1 => 0.0,
                _ => rng.gen_range(-2.0..2.0) * (c as f32 + 1.0),
            })
            .collect();
        let v = |i: usize| if row[i].is_nan() { 0.5 } else { row[i] };
        let z = 0.8 * v(0) - 0.5 * v(1) + 0.3 * v(2) * v(3) - 0.2 * v(4).abs() + 0.1 * v(5);
        let p = 1.0 / (1.0 + (-z).exp());
        y.push(if rng.gen::<f32>() < p { 1.0 } else { 0.0 });
        x.extend(row);
    }
    (x, y)
}

fn check(params: XgbParams) {
    let (x, y) = data(3_000, 1);
    let train = xgb::matrix(&x, COLS, Some(&y)).unwrap();
    let trained = xgb::train(&params, &train, None, |_, _| {}).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&xgb::model_json(&trained.booster).unwrap()).unwrap();
    let model = Ensemble::from_xgboost_json(&json).unwrap();
    let explainer = Explainer::new(&model);
    let flat = risk_core::model::FlatEnsemble::new(&model);

    let (tx, _) = data(1_000, 2);
    let test = xgb::matrix(&tx, COLS, None).unwrap();
    let theirs = xgb::predict(&trained.booster, &test).unwrap();
    let (contribs, width) = xgb::contributions(&trained.booster, &test).unwrap();
    assert_eq!(width, COLS + 1);
    let mut worst_p = 0.0f64;
    let mut worst_phi = 0.0f64;
    for (i, row) in tx.chunks(COLS).enumerate() {
        let p = model.predict(row);
        assert_eq!(
            flat.margin(row).to_bits(),
            model.margin(row).to_bits(),
            "flat layout differs"
        );
        worst_p = worst_p.max((f64::from(p) - f64::from(theirs[i])).abs());
        let phi = explainer.contributions(&model, row);
        let expected = &contribs[i * width..(i + 1) * width];
        for (table, recursive) in phi
            .iter()
            .zip(explainer.contributions_recursive(&model, row))
        {
            worst_phi = worst_phi.max((table - recursive).abs());
        }
        for (mine, xgb) in phi.iter().zip(expected) {
            worst_phi = worst_phi.max((mine - f64::from(*xgb)).abs());
        }
        worst_phi = worst_phi.max((explainer.bias - f64::from(expected[COLS])).abs());
        let total: f64 = phi.iter().sum::<f64>() + explainer.bias;
        assert!(
            (total - f64::from(model.margin(row))).abs() < 1e-4,
            "contributions + bias = {total}, margin {}",
            model.margin(row)
        );
    }
    // The batch path gives the single-row contributions bit for bit.
    let rows: Vec<&[f32]> = tx.chunks(COLS).collect();
    for (row, batch) in rows
        .iter()
        .zip(explainer.contributions_batch(&model, &rows))
    {
        let single = explainer.contributions(&model, row);
        assert!(batch
            .iter()
            .zip(&single)
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }
    eprintln!(
        "trees {} depth {} worst dp {worst_p:e} worst dphi {worst_phi:e}",
        model.trees.len(),
        model.max_depth()
    );
    assert!(model.trees.len() > 1 && model.max_depth() >= 2);
    assert!(worst_p <= 1e-6, "{params:?}: |Δp| up to {worst_p}");
    assert!(worst_phi <= 1e-5, "{params:?}: |Δφ| up to {worst_phi}");
}

#[test]
fn shallow_boosted_trees_match_xgboost() {
    check(XgbParams {
        max_depth: 2,
        rounds: 40,
        ..XgbParams::default()
    });
}

#[test]
fn medium_boosted_trees_with_missing_values_match_xgboost() {
    check(XgbParams {
        max_depth: 4,
        rounds: 80,
        ..XgbParams::default()
    });
}

#[test]
fn deep_boosted_trees_match_xgboost() {
    check(XgbParams {
        max_depth: 6,
        rounds: 120,
        subsample: 0.8,
        ..XgbParams::default()
    });
}

#[test]
fn a_random_forest_matches_xgboost() {
    check(XgbParams {
        mode: Mode::RandomForest,
        num_parallel_tree: 60,
        max_depth: 6,
        ..XgbParams::default()
    });
}

#[test]
fn a_monotone_constrained_model_matches_xgboost() {
    check(XgbParams {
        max_depth: 5,
        rounds: 60,
        monotone_constraints: Some("(1,-1,0,0,0,0,0,0)".into()),
        ..XgbParams::default()
    });
}
