//! Generator settings. Every value is documented with why it has its default.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Share of applications by purpose (normalised; need not sum to 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PurposeMix {
    /// Housing loans.
    pub home: f64,
    /// Vehicle loans.
    pub auto: f64,
    /// Personal loans.
    pub personal: f64,
    /// Education loans.
    pub education: f64,
    /// Business loans.
    pub business: f64,
    /// Gold loans.
    pub gold: f64,
}

impl Default for PurposeMix {
    fn default() -> Self {
        // A retail book weighted to personal and vehicle lending, as Indian retail books are.
        Self {
            home: 0.14,
            auto: 0.20,
            personal: 0.36,
            education: 0.07,
            business: 0.13,
            gold: 0.10,
        }
    }
}

/// A period of macro-economic stress: defaults rise for loans living through it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StressPeriod {
    /// First month of the stress, counted from the start (0-based).
    pub start_month: u32,
    /// Length in months.
    pub months: u32,
    /// Added to every borrower's log-odds of default while it lasts.
    pub logit_shift: f64,
}

/// What to simulate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeneratorSettings {
    /// Seed: the same seed and settings give byte-identical output.
    pub seed: u64,
    /// Applications to generate.
    pub applications: u64,
    /// First business date.
    pub start: NaiveDate,
    /// Months over which applications arrive.
    pub months: u32,
    /// Months simulated after the last application, so the last loans mature (the 12-month
    /// performance window).
    pub performance_months: u32,
    /// 12-month default rate (DPD > 90) of disbursed loans the true PDs are calibrated to (5%:
    /// a mid-risk retail book).
    pub target_default_rate: f64,
    /// Share of applicants with no bureau record (15%: new-to-credit borrowers).
    pub thin_file_share: f64,
    /// Share of applications from an existing customer (8%).
    pub repeat_customer_share: f64,
    /// Purposes.
    pub purpose_mix: PurposeMix,
    /// Share of approved applications that are disbursed (90%: some applicants walk away).
    pub take_up: f64,
    /// Share of referred applications approved on manual review and disbursed (40%).
    pub refer_take_up: f64,
    /// Standard deviation of unobserved borrower heterogeneity in log-odds (0.35): what no
    /// model can learn from the application, so the best achievable AUC stays below 1.
    pub noise_sd: f64,
    /// Share of defaulters who later pay all arrears and cure (20%).
    pub cure_share: f64,
    /// Monthly probability that a performing borrower forecloses after six instalments (0.6%).
    pub foreclosure_hazard: f64,
    /// Stress periods.
    pub stress: Vec<StressPeriod>,
}

impl Default for GeneratorSettings {
    fn default() -> Self {
        Self {
            seed: 42,
            applications: 20_000,
            start: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or_default(),
            months: 24,
            performance_months: 12,
            target_default_rate: 0.05,
            thin_file_share: 0.15,
            repeat_customer_share: 0.08,
            purpose_mix: PurposeMix::default(),
            take_up: 0.90,
            refer_take_up: 0.40,
            noise_sd: 0.35,
            cure_share: 0.20,
            foreclosure_hazard: 0.006,
            stress: vec![StressPeriod {
                start_month: 15,
                months: 6,
                logit_shift: 0.5,
            }],
        }
    }
}

/// A generator setting out of its range, named with the range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid generator settings: {0}")]
pub struct InvalidSettings(pub String);

impl GeneratorSettings {
    /// Check the settings make sense, naming the first that does not.
    pub fn validate(&self) -> Result<(), InvalidSettings> {
        self.first_problem().map_err(InvalidSettings)
    }

    fn first_problem(&self) -> Result<(), String> {
        let share = |name: &str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(format!("{name} must be between 0 and 1, got {v}"))
            }
        };
        if self.applications == 0 {
            return Err("applications must be at least 1".into());
        }
        if self.months == 0 {
            return Err("months must be at least 1".into());
        }
        if !(0.001..=0.5).contains(&self.target_default_rate) {
            return Err(format!(
                "target_default_rate must be between 0.001 and 0.5, got {}",
                self.target_default_rate
            ));
        }
        share("thin_file_share", self.thin_file_share)?;
        share("repeat_customer_share", self.repeat_customer_share)?;
        share("take_up", self.take_up)?;
        share("refer_take_up", self.refer_take_up)?;
        share("cure_share", self.cure_share)?;
        share("foreclosure_hazard", self.foreclosure_hazard)?;
        if !(0.0..=3.0).contains(&self.noise_sd) {
            return Err(format!(
                "noise_sd must be between 0 and 3, got {}",
                self.noise_sd
            ));
        }
        let m = &self.purpose_mix;
        let weights = [m.home, m.auto, m.personal, m.education, m.business, m.gold];
        if weights.iter().any(|w| *w < 0.0) || weights.iter().sum::<f64>() <= 0.0 {
            return Err("purpose_mix weights must be non-negative and not all zero".into());
        }
        Ok(())
    }

    /// The last simulated business date (exclusive end).
    pub fn end(&self) -> NaiveDate {
        self.start
            .checked_add_months(chrono::Months::new(self.months + self.performance_months))
            .unwrap_or(self.start)
    }
}
