//! `credit-risk aggregate`: the loan book kept from decisions and loan events.

use clap::Args;
use platform::Settings;
use portfolio_aggregator::service::AggregatorService;
use runtime::infra::Need;

/// Flags of `aggregate`; each overrides `[aggregator]`.
#[derive(Debug, Args)]
pub struct AggregateArgs {
    /// Address for /metrics.
    #[arg(long)]
    metrics_bind: Option<String>,
    /// Most messages per batch.
    #[arg(long)]
    batch_size: Option<usize>,
}

/// Run the aggregator until Ctrl-C: migrations, then the consumer loop.
pub async fn run(args: AggregateArgs, settings: Settings) -> anyhow::Result<()> {
    let shutdown = runtime::shutdown::on_signals();
    // The aggregator commits batches in parallel shares: a small pool serves them.
    let (infra, pool) = super::open_book(&settings, Need::Required, 4).await?;
    let mut s = settings.aggregator.clone();
    s.metrics_bind = args.metrics_bind.unwrap_or(s.metrics_bind);
    s.batch_size = args.batch_size.unwrap_or(s.batch_size);
    let svc = AggregatorService::new(
        &infra.brokers,
        &settings.infra.kafka,
        s,
        settings.domain.clone(),
    );
    let result = portfolio_aggregator::service::run(
        svc,
        pool.clone(),
        prometheus::Registry::new(),
        shutdown,
    )
    .await;
    pool.close().await;
    infra.stop();
    let totals = result?;
    tracing::info!(?totals, "Aggregator stopped");
    Ok(())
}
