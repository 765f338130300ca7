//! Training from the loan book: matured loans with the application as submitted, an
//! out-of-time evaluation, the model registry and champion/challenger promotion.
//!
//! A loan is matured when its performance window (default 12 months) has elapsed by the last
//! closed business date; its label is 1 when it was ever more than 90 days past due within the
//! window. Features are `risk_core::features` of the stored application: the scorer's code.

use chrono::{Datelike, Months, NaiveDate};
use futures::TryStreamExt;
use risk_core::features;
use risk_core::metrics::{auc, brier, gini, ks};
use risk_core::model::Artifact;
use schemas::LoanApplication;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::{PgPool, Row};

/// Matured loans as a training set, in origination order.
#[derive(Debug, Default)]
pub struct BookData {
    /// Row-major features.
    pub rows: Vec<f32>,
    /// 1 = bad (DPD > 90 within the window).
    pub labels: Vec<f32>,
    /// Origination month of each row (year × 12 + month − 1).
    pub months: Vec<i32>,
    /// First and last disbursal dates.
    pub window: Option<(NaiveDate, NaiveDate)>,
    /// Last closed business date the labels are read at.
    pub as_of: Option<NaiveDate>,
    /// FNV-1a hash of rows and labels.
    pub data_hash: String,
    /// Application id of each row (to join outside knowledge, such as a generator's truth).
    pub application_ids: Vec<String>,
}

impl BookData {
    /// Rows.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

fn fnv(hash: &mut u64, bytes: &[u8]) {
    for b in bytes {
        *hash ^= u64::from(*b);
        *hash = hash.wrapping_mul(0x100_0000_01b3);
    }
}

/// Read the matured loans (streaming: only the feature matrix is kept). `progress` gets the
/// rows read so far.
pub async fn load_matured(
    pool: &PgPool,
    window_months: u32,
    mut progress: impl FnMut(u64),
) -> Result<BookData, String> {
    let as_of: Option<NaiveDate> = sqlx::query_scalar(
        "SELECT max(business_date) FROM business_days WHERE closed_at IS NOT NULL",
    )
    .fetch_one(pool)
    .await
    .map_err(|e| format!("reading the book: {e}"))?;
    let Some(as_of) = as_of else {
        return Err("the book has no closed business day: nothing has matured".into());
    };
    let cutoff = as_of
        .checked_sub_months(Months::new(window_months))
        .ok_or("performance window too long")?;
    let mut data = BookData {
        as_of: Some(as_of),
        ..BookData::default()
    };
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    let mut stream = sqlx::query(
        "SELECT a.payload::text, l.disbursed_on, \
           (s.first_dpd90_on IS NOT NULL \
             AND s.first_dpd90_on <= (l.disbursed_on + make_interval(months => $2))::date) \
         FROM loans l JOIN applications a USING (application_id) JOIN loan_status s USING (loan_id) \
         WHERE l.disbursed_on <= $1 ORDER BY l.disbursed_on, l.loan_id",
    )
    .bind(cutoff)
    .bind(i32::try_from(window_months).unwrap_or(12))
    .fetch(pool);
    // Rows are parsed and their features computed on blocking threads, a chunk at a time, while
    // the next rows stream in; chunks are absorbed in order, so the result is deterministic.
    const CHUNK: usize = 8_192;
    let mut chunk: Vec<(String, NaiveDate, bool)> = Vec::with_capacity(CHUNK);
    let mut inflight: std::collections::VecDeque<tokio::task::JoinHandle<Result<Parsed, String>>> =
        std::collections::VecDeque::new();
    let mut absorb = |parsed: Parsed, data: &mut BookData, hash: &mut u64| {
        for (k, x) in parsed.rows.chunks(features::LEN).enumerate() {
            for v in x {
                fnv(hash, &v.to_le_bytes());
            }
            fnv(hash, &[u8::from(parsed.labels[k] > 0.5)]);
        }
        data.rows.extend_from_slice(&parsed.rows);
        data.labels.extend_from_slice(&parsed.labels);
        data.months.extend_from_slice(&parsed.months);
        data.application_ids.extend(parsed.ids);
        if let Some((first, last)) = parsed.window {
            data.window = Some(match data.window {
                None => (first, last),
                Some((f, _)) => (f, last),
            });
        }
        progress(data.labels.len() as u64);
    };
    loop {
        let row = stream
            .try_next()
            .await
            .map_err(|e| format!("reading the book: {e}"))?;
        let done = row.is_none();
        if let Some(row) = row {
            let payload: String = row.try_get(0).map_err(|e| e.to_string())?;
            let disbursed: NaiveDate = row.try_get(1).map_err(|e| e.to_string())?;
            let bad: bool = row.try_get(2).map_err(|e| e.to_string())?;
            chunk.push((payload, disbursed, bad));
        }
        if chunk.len() == CHUNK || (done && !chunk.is_empty()) {
            let work = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
            inflight.push_back(tokio::task::spawn_blocking(move || parse_chunk(work)));
        }
        while inflight.len() > 2 || (done && !inflight.is_empty()) {
            let Some(handle) = inflight.pop_front() else {
                break;
            };
            let parsed = handle.await.map_err(|e| e.to_string())??;
            absorb(parsed, &mut data, &mut hash);
        }
        if done {
            break;
        }
    }
    data.data_hash = format!("fnv1a64:{hash:016x}");
    Ok(data)
}

/// One chunk of rows, parsed.
struct Parsed {
    rows: Vec<f32>,
    labels: Vec<f32>,
    months: Vec<i32>,
    ids: Vec<String>,
    window: Option<(NaiveDate, NaiveDate)>,
}

fn parse_chunk(chunk: Vec<(String, NaiveDate, bool)>) -> Result<Parsed, String> {
    let mut p = Parsed {
        rows: Vec::with_capacity(chunk.len() * features::LEN),
        labels: Vec::with_capacity(chunk.len()),
        months: Vec::with_capacity(chunk.len()),
        ids: Vec::with_capacity(chunk.len()),
        window: None,
    };
    for (payload, disbursed, bad) in chunk {
        let app: LoanApplication = serde_json::from_str(&payload)
            .map_err(|e| format!("a stored application does not parse: {e}"))?;
        p.rows.extend_from_slice(&features::compute(&app));
        p.labels.push(if bad { 1.0 } else { 0.0 });
        p.months
            .push(disbursed.year() * 12 + i32::try_from(disbursed.month0()).unwrap_or(0));
        p.ids.push(app.application_id);
        p.window = Some(match p.window {
            None => (disbursed, disbursed),
            Some((first, _)) => (first, disbursed),
        });
    }
    Ok(p)
}

/// Rows of the later origination months (`share` of the months, at least one) form the
/// out-of-time set; returns (train indices, out-of-time indices).
pub fn out_of_time_split(months: &[i32], share: f64) -> Result<(Vec<usize>, Vec<usize>), String> {
    let mut distinct: Vec<i32> = months.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 2 {
        return Err(format!(
            "an out-of-time evaluation needs at least two origination months; the matured book has {}",
            distinct.len()
        ));
    }
    let test_months =
        ((distinct.len() as f64 * share).ceil() as usize).clamp(1, distinct.len() - 1);
    let first_test = distinct[distinct.len() - test_months];
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (i, m) in months.iter().enumerate() {
        if *m >= first_test {
            test.push(i);
        } else {
            train.push(i);
        }
    }
    Ok((train, test))
}

/// One PD decile of a calibration table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decile {
    /// Rows.
    pub n: usize,
    /// Mean predicted PD.
    pub mean_pd: f64,
    /// Observed default rate.
    pub observed: f64,
}

