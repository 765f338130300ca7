//! `credit-risk-bench`: the platform's benchmarks, each printing one JSON line.
//!
//! - `score`: inference latency, end-to-end throughput and latency through Kafka, or a soak of
//!   the product's scorer process.
//! - `aggregate`: events applied per second with exactly-once commits, the day-end and the
//!   summary read on a large book, optionally the summary through the HTTP edge.
//! - `train`: N matured loans from PostgreSQL to a registered model, beside the Python peer.
//!
//! # Layout
//! `score` (with `latency` and `throughput`), `aggregate` (with `http`) and `train`, one per
//! command; `workload` (generated applications, the embedded cluster), `sys` (memory readings,
//! child processes, scratch directories) and `settings` below them.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

mod aggregate;
mod http;
mod latency;
mod score;
mod settings;
mod sys;
mod throughput;
mod train;
mod workload;

use settings::Settings;

/// Benchmarks of the credit-risk platform.
#[derive(Debug, Parser)]
#[command(name = "credit-risk-bench", version, about)]
struct Cli {
    /// Settings file (TOML); environment variables `CREDIT__SECTION__KEY` override it.
    #[arg(long, global = true, env = "CREDIT_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The scorer: inference latency and end-to-end throughput.
    Score(score::ScoreBench),
    /// The aggregator: events applied per second with exactly-once commits, day-end time and
    /// summary read time on a large book.
    Aggregate(aggregate::AggregateBench),
    /// The trainer: N matured loans from PostgreSQL to a registered model, beside the Python
    /// peer (pandas read_sql + xgboost.train).
    Train(train::TrainBench),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings: Settings = runtime::settings::load(cli.config.as_deref())?;
    runtime::telemetry::init(&settings.infra.telemetry);
    let runtime = tokio::runtime::Runtime::new()?;
    match cli.command {
        Command::Score(args) => runtime.block_on(score::run(args, settings)),
        Command::Aggregate(args) => runtime.block_on(aggregate::run(args, settings)),
        Command::Train(args) => runtime.block_on(train::run(args, settings)),
    }
}
