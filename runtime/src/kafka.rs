//! Kafka client configuration and the embedded mock cluster.

use std::sync::mpsc;
use std::thread::JoinHandle;

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::mocking::MockCluster;
use thiserror::Error;

/// Producer settings for every stage: acknowledged by all in-sync replicas, idempotent (no
/// duplicates from retries, per-partition order kept), small linger for batching.
pub fn producer_config(brokers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000");
    c
}

/// Consumer settings for the at-least-once recipe: offsets are stored by the application only
/// after its output is acknowledged (`enable.auto.offset.store=false`) and committed in the
/// background; only committed transactions are read.
pub fn consumer_config(brokers: &str, group: &str, session_timeout_ms: u32) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set("session.timeout.ms", session_timeout_ms.to_string())
        .set("enable.partition.eof", "false");
    c
}

/// Dead-letter headers: where the message came from and why it was refused.
pub fn dlq_headers(
    topic: &str,
    partition: i32,
    offset: i64,
    class: &str,
    message: &str,
) -> rdkafka::message::OwnedHeaders {
    use rdkafka::message::{Header, OwnedHeaders};
    let partition = partition.to_string();
    let offset = offset.to_string();
    OwnedHeaders::new()
        .insert(Header {
            key: "source_topic",
            value: Some(topic),
        })
        .insert(Header {
            key: "source_partition",
            value: Some(&partition),
        })
        .insert(Header {
            key: "source_offset",
            value: Some(&offset),
        })
        .insert(Header {
            key: "error_class",
            value: Some(class),
        })
        .insert(Header {
            key: "error_message",
            value: Some(message),
        })
}

/// Consumer lag (messages) summed over the assigned partitions of a statistics report.
pub fn consumer_lag(statistics: &rdkafka::statistics::Statistics) -> i64 {
    statistics
        .topics
        .values()
        .flat_map(|t| t.partitions.values())
        .filter(|p| p.partition >= 0 && p.consumer_lag >= 0)
        .map(|p| p.consumer_lag)
        .sum()
}

/// Why the embedded cluster could not be used.
#[derive(Debug, Error)]
pub enum EmbeddedKafkaError {
    /// librdkafka refused to create the cluster or a topic.
    #[error("embedded Kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// The thread hosting the cluster has gone.
    #[error("embedded Kafka cluster is no longer running")]
    Gone,
}

enum Command {
    CreateTopic(String, i32, mpsc::Sender<Result<(), KafkaError>>),
    Stop,
}

/// An in-process Kafka cluster (librdkafka's mock brokers) on loopback ports, speaking the real
/// protocol, so `kcat` and other clients can connect to [`EmbeddedKafka::bootstrap_servers`].
///
/// librdkafka's mock handle is not `Send`; it lives on a thread of its own and this handle
/// talks to it over a channel, so the handle can be moved between tasks.
pub struct EmbeddedKafka {
    bootstrap: String,
    commands: mpsc::Sender<Command>,
    thread: Option<JoinHandle<()>>,
    replication: i32,
}

impl std::fmt::Debug for EmbeddedKafka {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedKafka")
            .field("bootstrap", &self.bootstrap)
            .finish()
    }
}

impl EmbeddedKafka {
    /// Start `brokers` mock brokers and create `topics` (name, partitions).
    pub fn start(brokers: i32, topics: &[(String, i32)]) -> Result<Self, EmbeddedKafkaError> {
        let (ready_tx, ready_rx) = mpsc::channel::<Result<String, KafkaError>>();
        let (commands, command_rx) = mpsc::channel::<Command>();
        let thread = std::thread::Builder::new()
            .name("embedded-kafka".into())
            .spawn(move || {
                let cluster = match MockCluster::new(brokers) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(cluster.bootstrap_servers()));
                while let Ok(command) = command_rx.recv() {
                    match command {
                        Command::CreateTopic(name, partitions, reply) => {
                            let replication = brokers.clamp(1, 3);
                            let _ =
                                reply.send(cluster.create_topic(&name, partitions, replication));
                        }
                        Command::Stop => break,
                    }
                }
            })
            .map_err(|_| EmbeddedKafkaError::Gone)?;
        let bootstrap = ready_rx.recv().map_err(|_| EmbeddedKafkaError::Gone)??;
        let cluster = Self {
            bootstrap,
            commands,
            thread: Some(thread),
            replication: brokers.clamp(1, 3),
        };
        for (name, partitions) in topics {
            cluster.create_topic(name, *partitions)?;
        }
        Ok(cluster)
    }

    /// The bootstrap address (`host:port,…`).
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// Replication factor topics are created with.
    pub fn replication(&self) -> i32 {
        self.replication
    }

    /// Create a topic (the mock has no CreateTopics admin API).
    pub fn create_topic(&self, name: &str, partitions: i32) -> Result<(), EmbeddedKafkaError> {
        let (tx, rx) = mpsc::channel();
        self.commands
            .send(Command::CreateTopic(name.to_string(), partitions, tx))
            .map_err(|_| EmbeddedKafkaError::Gone)?;
        rx.recv().map_err(|_| EmbeddedKafkaError::Gone)??;
        Ok(())
    }
}

impl Drop for EmbeddedKafka {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Fetch cluster metadata from `brokers` (within 10 s), so a wrong address fails at once with a
/// clear error; returns how many brokers answered.
pub async fn check_reachable(brokers: &str) -> Result<usize, rdkafka::error::KafkaError> {
    use rdkafka::producer::{BaseProducer, Producer};
    let producer: BaseProducer = producer_config(brokers).create()?;
    tokio::task::spawn_blocking(move || {
        producer
            .client()
            .fetch_metadata(None, std::time::Duration::from_secs(10))
            .map(|m| m.brokers().len())
    })
    .await
    .unwrap_or(Err(rdkafka::error::KafkaError::Canceled))
}
