//! `/api/models`: the registry (list, detail), the admin's promotion by alias, and the drift
//! report (PSI of live applications against the champion's training distribution).

use std::sync::Arc;

use book::registry;
use schemas::ModelAlias;
use scorer::models::AnnounceError;

use super::{ok, Answer};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::Edge;

/// Most models a list shows.
const LIST_LIMIT: i64 = 500;

/// `GET /api/models`: every registered model, newest first (no artifacts).
pub async fn list(edge: Arc<Edge>, _who: Principal) -> Answer {
    let rows = registry::list(&edge.pool, LIST_LIMIT).await?;
    let serving = edge.models.borrow().as_ref().map(|m| {
        serde_json::json!({
            "champion": m.champion.artifact.model_version,
            "challenger": m.challenger.as_ref().map(|c| c.artifact.model_version.clone()),
        })
    });
    ok(&serde_json::json!({ "models": rows, "serving": serving }))
}

/// `GET /api/models/{version}`: metadata, metrics, comparison, feature importance.
pub async fn detail(edge: Arc<Edge>, version: String, _who: Principal) -> Answer {
    crate::api::known_id("model", &version)?;
    ok(&registry::detail(&edge.pool, &version).await?)
}

/// Body of a promotion.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct PromoteBody {
    /// `champion` (default) or `challenger` (scored in shadow).
    #[serde(default)]
    pub alias: Option<ModelAlias>,
}

/// `POST /api/models/{version}/promote` (admin): set the alias in the registry with an
/// audit-log row, then publish ModelPromoted so scorers swap without a restart.
pub async fn promote(
    edge: Arc<Edge>,
    version: String,
    who: Principal,
    body: serde_json::Value,
) -> Answer {
    crate::api::known_id("model", &version)?;
    let body: PromoteBody = crate::api::parse(body)?;
    let alias = body.alias.unwrap_or(ModelAlias::Champion);
    let promotion = registry::promote(&edge.pool, &version, alias, &who.key_id, "api").await?;
    let event = promotion.announcement(&format!("api key {}", who.key_id));
    scorer::models::announce(&edge.producer, &edge.topics.model_updates, &event)
        .await
        .map_err(|e| match e {
            AnnounceError::Encode(e) => ApiError::internal("encoding", &e),
            AnnounceError::Kafka(e) => {
                tracing::error!(error = %e, %version, "Promotion stored but not published");
                ApiError::unavailable(
                    "the promotion is stored but Kafka did not accept ModelPromoted; promote again",
                )
            }
        })?;
    ok(&serde_json::json!({
        "model_version": version,
        "alias": registry::alias_symbol(alias),
        "previous_version": promotion.previous_version,
        "published": true,
    }))
}
