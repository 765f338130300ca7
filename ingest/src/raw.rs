//! `credit-risk ingest`: applications as an LOS sends them (JSON) → checked → the Avro
//! `loan-applications` topic; what cannot be read or checked goes to the dead-letter topic with
//! its headers, and the stream moves on. Also a loader of JSON Lines files.
//!
//! At least once: a batch's input offsets are stored only after every output (application or
//! dead letter) is acknowledged by the broker; a redelivered message is published again with the
//! same key and bytes, which the scorer and the book absorb (upserts, identical decisions).

use std::io::BufRead;
use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use schemas::LoanApplication;

/// Why an input is refused: a class (for the `error_class` header) and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `undecodable` or `invalid`.
    pub class: &'static str,
    /// What is wrong, naming the field where one is to blame.
    pub message: String,
}

/// Read one JSON application; `submitted_at`, `channel` and `currency` default to now, `los`
/// and INR when absent. Values are checked as the scorer checks them.
pub fn parse(bytes: &[u8]) -> Result<LoanApplication, Refusal> {
    let mut v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| Refusal {
        class: "undecodable",
        message: format!("not JSON: {e}"),
    })?;
    let Some(o) = v.as_object_mut() else {
        return Err(Refusal {
            class: "undecodable",
            message: "not a JSON object".into(),
        });
    };
    o.entry("submitted_at")
        .or_insert_with(|| Utc::now().timestamp_millis().into());
    o.entry("channel").or_insert_with(|| "los".into());
    o.entry("currency").or_insert_with(|| "INR".into());
    let app: LoanApplication = serde_json::from_value(v).map_err(|e| Refusal {
        class: "invalid",
        message: e.to_string(),
    })?;
    schemas::validate::check(&app).map_err(|e| Refusal {
        class: "invalid",
        message: e.message,
    })?;
    Ok(app)
}

/// Where the stage reads and writes.
#[derive(Debug, Clone)]
pub struct IngestTopics {
    /// JSON input.
    pub raw: String,
    /// Avro output.
    pub applications: String,
    /// Dead letters of the input.
    pub dlq: String,
}

/// What a run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IngestCounts {
    /// Applications published.
    pub published: u64,
    /// Inputs dead-lettered (or, for files, rejected).
    pub rejected: u64,
}

/// The stage failed.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Kafka refused or timed out.
    #[error("Kafka")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// A file could not be read or written.
    #[error("{path}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A checked application could not be encoded (a defect: types and schemas disagree).
    #[error("line {line}")]
    Encode {
        /// Line of the file.
        line: usize,
        /// Why.
        #[source]
        source: schemas::EncodeError,
    },
}

async fn send(
    producer: &FutureProducer,
    record: FutureRecord<'_, str, [u8]>,
) -> Result<(), IngestError> {
    producer
        .send(record, Duration::from_secs(30))
        .await
        .map(|_| ())
        .map_err(|(e, _)| IngestError::Kafka(e))
}

async fn publish_one(
    producer: &FutureProducer,
    topics: &IngestTopics,
    m: &BorrowedMessage<'_>,
) -> Result<bool, IngestError> {
    let payload = m.payload().unwrap_or_default();
    match parse(payload).and_then(|app| {
        schemas::encode(&app)
            .map(|bytes| (app.application_id, bytes))
            .map_err(|e| Refusal {
                class: "invalid",
                message: e.to_string(),
            })
    }) {
        Ok((id, bytes)) => {
            send(
                producer,
                FutureRecord::to(&topics.applications)
                    .key(id.as_str())
                    .payload(&bytes[..]),
            )
            .await?;
            Ok(true)
        }
        Err(r) => {
            let headers = runtime::kafka::dlq_headers(
                m.topic(),
                m.partition(),
                m.offset(),
                r.class,
                &r.message,
            );
            let mut record = FutureRecord::to(&topics.dlq)
                .payload(payload)
                .headers(headers);
            if let Some(k) = m.key() {
                record = record.key(std::str::from_utf8(k).unwrap_or_default());
            }
            send(producer, record).await?;
            Ok(false)
        }
    }
}

