//! Consumed offsets kept in the book: locked per batch, read back on assignment.

use crate::message::Incoming;
use chrono::NaiveDate;
use sqlx::PgConnection;
use sqlx::PgPool;
use std::collections::HashMap;

/// Create the batch's offset rows if new and lock them (in a fixed order, so two consumers
/// never deadlock); returns the stored next offsets.
pub(super) async fn lock_offsets(
    tx: &mut PgConnection,
    group: &str,
    batch: &[Incoming],
) -> Result<HashMap<(String, i32), i64>, sqlx::Error> {
    let keys: std::collections::BTreeSet<(String, i32)> = batch
        .iter()
        .map(|m| (m.topic.clone(), m.partition))
        .collect();
    let topics: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
    let partitions: Vec<i32> = keys.iter().map(|k| k.1).collect();
    sqlx::query!(
        "INSERT INTO consumer_offsets (consumer_group, topic, partition, next_offset) \
         SELECT $1, t, p, 0 FROM unnest($2::text[], $3::int4[]) AS k(t, p) \
         ORDER BY t, p ON CONFLICT DO NOTHING",
        group,
        &topics,
        &partitions
    )
    .execute(&mut *tx)
    .await?;
    let rows = sqlx::query!(
        "SELECT o.topic, o.partition, o.next_offset FROM consumer_offsets o \
         JOIN unnest($2::text[], $3::int4[]) AS k(t, p) ON o.topic = k.t AND o.partition = k.p \
         WHERE o.consumer_group = $1 ORDER BY o.topic, o.partition FOR UPDATE OF o",
        group,
        &topics,
        &partitions
    )
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ((r.topic, r.partition), r.next_offset))
        .collect())
}

/// The next offsets stored for `group` of the given (topic, partition) pairs; pairs never
/// committed are absent.
pub async fn stored(
    pool: &PgPool,
    group: &str,
    partitions: &[(String, i32)],
) -> Result<HashMap<(String, i32), i64>, sqlx::Error> {
    let topics: Vec<String> = partitions.iter().map(|(t, _)| t.clone()).collect();
    let numbers: Vec<i32> = partitions.iter().map(|(_, p)| *p).collect();
    let rows = sqlx::query!(
        "SELECT o.topic, o.partition, o.next_offset FROM consumer_offsets o \
         JOIN unnest($2::text[], $3::int4[]) AS k(t, p) \
           ON o.topic = k.t AND o.partition = k.p \
         WHERE o.consumer_group = $1",
        group,
        &topics,
        &numbers
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ((r.topic, r.partition), r.next_offset))
        .collect())
}

/// Which of `dates` are closed business days.
pub async fn closed_days(
    pool: &PgPool,
    dates: &[NaiveDate],
) -> Result<Vec<NaiveDate>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT business_date FROM business_days \
         WHERE business_date = ANY($1) AND closed_at IS NOT NULL",
        dates
    )
    .fetch_all(pool)
    .await
}
