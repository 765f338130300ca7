//! Which models score: loaded from artifact files, swapped on ModelPromoted.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use risk_core::features;
use risk_core::model::{Artifact, LoadedModel};
use schemas::{ModelAlias, ModelPromoted};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::error::ScorerError;

/// The models in use: the champion decides, a challenger is scored in shadow.
#[derive(Clone)]
pub struct Models {
    /// Decides.
    pub champion: Arc<LoadedModel>,
    /// Shadow.
    pub challenger: Option<Arc<LoadedModel>>,
}

/// The file an artifact URI points at (`file://…` or a plain path).
pub fn artifact_path(uri: &str) -> PathBuf {
    PathBuf::from(uri.strip_prefix("file://").unwrap_or(uri))
}

/// Load and check an artifact file against this build's feature set.
pub fn load(path: &Path) -> Result<LoadedModel, ScorerError> {
    let bytes = std::fs::read(path).map_err(|source| ScorerError::ModelFile {
        path: path.to_path_buf(),
        source,
    })?;
    Artifact::load(&bytes, features::VERSION, &features::names()).map_err(|source| {
        ScorerError::Artifact {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// Apply one promotion to the current models; errors leave them unchanged.
pub fn apply(current: Option<&Models>, promoted: &ModelPromoted) -> Result<Models, ScorerError> {
    let loaded = Arc::new(load(&artifact_path(&promoted.artifact_uri))?);
    match (promoted.alias, current) {
        (ModelAlias::Champion, current) => Ok(Models {
            champion: loaded,
            challenger: current
                .and_then(|c| c.challenger.clone())
                .filter(|c| c.artifact.model_version != promoted.model_version),
        }),
        (ModelAlias::Challenger, Some(current)) => Ok(Models {
            champion: current.champion.clone(),
            challenger: Some(loaded),
        }),
        (ModelAlias::Challenger, None) => Err(ScorerError::NoModel(
            "a challenger was promoted before any champion",
        )),
    }
}

/// Follow the model-updates topic from its beginning (a single partition: the registry's
/// history), publishing the resulting models on `tx`. Returns once caught up with what was
/// there at start; keeps following in a background task until `shutdown`.
pub async fn follow(
    consumer: StreamConsumer,
    topic: String,
    initial: Option<Models>,
    shutdown: CancellationToken,
) -> Result<(watch::Receiver<Option<Models>>, tokio::task::JoinHandle<()>), ScorerError> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Beginning)?;
    consumer.assign(&tpl)?;
    let (_, high) = consumer.fetch_watermarks(&topic, 0, Duration::from_secs(10))?;
    let (tx, rx) = watch::channel(initial);
    let mut caught_up = high == 0;
    while !caught_up {
        let m = tokio::select! {
            m = consumer.recv() => m?,
            _ = shutdown.cancelled() => return Err(ScorerError::Stopped),
        };
        handle(&tx, m.payload());
        caught_up = m.offset() + 1 >= high;
    }
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                m = consumer.recv() => match m {
                    Ok(m) => handle(&tx, m.payload()),
                    Err(error) => tracing::warn!(%error, "Reading model updates failed"),
                },
                _ = shutdown.cancelled() => break,
            }
        }
    });
    Ok((rx, task))
}

fn handle(tx: &watch::Sender<Option<Models>>, payload: Option<&[u8]>) {
    let promoted = match schemas::decode::<ModelPromoted>(payload.unwrap_or_default()) {
        Ok(p) => p,
        Err(error) => {
            tracing::warn!(%error, "Ignoring an undecodable model update");
            return;
        }
    };
    let current = tx.borrow().clone();
    match apply(current.as_ref(), &promoted) {
        Ok(models) => {
            tracing::info!(
                version = %promoted.model_version,
                alias = ?promoted.alias,
                "Model promoted"
            );
            let _ = tx.send(Some(models));
        }
        Err(error) => {
            tracing::error!(error = %runtime::telemetry::chain(&error), version = %promoted.model_version, "Cannot use promoted model; keeping the current one")
        }
    }
}

/// Why a promotion could not be announced.
#[derive(Debug, thiserror::Error)]
pub enum AnnounceError {
    /// The event did not encode.
    #[error("encoding ModelPromoted")]
    Encode(#[from] schemas::EncodeError),
    /// Kafka did not accept it within the timeout.
    #[error("Kafka did not accept ModelPromoted")]
    Kafka(#[source] rdkafka::error::KafkaError),
}

/// Announce a promotion on the model-updates `topic` (keyed by model name), so every scorer
/// and edge swaps models without a restart. The one place `ModelPromoted` is published.
pub async fn announce(
    producer: &rdkafka::producer::FutureProducer,
    topic: &str,
    event: &ModelPromoted,
) -> Result<(), AnnounceError> {
    let bytes = schemas::encode(event)?;
    producer
        .send(
            rdkafka::producer::FutureRecord::to(topic)
                .key(&event.model_name)
                .payload(&bytes),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(e, _)| AnnounceError::Kafka(e))?;
    Ok(())
}
