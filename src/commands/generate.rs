//! `credit-risk generate`: the synthetic loan history, to files or Kafka.

use std::path::PathBuf;

use anyhow::{bail, Context};
use chrono::NaiveDate;
use clap::{Args, ValueEnum};
use indicatif::ProgressBar;
use ingest::generator::kafka::{GeneratorTopics, KafkaSink};
use ingest::generator::sink::{ApplicationsOnly, FileFormat, FileSink, Sink, TruthSink};
use ingest::generator::{generate, GeneratorSettings};

use platform::Settings;

/// Output format of the files.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// JSON Lines.
    Jsonl,
    /// Avro object container files.
    Avro,
}

/// Flags of `generate`; each overrides the `[generator]` settings.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Applications to generate.
    #[arg(long, short = 'n')]
    applications: Option<u64>,
    /// Seed; the same seed and settings give byte-identical output.
    #[arg(long)]
    seed: Option<u64>,
    /// First business date (YYYY-MM-DD).
    #[arg(long)]
    start: Option<NaiveDate>,
    /// Months over which applications arrive.
    #[arg(long)]
    months: Option<u32>,
    /// 12-month default rate of disbursed loans to calibrate to (e.g. 0.05).
    #[arg(long)]
    default_rate: Option<f64>,
    /// Share of applicants without a bureau record.
    #[arg(long)]
    thin_file_share: Option<f64>,
    /// Directory for the files (and the ground truth, also with --to-kafka).
    #[arg(long, default_value = "var/generated")]
    out: PathBuf,
    /// File format.
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    format: Format,
    /// Publish to the Kafka topics named in the settings instead of writing files
    /// (needs KAFKA_BROKERS: an embedded cluster would vanish with this process).
    #[arg(long)]
    to_kafka: bool,
    /// Only customers and applications (and the ground truth): a stream of new applications
    /// for the scorer, without the legacy decisions and loan events.
    #[arg(long)]
    applications_only: bool,
    /// Print the summary as one JSON object on the last line.
    #[arg(long)]
    json: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

fn apply(args: &GenerateArgs, mut g: GeneratorSettings) -> GeneratorSettings {
    g.applications = args.applications.unwrap_or(g.applications);
    g.seed = args.seed.unwrap_or(g.seed);
    g.start = args.start.unwrap_or(g.start);
    g.months = args.months.unwrap_or(g.months);
    g.target_default_rate = args.default_rate.unwrap_or(g.target_default_rate);
    g.thin_file_share = args.thin_file_share.unwrap_or(g.thin_file_share);
    g
}

/// Run the command.
pub fn run(args: GenerateArgs, settings: Settings) -> anyhow::Result<()> {
    let generator = apply(&args, settings.generator.clone());
    generator.validate()?;
    let mut sink: Box<dyn Sink> = if args.to_kafka {
        let Some(brokers) = settings.infra.kafka.brokers.as_deref() else {
            bail!(
                "--to-kafka needs KAFKA_BROKERS: an embedded cluster would vanish with this \
                 process (start one that lasts with `credit-risk infra`)"
            );
        };
        let topics = GeneratorTopics::from(&settings.infra.kafka.topics);
        let mut config = runtime::kafka::producer_config(brokers);
        config.set("queue.buffering.max.messages", "200000");
        Box::new(KafkaSink::new(
            &config,
            topics,
            TruthSink::create(&args.out)?,
        )?)
    } else {
        let format = match args.format {
            Format::Jsonl => FileFormat::Jsonl,
            Format::Avro => FileFormat::Avro,
        };
        Box::new(
            FileSink::create(&args.out, format, generator.seed)
                .with_context(|| format!("creating files in {}", args.out.display()))?,
        )
    };
    if args.applications_only {
        sink = Box::new(ApplicationsOnly(sink));
    }
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        super::bar(
            0,
            "{msg} [{bar:40}] {pos}/{len} business days ({eta} left)",
            "generating",
        )
    };
    let mut progress = |done: u64, total: u64| {
        if done == 1 {
            bar.set_length(total);
        }
        if done.is_multiple_of(7) || done == total {
            bar.set_position(done);
        }
    };
    let summary = generate(&generator, &settings.domain, sink.as_mut(), &mut progress)?;
    bar.finish_and_clear();
    if args.to_kafka {
        eprintln!(
            "Published to Kafka; ground truth in {}",
            args.out.join("ground_truth.csv").display()
        );
    } else {
        eprintln!("Wrote {}", args.out.display());
    }
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print!("{}", summary.render());
    }
    Ok(())
}
