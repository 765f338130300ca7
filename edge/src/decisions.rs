//! Waiting for the decision on an application the edge has just published: a consumer tails
//! every partition of the decisions topic from its end (no consumer group, nothing committed)
//! and hands each decision to whoever waits for it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use schemas::Decision;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

type Waiters = Arc<Mutex<HashMap<String, Vec<oneshot::Sender<Decision>>>>>;

/// Registry of requests waiting for a decision.
#[derive(Clone, Default)]
pub struct DecisionWaiter {
    waiters: Waiters,
}

/// A registered wait; dropping it unregisters.
pub struct Wait {
    id: String,
    rx: oneshot::Receiver<Decision>,
    waiters: Waiters,
}

impl Wait {
    /// The decision, or `None` after `timeout`.
    pub async fn within(mut self, timeout: Duration) -> Option<Decision> {
        tokio::time::timeout(timeout, &mut self.rx).await.ok()?.ok()
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        if let Ok(mut w) = self.waiters.lock() {
            if let Some(list) = w.get_mut(&self.id) {
                list.retain(|tx| !tx.is_closed());
                if list.is_empty() {
                    w.remove(&self.id);
                }
            }
        }
    }
}

impl DecisionWaiter {
    /// Register interest in `application_id` (before publishing it, so no decision is missed).
    pub fn wait(&self, application_id: &str) -> Wait {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut w) = self.waiters.lock() {
            w.entry(application_id.to_string()).or_default().push(tx);
        }
        Wait {
            id: application_id.to_string(),
            rx,
            waiters: self.waiters.clone(),
        }
    }

    /// Requests waiting now.
    pub fn pending(&self) -> usize {
        self.waiters.lock().map(|w| w.len()).unwrap_or(0)
    }

    fn deliver(&self, d: Decision) {
        let senders = self
            .waiters
            .lock()
            .ok()
            .and_then(|mut w| w.remove(&d.application_id));
        for tx in senders.into_iter().flatten() {
            let _ = tx.send(d.clone());
        }
    }

    /// Tail `topic` from its end on every partition until `shutdown`.
    pub fn start(
        &self,
        brokers: &str,
        topic: &str,
        shutdown: CancellationToken,
    ) -> Result<tokio::task::JoinHandle<()>, rdkafka::error::KafkaError> {
        let consumer: StreamConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set(
                "group.id",
                format!("credit-risk-edge-{}", uuid::Uuid::new_v4()),
            )
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .set("fetch.wait.max.ms", "5")
            .set("enable.partition.eof", "false")
            .create()?;
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        let mut tpl = TopicPartitionList::new();
        for t in metadata.topics() {
            for p in t.partitions() {
                tpl.add_partition_offset(topic, p.id(), Offset::End)?;
            }
        }
        if tpl.count() == 0 {
            return Err(rdkafka::error::KafkaError::Subscription(format!(
                "topic {topic} has no partitions"
            )));
        }
        consumer.assign(&tpl)?;
        let this = self.clone();
        Ok(tokio::spawn(async move {
            loop {
                let m = tokio::select! {
                    m = consumer.recv() => m,
                    _ = shutdown.cancelled() => break,
                };
                match m {
                    Ok(m) => {
                        if let Ok(d) = schemas::decode::<Decision>(m.payload().unwrap_or_default())
                        {
                            this.deliver(d);
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "Reading decisions failed");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        }))
    }
}
