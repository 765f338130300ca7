//! `/api/models`: the registry (list, detail), the admin's promotion by alias, and the drift
//! report (PSI of live applications against the champion's training distribution).

use std::sync::Arc;

use chrono::Utc;
use rdkafka::producer::FutureRecord;
use schemas::{ModelAlias, ModelPromoted};
use sqlx::Row;

use super::{ok, Answer};
use crate::auth::{self, Principal};
use crate::error::ApiError;
use crate::Edge;

/// `GET /api/models`: every registered model, newest first (no artifacts).
pub async fn list(edge: Arc<Edge>, _who: Principal) -> Answer {
    let rows: Vec<serde_json::Value> = sqlx::query_scalar(
        "SELECT jsonb_build_object('model_version', model_version, 'model_name', model_name, \
           'feature_set_version', feature_set_version, 'alias', alias, 'metrics', metrics, \
           'rows', rows, 'created_by', created_by, 'created_at', created_at, \
           'training_window', training_window) \
         FROM models ORDER BY created_at DESC, model_version LIMIT 500",
    )
    .fetch_all(&edge.pool)
    .await?;
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
    let row = sqlx::query(
        "SELECT model_version, model_name, feature_set_version, artifact_uri, alias, metrics, \
           comparison, training_window, rows, data_hash, created_by, created_at, \
           artifact -> 'importance', artifact -> 'feature_names' \
         FROM models WHERE model_version = $1",
    )
    .bind(&version)
    .fetch_optional(&edge.pool)
    .await?
    .ok_or_else(|| ApiError::not_found(format!("no model {version}")))?;
    ok(&serde_json::json!({
        "model_version": row.try_get::<String, _>(0)?,
        "model_name": row.try_get::<String, _>(1)?,
        "feature_set_version": row.try_get::<String, _>(2)?,
        "artifact_uri": row.try_get::<String, _>(3)?,
        "alias": row.try_get::<Option<String>, _>(4)?,
        "metrics": row.try_get::<serde_json::Value, _>(5)?,
        "comparison": row.try_get::<Option<serde_json::Value>, _>(6)?,
        "training_window": row.try_get::<Option<serde_json::Value>, _>(7)?,
        "rows": row.try_get::<i64, _>(8)?,
        "data_hash": row.try_get::<String, _>(9)?,
        "created_by": row.try_get::<String, _>(10)?,
        "created_at": row.try_get::<chrono::DateTime<Utc>, _>(11)?,
        "importance": row.try_get::<Option<serde_json::Value>, _>(12)?,
        "feature_names": row.try_get::<Option<serde_json::Value>, _>(13)?,
    }))
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
    let alias_name = match alias {
        ModelAlias::Champion => "champion",
        ModelAlias::Challenger => "challenger",
    };
    let mut tx = edge.pool.begin().await?;
    let row = sqlx::query(
        "SELECT model_name, feature_set_version, artifact_uri FROM models \
         WHERE model_version = $1 FOR UPDATE",
    )
    .bind(&version)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| ApiError::not_found(format!("no model {version}")))?;
    let (name, fs, uri): (String, String, String) =
        (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    if fs != risk_core::features::VERSION {
        return Err(ApiError::conflict(format!(
            "model {version} uses feature set {fs}; this build computes {}",
            risk_core::features::VERSION
        )));
    }
    let previous: Option<String> = sqlx::query_scalar(
        "UPDATE models SET alias = NULL WHERE model_name = $1 AND alias = $2 \
         RETURNING model_version",
    )
    .bind(&name)
    .bind(alias_name)
    .fetch_optional(&mut *tx)
    .await?;
    sqlx::query("UPDATE models SET alias = $2 WHERE model_version = $1")
        .bind(&version)
        .bind(alias_name)
        .execute(&mut *tx)
        .await?;
    auth::audit(
        &mut tx,
        &who.key_id,
        "model.promoted",
        &version,
        serde_json::json!({ "alias": alias_name, "previous": previous, "via": "api" }),
    )
    .await?;
    tx.commit().await?;
    let event = ModelPromoted {
        model_name: name.clone(),
        model_version: version.clone(),
        alias,
        feature_set_version: fs,
        artifact_uri: uri,
        promoted_at: Utc::now(),
        promoted_by: format!("api key {}", who.key_id),
        previous_version: previous.clone(),
    };
    let bytes = schemas::encode(&event).map_err(|e| ApiError::internal("encoding", &e))?;
    edge.producer
        .send(
            FutureRecord::to(&edge.topics.model_updates)
                .key(&name)
                .payload(&bytes),
            crate::ms(10_000),
        )
        .await
        .map_err(|(e, _)| {
            tracing::error!(error = %e, version = %version, "Promotion stored but not published");
            ApiError::unavailable(
                "the promotion is stored but Kafka did not accept ModelPromoted; promote again",
            )
        })?;
    ok(&serde_json::json!({
        "model_version": version, "alias": alias_name, "previous_version": previous,
        "published": true,
    }))
}
