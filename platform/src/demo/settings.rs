//! `[demo]` settings and what one demo run is asked to do.

use serde::{Deserialize, Serialize};

/// `[demo]` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DemoSettings {
    /// Months of history loaded before the live stream (18: loans of the first six months have
    /// completed the 12-month performance window, so the first model has outcomes to learn).
    pub history_months: u32,
    /// Applications a month, history and live (500: the history loads in about a minute).
    pub applications_per_month: u64,
    /// Months of live stream after the history.
    pub live_months: u32,
    /// Simulated business days per minute of the live stream.
    pub days_per_minute: f64,
    /// Retrain from the book every this many simulated days, promoting only a better model.
    pub retrain_every_days: u32,
    /// Boosting rounds of the demo's models (200: seconds on the demo's book).
    pub rounds: u32,
    /// Seed of the synthetic world.
    pub seed: u64,
    /// Data directory of the demo's private PostgreSQL (emptied when a demo starts).
    pub data_dir: std::path::PathBuf,
}

impl Default for DemoSettings {
    fn default() -> Self {
        Self {
            history_months: 18,
            applications_per_month: 500,
            live_months: 24,
            days_per_minute: 20.0,
            retrain_every_days: 90,
            rounds: 200,
            seed: 42,
            data_dir: "var/demo/pg".into(),
        }
    }
}

/// One demo run: every setting (with `[demo]` already overridden by the command line), where
/// to listen, and when to stop by itself.
#[derive(Debug, Clone)]
pub struct DemoRequest {
    /// The whole settings tree.
    pub settings: crate::settings::Settings,
    /// Listen address of the dashboard and API (default `[infra.http] bind`).
    pub bind: Option<String>,
    /// Stop after this many live days (default: run until Ctrl-C).
    pub exit_after_days: Option<u32>,
}
