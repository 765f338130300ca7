//! `credit-risk score` and `credit-risk train`: glue between the command line and the crates.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use rdkafka::producer::{FutureProducer, FutureRecord};
use schemas::{ModelAlias, ModelPromoted};
use scorer::decide::Explain;
use scorer::service::{ScorerService, ScorerSettings};
use trainer::xgb::{Mode, XgbParams};

use crate::settings::Settings;

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
pub async fn score(args: ScoreArgs, settings: Settings) -> anyhow::Result<()> {
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
    let svc = ScorerService {
        brokers: infra.brokers.clone(),
        topics: settings.infra.kafka.topics.clone(),
        session_timeout_ms: settings.infra.kafka.session_timeout_ms,
        settings: s,
        domain: settings.domain.clone(),
    };
    let result = scorer::service::run(svc, prometheus::Registry::new(), shutdown).await;
    infra.stop();
    let produced = result?;
    tracing::info!(produced, "Scorer stopped");
    Ok(())
}

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
pub async fn aggregate(args: AggregateArgs, settings: Settings) -> anyhow::Result<()> {
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
    portfolio_aggregator::db::migrate(&pool)
        .await
        .context("migrating the book's schema")?;
    let mut s = settings.aggregator.clone();
    if let Some(b) = args.metrics_bind {
        s.metrics_bind = b;
    }
    if let Some(b) = args.batch_size {
        s.batch_size = b;
    }
    let svc = portfolio_aggregator::service::AggregatorService {
        brokers: infra.brokers.clone(),
        topics: settings.infra.kafka.topics.clone(),
        session_timeout_ms: settings.infra.kafka.session_timeout_ms,
        settings: s,
        domain: settings.domain.clone(),
    };
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

/// Booster kind on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModeArg {
    /// Gradient boosting.
    Gbtree,
    /// Random forest.
    RandomForest,
}

