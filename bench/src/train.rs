//! `train`: training from PostgreSQL at scale, beside the Python peer
//! (`pandas.read_sql` + `xgboost.train` with the same rounds, depth, learning rate and threads).
//!
//! The book is loaded directly (no Kafka, no day-ends): N generated applications, each booked as
//! a loan disbursed three days after it was submitted, labelled bad (first 90+ DPD within the
//! window) with its true PD. The clock then stands 13 months after the last disbursal, so every
//! loan has matured. The peer reads a table of the same loans' features (computed once by
//! `risk_core::features`), which spares it the feature computation our trainer does from the
//! stored applications.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use book::synthetic::{self, MaturedApplication};
use clap::Args;
use ingest::generator::sink::{Sink, SinkError, TruthRow};
use ingest::generator::{generate, GeneratorSettings};
use rand::{Rng, SeedableRng};
use risk_core::features;
use runtime::postgres::{connect, EmbeddedPostgres};
use schemas::{CustomerRegistered, Decision, LoanApplication, LoanEvent};
use serde_json::json;
use sqlx::PgPool;
use trainer::from_book::{train_from_book, BookTraining};
use trainer::promotion::PromotionSettings;
use trainer::xgb::{Mode, XgbParams};

use crate::settings::Settings;

/// The version the benchmark's model is registered under.
const VERSION: &str = "pd-bench";

/// Flags of `train`.
#[derive(Debug, Args)]
pub struct TrainBench {
    /// Matured loans in the book.
    #[arg(long, default_value_t = 1_000_000)]
    loans: u64,
    /// Boosting rounds (the peer's too; no early stopping on either side).
    #[arg(long, default_value_t = 300)]
    rounds: u32,
    /// Maximum depth.
    #[arg(long, default_value_t = 6)]
    max_depth: u32,
    /// Learning rate.
    #[arg(long, default_value_t = 0.1)]
    eta: f64,
    /// XGBoost threads.
    #[arg(long, default_value_t = 2)]
    nthread: u32,
    /// The Python peer (needs `pip install pandas sqlalchemy psycopg2-binary xgboost`).
    #[arg(long, default_value = "../shared/peers/py_train_from_pg.py")]
    peer: PathBuf,
    /// Skip the peer.
    #[arg(long)]
    skip_peer: bool,
}

/// Collects applications and their true PD, writing them to the book in chunks.
struct Loader {
    truth: csv::Writer<std::fs::File>,
    truth_path: PathBuf,
    apps: std::collections::HashMap<String, LoanApplication>,
    rows: Vec<(LoanApplication, bool)>,
    rng: rand_chacha::ChaCha8Rng,
    tx: tokio::sync::mpsc::Sender<Vec<(LoanApplication, bool)>>,
}

impl Sink for Loader {
    fn customer(&mut self, _: &CustomerRegistered) -> Result<(), SinkError> {
        Ok(())
    }
    fn application(&mut self, a: &LoanApplication) -> Result<(), SinkError> {
        self.apps.insert(a.application_id.clone(), a.clone());
        Ok(())
    }
    fn decision(&mut self, _: &Decision) -> Result<(), SinkError> {
        Ok(())
    }
    fn event(&mut self, _: &LoanEvent) -> Result<(), SinkError> {
        Ok(())
    }
    fn truth(&mut self, t: &TruthRow) -> Result<(), SinkError> {
        if let Some(app) = self.apps.remove(&t.application_id) {
            let bad = self.rng.gen::<f64>() < t.true_pd;
            self.truth
                .write_record([t.application_id.as_str(), &t.true_pd.to_string()])
                .map_err(|e| SinkError::Io {
                    path: self.truth_path.clone(),
                    source: std::io::Error::other(e),
                })?;
            self.rows.push((app, bad));
            if self.rows.len() >= 20_000 {
                self.flush()?;
            }
        }
        Ok(())
    }
    fn finish(&mut self) -> Result<(), SinkError> {
        self.truth.flush().map_err(|e| SinkError::Io {
            path: self.truth_path.clone(),
            source: e,
        })?;
        self.flush()
    }
}

impl Loader {
    fn flush(&mut self) -> Result<(), SinkError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        self.tx
            .blocking_send(std::mem::take(&mut self.rows))
            .map_err(|_| SinkError::Stopped)
    }
}

/// Write one chunk: applications, loans, statuses, and the peer's feature rows.
async fn write_chunk(pool: &PgPool, rows: &[(LoanApplication, bool)]) -> anyhow::Result<()> {
    let x: Vec<[f32; features::LEN]> = rows.iter().map(|(a, _)| features::compute(a)).collect();
    let loans: Vec<MaturedApplication<'_>> = rows
        .iter()
        .zip(&x)
        .map(|((application, defaulted), features)| MaturedApplication {
            application,
            defaulted: *defaulted,
            features,
        })
        .collect();
    synthetic::insert_matured_loans(pool, &loans).await?;
    Ok(())
}

