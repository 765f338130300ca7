//! The model registry: every trained model with its metrics and artifact, and the aliases
//! (`champion`, `challenger`) that say which one scorers serve. Registration and promotion each
//! run in one transaction with their audit-log row; a promotion yields the [`Promotion`] that
//! announces it on the model-updates topic.

use chrono::{DateTime, Utc};
use risk_core::model::Artifact;
use schemas::{ModelAlias, ModelPromoted};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use thiserror::Error;

use crate::audit;

/// Why the registry could not answer or change.
#[derive(Debug, Error)]
pub enum RegistryError {
    /// No model has this version.
    #[error("no model {0}")]
    NotFound(String),
    /// The model was trained on another feature set than this build computes.
    #[error("model {version} uses feature set {found}; this build computes {expected}")]
    FeatureSet {
        /// Model version.
        version: String,
        /// Its feature set.
        found: String,
        /// This build's.
        expected: String,
    },
    /// A stored artifact does not read as one, or one could not be written.
    #[error("the artifact of model {version}")]
    Artifact {
        /// Model version.
        version: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The database failed.
    #[error("the model registry")]
    Database(#[from] sqlx::Error),
}

/// The schema symbol of an alias as stored in the registry.
pub fn alias_symbol(alias: ModelAlias) -> &'static str {
    match alias {
        ModelAlias::Champion => "champion",
        ModelAlias::Challenger => "challenger",
    }
}

/// A model as listed (no artifact).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ModelSummary {
    /// Unique version.
    pub model_version: String,
    /// Registry key (e.g. `pd`).
    pub model_name: String,
    /// Feature set it was trained on.
    pub feature_set_version: String,
    /// `champion`, `challenger` or none.
    pub alias: Option<String>,
    /// Evaluation metrics.
    pub metrics: Value,
    /// Rows trained on.
    pub rows: i64,
    /// Who registered it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Training window, when trained from the book.
    pub training_window: Option<Value>,
}

/// A model's full record, without the XGBoost trees.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ModelDetail {
    /// Unique version.
    pub model_version: String,
    /// Registry key.
    pub model_name: String,
    /// Feature set.
    pub feature_set_version: String,
    /// Where the artifact was written.
    pub artifact_uri: String,
    /// Alias, if any.
    pub alias: Option<String>,
    /// Evaluation metrics.
    pub metrics: Value,
    /// The comparison with the champion that decided its promotion.
    pub comparison: Option<Value>,
    /// Training window.
    pub training_window: Option<Value>,
    /// Rows trained on.
    pub rows: i64,
    /// Hash of the training data.
    pub data_hash: String,
    /// Who registered it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Feature importance.
    pub importance: Option<Value>,
    /// Feature names in column order.
    pub feature_names: Option<Value>,
}