/// Flags of `train`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["generated", "csv", "from_db"])))]
pub struct TrainArgs {
    /// Train on this many applications from the synthetic lender (labels drawn from each
    /// application's true PD) and write a servable feature-set-v1 artifact.
    #[arg(long, value_name = "N")]
    pub(crate) generated: Option<u64>,
    /// Cross-validate on any CSV with a binary target column (benchmarks on public data;
    /// reports, registers no model). Categorical text columns are encoded, missing values kept.
    #[arg(long, value_name = "PATH")]
    pub(crate) csv: Option<PathBuf>,
    /// Train from the loan book in PostgreSQL (DATABASE_URL, else the private database):
    /// matured loans labelled DPD > 90 within the performance window, features from the stored
    /// applications, evaluated out of time, registered in `models`.
    #[arg(long)]
    pub(crate) from_db: bool,
    /// Performance window of --from-db, months.
    #[arg(long, default_value_t = 12)]
    pub(crate) window_months: u32,
    /// Share of the latest origination months held out for the out-of-time evaluation.
    #[arg(long, default_value_t = 0.2)]
    pub(crate) oot_share: f64,
    /// With --from-db: promote the model to champion when it beats the current one on the
    /// same out-of-time loans (AUC margin) and its calibration and PSI pass; the comparison and
    /// an audit-log row are stored, and ModelPromoted is published when Kafka is configured.
    #[arg(long)]
    pub(crate) promote_if_better: bool,
    /// AUC margin a challenger needs over the champion.
    #[arg(long, default_value_t = 0.005)]
    pub(crate) auc_margin: f64,
    /// Target column of --csv (1 = bad).
    #[arg(long, default_value = "target")]
    pub(crate) target: String,
    /// Columns of --csv to leave out (comma-separated), e.g. an ID or prohibited attributes.
    #[arg(long, value_delimiter = ',')]
    pub(crate) drop: Vec<String>,
    /// Folds of the stratified cross-validation of --csv.
    #[arg(long, default_value_t = 5)]
    pub(crate) cv: usize,
    /// Row subsample per tree (0.8: less variance on small, noisy credit data).
    #[arg(long, default_value_t = 0.8)]
    pub(crate) subsample: f64,
    /// Column subsample per tree.
    #[arg(long, default_value_t = 0.8)]
    pub(crate) colsample_bytree: f64,
    /// Minimum hessian per child.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) min_child_weight: f64,
    /// Stop boosting when the validation log-loss (--csv: an inner fifth of the training folds;
    /// --from-db: every tenth training loan) has not improved for this many rounds (0: never).
    #[arg(long, default_value_t = 30)]
    pub(crate) early_stopping_rounds: u32,
    /// Print the report as one JSON object on the last line.
    #[arg(long)]
    pub(crate) json: bool,
    /// With --from-db on a generated history: the generator's `ground_truth.csv`; the report
    /// adds the AUC of the true PDs on the same out-of-time loans (the best any model can reach).
    #[arg(long, value_name = "PATH")]
    pub(crate) truth: Option<PathBuf>,
    /// Seed of the generated data, the folds and XGBoost.
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// Where to write the artifact.
    #[arg(long, default_value = "var/models/pd.json")]
    pub(crate) out: PathBuf,
    /// Model version (default: pd-<mode>-<unix time>).
    #[arg(long)]
    pub(crate) version: Option<String>,
    /// Gradient boosting or random forest.
    #[arg(long, value_enum, default_value_t = ModeArg::Gbtree)]
    pub(crate) mode: ModeArg,
    /// Boosting rounds (forest: trees); default 1,000 with --csv (early stopping decides),
    /// 300 with --generated.
    #[arg(long)]
    pub(crate) rounds: Option<u32>,
    /// Maximum depth.
    #[arg(long, default_value_t = 6)]
    pub(crate) max_depth: u32,
    /// Learning rate.
    #[arg(long, default_value_t = 0.05)]
    pub(crate) eta: f64,
    /// XGBoost threads.
    #[arg(long, default_value_t = 2)]
    pub(crate) nthread: u32,
    /// Publish the model as champion on the model-updates topic (needs KAFKA_BROKERS).
    #[arg(long)]
    pub(crate) publish: bool,
}

#[derive(clap::Parser)]
struct TrainCli {
    #[command(flatten)]
    args: TrainArgs,
}

impl TrainArgs {
    /// Train flags from words, as on the command line (`["train", "--from-db", …]`), for the
    /// commands that run a training themselves (demo, benchmarks).
    pub(crate) fn from_words<I, T>(words: I) -> anyhow::Result<Self>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::Parser;
        Ok(TrainCli::try_parse_from(words)?.args)
    }
}

/// `train --from-db` returning its report (benchmarks).
pub async fn train_report(
    args: TrainArgs,
    settings: Settings,
) -> anyhow::Result<serde_json::Value> {
    anyhow::ensure!(args.from_db, "train_report needs --from-db");
    let params = params_of(&args);
    crate::train_db::run(&args, params, &settings).await
}

fn params_of(args: &TrainArgs) -> XgbParams {
    let mode = match args.mode {
        ModeArg::Gbtree => Mode::GradientBoosting,
        ModeArg::RandomForest => Mode::RandomForest,
    };
    let rounds = args
        .rounds
        .unwrap_or(if args.csv.is_some() { 1_000 } else { 300 });
    XgbParams {
        mode,
        rounds,
        num_parallel_tree: if mode == Mode::RandomForest {
            rounds
        } else {
            1
        },
        max_depth: args.max_depth,
        eta: args.eta,
        nthread: args.nthread,
        subsample: args.subsample,
        colsample_bytree: args.colsample_bytree,
        min_child_weight: args.min_child_weight,
        seed: args.seed,
        early_stopping_rounds: (args.early_stopping_rounds > 0)
            .then_some(args.early_stopping_rounds),
        ..XgbParams::default()
    }
}

