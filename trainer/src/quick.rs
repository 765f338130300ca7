//! Train a feature-set-v1 model on generated data, from nothing to an artifact: what the
//! benchmarks and the tests of the serving path start from.

use ingest::generator::GeneratorSettings;
use risk_core::features;
use risk_core::model::Artifact;
use risk_core::settings::DomainSettings;
use serde_json::json;

use crate::artifact::{build, ArtifactParts};
use crate::error::TrainError;
use crate::generated::dataset;
use crate::xgb::{self, Mode, XgbParams};

/// Train `params` on `applications` generated applications (seed `seed`).
pub fn train_on_generated(
    model_version: &str,
    applications: u64,
    seed: u64,
    params: &XgbParams,
) -> Result<Artifact, TrainError> {
    let domain = DomainSettings::default();
    let settings = GeneratorSettings {
        applications,
        seed,
        months: 12,
        performance_months: 0,
        ..GeneratorSettings::default()
    };
    let data = dataset(&settings, &domain)?;
    let names = features::names();
    let mut params = params.clone();
    if params.monotone_constraints.is_none() {
        params.monotone_constraints = Some(features::monotone_constraints());
    }
    let m = xgb::matrix(&data.rows, names.len(), Some(&data.labels))?;
    let trained = xgb::train(&params, &m, None, |_, _| {})?;
    let pd = xgb::predict(&trained.booster, &m)?;
    let model_json: serde_json::Value =
        serde_json::from_str(&xgb::model_json(&trained.booster)?).map_err(TrainError::ModelJson)?;
    Ok(build(ArtifactParts {
        model_name: "pd",
        model_version,
        mode: match params.mode {
            Mode::GradientBoosting => "gradient_boosting",
            Mode::RandomForest => "random_forest",
        },
        feature_set_version: features::VERSION,
        feature_names: &names,
        scaling: domain.scaling,
        rows: &data.rows,
        train_pd: &pd,
        training: json!({
            "source": "generated",
            "applications": applications,
            "seed": seed,
            "rounds": trained.rounds,
            "params": params,
        }),
        metrics: json!({}),
        xgboost_model: model_json,
    }))
}