/// Every registered model, newest first, at most `limit`.
pub async fn list(pool: &PgPool, limit: i64) -> Result<Vec<ModelSummary>, RegistryError> {
    Ok(sqlx::query_as(
        "SELECT model_version, model_name, feature_set_version, alias, metrics, rows, \
           created_by, created_at, training_window \
         FROM models ORDER BY created_at DESC, model_version LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// One model's record.
pub async fn detail(pool: &PgPool, version: &str) -> Result<ModelDetail, RegistryError> {
    sqlx::query_as(
        "SELECT model_version, model_name, feature_set_version, artifact_uri, alias, metrics, \
           comparison, training_window, rows, data_hash, created_by, created_at, \
           artifact -> 'importance' AS importance, artifact -> 'feature_names' AS feature_names \
         FROM models WHERE model_version = $1",
    )
    .bind(version)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| RegistryError::NotFound(version.to_string()))
}

/// The artifact holding `alias` for `model_name`, if any.
pub async fn serving(
    pool: &PgPool,
    model_name: &str,
    alias: ModelAlias,
) -> Result<Option<Artifact>, RegistryError> {
    let row: Option<(String, Value)> = sqlx::query_as(
        "SELECT model_version, artifact FROM models WHERE model_name = $1 AND alias = $2",
    )
    .bind(model_name)
    .bind(alias_symbol(alias))
    .fetch_optional(pool)
    .await?;
    row.map(|(version, artifact)| {
        serde_json::from_value(artifact)
            .map_err(|source| RegistryError::Artifact { version, source })
    })
    .transpose()
}

/// A change of alias, as the scorers are told of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promotion {
    /// Registry key.
    pub model_name: String,
    /// The model now holding the alias.
    pub model_version: String,
    /// The alias.
    pub alias: ModelAlias,
    /// Its feature set.
    pub feature_set_version: String,
    /// Where its artifact is.
    pub artifact_uri: String,
    /// The model that held the alias before, if any.
    pub previous_version: Option<String>,
}

impl Promotion {
    /// A model outside the registry, given to the scorers as champion by its file (a model
    /// trained on generated data, for a pilot or a test).
    pub fn unregistered_champion(artifact: &Artifact, artifact_uri: String) -> Self {
        Self {
            model_name: artifact.model_name.clone(),
            model_version: artifact.model_version.clone(),
            alias: ModelAlias::Champion,
            feature_set_version: artifact.feature_set_version.clone(),
            artifact_uri,
            previous_version: None,
        }
    }

    /// The event announcing this promotion, made by `by` now.
    pub fn announcement(&self, by: &str) -> ModelPromoted {
        ModelPromoted {
            model_name: self.model_name.clone(),
            model_version: self.model_version.clone(),
            alias: self.alias,
            feature_set_version: self.feature_set_version.clone(),
            artifact_uri: self.artifact_uri.clone(),
            promoted_at: Utc::now(),
            promoted_by: by.to_string(),
            previous_version: self.previous_version.clone(),
        }
    }
}

/// Give `version` the alias (taking it from the model holding it), with an audit-log row by
/// `actor` noting `via`. The model must use this build's feature set.
pub async fn promote(
    pool: &PgPool,
    version: &str,
    alias: ModelAlias,
    actor: &str,
    via: &str,
) -> Result<Promotion, RegistryError> {
    let alias_name = alias_symbol(alias);
    let mut tx = pool.begin().await?;
    let (model_name, feature_set_version, artifact_uri): (String, String, String) = sqlx::query_as(
        "SELECT model_name, feature_set_version, artifact_uri FROM models \
             WHERE model_version = $1 FOR UPDATE",
    )
    .bind(version)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| RegistryError::NotFound(version.to_string()))?;
    if feature_set_version != risk_core::features::VERSION {
        return Err(RegistryError::FeatureSet {
            version: version.to_string(),
            found: feature_set_version,
            expected: risk_core::features::VERSION.to_string(),
        });
    }
    let previous_version: Option<String> = sqlx::query_scalar(
        "UPDATE models SET alias = NULL WHERE model_name = $1 AND alias = $2 \
         RETURNING model_version",
    )
    .bind(&model_name)
    .bind(alias_name)
    .fetch_optional(&mut *tx)
    .await?;
    sqlx::query("UPDATE models SET alias = $2 WHERE model_version = $1")
        .bind(version)
        .bind(alias_name)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        actor,
        "model.promoted",
        version,
        serde_json::json!({ "alias": alias_name, "previous": previous_version, "via": via }),
    )
    .await?;
    tx.commit().await?;
    Ok(Promotion {
        model_name,
        model_version: version.to_string(),
        alias,
        feature_set_version,
        artifact_uri,
        previous_version,
    })
}

/// A trained model to register.
#[derive(Debug, Clone, Copy)]
pub struct Registration<'a> {
    /// The artifact (stored whole).
    pub artifact: &'a Artifact,
    /// Where it was written.
    pub uri: &'a str,
    /// Rows trained on.
    pub rows: usize,
    /// Hash of the training data.
    pub data_hash: &'a str,
    /// The comparison with the champion, stored with the model and in the audit row.
    pub comparison: Option<&'a Value>,
    /// Whether the comparison promotes it to champion.
    pub promote: bool,
    /// Who registers it.
    pub actor: &'a str,
}

/// Register a model, promoting it to champion when `promote` says so: one transaction with its
/// audit-log row (`model.promoted` or `model.registered`). Returns the promotion, if any.
pub async fn register(
    pool: &PgPool,
    r: &Registration<'_>,
) -> Result<Option<Promotion>, RegistryError> {
    let artifact = r.artifact;
    let stored = serde_json::to_value(artifact).map_err(|source| RegistryError::Artifact {
        version: artifact.model_version.clone(),
        source,
    })?;
    let mut tx = pool.begin().await?;
    let previous_version: Option<String> = if r.promote {
        sqlx::query_scalar(
            "UPDATE models SET alias = NULL WHERE model_name = $1 AND alias = 'champion' \
             RETURNING model_version",
        )
        .bind(&artifact.model_name)
        .fetch_optional(&mut *tx)
        .await?
    } else {
        None
    };
    sqlx::query(
        "INSERT INTO models (model_version, model_name, feature_set_version, artifact_uri, \
           artifact, metrics, comparison, training_window, rows, data_hash, alias, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&artifact.model_version)
    .bind(&artifact.model_name)
    .bind(&artifact.feature_set_version)
    .bind(r.uri)
    .bind(stored)
    .bind(&artifact.metrics)
    .bind(r.comparison)
    .bind(artifact.training.get("window").cloned())
    .bind(i64::try_from(r.rows).unwrap_or(i64::MAX))
    .bind(r.data_hash)
    .bind(r.promote.then_some("champion"))
    .bind(r.actor)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        r.actor,
        if r.promote {
            "model.promoted"
        } else {
            "model.registered"
        },
        &artifact.model_version,
        r.comparison
            .cloned()
            .unwrap_or_else(|| serde_json::json!({})),
    )
    .await?;
    tx.commit().await?;
    Ok(r.promote.then(|| Promotion {
        model_name: artifact.model_name.clone(),
        model_version: artifact.model_version.clone(),
        alias: ModelAlias::Champion,
        feature_set_version: artifact.feature_set_version.clone(),
        artifact_uri: r.uri.to_string(),
        previous_version,
    }))
}
