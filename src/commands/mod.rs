//! One file per command: each turns its flags into a typed request for a library's `run`.

pub mod aggregate;
pub mod config;
pub mod demo;
pub mod generate;
pub mod infra;
pub mod ingest;
pub mod keys;
pub mod score;
pub mod serve;
pub mod train;

use anyhow::Context;
use platform::Settings;

/// The configured (or embedded) servers and a migrated pool on the book.
async fn open_book(settings: &Settings) -> anyhow::Result<(runtime::infra::Infra, sqlx::PgPool)> {
    let infra = runtime::infra::Infra::start(&settings.infra, true).await?;
    let url = infra
        .database_url
        .clone()
        .context("needs PostgreSQL (DATABASE_URL)")?;
    let pool = runtime::postgres::connect(&url, settings.infra.database.max_connections)
        .await
        .context("connecting to PostgreSQL")?;
    book::db::migrate(&pool)
        .await
        .context("migrating the book's schema")?;
    Ok((infra, pool))
}
