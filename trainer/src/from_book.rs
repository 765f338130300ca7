//! Training from the loan book: matured loans → XGBoost → out-of-time evaluation → artifact →
//! registry, and promotion to champion when the model beats the current one.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use book::registry::{self, Promotion, Registration};
use risk_core::features;
use risk_core::model::ensemble::{gain_by_feature, Ensemble};
use risk_core::model::Explainer;
use risk_core::scoring::ScoreScaling;
use schemas::ModelAlias;
use serde::Serialize;
use serde_json::json;
use sqlx::PgPool;

use crate::artifact::{self, build, ArtifactParts};
use crate::error::TrainError;
use crate::evaluation::{evaluate, out_of_time_split, psi, Decile, Evaluation};
use crate::matured::load_matured;
use crate::promotion::{compare, Comparison, PromotionSettings};
use crate::xgb::{self, Mode, XgbParams};

/// Who registers the models trained here, in the registry and the audit log.
pub const ACTOR: &str = "credit-risk train";

/// What to train and where to put it.
#[derive(Debug, Clone)]
pub struct BookTraining {
    /// Performance window, months.
    pub window_months: u32,
    /// Share of the latest origination months held out.
    pub oot_share: f64,
    /// XGBoost's parameters (monotone constraints default to the feature set's).
    pub params: XgbParams,
    /// Model version (default: `pd-<mode>-<unix time>`).
    pub version: Option<String>,
    /// Where the artifact is written.
    pub out: PathBuf,
    /// Promote when better than the champion.
    pub promote_if_better: bool,
    /// When a challenger may replace the champion.
    pub promotion: PromotionSettings,
    /// The generator's ground truth, to report the best achievable AUC.
    pub truth: Option<PathBuf>,
    /// Score scaling stored in the artifact.
    pub scaling: ScoreScaling,
}

impl BookTraining {
    /// A training of `params` written to `out`, with the usual window (12 months), out-of-time
    /// share (the latest 20% of origination months) and promotion gate; no promotion unless
    /// `promote_if_better` is set.
    pub fn new(out: PathBuf, params: XgbParams, scaling: ScoreScaling) -> Self {
        Self {
            window_months: 12,
            oot_share: 0.2,
            params,
            version: None,
            out,
            promote_if_better: false,
            promotion: PromotionSettings::default(),
            truth: None,
            scaling,
        }
    }
}

/// Steps a caller may show progress of.
pub trait Progress: Sync {
    /// Rows read from the book so far.
    fn read(&self, _rows: u64) {}
    /// Boosting rounds done of the planned.
    fn round(&self, _done: u32, _planned: u32) {}
}

/// No progress shown.
impl Progress for () {}

/// The true-PD AUC on the out-of-time loans.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TruthLimit {
    /// AUC of the generator's true PDs.
    pub auc: f64,
    /// Loans found in the truth file.
    pub loans: usize,
}

/// One feature's importance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Importance {
    /// Feature name.
    pub feature: String,
    /// Total split gain.
    pub gain: f64,
    /// Mean |SHAP| (log-odds) on out-of-time loans.
    pub mean_abs_shap: f64,
}

/// What a training from the book did (`train --from-db --json` prints it).
#[derive(Debug, Clone, Serialize)]
pub struct BookTrainingReport {
    /// The model's version.
    pub model_version: String,
    /// Matured loans.
    pub rows: usize,
    /// Of which out of time.
    pub out_of_time_rows: usize,
    /// Out-of-time AUC.
    pub auc_mean: f64,
    /// Always 0 (one out-of-time set; the key matches the cross-validation report).
    pub auc_std: f64,
    /// Out-of-time KS.
    pub ks: f64,
    /// Out-of-time Gini.
    pub gini: f64,
    /// Out-of-time Brier score.
    pub brier: f64,
    /// PSI between the training and out-of-time PDs.
    pub psi: f64,
    /// The best achievable AUC, with a ground truth.
    pub true_pd_limit: Option<TruthLimit>,
    /// Out-of-time calibration by PD decile.
    pub calibration: Vec<Decile>,
    /// Importance, by mean |SHAP| descending.
    pub importance: Vec<Importance>,
    /// Whether the model became champion.
    pub promoted: bool,
    /// The comparison with the champion.
    pub comparison: Option<Comparison>,
    /// Seconds in all.
    pub seconds: f64,
    /// Seconds reading the book.
    pub read_seconds: f64,
    /// Seconds training.
    pub train_seconds: f64,
    /// Seconds evaluating.
    pub evaluate_seconds: f64,
    /// Where the artifact was written (`file://…`).
    pub artifact: String,
    /// Out-of-time evaluation in full.
    #[serde(skip)]
    pub out_of_time: Evaluation,
    /// The promotion to announce, when promoted.
    #[serde(skip)]
    pub promotion: Option<Promotion>,
}

fn select(rows: &[f32], idx: &[usize], cols: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(idx.len() * cols);
    for i in idx {
        out.extend_from_slice(&rows[i * cols..(i + 1) * cols]);
    }
    out
}

