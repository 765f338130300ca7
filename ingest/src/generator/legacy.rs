//! The lender's previous, rule-based policy (model version `legacy-rules`).
//!
//! Its decisions shape the history: only what it approved has outcomes, the selection effect
//! every real book carries.

use chrono::Duration;
use risk_core::ratios::{foir, ltv};
use risk_core::schedule::proposed_emi;
use risk_core::settings::DomainSettings;
use schemas::{Decision, LoanApplication, Outcome};

/// Model version recorded on legacy decisions.
pub const VERSION: &str = "legacy-rules";

/// The legacy decision: the knock-out rules of the current policy, then a bureau and
/// affordability grid in place of a model.
pub fn decide(app: &LoanApplication, domain: &DomainSettings) -> Decision {
    let l = &app.loan;
    let a = &app.applicant;
    let instalment = proposed_emi(l);
    let f = foir(a.existing_emi, instalment, a.monthly_income).unwrap_or(f64::INFINITY);
    // The legacy scorecard's own PD estimate: a two-factor logistic.
    let z = match &app.bureau {
        Some(b) => -3.0 - 0.014 * f64::from(b.bureau_score - 700) + 2.0 * (f.min(2.0) - 0.4),
        None => -2.3 + 2.0 * (f.min(2.0) - 0.4),
    };
    let pd = 1.0 / (1.0 + (-z).exp());
    let hits = domain.policy.knock_outs(app);
    let outcome = if !hits.is_empty() {
        Outcome::Decline
    } else {
        match &app.bureau {
            Some(b) if b.bureau_score >= 680 && f <= 0.55 => Outcome::Approve,
            Some(b) if b.bureau_score >= 620 && f <= 0.60 => Outcome::Refer,
            Some(_) => Outcome::Decline,
            None if f <= 0.45 && a.monthly_income >= 3_000_000 => Outcome::Approve,
            None if f <= 0.55 => Outcome::Refer,
            None => Outcome::Decline,
        }
    };
    let score = domain.scaling.score(pd);
    Decision {
        application_id: app.application_id.clone(),
        customer_id: app.customer_id.clone(),
        decided_at: app.submitted_at + Duration::seconds(2),
        model_version: VERSION.into(),
        feature_set_version: risk_core::features::VERSION.into(),
        pd,
        score: score.value,
        score_clamped: score.clamped,
        grade: domain.grades.grade(pd).into(),
        decision: outcome,
        reasons: Vec::new(),
        rule_hits: hits.into_iter().map(String::from).collect(),
        emi: instalment,
        // Undefined without income: reported as 99 (far beyond any policy limit).
        foir: f.min(99.0),
        ltv: ltv(l.amount, l.collateral_value),
        challenger: None,
    }
}
