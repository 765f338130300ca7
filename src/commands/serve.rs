//! `credit-risk serve`: the REST API, the dashboard and /metrics until Ctrl-C.

use clap::Args;
use platform::Settings;
use runtime::infra::Need;

/// Flags of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen address (default `[infra.http] bind`).
    #[arg(long)]
    bind: Option<String>,
    /// Serve /metrics without a key on this address too, for Prometheus (default
    /// `[edge] metrics_bind`; on the API's port /metrics needs an analyst or admin key).
    #[arg(long)]
    metrics_bind: Option<String>,
}

/// Run the edge until Ctrl-C.
pub async fn run(args: ServeArgs, mut settings: Settings) -> anyhow::Result<()> {
    if let Some(m) = args.metrics_bind {
        settings.edge.metrics_bind = m;
    }
    let shutdown = runtime::shutdown::on_signals();
    let (infra, pool) = super::open_book(
        &settings,
        Need::Required,
        settings.infra.database.max_connections,
    )
    .await?;
    let edge = edge::build(
        pool.clone(),
        &infra.brokers,
        settings.infra.kafka.topics.clone(),
        settings.edge.clone(),
        settings.domain.clone(),
        prometheus::Registry::new(),
        shutdown.clone(),
    )
    .await?;
    let bind = args
        .bind
        .unwrap_or_else(|| settings.infra.http.bind.clone());
    let (addr, task) = edge::serve(edge, &bind, shutdown.clone())?;
    println!("Serving http://{addr}/ (API under /api, OpenAPI at /openapi.json)");
    let _ = task.await;
    pool.close().await;
    infra.stop();
    Ok(())
}
