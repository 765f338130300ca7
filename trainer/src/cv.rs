//! Stratified k-fold cross-validation with the usual credit metrics.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use risk_core::metrics::{auc, brier, gini, ks};
use serde::Serialize;

use crate::error::TrainError;
use crate::xgb::{self, XgbParams};

/// The cross-validation report.
#[derive(Debug, Clone, Serialize)]
pub struct CvReport {
    /// Folds.
    pub folds: usize,
    /// AUC per fold.
    pub fold_auc: Vec<f64>,
    /// Mean fold AUC.
    pub auc_mean: f64,
    /// Standard deviation of fold AUCs.
    pub auc_std: f64,
    /// Gini of the mean AUC.
    pub gini: f64,
    /// KS of the pooled out-of-fold predictions.
    pub ks: f64,
    /// Brier score of the pooled out-of-fold predictions.
    pub brier: f64,
    /// Rows.
    pub rows: usize,
    /// Boosting rounds kept per fold (fewer than asked when early stopping cut training).
    pub fold_rounds: Vec<u32>,
}

impl CvReport {
    /// One line: folds, AUC with its spread, Gini, KS, Brier, rows and `seconds`.
    pub fn render(&self, seconds: f64) -> String {
        format!(
            "{}-fold CV: AUC {:.4} ± {:.4}  Gini {:.4}  KS {:.4}  Brier {:.4}  ({} rows, {:.1} s)",
            self.folds,
            self.auc_mean,
            self.auc_std,
            self.gini,
            self.ks,
            self.brier,
            self.rows,
            seconds
        )
    }
}

/// Fold of each row: positives and negatives shuffled separately (seeded) and dealt round
/// robin, so every fold keeps the bad rate.
pub fn stratified_folds(labels: &[f32], k: usize, seed: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut fold = vec![0; labels.len()];
    for class in [true, false] {
        let mut idx: Vec<usize> = (0..labels.len())
            .filter(|i| (labels[*i] > 0.5) == class)
            .collect();
        idx.shuffle(&mut rng);
        for (j, i) in idx.into_iter().enumerate() {
            fold[i] = j % k;
        }
    }
    fold
}

/// Run k-fold CV; `on_fold(done, k)` reports progress.
pub fn cross_validate(
    rows: &[f32],
    labels: &[f32],
    n_cols: usize,
    params: &XgbParams,
    k: usize,
    seed: u64,
    mut on_fold: impl FnMut(usize, usize),
) -> Result<CvReport, TrainError> {
    if k < 2 {
        return Err(TrainError::Folds(k));
    }
    let folds = stratified_folds(labels, k, seed);
    let mut oof = vec![0.0f64; labels.len()];
    let mut fold_auc = Vec::with_capacity(k);
    let mut rounds = Vec::with_capacity(k);
    for f in 0..k {
        let (mut xtr, mut ytr, mut xte, mut idx_te) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (i, y) in labels.iter().enumerate() {
            let row = &rows[i * n_cols..(i + 1) * n_cols];
            if folds[i] == f {
                xte.extend_from_slice(row);
                idx_te.push(i);
            } else {
                xtr.extend_from_slice(row);
                ytr.push(*y);
            }
        }
        let test = xgb::matrix(&xte, n_cols, None)?;
        let trained = if params.early_stopping_rounds.is_some() {
            // Early stopping watches an inner, stratified fifth of the training folds; the
            // test fold is never seen before it is scored.
            let inner = stratified_folds(&ytr, 5, seed ^ (f as u64 + 1));
            let (mut xa, mut ya, mut xv, mut yv) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for (i, y) in ytr.iter().enumerate() {
                let row = &xtr[i * n_cols..(i + 1) * n_cols];
                if inner[i] == 0 {
                    xv.extend_from_slice(row);
                    yv.push(*y);
                } else {
                    xa.extend_from_slice(row);
                    ya.push(*y);
                }
            }
            let train = xgb::matrix(&xa, n_cols, Some(&ya))?;
            let valid = xgb::matrix(&xv, n_cols, Some(&yv))?;
            xgb::train(params, &train, Some(&valid), |_, _| {})?
        } else {
            let train = xgb::matrix(&xtr, n_cols, Some(&ytr))?;
            xgb::train(params, &train, None, |_, _| {})?
        };
        rounds.push(trained.rounds);
        let p = xgb::predict(&trained.booster, &test)?;
        let scores: Vec<f64> = p.iter().map(|v| f64::from(*v)).collect();
        let y: Vec<bool> = idx_te.iter().map(|i| labels[*i] > 0.5).collect();
        fold_auc
            .push(auc(&scores, &y).ok_or_else(|| TrainError::OneClass(format!("fold {}", f + 1)))?);
        for (i, s) in idx_te.iter().zip(scores) {
            oof[*i] = s;
        }
        on_fold(f + 1, k);
    }
    let mean = fold_auc.iter().sum::<f64>() / k as f64;
    let std = (fold_auc.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / k as f64).sqrt();
    let y: Vec<bool> = labels.iter().map(|v| *v > 0.5).collect();
    Ok(CvReport {
        folds: k,
        auc_mean: mean,
        auc_std: std,
        gini: gini(mean),
        ks: ks(&oof, &y).unwrap_or(0.0),
        brier: brier(&oof, &y).unwrap_or(0.0),
        rows: labels.len(),
        fold_rounds: rounds,
        fold_auc,
    })
}