/// What `credit-risk train --from-db --promote-if-better --early-stopping-rounds 0` trains with
/// these flags (the command's defaults for the rest), writing the artifact to `out` and
/// reporting the true-PD limit from `truth`.
fn request(b: &TrainBench, settings: &Settings, out: PathBuf, truth: PathBuf) -> BookTraining {
    BookTraining {
        window_months: 12,
        oot_share: 0.2,
        params: XgbParams {
            mode: Mode::GradientBoosting,
            rounds: b.rounds,
            num_parallel_tree: 1,
            max_depth: b.max_depth,
            eta: b.eta,
            nthread: b.nthread,
            subsample: 0.8,
            colsample_bytree: 0.8,
            min_child_weight: 1.0,
            seed: 42,
            early_stopping_rounds: None,
            ..XgbParams::default()
        },
        version: Some(VERSION.into()),
        out,
        promote_if_better: true,
        promotion: PromotionSettings {
            auc_margin: 0.005,
            ..PromotionSettings::default()
        },
        truth: Some(truth),
        scaling: settings.domain.scaling.clone(),
    }
}

/// Run the benchmark; prints one JSON line.
pub async fn run(b: TrainBench, settings: Settings) -> anyhow::Result<()> {
    let mut pg = EmbeddedPostgres::start_ephemeral()
        .await
        .context("starting a private PostgreSQL")?;
    let pool = connect(pg.url(), 4).await?;
    book::db::migrate(&pool).await?;
    synthetic::peer_table(&pool).await?;

    eprintln!("Loading {} matured loans …", b.loans);
    let started = Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let gen = GeneratorSettings {
        applications: b.loans,
        months: 24,
        performance_months: 0,
        seed: 2024,
        ..GeneratorSettings::default()
    };
    let end = gen.end();
    let domain = settings.domain.clone();
    let dir = tempfile::tempdir()?;
    let truth_path = dir.path().join("ground_truth.csv");
    let mut truth = csv::Writer::from_path(&truth_path)?;
    let truth_file = truth_path.clone();
    truth.write_record(["application_id", "true_pd"])?;
    let producer = tokio::task::spawn_blocking(move || {
        let mut sink = Loader {
            truth,
            truth_path: truth_file,
            apps: std::collections::HashMap::new(),
            rows: Vec::new(),
            rng: rand_chacha::ChaCha8Rng::seed_from_u64(7),
            tx,
        };
        generate(&gen, &domain, &mut sink, &mut |_, _| {})
    });
    let mut loaded = 0u64;
    while let Some(chunk) = rx.recv().await {
        write_chunk(&pool, &chunk).await?;
        loaded += chunk.len() as u64;
        if loaded % 200_000 < chunk.len() as u64 {
            eprintln!("  {loaded} loans");
        }
    }
    producer.await??;
    let as_of = end
        .checked_add_months(chrono::Months::new(13))
        .context("date")?;
    synthetic::closed_business_day(&pool, as_of).await?;
    synthetic::analyze(&pool).await?;
    let load_seconds = started.elapsed().as_secs_f64();
    eprintln!("Loaded {loaded} loans in {load_seconds:.0} s; training …");

    let out = dir.path().join("pd.json");
    let t = Instant::now();
    let report = train_from_book(&pool, &request(&b, &settings, out, truth_path), &()).await?;
    let ours_seconds = t.elapsed().as_secs_f64();
    eprintln!(
        "Model {}: {} matured loans ({} out of time), out-of-time AUC {:.4}; {:.1} s (read {:.1}, \
         train {:.1}, evaluate {:.1})",
        report.model_version,
        report.rows,
        report.out_of_time_rows,
        report.auc_mean,
        report.seconds,
        report.read_seconds,
        report.train_seconds,
        report.evaluate_seconds
    );
    let registered = synthetic::models_registered(&pool, VERSION).await?;
    anyhow::ensure!(registered == 1, "the model was not registered");

    let peer = if b.skip_peer {
        serde_json::Value::Null
    } else {
        eprintln!("Running the Python peer …");
        let dsn = pg
            .url()
            .expose()
            .replacen("postgres://", "postgresql+psycopg2://", 1);
        let out = Command::new("python3")
            .arg(&b.peer)
            .args(["--dsn", &dsn, "--query", synthetic::PEER_QUERY])
            .args(["--rounds", &b.rounds.to_string()])
            .args(["--depth", &b.max_depth.to_string()])
            .args(["--eta", &b.eta.to_string()])
            .args(["--nthread", &b.nthread.to_string()])
            .output()
            .with_context(|| format!("running {}", b.peer.display()))?;
        anyhow::ensure!(
            out.status.success(),
            "the peer failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(text.lines().last().unwrap_or("null"))?
    };
    pool.close().await;
    pg.stop();
    println!(
        "{}",
        json!({
            "loans": loaded,
            "load_seconds": (load_seconds * 10.0).round() / 10.0,
            "ours": {
                "total_s": (ours_seconds * 100.0).round() / 100.0,
                "read_s": report.read_seconds,
                "train_s": report.train_seconds,
                "evaluate_s": report.evaluate_seconds,
                "rows": report.rows,
                "out_of_time_rows": report.out_of_time_rows,
                "auc_out_of_time": report.auc_mean,
                "true_pd_limit": report.true_pd_limit,
                "calibration": report.calibration,
            },
            "peer": peer,
            "rounds": b.rounds,
            "max_depth": b.max_depth,
            "eta": b.eta,
            "nthread": b.nthread,
        })
    );
    Ok(())
}
