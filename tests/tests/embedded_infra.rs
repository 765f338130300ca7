//! The embedded infrastructure works end to end: mock Kafka and a private PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use runtime::kafka::{consumer_config, producer_config, EmbeddedKafka};
use runtime::postgres::connect;
use schemas::{decode, encode, LoanApplication};
use tests::scratch::ScratchDatabase;
use tests::{sample_application, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_avro_application_travels_through_kafka_into_postgres_and_back() -> anyhow::Result<()> {
    let topic = unique("applications");
    let kafka = EmbeddedKafka::start(3, &[(topic.clone(), 3)])?;
    let db = ScratchDatabase::create().await?;
    let pool = connect(&db.url, 2).await?;

    let app = sample_application(&unique("APP"));
    let producer: FutureProducer = producer_config(kafka.bootstrap_servers()).create()?;
    producer
        .send(
            FutureRecord::to(&topic)
                .key(&app.application_id)
                .payload(&encode(&app)?),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)?;

    let group = unique("group");
    let consumer: StreamConsumer =
        consumer_config(kafka.bootstrap_servers(), &group, 6_000).create()?;
    consumer.subscribe(&[&topic])?;
    let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await??;
    let received: LoanApplication = decode(message.payload().unwrap_or_default())?;
    assert_eq!(received, app);

    sqlx::query(
        "CREATE TABLE inbox (application_id text PRIMARY KEY, body bytea NOT NULL, \
         source_partition int NOT NULL, source_offset bigint NOT NULL)",
    )
    .execute(&pool)
    .await?;
    sqlx::query("INSERT INTO inbox VALUES ($1, $2, $3, $4)")
        .bind(&received.application_id)
        .bind(message.payload().unwrap_or_default())
        .bind(message.partition())
        .bind(message.offset())
        .execute(&pool)
        .await?;

    consumer.store_offset_from_message(&message)?;
    consumer.commit_consumer_state(CommitMode::Sync)?;
    let mut wanted = TopicPartitionList::new();
    wanted.add_partition(&topic, message.partition());
    let committed = consumer.committed_offsets(wanted, Duration::from_secs(10))?;
    let element = committed
        .find_partition(&topic, message.partition())
        .ok_or_else(|| anyhow::anyhow!("no committed offset"))?;
    assert_eq!(element.offset(), Offset::Offset(message.offset() + 1));

    let body: Vec<u8> = sqlx::query_scalar("SELECT body FROM inbox WHERE application_id = $1")
        .bind(&app.application_id)
        .fetch_one(&pool)
        .await?;
    assert_eq!(decode::<LoanApplication>(&body)?, app);

    pool.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_cluster_serves_topics_with_the_partitions_asked_for() -> anyhow::Result<()> {
    let topic = unique("partitioned");
    let kafka = EmbeddedKafka::start(3, &[(topic.clone(), 6)])?;
    let producer: FutureProducer = producer_config(kafka.bootstrap_servers()).create()?;
    let metadata = rdkafka::producer::Producer::client(&producer)
        .fetch_metadata(Some(&topic), Duration::from_secs(10))?;
    assert_eq!(metadata.topics()[0].partitions().len(), 6);
    assert_eq!(metadata.brokers().len(), 3);
    Ok(())
}
