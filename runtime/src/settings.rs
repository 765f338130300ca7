//! Typed, layered settings: compiled-in defaults < a TOML file < environment variables.
//!
//! Environment variables use the `CREDIT__` prefix and `__` between levels, e.g.
//! `CREDIT__KAFKA__TOPICS__DECISIONS=loan-decisions-v2`. The conventional `KAFKA_BROKERS` and
//! `DATABASE_URL` are honoured too, and win over everything else. Secrets are wrapped in
//! [`Secret`], which never prints its value.

use std::fmt;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A value that must never reach logs, errors or metrics (passwords, connection strings).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that needs it (a connection).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The value as a URL safe to print: a password in its user part, and the values of
    /// `password`, `sslpassword` and `sasl.password` query parameters, become `***`.
    pub fn masked(&self) -> String {
        mask_url(&self.0)
    }
}

/// `s` with its `%XX` escapes decoded (as a URL parser reads a parameter's name).
fn percent_decoded(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `url` with any password replaced by `***` (see [`Secret::masked`]).
pub fn mask_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = match base.find("://") {
        Some(i) => {
            let (scheme, rest) = base.split_at(i + 3);
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            match authority.rsplit_once('@') {
                Some((userinfo, host)) => match userinfo.split_once(':') {
                    Some((user, _)) => format!("{scheme}{user}:***@{host}{path}"),
                    None => base.to_string(),
                },
                None => base.to_string(),
            }
        }
        None => base.to_string(),
    };
    if let Some(q) = query {
        let params: Vec<String> = q
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _)) if percent_decoded(k).to_ascii_lowercase().contains("pass") => {
                    format!("{k}=***")
                }
                _ => p.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Topic names and partition counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Topics {
    /// Validated applications (key: application_id).
    pub applications: String,
    /// Raw JSON applications as an LOS sends them.
    pub applications_raw: String,
    /// Decisions (key: application_id).
    pub decisions: String,
    /// Loan events (key: loan_id).
    pub events: String,
    /// Customer registrations (key: customer_id).
    pub customers: String,
    /// Model promotions (key: model name).
    pub model_updates: String,
    /// Suffix of each topic's dead-letter topic.
    pub dlq_suffix: String,
    /// Partitions per data topic when this process creates topics (embedded cluster): 6 lets
    /// up to six consumers share a stage.
    pub partitions: i32,
}

impl Default for Topics {
    fn default() -> Self {
        Self {
            applications: "loan-applications".into(),
            applications_raw: "loan-applications-raw".into(),
            decisions: "loan-decisions".into(),
            events: "loan-events".into(),
            customers: "customers".into(),
            model_updates: "model-updates".into(),
            dlq_suffix: "-dlq".into(),
            partitions: 6,
        }
    }
}

impl Topics {
    /// Every data topic with the partition count to create it with. `model-updates` has one
    /// partition: promotions are rare and must be seen in order.
    pub fn all(&self) -> Vec<(String, i32)> {
        let mut out = Vec::new();
        for t in [
            &self.applications,
            &self.applications_raw,
            &self.decisions,
            &self.events,
            &self.customers,
        ] {
            out.push((t.clone(), self.partitions));
            out.push((self.dlq(t), self.partitions));
        }
        out.push((self.model_updates.clone(), 1));
        out
    }

    /// The dead-letter topic of `topic`.
    pub fn dlq(&self, topic: &str) -> String {
        format!("{topic}{}", self.dlq_suffix)
    }
}

/// Kafka connection settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaSettings {
    /// Bootstrap servers; unset → an embedded mock cluster is started.
    pub brokers: Option<String>,
    /// Brokers of the embedded cluster (3, so replication and leader moves are exercised).
    pub embedded_brokers: i32,
    /// Topic names.
    pub topics: Topics,
    /// Consumer group session timeout, ms (6 s: fast rebalances on loopback).
    pub session_timeout_ms: u32,
}

impl Default for KafkaSettings {
    fn default() -> Self {
        Self {
            brokers: None,
            embedded_brokers: 3,
            topics: Topics::default(),
            session_timeout_ms: 6_000,
        }
    }
}

/// PostgreSQL settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// Connection URL; unset → a private cluster is started in `embedded_dir`.
    pub url: Option<Secret>,
    /// Data directory of the private cluster.
    pub embedded_dir: PathBuf,
    /// Pool size (10: two cores, a few concurrent stages).
    pub max_connections: u32,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: None,
            embedded_dir: PathBuf::from("var/pg"),
            max_connections: 10,
        }
    }
}

