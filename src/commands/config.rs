//! `credit-risk config`: the effective settings as TOML, secrets redacted.

use anyhow::Context;
use platform::Settings;

/// Print `settings` with the database URL redacted.
pub fn run(mut settings: Settings) -> anyhow::Result<()> {
    if settings.infra.database.url.is_some() {
        settings.infra.database.url = Some(runtime::settings::Secret::new("<redacted>"));
    }
    print!(
        "{}",
        toml::to_string_pretty(&settings).context("rendering settings")?
    );
    Ok(())
}
