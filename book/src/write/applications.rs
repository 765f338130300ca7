//! Applications and decisions, upserted by their natural key.

use super::batch::{drop_conflicts, first_by_key, BatchOutcome, WriteError};
use super::customers::CustomerRisk;
use super::symbols::outcome_symbol;
use chrono::{DateTime, Utc};
use schemas::{Decision, LoanApplication};
use sqlx::PgConnection;
use std::collections::{HashMap, HashSet};

/// Store the batch's new applications. An application id already stored with the same payload
/// changes nothing (a retry); with another payload it is refused as a conflict and the stored
/// application stands.
pub(super) async fn insert_applications(
    tx: &mut PgConnection,
    applications: &[(usize, &LoanApplication)],
    out: &mut BatchOutcome,
) -> Result<(), WriteError> {
    if applications.is_empty() {
        return Ok(());
    }
    let rows = first_by_key(
        applications,
        |a| a.application_id.clone(),
        "application_id",
        out,
    );
    let payload = |rows: &[(usize, &LoanApplication)]| -> Result<Vec<String>, WriteError> {
        rows.iter()
            .map(|(_, a)| serde_json::to_string(a).map_err(WriteError::Json))
            .collect()
    };
    if rows.is_empty() {
        return Ok(());
    }
    let payloads = payload(&rows)?;
    let kept = rows;
    let rows: Vec<&LoanApplication> = kept.iter().map(|(_, a)| *a).collect();
    let inserted: HashSet<String> = sqlx::query_scalar!(
        "INSERT INTO applications (application_id, customer_id, submitted_at, channel, purpose, \
           amount, tenure_months, interest_rate_bps, collateral_value, payload) \
         SELECT id, c, at, ch, pu, am, te, ra, co, p::jsonb \
         FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], \
           $6::int8[], $7::int4[], $8::int4[], $9::int8[], $10::text[]) \
           AS t(id, c, at, ch, pu, am, te, ra, co, p) \
         ON CONFLICT (application_id) DO NOTHING RETURNING application_id",
        &rows
            .iter()
            .map(|a| a.application_id.clone())
            .collect::<Vec<_>>(),
        &rows
            .iter()
            .map(|a| a.customer_id.clone())
            .collect::<Vec<_>>(),
        &rows.iter().map(|a| a.submitted_at).collect::<Vec<_>>(),
        &rows.iter().map(|a| a.channel.clone()).collect::<Vec<_>>(),
        &rows
            .iter()
            .map(|a| a.loan.purpose.as_str())
            .collect::<Vec<_>>() as _,
        &rows.iter().map(|a| a.loan.amount).collect::<Vec<_>>(),
        &rows
            .iter()
            .map(|a| a.loan.tenure_months)
            .collect::<Vec<_>>(),
        &rows
            .iter()
            .map(|a| a.loan.interest_rate_bps)
            .collect::<Vec<_>>(),
        &rows
            .iter()
            .map(|a| a.loan.collateral_value)
            .collect::<Vec<_>>() as _,
        &payloads
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    // Ids stored before: the same payload is a no-op, another one a conflict.
    let rows: Vec<(usize, &LoanApplication)> = kept
        .into_iter()
        .filter(|(_, a)| !inserted.contains(&a.application_id))
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    let stored_payloads = payload(&rows)?;
    let differing: HashSet<String> = sqlx::query_scalar!(
        "SELECT a.application_id FROM applications a \
         JOIN unnest($1::text[], $2::text[]) AS t(id, p) ON a.application_id = t.id \
         WHERE a.payload IS DISTINCT FROM t.p::jsonb",
        &rows
            .iter()
            .map(|(_, a)| a.application_id.clone())
            .collect::<Vec<_>>(),
        &stored_payloads
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    drop_conflicts(
        rows,
        |a| &a.application_id,
        &differing,
        "application_id",
        out,
    );
    Ok(())
}

/// Decisions as the columns of the `decisions` table.
pub(super) struct DecisionColumns {
    pub(super) id: Vec<String>,
    pub(super) customer: Vec<String>,
    pub(super) at: Vec<DateTime<Utc>>,
    pub(super) model: Vec<String>,
    pub(super) features: Vec<String>,
    pub(super) pd: Vec<f64>,
    pub(super) score: Vec<i32>,
    pub(super) clamped: Vec<bool>,
    pub(super) grade: Vec<String>,
    pub(super) decision: Vec<&'static str>,
    pub(super) rule_hits: Vec<String>,
    pub(super) emi: Vec<i64>,
    pub(super) foir: Vec<f64>,
    pub(super) ltv: Vec<Option<f64>>,
    pub(super) challenger: Vec<Option<String>>,
    pub(super) challenger_pd: Vec<Option<f64>>,
}

impl DecisionColumns {
    fn of(rows: &[(usize, &Decision)]) -> Result<Self, WriteError> {
        let rule_hits = rows
            .iter()
            .map(|(_, d)| serde_json::to_string(&d.rule_hits).map_err(WriteError::Json))
            .collect::<Result<Vec<String>, _>>()?;
        let col = |f: &dyn Fn(&Decision) -> String| -> Vec<String> {
            rows.iter().map(|(_, d)| f(d)).collect()
        };
        Ok(DecisionColumns {
            id: col(&|d| d.application_id.clone()),
            customer: col(&|d| d.customer_id.clone()),
            at: rows.iter().map(|(_, d)| d.decided_at).collect(),
            model: col(&|d| d.model_version.clone()),
            features: col(&|d| d.feature_set_version.clone()),
            pd: rows.iter().map(|(_, d)| d.pd).collect(),
            score: rows.iter().map(|(_, d)| d.score).collect(),
            clamped: rows.iter().map(|(_, d)| d.score_clamped).collect(),
            grade: col(&|d| d.grade.clone()),
            decision: rows
                .iter()
                .map(|(_, d)| outcome_symbol(d.decision))
                .collect(),
            rule_hits,
            emi: rows.iter().map(|(_, d)| d.emi).collect(),
            foir: rows.iter().map(|(_, d)| d.foir).collect(),
            ltv: rows.iter().map(|(_, d)| d.ltv).collect(),
            challenger: rows
                .iter()
                .map(|(_, d)| d.challenger.as_ref().map(|c| c.model_version.clone()))
                .collect(),
            challenger_pd: rows
                .iter()
                .map(|(_, d)| d.challenger.as_ref().map(|c| c.pd))
                .collect(),
        })
    }
}

/// Store the batch's new decisions, with their reasons. A decision is never rewritten: one
/// stored for the same application with the same figures changes nothing (a replay); one with
/// other figures is refused as a conflict. Returns the customers' latest PDs among them.
pub(super) async fn insert_decisions(
    tx: &mut PgConnection,
    decisions: &[(usize, &Decision)],
    out: &mut BatchOutcome,
) -> Result<Vec<CustomerRisk>, WriteError> {
    if decisions.is_empty() {
        return Ok(Vec::new());
    }
    let mut rows = first_by_key(
        decisions,
        |d| d.application_id.clone(),
        "application_id",
        out,
    );
    rows.sort_by(|a, b| a.1.application_id.cmp(&b.1.application_id));
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let c = DecisionColumns::of(&rows)?;
    // New ones are inserted; the statement's own read of `decisions` sees the rows stored
    // before it, and names those whose figures differ.
    let outcome: Vec<(String, bool)> = sqlx::query!(
        "WITH t AS (SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], \
           $5::text[], $6::float8[], $7::int4[], $8::bool[], $9::text[], $10::text[], \
           $11::text[], $12::int8[], $13::float8[], $14::float8[], $15::text[], $16::float8[]) \
           AS t(id, c, at, mv, fs, pd, sc, cl, g, d, rh, emi, foir, ltv, cv, cp)), \
         ins AS (INSERT INTO decisions (application_id, customer_id, decided_at, model_version, \
           feature_set_version, pd, score, score_clamped, grade, decision, rule_hits, emi, foir, \
           ltv, challenger_version, challenger_pd) \
           SELECT id, c, at, mv, fs, pd, sc, cl, g, d, \
             ARRAY(SELECT jsonb_array_elements_text(rh::jsonb)), emi, foir, ltv, cv, cp \
           FROM t ON CONFLICT (application_id) DO NOTHING RETURNING application_id) \
         SELECT application_id AS \"id!\", true AS \"inserted!\" FROM ins \
         UNION ALL \
         SELECT d.application_id, false FROM decisions d \
           JOIN (SELECT * FROM t WHERE t.id NOT IN (SELECT application_id FROM ins) \
             OFFSET 0) t ON d.application_id = t.id \
         WHERE (d.customer_id, d.decided_at, d.model_version, d.feature_set_version, d.pd, \
             d.score, d.score_clamped, d.grade, d.decision, d.rule_hits, d.emi, d.foir, d.ltv, \
             d.challenger_version, d.challenger_pd) \
           IS DISTINCT FROM (t.c, t.at, t.mv, t.fs, t.pd, t.sc, t.cl, t.g, t.d, \
             ARRAY(SELECT jsonb_array_elements_text(t.rh::jsonb)), t.emi, t.foir, t.ltv, t.cv, \
             t.cp)",
        &c.id,
        &c.customer,
        &c.at,
        &c.model,
        &c.features,
        &c.pd,
        &c.score,
        &c.clamped,
        &c.grade,
        &c.decision as _,
        &c.rule_hits,
        &c.emi,
        &c.foir,
        &c.ltv as _,
        &c.challenger as _,
        &c.challenger_pd as _
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|r| (r.id, r.inserted))
    .collect();
    let changed: Vec<String> = outcome
        .iter()
        .filter(|(_, inserted)| *inserted)
        .map(|(id, _)| id.clone())
        .collect();
    let differing: HashSet<String> = outcome
        .into_iter()
        .filter(|(_, inserted)| !*inserted)
        .map(|(id, _)| id)
        .collect();
    let rows = drop_conflicts(
        rows,
        |d| &d.application_id,
        &differing,
        "application_id",
        out,
    );
    let rows: Vec<&Decision> = rows.into_iter().map(|(_, d)| d).collect();
    if !changed.is_empty() {
        let changed_set: HashSet<&str> = changed.iter().map(String::as_str).collect();
        let mut ids = Vec::new();
        let mut ranks = Vec::new();
        let mut codes = Vec::new();
        let mut features = Vec::new();
        let mut values = Vec::new();
        let mut points = Vec::new();
        for d in rows
            .iter()
            .filter(|d| changed_set.contains(d.application_id.as_str()))
        {
            for (rank, r) in d.reasons.iter().enumerate() {
                ids.push(d.application_id.clone());
                ranks.push(i16::try_from(rank + 1).unwrap_or(i16::MAX));
                codes.push(r.code.clone());
                features.push(r.feature.clone());
                values.push(r.value);
                points.push(r.points);
            }
        }
        if !ids.is_empty() {
            sqlx::query!(
                "INSERT INTO decision_reasons (application_id, rank, code, feature, value, points) \
                 SELECT * FROM unnest($1::text[], $2::int2[], $3::text[], $4::text[], \
                   $5::float8[], $6::float8[])",
                &ids, &ranks, &codes, &features, &values as _, &points
            )
            .execute(&mut *tx)
            .await?;
        }
    }
    // The customer's current PD: from their most recent decision.
    let mut by_customer: HashMap<&str, (f64, DateTime<Utc>)> = HashMap::new();
    for d in &rows {
        let e = by_customer
            .entry(d.customer_id.as_str())
            .or_insert((d.pd, d.decided_at));
        if d.decided_at > e.1 {
            *e = (d.pd, d.decided_at);
        }
    }
    let mut risk: Vec<CustomerRisk> = by_customer
        .into_iter()
        .map(|(c, (p, t))| (c.to_string(), p, t))
        .collect();
    risk.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(risk)
}
