//! XGBoost through xgboost-rs: dense matrices with NaN as missing, training round by round
//! (xgboost-rs's `Booster::train` ignores the round count), early stopping, JSON export.

use std::collections::HashMap;

use thiserror::Error;
use xgboost_rs::{Booster, DMatrix};

/// XGBoost refused something.
#[derive(Debug, Error)]
pub enum XgbError {
    /// The C library reported an error.
    #[error("XGBoost")]
    Library(#[from] xgboost_rs::XGBError),
    /// The input shape is inconsistent.
    #[error("{0}")]
    Shape(String),
}

/// Booster kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Gradient-boosted trees.
    GradientBoosting,
    /// Random forest: one round of `num_parallel_tree` trees with row and column subsampling.
    RandomForest,
}

/// A booster kind that is not `gbtree` or `random-forest`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a booster: use gbtree or random-forest")]
pub struct UnknownMode(pub String);

impl std::str::FromStr for Mode {
    type Err = UnknownMode;

    /// The command line's spelling: `gbtree` or `random-forest`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "gbtree" => Ok(Self::GradientBoosting),
            "random-forest" => Ok(Self::RandomForest),
            other => Err(UnknownMode(other.to_string())),
        }
    }
}

/// Hyper-parameters. Defaults are XGBoost's customary starting point for credit data.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct XgbParams {
    /// Boosting or forest.
    pub mode: Mode,
    /// Boosting rounds (forest: 1).
    pub rounds: u32,
    /// Trees per round (forest size in random-forest mode).
    pub num_parallel_tree: u32,
    /// Maximum tree depth.
    pub max_depth: u32,
    /// Learning rate.
    pub eta: f64,
    /// Row subsample per tree.
    pub subsample: f64,
    /// Column subsample per tree.
    pub colsample_bytree: f64,
    /// Minimum hessian in a child.
    pub min_child_weight: f64,
    /// L2 regularisation.
    pub lambda: f64,
    /// Monotone constraints, e.g. `(1,-1,0)`.
    pub monotone_constraints: Option<String>,
    /// Threads (set explicitly: OpenMP degrades badly on a busy machine).
    pub nthread: u32,
    /// Seed.
    pub seed: u64,
    /// Stop when the validation log-loss has not improved for this many rounds.
    pub early_stopping_rounds: Option<u32>,
}

impl Default for XgbParams {
    fn default() -> Self {
        Self {
            mode: Mode::GradientBoosting,
            rounds: 300,
            num_parallel_tree: 1,
            max_depth: 6,
            eta: 0.1,
            subsample: 1.0,
            colsample_bytree: 1.0,
            min_child_weight: 1.0,
            lambda: 1.0,
            monotone_constraints: None,
            nthread: 2,
            seed: 42,
            early_stopping_rounds: None,
        }
    }
}

impl XgbParams {
    /// The defaults of the `train` command for credit data: `rounds` rounds at learning rate
    /// 0.05, 80% row and column subsampling per tree (less variance on small, noisy data), and
    /// early stopping after 30 rounds without improvement on the validation rows.
    pub fn for_credit(rounds: u32) -> Self {
        Self {
            rounds,
            eta: 0.05,
            subsample: 0.8,
            colsample_bytree: 0.8,
            early_stopping_rounds: Some(30),
            ..Self::default()
        }
    }

    fn config(&self) -> HashMap<String, String> {
        let mut c = HashMap::new();
        let mut set = |k: &str, v: String| {
            c.insert(k.to_string(), v);
        };
        set("objective", "binary:logistic".into());
        set("eval_metric", "logloss".into());
        set("tree_method", "hist".into());
        set("max_depth", self.max_depth.to_string());
        set("min_child_weight", self.min_child_weight.to_string());
        set("lambda", self.lambda.to_string());
        set("nthread", self.nthread.to_string());
        set("seed", self.seed.to_string());
        set("verbosity", "0".into());
        match self.mode {
            Mode::GradientBoosting => {
                set("eta", self.eta.to_string());
                set("subsample", self.subsample.to_string());
                set("colsample_bytree", self.colsample_bytree.to_string());
                set("num_parallel_tree", self.num_parallel_tree.to_string());
            }
            Mode::RandomForest => {
                // XGBoost's random-forest recipe: one round, many parallel trees, learning
                // rate 1, row and column subsampling.
                set("eta", "1".into());
                set("subsample", self.subsample.min(0.8).to_string());
                set(
                    "colsample_bynode",
                    self.colsample_bytree.min(0.8).to_string(),
                );
                set(
                    "num_parallel_tree",
                    self.num_parallel_tree.max(1).to_string(),
                );
            }
        }
        if let Some(m) = &self.monotone_constraints {
            set("monotone_constraints", m.clone());
        }
        c
    }