fn pds(booster: &xgboost_rs::Booster, m: &xgboost_rs::DMatrix) -> Result<Vec<f64>, TrainError> {
    Ok(xgb::predict(booster, m)?
        .into_iter()
        .map(f64::from)
        .collect())
}

/// Train from the book on `pool` (migrated), write the artifact, register it, and promote it
/// when asked and better. Announcing the promotion is the caller's (the report carries it).
pub async fn train_from_book(
    pool: &PgPool,
    request: &BookTraining,
    progress: &dyn Progress,
) -> Result<BookTrainingReport, TrainError> {
    let started = Instant::now();
    let mut params = request.params.clone();
    let t = Instant::now();
    let data = load_matured(pool, request.window_months, |n| progress.read(n)).await?;
    let read_seconds = t.elapsed().as_secs_f64();
    if data.is_empty() {
        return Err(TrainError::NoMaturedLoans(request.window_months));
    }
    let bads = data.labels.iter().filter(|l| **l > 0.5).count();
    if bads == 0 || bads == data.len() {
        return Err(TrainError::OneClass(format!(
            "the matured book ({bads} bad of {})",
            data.len()
        )));
    }
    let cols = features::LEN;
    let (train_idx, oot_idx) = out_of_time_split(&data.months, request.oot_share)?;
    // Early stopping on every tenth training row; the out-of-time rows are never seen.
    let (fit_idx, valid_idx): (Vec<usize>, Vec<usize>) =
        train_idx.iter().partition(|i| **i % 10 != 0);
    let labels_of = |idx: &[usize]| idx.iter().map(|i| data.labels[*i]).collect::<Vec<f32>>();
    let fit = xgb::matrix(
        &select(&data.rows, &fit_idx, cols),
        cols,
        Some(&labels_of(&fit_idx)),
    )?;
    let valid = xgb::matrix(
        &select(&data.rows, &valid_idx, cols),
        cols,
        Some(&labels_of(&valid_idx)),
    )?;
    let train_rows = select(&data.rows, &train_idx, cols);
    let oot_rows = select(&data.rows, &oot_idx, cols);
    if params.monotone_constraints.is_none() {
        params.monotone_constraints = Some(features::monotone_constraints());
    }
    let t = Instant::now();
    let planned = params.effective_rounds();
    let trained = xgb::train(&params, &fit, Some(&valid), |r, _| {
        progress.round(r, planned);
    })?;
    let train_seconds = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let train_pd = pds(&trained.booster, &xgb::matrix(&train_rows, cols, None)?)?;
    let oot_pd = pds(&trained.booster, &xgb::matrix(&oot_rows, cols, None)?)?;
    let oot_labels: Vec<bool> = oot_idx.iter().map(|i| data.labels[*i] > 0.5).collect();
    let train_labels: Vec<bool> = train_idx.iter().map(|i| data.labels[*i] > 0.5).collect();
    let oot = evaluate(&oot_pd, &oot_labels)?;
    let in_sample = evaluate(&train_pd, &train_labels)?;
    let psi = psi(&train_pd, &oot_pd);
    let limit = match &request.truth {
        Some(path) => Some(truth_limit(
            path,
            &data.application_ids,
            &oot_idx,
            &oot_labels,
        )?),
        None => None,
    };
    let evaluate_seconds = t.elapsed().as_secs_f64();

    // Feature importance: total split gain from the model, and mean |SHAP| (log-odds) over up
    // to 1,000 out-of-time loans (enough to rank the features; exact TreeSHAP costs ~1.5 ms a loan).
    let model_doc: serde_json::Value =
        serde_json::from_str(&xgb::model_json(&trained.booster)?).map_err(TrainError::ModelJson)?;
    let importance = importance(&model_doc, &oot_rows, cols)?;
    let version = request
        .version
        .clone()
        .unwrap_or_else(|| artifact::new_version(params.mode));
    let names = features::names();
    let window = data.window.map(|(a, b)| {
        json!({"first_disbursal": a, "last_disbursal": b, "labels_as_of": data.as_of,
               "performance_months": request.window_months})
    });
    let train_pd32: Vec<f32> = train_pd.iter().map(|p| *p as f32).collect();
    let artifact = build(ArtifactParts {
        model_name: "pd",
        model_version: &version,
        mode: match params.mode {
            Mode::GradientBoosting => "gradient_boosting",
            Mode::RandomForest => "random_forest",
        },
        feature_set_version: features::VERSION,
        feature_names: &names,
        scaling: request.scaling.clone(),
        rows: &train_rows,
        train_pd: &train_pd32,
        training: json!({
            "source": "book",
            "window": window,
            "rows": data.len(),
            "train_rows": train_idx.len(),
            "out_of_time_rows": oot_idx.len(),
            "data_hash": data.data_hash,
            "rounds": trained.rounds,
            "params": params,
        }),
        metrics: json!({
            "out_of_time": oot,
            "in_sample": in_sample,
            "psi_train_vs_oot": psi,
            "importance": importance,
        }),
        xgboost_model: model_doc,
    });
    let uri = artifact::write(&request.out, &artifact)?;

    let comparison = if request.promote_if_better {
        let champion = registry::serving(pool, "pd", ModelAlias::Champion).await?;
        let champion_auc = match &champion {
            None => None,
            Some(c) => {
                let ensemble = Ensemble::from_xgboost_json(&c.xgboost_model)?;
                let pd: Vec<f64> = oot_rows
                    .chunks(cols)
                    .map(|x| f64::from(ensemble.predict(x)))
                    .collect();
                Some((c.model_version.clone(), evaluate(&pd, &oot_labels)?.auc))
            }
        };
        Some(compare(
            &request.promotion,
            &oot,
            psi,
            champion_auc.as_ref().map(|(v, a)| (v.as_str(), *a)),
        ))
    } else {
        None
    };
    let comparison_doc = comparison.as_ref().map(|c| json!(c));
    let promotion = registry::register(
        pool,
        &Registration {
            artifact: &artifact,
            uri: &uri,
            rows: data.len(),
            data_hash: &data.data_hash,
            comparison: comparison_doc.as_ref(),
            promote: comparison.as_ref().is_some_and(|c| c.promoted),
            actor: ACTOR,
        },
    )
    .await?;
    Ok(BookTrainingReport {
        model_version: version,
        rows: data.len(),
        out_of_time_rows: oot_idx.len(),
        auc_mean: oot.auc,
        auc_std: 0.0,
        ks: oot.ks,
        gini: oot.gini,
        brier: oot.brier,
        psi,
        true_pd_limit: limit,
        calibration: oot.calibration.clone(),
        importance,
        promoted: promotion.is_some(),
        comparison,
        seconds: started.elapsed().as_secs_f64(),
        read_seconds,
        train_seconds,
        evaluate_seconds,
        artifact: uri,
        out_of_time: oot,
        promotion,
    })
}

