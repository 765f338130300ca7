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
    /// Shortest ECL horizon while exposure remains, also past maturity (1 month).
    pub min_horizon_months: u32,
}

impl Default for Ifrs9Settings {
    fn default() -> Self {
        Self {
            stage2_after_dpd: 30,
            stage3_after_dpd: 90,
            pd_ratio_trigger: 2.0,
            min_horizon_months: 1,
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

/// PD over `months` from a 12-month PD under a constant hazard: `1 − (1 − PD₁₂)^(months / 12)`.
pub fn lifetime_pd(pd_12m: f64, months: u32) -> f64 {
    let pd = pd_12m.clamp(0.0, 1.0);
    1.0 - (1.0 - pd).powf(f64::from(months) / 12.0)
}

/// A PD in parts per billion, `floor(PD·10⁹ + 0.5)` (half away from zero for a probability):
/// the one rounding of a PD, the same in the day-end's SQL.
pub fn pd_ppb(pd: f64) -> i64 {
    (pd.clamp(0.0, 1.0) * 1e9 + 0.5).floor() as i64
}

impl Ifrs9Settings {
    /// Months of the ECL horizon: the instalments still to fall due, at least
    /// `min_horizon_months` while there is exposure.
    pub fn horizon(&self, remaining_months: u32, ead: Minor) -> u32 {
        if ead > 0 {
            remaining_months.max(self.min_horizon_months)
        } else {
            remaining_months
        }
    }

    /// The PD an ECL uses, in parts per billion: over min(12, horizon) months in Stage 1, over
    /// the horizon in Stage 2, 1 in Stage 3. Stage 2 never uses a shorter horizon than Stage 1,
    /// so moving from Stage 1 to 2 never lowers the ECL.
    pub fn ecl_pd_ppb(&self, stage: Stage, pd_12m: f64, remaining_months: u32, ead: Minor) -> i64 {
        let h = self.horizon(remaining_months, ead);
        match stage {
            Stage::One if h >= 12 => pd_ppb(pd_12m),
            Stage::One => pd_ppb(lifetime_pd(pd_12m, h)),
            Stage::Two => pd_ppb(lifetime_pd(pd_12m, h)),
            Stage::Three => 1_000_000_000,
        }
    }

    /// `ECL = PD × LGD × EAD` with [`Ifrs9Settings::ecl_pd_ppb`], LGD in basis points, EAD in
    /// minor units; rounded half away from zero to the minor unit.
    pub fn ecl(
        &self,
        stage: Stage,
        pd_12m: f64,
        lgd_bps: i64,
        ead: Minor,
        remaining_months: u32,
    ) -> Minor {
        let ppb = self.ecl_pd_ppb(stage, pd_12m, remaining_months, ead);
        ecl_of(ppb, lgd_bps, ead)
    }
}

/// `PD(ppb) × LGD(bps) × EAD`, rounded half away from zero to the minor unit.
pub fn ecl_of(pd_ppb: i64, lgd_bps: i64, ead: Minor) -> Minor {
    div_round(
        i128::from(pd_ppb) * i128::from(lgd_bps) * i128::from(ead.max(0)),
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
    /// LGD for a purpose (schema symbol) and whether the loan is secured
    /// ([`crate::provisioning::is_secured`]).
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
        let s = Ifrs9Settings::default();
        // 2% × 65% × ₹1,00,000 = ₹1,300.
        assert_eq!(s.ecl(Stage::One, 0.02, 6_500, 10_000_000, 24), 130_000);
        assert_eq!(s.ecl(Stage::Three, 0.02, 6_500, 10_000_000, 24), 6_500_000);
        let lifetime = 1.0 - 0.98f64.powf(2.0);
        assert_eq!(
            s.ecl(Stage::Two, 0.02, 6_500, 10_000_000, 24),
            (lifetime * 0.65 * 10_000_000.0).round() as i64
        );
    }

    #[test]
    fn a_loan_on_its_last_due_date_at_dpd_32_keeps_a_one_month_horizon() {
        // A 12-month loan, last instalment due 31 Mar 2027, at DPD 32 on that date: no
        // instalment is left to fall due, but ₹10,000 is still owed. PD₁₂ 12%, LGD 65%.
        let s = Ifrs9Settings::default();
        let one_month = 1.0 - 0.88f64.powf(1.0 / 12.0);
        let expected = (one_month * 0.65 * 1_000_000.0).round() as i64;
        assert_eq!(s.ecl(Stage::Two, 0.12, 6_500, 1_000_000, 0), expected);
        assert!(expected > 0);
    }

    #[test]
    fn stage_one_never_exceeds_stage_two_whatever_the_months_left() {
        let s = Ifrs9Settings::default();
        for months in 0..40 {
            let one = s.ecl(Stage::One, 0.05, 6_500, 5_000_000, months);
            let two = s.ecl(Stage::Two, 0.05, 6_500, 5_000_000, months);
            assert!(one <= two, "{months} months: stage 1 {one} > stage 2 {two}");
        }
        // Three months left: Stage 1 uses a three-month PD, not a twelve-month one.
        let three = 1.0 - 0.95f64.powf(3.0 / 12.0);
        assert_eq!(
            s.ecl(Stage::One, 0.05, 6_500, 5_000_000, 3),
            (three * 0.65 * 5_000_000.0).round() as i64
        );
    }

    #[test]
    fn ecl_of_an_exact_half_paisa_rounds_away_from_zero() {
        // PD 1 (Stage 3), LGD 50%, EAD 1 paisa: 0.5 paisa → 1.
        assert_eq!(ecl_of(1_000_000_000, 5_000, 1), 1);
        // 2.5 ppb (PD₁₂ = 2.5e-9) rounds to 3 ppb, as SQL's floor(x + 0.5) does.
        assert_eq!(pd_ppb(2.5e-9), 3);
        assert_eq!(ecl_of(3, 10_000, 1_000_000_000), 3);
    }
}
