//! The consumer's context: on assignment it seeks to the offsets stored with the book; it
//! reports the consumer lag.

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use sqlx::PgPool;
use tokio::runtime::Handle;

use crate::metrics::Metrics;

/// Consumer context: seeks to the offsets stored in PostgreSQL on assignment; lag metric.
pub(super) struct AggregatorContext {
    pub(super) pool: PgPool,
    pub(super) handle: Handle,
    pub(super) group: String,
    pub(super) metrics: Metrics,
}

impl ClientContext for AggregatorContext {
    fn stats(&self, statistics: Statistics) {
        self.metrics
            .consumer_lag
            .set(runtime::kafka::consumer_lag(&statistics));
    }
}

impl ConsumerContext for AggregatorContext {
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Assign(tpl) = rebalance else {
            tracing::info!(?rebalance, "Rebalance");
            return;
        };
        let elements = tpl.elements();
        let partitions: Vec<(String, i32)> = elements
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
            .collect();
        let stored = self.handle.block_on(book::write::offsets::stored(
            &self.pool,
            &self.group,
            &partitions,
        ));
        match stored {
            Ok(offsets) => {
                let mut with_offsets = TopicPartitionList::new();
                for key @ (t, p) in &partitions {
                    let offset = offsets
                        .get(key)
                        .map_or(Offset::Stored, |o| Offset::Offset(*o));
                    if let Err(error) = with_offsets.add_partition_offset(t, *p, offset) {
                        tracing::warn!(%error, "Cannot set a start offset");
                    }
                }
                if let Err(error) = consumer.assign(&with_offsets) {
                    tracing::warn!(%error, "Cannot seek to the stored offsets");
                }
                tracing::info!(
                    partitions = partitions.len(),
                    from_database = offsets.len(),
                    "Assigned; starting from the offsets stored with the book"
                );
            }
            Err(error) => {
                // Safe either way: messages below the stored offsets are skipped in the batch
                // transaction.
                tracing::warn!(%error, "Cannot read stored offsets; starting from Kafka's");
            }
        }
    }
}

pub(super) type AggregatorConsumer = BaseConsumer<AggregatorContext>;
