//! `credit-risk infra`: the configured servers checked, or embedded ones started, until Ctrl-C.

use anyhow::Context;
use platform::Settings;

/// Start (or check) Kafka and, unless `kafka_only`, PostgreSQL; print their addresses.
pub async fn run(settings: Settings, kafka_only: bool) -> anyhow::Result<()> {
    let shutdown = runtime::shutdown::on_signals();
    let infra = runtime::infra::Infra::start(&settings.infra, !kafka_only)
        .await
        .context("starting infrastructure")?;
    if infra.embedded_kafka().is_none() {
        let brokers = runtime::kafka::check_reachable(&infra.brokers)
            .await
            .with_context(|| format!("no Kafka broker answers at {}", infra.brokers))?;
        tracing::info!(brokers, "Kafka reachable");
    }
    if let (None, Some(url)) = (infra.embedded_postgres(), &infra.database_url) {
        let pool = runtime::postgres::connect(url, 1).await?;
        // A connection opened proves the server answers and accepts the login.
        drop(pool.acquire().await.context("checking PostgreSQL")?);
        pool.close().await;
    }
    println!("Kafka bootstrap servers: {}", infra.brokers);
    if let Some(pg) = infra.embedded_postgres() {
        println!("PostgreSQL: {}", pg.url().masked());
        println!("PostgreSQL data directory: {}", pg.data_dir().display());
    } else if infra.database_url.is_some() {
        println!("PostgreSQL: configured by DATABASE_URL");
    }
    println!("Press Ctrl-C to stop.");
    shutdown.cancelled().await;
    let data_dir = infra
        .embedded_postgres()
        .map(|pg| pg.data_dir().to_path_buf());
    infra.stop();
    if let Some(dir) = data_dir {
        println!("Stopped. The database is kept in {}", dir.display());
    }
    Ok(())
}
