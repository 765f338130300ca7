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
use runtime::infra::{Infra, Need};

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

/// The configured servers (Kafka as `kafka` says) and a migrated pool of `connections` on the
/// book. Only `demo` and `infra` start embedded servers.
async fn open_book(
    settings: &Settings,
    kafka: Need,
    connections: u32,
) -> anyhow::Result<(Infra, sqlx::PgPool)> {
    let infra = Infra::configured(&settings.infra, kafka, Need::Required)?;
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