    /// Rounds actually run.
    pub fn effective_rounds(&self) -> u32 {
        match self.mode {
            Mode::GradientBoosting => self.rounds.max(1),
            Mode::RandomForest => 1,
        }
    }
}

/// A dense row-major matrix with NaN as missing, and optional labels.
pub fn matrix(rows: &[f32], n_cols: usize, labels: Option<&[f32]>) -> Result<DMatrix, XgbError> {
    if n_cols == 0 || !rows.len().is_multiple_of(n_cols) {
        return Err(XgbError::Shape(format!(
            "{} values do not make rows of {n_cols} columns",
            rows.len()
        )));
    }
    let n_rows = rows.len() / n_cols;
    if n_rows == 0 {
        return Err(XgbError::Shape("no rows".into()));
    }
    let f = std::mem::size_of::<f32>();
    let mut m = DMatrix::from_col_major_f32(rows, f * n_cols, f, n_rows, n_cols, 2, f32::NAN)?;
    if let Some(y) = labels {
        if y.len() != n_rows {
            return Err(XgbError::Shape(format!(
                "{} labels for {n_rows} rows",
                y.len()
            )));
        }
        m.set_labels(y)?;
    }
    Ok(m)
}

/// A trained booster and how training went.
pub struct Trained {
    /// The booster.
    pub booster: Booster,
    /// Rounds kept (the best iteration + 1 with early stopping).
    pub rounds: u32,
}

/// Train, round by round, with optional early stopping on `valid`.
pub fn train(
    params: &XgbParams,
    train: &DMatrix,
    valid: Option<&DMatrix>,
    mut on_round: impl FnMut(u32, u32),
) -> Result<Trained, XgbError> {
    let mut cache: Vec<&DMatrix> = vec![train];
    if let Some(v) = valid {
        cache.push(v);
    }
    let mut booster = Booster::new_with_json_config(&cache, params.config())?;
    let total = params.effective_rounds();
    let mut best = (f32::INFINITY, 0u32);
    let mut kept = total;
    for round in 0..total {
        booster.update(train, i32::try_from(round).unwrap_or(i32::MAX))?;
        on_round(round + 1, total);
        if let (Some(v), Some(patience)) = (valid, params.early_stopping_rounds) {
            let eval = booster.evaluate(v, "valid")?;
            let loss = eval.get("logloss").copied().unwrap_or(f32::INFINITY);
            if loss < best.0 {
                best = (loss, round);
            } else if round - best.1 >= patience {
                kept = best.1 + 1;
                break;
            }
        }
    }
    if kept < total {
        // Keep only the best rounds: rebuild from the JSON with the extra trees dropped is not
        // offered by the C API in 1.6, so retrain to the best round count (deterministic).
        let mut again = Booster::new_with_json_config(&cache, params.config())?;
        for round in 0..kept {
            again.update(train, i32::try_from(round).unwrap_or(i32::MAX))?;
        }
        booster = again;
    }
    Ok(Trained {
        booster,
        rounds: kept,
    })
}

/// The model as XGBoost's JSON document.
pub fn model_json(booster: &Booster) -> Result<String, XgbError> {
    Ok(booster.save_to_buffer("json".into())?)
}

/// Probabilities for rows (XGBoost's own prediction; used for parity checks and evaluation).
pub fn predict(booster: &Booster, m: &DMatrix) -> Result<Vec<f32>, XgbError> {
    Ok(booster.predict(m)?)
}

/// Margins (log-odds).
pub fn predict_margin(booster: &Booster, m: &DMatrix) -> Result<Vec<f32>, XgbError> {
    Ok(booster.predict_margin(m)?)
}

/// SHAP contributions per row: `n_features + 1` values (the last is the bias).
pub fn contributions(booster: &Booster, m: &DMatrix) -> Result<(Vec<f32>, usize), XgbError> {
    let (values, (_, cols)) = booster.predict_contributions(m)?;
    Ok((values, cols))
}

/// Load a booster from XGBoost's JSON model document.
pub fn load_json(model: &str) -> Result<Booster, XgbError> {
    Ok(Booster::load_buffer(model.as_bytes())?)
}
