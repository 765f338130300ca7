//! Building the model artifact: XGBoost's JSON plus metadata and the expected distributions.

use std::path::Path;

use risk_core::model::artifact::{Distribution, FORMAT_VERSION};
use risk_core::model::Artifact;
use risk_core::scoring::ScoreScaling;
use serde_json::Value;

use crate::error::TrainError;
use crate::xgb::Mode;

/// A new model version: `pd-<gbt|rf>-<unix time>`.
pub fn new_version(mode: Mode) -> String {
    format!(
        "pd-{}-{}",
        match mode {
            Mode::RandomForest => "rf",
            Mode::GradientBoosting => "gbt",
        },
        chrono::Utc::now().timestamp()
    )
}

/// Write `artifact` to `out` (directories created); its `file://` URI.
pub fn write(out: &Path, artifact: &Artifact) -> Result<String, TrainError> {
    let write = |source| TrainError::Write {
        path: out.to_path_buf(),
        source,
    };
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(write)?;
    }
    let bytes = serde_json::to_vec(artifact).map_err(TrainError::ModelJson)?;
    std::fs::write(out, bytes).map_err(write)?;
    Ok(format!(
        "file://{}",
        std::path::absolute(out).map_err(write)?.display()
    ))
}

/// Bins per distribution (deciles): the usual PSI resolution.
pub const BINS: usize = 10;

/// Expected distribution of `values` (NaN = missing): decile edges, shares per bin.
pub fn distribution(name: &str, values: impl Iterator<Item = f32>) -> Distribution {
    let mut present: Vec<f64> = Vec::new();
    let mut missing = 0usize;
    for v in values {
        if v.is_nan() {
            missing += 1;
        } else {
            present.push(f64::from(v));
        }
    }
    let total = present.len() + missing;
    present.sort_by(f64::total_cmp);
    let mut edges: Vec<f64> = (1..BINS)
        .filter_map(|q| present.get(q * present.len() / BINS).copied())
        .collect();
    edges.dedup();
    // Edges are inclusive upper bounds; the top edge equal to the maximum would leave the last
    // bin empty by construction.
    if edges.last().is_some_and(|e| Some(e) == present.last()) {
        edges.pop();
    }
    let mut counts = vec![0usize; edges.len() + 1];
    for v in &present {
        let bin = edges.iter().position(|e| v <= e).unwrap_or(edges.len());
        counts[bin] += 1;
    }
    let n = present.len().max(1) as f64;
    Distribution {
        name: name.to_string(),
        edges,
        shares: counts.iter().map(|c| *c as f64 / n).collect(),
        missing: if total == 0 {
            0.0
        } else {
            missing as f64 / total as f64
        },
    }
}

/// Everything an artifact records besides the model.
pub struct ArtifactParts<'a> {
    /// Registry name.
    pub model_name: &'a str,
    /// Version.
    pub model_version: &'a str,
    /// `gradient_boosting` or `random_forest`.
    pub mode: &'a str,
    /// Feature set.
    pub feature_set_version: &'a str,
    /// Column names.
    pub feature_names: &'a [&'a str],
    /// Score scaling.
    pub scaling: ScoreScaling,
    /// Training rows (row-major), for the expected distributions.
    pub rows: &'a [f32],
    /// PD on the training rows.
    pub train_pd: &'a [f32],
    /// Window, counts, hash, parameters.
    pub training: Value,
    /// Metrics.
    pub metrics: Value,
    /// XGBoost's JSON model.
    pub xgboost_model: Value,
}

/// Assemble an artifact.
pub fn build(parts: ArtifactParts<'_>) -> Artifact {
    let cols = parts.feature_names.len().max(1);
    let feature_distributions = parts
        .feature_names
        .iter()
        .enumerate()
        .map(|(j, name)| distribution(name, parts.rows.chunks(cols).map(|r| r[j])))
        .collect();
    Artifact {
        format_version: FORMAT_VERSION,
        model_name: parts.model_name.to_string(),
        model_version: parts.model_version.to_string(),
        feature_set_version: parts.feature_set_version.to_string(),
        feature_names: parts.feature_names.iter().map(|s| s.to_string()).collect(),
        mode: parts.mode.to_string(),
        scaling: parts.scaling,
        created_at: chrono::Utc::now().to_rfc3339(),
        training: parts.training,
        metrics: parts.metrics,
        feature_distributions,
        pd_distribution: Some(distribution("pd", parts.train_pd.iter().copied())),
        xgboost_model: parts.xgboost_model,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deciles_split_a_uniform_sample_evenly_and_count_missing() {
        let values = (0..1000)
            .map(|i| i as f32)
            .chain(std::iter::repeat_n(f32::NAN, 250));
        let d = distribution("x", values);
        assert_eq!(d.edges.len(), 9);
        assert!(d.shares.iter().all(|s| (s - 0.1).abs() < 0.002));
        assert!((d.missing - 0.2).abs() < 1e-12);
    }
}