/// Discrimination and calibration on one set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Rows.
    pub rows: usize,
    /// ROC-AUC.
    pub auc: f64,
    /// 2·AUC − 1.
    pub gini: f64,
    /// Kolmogorov-Smirnov.
    pub ks: f64,
    /// Brier score.
    pub brier: f64,
    /// Mean PD.
    pub mean_pd: f64,
    /// Observed default rate.
    pub observed: f64,
    /// Predicted vs observed by PD decile.
    pub calibration: Vec<Decile>,
}

/// Evaluate PDs against labels.
pub fn evaluate(pd: &[f64], labels: &[bool]) -> Result<Evaluation, String> {
    let a = auc(pd, labels).ok_or("AUC needs both classes in the evaluation set")?;
    let mut order: Vec<usize> = (0..pd.len()).collect();
    order.sort_by(|x, y| pd[*x].total_cmp(&pd[*y]));
    let calibration = (0..10)
        .filter_map(|d| {
            let lo = order.len() * d / 10;
            let hi = order.len() * (d + 1) / 10;
            let idx = &order[lo..hi];
            (!idx.is_empty()).then(|| Decile {
                n: idx.len(),
                mean_pd: idx.iter().map(|i| pd[*i]).sum::<f64>() / idx.len() as f64,
                observed: idx.iter().filter(|i| labels[**i]).count() as f64 / idx.len() as f64,
            })
        })
        .collect();
    Ok(Evaluation {
        rows: pd.len(),
        auc: a,
        gini: gini(a),
        ks: ks(pd, labels).unwrap_or(0.0),
        brier: brier(pd, labels).unwrap_or(0.0),
        mean_pd: pd.iter().sum::<f64>() / pd.len().max(1) as f64,
        observed: labels.iter().filter(|b| **b).count() as f64 / labels.len().max(1) as f64,
        calibration,
    })
}

