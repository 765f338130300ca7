//! `/api/portfolio/*`: every figure from the aggregator's maintained aggregates, as of the last
//! closed business date or `?as_of=`.

use std::sync::Arc;

use portfolio_aggregator::queries;

use super::{ok, Answer};
use crate::api::{AsOf, SummaryView, TrendQuery};
use crate::error::ApiError;
use crate::Edge;

/// The seed's summary shape plus every figure of the book.
pub async fn summary(edge: Arc<Edge>, q: AsOf) -> Answer {
    let s = queries::summary(&edge.pool, q.as_of).await?;
    let mut v = serde_json::to_value(SummaryView::from(&s))
        .map_err(|e| ApiError::internal("summary", &e))?;
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "summary".into(),
            serde_json::to_value(&s).map_err(|e| ApiError::internal("summary", &e))?,
        );
    }
    ok(&v)
}

/// NPA by IRAC class, with provisions.
pub async fn npa_analysis(edge: Arc<Edge>, q: AsOf) -> Answer {
    ok(&queries::npa_analysis(&edge.pool, q.as_of).await?)
}

/// Repayments: collected, due, collection efficiency, DPD buckets.
pub async fn repayment_stats(edge: Arc<Edge>, q: AsOf) -> Answer {
    ok(&queries::repayment_stats(&edge.pool, q.as_of).await?)
}

/// Loans by purpose and by status.
pub async fn loan_distribution(edge: Arc<Edge>, q: AsOf) -> Answer {
    ok(&queries::loan_distribution(&edge.pool, q.as_of).await?)
}

/// Exposure by purpose, region and grade, with Herfindahl indices.
pub async fn risk_concentration(edge: Arc<Edge>, q: AsOf) -> Answer {
    ok(&queries::risk_concentration(&edge.pool, q.as_of).await?)
}

/// Cumulative 90+ DPD rate by months on book, per disbursal month.
pub async fn vintage(edge: Arc<Edge>, q: AsOf) -> Answer {
    ok(&queries::vintage_curves(&edge.pool, q.as_of).await?)
}

/// Month-on-month movements between DPD buckets.
pub async fn roll_rates(edge: Arc<Edge>, q: AsOf) -> Answer {
    ok(&queries::roll_rates(&edge.pool, q.as_of).await?)
}

/// Daily NPA, PAR and ECL over the last `days` business days.
pub async fn trend(edge: Arc<Edge>, q: TrendQuery) -> Answer {
    let days = q.days.unwrap_or(90);
    if !(1..=3_660).contains(&days) {
        return Err(ApiError::invalid_field(
            "days",
            "days must be between 1 and 3660",
        ));
    }
    ok(&queries::trend(&edge.pool, q.as_of, days).await?)
}
