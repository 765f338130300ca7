//! One application → one decision: features, PD, score, grade, knock-outs and cut-offs,
//! reason codes. Pure and deterministic: the same application and model give the same bytes.

use chrono::{DateTime, Utc};
use risk_core::features;
use risk_core::model::LoadedModel;
use risk_core::ratios::{foir, ltv};
use risk_core::schedule::proposed_emi;
use risk_core::settings::DomainSettings;
use schemas::{Challenger, Decision, LoanApplication, Outcome, Reason};

use crate::catalogue;

/// How many reasons a declined or referred decision carries.
pub const TOP_REASONS: usize = 4;

/// Which decisions get reason codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Explain {
    /// None (fastest; for benchmarks and shadow runs).
    None,
    /// Declined and referred decisions (DOMAIN.md's rule).
    NonApproved,
    /// Every decision.
    All,
}

/// Round to two decimals so decisions are stable and compact.
fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The top reasons pushing toward bad, or `None` when the explanation is not trustworthy.
fn reasons(
    model: &LoadedModel,
    domain: &DomainSettings,
    x: &[f32],
    margin: f32,
) -> Option<Vec<Reason>> {
    let phi = model.explainer.contributions(&model.ensemble, x);
    let total: f64 = phi.iter().sum::<f64>() + model.explainer.bias;
    if phi.iter().any(|p| !p.is_finite()) || (total - f64::from(margin)).abs() > 1e-3 {
        return None;
    }
    // Features pushing toward bad by at least a hundredth of a score point.
    let mut order: Vec<usize> = (0..phi.len())
        .filter(|i| phi[*i] > 0.0 && round2(domain.scaling.points(phi[*i])) < 0.0)
        .collect();
    order.sort_by(|a, b| phi[*b].total_cmp(&phi[*a]).then(a.cmp(b)));
    order
        .into_iter()
        .take(TOP_REASONS)
        .map(|i| {
            let feature = features::FEATURES.get(i)?.name;
            Some(Reason {
                code: catalogue::code(feature)?.to_string(),
                feature: feature.to_string(),
                value: x
                    .get(i)
                    .filter(|v| !v.is_nan())
                    .map(|v| round2(f64::from(*v))),
                points: round2(domain.scaling.points(phi[i])),
            })
        })
        .collect()
}

/// Decide an application with the champion (and, in shadow, a challenger). `x` is the
/// application's feature vector ([`features::compute`]), computed once by the caller, which
/// also feeds it to drift monitoring.
pub fn decide(
    app: &LoanApplication,
    x: &[f32; features::LEN],
    champion: &LoadedModel,
    challenger: Option<&LoadedModel>,
    domain: &DomainSettings,
    explain: Explain,
    decided_at: DateTime<Utc>,
) -> Decision {
    let margin = champion.flat.margin(x);
    let pd = f64::from(risk_core::model::ensemble::sigmoid(margin));
    let score = domain.scaling.score(pd);
    let (mut outcome, hits) = domain.policy.decide(app, pd);
    let wants_reasons = match explain {
        Explain::None => false,
        Explain::NonApproved => outcome != Outcome::Approve,
        Explain::All => true,
    };
    let reasons = if wants_reasons {
        match reasons(champion, domain, x, margin) {
            Some(r) => r,
            None => {
                outcome = Outcome::Refer;
                vec![Reason {
                    code: catalogue::EXPLANATION_UNAVAILABLE.into(),
                    feature: "explanation".into(),
                    value: None,
                    points: 0.0,
                }]
            }
        }
    } else {
        Vec::new()
    };
    let l = &app.loan;
    let a = &app.applicant;
    let instalment = proposed_emi(l);
    Decision {
        application_id: app.application_id.clone(),
        customer_id: app.customer_id.clone(),
        decided_at,
        model_version: champion.artifact.model_version.clone(),
        feature_set_version: features::VERSION.into(),
        pd,
        score: score.value,
        score_clamped: score.clamped,
        grade: domain.grades.grade(pd).into(),
        decision: outcome,
        reasons,
        rule_hits: hits.into_iter().map(String::from).collect(),
        emi: instalment,
        // Undefined without income: reported as 99, far beyond any policy limit.
        foir: foir(a.existing_emi, instalment, a.monthly_income).map_or(99.0, |f| f.min(99.0)),
        ltv: ltv(l.amount, l.collateral_value),
        challenger: challenger.map(|c| Challenger {
            model_version: c.artifact.model_version.clone(),
            pd: f64::from(c.flat.predict(x)),
        }),
    }
}