/// PSI of `actual` against `expected` over the expected deciles (DOMAIN.md's formula).
pub fn psi(expected: &[f64], actual: &[f64]) -> f64 {
    let mut sorted = expected.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() || actual.is_empty() {
        return 0.0;
    }
    let edges: Vec<f64> = (1..10).map(|d| sorted[sorted.len() * d / 10]).collect();
    let bin = |v: f64| edges.iter().position(|e| v <= *e).unwrap_or(edges.len());
    let mut e_counts = [0u64; 10];
    let mut a_counts = [0u64; 10];
    for v in expected {
        e_counts[bin(*v)] += 1;
    }
    for v in actual {
        a_counts[bin(*v)] += 1;
    }
    risk_core::metrics::psi(
        &risk_core::metrics::shares(&e_counts),
        &risk_core::metrics::shares(&a_counts),
    )
}

/// When a challenger may replace the champion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PromotionSettings {
    /// The challenger's out-of-time AUC must exceed the champion's by at least this much.
    pub auc_margin: f64,
    /// Its mean PD on the out-of-time set must be within this fraction of the observed rate.
    pub max_calibration_error: f64,
    /// PSI between its training and out-of-time PD distributions must stay below this.
    pub max_psi: f64,
}

impl Default for PromotionSettings {
    fn default() -> Self {
        Self {
            auc_margin: 0.005,
            max_calibration_error: 0.2,
            max_psi: 0.25,
        }
    }
}

/// The outcome of a promotion check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Whether the challenger was promoted.
    pub promoted: bool,
    /// Why (each check, or why not).
    pub reasons: Vec<String>,
    /// The champion compared against.
    pub champion: Option<String>,
    /// Champion's out-of-time AUC on the same rows.
    pub champion_auc: Option<f64>,
    /// Challenger's out-of-time AUC.
    pub challenger_auc: f64,
    /// Challenger's calibration error (|mean PD − observed| / observed).
    pub calibration_error: f64,
    /// Challenger's PSI (training vs out-of-time PDs).
    pub psi: f64,
}

/// Decide on promotion from the challenger's evaluation and the champion's AUC on the same
/// out-of-time rows.
pub fn compare(
    settings: &PromotionSettings,
    challenger: &Evaluation,
    challenger_psi: f64,
    champion: Option<(&str, f64)>,
) -> Comparison {
    let calibration_error = if challenger.observed > 0.0 {
        (challenger.mean_pd - challenger.observed).abs() / challenger.observed
    } else {
        f64::INFINITY
    };
    let mut reasons = Vec::new();
    let mut ok = true;
    if calibration_error <= settings.max_calibration_error {
        reasons.push(format!(
            "calibration: mean PD {:.4} vs observed {:.4} (error {:.1}% ≤ {:.1}%)",
            challenger.mean_pd,
            challenger.observed,
            calibration_error * 100.0,
            settings.max_calibration_error * 100.0
        ));
    } else {
        ok = false;
        reasons.push(format!(
            "calibration fails: mean PD {:.4} vs observed {:.4} (error {:.1}% > {:.1}%)",
            challenger.mean_pd,
            challenger.observed,
            calibration_error * 100.0,
            settings.max_calibration_error * 100.0
        ));
    }
    if challenger_psi < settings.max_psi {
        reasons.push(format!(
            "stability: PSI {challenger_psi:.3} < {}",
            settings.max_psi
        ));
    } else {
        ok = false;
        reasons.push(format!(
            "stability fails: PSI {challenger_psi:.3} ≥ {}",
            settings.max_psi
        ));
    }
    match champion {
        None => {
            // Without a champion there is nothing to protect: the first model is promoted, and
            // the checks above are recorded with it for the risk committee.
            ok = true;
            reasons.push(
                "no champion: the first model is promoted (the checks above are recorded, not \
                 blocking)"
                    .into(),
            );
        }
        Some((version, champion_auc)) => {
            if challenger.auc >= champion_auc + settings.auc_margin {
                reasons.push(format!(
                    "AUC {:.4} beats champion {version}'s {champion_auc:.4} by ≥ {}",
                    challenger.auc, settings.auc_margin
                ));
            } else {
                ok = false;
                reasons.push(format!(
                    "AUC {:.4} does not beat champion {version}'s {champion_auc:.4} by {}",
                    challenger.auc, settings.auc_margin
                ));
            }
        }
    }
    Comparison {
        promoted: ok,
        reasons,
        champion: champion.map(|(v, _)| v.to_string()),
        champion_auc: champion.map(|(_, a)| a),
        challenger_auc: challenger.auc,
        calibration_error,
        psi: challenger_psi,
    }
}

