//! Feature set v1: what the trainer learns from and the scorer computes, from a
//! [`LoanApplication`] alone.
//!
//! The order of [`FEATURES`] is the column order of every training matrix and every model
//! input; a model names the [`VERSION`] it was trained on and the scorer refuses any other.
//! Missing values stay missing (`NaN`) for the trees to route.
//!
//! Age is deliberately not a feature: DOMAIN.md allows age only in eligibility rules (see
//! [`crate::policy`]). Prohibited bases never appear (see [`PROHIBITED`]).

use schemas::{EmploymentType, LoanApplication, Purpose, Residence};

use crate::provisioning::is_secured;
use crate::ratios::{foir, loan_to_income, ltv};
use crate::schedule::proposed_emi;

/// Version of this feature set, recorded in every model artifact.
pub const VERSION: &str = "fs-v1";

/// How risk moves as a feature rises; becomes an XGBoost monotone constraint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Monotone {
    /// Risk rises with the feature (+1).
    Increasing,
    /// Risk falls as the feature rises (−1).
    Decreasing,
    /// No constraint (0).
    Free,
}

impl Monotone {
    /// XGBoost's `monotone_constraints` entry.
    pub fn constraint(self) -> i8 {
        match self {
            Self::Increasing => 1,
            Self::Decreasing => -1,
            Self::Free => 0,
        }
    }
}

/// One feature: its name, its monotone direction and what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feature {
    /// Column name.
    pub name: &'static str,
    /// Direction of risk.
    pub monotone: Monotone,
    /// One-line meaning, shown in reports.
    pub description: &'static str,
}

const fn f(name: &'static str, monotone: Monotone, description: &'static str) -> Feature {
    Feature {
        name,
        monotone,
        description,
    }
}

use Monotone::{Decreasing as Dec, Free, Increasing as Inc};

/// The features of v1, in column order.
pub const FEATURES: [Feature; 21] = [
    f(
        "log_loan_amount",
        Free,
        "ln of the requested amount in major units",
    ),
    f("tenure_months", Free, "tenure in months"),
    f("interest_rate_pct", Free, "annual rate in percent"),
    f("log_emi", Free, "ln of the proposed EMI in major units"),
    f(
        "foir",
        Inc,
        "(existing obligations + proposed EMI) / monthly income",
    ),
    f("loan_to_income", Inc, "amount / annual income"),
    f(
        "ltv",
        Inc,
        "amount / collateral value; missing when unsecured",
    ),
    f(
        "log_monthly_income",
        Dec,
        "ln of gross monthly income in major units",
    ),
    f("years_employed", Dec, "years in current employment"),
    f("employment_type", Free, "employment category code"),
    f("dependents", Free, "number of dependents"),
    f("residence", Free, "residence status code"),
    f("bureau_score", Dec, "bureau score; missing for thin files"),
    f(
        "history_months",
        Dec,
        "months of credit history; missing for thin files",
    ),
    f(
        "delinquencies_24m",
        Inc,
        "delinquencies in 24 months; missing for thin files",
    ),
    f(
        "inquiries_6m",
        Inc,
        "inquiries in 6 months; missing for thin files",
    ),
    f(
        "revolving_utilisation",
        Inc,
        "revolving utilisation as a fraction; missing for thin files",
    ),
    f(
        "open_accounts",
        Free,
        "open trade lines; missing for thin files",
    ),
    f("purpose", Free, "purpose code"),
    f(
        "secured",
        Free,
        "1 when the collateral is worth more than 10% of the amount (RBI's secured exposure)",
    ),
    f("thin_file", Free, "1 when there is no bureau record"),
];

/// Number of features.
pub const LEN: usize = FEATURES.len();

/// Attributes that are never model features: prohibited bases of discrimination.
pub const PROHIBITED: [&str; 12] = [
    "sex",
    "gender",
    "religion",
    "caste",
    "race",
    "ethnicity",
    "national_origin",
    "nationality",
    "marital_status",
    "marital",
    "marriage",
    "married",
];

/// Feature names in column order.
pub fn names() -> Vec<&'static str> {
    FEATURES.iter().map(|f| f.name).collect()
}

