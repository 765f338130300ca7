//! All domain settings in one tree, so the runtime can layer them (defaults < file < env).

use serde::{Deserialize, Serialize};

use crate::dpd::ServicingSettings;
use crate::ifrs9::{Ifrs9Settings, LgdSettings};
use crate::irac::IracSettings;
use crate::policy::PolicySettings;
use crate::provisioning::ProvisionSettings;
use crate::scoring::{GradeBands, ScoreScaling};

/// Every domain threshold, with DOMAIN.md's defaults.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DomainSettings {
    /// Score scaling.
    pub scaling: ScoreScaling,
    /// Grade bands.
    pub grades: GradeBands,
    /// Knock-outs and cut-offs.
    pub policy: PolicySettings,
    /// IRAC thresholds.
    pub irac: IracSettings,
    /// IFRS 9 staging.
    pub ifrs9: Ifrs9Settings,
    /// LGD by product.
    pub lgd: LgdSettings,
    /// Provisioning rates.
    pub provisioning: ProvisionSettings,
    /// Payment servicing (prepayments).
    pub servicing: ServicingSettings,
}
