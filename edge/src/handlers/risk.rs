//! `POST /api/portfolio/stress-test` and `GET /api/models/drift`: analyses computed on demand
//! (their cost grows with what they analyse, unlike the portfolio reads).

use std::sync::Arc;

use portfolio_aggregator::queries;
use serde::Deserialize;
use sqlx::Row;

use super::{ok, Answer};
use crate::api;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::Edge;

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
    let r = sqlx::query(
        "WITH b AS ( \
           SELECT s.outstanding_principal AS out, s.ead, s.remaining_months, s.stage, \
             is_npa(s.asset_class) AS npa, \
             least(1, greatest(0, coalesce(s.current_pd, l.origination_pd, 0)) * $1) AS pd, \
             l.origination_pd AS opd, \
             least(10000, s.lgd_bps + $2) AS lgd \
           FROM loan_status s JOIN loans l USING (loan_id) \
           WHERE (s.state = 'ACTIVE' OR s.ead > 0) AND l.disbursed_on <= $5), \
         st AS (SELECT b.*, CASE WHEN stage = 3 OR npa THEN 3 \
             WHEN stage = 2 OR (opd > 0 AND pd >= $3 * opd) THEN 2 ELSE 1 END AS sstage FROM b) \
         SELECT count(*), coalesce(sum(out), 0)::int8, \
           coalesce(sum(ecl(sstage, pd, lgd, ead, remaining_months, $4)), 0)::int8, \
           count(*) FILTER (WHERE sstage = 2 AND stage = 1), \
           coalesce(sum(out) FILTER (WHERE npa), 0)::int8, \
           coalesce(round(sum(pd * out) FILTER (WHERE NOT npa)), 0)::int8, \
           count(*) FILTER (WHERE sstage = 1), count(*) FILTER (WHERE sstage = 2), \
           count(*) FILTER (WHERE sstage = 3) \
         FROM st",
    )
    .bind(b.pd_multiplier)
    .bind(b.lgd_add_bps)
    .bind(edge.domain.ifrs9.pd_ratio_trigger)
    .bind(i32::try_from(edge.domain.ifrs9.min_horizon_months).unwrap_or(i32::MAX))
    .bind(base.business_date)
    .fetch_one(&edge.pool)
    .await?;
    let g = |i: usize| -> Result<i64, sqlx::Error> { r.try_get::<i64, _>(i) };
    let (outstanding, ecl, npa, new_npa) = (g(1)?, g(2)?, g(4)?, g(5)?);
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
        "open_loans": g(0)?,
        "outstanding": outstanding,
        "baseline": { "ecl": base.ecl, "npa_amount": base.npa_amount, "npa_ratio": base.npa_ratio },
        "stressed": {
            "ecl": ecl,
            "ecl_change": ecl - base.ecl,
            "stage_counts": { "1": g(6)?, "2": g(7)?, "3": g(8)? },
            "loans_moved_to_stage_2": g(3)?,
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
    let rows: Vec<serde_json::Value> =
        sqlx::query_scalar("SELECT payload FROM applications ORDER BY submitted_at DESC LIMIT $1")
            .bind(limit)
            .fetch_all(&edge.pool)
            .await?;
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
