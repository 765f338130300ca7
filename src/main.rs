//! `credit-risk`: the one binary. Parses the command line and hands each command's typed
//! request to the crates.
//!
//! # Layout
//! `commands/`: one file per command (`infra`, `demo`, `serve`, `keys`, `generate`, `ingest`,
//! `score`, `aggregate`, `train`, `config`); their shared start-up in `commands/mod.rs`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use platform::Settings;

mod commands;

use commands::{aggregate, demo, generate, ingest, keys, score, serve, train};

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
    /// Serve the REST API, the dashboard and /metrics (needs KAFKA_BROKERS and DATABASE_URL;
    /// only `demo` and `infra` start embedded servers).
    Serve(serve::ServeArgs),
    /// API keys: create (printed once, stored hashed), list, revoke.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Generate a synthetic loan history with known ground truth (a true PD per application),
    /// to files or to the Kafka topics; prints a summary with the best achievable AUC.
    Generate(generate::GenerateArgs),
    /// Applications as an LOS sends them (JSON on the raw topic, or a JSON Lines file) checked
    /// into the Avro applications topic; the rest dead-lettered with the reason.
    Ingest(ingest::IngestArgs),
    /// Score applications from Kafka into decisions with reason codes (consumer group; scale
    /// out by running more).
    Score(score::ScoreArgs),
    /// Keep the loan book in PostgreSQL from decisions and loan events: delinquency, IRAC
    /// classes, IFRS 9 stages, provisions, ECL and the daily portfolio snapshot (consumer group;
    /// exactly-once into PostgreSQL).
    Aggregate(aggregate::AggregateArgs),
    /// Train XGBoost: from the loan book in PostgreSQL (out-of-time evaluation, registry,
    /// promotion when better), a servable artifact from generated data, or stratified
    /// cross-validation on any CSV.
    Train(train::TrainArgs),
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
    let run = || tokio::runtime::Runtime::new();
    match cli.command {
        Command::Config { .. } => commands::config::run(settings),
        Command::Generate(args) => generate::run(args, settings),
        Command::Infra { kafka_only } => {
            run()?.block_on(commands::infra::run(settings, kafka_only))
        }
        Command::Demo(args) => run()?.block_on(demo::run(args, settings)),
        Command::Serve(args) => run()?.block_on(serve::run(args, settings)),
        Command::Keys(k) => run()?.block_on(keys::run(k, settings)),
        Command::Ingest(args) => run()?.block_on(ingest::run(args, settings)),
        Command::Score(args) => run()?.block_on(score::run(args, settings)),
        Command::Aggregate(args) => run()?.block_on(aggregate::run(args, settings)),
        Command::Train(args) => run()?.block_on(train::run(args, settings)),
    }
}