/// Monotone constraints in column order, as XGBoost wants them: `(1,-1,0,…)`.
pub fn monotone_constraints() -> String {
    let parts: Vec<String> = FEATURES
        .iter()
        .map(|f| f.monotone.constraint().to_string())
        .collect();
    format!("({})", parts.join(","))
}

/// The names in `columns` that are (or contain, as a word) a prohibited attribute.
pub fn prohibited_in<'a>(columns: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    columns
        .into_iter()
        .filter(|c| {
            let lower = c.to_ascii_lowercase();
            lower
                .split(|ch: char| !ch.is_ascii_alphanumeric())
                .any(|word| PROHIBITED.contains(&word))
                || PROHIBITED.iter().any(|p| lower == *p)
                || lower.contains("national_origin")
                || lower.contains("marital_status")
        })
        .collect()
}

fn employment_code(e: EmploymentType) -> f32 {
    match e {
        EmploymentType::Salaried => 0.0,
        EmploymentType::SelfEmployed => 1.0,
        EmploymentType::Business => 2.0,
        EmploymentType::Retired => 3.0,
        EmploymentType::Other => 4.0,
    }
}

fn residence_code(r: Residence) -> f32 {
    match r {
        Residence::Own => 0.0,
        Residence::Mortgaged => 1.0,
        Residence::Family => 2.0,
        Residence::Rent => 3.0,
    }
}

fn purpose_code(p: Purpose) -> f32 {
    match p {
        Purpose::Home => 0.0,
        Purpose::Auto => 1.0,
        Purpose::Personal => 2.0,
        Purpose::Education => 3.0,
        Purpose::Business => 4.0,
        Purpose::Gold => 5.0,
    }
}

/// `ln(minor / 100)` for a positive amount, else missing.
fn log_major(minor: i64) -> f32 {
    if minor > 0 {
        ((minor as f64) / 100.0).ln() as f32
    } else {
        f32::NAN
    }
}

fn opt(v: Option<f64>) -> f32 {
    v.map_or(f32::NAN, |x| x as f32)
}

/// Compute feature set v1 for an application.
pub fn compute(app: &LoanApplication) -> [f32; LEN] {
    let a = &app.applicant;
    let l = &app.loan;
    let instalment = proposed_emi(l);
    let secured = is_secured(l.collateral_value.unwrap_or(0), l.amount);
    let b = app.bureau.as_ref();
    let bureau = |get: fn(&schemas::Bureau) -> f32| b.map_or(f32::NAN, get);
    [
        log_major(l.amount),
        l.tenure_months as f32,
        l.interest_rate_bps as f32 / 100.0,
        log_major(instalment),
        opt(foir(a.existing_emi, instalment, a.monthly_income)),
        opt(loan_to_income(l.amount, a.monthly_income)),
        if secured {
            opt(ltv(l.amount, l.collateral_value))
        } else {
            f32::NAN
        },
        log_major(a.monthly_income),
        a.years_employed,
        employment_code(a.employment_type),
        a.dependents as f32,
        residence_code(a.residence),
        bureau(|b| b.bureau_score as f32),
        bureau(|b| b.history_months as f32),
        bureau(|b| b.delinquencies_24m as f32),
        bureau(|b| b.inquiries_6m as f32),
        bureau(|b| b.revolving_utilisation_bps as f32 / 10_000.0),
        bureau(|b| b.open_accounts as f32),
        purpose_code(l.purpose),
        if secured { 1.0 } else { 0.0 },
        if b.is_none() { 1.0 } else { 0.0 },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_none_is_prohibited() {
        let names = names();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
        assert!(prohibited_in(names.iter().copied()).is_empty());
    }

    #[test]
    fn prohibited_attributes_are_recognised_in_column_names() {
        let found = prohibited_in([
            "income",
            "Gender",
            "applicant_religion",
            "MARITAL_STATUS",
            "sexy_score_x",
        ]);
        assert_eq!(
            found,
            vec!["Gender", "applicant_religion", "MARITAL_STATUS"]
        );
    }

    #[test]
    fn constraints_follow_the_declared_directions() {
        let c = monotone_constraints();
        assert!(c.starts_with("(0,0,0,0,1,1,1,-1,-1,"));
        assert_eq!(c.matches(',').count(), LEN - 1);
    }
}
