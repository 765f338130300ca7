//! The audit log: append-only (the table's triggers refuse updates and deletes), one row per
//! action, naming who did it and never the personal data it touched.

use sqlx::{PgConnection, PgPool};

/// Append an audit-log row inside the caller's transaction.
pub async fn record(
    tx: &mut PgConnection,
    actor: &str,
    action: &str,
    subject: &str,
    details: serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO audit_log (actor, action, subject, details) VALUES ($1, $2, $3, $4)")
        .bind(actor)
        .bind(action)
        .bind(subject)
        .bind(details)
        .execute(tx)
        .await?;
    Ok(())
}

/// Append an audit-log row on its own.
pub async fn record_now(
    pool: &PgPool,
    actor: &str,
    action: &str,
    subject: &str,
    details: serde_json::Value,
) -> Result<(), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    record(&mut conn, actor, action, subject, details).await
}
