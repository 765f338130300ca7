//! Champion/challenger: when a newly trained model may replace the champion.

use serde::{Deserialize, Serialize};

use crate::evaluation::Evaluation;

/// When a challenger may replace the champion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PromotionSettings {
    /// The challenger's out-of-time AUC must exceed the champion's by at least this much.
    pub auc_margin: f64,
    /// Its mean PD on the out-of-time set must be within this fraction of the observed rate.
    pub max_calibration_error: f64,
    /// PSI between its training and out-of-time PD distributions must stay below this.
    pub max_psi: f64,
}

impl Default for PromotionSettings {
    fn default() -> Self {
        Self {
            auc_margin: 0.005,
            max_calibration_error: 0.2,
            max_psi: 0.25,
        }
    }
}

/// The outcome of a promotion check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Whether the challenger was promoted.
    pub promoted: bool,
    /// Why (each check, or why not).
    pub reasons: Vec<String>,
    /// The champion compared against.
    pub champion: Option<String>,
    /// Champion's out-of-time AUC on the same rows.
    pub champion_auc: Option<f64>,
    /// Challenger's out-of-time AUC.
    pub challenger_auc: f64,
    /// Challenger's calibration error (|mean PD − observed| / observed).
    pub calibration_error: f64,
    /// Challenger's PSI (training vs out-of-time PDs).
    pub psi: f64,
}

/// Decide on promotion from the challenger's evaluation and the champion's AUC on the same
/// out-of-time rows.
pub fn compare(
    settings: &PromotionSettings,
    challenger: &Evaluation,
    challenger_psi: f64,
    champion: Option<(&str, f64)>,
) -> Comparison {
    let calibration_error = if challenger.observed > 0.0 {
        (challenger.mean_pd - challenger.observed).abs() / challenger.observed
    } else {
        f64::INFINITY
    };
    let mut reasons = Vec::new();
    let mut ok = true;
    if calibration_error <= settings.max_calibration_error {
        reasons.push(format!(
            "calibration: mean PD {:.4} vs observed {:.4} (error {:.1}% ≤ {:.1}%)",
            challenger.mean_pd,
            challenger.observed,
            calibration_error * 100.0,
            settings.max_calibration_error * 100.0
        ));
    } else {
        ok = false;
        reasons.push(format!(
            "calibration fails: mean PD {:.4} vs observed {:.4} (error {:.1}% > {:.1}%)",
            challenger.mean_pd,
            challenger.observed,
            calibration_error * 100.0,
            settings.max_calibration_error * 100.0
        ));
    }
    if challenger_psi < settings.max_psi {
        reasons.push(format!(
            "stability: PSI {challenger_psi:.3} < {}",
            settings.max_psi
        ));
    } else {
        ok = false;
        reasons.push(format!(
            "stability fails: PSI {challenger_psi:.3} ≥ {}",
            settings.max_psi
        ));
    }
    match champion {
        None => {
            // Without a champion there is nothing to protect: the first model is promoted, and
            // the checks above are recorded with it for the risk committee.
            ok = true;
            reasons.push(
                "no champion: the first model is promoted (the checks above are recorded, not \
                 blocking)"
                    .into(),
            );
        }
        Some((version, champion_auc)) => {
            if challenger.auc >= champion_auc + settings.auc_margin {
                reasons.push(format!(
                    "AUC {:.4} beats champion {version}'s {champion_auc:.4} by ≥ {}",
                    challenger.auc, settings.auc_margin
                ));
            } else {
                ok = false;
                reasons.push(format!(
                    "AUC {:.4} does not beat champion {version}'s {champion_auc:.4} by {}",
                    challenger.auc, settings.auc_margin
                ));
            }
        }
    }
    Comparison {
        promoted: ok,
        reasons,
        champion: champion.map(|(v, _)| v.to_string()),
        champion_auc: champion.map(|(_, a)| a),
        challenger_auc: challenger.auc,
        calibration_error,
        psi: challenger_psi,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(auc: f64, mean_pd: f64, observed: f64) -> Evaluation {
        Evaluation {
            rows: 1000,
            auc,
            gini: 2.0 * auc - 1.0,
            ks: 0.3,
            brier: 0.05,
            mean_pd,
            observed,
            calibration: Vec::new(),
        }
    }

    #[test]
    fn a_worse_challenger_is_refused_and_the_reason_recorded() {
        let s = PromotionSettings::default();
        let c = compare(&s, &eval(0.70, 0.05, 0.05), 0.02, Some(("champ-1", 0.74)));
        assert!(!c.promoted);
        assert!(c
            .reasons
            .iter()
            .any(|r| r.contains("does not beat champion champ-1")));
        let better = compare(&s, &eval(0.76, 0.05, 0.05), 0.02, Some(("champ-1", 0.74)));
        assert!(better.promoted);
        let miscalibrated = compare(&s, &eval(0.80, 0.10, 0.05), 0.02, Some(("champ-1", 0.74)));
        assert!(!miscalibrated.promoted);
        let first = compare(&s, &eval(0.70, 0.05, 0.05), 0.02, None);
        assert!(first.promoted);
        let first_miscalibrated = compare(&s, &eval(0.70, 0.10, 0.05), 0.02, None);
        assert!(first_miscalibrated.promoted);
        assert!(first_miscalibrated
            .reasons
            .iter()
            .any(|r| r.starts_with("calibration fails")));
    }
}
