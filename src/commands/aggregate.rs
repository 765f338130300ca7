//! `credit-risk aggregate`: the loan book kept from decisions and loan events.

use anyhow::Context;
use clap::Args;
use platform::Settings;
use portfolio_aggregator::service::AggregatorService;

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
    let infra = runtime::infra::Infra::start(&settings.infra, true).await?;
    if infra.embedded_kafka().is_some() {
        println!("Embedded Kafka bootstrap servers: {}", infra.brokers);
    }
    if let Some(pg) = infra.embedded_postgres() {
        println!("PostgreSQL: {}", pg.url().masked());
    }
    let url = infra
        .database_url
        .clone()
        .context("the aggregator needs PostgreSQL (DATABASE_URL)")?;
    let pool = runtime::postgres::connect(&url, 4)
        .await
        .context("connecting to PostgreSQL")?;
    book::db::migrate(&pool)
        .await
        .context("migrating the book's schema")?;
    let mut s = settings.aggregator.clone();
    if let Some(b) = args.metrics_bind {
        s.metrics_bind = b;
    }
    if let Some(b) = args.batch_size {
        s.batch_size = b;
    }
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
