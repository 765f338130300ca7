//! `credit-risk train --from-db`: matured loans from the book → XGBoost → out-of-time
//! evaluation → artifact → registry (and promotion when better than the champion).

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use rdkafka::producer::{FutureProducer, FutureRecord};
use risk_core::features;
use risk_core::model::ensemble::Ensemble;
use schemas::{ModelAlias, ModelPromoted};
use serde_json::json;
use trainer::book::{self, PromotionSettings};
use trainer::xgb::{self, Mode, XgbParams};

use crate::settings::Settings;
use crate::stages::TrainArgs;

fn bar(len: u64, what: &str) -> ProgressBar {
    let b = ProgressBar::new(len);
    b.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:30}] {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    b.set_message(what.to_string());
    b
}

fn select(rows: &[f32], idx: &[usize], cols: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(idx.len() * cols);
    for i in idx {
        out.extend_from_slice(&rows[i * cols..(i + 1) * cols]);
    }
    out
}

/// Train from the book; returns the report (printed as JSON with `--json`).
pub async fn run(
    args: &TrainArgs,
    mut params: XgbParams,
    settings: &Settings,
) -> anyhow::Result<serde_json::Value> {
    let started = Instant::now();
    // Kafka is needed only to announce a promotion, and only when brokers are configured.
    let (infra, url) = match &settings.infra.database.url {
        Some(url) => (None, url.clone()),
        None => {
            let infra = runtime::infra::Infra::start(&settings.infra, true).await?;
            let url = infra
                .database_url
                .clone()
                .context("--from-db needs PostgreSQL (DATABASE_URL)")?;
            (Some(infra), url)
        }
    };
    let pool = runtime::postgres::connect(&url, 2).await?;
    portfolio_aggregator::db::migrate(&pool).await?;

    let read = bar(0, "read");
    let t = Instant::now();
    let data = book::load_matured(&pool, args.window_months, |n| read.set_position(n))
        .await
        .map_err(anyhow::Error::msg)?;
    read.finish();
    let read_seconds = t.elapsed().as_secs_f64();
    if data.is_empty() {
        bail!(
            "no matured loans: none was disbursed {} months before the last closed business day",
            args.window_months
        );
    }
    let bads = data.labels.iter().filter(|l| **l > 0.5).count();
    if bads == 0 || bads == data.len() {
        bail!(
            "the matured loans are all of one class ({bads} bad of {}): nothing to learn",
            data.len()
        );
    }
    let cols = features::LEN;
    let (train_idx, oot_idx) =
        book::out_of_time_split(&data.months, args.oot_share).map_err(anyhow::Error::msg)?;
    // Early stopping on every tenth training row; the out-of-time rows are never seen.
    let (fit_idx, valid_idx): (Vec<usize>, Vec<usize>) =
        train_idx.iter().partition(|i| **i % 10 != 0);
    let labels_of = |idx: &[usize]| idx.iter().map(|i| data.labels[*i]).collect::<Vec<f32>>();
    let fit = xgb::matrix(
        &select(&data.rows, &fit_idx, cols),
        cols,
        Some(&labels_of(&fit_idx)),
    )?;
    let valid = xgb::matrix(
        &select(&data.rows, &valid_idx, cols),
        cols,
        Some(&labels_of(&valid_idx)),
    )?;
    let train_rows = select(&data.rows, &train_idx, cols);
    let oot_rows = select(&data.rows, &oot_idx, cols);
    let train_m = xgb::matrix(&train_rows, cols, None)?;
    let oot_m = xgb::matrix(&oot_rows, cols, None)?;
    if params.monotone_constraints.is_none() {
        params.monotone_constraints = Some(features::monotone_constraints());
    }
    let t = Instant::now();
    let fitting = bar(u64::from(params.effective_rounds()), "train");
    let trained = xgb::train(&params, &fit, Some(&valid), |r, _| {
        fitting.set_position(u64::from(r))
    })?;
    fitting.finish();
    let train_seconds = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let train_pd: Vec<f64> = xgb::predict(&trained.booster, &train_m)?
        .into_iter()
        .map(f64::from)
        .collect();
    let oot_pd: Vec<f64> = xgb::predict(&trained.booster, &oot_m)?
        .into_iter()
        .map(f64::from)
        .collect();
    let oot_labels: Vec<bool> = oot_idx.iter().map(|i| data.labels[*i] > 0.5).collect();
    let train_labels: Vec<bool> = train_idx.iter().map(|i| data.labels[*i] > 0.5).collect();
    let oot = book::evaluate(&oot_pd, &oot_labels).map_err(anyhow::Error::msg)?;
    let in_sample = book::evaluate(&train_pd, &train_labels).map_err(anyhow::Error::msg)?;
    let psi = book::psi(&train_pd, &oot_pd);
    let limit = match &args.truth {
        Some(path) => Some(truth_limit(
            path,
            &data.application_ids,
            &oot_idx,
            &oot_labels,
        )?),
        None => None,
    };
    let eval_seconds = t.elapsed().as_secs_f64();

    // Feature importance: total split gain from the model, and mean |SHAP| (log-odds) over up
    // to 1,000 out-of-time loans (enough to rank the features; exact TreeSHAP costs ~1.5 ms a loan).
    let model_doc: serde_json::Value = serde_json::from_str(&xgb::model_json(&trained.booster)?)?;
    let importance = importance(&model_doc, &oot_rows, cols)?;
    let version = args.version.clone().unwrap_or_else(|| {
        format!(
            "pd-{}-{}",
            if params.mode == Mode::RandomForest {
                "rf"
            } else {
                "gbt"
            },
            chrono::Utc::now().timestamp()
        )
    });
    let names = features::names();
    let model_json = model_doc;
    let window = data.window.map(|(a, b)| json!({"first_disbursal": a, "last_disbursal": b, "labels_as_of": data.as_of, "performance_months": args.window_months}));
    let train_pd32: Vec<f32> = train_pd.iter().map(|p| *p as f32).collect();
    let artifact = trainer::artifact::build(trainer::artifact::ArtifactParts {
        model_name: "pd",
        model_version: &version,
        mode: match params.mode {
            Mode::GradientBoosting => "gradient_boosting",
            Mode::RandomForest => "random_forest",
        },
        feature_set_version: features::VERSION,
        feature_names: &names,
        scaling: settings.domain.scaling.clone(),
        rows: &train_rows,
        train_pd: &train_pd32,
        training: json!({
            "source": "book",
            "window": window,
            "rows": data.len(),
            "train_rows": train_idx.len(),
            "out_of_time_rows": oot_idx.len(),
            "data_hash": data.data_hash,
            "rounds": trained.rounds,
            "params": params,
        }),
        metrics: json!({
            "out_of_time": oot,
            "in_sample": in_sample,
            "psi_train_vs_oot": psi,
            "importance": importance,
        }),
        xgboost_model: model_json,
    });
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&args.out, serde_json::to_vec(&artifact)?)
        .with_context(|| format!("writing {}", args.out.display()))?;
    let uri = format!("file://{}", std::path::absolute(&args.out)?.display());

    let comparison = if args.promote_if_better {
        let champion = book::champion(&pool, "pd")
            .await
            .map_err(anyhow::Error::msg)?;
        let champion_auc = match &champion {
            None => None,
            Some(c) => {
                let ensemble = Ensemble::from_xgboost_json(&c.xgboost_model)?;
                let pd: Vec<f64> = oot_rows
                    .chunks(cols)
                    .map(|x| f64::from(ensemble.predict(x)))
                    .collect();
                let e = book::evaluate(&pd, &oot_labels).map_err(anyhow::Error::msg)?;
                Some((c.model_version.clone(), e.auc))
            }
        };
        let s = PromotionSettings {
            auc_margin: args.auc_margin,
            ..PromotionSettings::default()
        };
        Some(book::compare(
            &s,
            &oot,
            psi,
            champion_auc.as_ref().map(|(v, a)| (v.as_str(), *a)),
        ))
    } else {
        None
    };
    book::register(
        &pool,
        &artifact,
        &uri,
        data.len(),
        &data.data_hash,
        comparison.as_ref(),
        "credit-risk train",
    )
    .await
    .map_err(anyhow::Error::msg)?;
    let promoted = comparison.as_ref().is_some_and(|c| c.promoted);
    if promoted {
        if let Some(brokers) = settings.infra.kafka.brokers.as_deref() {
            let producer: FutureProducer = runtime::kafka::producer_config(brokers).create()?;
            let event = ModelPromoted {
                model_name: "pd".into(),
                model_version: version.clone(),
                alias: ModelAlias::Champion,
                feature_set_version: features::VERSION.into(),
                artifact_uri: uri.clone(),
                promoted_at: chrono::Utc::now(),
                promoted_by: "credit-risk train".into(),
                previous_version: comparison.as_ref().and_then(|c| c.champion.clone()),
            };
            let bytes = schemas::encode(&event)?;
            producer
                .send(
                    FutureRecord::to(&settings.infra.kafka.topics.model_updates)
                        .key("pd")
                        .payload(&bytes),
                    Duration::from_secs(30),
                )
                .await
                .map_err(|(e, _)| e)?;
        }
    }
    pool.close().await;
    if let Some(infra) = infra {
        infra.stop();
    }
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "Model {version}: {} matured loans ({} out of time), out-of-time AUC {:.4}, KS {:.4}, \
         Brier {:.4}, mean PD {:.4} vs observed {:.4}, PSI {:.3}; {:.1} s (read {:.1}, train {:.1}, \
         evaluate {:.1})",
        data.len(), oot_idx.len(), oot.auc, oot.ks, oot.brier, oot.mean_pd, oot.observed, psi,
        seconds, read_seconds, train_seconds, eval_seconds
    );
    if let Some(l) = &limit {
        eprintln!(
            "True-PD AUC on the same out-of-time loans (the limit): {:.4}; gap {:.4}",
            l["auc"].as_f64().unwrap_or(0.0),
            l["auc"].as_f64().unwrap_or(0.0) - oot.auc
        );
    }
    eprintln!("Calibration by PD decile (mean PD / observed):");
    for (i, d) in oot.calibration.iter().enumerate() {
        eprintln!(
            "  {:>2}: {:.4} / {:.4} ({} loans)",
            i + 1,
            d.mean_pd,
            d.observed,
            d.n
        );
    }
    eprintln!("Importance (mean |SHAP| on out-of-time loans, split gain):");
    for f in importance.as_array().into_iter().flatten().take(8) {
        eprintln!(
            "  {:<24} {:.4}  {:.1}",
            f["feature"].as_str().unwrap_or(""),
            f["mean_abs_shap"].as_f64().unwrap_or(0.0),
            f["gain"].as_f64().unwrap_or(0.0)
        );
    }
    if let Some(c) = &comparison {
        eprintln!(
            "{} — {}",
            if c.promoted {
                "Promoted to champion"
            } else {
                "Not promoted"
            },
            c.reasons.join("; ")
        );
    }
    let report = json!({
        "model_version": version,
        "rows": data.len(),
        "out_of_time_rows": oot_idx.len(),
        "auc_mean": oot.auc,
        "auc_std": 0.0,
        "ks": oot.ks,
        "gini": oot.gini,
        "brier": oot.brier,
        "psi": psi,
        "true_pd_limit": limit,
        "calibration": oot.calibration,
        "importance": importance,
        "promoted": promoted,
        "comparison": comparison,
        "seconds": seconds,
        "read_seconds": read_seconds,
        "train_seconds": train_seconds,
        "evaluate_seconds": eval_seconds,
        "artifact": uri,
    });
    if args.json {
        println!("{report}");
    }
    Ok(report)
}

