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

/// A reason-code policy that is not `none`, `non-approved` or `all`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a reason-code policy: use none, non-approved or all")]
pub struct UnknownExplain(pub String);

impl std::str::FromStr for Explain {
    type Err = UnknownExplain;

    /// The policy's setting and flag spelling: `none`, `non-approved`, `all`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Self::None),
            "non-approved" => Ok(Self::NonApproved),
            "all" => Ok(Self::All),
            other => Err(UnknownExplain(other.to_string())),
        }
    }
}

/// Round to two decimals so decisions are stable and compact.
fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The top reasons pushing toward bad from the contributions `phi` of `x`, or `None` when the
/// explanation is not trustworthy.
fn reasons(
    model: &LoadedModel,
    domain: &DomainSettings,
    x: &[f32],
    margin: f32,
    phi: &[f64],
) -> Option<Vec<Reason>> {
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

/// One application of a batch: its feature vector ([`features::compute`], computed once by
/// the caller, which also feeds it to drift monitoring) and the decision's time.
pub type Item<'a> = (&'a LoanApplication, &'a [f32; features::LEN], DateTime<Utc>);

/// Decide an application with the champion (and, in shadow, a challenger).
pub fn decide(
    app: &LoanApplication,
    x: &[f32; features::LEN],
    champion: &LoadedModel,
    challenger: Option<&LoadedModel>,
    domain: &DomainSettings,
    explain: Explain,
    decided_at: DateTime<Utc>,
) -> Decision {
    let mut one = decide_batch(
        &[(app, x, decided_at)],
        champion,
        challenger,
        domain,
        explain,
    );
    one.swap_remove(0)
}

/// Decide a batch of applications: the same decisions, byte for byte, as [`decide`] one by
/// one, with the explanations computed together ([`Explainer::contributions_batch`]).
///
/// [`Explainer::contributions_batch`]: risk_core::model::Explainer::contributions_batch
pub fn decide_batch(
    items: &[Item<'_>],
    champion: &LoadedModel,
    challenger: Option<&LoadedModel>,
    domain: &DomainSettings,
    explain: Explain,
) -> Vec<Decision> {
    let scored: Vec<(f32, Outcome, Vec<&'static str>, bool)> = items
        .iter()
        .map(|(app, x, _)| {
            let margin = champion.flat.margin(*x);
            let pd = f64::from(risk_core::model::ensemble::sigmoid(margin));
            let (outcome, hits) = domain.policy.decide(app, pd);
            let wants_reasons = match explain {
                Explain::None => false,
                Explain::NonApproved => outcome != Outcome::Approve,
                Explain::All => true,
            };
            (margin, outcome, hits, wants_reasons)
        })
        .collect();
    let rows: Vec<&[f32]> = items
        .iter()
        .zip(&scored)
        .filter(|(_, s)| s.3)
        .map(|((_, x, _), _)| &x[..])
        .collect();
    let mut contributions = champion
        .explainer
        .contributions_batch(&champion.ensemble, &rows)
        .into_iter();
    items
        .iter()
        .zip(scored)
        .map(
            |(&(app, x, decided_at), (margin, outcome, hits, wants_reasons))| {
                let phi = if wants_reasons {
                    contributions.next()
                } else {
                    None
                };
                build(
                    app, x, champion, challenger, domain, decided_at, margin, outcome, hits, phi,
                )
            },
        )
        .collect()
}

/// The decision from its parts; `phi` holds the contributions when reasons are wanted.
#[allow(clippy::too_many_arguments)]
fn build(
    app: &LoanApplication,
    x: &[f32; features::LEN],
    champion: &LoadedModel,
    challenger: Option<&LoadedModel>,
    domain: &DomainSettings,
    decided_at: DateTime<Utc>,
    margin: f32,
    mut outcome: Outcome,
    hits: Vec<&'static str>,
    phi: Option<Vec<f64>>,
) -> Decision {
    let pd = f64::from(risk_core::model::ensemble::sigmoid(margin));
    let score = domain.scaling.score(pd);
    let reasons = match phi {
        None => Vec::new(),
        Some(phi) => match reasons(champion, domain, x, margin, &phi) {
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
        },
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
