//! Kafka and PostgreSQL for a process: the configured servers ([`Infra::configured`], every
//! stage), or embedded ones when unset ([`Infra::start`], only `demo` and `infra`).

use crate::kafka::{EmbeddedKafka, EmbeddedKafkaError};
use crate::postgres::{EmbeddedPostgres, PgError};
use crate::settings::{InfraSettings, Secret};

/// Why the infrastructure could not be brought up.
#[derive(Debug, thiserror::Error)]
pub enum InfraError {
    /// Embedded Kafka failed.
    #[error(transparent)]
    Kafka(#[from] EmbeddedKafkaError),
    /// Embedded PostgreSQL failed.
    #[error(transparent)]
    Postgres(#[from] PgError),
    /// A server the command needs is not configured (only `demo` and `infra` start embedded
    /// ones).
    #[error(
        "{setting} is not set: this command uses the configured {server} and never starts an \
         embedded one (only `credit-risk demo` and `credit-risk infra` do)"
    )]
    NotConfigured {
        /// The setting to give (environment variable, or the settings file's key).
        setting: &'static str,
        /// Which server.
        server: &'static str,
    },
}

/// Whether a command needs a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// It cannot run without it.
    Required,
    /// It uses it when configured (e.g. to announce a promotion).
    Optional,
    /// It does not use it.
    Unused,
}

/// The servers a process talks to, owning the embedded ones it started.
#[derive(Debug)]
pub struct Infra {
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// PostgreSQL URL, when a database was asked for.
    pub database_url: Option<Secret>,
    kafka: Option<EmbeddedKafka>,
    postgres: Option<EmbeddedPostgres>,
}

impl Infra {
    /// Use the configured servers, starting an embedded Kafka cluster (with the configured
    /// topics) when no brokers are set, and a private PostgreSQL when `with_database` and no
    /// URL is set.
    pub async fn start(settings: &InfraSettings, with_database: bool) -> Result<Self, InfraError> {
        let (brokers, kafka) = match &settings.kafka.brokers {
            Some(brokers) => (brokers.clone(), None),
            None => {
                let cluster = EmbeddedKafka::start(
                    settings.kafka.embedded_brokers,
                    &settings.kafka.topics.all(),
                )?;
                tracing::info!(
                    bootstrap = cluster.bootstrap_servers(),
                    brokers = settings.kafka.embedded_brokers,
                    "Embedded Kafka cluster started"
                );
                (cluster.bootstrap_servers().to_string(), Some(cluster))
            }
        };
        let (database_url, postgres) = match (&settings.database.url, with_database) {
            (_, false) => (None, None),
            (Some(url), true) => (Some(url.clone()), None),
            (None, true) => {
                let pg = EmbeddedPostgres::start(&settings.database.embedded_dir).await?;
                tracing::info!(
                    port = pg.port(),
                    data_dir = %pg.data_dir().display(),
                    "Private PostgreSQL started"
                );
                (Some(pg.url().clone()), Some(pg))
            }
        };
        Ok(Self {
            brokers,
            database_url,
            kafka,
            postgres,
        })
    }

    /// The configured servers only: a missing setting the command requires is an error naming
    /// it; nothing embedded is started. `brokers` is empty when Kafka is not configured (and
    /// not required).
    pub fn configured(
        settings: &InfraSettings,
        kafka: Need,
        database: Need,
    ) -> Result<Self, InfraError> {
        let brokers = settings
            .kafka
            .brokers
            .clone()
            .filter(|b| !b.trim().is_empty());
        if kafka == Need::Required && brokers.is_none() {
            return Err(InfraError::NotConfigured {
                setting: "KAFKA_BROKERS (or [infra.kafka] brokers)",
                server: "Kafka",
            });
        }
        let database_url = settings.database.url.clone();
        if database == Need::Required && database_url.is_none() {
            return Err(InfraError::NotConfigured {
                setting: "DATABASE_URL (or [infra.database] url)",
                server: "PostgreSQL",
            });
        }
        Ok(Self {
            brokers: match kafka {
                Need::Unused => String::new(),
                _ => brokers.unwrap_or_default(),
            },
            database_url: match database {
                Need::Unused => None,
                _ => database_url,
            },
            kafka: None,
            postgres: None,
        })
    }

    /// The embedded Kafka cluster, if this process hosts one.
    pub fn embedded_kafka(&self) -> Option<&EmbeddedKafka> {
        self.kafka.as_ref()
    }

    /// The private PostgreSQL, if this process runs one.
    pub fn embedded_postgres(&self) -> Option<&EmbeddedPostgres> {
        self.postgres.as_ref()
    }

    /// Stop what this process started (PostgreSQL first: it may be flushing).
    pub fn stop(mut self) {
        if let Some(mut pg) = self.postgres.take() {
            pg.stop();
        }
        drop(self.kafka.take());
    }
}
