//! Training from the book as the commands and the demo run it: the trainer's typed run, the
//! promotion announced on the model-updates topic when Kafka is configured, and the report as
//! text.

use std::fmt::Write as _;

use rdkafka::producer::FutureProducer;
use sqlx::PgPool;
use trainer::from_book::{self, BookTraining, BookTrainingReport, Progress};

/// Why a training from the book failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainingError {
    /// The training itself.
    #[error(transparent)]
    Train(#[from] trainer::TrainError),
    /// The model was promoted in the registry but the announcement failed; scorers load it at
    /// their next start, or after promoting it again.
    #[error("model {version} is champion in the registry, but ModelPromoted was not published")]
    Announce {
        /// The promoted version.
        version: String,
        /// Why.
        #[source]
        source: scorer::models::AnnounceError,
    },
}

/// Where promotions are announced.
pub struct Announcer<'a> {
    /// Producer on the cluster.
    pub producer: &'a FutureProducer,
    /// The model-updates topic.
    pub topic: &'a str,
}

/// Train from the book on `pool`; when the model is promoted and an announcer is given,
/// publish `ModelPromoted`.
pub async fn train_and_announce(
    pool: &PgPool,
    request: &BookTraining,
    progress: &dyn Progress,
    announcer: Option<Announcer<'_>>,
) -> Result<BookTrainingReport, TrainingError> {
    let report = from_book::train_from_book(pool, request, progress).await?;
    if let (Some(promotion), Some(a)) = (&report.promotion, announcer) {
        scorer::models::announce(
            a.producer,
            a.topic,
            &promotion.announcement(from_book::ACTOR),
        )
        .await
        .map_err(|source| TrainingError::Announce {
            version: promotion.model_version.clone(),
            source,
        })?;
    }
    Ok(report)
}

/// The report as the operator reads it: discrimination, calibration by decile, importance and
/// the promotion decision.
pub fn summary(r: &BookTrainingReport) -> String {
    let oot = &r.out_of_time;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Model {}: {} matured loans ({} out of time), out-of-time AUC {:.4}, KS {:.4}, \
         Brier {:.4}, mean PD {:.4} vs observed {:.4}, PSI {:.3}; {:.1} s (read {:.1}, train {:.1}, \
         evaluate {:.1})",
        r.model_version,
        r.rows,
        r.out_of_time_rows,
        oot.auc,
        oot.ks,
        oot.brier,
        oot.mean_pd,
        oot.observed,
        r.psi,
        r.seconds,
        r.read_seconds,
        r.train_seconds,
        r.evaluate_seconds
    );
    if let Some(l) = &r.true_pd_limit {
        let _ = writeln!(
            out,
            "True-PD AUC on the same out-of-time loans (the limit): {:.4}; gap {:.4}",
            l.auc,
            l.auc - oot.auc
        );
    }
    let _ = writeln!(out, "Calibration by PD decile (mean PD / observed):");
    for (i, d) in oot.calibration.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {:>2}: {:.4} / {:.4} ({} loans)",
            i + 1,
            d.mean_pd,
            d.observed,
            d.n
        );
    }
    let _ = writeln!(
        out,
        "Importance (mean |SHAP| on out-of-time loans, split gain):"
    );
    for f in r.importance.iter().take(8) {
        let _ = writeln!(
            out,
            "  {:<24} {:.4}  {:.1}",
            f.feature, f.mean_abs_shap, f.gain
        );
    }
    if let Some(c) = &r.comparison {
        let _ = writeln!(
            out,
            "{} — {}",
            if c.promoted {
                "Promoted to champion"
            } else {
                "Not promoted"
            },
            c.reasons.join("; ")
        );
    }
    out
}
