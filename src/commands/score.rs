//! `credit-risk score`: applications from Kafka into decisions with reason codes.

use std::path::PathBuf;

use clap::Args;
use platform::Settings;
use runtime::infra::{Infra, Need};
use scorer::decide::Explain;
use scorer::service::{ScorerService, ScorerSettings};

/// Flags of `score`; each overrides `[scorer]`.
#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Model artifact to start from (else the champion on the model-updates topic).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Which decisions carry reason codes: none, non-approved or all.
    #[arg(long)]
    explain: Option<Explain>,
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
    let infra = Infra::configured(&settings.infra, Need::Required, Need::Unused)?;
    let mut s: ScorerSettings = settings.scorer.clone();
    s.model_path = args.model.or(s.model_path);
    s.explain = args.explain.unwrap_or(s.explain);
    s.exactly_once |= args.exactly_once;
    s.metrics_bind = args.metrics_bind.unwrap_or(s.metrics_bind);
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