/// The AUC of the generator's true PDs on the out-of-time loans: what a perfect model reaches.
fn truth_limit(
    path: &std::path::Path,
    ids: &[String],
    oot_idx: &[usize],
    labels: &[bool],
) -> anyhow::Result<serde_json::Value> {
    let wanted: std::collections::HashSet<&str> =
        oot_idx.iter().map(|i| ids[*i].as_str()).collect();
    let mut truth = std::collections::HashMap::new();
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    let headers = reader.headers()?.clone();
    let id_col = headers.iter().position(|h| h == "application_id");
    let pd_col = headers.iter().position(|h| h == "true_pd");
    let (Some(id_col), Some(pd_col)) = (id_col, pd_col) else {
        bail!(
            "{} has no application_id and true_pd columns",
            path.display()
        );
    };
    for record in reader.records() {
        let record = record?;
        if let (Some(id), Some(pd)) = (record.get(id_col), record.get(pd_col)) {
            if wanted.contains(id) {
                truth.insert(id.to_string(), pd.parse::<f64>()?);
            }
        }
    }
    let mut pds = Vec::with_capacity(oot_idx.len());
    let mut ys = Vec::with_capacity(oot_idx.len());
    for (k, i) in oot_idx.iter().enumerate() {
        if let Some(pd) = truth.get(&ids[*i]) {
            pds.push(*pd);
            ys.push(labels[k]);
        }
    }
    anyhow::ensure!(
        !pds.is_empty(),
        "no out-of-time loan is in {}: is it the truth of this book?",
        path.display()
    );
    let auc = risk_core::metrics::auc(&pds, &ys).context("one class only")?;
    Ok(json!({"auc": auc, "loans": pds.len()}))
}

