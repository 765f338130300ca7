//! `credit-risk train`: from the loan book (registry and promotion), a servable artifact from
//! generated data, or cross-validation on any CSV.

use std::path::PathBuf;

use anyhow::bail;
use book::registry::Promotion;
use clap::Args;
use indicatif::ProgressBar;
use platform::training::{summary, train_and_announce, Announcer};
use platform::Settings;
use rdkafka::producer::FutureProducer;
use runtime::infra::Need;
use trainer::from_book::{BookTraining, Progress};
use trainer::promotion::PromotionSettings;
use trainer::xgb::{Mode, XgbParams};

/// Flags of `train`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["generated", "csv", "from_db"])))]
pub struct TrainArgs {
    /// Train on this many applications from the synthetic lender (labels drawn from each
    /// application's true PD) and write a servable feature-set-v1 artifact.
    #[arg(long, value_name = "N")]
    generated: Option<u64>,
    /// Cross-validate on any CSV with a binary target column (benchmarks on public data;
    /// reports, registers no model). Categorical text columns are encoded, missing values kept.
    #[arg(long, value_name = "PATH")]
    csv: Option<PathBuf>,
    /// Train from the loan book in PostgreSQL (needs DATABASE_URL):
    /// matured loans labelled DPD > 90 within the performance window, features from the stored
    /// applications, evaluated out of time, registered in `models`.
    #[arg(long)]
    from_db: bool,
    /// Performance window of --from-db, months.
    #[arg(long, default_value_t = 12)]
    window_months: u32,
    /// Share of the latest origination months held out for the out-of-time evaluation.
    #[arg(long, default_value_t = 0.2)]
    oot_share: f64,
    /// With --from-db: promote the model to champion when it beats the current one on the
    /// same out-of-time loans (AUC margin) and its calibration and PSI pass; the comparison and
    /// an audit-log row are stored, and ModelPromoted is published when Kafka is configured.
    #[arg(long)]
    promote_if_better: bool,
    /// AUC margin a challenger needs over the champion.
    #[arg(long, default_value_t = 0.005)]
    auc_margin: f64,
    /// Target column of --csv (1 = bad).
    #[arg(long, default_value = "target")]
    target: String,
    /// Columns of --csv to leave out (comma-separated), e.g. an ID or prohibited attributes.
    #[arg(long, value_delimiter = ',')]
    drop: Vec<String>,
    /// Folds of the stratified cross-validation of --csv.
    #[arg(long, default_value_t = 5)]
    cv: usize,
    /// Row subsample per tree [default: 0.8, less variance on small, noisy credit data].
    #[arg(long)]
    subsample: Option<f64>,
    /// Column subsample per tree [default: 0.8].
    #[arg(long)]
    colsample_bytree: Option<f64>,
    /// Minimum hessian per child [default: 1].
    #[arg(long)]
    min_child_weight: Option<f64>,
    /// Stop boosting when the validation log-loss (--csv: an inner fifth of the training folds;
    /// --from-db: every tenth training loan) has not improved for this many rounds (0: never)
    /// [default: 30].
    #[arg(long)]
    early_stopping_rounds: Option<u32>,
    /// Print the report as one JSON object on the last line.
    #[arg(long)]
    json: bool,
    /// With --from-db on a generated history: the generator's `ground_truth.csv`; the report
    /// adds the AUC of the true PDs on the same out-of-time loans (the best any model can reach).
    #[arg(long, value_name = "PATH")]
    truth: Option<PathBuf>,
    /// Seed of the generated data, the folds and XGBoost.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Where to write the artifact.
    #[arg(long, default_value = "var/models/pd.json")]
    out: PathBuf,
    /// Model version (default: pd-<mode>-<unix time>).
    #[arg(long)]
    version: Option<String>,
    /// Gradient boosting or random forest: gbtree or random-forest.
    #[arg(long, default_value = "gbtree")]
    mode: Mode,
    /// Boosting rounds (forest: trees); default 1,000 with --csv (early stopping decides),
    /// 300 with --generated.
    #[arg(long)]
    rounds: Option<u32>,
    /// Maximum depth [default: 6].
    #[arg(long)]
    max_depth: Option<u32>,
    /// Learning rate [default: 0.05].
    #[arg(long)]
    eta: Option<f64>,
    /// XGBoost threads [default: 2].
    #[arg(long)]
    nthread: Option<u32>,
    /// Publish the model as champion on the model-updates topic (needs KAFKA_BROKERS).
    #[arg(long)]
    publish: bool,
}

/// Train as the flags say.
pub async fn run(args: TrainArgs, settings: Settings) -> anyhow::Result<()> {
    let params = params_of(&args);
    if let Some(csv) = &args.csv {
        return cross_validate(csv, &args, params);
    }
    if args.from_db {
        return from_book(&args, params, &settings).await;
    }
    generated(&args, params, &settings).await
}

