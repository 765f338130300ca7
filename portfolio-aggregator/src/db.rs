//! Migrations of the book's tables.

use sqlx::PgPool;

/// The embedded migrations (`portfolio-aggregator/migrations`).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Bring the database schema up to date (idempotent; safe with several processes starting).
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}
