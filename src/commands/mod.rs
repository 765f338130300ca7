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

/// A progress bar of `len` steps drawn with `template`, labelled `message`.
fn bar(len: u64, template: &str, message: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(message.to_string());
    bar
}

/// The configured servers, or embedded ones (their addresses printed on stderr, so a command's
/// own output stays clean).
async fn start_infra(
    settings: &Settings,
    with_database: bool,
) -> anyhow::Result<runtime::infra::Infra> {
    let infra = runtime::infra::Infra::start(&settings.infra, with_database).await?;
    if infra.embedded_kafka().is_some() {
        eprintln!("Embedded Kafka bootstrap servers: {}", infra.brokers);
    }
    if let Some(pg) = infra.embedded_postgres() {
        eprintln!("Embedded PostgreSQL: {}", pg.url().masked());
    }
    Ok(infra)
}

/// The configured (or embedded) servers and a migrated pool of `connections` on the book.
async fn open_book(
    settings: &Settings,
    connections: u32,
) -> anyhow::Result<(runtime::infra::Infra, sqlx::PgPool)> {
    let infra = start_infra(settings, true).await?;
    let url = infra
        .database_url
        .clone()
        .context("needs PostgreSQL (DATABASE_URL)")?;
    let pool = runtime::postgres::connect(&url, connections)
        .await
        .context("connecting to PostgreSQL")?;
    book::db::migrate(&pool)
        .await
        .context("migrating the book's schema")?;
    Ok((infra, pool))
}
