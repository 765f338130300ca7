//! `credit-risk`: the one binary. Parses the command line and hands over to the crates.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

mod bench;
mod bench_aggregate;
mod bench_http;
mod bench_train;
mod demo;
mod edge_cmd;
mod generate;
mod ingest_cmd;
mod settings;
mod stages;
mod train_db;

use settings::Settings;

/// Real-time credit risk: Kafka scoring, the loan book, NPA and IFRS 9 accounting.
#[derive(Debug, Parser)]
#[command(name = "credit-risk", version, about)]
struct Cli {
    /// Settings file (TOML); environment variables `CREDIT__SECTION__KEY` override it.
    #[arg(long, global = true, env = "CREDIT_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run Kafka and PostgreSQL for the other stages: the configured servers are checked, or an
    /// embedded Kafka cluster (topics created) and a private PostgreSQL are started. Prints the
    /// addresses and runs until Ctrl-C.
    Infra {
        /// Kafka only, no PostgreSQL.
        #[arg(long)]
        kafka_only: bool,
    },
    /// The whole product in one process on embedded Kafka and PostgreSQL: a loaded history, a
    /// trained and promoted model, then a live stream of applications and loan events, with the
    /// dashboard and API. Prints the URLs and API keys; Ctrl-C stops.
    Demo(demo::DemoArgs),
    /// Serve the REST API, the dashboard and /metrics (KAFKA_BROKERS and DATABASE_URL, else
    /// embedded ones).
    Serve(edge_cmd::ServeArgs),
    /// API keys: create (printed once, stored hashed), list, revoke.
    #[command(subcommand)]
    Keys(edge_cmd::KeysCommand),
    /// Generate a synthetic loan history with known ground truth (a true PD per application),
    /// to files or to the Kafka topics; prints a summary with the best achievable AUC.
    Generate(generate::GenerateArgs),
    /// Applications as an LOS sends them (JSON on the raw topic, or a JSON Lines file) checked
    /// into the Avro applications topic; the rest dead-lettered with the reason.
    Ingest(ingest_cmd::IngestArgs),
    /// Score applications from Kafka into decisions with reason codes (consumer group; scale
    /// out by running more).
    Score(stages::ScoreArgs),
    /// Keep the loan book in PostgreSQL from decisions and loan events: delinquency, IRAC
    /// classes, IFRS 9 stages, provisions, ECL and the daily portfolio snapshot (consumer group;
    /// exactly-once into PostgreSQL).
    Aggregate(stages::AggregateArgs),
    /// Train XGBoost: from the loan book in PostgreSQL (out-of-time evaluation, registry,
    /// promotion when better), a servable artifact from generated data, or stratified
    /// cross-validation on any CSV.
    Train(stages::TrainArgs),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Print the effective settings (defaults < file < environment) as TOML; secrets redacted.
    Config {
        /// Print the compiled-in defaults only.
        #[arg(long)]
        defaults: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings: Settings = match &cli.command {
        Command::Config { defaults: true } => Settings::default(),
        _ => runtime::settings::load(cli.config.as_deref())?,
    };
    runtime::telemetry::init(&settings.infra.telemetry);
    match cli.command {
        Command::Config { .. } => {
            let mut shown = settings;
            if shown.infra.database.url.is_some() {
                shown.infra.database.url = Some(runtime::settings::Secret::new("<redacted>"));
            }
            print!(
                "{}",
                toml::to_string_pretty(&shown).context("rendering settings")?
            );
            Ok(())
        }
        Command::Infra { kafka_only } => {
            tokio::runtime::Runtime::new()?.block_on(infra(settings, !kafka_only))
        }
        Command::Generate(args) => generate::run(args, settings),
        Command::Demo(args) => tokio::runtime::Runtime::new()?.block_on(demo::run(args, settings)),
        Command::Serve(args) => {
            tokio::runtime::Runtime::new()?.block_on(edge_cmd::serve(args, settings))
        }
        Command::Keys(k) => tokio::runtime::Runtime::new()?.block_on(edge_cmd::keys(k, settings)),
        Command::Ingest(args) => {
            tokio::runtime::Runtime::new()?.block_on(ingest_cmd::run(args, settings))
        }
        Command::Score(args) => {
            tokio::runtime::Runtime::new()?.block_on(stages::score(args, settings))
        }
        Command::Aggregate(args) => {
            tokio::runtime::Runtime::new()?.block_on(stages::aggregate(args, settings))
        }
        Command::Train(args) => {
            tokio::runtime::Runtime::new()?.block_on(stages::train(args, settings))
        }
        Command::Bench(b) => tokio::runtime::Runtime::new()?.block_on(bench::run(b, settings)),
    }
}

async fn infra(settings: Settings, with_database: bool) -> anyhow::Result<()> {
    let shutdown = runtime::shutdown::on_signals();
    let infra = runtime::infra::Infra::start(&settings.infra, with_database)
        .await
        .context("starting infrastructure")?;
    if infra.embedded_kafka().is_none() {
        check_kafka(&infra.brokers).await?;
    }
    if let (None, Some(url)) = (infra.embedded_postgres(), &infra.database_url) {
        let pool = runtime::postgres::connect(url, 1).await?;
        sqlx::query("SELECT 1")
            .execute(&pool)
            .await
            .context("checking PostgreSQL")?;
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

/// Fetch cluster metadata from configured brokers, so a wrong address fails here, clearly.
async fn check_kafka(brokers: &str) -> anyhow::Result<()> {
    let brokers = brokers.to_string();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        use rdkafka::producer::{BaseProducer, Producer};
        let producer: BaseProducer = runtime::kafka::producer_config(&brokers).create()?;
        let metadata = producer
            .client()
            .fetch_metadata(None, std::time::Duration::from_secs(10))
            .with_context(|| format!("no Kafka broker answers at {brokers}"))?;
        tracing::info!(brokers = metadata.brokers().len(), "Kafka reachable");
        Ok(())
    })
    .await?
}
