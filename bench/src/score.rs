//! `score`: inference latency (native vs XGBoost's C API) and end-to-end throughput and
//! latency through the embedded Kafka cluster. Prints one JSON line.

use clap::Args;
use risk_core::model::Artifact;
use scorer::decide::Explain;
use serde_json::json;
use trainer::xgb::XgbParams;

use crate::latency;
use crate::settings::Settings;
use crate::sys::scratch_dir;
use crate::throughput::{self, Offer};

/// Flags of `score`.
#[derive(Debug, Args)]
pub struct ScoreBench {
    /// Applications sent through the embedded cluster.
    #[arg(long, default_value_t = 100_000)]
    applications: u64,
    /// Which decisions carry reasons: none, non-approved or all.
    #[arg(long, default_value = "non-approved")]
    explain: Explain,
    /// Offer applications at this rate (per second) while scoring, for latency; default: all
    /// produced first, for throughput.
    #[arg(long)]
    rate: Option<u64>,
    /// Model artifact; default: train 300 trees of depth 6 on 50,000 generated applications.
    #[arg(long)]
    model: Option<std::path::PathBuf>,
    /// Skip the end-to-end part.
    #[arg(long, conflicts_with = "throughput_only")]
    latency_only: bool,
    /// Skip the single-application inference part.
    #[arg(long)]
    throughput_only: bool,
    /// Instead of the end-to-end run: a `credit-risk score` process of its own (the product's
    /// binary beside this one), offered applications as fast as it decides them for this many
    /// seconds, its resident memory sampled every ten.
    #[arg(long, conflicts_with = "rate")]
    soak_secs: Option<u64>,
    /// Brokers of the embedded cluster (1, as the Python peer's mock cluster).
    #[arg(long, default_value_t = 1)]
    brokers: i32,
}

/// Run the benchmark; prints one JSON line.
pub async fn run(args: ScoreBench, settings: Settings) -> anyhow::Result<()> {
    let dir = scratch_dir()?;
    let (artifact_path, artifact): (std::path::PathBuf, Artifact) = match &args.model {
        Some(p) => (p.clone(), serde_json::from_slice(&std::fs::read(p)?)?),
        None => {
            eprintln!("Training a 300-tree depth-6 model on 50,000 generated applications…");
            let params = XgbParams {
                rounds: 300,
                max_depth: 6,
                ..XgbParams::default()
            };
            let a = tokio::task::spawn_blocking(move || {
                trainer::quick::train_on_generated("bench-300x6", 50_000, 7, &params)
            })
            .await?
            .map_err(|e| anyhow::anyhow!(e))?;
            let p = dir.join("bench-model.json");
            std::fs::write(&p, serde_json::to_vec(&a)?)?;
            (p, a)
        }
    };
    let latency = if args.throughput_only {
        serde_json::Value::Null
    } else {
        tokio::task::spawn_blocking({
            let artifact = artifact.clone();
            let domain = settings.domain.clone();
            move || latency::measure(&artifact, &domain)
        })
        .await??
    };
    let mut report = json!({ "latency": latency, "explain": format!("{:?}", args.explain) });
    if let Some(seconds) = args.soak_secs {
        let figures = throughput::soak(args.brokers, args.explain, &artifact_path, seconds).await?;
        if let Some(obj) = report.as_object_mut() {
            obj.insert("soak".into(), figures);
        }
    } else if !args.latency_only {
        let offer = Offer {
            brokers: args.brokers,
            applications: args.applications,
            rate: args.rate,
            explain: args.explain,
        };
        let e2e = throughput::end_to_end(&offer, &settings, &artifact_path).await?;
        if let (Some(obj), Some(e)) = (report.as_object_mut(), e2e.as_object()) {
            for (k, v) in e {
                obj.insert(k.clone(), v.clone());
            }
        }
    }
    println!("{report}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
