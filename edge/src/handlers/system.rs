//! `/health`, `/ready`, `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::Producer;
use warp::http::StatusCode;

use super::{json, Answer};
use crate::state::Edge;

/// Liveness: the process answers.
pub async fn health() -> Answer {
    Ok(json(
        &serde_json::json!({ "status": "healthy", "service": "credit-risk-edge" }),
        StatusCode::OK,
    ))
}

/// Readiness: PostgreSQL and Kafka both answer (503 naming the one that does not).
pub async fn ready(edge: Arc<Edge>) -> Answer {
    let db = tokio::time::timeout(Duration::from_secs(2), book::health::ping(&edge.pool))
        .await
        .is_ok_and(|r| r.is_ok());
    let producer = edge.producer.clone();
    let kafka = tokio::task::spawn_blocking(move || {
        producer
            .client()
            .fetch_metadata(None, Duration::from_secs(2))
            .is_ok()
    })
    .await
    .unwrap_or(false);
    let model = edge.models.borrow().is_some();
    let status = if db && kafka {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok(json(
        &serde_json::json!({
            "ready": db && kafka,
            "postgres": db,
            "kafka": kafka,
            "champion_model": model,
        }),
        status,
    ))
}