/// Gain (sum of loss reductions of the splits on each feature) and mean |SHAP| per feature,
/// by mean |SHAP| descending.
fn importance(
    model_doc: &serde_json::Value,
    rows: &[f32],
    cols: usize,
) -> Result<Vec<Importance>, TrainError> {
    let gain = gain_by_feature(model_doc, cols)?;
    let ensemble = Ensemble::from_xgboost_json(model_doc)?;
    let explainer = Explainer::new(&ensemble);
    let mut shap = vec![0.0f64; cols];
    let sample: Vec<&[f32]> = rows.chunks(cols).take(1_000).collect();
    for x in &sample {
        for (acc, phi) in shap.iter_mut().zip(explainer.contributions(&ensemble, x)) {
            *acc += phi.abs();
        }
    }
    let n = sample.len().max(1) as f64;
    let mut out: Vec<Importance> = features::names()
        .iter()
        .enumerate()
        .map(|(j, name)| Importance {
            feature: name.to_string(),
            gain: gain[j],
            mean_abs_shap: shap[j] / n,
        })
        .collect();
    out.sort_by(|a, b| b.mean_abs_shap.total_cmp(&a.mean_abs_shap));
    Ok(out)
}

/// The AUC of the generator's true PDs on the out-of-time loans: what a perfect model reaches.
fn truth_limit(
    path: &Path,
    ids: &[String],
    oot_idx: &[usize],
    labels: &[bool],
) -> Result<TruthLimit, TrainError> {
    let csv = |source| TrainError::Csv {
        path: path.to_path_buf(),
        source,
    };
    let wanted: HashSet<&str> = oot_idx.iter().map(|i| ids[*i].as_str()).collect();
    let mut truth = HashMap::new();
    let mut reader = csv::Reader::from_path(path).map_err(csv)?;
    let headers = reader.headers().map_err(csv)?.clone();
    let id_col = headers.iter().position(|h| h == "application_id");
    let pd_col = headers.iter().position(|h| h == "true_pd");
    let (Some(id_col), Some(pd_col)) = (id_col, pd_col) else {
        return Err(TrainError::Table {
            path: path.to_path_buf(),
            message: "no application_id and true_pd columns".into(),
        });
    };
    for record in reader.records() {
        let record = record.map_err(csv)?;
        if let (Some(id), Some(pd)) = (record.get(id_col), record.get(pd_col)) {
            if wanted.contains(id) {
                let pd = pd.parse::<f64>().map_err(|source| TrainError::Number {
                    path: path.to_path_buf(),
                    what: format!("the true_pd of {id}"),
                    source,
                })?;
                truth.insert(id.to_string(), pd);
            }
        }
    }
    let mut pds = Vec::with_capacity(oot_idx.len());
    let mut ys = Vec::with_capacity(oot_idx.len());
    for (k, i) in oot_idx.iter().enumerate() {
        if let Some(pd) = truth.get(&ids[*i]) {
            pds.push(*pd);
            ys.push(labels[k]);
        }
    }
    if pds.is_empty() {
        return Err(TrainError::Table {
            path: path.to_path_buf(),
            message: "no out-of-time loan is in it: is it the truth of this book?".into(),
        });
    }
    let auc = risk_core::metrics::auc(&pds, &ys)
        .ok_or_else(|| TrainError::OneClass("the out-of-time loans of the truth file".into()))?;
    Ok(TruthLimit {
        auc,
        loans: pds.len(),
    })
}
