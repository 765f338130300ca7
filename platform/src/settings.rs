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
    pub demo: crate::demo::DemoSettings,
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
