//! IFRS 9 staging and expected credit loss.

use serde::{Deserialize, Serialize};

use crate::money::{div_round, Minor};

/// IFRS 9 impairment stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Stage {
    /// Performing: 12-month ECL.
    One = 1,
    /// Significant increase in credit risk: lifetime ECL.
    Two = 2,
    /// Credit-impaired: lifetime ECL with PD = 1.
    Three = 3,
}

impl Stage {
    /// 1, 2 or 3.
    pub fn number(self) -> i16 {
        self as i16
    }
}

/// Staging thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ifrs9Settings {
    /// Stage 2 backstop: DPD above this (30, the standard's rebuttable presumption).
    pub stage2_after_dpd: u32,
    /// Stage 3: DPD above this (90, the default presumption).
    pub stage3_after_dpd: u32,
    /// Stage 2 when current PD ≥ this multiple of the origination PD (2×).
    pub pd_ratio_trigger: f64,
}

impl Default for Ifrs9Settings {
    fn default() -> Self {
        Self {
            stage2_after_dpd: 30,
            stage3_after_dpd: 90,
            pd_ratio_trigger: 2.0,
        }
    }
}

impl Ifrs9Settings {
    /// Stage from DPD, credit impairment (NPA) and, where a current PD exists, the PD ratio.
    pub fn stage(
        &self,
        dpd: u32,
        credit_impaired: bool,
        pd_now: Option<f64>,
        pd_at_origination: Option<f64>,
    ) -> Stage {
        if credit_impaired || dpd > self.stage3_after_dpd {
            return Stage::Three;
        }
        if dpd > self.stage2_after_dpd {
            return Stage::Two;
        }
        match (pd_now, pd_at_origination) {
            (Some(now), Some(orig)) if orig > 0.0 && now >= self.pd_ratio_trigger * orig => {
                Stage::Two
            }
            _ => Stage::One,
        }
    }
}

/// Lifetime PD from a 12-month PD under a constant hazard: `1 − (1 − PD₁₂)^(months / 12)`.
pub fn lifetime_pd(pd_12m: f64, remaining_months: u32) -> f64 {
    let pd = pd_12m.clamp(0.0, 1.0);
    1.0 - (1.0 - pd).powf(f64::from(remaining_months) / 12.0)
}

/// `ECL = PD × LGD × EAD`: 12-month PD in Stage 1, lifetime PD in Stage 2, PD = 1 in Stage 3.
/// LGD in basis points; EAD in minor units; the result rounded to the minor unit.
pub fn ecl(stage: Stage, pd_12m: f64, lgd_bps: i64, ead: Minor, remaining_months: u32) -> Minor {
    let pd = match stage {
        Stage::One => pd_12m.clamp(0.0, 1.0),
        Stage::Two => lifetime_pd(pd_12m, remaining_months),
        Stage::Three => 1.0,
    };
    // PD is a probability (a float by nature); scale it to parts per billion to keep the money
    // arithmetic in integers.
    let pd_ppb = (pd * 1e9).round() as i128;
    div_round(
        pd_ppb * i128::from(lgd_bps) * i128::from(ead.max(0)),
        1_000_000_000 * 10_000,
    )
}

/// Loss given default by product and security, basis points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LgdSettings {
    /// Housing loans (secured by the property): 20%.
    pub home_bps: i64,
    /// Vehicle loans: 40%.
    pub auto_bps: i64,
    /// Gold loans: 15%.
    pub gold_bps: i64,
    /// Other secured loans: 35%.
    pub other_secured_bps: i64,
    /// Unsecured loans: 65% (near the Basel foundation 75% for unsecured retail).
    pub unsecured_bps: i64,
}

impl Default for LgdSettings {
    fn default() -> Self {
        Self {
            home_bps: 2_000,
            auto_bps: 4_000,
            gold_bps: 1_500,
            other_secured_bps: 3_500,
            unsecured_bps: 6_500,
        }
    }
}

impl LgdSettings {
    /// LGD for a purpose (schema symbol) and whether the loan is secured.
    pub fn lgd_bps(&self, purpose: schemas::Purpose, secured: bool) -> i64 {
        use schemas::Purpose;
        if !secured {
            return self.unsecured_bps;
        }
        match purpose {
            Purpose::Home => self.home_bps,
            Purpose::Auto => self.auto_bps,
            Purpose::Gold => self.gold_bps,
            _ => self.other_secured_bps,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpd_backstops_decide_the_stage_without_a_current_pd() {
        let s = Ifrs9Settings::default();
        assert_eq!(s.stage(30, false, None, Some(0.02)), Stage::One);
        assert_eq!(s.stage(31, false, None, Some(0.02)), Stage::Two);
        assert_eq!(s.stage(91, false, None, Some(0.02)), Stage::Three);
    }

    #[test]
    fn a_doubled_pd_moves_a_loan_to_stage_two() {
        let s = Ifrs9Settings::default();
        assert_eq!(s.stage(0, false, Some(0.039), Some(0.02)), Stage::One);
        assert_eq!(s.stage(0, false, Some(0.04), Some(0.02)), Stage::Two);
    }

    #[test]
    fn an_npa_is_credit_impaired_even_after_dpd_falls() {
        assert_eq!(
            Ifrs9Settings::default().stage(10, true, None, None),
            Stage::Three
        );
    }

    #[test]
    fn ecl_is_pd_times_lgd_times_ead() {
        // 2% × 65% × ₹1,00,000 = ₹1,300.
        assert_eq!(ecl(Stage::One, 0.02, 6_500, 10_000_000, 24), 130_000);
        assert_eq!(ecl(Stage::Three, 0.02, 6_500, 10_000_000, 24), 6_500_000);
        let lifetime = 1.0 - 0.98f64.powf(2.0);
        assert_eq!(
            ecl(Stage::Two, 0.02, 6_500, 10_000_000, 24),
            (lifetime * 0.65 * 10_000_000.0).round() as i64
        );
    }
}
