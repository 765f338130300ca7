//! The aggregator's settings and the description of one aggregator stage.

use risk_core::settings::DomainSettings;
use runtime::settings::Topics;
use serde::{Deserialize, Serialize};

/// Aggregator settings (`[aggregator]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AggregatorSettings {
    /// Consumer group shared by all aggregator processes.
    pub group_id: String,
    /// Most messages per batch (5,000: amortises the transaction; bounds memory).
    pub batch_size: usize,
    /// Longest wait to fill a batch once one message is in hand, ms.
    pub linger_ms: u64,
    /// Longest backoff between attempts while the database is unreachable, ms.
    pub max_backoff_ms: u64,
    /// Transactions a batch is applied in at once (2: PostgreSQL works on two cores). The
    /// batch is split by partition number; each part commits its own partitions' changes and
    /// offsets, so each is exactly-once on its own. 1 applies a batch in one transaction.
    pub concurrent_transactions: usize,
    /// Where `/metrics` is served.
    pub metrics_bind: String,
}

impl Default for AggregatorSettings {
    fn default() -> Self {
        Self {
            group_id: "credit-risk-aggregator".into(),
            batch_size: 5_000,
            linger_ms: 50,
            max_backoff_ms: 5_000,
            concurrent_transactions: 2,
            metrics_bind: "127.0.0.1:9465".into(),
        }
    }
}

/// Everything the service needs.
#[derive(Debug, Clone)]
pub struct AggregatorService {
    /// Bootstrap servers.
    pub brokers: String,
    /// Topic names.
    pub topics: Topics,
    /// Consumer session timeout, ms.
    pub session_timeout_ms: u32,
    /// Stage settings.
    pub settings: AggregatorSettings,
    /// Domain settings.
    pub domain: DomainSettings,
}

impl AggregatorService {
    /// The stage on `brokers`, with the topics and session timeout of `kafka`.
    pub fn new(
        brokers: &str,
        kafka: &runtime::settings::KafkaSettings,
        settings: AggregatorSettings,
        domain: DomainSettings,
    ) -> Self {
        Self {
            brokers: brokers.to_string(),
            topics: kafka.topics.clone(),
            session_timeout_ms: kafka.session_timeout_ms,
            settings,
            domain,
        }
    }
}