/// Telemetry settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetrySettings {
    /// JSON log lines instead of text.
    pub json: bool,
    /// `tracing` filter directive; `RUST_LOG` overrides it.
    pub filter: String,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            json: false,
            filter: "info".into(),
        }
    }
}

/// HTTP settings shared by every process that serves `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Listen address.
    pub bind: String,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
        }
    }
}

/// Infrastructure settings every stage shares.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InfraSettings {
    /// Kafka.
    pub kafka: KafkaSettings,
    /// PostgreSQL.
    pub database: DatabaseSettings,
    /// Logging.
    pub telemetry: TelemetrySettings,
    /// HTTP.
    pub http: HttpSettings,
}

/// Where the settings a process loads come from.
#[derive(Debug, Error)]
pub enum SettingsError {
    /// The file given does not exist.
    #[error("settings file {0} does not exist")]
    MissingFile(PathBuf),
    /// A value has the wrong type, or a key is unknown.
    #[error("invalid settings: {0}")]
    Invalid(String),
}

use thiserror::Error;

/// Load `T` from its defaults, then `file` (if given), then `CREDIT__*` environment variables,
/// then `KAFKA_BROKERS` / `DATABASE_URL` (mapped to `infra.kafka.brokers` /
/// `infra.database.url` when `T` has an `infra` section).
pub fn load<T>(file: Option<&Path>) -> Result<T, SettingsError>
where
    T: Serialize + DeserializeOwned + Default,
{
    let mut figment = Figment::from(Serialized::defaults(T::default()));
    if let Some(path) = file {
        if !path.exists() {
            return Err(SettingsError::MissingFile(path.to_path_buf()));
        }
        figment = figment.merge(Toml::file(path));
    }
    figment = figment.merge(Env::prefixed("CREDIT__").split("__").lowercase(true));
    if let Ok(brokers) = std::env::var("KAFKA_BROKERS") {
        if !brokers.trim().is_empty() {
            figment = figment.merge(Serialized::default("infra.kafka.brokers", brokers));
        }
    }
    if let Ok(url) = std::env::var("DATABASE_URL") {
        if !url.trim().is_empty() {
            figment = figment.merge(Serialized::default("infra.database.url", url));
        }
    }
    figment
        .extract()
        .map_err(|e| SettingsError::Invalid(redact_error(&e.to_string())))
}

/// Settings errors quote values; a URL with a password must not be echoed.
fn redact_error(message: &str) -> String {
    message
        .split_whitespace()
        .map(|word| {
            if word.contains("://") && word.contains('@') {
                "<redacted-url>"
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct App {
        infra: InfraSettings,
    }

    #[test]
    fn defaults_name_the_design_topics() {
        let t = Topics::default();
        assert_eq!(t.applications, "loan-applications");
        assert_eq!(t.dlq(&t.decisions), "loan-decisions-dlq");
        assert!(t.all().iter().any(|(n, p)| n == "model-updates" && *p == 1));
    }

    #[test]
    fn a_secret_never_prints_its_value() {
        let s = Secret::new("postgres://u:hunter2@h/db");
        assert!(!format!("{s:?} {s}").contains("hunter2"));
    }

    #[test]
    fn printed_urls_never_show_a_password() {
        let s = Secret::new("postgres://risk:hunter2@db.bank:5432/book?sslmode=require");
        assert_eq!(
            s.masked(),
            "postgres://risk:***@db.bank:5432/book?sslmode=require"
        );
        assert_eq!(
            mask_url("postgres://u@h/db?password=hunter2&sslmode=verify-full"),
            "postgres://u@h/db?password=***&sslmode=verify-full"
        );
        assert_eq!(mask_url("postgres://h:5/db"), "postgres://h:5/db");
        assert_eq!(
            mask_url("postgres://u@h/db?pass%77ord=hunter2"),
            "postgres://u@h/db?pass%77ord=***"
        );
        assert_eq!(mask_url("postgres://a:b:c@h/x"), "postgres://a:***@h/x");
        assert_eq!(mask_url("localhost:9092"), "localhost:9092");
    }

    #[test]
    fn a_file_overrides_defaults_and_unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(&path, "[infra.kafka.topics]\ndecisions = \"d2\"\n").unwrap();
        let app: App = load(Some(&path)).unwrap();
        assert_eq!(app.infra.kafka.topics.decisions, "d2");
        std::fs::write(&path, "[infra.kafka]\nbrokerz = \"x\"\n").unwrap();
        assert!(matches!(
            load::<App>(Some(&path)),
            Err(SettingsError::Invalid(_))
        ));
        assert!(matches!(
            load::<App>(Some(&dir.path().join("none.toml"))),
            Err(SettingsError::MissingFile(_))
        ));
    }
}
