//! API keys: stored by the SHA-256 of the whole key (never the key itself), with a role, a
//! label and an optional expiry. Creating and revoking a key each run in one transaction with
//! their audit-log row.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::audit;

/// A key to store: its public id, the hash of the whole key, and what it may do.
#[derive(Debug, Clone, Copy)]
pub struct NewKey<'a> {
    /// Public id.
    pub key_id: &'a str,
    /// SHA-256 of the whole key, hex.
    pub key_hash: &'a str,
    /// Role name (`originator`, `analyst`, `admin`).
    pub role: &'a str,
    /// What it is for.
    pub label: &'a str,
    /// When it stops working; never when `None`.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Store `key` with a `key.created` audit-log row by `actor`, in one transaction.
pub async fn create(pool: &PgPool, key: &NewKey<'_>, actor: &str) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO api_keys (key_id, key_hash, role, label, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(key.key_id)
    .bind(key.key_hash)
    .bind(key.role)
    .bind(key.label)
    .bind(key.expires_at)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        actor,
        "key.created",
        key.key_id,
        serde_json::json!({ "role": key.role, "label": key.label, "expires_at": key.expires_at }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Revoke the active key `key_id` with a `key.revoked` audit-log row by `actor`, in one
/// transaction; false (and no audit row) when there was no such active key.
pub async fn revoke(pool: &PgPool, key_id: &str, actor: &str) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let n = sqlx::query(
        "UPDATE api_keys SET revoked_at = now() WHERE key_id = $1 AND revoked_at IS NULL",
    )
    .bind(key_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n > 0 {
        audit::record(&mut tx, actor, "key.revoked", key_id, serde_json::json!({})).await?;
    }
    tx.commit().await?;
    Ok(n > 0)
}

/// One key as listed (never its secret or hash).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct KeyInfo {
    /// Public id.
    pub key_id: String,
    /// Role.
    pub role: String,
    /// What it is for.
    pub label: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
}

impl KeyInfo {
    /// `active`, `active until …`, `expired …` or `revoked …` as of `now` (minutes, UTC).
    pub fn state(&self, now: DateTime<Utc>) -> String {
        let at = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M");
        match (self.revoked_at, self.expires_at) {
            (Some(r), _) => format!("revoked {}", at(r)),
            (None, Some(e)) if e <= now => format!("expired {}", at(e)),
            (None, Some(e)) => format!("active until {}", at(e)),
            (None, None) => "active".into(),
        }
    }
}

/// Every key, newest first.
pub async fn list(pool: &PgPool) -> Result<Vec<KeyInfo>, sqlx::Error> {
    sqlx::query_as(
        "SELECT key_id, role, label, created_at, revoked_at, expires_at FROM api_keys \
         ORDER BY created_at DESC",
    )
    .fetch_all(pool)
    .await
}

/// A key that may be used now: neither revoked nor expired.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ActiveKey {
    /// Public id.
    pub key_id: String,
    /// Role name as stored.
    pub role: String,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
}

/// The active key whose hash is `key_hash`, if any.
pub async fn active(pool: &PgPool, key_hash: &str) -> Result<Option<ActiveKey>, sqlx::Error> {
    sqlx::query_as(
        "SELECT key_id, role, expires_at FROM api_keys WHERE key_hash = $1 \
           AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())",
    )
    .bind(key_hash)
    .fetch_optional(pool)
    .await
}