/// XGBoost's parameters: the `train` defaults for credit data, with the flags given.
fn params_of(args: &TrainArgs) -> XgbParams {
    let mode = args.mode;
    let rounds = args
        .rounds
        .unwrap_or(if args.csv.is_some() { 1_000 } else { 300 });
    let mut p = XgbParams::for_credit(rounds);
    p.mode = mode;
    if mode == Mode::RandomForest {
        p.num_parallel_tree = rounds;
    }
    p.seed = args.seed;
    p.max_depth = args.max_depth.unwrap_or(p.max_depth);
    p.eta = args.eta.unwrap_or(p.eta);
    p.nthread = args.nthread.unwrap_or(p.nthread);
    p.subsample = args.subsample.unwrap_or(p.subsample);
    p.colsample_bytree = args.colsample_bytree.unwrap_or(p.colsample_bytree);
    p.min_child_weight = args.min_child_weight.unwrap_or(p.min_child_weight);
    if let Some(n) = args.early_stopping_rounds {
        p.early_stopping_rounds = (n > 0).then_some(n);
    }
    p
}

/// Progress bars of a training from the book: rows read, then boosting rounds.
struct Bars {
    read: ProgressBar,
    train: ProgressBar,
}

fn bar(what: &str) -> ProgressBar {
    super::bar(0, "{msg:>10} [{bar:30}] {pos}/{len} {elapsed}", what)
}

impl Progress for Bars {
    fn read(&self, rows: u64) {
        self.read.set_position(rows);
    }

    fn round(&self, done: u32, planned: u32) {
        if !self.read.is_finished() {
            self.read.finish();
        }
        self.train.set_length(u64::from(planned));
        self.train.set_position(u64::from(done));
    }
}

/// `train --from-db`: the book's matured loans to the registry; a promotion is announced when
/// Kafka is configured.
async fn from_book(args: &TrainArgs, params: XgbParams, settings: &Settings) -> anyhow::Result<()> {
    let mut request = BookTraining::new(args.out.clone(), params, settings.domain.scaling.clone());
    request.window_months = args.window_months;
    request.oot_share = args.oot_share;
    request.version.clone_from(&args.version);
    request.promote_if_better = args.promote_if_better;
    request.promotion = PromotionSettings {
        auc_margin: args.auc_margin,
        ..PromotionSettings::default()
    };
    request.truth.clone_from(&args.truth);
    let (infra, pool) = super::open_book(
        settings,
        Need::Optional,
        settings.infra.database.max_connections,
    )
    .await?;
    let producer: Option<FutureProducer> = match settings.infra.kafka.brokers.as_deref() {
        Some(brokers) => Some(runtime::kafka::producer_config(brokers).create()?),
        None => None,
    };
    let bars = Bars {
        read: bar("read"),
        train: bar("train"),
    };
    let result = train_and_announce(
        &pool,
        &request,
        &bars,
        producer.as_ref().map(|producer| Announcer {
            producer,
            topic: &settings.infra.kafka.topics.model_updates,
        }),
    )
    .await;
    bars.train.finish();
    pool.close().await;
    infra.stop();
    let report = result?;
    eprint!("{}", summary(&report));
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(())
}

/// `train --generated`: a servable artifact from the synthetic lender, published as champion
/// with `--publish`.
async fn generated(args: &TrainArgs, params: XgbParams, settings: &Settings) -> anyhow::Result<()> {
    let generated = args.generated.unwrap_or_default();
    let version = args
        .version
        .clone()
        .unwrap_or_else(|| trainer::artifact::new_version(params.mode));
    let started = std::time::Instant::now();
    let (n, seed, v) = (generated, args.seed, version.clone());
    let artifact = tokio::task::spawn_blocking(move || {
        trainer::quick::train_on_generated(&v, n, seed, &params)
    })
    .await??;
    let uri = trainer::artifact::write(&args.out, &artifact)?;
    println!(
        "Model {version} trained on {generated} generated applications in {:.1} s: {}",
        started.elapsed().as_secs_f64(),
        uri.trim_start_matches("file://")
    );
    if args.publish {
        let Some(brokers) = settings.infra.kafka.brokers.as_deref() else {
            bail!("--publish needs KAFKA_BROKERS");
        };
        let producer: FutureProducer = runtime::kafka::producer_config(brokers).create()?;
        let promotion = Promotion::unregistered_champion(&artifact, uri);
        scorer::models::announce(
            &producer,
            &settings.infra.kafka.topics.model_updates,
            &promotion.announcement(trainer::from_book::ACTOR),
        )
        .await?;
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
    let table = trainer::tabular::load(csv, &args.target, &args.drop)?;
    eprintln!(
        "{}: {} rows, {} features ({} categorical), bad rate {:.2}%",
        csv.display(),
        table.len(),
        table.columns.len(),
        table.categorical.len(),
        100.0 * table.labels.iter().sum::<f32>() as f64 / table.len() as f64
    );
    let bar = super::bar(
        args.cv as u64,
        "cross-validating [{bar:30}] fold {pos}/{len}",
        "",
    );
    let report = trainer::cv::cross_validate(
        &table.rows,
        &table.labels,
        table.columns.len(),
        &params,
        args.cv,
        args.seed,
        |done, _| bar.set_position(done as u64),
    )?;
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
        println!("{}", report.render(seconds));
    }
    Ok(())
}
