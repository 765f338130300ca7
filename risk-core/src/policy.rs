//! Credit policy: knock-out rules (each with a rule id), then PD cut-offs.

use schemas::{LoanApplication, Outcome, Purpose};
use serde::{Deserialize, Serialize};

use crate::money::Minor;
use crate::ratios::{foir, ltv, HousingLtvCaps};
use crate::schedule::proposed_emi;

/// Policy thresholds. Knock-out values are this lender's policy, stated so a credit committee
/// can change them without a release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicySettings {
    /// APPROVE when PD ≤ this (8%).
    pub approve_max_pd: f64,
    /// DECLINE when PD ≥ this (25%); REFER between the two.
    pub decline_min_pd: f64,
    /// Youngest eligible applicant (21: legal capacity plus an earning record).
    pub min_age: i32,
    /// Oldest age at loan maturity (70: repayment beyond working and pension years).
    pub max_age_at_maturity: i32,
    /// Lowest gross monthly income, minor units (₹15,000).
    pub min_monthly_income: Minor,
    /// Highest FOIR including the new EMI (65%).
    pub max_foir: f64,
    /// Lowest bureau score for applicants with a bureau record (550).
    pub min_bureau_score: i32,
    /// Most delinquencies in 24 months tolerated (2).
    pub max_delinquencies_24m: i32,
    /// Gold loan LTV cap (75%, RBI).
    pub gold_max_ltv: f64,
    /// Housing LTV caps (RBI).
    pub housing_caps: HousingLtvCaps,
}

impl Default for PolicySettings {
    fn default() -> Self {
        Self {
            approve_max_pd: 0.08,
            decline_min_pd: 0.25,
            min_age: 21,
            max_age_at_maturity: 70,
            min_monthly_income: 15_000 * 100,
            max_foir: 0.65,
            min_bureau_score: 550,
            max_delinquencies_24m: 2,
            gold_max_ltv: 0.75,
            housing_caps: HousingLtvCaps::default(),
        }
    }
}

/// Rule ids of the knock-out rules, in evaluation order.
pub mod rule {
    /// Applicant younger than the minimum age.
    pub const AGE_MIN: &str = "KO-AGE-MIN";
    /// Applicant older than the maximum age at maturity.
    pub const AGE_MATURITY: &str = "KO-AGE-MATURITY";
    /// Income below the minimum.
    pub const INCOME_MIN: &str = "KO-INCOME-MIN";
    /// FOIR above the maximum.
    pub const FOIR_MAX: &str = "KO-FOIR-MAX";
    /// Bureau score below the minimum.
    pub const BUREAU_SCORE_MIN: &str = "KO-BUREAU-SCORE-MIN";
    /// Too many recent delinquencies.
    pub const DELINQUENCIES: &str = "KO-DELINQUENCIES-24M";
    /// A secured purpose without a collateral value.
    pub const COLLATERAL_MISSING: &str = "KO-COLLATERAL-MISSING";
    /// Housing loan above the RBI LTV cap.
    pub const HOUSING_LTV: &str = "KO-HOUSING-LTV";
    /// Gold loan above the RBI LTV cap.
    pub const GOLD_LTV: &str = "KO-GOLD-LTV";
}

/// Whether a product is lent only against collateral (a knock-out when none is given; whether
/// an exposure counts as secured is [`crate::provisioning::is_secured`]).
pub fn requires_collateral(purpose: Purpose) -> bool {
    matches!(purpose, Purpose::Home | Purpose::Auto | Purpose::Gold)
}

impl PolicySettings {
    /// The knock-out rules an application fails, in evaluation order.
    pub fn knock_outs(&self, app: &LoanApplication) -> Vec<&'static str> {
        let mut hits = Vec::new();
        let a = &app.applicant;
        let l = &app.loan;
        if a.age < self.min_age {
            hits.push(rule::AGE_MIN);
        }
        let tenure_years = (l.tenure_months.max(0) + 11) / 12;
        if a.age + tenure_years > self.max_age_at_maturity {
            hits.push(rule::AGE_MATURITY);
        }
        if a.monthly_income < self.min_monthly_income {
            hits.push(rule::INCOME_MIN);
        }
        let instalment = proposed_emi(l);
        if foir(a.existing_emi, instalment, a.monthly_income).is_none_or(|f| f > self.max_foir) {
            hits.push(rule::FOIR_MAX);
        }
        if let Some(b) = &app.bureau {
            if b.bureau_score < self.min_bureau_score {
                hits.push(rule::BUREAU_SCORE_MIN);
            }
            if b.delinquencies_24m > self.max_delinquencies_24m {
                hits.push(rule::DELINQUENCIES);
            }
        }
        if requires_collateral(l.purpose) && l.collateral_value.is_none_or(|c| c <= 0) {
            hits.push(rule::COLLATERAL_MISSING);
        }
        match (l.purpose, l.collateral_value) {
            (Purpose::Home, Some(c)) if c > 0 && !self.housing_caps.within_cap(l.amount, c) => {
                hits.push(rule::HOUSING_LTV);
            }
            (Purpose::Gold, c) if ltv(l.amount, c).is_some_and(|v| v > self.gold_max_ltv) => {
                hits.push(rule::GOLD_LTV);
            }
            _ => {}
        }
        hits
    }

    /// Outcome from the PD alone (after knock-outs passed).
    pub fn pd_outcome(&self, pd: f64) -> Outcome {
        if pd >= self.decline_min_pd {
            Outcome::Decline
        } else if pd <= self.approve_max_pd {
            Outcome::Approve
        } else {
            Outcome::Refer
        }
    }

    /// Knock-outs first (any hit declines), then PD cut-offs.
    pub fn decide(&self, app: &LoanApplication, pd: f64) -> (Outcome, Vec<&'static str>) {
        let hits = self.knock_outs(app);
        if hits.is_empty() {
            (self.pd_outcome(pd), hits)
        } else {
            (Outcome::Decline, hits)
        }
    }
}