/// Gain (sum of loss reductions of the splits on each feature) and mean |SHAP| per feature.
fn importance(
    model_doc: &serde_json::Value,
    rows: &[f32],
    cols: usize,
) -> anyhow::Result<serde_json::Value> {
    let names = features::names();
    let mut gain = vec![0.0f64; cols];
    let trees = model_doc
        .pointer("/learner/gradient_booster/model/trees")
        .and_then(|t| t.as_array())
        .cloned()
        .unwrap_or_default();
    for t in &trees {
        let splits = t.get("split_indices").and_then(|v| v.as_array());
        let losses = t.get("loss_changes").and_then(|v| v.as_array());
        let lefts = t.get("left_children").and_then(|v| v.as_array());
        if let (Some(splits), Some(losses), Some(lefts)) = (splits, losses, lefts) {
            for ((s, l), left) in splits.iter().zip(losses).zip(lefts) {
                // Leaves have no left child (-1) and carry no gain.
                if left.as_i64().unwrap_or(-1) < 0 {
                    continue;
                }
                if let (Some(j), Some(g)) = (s.as_u64(), l.as_f64()) {
                    if let Some(cell) = gain.get_mut(j as usize) {
                        *cell += g;
                    }
                }
            }
        }
    }
    let ensemble = Ensemble::from_xgboost_json(model_doc)?;
    let explainer = risk_core::model::Explainer::new(&ensemble);
    let mut shap = vec![0.0f64; cols];
    let sample: Vec<&[f32]> = rows.chunks(cols).take(1_000).collect();
    for x in &sample {
        for (acc, phi) in shap.iter_mut().zip(explainer.contributions(&ensemble, x)) {
            *acc += phi.abs();
        }
    }
    let n = sample.len().max(1) as f64;
    let mut out: Vec<serde_json::Value> = names
        .iter()
        .enumerate()
        .map(|(j, name)| json!({"feature": name, "gain": gain[j], "mean_abs_shap": shap[j] / n}))
        .collect();
    out.sort_by(|a, b| {
        b["mean_abs_shap"]
            .as_f64()
            .unwrap_or(0.0)
            .total_cmp(&a["mean_abs_shap"].as_f64().unwrap_or(0.0))
    });
    Ok(serde_json::Value::Array(out))
}
