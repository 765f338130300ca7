//! Publish generated records to the pipeline's topics.
//!
//! Keys follow the topic contracts (application_id, loan_id, customer_id). A day-end tick is
//! written to every partition of the events topic, so every consumer of a partition sees it
//! after all of that day's events of its loans.

use std::time::Duration;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use schemas::{CustomerRegistered, Decision, LoanApplication, LoanEvent, LoanEventBody};

use super::sink::{Sink, SinkError, TruthRow};

/// Topic names the generator writes to.
#[derive(Debug, Clone)]
pub struct GeneratorTopics {
    /// Applications.
    pub applications: String,
    /// Decisions.
    pub decisions: String,
    /// Loan events.
    pub events: String,
    /// Customers.
    pub customers: String,
}

impl From<&runtime::settings::Topics> for GeneratorTopics {
    fn from(t: &runtime::settings::Topics) -> Self {
        Self {
            applications: t.applications.clone(),
            decisions: t.decisions.clone(),
            events: t.events.clone(),
            customers: t.customers.clone(),
        }
    }
}

/// Counts deliveries the broker did not acknowledge.
#[derive(Default, Clone)]
pub struct DeliveryCounter {
    failed: Arc<AtomicU64>,
    delivered: Arc<AtomicU64>,
}

impl ClientContext for DeliveryCounter {}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {
        match result {
            Ok(_) => self.delivered.fetch_add(1, Ordering::Relaxed),
            Err((error, _)) => {
                tracing::warn!(%error, "Delivery failed");
                self.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}

/// Produces to Kafka; ground truth goes to the given file sink only (never to a topic).
pub struct KafkaSink<T: Sink> {
    producer: ThreadedProducer<DeliveryCounter>,
    counter: DeliveryCounter,
    topics: GeneratorTopics,
    event_partitions: i32,
    truth: T,
}

impl<T: Sink> KafkaSink<T> {
    /// Connect with the given producer configuration.
    pub fn new(
        config: &ClientConfig,
        topics: GeneratorTopics,
        truth: T,
    ) -> Result<Self, SinkError> {
        let counter = DeliveryCounter::default();
        let producer: ThreadedProducer<DeliveryCounter> =
            config.create_with_context(counter.clone())?;
        let metadata = producer
            .client()
            .fetch_metadata(Some(&topics.events), Duration::from_secs(10))?;
        let event_partitions = metadata.topics().first().map_or(1, |t| {
            i32::try_from(t.partitions().len()).unwrap_or(1).max(1)
        });
        Ok(Self {
            producer,
            counter,
            topics,
            event_partitions,
            truth,
        })
    }

    /// Messages acknowledged so far.
    pub fn delivered(&self) -> u64 {
        self.counter.delivered.load(Ordering::Relaxed)
    }

    fn send(
        &self,
        topic: &str,
        key: &str,
        payload: &[u8],
        partition: Option<i32>,
    ) -> Result<(), SinkError> {
        let mut record = BaseRecord::to(topic).key(key).payload(payload);
        if let Some(p) = partition {
            record = record.partition(p);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // Back-pressure: wait for deliveries, then retry the same record.
                    record = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(SinkError::Kafka(e)),
            }
        }
    }
}

fn encode<M: schemas::AvroMessage>(m: &M) -> Result<Vec<u8>, SinkError> {
    schemas::encode(m).map_err(|e| SinkError::Schema(e.to_string()))
}

impl<T: Sink> Sink for KafkaSink<T> {
    fn customer(&mut self, c: &CustomerRegistered) -> Result<(), SinkError> {
        self.send(&self.topics.customers, &c.customer_id, &encode(c)?, None)
    }
    fn application(&mut self, a: &LoanApplication) -> Result<(), SinkError> {
        self.send(
            &self.topics.applications,
            &a.application_id,
            &encode(a)?,
            None,
        )
    }
    fn decision(&mut self, d: &Decision) -> Result<(), SinkError> {
        self.send(&self.topics.decisions, &d.application_id, &encode(d)?, None)
    }
    fn event(&mut self, e: &LoanEvent) -> Result<(), SinkError> {
        let payload = encode(e)?;
        match (&e.body, e.body.loan_id()) {
            (LoanEventBody::BusinessDayClosed(_), _) | (_, None) => {
                for p in 0..self.event_partitions {
                    self.send(&self.topics.events, &e.event_id, &payload, Some(p))?;
                }
                Ok(())
            }
            (_, Some(loan)) => self.send(&self.topics.events, loan, &payload, None),
        }
    }
    fn truth(&mut self, t: &TruthRow) -> Result<(), SinkError> {
        self.truth.truth(t)
    }
    fn finish(&mut self) -> Result<(), SinkError> {
        self.producer.flush(Duration::from_secs(60))?;
        let failed = self.counter.failed.load(Ordering::Relaxed);
        if failed > 0 {
            return Err(SinkError::Unacknowledged(failed));
        }
        self.truth.finish()
    }
}