/// The current champion's artifact, if any.
pub async fn champion(pool: &PgPool, model_name: &str) -> Result<Option<Artifact>, String> {
    let row: Option<Value> = sqlx::query_scalar(
        "SELECT artifact FROM models WHERE model_name = $1 AND alias = 'champion'",
    )
    .bind(model_name)
    .fetch_optional(pool)
    .await
    .map_err(|e| format!("reading the registry: {e}"))?
    .flatten();
    row.map(|v| serde_json::from_value(v).map_err(|e| format!("the champion's artifact: {e}")))
        .transpose()
}

/// Register `artifact` (stored at `uri`) with its metrics; with `comparison` promoting it to
/// champion when it says so. One transaction, with an audit-log row.
pub async fn register(
    pool: &PgPool,
    artifact: &Artifact,
    uri: &str,
    rows: usize,
    data_hash: &str,
    comparison: Option<&Comparison>,
    actor: &str,
) -> Result<(), String> {
    let db = |e: sqlx::Error| format!("writing the registry: {e}");
    let mut tx = pool.begin().await.map_err(db)?;
    let promote = comparison.is_some_and(|c| c.promoted);
    if promote {
        sqlx::query("UPDATE models SET alias = NULL WHERE model_name = $1 AND alias = 'champion'")
            .bind(&artifact.model_name)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
    }
    sqlx::query(
        "INSERT INTO models (model_version, model_name, feature_set_version, artifact_uri, \
           artifact, metrics, comparison, training_window, rows, data_hash, alias, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&artifact.model_version)
    .bind(&artifact.model_name)
    .bind(&artifact.feature_set_version)
    .bind(uri)
    .bind(serde_json::to_value(artifact).map_err(|e| e.to_string())?)
    .bind(&artifact.metrics)
    .bind(comparison.map(|c| json!(c)))
    .bind(artifact.training.get("window").cloned())
    .bind(i64::try_from(rows).unwrap_or(i64::MAX))
    .bind(data_hash)
    .bind(promote.then_some("champion"))
    .bind(actor)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    sqlx::query("INSERT INTO audit_log (actor, action, subject, details) VALUES ($1, $2, $3, $4)")
        .bind(actor)
        .bind(if promote {
            "model.promoted"
        } else {
            "model.registered"
        })
        .bind(&artifact.model_version)
        .bind(comparison.map_or(json!({}), |c| json!(c)))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(auc: f64, mean_pd: f64, observed: f64) -> Evaluation {
        Evaluation {
            rows: 1000,
            auc,
            gini: gini(auc),
            ks: 0.3,
            brier: 0.05,
            mean_pd,
            observed,
            calibration: Vec::new(),
        }
    }

    #[test]
    fn a_worse_challenger_is_refused_and_the_reason_recorded() {
        let s = PromotionSettings::default();
        let c = compare(&s, &eval(0.70, 0.05, 0.05), 0.02, Some(("champ-1", 0.74)));
        assert!(!c.promoted);
        assert!(c
            .reasons
            .iter()
            .any(|r| r.contains("does not beat champion champ-1")));
        let better = compare(&s, &eval(0.76, 0.05, 0.05), 0.02, Some(("champ-1", 0.74)));
        assert!(better.promoted);
        let miscalibrated = compare(&s, &eval(0.80, 0.10, 0.05), 0.02, Some(("champ-1", 0.74)));
        assert!(!miscalibrated.promoted);
        let first = compare(&s, &eval(0.70, 0.05, 0.05), 0.02, None);
        assert!(first.promoted);
        let first_miscalibrated = compare(&s, &eval(0.70, 0.10, 0.05), 0.02, None);
        assert!(first_miscalibrated.promoted);
        assert!(first_miscalibrated
            .reasons
            .iter()
            .any(|r| r.starts_with("calibration fails")));
    }

    #[test]
    fn the_out_of_time_set_is_the_latest_months() {
        let months = [1, 1, 2, 3, 3, 4, 5];
        let (train, test) = out_of_time_split(&months, 0.2).unwrap();
        assert_eq!(test, vec![6]);
        assert_eq!(train.len(), 6);
        assert!(out_of_time_split(&[7, 7], 0.2).is_err());
    }

    #[test]
    fn psi_is_zero_for_the_same_distribution_and_grows_with_a_shift() {
        let a: Vec<f64> = (0..1000).map(|i| f64::from(i) / 1000.0).collect();
        assert!(psi(&a, &a) < 1e-9);
        let shifted: Vec<f64> = a.iter().map(|x| (x + 0.3).min(1.0)).collect();
        assert!(psi(&a, &shifted) > 0.25);
    }
}
