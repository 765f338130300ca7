//! Scorer errors, classified: bad data is dead-lettered (never an error here), transient
//! broker trouble is retried by the client, everything below stops the service.

use std::path::PathBuf;

use rdkafka::error::KafkaError;

/// A fatal scorer error.
#[derive(Debug, thiserror::Error)]
pub enum ScorerError {
    /// An artifact file could not be read.
    #[error("model file {path}")]
    ModelFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An artifact is not one this build can serve.
    #[error("model file {path}")]
    Artifact {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: risk_core::model::ModelError,
    },
    /// No usable model (none promoted yet, or a challenger without a champion).
    #[error("{0}")]
    NoModel(&'static str),
    /// Nothing to score with at start-up.
    #[error("no champion: give an artifact (--model) or promote one on {0}")]
    NoChampion(String),
    /// Kafka refused an operation the service cannot do without.
    #[error("Kafka")]
    Kafka(#[from] KafkaError),
    /// A decision could not be encoded (the types and schemas disagree: a defect).
    #[error("encoding a decision")]
    Encode(#[from] schemas::EncodeError),
    /// The producer dropped a delivery report.
    #[error("the producer dropped a delivery report")]
    DeliveryDropped,
    /// The consumer has no group metadata for a transaction.
    #[error("no consumer group metadata for the transaction")]
    NoGroupMetadata,
    /// A scoring or acknowledgement task stopped abnormally.
    #[error("a scorer task stopped")]
    Task(#[from] tokio::task::JoinError),
    /// Metrics registration failed.
    #[error("registering the metrics")]
    Metrics(#[from] prometheus::Error),
    /// `metrics_bind` is not a socket address.
    #[error("metrics_bind {0} is not an address")]
    MetricsBind(String),
    /// `/metrics` could not be served.
    #[error("serving /metrics")]
    MetricsServer(#[from] warp::Error),
    /// Shutdown was requested before the service was ready.
    #[error("stopped before start-up completed")]
    Stopped,
}
