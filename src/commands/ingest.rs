//! `credit-risk ingest`: the raw-topic stage, or a one-off load of a JSON Lines file.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use ingest::raw::IngestTopics;
use rdkafka::producer::FutureProducer;

use platform::Settings;
use runtime::infra::{Infra, Need};

/// Flags of `ingest`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Publish this JSON Lines file of applications and exit, instead of consuming the raw
    /// topic; refused lines go to `<file>.rejected.jsonl` with the reason.
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
    /// Consumer group of the raw-topic stage.
    #[arg(long, default_value = "credit-risk-ingest")]
    group: String,
    /// Most messages per batch.
    #[arg(long, default_value_t = 500)]
    batch_size: usize,
}

/// Run the stage until Ctrl-C, or load the file.
pub async fn run(args: IngestArgs, settings: Settings) -> anyhow::Result<()> {
    let shutdown = runtime::shutdown::on_signals();
    let infra = Infra::configured(&settings.infra, Need::Required, Need::Unused)?;
    let t = &settings.infra.kafka.topics;
    let topics = IngestTopics {
        raw: t.applications_raw.clone(),
        applications: t.applications.clone(),
        dlq: t.dlq(&t.applications_raw),
    };
    let producer: FutureProducer = runtime::kafka::producer_config(&infra.brokers).create()?;
    let result = match &args.file {
        Some(path) => {
            let counts = ingest::raw::load_file(path, &producer, &topics)
                .await
                .with_context(|| format!("loading {}", path.display()))?;
            println!(
                "Published {} applications to {}; {} refused{}",
                counts.published,
                topics.applications,
                counts.rejected,
                if counts.rejected > 0 {
                    format!(" (see {})", path.with_extension("rejected.jsonl").display())
                } else {
                    String::new()
                }
            );
            Ok(())
        }
        None => {
            let consumer = runtime::kafka::consumer_config(
                &infra.brokers,
                &args.group,
                settings.infra.kafka.session_timeout_ms,
            )
            .create()?;
            let counts =
                ingest::raw::run(consumer, producer, topics, args.batch_size, shutdown).await?;
            tracing::info!(
                published = counts.published,
                rejected = counts.rejected,
                "Ingest stopped"
            );
            Ok(())
        }
    };
    infra.stop();
    result
}
