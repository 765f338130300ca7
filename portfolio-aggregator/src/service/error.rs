//! Why the aggregator stopped, and why a batch could not be committed.

use rdkafka::error::KafkaError;

/// Why the aggregator stopped.
#[derive(Debug, thiserror::Error)]
pub enum AggregatorError {
    /// The Kafka client failed.
    #[error("Kafka")]
    Kafka(#[from] KafkaError),
    /// An input topic does not exist.
    #[error("topic {0} does not exist")]
    MissingTopic(String),
    /// The consumer thread or a batch task stopped abnormally.
    #[error("an aggregator task stopped")]
    Task(#[from] tokio::task::JoinError),
    /// Stopping while a batch could not be committed (it is consumed again on restart).
    #[error("stopped while a batch could not be committed")]
    Uncommitted(#[source] CommitError),
    /// `metrics_bind` is not a socket address.
    #[error("metrics_bind {0} is not an address")]
    MetricsBind(String),
    /// The metrics could not be registered.
    #[error("registering the metrics")]
    Metrics(#[from] prometheus::Error),
    /// `/metrics` could not be served.
    #[error("serving /metrics")]
    MetricsServer(#[from] warp::Error),
}

/// Why a batch could not be committed.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// A message cannot be written: the database refused its data (a constraint or a value,
    /// class `refused_by_database`) or the book could not encode it (`unwritable`). Retrying
    /// cannot help; the message is found by halving the batch and dead-lettered with `class`
    /// and `message` in its headers.
    #[error("a message cannot be written ({class}): {message}")]
    Data {
        /// The dead letter's error class.
        class: &'static str,
        /// Why.
        message: String,
    },
    /// The database is unreachable or failed: retry.
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// Dead letters could not be delivered: retry.
    #[error("dead-letter delivery failed")]
    Kafka(#[source] KafkaError),
}

impl From<book::write::WriteError> for CommitError {
    fn from(e: book::write::WriteError) -> Self {
        use book::write::WriteError;
        match e {
            WriteError::Database(e) => e.into(),
            // A record the book cannot write: retrying cannot help; the batch is split until
            // the message is found and dead-lettered with the reason.
            other => Self::Data {
                class: "unwritable",
                message: runtime::telemetry::chain(&other),
            },
        }
    }
}

impl From<sqlx::Error> for CommitError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e {
            let code = db.code().map(|c| c.to_string()).unwrap_or_default();
            // SQLSTATE classes 22 (data exception) and 23 (integrity constraint violation).
            if code.starts_with("22") || code.starts_with("23") {
                return Self::Data {
                    class: "refused_by_database",
                    message: db.message().to_string(),
                };
            }
        }
        Self::Unavailable(e)
    }
}
