//! Whether the book's database answers (readiness probes).

use sqlx::PgPool;

/// Run a trivial query on `pool`: Ok when the database answers.
pub async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(pool)
        .await
        .map(drop)
}
