//! The causal model of default: the true PD of every application.
//!
//! Log-odds of default within 12 months of disbursal:
//!
//! ```text
//! z = intercept
//!   + 2.4·(FOIR − 0.45)                         affordability
//!   + 0.35·ln(loan-to-income)                   leverage
//!   + 1.8·(LTV − 0.70)  (secured)  | +0.25 (unsecured)
//!   − 0.011·(bureau score − 700)  | +0.45 (thin file)
//!   + 0.40·delinquencies(24m) + 0.12·inquiries(6m) + 1.0·(utilisation − 0.40)
//!   − 0.05·min(years employed, 15)               stability
//!   + employment, residence and purpose effects, + 0.08·dependents
//!   + 1.2·(FOIR − 0.45)·[not salaried]           interaction: irregular income strains more
//!   + 0.05·inquiries·[utilisation > 0.7]         interaction: credit hunger
//!   + macro(t): the mean stress shift over the loan's first 12 months
//!   + ε ~ N(0, noise_sd)                         what no application shows
//! PD = 1 / (1 + e^(−z))
//! ```
//!
//! The intercept is solved (bisection) so that the mean true PD of disbursed loans, over a
//! pilot sample drawn from a separate stream of the same seed, equals the target default rate.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use schemas::{EmploymentType, LoanApplication, Purpose, Residence};

use risk_core::features;
use risk_core::ratios::{foir, loan_to_income, ltv};
use risk_core::schedule::proposed_emi;

use super::settings::GeneratorSettings;

/// Log-odds of default without intercept, macro or noise: the part the application explains.
pub fn structural_logit(app: &LoanApplication) -> f64 {
    let a = &app.applicant;
    let l = &app.loan;
    let instalment = proposed_emi(l);
    let f = foir(a.existing_emi, instalment, a.monthly_income)
        .unwrap_or(2.0)
        .min(3.0);
    let lti = loan_to_income(l.amount, a.monthly_income)
        .unwrap_or(20.0)
        .clamp(0.02, 40.0);
    let mut z = 2.4 * (f - 0.45) + 0.35 * lti.ln();
    let secured = risk_core::policy::requires_collateral(l.purpose);
    z += match (secured, ltv(l.amount, l.collateral_value)) {
        (true, Some(v)) => 1.8 * (v.min(1.5) - 0.70),
        (true, None) => 0.6,
        (false, _) => 0.25,
    };
    match &app.bureau {
        Some(b) => {
            let util = f64::from(b.revolving_utilisation_bps) / 10_000.0;
            z += -0.011 * f64::from(b.bureau_score - 700)
                + 0.40 * f64::from(b.delinquencies_24m)
                + 0.12 * f64::from(b.inquiries_6m)
                + 1.0 * (util - 0.40);
            if util > 0.7 {
                z += 0.05 * f64::from(b.inquiries_6m);
            }
        }
        None => z += 0.45,
    }
    z += -0.05 * f64::from(a.years_employed).min(15.0);
    z += match a.employment_type {
        EmploymentType::Salaried => 0.0,
        EmploymentType::SelfEmployed => 0.20,
        EmploymentType::Business => 0.30,
        EmploymentType::Retired => 0.10,
        EmploymentType::Other => 0.50,
    };
    if a.employment_type != EmploymentType::Salaried {
        z += 1.2 * (f - 0.45);
    }
    z += match a.residence {
        Residence::Own => -0.10,
        Residence::Mortgaged => 0.0,
        Residence::Family => 0.05,
        Residence::Rent => 0.15,
    };
    z += 0.08 * f64::from(a.dependents);
    z += match l.purpose {
        Purpose::Home => -0.50,
        Purpose::Auto => 0.0,
        Purpose::Personal => 0.30,
        Purpose::Education => 0.20,
        Purpose::Business => 0.35,
        Purpose::Gold => -0.40,
    };
    z
}

/// Logistic function.
pub fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Mean stress shift over the 12 months starting at `month` (0-based from the start).
pub fn macro_shift(settings: &GeneratorSettings, month: u32) -> f64 {
    let total: f64 = (month..month + 12)
        .map(|m| {
            settings
                .stress
                .iter()
                .filter(|s| m >= s.start_month && m < s.start_month + s.months)
                .map(|s| s.logit_shift)
                .sum::<f64>()
        })
        .sum();
    total / 12.0
}

/// Solve the intercept so the mean true PD of disbursed pilot loans equals the target.
///
/// `pilot` yields (structural logit + macro + noise, disbursal weight) pairs; the weight is the
/// probability the application is disbursed under the legacy policy.
pub fn calibrate_intercept(pilot: &[(f64, f64)], target: f64) -> f64 {
    let mean_pd = |b: f64| {
        let (num, den) = pilot
            .iter()
            .fold((0.0, 0.0), |(n, d), (z, w)| (n + w * sigmoid(z + b), d + w));
        if den > 0.0 {
            num / den
        } else {
            0.0
        }
    };
    let (mut lo, mut hi) = (-20.0, 10.0);
    for _ in 0..80 {
        let mid = (lo + hi) / 2.0;
        if mean_pd(mid) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo + hi) / 2.0
}

/// A generator for the pilot sample: a separate stream of the same seed.
pub fn pilot_rng(seed: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(1);
    rng
}

/// Feature names a reader of the ground-truth file can join on.
pub fn feature_names() -> Vec<&'static str> {
    features::names()
}
