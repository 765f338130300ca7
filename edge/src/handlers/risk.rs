//! `POST /api/portfolio/stress-test` and `GET /api/models/drift`: analyses computed on demand
//! (their cost grows with what they analyse, unlike the portfolio reads).

use std::sync::Arc;

use book::{applications, queries, stress};
use serde::Deserialize;

use super::{ok, Answer};
use crate::api;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::Edge;

/// Shocks of a stress test.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StressBody {
    /// Multiplier on every open loan's 12-month PD (1.5: a moderate downturn), 0.1-20.
    #[serde(default = "default_pd")]
    pub pd_multiplier: f64,
    /// Basis points added to every LGD (capped at 100%), 0-10,000.
    #[serde(default)]
    pub lgd_add_bps: i64,
}

fn default_pd() -> f64 {
    1.5
}

/// The book as of the last closed business day, under PD and LGD shocks: IFRS 9 stages (a
/// performing loan whose shocked PD reaches the PD-ratio trigger moves to stage 2), ECL, and
/// the NPA expected within twelve months (each performing loan defaults with its shocked PD).
pub async fn stress_test(edge: Arc<Edge>, _who: Principal, body: serde_json::Value) -> Answer {
    let b: StressBody = api::parse(body)?;
    if !(0.1..=20.0).contains(&b.pd_multiplier) {
        return Err(ApiError::invalid_field(
            "pd_multiplier",
            "pd_multiplier must be between 0.1 and 20",
        ));
    }
    if !(0..=10_000).contains(&b.lgd_add_bps) {
        return Err(ApiError::invalid_field(
            "lgd_add_bps",
            "lgd_add_bps must be between 0 and 10000",
        ));
    }
    let base = queries::summary(&edge.pool, None).await?;
    // The day-end's own ECL function on the exposure and months left it stored, so an
    // unshocked run reproduces the day-end's ECL to the paisa.
    let r = stress::run(
        &edge.pool,
        &stress::Shocks {
            pd_multiplier: b.pd_multiplier,
            lgd_add_bps: b.lgd_add_bps,
            pd_ratio_trigger: edge.domain.ifrs9.pd_ratio_trigger,
            min_horizon_months: i32::try_from(edge.domain.ifrs9.min_horizon_months)
                .unwrap_or(i32::MAX),
            business_date: base.business_date,
        },
    )
    .await?;
    let (outstanding, ecl, npa, new_npa) = (r.outstanding, r.ecl, r.npa_amount, r.expected_new_npa);
    let ratio = |n: i64| {
        if outstanding > 0 {
            n as f64 / outstanding as f64
        } else {
            0.0
        }
    };
    ok(&serde_json::json!({
        "business_date": base.business_date,
        "shocks": { "pd_multiplier": b.pd_multiplier, "lgd_add_bps": b.lgd_add_bps },
        "open_loans": r.open_loans,
        "outstanding": outstanding,
        "baseline": { "ecl": base.ecl, "npa_amount": base.npa_amount, "npa_ratio": base.npa_ratio },
        "stressed": {
            "ecl": ecl,
            "ecl_change": ecl - base.ecl,
            "stage_counts": { "1": r.stage_1, "2": r.stage_2, "3": r.stage_3 },
            "loans_moved_to_stage_2": r.moved_to_stage_2,
            "expected_new_npa_12m": new_npa,
            "projected_npa_amount": npa + new_npa,
            "projected_npa_ratio": ratio(npa + new_npa),
        },
        "method": "shocked 12-month PD = min(1, PD × pd_multiplier) per open loan (current PD, \
                   else origination PD); LGD + lgd_add_bps; stage 2 when the shocked PD reaches \
                   the PD-ratio trigger; ECL = the day-end's ecl() on the exposure and months left of the last day-end; expected new NPA \
                   = Σ shocked PD × outstanding of performing loans",
    }))
}

/// `?applications=` of a drift report.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DriftQuery {
    /// The most recently submitted applications to compare (default 5,000, 100-100,000).
    pub applications: Option<i64>,
}

/// PSI per feature of the latest applications against the champion's training distribution.
pub async fn drift(edge: Arc<Edge>, _who: Principal, q: DriftQuery) -> Answer {
    let limit = q.applications.unwrap_or(5_000);
    if !(100..=100_000).contains(&limit) {
        return Err(ApiError::invalid_field(
            "applications",
            "applications must be between 100 and 100000",
        ));
    }
    let Some(models) = edge.models.borrow().clone() else {
        return Err(ApiError::unavailable(
            "no champion model has been promoted yet",
        ));
    };
    let artifact = &models.champion.artifact;
    let rows = applications::latest_payloads(&edge.pool, limit).await?;
    let mut window =
        scorer::psi::PsiWindow::new(&artifact.feature_distributions, rows.len().max(1));
    let mut n = 0usize;
    for v in rows {
        if let Ok(app) = serde_json::from_value::<schemas::LoanApplication>(v) {
            window.observe(&risk_core::features::compute(&app));
            n += 1;
        }
    }
    let mut features: Vec<serde_json::Value> = window
        .current()
        .into_iter()
        .map(|(name, psi)| {
            let level = if psi >= 0.25 {
                "significant"
            } else if psi >= 0.1 {
                "moderate"
            } else {
                "stable"
            };
            serde_json::json!({ "feature": name, "psi": psi, "level": level })
        })
        .collect();
    features.sort_by(|a, b| {
        b["psi"]
            .as_f64()
            .unwrap_or(0.0)
            .total_cmp(&a["psi"].as_f64().unwrap_or(0.0))
    });
    ok(&serde_json::json!({
        "model_version": artifact.model_version,
        "applications": n,
        "requested": limit,
        "thresholds": { "moderate": 0.1, "significant": 0.25 },
        "features": features,
    }))
}
