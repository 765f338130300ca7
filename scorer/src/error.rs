//! Scorer errors, classified: bad data is dead-lettered (never an error here), transient
//! broker trouble is retried by the client, everything below stops the service.

/// A fatal scorer error.
#[derive(Debug, thiserror::Error)]
pub enum ScorerError {
    /// No usable model.
    #[error("model: {0}")]
    Model(String),
    /// Kafka refused an operation the service cannot do without.
    #[error("kafka: {0}")]
    Kafka(String),
    /// Metrics registration failed.
    #[error("metrics: {0}")]
    Metrics(String),
    /// Shutdown was requested before the service was ready.
    #[error("stopped before start-up completed")]
    Stopped,
}
