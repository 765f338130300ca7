//! The settings the benchmarks read: the sections of the product's settings file they use.
//! Other sections of the same file are accepted and ignored.

use edge::EdgeSettings;
use portfolio_aggregator::service::AggregatorSettings;
use risk_core::settings::DomainSettings;
use runtime::settings::InfraSettings;
use scorer::service::ScorerSettings;
use serde::{Deserialize, Serialize};

/// Layered defaults < file < `CREDIT__*` environment variables.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Kafka, PostgreSQL, logging, HTTP.
    pub infra: InfraSettings,
    /// Credit policy, scaling, IRAC, IFRS 9, provisioning.
    pub domain: DomainSettings,
    /// The scorer stage.
    pub scorer: ScorerSettings,
    /// The portfolio aggregator stage.
    pub aggregator: AggregatorSettings,
    /// The HTTP edge.
    pub edge: EdgeSettings,
}
