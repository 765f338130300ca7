//! `/api/portfolio/*`: every figure from the aggregator's maintained aggregates, as of the last
//! closed business date or `?as_of=`.

use std::sync::Arc;

use book::queries;

use bytes::Bytes;
use warp::Reply;

use super::Answer;
use crate::api::{AsOf, SummaryView, TrendQuery};
use crate::error::ApiError;
use crate::state::Edge;

/// A JSON answer from the cache, or computed by `f` and kept.
async fn cached<T, F, Fut>(edge: &Edge, key: String, f: F) -> Answer
where
    T: serde::Serialize,
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<T, ApiError>>,
{
    use crate::cache::Lookup;
    let body = match edge.cache.lookup(&key) {
        Lookup::Fresh(b) | Lookup::Stale(b) => b,
        Lookup::Compute(previous) => match f().await {
            Ok(v) => {
                let b = Bytes::from(
                    serde_json::to_vec(&v).map_err(|e| ApiError::internal("json", &e))?,
                );
                edge.cache.put(key, b.clone());
                b
            }
            Err(e) => {
                edge.cache.release(&key);
                match previous {
                    // The database hiccuped: the previous answer is at most moments old.
                    Some(b) if e.status.is_server_error() => b,
                    _ => return Err(e),
                }
            }
        },
    };
    let mut res = warp::reply::Response::new(body.into());
    res.headers_mut().insert(
        warp::http::header::CONTENT_TYPE,
        warp::http::HeaderValue::from_static("application/json"),
    );
    Ok(res.into_response())
}

fn key(what: &str, as_of: Option<chrono::NaiveDate>) -> String {
    format!(
        "{what}:{}",
        as_of.map(|d| d.to_string()).unwrap_or_default()
    )
}

/// The seed's summary shape plus every figure of the book.
pub async fn summary(edge: Arc<Edge>, q: AsOf) -> Answer {
    let e = edge.clone();
    cached(&edge, key("summary", q.as_of), || summary_view(e, q)).await
}

async fn summary_view(edge: Arc<Edge>, q: AsOf) -> Result<serde_json::Value, ApiError> {
    let s = queries::summary(&edge.pool, q.as_of).await?;
    let mut v = serde_json::to_value(SummaryView::from(&s))
        .map_err(|e| ApiError::internal("summary", &e))?;
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "summary".into(),
            serde_json::to_value(&s).map_err(|e| ApiError::internal("summary", &e))?,
        );
    }
    Ok(v)
}

/// NPA by IRAC class, with provisions.
pub async fn npa_analysis(edge: Arc<Edge>, q: AsOf) -> Answer {
    let pool = edge.pool.clone();
    cached(&edge, key("npa", q.as_of), || async move {
        Ok(queries::npa_analysis(&pool, q.as_of).await?)
    })
    .await
}

/// Repayments: collected, due, collection efficiency, DPD buckets.
pub async fn repayment_stats(edge: Arc<Edge>, q: AsOf) -> Answer {
    let pool = edge.pool.clone();
    cached(&edge, key("repayment", q.as_of), || async move {
        Ok(queries::repayment_stats(&pool, q.as_of).await?)
    })
    .await
}

/// Loans by purpose and by status.
pub async fn loan_distribution(edge: Arc<Edge>, q: AsOf) -> Answer {
    let pool = edge.pool.clone();
    cached(&edge, key("distribution", q.as_of), || async move {
        Ok(queries::loan_distribution(&pool, q.as_of).await?)
    })
    .await
}

/// Exposure by purpose, region and grade, with Herfindahl indices.
pub async fn risk_concentration(edge: Arc<Edge>, q: AsOf) -> Answer {
    let pool = edge.pool.clone();
    cached(&edge, key("concentration", q.as_of), || async move {
        Ok(queries::risk_concentration(&pool, q.as_of).await?)
    })
    .await
}

/// Cumulative 90+ DPD rate by months on book, per disbursal month.
pub async fn vintage(edge: Arc<Edge>, q: AsOf) -> Answer {
    let pool = edge.pool.clone();
    cached(&edge, key("vintage", q.as_of), || async move {
        Ok(queries::vintage_curves(&pool, q.as_of).await?)
    })
    .await
}

/// Month-on-month movements between DPD buckets.
pub async fn roll_rates(edge: Arc<Edge>, q: AsOf) -> Answer {
    let pool = edge.pool.clone();
    cached(&edge, key("roll", q.as_of), || async move {
        Ok(queries::roll_rates(&pool, q.as_of).await?)
    })
    .await
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
    let pool = edge.pool.clone();
    cached(
        &edge,
        format!("{}:{days}", key("trend", q.as_of)),
        || async move { Ok(queries::trend(&pool, q.as_of, days).await?) },
    )
    .await
}
