//! The model artifact: one JSON file holding XGBoost's model and everything needed to serve,
//! monitor and audit it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ensemble::{Ensemble, ModelError};
use super::shap::Explainer;
use crate::scoring::ScoreScaling;

/// Version of the artifact layout.
pub const FORMAT_VERSION: u32 = 1;

/// Expected distribution of one variable (a feature or the score) for PSI: bin upper edges
/// fixed on the training data, the share of rows per bin, and the share missing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    /// Variable name.
    pub name: String,
    /// Upper edges of all bins but the last (ascending).
    pub edges: Vec<f64>,
    /// Share of rows per bin (`edges.len() + 1` values).
    pub shares: Vec<f64>,
    /// Share of rows missing.
    pub missing: f64,
}

/// A trained model and its metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    /// Layout version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// Model name (the registry key, e.g. `pd`).
    pub model_name: String,
    /// Unique version of this model.
    pub model_version: String,
    /// Feature set the model was trained on.
    pub feature_set_version: String,
    /// Feature names in column order.
    pub feature_names: Vec<String>,
    /// `gradient_boosting` or `random_forest`.
    pub mode: String,
    /// Score scaling used to report scores.
    pub scaling: ScoreScaling,
    /// When trained (RFC 3339).
    pub created_at: String,
    /// Training window, row count, data hash, parameters.
    pub training: Value,
    /// Evaluation metrics.
    pub metrics: Value,
    /// Per-feature expected distributions (drift monitoring).
    pub feature_distributions: Vec<Distribution>,
    /// Expected distribution of the PD on the training data.
    pub pd_distribution: Option<Distribution>,
    /// XGBoost's own JSON model document.
    pub xgboost_model: Value,
}

/// An artifact ready to score: the ensemble and its explainer built once.
#[derive(Debug, Clone)]
pub struct LoadedModel {
    /// Metadata (with the XGBoost document dropped to save memory).
    pub artifact: Artifact,
    /// Trees.
    pub ensemble: Ensemble,
    /// The trees laid out for fast scoring.
    pub flat: super::flat::FlatEnsemble,
    /// TreeSHAP state.
    pub explainer: Explainer,
}

impl Artifact {
    /// Parse and check an artifact; `features` is the feature set this build computes.
    pub fn load(
        bytes: &[u8],
        feature_set_version: &str,
        features: &[&str],
    ) -> Result<LoadedModel, ModelError> {
        let mut artifact: Artifact =
            serde_json::from_slice(bytes).map_err(|e| ModelError(format!("artifact: {e}")))?;
        if artifact.format_version != FORMAT_VERSION {
            return Err(ModelError(format!(
                "artifact format {} is not {FORMAT_VERSION}",
                artifact.format_version
            )));
        }
        if artifact.feature_set_version != feature_set_version
            || artifact
                .feature_names
                .iter()
                .map(String::as_str)
                .ne(features.iter().copied())
        {
            return Err(ModelError(format!(
                "model {} needs feature set {} but this build computes {feature_set_version}",
                artifact.model_version, artifact.feature_set_version
            )));
        }
        let ensemble = Ensemble::from_xgboost_json(&artifact.xgboost_model)?;
        if ensemble.num_features != features.len() {
            return Err(ModelError(format!(
                "model has {} features, the feature set {}",
                ensemble.num_features,
                features.len()
            )));
        }
        artifact.xgboost_model = Value::Null;
        let explainer = Explainer::new(&ensemble);
        let flat = super::flat::FlatEnsemble::new(&ensemble);
        Ok(LoadedModel {
            artifact,
            flat,
            ensemble,
            explainer,
        })
    }
}
