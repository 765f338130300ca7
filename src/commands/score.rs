//! `credit-risk score`: applications from Kafka into decisions with reason codes.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use platform::Settings;
use scorer::decide::Explain;
use scorer::service::{ScorerService, ScorerSettings};

/// Reason-code policy on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExplainArg {
    /// No reasons.
    None,
    /// Declined and referred decisions.
    NonApproved,
    /// Every decision.
    All,
}

impl From<ExplainArg> for Explain {
    fn from(e: ExplainArg) -> Self {
        match e {
            ExplainArg::None => Explain::None,
            ExplainArg::NonApproved => Explain::NonApproved,
            ExplainArg::All => Explain::All,
        }
    }
}

/// Flags of `score`; each overrides `[scorer]`.
#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Model artifact to start from (else the champion on the model-updates topic).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Which decisions carry reason codes.
    #[arg(long, value_enum)]
    explain: Option<ExplainArg>,
    /// Consume-transform-produce in Kafka transactions.
    #[arg(long)]
    exactly_once: bool,
    /// Address for /metrics.
    #[arg(long)]
    metrics_bind: Option<String>,
}

/// Run the scorer until Ctrl-C.
pub async fn run(args: ScoreArgs, settings: Settings) -> anyhow::Result<()> {
    let shutdown = runtime::shutdown::on_signals();
    let infra = runtime::infra::Infra::start(&settings.infra, false).await?;
    if infra.embedded_kafka().is_some() {
        println!("Embedded Kafka bootstrap servers: {}", infra.brokers);
    }
    let mut s: ScorerSettings = settings.scorer.clone();
    if let Some(m) = args.model {
        s.model_path = Some(m);
    }
    if let Some(e) = args.explain {
        s.explain = e.into();
    }
    if args.exactly_once {
        s.exactly_once = true;
    }
    if let Some(b) = args.metrics_bind {
        s.metrics_bind = b;
    }
    let svc = ScorerService::new(
        &infra.brokers,
        &settings.infra.kafka,
        s,
        settings.domain.clone(),
    );
    let result = scorer::service::run(svc, prometheus::Registry::new(), shutdown).await;
    infra.stop();
    let produced = result?;
    tracing::info!(produced, "Scorer stopped");
    Ok(())
}
