//! IRAC provisioning by asset class.

use serde::{Deserialize, Serialize};

use crate::irac::AssetClass;
use crate::money::{apply_bps, Minor};

/// Provisioning rates in basis points. Defaults are the RBI norms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProvisionSettings {
    /// Standard assets, including SMA: 0.40%.
    pub standard_bps: i64,
    /// Sub-standard, secured: 15%.
    pub substandard_bps: i64,
    /// Sub-standard, unsecured exposure: 25%.
    pub substandard_unsecured_bps: i64,
    /// Doubtful-1, secured portion: 25%.
    pub d1_secured_bps: i64,
    /// Doubtful-2, secured portion: 40%.
    pub d2_secured_bps: i64,
    /// Doubtful-3, secured portion: 100%.
    pub d3_secured_bps: i64,
    /// Doubtful, unsecured portion: 100%.
    pub doubtful_unsecured_bps: i64,
    /// Loss assets: 100%.
    pub loss_bps: i64,
}

impl Default for ProvisionSettings {
    fn default() -> Self {
        Self {
            standard_bps: 40,
            substandard_bps: 1_500,
            substandard_unsecured_bps: 2_500,
            d1_secured_bps: 2_500,
            d2_secured_bps: 4_000,
            d3_secured_bps: 10_000,
            doubtful_unsecured_bps: 10_000,
            loss_bps: 10_000,
        }
    }
}

/// Whether an exposure is secured: the realisable value of its security is more than 10% of the
/// exposure (RBI: unsecured when it is not more than 10%), whatever the product. The one
/// definition used by provisioning, LGD and the application features.
pub fn is_secured(realisable_security: Minor, exposure: Minor) -> bool {
    realisable_security > 0 && i128::from(realisable_security) * 10 > i128::from(exposure.max(0))
}

impl ProvisionSettings {
    /// Provision required on `outstanding` for a loan of `class` whose security is worth
    /// `realisable_security` (0 when none). An exposure that is not [`is_secured`] has no secured
    /// portion; for Doubtful classes the secured portion (outstanding covered by security) and
    /// the unsecured remainder carry different rates.
    pub fn provision(
        &self,
        class: AssetClass,
        outstanding: Minor,
        realisable_security: Minor,
    ) -> Minor {
        let outstanding = outstanding.max(0);
        let is_secured = is_secured(realisable_security, outstanding);
        let secured = if is_secured {
            realisable_security.clamp(0, outstanding)
        } else {
            0
        };
        let unsecured = outstanding - secured;
        let doubtful = |secured_bps: i64| {
            apply_bps(secured, secured_bps) + apply_bps(unsecured, self.doubtful_unsecured_bps)
        };
        match class {
            AssetClass::Standard | AssetClass::Sma0 | AssetClass::Sma1 | AssetClass::Sma2 => {
                apply_bps(outstanding, self.standard_bps)
            }
            AssetClass::SubStandard if is_secured => apply_bps(outstanding, self.substandard_bps),
            AssetClass::SubStandard => apply_bps(outstanding, self.substandard_unsecured_bps),
            AssetClass::Doubtful1 => doubtful(self.d1_secured_bps),
            AssetClass::Doubtful2 => doubtful(self.d2_secured_bps),
            AssetClass::Doubtful3 => doubtful(self.d3_secured_bps),
            AssetClass::Loss => apply_bps(outstanding, self.loss_bps),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_and_sma_assets_carry_forty_basis_points() {
        let p = ProvisionSettings::default();
        assert_eq!(p.provision(AssetClass::Standard, 1_000_000, 0), 4_000);
        assert_eq!(p.provision(AssetClass::Sma2, 1_000_000, 0), 4_000);
    }

    #[test]
    fn an_unsecured_substandard_loan_needs_twenty_five_percent() {
        let p = ProvisionSettings::default();
        assert_eq!(p.provision(AssetClass::SubStandard, 1_000_000, 0), 250_000);
        assert_eq!(
            p.provision(AssetClass::SubStandard, 1_000_000, 2_000_000),
            150_000
        );
    }

    #[test]
    fn security_worth_ten_percent_of_the_outstanding_or_less_is_unsecured() {
        let p = ProvisionSettings::default();
        // ₹10,000 outstanding, security ₹1,000 (exactly 10%): unsecured, 25%.
        assert!(!is_secured(100_000, 1_000_000));
        assert_eq!(
            p.provision(AssetClass::SubStandard, 1_000_000, 100_000),
            250_000
        );
        // Security ₹1,000.01: secured, 15%.
        assert!(is_secured(100_001, 1_000_000));
        assert_eq!(
            p.provision(AssetClass::SubStandard, 1_000_000, 100_001),
            150_000
        );
        // Doubtful-1 with 10% security: the whole exposure is unsecured, 100%.
        assert_eq!(
            p.provision(AssetClass::Doubtful1, 1_000_000, 100_000),
            1_000_000
        );
    }

    #[test]
    fn doubtful_loans_split_into_secured_and_unsecured_portions() {
        let p = ProvisionSettings::default();
        // 600k secured at 25% + 400k unsecured at 100%.
        assert_eq!(
            p.provision(AssetClass::Doubtful1, 1_000_000, 600_000),
            550_000
        );
        assert_eq!(
            p.provision(AssetClass::Doubtful2, 1_000_000, 600_000),
            640_000
        );
        assert_eq!(
            p.provision(AssetClass::Doubtful3, 1_000_000, 600_000),
            1_000_000
        );
        assert_eq!(p.provision(AssetClass::Loss, 1_000_000, 600_000), 1_000_000);
    }
}