/// Consume `raw` until `shutdown`, in batches of up to `batch` messages.
pub async fn run(
    consumer: StreamConsumer,
    producer: FutureProducer,
    topics: IngestTopics,
    batch: usize,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<IngestCounts, IngestError> {
    consumer.subscribe(&[&topics.raw])?;
    let mut counts = IngestCounts::default();
    loop {
        let first = tokio::select! {
            m = consumer.recv() => m?,
            _ = shutdown.cancelled() => break,
        };
        let mut messages = vec![first];
        while messages.len() < batch.max(1) {
            match tokio::time::timeout(Duration::from_millis(5), consumer.recv()).await {
                Ok(m) => messages.push(m?),
                Err(_) => break,
            }
        }
        let results =
            futures::future::join_all(messages.iter().map(|m| publish_one(&producer, &topics, m)))
                .await;
        for (m, r) in messages.iter().zip(results) {
            // A failed output leaves this offset (and so the rest of the partition) unstored:
            // it is redelivered after a restart or rebalance.
            if r? {
                counts.published += 1;
            } else {
                counts.rejected += 1;
            }
            consumer.store_offset_from_message(m)?;
        }
    }
    // The stored offsets are committed; "no offset stored" means the background commit already
    // took everything.
    match consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync) {
        Ok(()) => {}
        Err(rdkafka::error::KafkaError::ConsumerCommit(
            rdkafka::types::RDKafkaErrorCode::NoOffset,
        )) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(counts)
}

/// Publish a JSON Lines file of applications; refused lines are written, with their line number
/// and the reason, to `<file>.rejected.jsonl` beside it.
pub async fn load_file(
    path: &Path,
    producer: &FutureProducer,
    topics: &IngestTopics,
) -> Result<IngestCounts, IngestError> {
    let io = |source: std::io::Error| IngestError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let rejected_path = path.with_extension("rejected.jsonl");
    let mut rejected: Option<std::fs::File> = None;
    let mut counts = IngestCounts::default();
    let mut pending = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        match parse(line.as_bytes()) {
            Ok(app) => {
                let bytes = schemas::encode(&app).map_err(|source| IngestError::Encode {
                    line: n + 1,
                    source,
                })?;
                pending.push((app.application_id, bytes));
            }
            Err(r) => {
                use std::io::Write;
                let f = match &mut rejected {
                    Some(f) => f,
                    None => rejected.insert(std::fs::File::create(&rejected_path).map_err(io)?),
                };
                let row = serde_json::json!({"line": n + 1, "error_class": r.class, "error": r.message, "input": line});
                writeln!(f, "{row}").map_err(io)?;
                counts.rejected += 1;
            }
        }
        if pending.len() >= 1_000 {
            counts.published += flush(producer, topics, &mut pending).await?;
        }
    }
    counts.published += flush(producer, topics, &mut pending).await?;
    Ok(counts)
}

async fn flush(
    producer: &FutureProducer,
    topics: &IngestTopics,
    pending: &mut Vec<(String, Vec<u8>)>,
) -> Result<u64, IngestError> {
    let sends = pending.iter().map(|(id, bytes)| {
        send(
            producer,
            FutureRecord::to(&topics.applications)
                .key(id.as_str())
                .payload(&bytes[..]),
        )
    });
    for r in futures::future::join_all(sends).await {
        r?;
    }
    let n = pending.len() as u64;
    pending.clear();
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_undecodable_and_bad_values_are_invalid_naming_the_field() {
        assert_eq!(parse(b"{nope").unwrap_err().class, "undecodable");
        assert_eq!(parse(b"[1]").unwrap_err().class, "undecodable");
        let r = parse(br#"{"application_id": "A1"}"#).unwrap_err();
        assert_eq!(r.class, "invalid");
        assert!(r.message.contains("customer_id"), "{}", r.message);
    }
}
