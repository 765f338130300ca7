//! One batch, its dead letters and its offsets committed in one transaction.

use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use runtime::settings::Topics;
use sqlx::PgPool;

use super::error::CommitError;
use book::message::{Incoming, Rejection};
use book::write::{apply_batch, ApplyContext, BatchOutcome};

/// What a batch's transaction needs, shared with the tasks that commit batches.
pub(super) struct Committer {
    pub(super) pool: PgPool,
    pub(super) ctx: ApplyContext,
    pub(super) producer: FutureProducer,
    pub(super) topics: Topics,
}

impl Committer {
    /// Apply `batch` and dead-letter its rejected messages in one transaction, with its
    /// offsets.
    pub(super) async fn commit(&self, batch: &[Incoming]) -> Result<BatchOutcome, CommitError> {
        let mut tx = self.pool.begin().await.map_err(CommitError::from)?;
        let outcome = apply_batch(&mut tx, &self.ctx, batch)
            .await
            .map_err(CommitError::from)?;
        self.dead_letter(batch, &outcome.rejected).await?;
        tx.commit().await.map_err(CommitError::from)?;
        Ok(outcome)
    }

    async fn dead_letter(
        &self,
        batch: &[Incoming],
        rejected: &[(usize, Rejection)],
    ) -> Result<(), CommitError> {
        let topics: Vec<String> = rejected
            .iter()
            .map(|(i, _)| {
                batch
                    .get(*i)
                    .map(|m| self.topics.dlq(&m.topic))
                    .unwrap_or_default()
            })
            .collect();
        let mut sends = Vec::with_capacity(rejected.len());
        for ((i, r), dlq) in rejected.iter().zip(&topics) {
            let Some(m) = batch.get(*i) else { continue };
            let headers =
                runtime::kafka::dlq_headers(&m.topic, m.partition, m.offset, r.class, &r.message);
            let mut record = FutureRecord::to(dlq).payload(&m.bytes).headers(headers);
            if let Some(k) = &m.key {
                record = record.key(k);
            }
            sends.push(self.producer.send(record, Duration::from_secs(30)));
        }
        for s in sends {
            s.await.map_err(|(e, _)| CommitError::Kafka(e))?;
        }
        Ok(())
    }
}
