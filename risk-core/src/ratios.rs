//! Affordability and collateral ratios: FOIR, loan-to-income, LTV and the RBI housing LTV caps.

use serde::{Deserialize, Serialize};

use crate::money::Minor;

/// FOIR (fixed obligations to income): `(existing obligations + proposed EMI) / gross monthly
/// income`. `None` when income is not positive (the ratio is undefined, not zero).
pub fn foir(
    existing_obligations: Minor,
    proposed_emi: Minor,
    monthly_income: Minor,
) -> Option<f64> {
    (monthly_income > 0)
        .then(|| (existing_obligations.max(0) + proposed_emi.max(0)) as f64 / monthly_income as f64)
}

/// Loan-to-income: loan amount over annual income (12 × monthly). `None` without income.
pub fn loan_to_income(amount: Minor, monthly_income: Minor) -> Option<f64> {
    (monthly_income > 0).then(|| amount as f64 / (12.0 * monthly_income as f64))
}

/// LTV: loan amount over collateral value; `None` for unsecured loans or no collateral value.
pub fn ltv(amount: Minor, collateral_value: Option<Minor>) -> Option<f64> {
    match collateral_value {
        Some(c) if c > 0 => Some(amount as f64 / c as f64),
        _ => None,
    }
}

/// RBI housing-loan LTV caps by loan size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HousingLtvCaps {
    /// Loans up to this amount (₹30 lakh) may go to `small_cap_bps`.
    pub small_loan_max: Minor,
    /// Cap for small loans: 90%.
    pub small_cap_bps: i64,
    /// Loans above `small_loan_max` up to this amount (₹75 lakh) may go to `medium_cap_bps`.
    pub medium_loan_max: Minor,
    /// Cap for medium loans: 80%.
    pub medium_cap_bps: i64,
    /// Cap above `medium_loan_max`: 75%.
    pub large_cap_bps: i64,
}

impl Default for HousingLtvCaps {
    fn default() -> Self {
        Self {
            small_loan_max: 3_000_000 * 100,
            small_cap_bps: 9_000,
            medium_loan_max: 7_500_000 * 100,
            medium_cap_bps: 8_000,
            large_cap_bps: 7_500,
        }
    }
}

impl HousingLtvCaps {
    /// The LTV cap in basis points for a housing loan of `amount`.
    pub fn cap_bps(&self, amount: Minor) -> i64 {
        if amount <= self.small_loan_max {
            self.small_cap_bps
        } else if amount <= self.medium_loan_max {
            self.medium_cap_bps
        } else {
            self.large_cap_bps
        }
    }

    /// Whether a housing loan of `amount` against `collateral_value` is within its cap.
    ///
    /// Compared in integers: `amount × 10,000 ≤ cap × collateral`.
    pub fn within_cap(&self, amount: Minor, collateral_value: Minor) -> bool {
        collateral_value > 0
            && i128::from(amount) * 10_000
                <= i128::from(self.cap_bps(amount)) * i128::from(collateral_value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAKH: Minor = 100_000 * 100;

    #[test]
    fn foir_counts_every_obligation_not_only_the_new_emi() {
        assert_eq!(foir(20_000, 30_000, 100_000), Some(0.5));
        assert_eq!(foir(0, 30_000, 0), None);
    }

    #[test]
    fn loan_to_income_uses_annual_income() {
        assert_eq!(loan_to_income(1_200_000, 100_000), Some(1.0));
    }

    #[test]
    fn an_unsecured_loan_has_no_ltv() {
        assert_eq!(ltv(100, None), None);
        assert_eq!(ltv(80, Some(100)), Some(0.8));
    }

    #[test]
    fn housing_caps_follow_the_rbi_slabs() {
        let caps = HousingLtvCaps::default();
        assert_eq!(caps.cap_bps(30 * LAKH), 9_000);
        assert_eq!(caps.cap_bps(30 * LAKH + 1), 8_000);
        assert_eq!(caps.cap_bps(75 * LAKH), 8_000);
        assert_eq!(caps.cap_bps(75 * LAKH + 1), 7_500);
        assert!(caps.within_cap(27 * LAKH, 30 * LAKH));
        assert!(!caps.within_cap(28 * LAKH, 30 * LAKH));
        assert!(caps.within_cap(75 * LAKH, 100 * LAKH));
    }
}
