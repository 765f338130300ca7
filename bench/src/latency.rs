//! `score`'s inference part: per-application costs of the native path (PD, TreeSHAP, a whole
//! decision) and of XGBoost's C API, on the same model.

use std::time::{Duration, Instant};

use risk_core::features;
use risk_core::model::Artifact;
use scorer::decide::{decide, Explain};
use serde_json::json;
use trainer::xgb;

use crate::workload::applications;

fn per_call_us(elapsed: Duration, n: usize) -> f64 {
    elapsed.as_secs_f64() * 1e6 / n.max(1) as f64
}

/// Per-application costs of the native path and of XGBoost's C API, on the same model.
pub fn measure(
    artifact: &Artifact,
    domain: &risk_core::settings::DomainSettings,
) -> anyhow::Result<serde_json::Value> {
    let bytes = serde_json::to_vec(artifact)?;
    let model = Artifact::load(&bytes, features::VERSION, &features::names())?;
    let apps = applications(20_000, 11)?;
    let rows: Vec<[f32; features::LEN]> = apps.iter().map(features::compute).collect();

    let mut sink = 0.0f32;
    // Eleven passes of 60 ms or so: the median, and the best (the pass least disturbed by the
    // machine's other load; its speed drifts between seconds).
    let mut passes = Vec::new();
    for _ in 0..11 {
        let t = Instant::now();
        for r in &rows {
            sink += model.flat.predict(r);
        }
        passes.push(per_call_us(t.elapsed(), rows.len()));
    }
    passes.sort_by(f64::total_cmp);
    let native_pd = passes[passes.len() / 2];
    let native_pd_best = passes[0];

    let t = Instant::now();
    for a in &apps {
        sink += model.flat.predict(&features::compute(a));
    }
    let native_features_pd = per_call_us(t.elapsed(), apps.len());

    let n_shap = 5_000;
    let mut passes = Vec::new();
    let mut phi_sum = 0.0;
    for _ in 0..5 {
        let t = Instant::now();
        for r in rows.iter().take(n_shap) {
            phi_sum += model
                .explainer
                .contributions(&model.ensemble, r)
                .iter()
                .sum::<f64>();
        }
        passes.push(per_call_us(t.elapsed(), n_shap));
    }
    passes.sort_by(f64::total_cmp);
    let native_shap = passes[passes.len() / 2];

    // The scorer's path: a batch's explanations together (32 rows at a time).
    let refs: Vec<&[f32]> = rows.iter().take(n_shap).map(|r| &r[..]).collect();
    let mut passes = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let phis = model.explainer.contributions_batch(&model.ensemble, &refs);
        phi_sum += phis.iter().map(|p| p.iter().sum::<f64>()).sum::<f64>();
        passes.push(per_call_us(t.elapsed(), refs.len()));
    }
    passes.sort_by(f64::total_cmp);
    let native_shap_batch = passes[passes.len() / 2];

    let at = chrono::Utc::now();
    let mut passes = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        for a in apps.iter().take(n_shap) {
            let d = decide(
                a,
                &features::compute(a),
                &model,
                None,
                domain,
                Explain::All,
                at,
            );
            sink += d.pd as f32;
        }
        passes.push(per_call_us(t.elapsed(), n_shap));
    }
    passes.sort_by(f64::total_cmp);
    let decide_all = passes[passes.len() / 2];

    let booster = xgb::load_json(&artifact.xgboost_model.to_string())?;
    let n_single = 5_000;
    let t = Instant::now();
    for r in rows.iter().take(n_single) {
        let m = xgb::matrix(r, features::LEN, None)?;
        sink += xgb::predict(&booster, &m)?[0];
    }
    let xgb_single = per_call_us(t.elapsed(), n_single);

    let flat: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    let t = Instant::now();
    let m = xgb::matrix(&flat, features::LEN, None)?;
    let batch = xgb::predict(&booster, &m)?;
    let xgb_batch = per_call_us(t.elapsed(), rows.len());

    // Parity on this model, as a guard on the figures.
    let worst = rows
        .iter()
        .zip(&batch)
        .map(|(r, p)| (model.flat.predict(r) - p).abs())
        .fold(0.0f32, f32::max);

    let n_contrib = 1_000;
    let m = xgb::matrix(&flat[..n_contrib * features::LEN], features::LEN, None)?;
    let t = Instant::now();
    let _ = xgb::contributions(&booster, &m)?;
    let xgb_contrib = per_call_us(t.elapsed(), n_contrib);
    std::hint::black_box((sink, phi_sum));
    Ok(json!({
        "trees": model.ensemble.trees.len(),
        "max_depth": model.ensemble.max_depth(),
        "native_pd_us": native_pd,
        "native_pd_best_pass_us": native_pd_best,
        "native_features_and_pd_us": native_features_pd,
        "native_treeshap_us": native_shap,
        "native_treeshap_in_batch_us": native_shap_batch,
        "native_treeshap_table_mb": model.explainer.table_bytes() as f64 / 1e6,
        "native_decision_with_reasons_us": decide_all,
        "xgboost_c_single_row_us": xgb_single,
        "xgboost_c_batch_per_row_us": xgb_batch,
        "xgboost_c_contributions_per_row_us": xgb_contrib,
        "max_abs_pd_difference": worst,
    }))
}
