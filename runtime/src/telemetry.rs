//! Logging through `tracing`: text for people, JSON behind a setting for collectors.

use tracing_subscriber::{fmt, EnvFilter};

use crate::settings::TelemetrySettings;

/// Install the global subscriber. `RUST_LOG` overrides the configured filter. Safe to call
/// more than once (later calls are ignored), so tests and the binary can both call it.
pub fn init(settings: &TelemetrySettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if settings.json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.compact().try_init()
    };
}

/// An error with its chain of sources, `outer: inner: …`, for a log line.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}