/// Train on generated data and write (and optionally publish) the artifact.
pub async fn train(args: TrainArgs, settings: Settings) -> anyhow::Result<()> {
    let params = params_of(&args);
    let mode = params.mode;
    if let Some(csv) = &args.csv {
        return cross_validate(csv, &args, params);
    }
    if args.from_db {
        return crate::train_db::run(&args, params, &settings)
            .await
            .map(|_| ());
    }
    let generated = args.generated.unwrap_or_default();
    let version = args.version.clone().unwrap_or_else(|| {
        format!(
            "pd-{}-{}",
            if mode == Mode::RandomForest {
                "rf"
            } else {
                "gbt"
            },
            chrono::Utc::now().timestamp()
        )
    });
    let started = std::time::Instant::now();
    let (n, seed, v) = (generated, args.seed, version.clone());
    let artifact = tokio::task::spawn_blocking(move || {
        trainer::quick::train_on_generated(&v, n, seed, &params)
    })
    .await?
    .map_err(|e| anyhow::anyhow!(e))?;
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&args.out, serde_json::to_vec(&artifact)?)
        .with_context(|| format!("writing {}", args.out.display()))?;
    let path = std::path::absolute(&args.out)?;
    println!(
        "Model {version} trained on {} generated applications in {:.1} s: {}",
        generated,
        started.elapsed().as_secs_f64(),
        path.display()
    );
    if args.publish {
        let Some(brokers) = settings.infra.kafka.brokers.as_deref() else {
            bail!("--publish needs KAFKA_BROKERS");
        };
        let producer: FutureProducer = runtime::kafka::producer_config(brokers).create()?;
        let promoted = ModelPromoted {
            model_name: artifact.model_name.clone(),
            model_version: version.clone(),
            alias: ModelAlias::Champion,
            feature_set_version: artifact.feature_set_version.clone(),
            artifact_uri: format!("file://{}", path.display()),
            promoted_at: chrono::Utc::now(),
            promoted_by: "credit-risk train".into(),
            previous_version: None,
        };
        let bytes = schemas::encode(&promoted)?;
        producer
            .send(
                FutureRecord::to(&settings.infra.kafka.topics.model_updates)
                    .key(&promoted.model_name)
                    .payload(&bytes),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| e)?;
        println!(
            "Published {version} as champion on {}",
            settings.infra.kafka.topics.model_updates
        );
    }
    Ok(())
}

/// `train --csv`: stratified k-fold cross-validation with a progress bar per fold.
fn cross_validate(
    csv: &std::path::Path,
    args: &TrainArgs,
    params: XgbParams,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let table =
        trainer::tabular::load(csv, &args.target, &args.drop).map_err(|e| anyhow::anyhow!(e))?;
    eprintln!(
        "{}: {} rows, {} features ({} categorical), bad rate {:.2}%",
        csv.display(),
        table.len(),
        table.columns.len(),
        table.categorical.len(),
        100.0 * table.labels.iter().sum::<f32>() as f64 / table.len() as f64
    );
    let bar = indicatif::ProgressBar::new(args.cv as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("cross-validating [{bar:30}] fold {pos}/{len}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let report = trainer::cv::cross_validate(
        &table.rows,
        &table.labels,
        table.columns.len(),
        &params,
        args.cv,
        args.seed,
        |done, _| bar.set_position(done as u64),
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        let mut v = serde_json::to_value(&report)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("seconds".into(), seconds.into());
            o.insert("model_version".into(), serde_json::Value::Null);
            o.insert("dataset".into(), csv.display().to_string().into());
        }
        println!("{v}");
    } else {
        println!(
            "{}-fold CV: AUC {:.4} ± {:.4}  Gini {:.4}  KS {:.4}  Brier {:.4}  ({} rows, {:.1} s)",
            report.folds,
            report.auc_mean,
            report.auc_std,
            report.gini,
            report.ks,
            report.brier,
            report.rows,
            seconds
        );
    }
    Ok(())
}
