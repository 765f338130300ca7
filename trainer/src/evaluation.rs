//! Out-of-time evaluation: the split by origination month, discrimination, calibration by
//! decile, and the PSI between two PD distributions.

use risk_core::metrics::{auc, brier, gini, ks};
use serde::{Deserialize, Serialize};

use crate::error::TrainError;

/// Rows of the later origination months (`share` of the months, at least one) form the
/// out-of-time set; returns (train indices, out-of-time indices).
pub fn out_of_time_split(
    months: &[i32],
    share: f64,
) -> Result<(Vec<usize>, Vec<usize>), TrainError> {
    let mut distinct: Vec<i32> = months.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 2 {
        return Err(TrainError::OneMonth(distinct.len()));
    }
    let test_months =
        ((distinct.len() as f64 * share).ceil() as usize).clamp(1, distinct.len() - 1);
    let first_test = distinct[distinct.len() - test_months];
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (i, m) in months.iter().enumerate() {
        if *m >= first_test {
            test.push(i);
        } else {
            train.push(i);
        }
    }
    Ok((train, test))
}

/// One PD decile of a calibration table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decile {
    /// Rows.
    pub n: usize,
    /// Mean predicted PD.
    pub mean_pd: f64,
    /// Observed default rate.
    pub observed: f64,
}

/// Discrimination and calibration on one set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Rows.
    pub rows: usize,
    /// ROC-AUC.
    pub auc: f64,
    /// 2·AUC − 1.
    pub gini: f64,
    /// Kolmogorov-Smirnov.
    pub ks: f64,
    /// Brier score.
    pub brier: f64,
    /// Mean PD.
    pub mean_pd: f64,
    /// Observed default rate.
    pub observed: f64,
    /// Predicted vs observed by PD decile.
    pub calibration: Vec<Decile>,
}

/// Evaluate PDs against labels.
pub fn evaluate(pd: &[f64], labels: &[bool]) -> Result<Evaluation, TrainError> {
    let a = auc(pd, labels).ok_or_else(|| TrainError::OneClass("the evaluation set".into()))?;
    let mut order: Vec<usize> = (0..pd.len()).collect();
    order.sort_by(|x, y| pd[*x].total_cmp(&pd[*y]));
    let calibration = (0..10)
        .filter_map(|d| {
            let lo = order.len() * d / 10;
            let hi = order.len() * (d + 1) / 10;
            let idx = &order[lo..hi];
            (!idx.is_empty()).then(|| Decile {
                n: idx.len(),
                mean_pd: idx.iter().map(|i| pd[*i]).sum::<f64>() / idx.len() as f64,
                observed: idx.iter().filter(|i| labels[**i]).count() as f64 / idx.len() as f64,
            })
        })
        .collect();
    Ok(Evaluation {
        rows: pd.len(),
        auc: a,
        gini: gini(a),
        ks: ks(pd, labels).unwrap_or(0.0),
        brier: brier(pd, labels).unwrap_or(0.0),
        mean_pd: pd.iter().sum::<f64>() / pd.len().max(1) as f64,
        observed: labels.iter().filter(|b| **b).count() as f64 / labels.len().max(1) as f64,
        calibration,
    })
}

/// PSI of `actual` against `expected` over the expected deciles (DOMAIN.md's formula).
pub fn psi(expected: &[f64], actual: &[f64]) -> f64 {
    let mut sorted = expected.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() || actual.is_empty() {
        return 0.0;
    }
    let edges: Vec<f64> = (1..10).map(|d| sorted[sorted.len() * d / 10]).collect();
    let bin = |v: f64| edges.iter().position(|e| v <= *e).unwrap_or(edges.len());
    let mut e_counts = [0u64; 10];
    let mut a_counts = [0u64; 10];
    for v in expected {
        e_counts[bin(*v)] += 1;
    }
    for v in actual {
        a_counts[bin(*v)] += 1;
    }
    risk_core::metrics::psi(
        &risk_core::metrics::shares(&e_counts),
        &risk_core::metrics::shares(&a_counts),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_out_of_time_set_is_the_latest_months() {
        let months = [1, 1, 2, 3, 3, 4, 5];
        let (train, test) = out_of_time_split(&months, 0.2).unwrap();
        assert_eq!(test, vec![6]);
        assert_eq!(train.len(), 6);
        assert!(out_of_time_split(&[7, 7], 0.2).is_err());
    }

    #[test]
    fn psi_is_zero_for_the_same_distribution_and_grows_with_a_shift() {
        let a: Vec<f64> = (0..1000).map(|i| f64::from(i) / 1000.0).collect();
        assert!(psi(&a, &a) < 1e-9);
        let shifted: Vec<f64> = a.iter().map(|x| (x + 0.3).min(1.0)).collect();
        assert!(psi(&a, &shifted) > 0.25);
    }
}
