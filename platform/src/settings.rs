//! The whole settings tree of the `credit-risk` binary.

use edge::EdgeSettings;
use ingest::generator::GeneratorSettings;
use portfolio_aggregator::service::AggregatorSettings;
use risk_core::settings::DomainSettings;
use runtime::settings::InfraSettings;
use scorer::service::ScorerSettings;
use serde::{Deserialize, Serialize};

/// Every setting, layered defaults < file < `CREDIT__*` environment variables.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Kafka, PostgreSQL, logging, HTTP.
    pub infra: InfraSettings,
    /// Credit policy, scaling, IRAC, IFRS 9, provisioning.
    pub domain: DomainSettings,
    /// The synthetic lender of `credit-risk generate`.
    pub generator: GeneratorSettings,
    /// The scorer stage.
    pub scorer: ScorerSettings,
    /// The portfolio aggregator stage.
    pub aggregator: AggregatorSettings,
    /// The HTTP edge.
    pub edge: EdgeSettings,
    /// `credit-risk demo`.
    pub demo: DemoSettings,
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_settings_file_is_the_defaults() {
        let example: Settings =
            toml::from_str(include_str!("../../deploy/settings.example.toml")).unwrap();
        assert_eq!(example, Settings::default());
    }
}
