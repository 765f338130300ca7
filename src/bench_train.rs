//! `credit-risk bench train`: training from PostgreSQL at scale, beside the Python peer
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
use clap::Args;
use ingest::generator::sink::{Sink, SinkError, TruthRow};
use ingest::generator::{generate, GeneratorSettings};
use rand::{Rng, SeedableRng};
use risk_core::features;
use runtime::postgres::{connect, EmbeddedPostgres};
use schemas::{CustomerRegistered, Decision, LoanApplication, LoanEvent};
use serde_json::json;
use sqlx::PgPool;

use crate::settings::Settings;

/// Flags of `bench train`.
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
    let ids: Vec<&str> = rows
        .iter()
        .map(|(a, _)| a.application_id.as_str())
        .collect();
    let customers: Vec<&str> = rows.iter().map(|(a, _)| a.customer_id.as_str()).collect();
    let at: Vec<chrono::DateTime<chrono::Utc>> = rows.iter().map(|(a, _)| a.submitted_at).collect();
    let purpose: Vec<&str> = rows.iter().map(|(a, _)| a.loan.purpose.as_str()).collect();
    let amount: Vec<i64> = rows.iter().map(|(a, _)| a.loan.amount).collect();
    let tenure: Vec<i32> = rows.iter().map(|(a, _)| a.loan.tenure_months).collect();
    let rate: Vec<i32> = rows.iter().map(|(a, _)| a.loan.interest_rate_bps).collect();
    let collateral: Vec<Option<i64>> = rows.iter().map(|(a, _)| a.loan.collateral_value).collect();
    let payload: Vec<String> = rows
        .iter()
        .map(|(a, _)| serde_json::to_string(a))
        .collect::<Result<_, _>>()?;
    let bad: Vec<bool> = rows.iter().map(|(_, b)| *b).collect();
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO applications (application_id, customer_id, submitted_at, channel, purpose, \
           amount, tenure_months, interest_rate_bps, collateral_value, payload) \
         SELECT id, c, at, 'bench', p, amt, t, r, col, pl::jsonb \
         FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::int8[], \
           $6::int4[], $7::int4[], $8::int8[], $9::text[]) AS x(id, c, at, p, amt, t, r, col, pl)",
    )
    .bind(&ids)
    .bind(&customers)
    .bind(&at)
    .bind(&purpose)
    .bind(&amount)
    .bind(&tenure)
    .bind(&rate)
    .bind(&collateral)
    .bind(&payload)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO loans (loan_id, application_id, customer_id, principal, interest_rate_bps, \
           tenure_months, emi, instalments, disbursed_on, first_due_on, maturity_on, \
           collateral_value, purpose) \
         SELECT 'L' || application_id, application_id, customer_id, amount, interest_rate_bps, \
           tenure_months, amount / tenure_months, tenure_months, submitted_at::date + 3, \
           submitted_at::date + 33, submitted_at::date + 33 + 30 * tenure_months, \
           collateral_value, purpose \
         FROM applications WHERE application_id = ANY($1)",
    )
    .bind(&ids)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO loan_status (loan_id, customer_id, state, outstanding_principal, \
           first_dpd90_on, max_dpd) \
         SELECT 'L' || id, c, 'CLOSED', 0, CASE WHEN b THEN at::date + 123 END, \
           CASE WHEN b THEN 91 ELSE 0 END \
         FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bool[]) AS x(id, c, at, b)",
    )
    .bind(&ids)
    .bind(&customers)
    .bind(&at)
    .bind(&bad)
    .execute(&mut *tx)
    .await?;
    // The peer's table: one float column per feature (NULL when missing) and the target.
    let x: Vec<[f32; features::LEN]> = rows.iter().map(|(a, _)| features::compute(a)).collect();
    let mut q = String::from("INSERT INTO bench_train_rows SELECT * FROM unnest(");
    for j in 0..features::LEN {
        q.push_str(&format!("${}::float4[], ", j + 1));
    }
    q.push_str(&format!("${}::int4[])", features::LEN + 1));
    let mut query = sqlx::query(&q);
    for j in 0..features::LEN {
        let col: Vec<Option<f32>> = x
            .iter()
            .map(|r| Some(r[j]).filter(|v| !v.is_nan()))
            .collect();
        query = query.bind(col);
    }
    let target: Vec<i32> = bad.iter().map(|b| i32::from(*b)).collect();
    query.bind(target).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// Run the benchmark; prints one JSON line.
pub async fn run(b: TrainBench, mut settings: Settings) -> anyhow::Result<()> {
    let mut pg = EmbeddedPostgres::start_ephemeral()
        .await
        .context("starting a private PostgreSQL")?;
    let pool = connect(pg.url(), 4).await?;
    portfolio_aggregator::db::migrate(&pool).await?;
    let cols: Vec<String> = features::names()
        .iter()
        .map(|n| format!("{n} real"))
        .collect();
    sqlx::query(&format!(
        "CREATE UNLOGGED TABLE bench_train_rows ({}, target int NOT NULL)",
        cols.join(", ")
    ))
    .execute(&pool)
    .await?;

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
    sqlx::query(
        "INSERT INTO business_days (business_date, partitions, ticks, closed_at) \
         VALUES ($1, 1, '{0}', now())",
    )
    .bind(as_of)
    .execute(&pool)
    .await?;
    sqlx::query("ANALYZE").execute(&pool).await?;
    let load_seconds = started.elapsed().as_secs_f64();
    eprintln!("Loaded {loaded} loans in {load_seconds:.0} s; training …");

    settings.infra.database.url = Some(pg.url().clone());
    let out = dir.path().join("pd.json");
    let args = crate::stages::TrainArgs::from_words([
        "train".into(),
        "--from-db".into(),
        "--promote-if-better".into(),
        "--rounds".into(),
        b.rounds.to_string(),
        "--max-depth".into(),
        b.max_depth.to_string(),
        "--eta".into(),
        b.eta.to_string(),
        "--nthread".into(),
        b.nthread.to_string(),
        "--early-stopping-rounds".into(),
        "0".into(),
        "--version".into(),
        "pd-bench".into(),
        "--out".into(),
        out.display().to_string(),
        "--truth".into(),
        truth_path.display().to_string(),
    ])?;
    let t = Instant::now();
    let report = crate::stages::train_report(args, settings.clone()).await?;
    let ours_seconds = t.elapsed().as_secs_f64();
    let registered: i64 =
        sqlx::query_scalar("SELECT count(*) FROM models WHERE model_version = 'pd-bench'")
            .fetch_one(&pool)
            .await?;
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
            .args(["--dsn", &dsn, "--query", "SELECT * FROM bench_train_rows"])
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
    let pick = |k: &str| report.get(k).cloned().unwrap_or(serde_json::Value::Null);
    println!(
        "{}",
        json!({
            "loans": loaded,
            "load_seconds": (load_seconds * 10.0).round() / 10.0,
            "ours": {
                "total_s": (ours_seconds * 100.0).round() / 100.0,
                "read_s": pick("read_seconds"),
                "train_s": pick("train_seconds"),
                "evaluate_s": pick("evaluate_seconds"),
                "rows": pick("rows"),
                "out_of_time_rows": pick("out_of_time_rows"),
                "auc_out_of_time": pick("auc_mean"),
                "true_pd_limit": pick("true_pd_limit"),
                "calibration": pick("calibration"),
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
