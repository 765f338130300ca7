//! Migrations of the book's tables.

use std::collections::HashMap;

use sqlx::PgPool;

/// The embedded migrations (`book/migrations`).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Bring the database schema up to date (idempotent; safe with several processes starting).
///
/// A schema already up to date is only read, so a stage running with its own database role
/// (which may read the migrations ledger but not create tables) starts; only pending
/// migrations need the schema's owner.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    if up_to_date(pool).await {
        return Ok(());
    }
    MIGRATOR.run(pool).await
}

/// Whether every embedded migration is recorded as applied, with the same checksum.
async fn up_to_date(pool: &PgPool) -> bool {
    let applied: Vec<(i64, Vec<u8>, bool)> =
        match sqlx::query_as("SELECT version, checksum, success FROM _sqlx_migrations")
            .fetch_all(pool)
            .await
        {
            Ok(rows) => rows,
            // No ledger yet (a new database) or no right to read it: let the migrator decide.
            Err(_) => return false,
        };
    let applied: HashMap<i64, (Vec<u8>, bool)> =
        applied.into_iter().map(|(v, c, ok)| (v, (c, ok))).collect();
    MIGRATOR.iter().all(|m| {
        applied
            .get(&m.version)
            .is_some_and(|(checksum, ok)| *ok && checksum.as_slice() == &*m.checksum)
    })
}
