//! One batch of consumed messages applied to the book in one transaction, with the offsets.
//!
//! Within the transaction the batch's partitions are locked in `consumer_offsets` first; a
//! message below its partition's stored offset was applied before (a redelivery after a crash,
//! or by a previous owner of the partition) and is skipped. Customers, applications and
//! decisions are upserts by their natural key; loan events are applied once per event id.
//! Everything is set-based: one statement per kind of change, whatever the batch size.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use risk_core::dpd::{Allocation, Cursor, NeedsRest, PrepaymentMode, MAX_PAYMENT};
use risk_core::money::RateBps;
use risk_core::schedule::schedule;
use risk_core::settings::DomainSettings;
use schemas::{
    CustomerRegistered, CustomerUpdated, Decision, EmploymentType, LoanAction, LoanApplication,
    LoanDisbursed, LoanEventBody, Outcome, PaymentReceived, Residence,
};
use sqlx::PgConnection;

use crate::dayend::{self, DayEndReport};
use crate::message::{Incoming, Payload, Rejection, Source};

/// What a batch needs to know besides its messages.
#[derive(Debug, Clone)]
pub struct ApplyContext {
    /// Consumer group whose offsets are kept.
    pub group: String,
    /// Partitions of the events topic: a day closes when every one has delivered its tick.
    pub event_partitions: i32,
    /// Domain settings (day-end thresholds and rates).
    pub domain: DomainSettings,
}

/// What applying a batch did.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    /// Messages applied (including ones that changed nothing, such as identical upserts).
    pub applied: usize,
    /// Messages below the stored offsets (applied before).
    pub skipped: usize,
    /// Loan events whose event id was applied before.
    pub duplicates: usize,
    /// Messages refused: index into the batch and why.
    pub rejected: Vec<(usize, Rejection)>,
    /// Day-end ticks recorded: (partition, business date, whether the day is now closed).
    pub ticks: Vec<(i32, NaiveDate, bool)>,
    /// Day-ends run by this batch.
    pub closed: Vec<DayEndReport>,
    /// Loan events dated on or before the last closed business date.
    pub late: usize,
    /// Next offsets per (topic, partition) after this batch.
    pub offsets: Vec<(String, i32, i64)>,
    /// Events partitions held at a day-end tick, with the date they wait for.
    pub held: Vec<(i32, NaiveDate)>,
}

/// The schema symbol of an employment type.
pub fn employment_symbol(e: EmploymentType) -> &'static str {
    match e {
        EmploymentType::Salaried => "salaried",
        EmploymentType::SelfEmployed => "self_employed",
        EmploymentType::Business => "business",
        EmploymentType::Retired => "retired",
        EmploymentType::Other => "other",
    }
}

/// The schema symbol of a residence status.
pub fn residence_symbol(r: Residence) -> &'static str {
    match r {
        Residence::Own => "own",
        Residence::Rent => "rent",
        Residence::Mortgaged => "mortgaged",
        Residence::Family => "family",
    }
}

/// The schema symbol of an outcome.
pub fn outcome_symbol(o: Outcome) -> &'static str {
    match o {
        Outcome::Approve => "APPROVE",
        Outcome::Refer => "REFER",
        Outcome::Decline => "DECLINE",
    }
}

/// Apply `batch` inside the caller's transaction. The caller commits (after dead-lettering the
/// rejected messages) or rolls back.
pub async fn apply_batch(
    tx: &mut PgConnection,
    ctx: &ApplyContext,
    batch: &[Incoming],
) -> Result<BatchOutcome, sqlx::Error> {
    let mut out = BatchOutcome::default();
    let stored = lock_offsets(tx, &ctx.group, batch).await?;

    // Events partitions that delivered the tick of a day not yet closed wait for the day-end:
    // their later messages belong to the next day and are held back (fetched again later).
    let mut open: HashMap<i32, NaiveDate> = HashMap::new();
    for day in
        sqlx::query!("SELECT business_date, ticks FROM business_days WHERE closed_at IS NULL")
            .fetch_all(&mut *tx)
            .await?
    {
        for p in day.ticks {
            open.entry(p).or_insert(day.business_date);
        }
    }

    // Keep the messages at or above the stored offsets; compute the next offsets.
    let mut next: BTreeMap<(String, i32), i64> = BTreeMap::new();
    let mut kept: Vec<(usize, &Incoming)> = Vec::with_capacity(batch.len());
    for (i, m) in batch.iter().enumerate() {
        let key = (m.topic.clone(), m.partition);
        let from = stored.get(&key).copied().unwrap_or(0);
        let n = next.entry(key).or_insert(from);
        if m.offset < from {
            out.skipped += 1;
            continue;
        }
        if m.source == Source::Events {
            if let Some(date) = open.get(&m.partition) {
                out.held.push((m.partition, *date));
                continue;
            }
        }
        *n = (*n).max(m.offset + 1);
        kept.push((i, m));
        if let Ok(Payload::Event(e)) = &m.payload {
            if let LoanEventBody::BusinessDayClosed(b) = &e.body {
                open.insert(m.partition, b.business_date);
            }
        }
    }
    out.held.sort_unstable();
    out.held.dedup();

    let mut customers: Vec<(usize, &CustomerRegistered)> = Vec::new();
    let mut updates: Vec<(usize, &CustomerUpdated)> = Vec::new();
    let mut applications: Vec<(usize, &LoanApplication)> = Vec::new();
    let mut decisions: Vec<(usize, &Decision)> = Vec::new();
    let mut events: Vec<(usize, &Incoming, &schemas::LoanEvent)> = Vec::new();
    for (i, m) in &kept {
        match &m.payload {
            Err(r) => out.rejected.push((*i, r.clone())),
            Ok(Payload::Customer(c)) => customers.push((*i, c)),
            Ok(Payload::CustomerUpdate(u)) => updates.push((*i, u)),
            Ok(Payload::Application(a)) => applications.push((*i, a)),
            Ok(Payload::Decision(d)) => decisions.push((*i, d)),
            Ok(Payload::Event(e)) => events.push((*i, m, e)),
        }
    }
    let records = customers.len() + updates.len() + applications.len() + decisions.len();
    let refused_before = out.rejected.len();
    insert_customers(tx, &customers, &mut out).await?;
    apply_customer_updates(tx, &updates, &mut out).await?;
    insert_applications(tx, &applications, &mut out).await?;
    let risk = insert_decisions(tx, &decisions, &mut out).await?;
    out.applied += records - (out.rejected.len() - refused_before);
    let ticks = apply_events(tx, &events, ctx.domain.servicing.prepayment, &mut out).await?;
    // Rows other transactions may also write (a customer's decisions arrive on several
    // partitions; the day row is shared) are written last, in a fixed order, so concurrent
    // batches hold them only briefly and never wait on each other in a cycle.
    upsert_customer_risk(tx, &risk).await?;
    record_ticks(tx, ctx, &ticks, &mut out).await?;

    let (topics, partitions, offsets): (Vec<String>, Vec<i32>, Vec<i64>) = next
        .iter()
        .map(|((t, p), o)| (t.clone(), *p, *o))
        .fold((vec![], vec![], vec![]), |mut acc, (t, p, o)| {
            acc.0.push(t);
            acc.1.push(p);
            acc.2.push(o);
            acc
        });
    sqlx::query!(
        "UPDATE consumer_offsets o SET next_offset = n.next_offset, updated_at = now() \
         FROM unnest($2::text[], $3::int4[], $4::int8[]) AS n(topic, partition, next_offset) \
         WHERE o.consumer_group = $1 AND o.topic = n.topic AND o.partition = n.partition \
           AND o.next_offset <> n.next_offset",
        &ctx.group,
        &topics,
        &partitions,
        &offsets
    )
    .execute(&mut *tx)
    .await?;
    out.offsets = next.into_iter().map(|((t, p), o)| (t, p, o)).collect();
    Ok(out)
}

/// Create the batch's offset rows if new and lock them (in a fixed order, so two consumers
/// never deadlock); returns the stored next offsets.
async fn lock_offsets(
    tx: &mut PgConnection,
    group: &str,
    batch: &[Incoming],
) -> Result<HashMap<(String, i32), i64>, sqlx::Error> {
    let keys: std::collections::BTreeSet<(String, i32)> = batch
        .iter()
        .map(|m| (m.topic.clone(), m.partition))
        .collect();
    let topics: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
    let partitions: Vec<i32> = keys.iter().map(|k| k.1).collect();
    sqlx::query!(
        "INSERT INTO consumer_offsets (consumer_group, topic, partition, next_offset) \
         SELECT $1, t, p, 0 FROM unnest($2::text[], $3::int4[]) AS k(t, p) \
         ORDER BY t, p ON CONFLICT DO NOTHING",
        group,
        &topics,
        &partitions
    )
    .execute(&mut *tx)
    .await?;
    let rows = sqlx::query!(
        "SELECT o.topic, o.partition, o.next_offset FROM consumer_offsets o \
         JOIN unnest($2::text[], $3::int4[]) AS k(t, p) ON o.topic = k.t AND o.partition = k.p \
         WHERE o.consumer_group = $1 ORDER BY o.topic, o.partition FOR UPDATE OF o",
        group,
        &topics,
        &partitions
    )
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ((r.topic, r.partition), r.next_offset))
        .collect())
}

/// Records are append-only: the first record of each key in the batch is kept; a later one
/// that is identical changes nothing, a different one is refused as a conflict.
fn first_by_key<'a, T: PartialEq, K: std::hash::Hash + Eq>(
    items: &[(usize, &'a T)],
    key: impl Fn(&T) -> K,
    what: &str,
    out: &mut BatchOutcome,
) -> Vec<(usize, &'a T)> {
    let mut index: HashMap<K, usize> = HashMap::new();
    let mut kept: Vec<(usize, &'a T)> = Vec::new();
    for &(i, item) in items {
        match index.entry(key(item)) {
            std::collections::hash_map::Entry::Occupied(e) => {
                if kept[*e.get()].1 != item {
                    out.rejected.push((i, conflict(what)));
                }
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(kept.len());
                kept.push((i, item));
            }
        }
    }
    kept
}

/// A record whose id is stored with other contents: history is never rewritten.
fn conflict(what: &str) -> Rejection {
    Rejection {
        class: "conflict",
        message: format!(
            "{what} is already stored with other contents; a correction is a new record"
        ),
    }
}

/// Refuse the records whose key is in `stored_differently`; the rest go on.
fn drop_conflicts<'a, T>(
    rows: Vec<(usize, &'a T)>,
    key: impl Fn(&T) -> &str,
    stored_differently: &HashSet<String>,
    what: &str,
    out: &mut BatchOutcome,
) -> Vec<(usize, &'a T)> {
    rows.into_iter()
        .filter(|(i, r)| {
            let clash = stored_differently.contains(key(r));
            if clash {
                out.rejected.push((*i, conflict(what)));
            }
            !clash
        })
        .collect()
}

/// Customer records as the columns of the `customers` table.
struct CustomerColumns {
    id: Vec<String>,
    at: Vec<DateTime<Utc>>,
    name: Vec<String>,
    email: Vec<String>,
    phone: Vec<String>,
    dob: Vec<Option<NaiveDate>>,
    age: Vec<Option<i32>>,
    employment: Vec<&'static str>,
    employer: Vec<Option<String>>,
    years: Vec<f32>,
    income: Vec<i64>,
    emi: Vec<i64>,
    dependents: Vec<i32>,
    residence: Vec<&'static str>,
    region: Vec<String>,
    bureau: Vec<Option<String>>,
}

impl CustomerColumns {
    fn of(rows: &[(usize, &CustomerRegistered)]) -> Self {
        let col = |f: &dyn Fn(&CustomerRegistered) -> String| -> Vec<String> {
            rows.iter().map(|(_, c)| f(c)).collect()
        };
        CustomerColumns {
            id: col(&|c| c.customer_id.clone()),
            at: rows.iter().map(|(_, c)| c.registered_at).collect(),
            name: col(&|c| c.full_name.clone()),
            email: col(&|c| c.email.clone()),
            phone: col(&|c| c.phone.clone()),
            dob: rows.iter().map(|(_, c)| c.date_of_birth).collect(),
            age: rows.iter().map(|(_, c)| c.age).collect(),
            employment: rows
                .iter()
                .map(|(_, c)| employment_symbol(c.employment_type))
                .collect(),
            employer: rows.iter().map(|(_, c)| c.employer_name.clone()).collect(),
            years: rows.iter().map(|(_, c)| c.years_employed).collect(),
            income: rows.iter().map(|(_, c)| c.monthly_income).collect(),
            emi: rows.iter().map(|(_, c)| c.existing_emi).collect(),
            dependents: rows.iter().map(|(_, c)| c.dependents).collect(),
            residence: rows
                .iter()
                .map(|(_, c)| residence_symbol(c.residence))
                .collect(),
            region: col(&|c| c.region.clone()),
            bureau: rows
                .iter()
                .map(|(_, c)| {
                    c.bureau
                        .as_ref()
                        .and_then(|b| serde_json::to_string(b).ok())
                })
                .collect(),
        }
    }
}

/// Store the batch's new customers. A customer id already stored with the same record (as it
/// was registered, before any change) changes nothing; with another record it is refused as a
/// conflict (changes to a customer are `CustomerUpdated` events, not registrations).
async fn insert_customers(
    tx: &mut PgConnection,
    customers: &[(usize, &CustomerRegistered)],
    out: &mut BatchOutcome,
) -> Result<(), sqlx::Error> {
    if customers.is_empty() {
        return Ok(());
    }
    let rows = first_by_key(customers, |c| c.customer_id.clone(), "customer_id", out);
    let c = CustomerColumns::of(&rows);
    // New ids are inserted; the statement's own read of `customers` sees the rows stored
    // before it, and returns those (ids not inserted) whose contents differ.
    let differing: HashSet<String> = sqlx::query_scalar!(
        "WITH t AS (SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], \
           $5::text[], $6::date[], $7::int4[], $8::text[], $9::text[], $10::float4[], \
           $11::int8[], $12::int8[], $13::int4[], $14::text[], $15::text[], $16::text[]) \
           AS t(id, at, n, e, ph, dob, age, emp, er, ye, inc, ob, dep, res, reg, b)), \
         ins AS (INSERT INTO customers (customer_id, registered_at, full_name, email, phone, \
           date_of_birth, age, employment_type, employer_name, years_employed, monthly_income, \
           existing_emi, dependents, residence, region, bureau) \
           SELECT id, at, n, e, ph, dob, age, emp, er, ye, inc, ob, dep, res, reg, b::jsonb \
           FROM t ON CONFLICT (customer_id) DO NOTHING RETURNING customer_id), \
         stored AS MATERIALIZED (SELECT * FROM t \
           WHERE t.id NOT IN (SELECT customer_id FROM ins)) \
         SELECT s.customer_id FROM customers s JOIN stored t ON s.customer_id = t.id \
         LEFT JOIN LATERAL (SELECT h.previous FROM customer_changes h \
           WHERE h.customer_id = s.customer_id ORDER BY h.version LIMIT 1) f ON true \
         CROSS JOIN LATERAL jsonb_populate_record(NULL::customers, \
           COALESCE(f.previous, to_jsonb(s))) c \
         WHERE (c.registered_at, c.full_name, c.email, c.phone, c.date_of_birth, c.age, \
             c.employment_type, c.employer_name, c.years_employed, c.monthly_income, \
             c.existing_emi, c.dependents, c.residence, c.region, c.bureau) \
           IS DISTINCT FROM (t.at, t.n, t.e, t.ph, t.dob, t.age, t.emp, t.er, t.ye, t.inc, t.ob, \
             t.dep, t.res, t.reg, t.b::jsonb)",
        &c.id,
        &c.at,
        &c.name,
        &c.email,
        &c.phone,
        &c.dob as _,
        &c.age as _,
        &c.employment as _,
        &c.employer as _,
        &c.years,
        &c.income,
        &c.emi,
        &c.dependents,
        &c.residence as _,
        &c.region,
        &c.bureau as _
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    drop_conflicts(rows, |c| &c.customer_id, &differing, "customer_id", out);
    Ok(())
}

/// Apply the batch's customer changes in order. Each keeps the whole record before it in
/// `customer_changes` (the next version), replaces the fields it sets and writes an audit row
/// naming who made it and which fields. A change already stored under its `update_id` changes
/// nothing (a replay); the same id with other contents, or a change to a customer never
/// registered, is refused.
async fn apply_customer_updates(
    tx: &mut PgConnection,
    updates: &[(usize, &CustomerUpdated)],
    out: &mut BatchOutcome,
) -> Result<(), sqlx::Error> {
    for &(i, u) in updates {
        let changes = serde_json::to_value(u)
            .map_err(|e| sqlx::Error::Protocol(format!("a customer change as JSON: {e}")))?;
        let row = sqlx::query!(
            "WITH prev AS (SELECT c.* FROM customers c WHERE c.customer_id = $2 FOR UPDATE), \
             ins AS (INSERT INTO customer_changes (update_id, customer_id, version, changed_at, \
                 changed_by, reason, changes, previous) \
               SELECT $1, p.customer_id, 1 + COALESCE((SELECT max(h.version) \
                   FROM customer_changes h WHERE h.customer_id = p.customer_id), 1), \
                 $3, $4, $5, $6, to_jsonb(p) FROM prev p \
               ON CONFLICT (update_id) DO NOTHING RETURNING version) \
             SELECT (SELECT version FROM ins) AS inserted, \
               (SELECT h.changes = $6 FROM customer_changes h WHERE h.update_id = $1) AS same, \
               EXISTS (SELECT 1 FROM prev) AS \"registered!\"",
            u.update_id,
            u.customer_id,
            u.updated_at,
            u.updated_by,
            u.reason,
            changes
        )
        .fetch_one(&mut *tx)
        .await?;
        let Some(version) = row.inserted else {
            match row.same {
                Some(true) => {}
                Some(false) => out.rejected.push((i, conflict("update_id"))),
                None => out.rejected.push((
                    i,
                    Rejection {
                        class: "unknown_customer",
                        message: format!(
                            "customer {} is not registered; register it before changing it",
                            u.customer_id
                        ),
                    },
                )),
            }
            continue;
        };
        sqlx::query!(
            "UPDATE customers SET full_name = COALESCE($2, full_name), \
               email = COALESCE($3, email), phone = COALESCE($4, phone), \
               employment_type = COALESCE($5, employment_type), \
               employer_name = COALESCE($6, employer_name), \
               years_employed = COALESCE($7, years_employed), \
               monthly_income = COALESCE($8, monthly_income), \
               existing_emi = COALESCE($9, existing_emi), \
               dependents = COALESCE($10, dependents), residence = COALESCE($11, residence), \
               region = COALESCE($12, region) \
             WHERE customer_id = $1",
            u.customer_id,
            u.full_name,
            u.email,
            u.phone,
            u.employment_type.map(employment_symbol),
            u.employer_name,
            u.years_employed,
            u.monthly_income,
            u.existing_emi,
            u.dependents,
            u.residence.map(residence_symbol),
            u.region
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "INSERT INTO audit_log (actor, action, subject, details) \
             VALUES ($1, 'customer.updated', $2, $3)",
            u.updated_by,
            u.customer_id,
            serde_json::json!({
                "update_id": u.update_id,
                "version": version,
                "fields": u.changed_fields(),
            })
        )
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// Store the batch's new applications. An application id already stored with the same payload
/// changes nothing (a retry); with another payload it is refused as a conflict and the stored
/// application stands.
async fn insert_applications(
    tx: &mut PgConnection,
    applications: &[(usize, &LoanApplication)],
    out: &mut BatchOutcome,
) -> Result<(), sqlx::Error> {
    if applications.is_empty() {
        return Ok(());
    }
    let rows = first_by_key(
        applications,
        |a| a.application_id.clone(),
        "application_id",
        out,
    );
    let payload = |rows: &[(usize, &LoanApplication)]| -> Vec<String> {
        rows.iter()
            .map(|(_, a)| serde_json::to_string(a).unwrap_or_default())
            .collect()
    };
    if rows.is_empty() {
        return Ok(());
    }
    let payloads = payload(&rows);
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
    let differing: HashSet<String> = sqlx::query_scalar!(
        "SELECT a.application_id FROM applications a \
         JOIN unnest($1::text[], $2::text[]) AS t(id, p) ON a.application_id = t.id \
         WHERE a.payload IS DISTINCT FROM t.p::jsonb",
        &rows
            .iter()
            .map(|(_, a)| a.application_id.clone())
            .collect::<Vec<_>>(),
        &payload(&rows)
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
struct DecisionColumns {
    id: Vec<String>,
    customer: Vec<String>,
    at: Vec<DateTime<Utc>>,
    model: Vec<String>,
    features: Vec<String>,
    pd: Vec<f64>,
    score: Vec<i32>,
    clamped: Vec<bool>,
    grade: Vec<String>,
    decision: Vec<&'static str>,
    rule_hits: Vec<String>,
    emi: Vec<i64>,
    foir: Vec<f64>,
    ltv: Vec<Option<f64>>,
    challenger: Vec<Option<String>>,
    challenger_pd: Vec<Option<f64>>,
}

impl DecisionColumns {
    fn of(rows: &[(usize, &Decision)]) -> Self {
        let col = |f: &dyn Fn(&Decision) -> String| -> Vec<String> {
            rows.iter().map(|(_, d)| f(d)).collect()
        };
        DecisionColumns {
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
            rule_hits: col(&|d| {
                serde_json::to_string(&d.rule_hits).unwrap_or_else(|_| "[]".into())
            }),
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
        }
    }
}

/// Store the batch's new decisions, with their reasons. A decision is never rewritten: one
/// stored for the same application with the same figures changes nothing (a replay); one with
/// other figures is refused as a conflict. Returns the customers' latest PDs among them.
async fn insert_decisions(
    tx: &mut PgConnection,
    decisions: &[(usize, &Decision)],
    out: &mut BatchOutcome,
) -> Result<Vec<CustomerRisk>, sqlx::Error> {
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
    let c = DecisionColumns::of(&rows);
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

/// A customer's PD from their latest decision, and when it was decided.
type CustomerRisk = (String, f64, DateTime<Utc>);

/// Keep each customer's latest PD (`risk` sorted by customer, so concurrent batches lock the
/// rows in one order).
async fn upsert_customer_risk(
    tx: &mut PgConnection,
    risk: &[CustomerRisk],
) -> Result<(), sqlx::Error> {
    if risk.is_empty() {
        return Ok(());
    }
    let customers: Vec<String> = risk.iter().map(|r| r.0.clone()).collect();
    let pds: Vec<f64> = risk.iter().map(|r| r.1).collect();
    let decided: Vec<DateTime<Utc>> = risk.iter().map(|r| r.2).collect();
    sqlx::query!(
        "INSERT INTO customer_risk (customer_id, pd, decided_at) \
         SELECT * FROM unnest($1::text[], $2::float8[], $3::timestamptz[]) \
         ON CONFLICT (customer_id) DO UPDATE SET pd = excluded.pd, decided_at = excluded.decided_at \
         WHERE customer_risk.decided_at < excluded.decided_at",
        &customers,
        &pds,
        &decided
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A day-end tick of the batch: (partition, business date).
type Tick = (i32, NaiveDate);

/// Apply the batch's loan events; returns its day-end ticks, for `record_ticks`.
async fn apply_events(
    tx: &mut PgConnection,
    events: &[(usize, &Incoming, &schemas::LoanEvent)],
    mode: PrepaymentMode,
    out: &mut BatchOutcome,
) -> Result<Vec<Tick>, sqlx::Error> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    // Event ids: first occurrence in the batch, and not applied before.
    let mut seen = HashSet::new();
    let mut candidates = Vec::new();
    let mut ticks = Vec::new();
    for &(i, m, e) in events {
        if let LoanEventBody::BusinessDayClosed(b) = &e.body {
            ticks.push((m.partition, b.business_date));
            continue;
        }
        if seen.insert(e.event_id.as_str()) {
            candidates.push((i, e));
        } else {
            out.duplicates += 1;
        }
    }
    let ids: Vec<String> = candidates.iter().map(|(_, e)| e.event_id.clone()).collect();
    let fresh: HashSet<String> = if ids.is_empty() {
        HashSet::new()
    } else {
        sqlx::query_scalar!(
            "INSERT INTO applied_events (event_id) SELECT unnest($1::text[]) \
             ON CONFLICT DO NOTHING RETURNING event_id",
            &ids
        )
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect()
    };
    let last_closed: Option<NaiveDate> = sqlx::query_scalar!(
        "SELECT max(business_date) FROM business_days WHERE closed_at IS NOT NULL"
    )
    .fetch_one(&mut *tx)
    .await?;
    let mut disbursals = Vec::new();
    let mut payments = Vec::new();
    // Payments of a loan after its write-off in the same batch: applied after the write-off.
    let mut after_write_off = Vec::new();
    let mut written_off: HashSet<&str> = HashSet::new();
    let mut write_offs = Vec::new();
    let mut losses = Vec::new();
    for (i, e) in candidates {
        if !fresh.contains(&e.event_id) {
            out.duplicates += 1;
            continue;
        }
        if last_closed.is_some_and(|c| e.body.date() <= c) {
            out.late += 1;
        }
        match &e.body {
            LoanEventBody::LoanDisbursed(d) => disbursals.push((i, d)),
            LoanEventBody::PaymentReceived(p) if written_off.contains(p.loan_id.as_str()) => {
                after_write_off.push((i, p));
            }
            LoanEventBody::PaymentReceived(p) => payments.push((i, p)),
            LoanEventBody::LoanWrittenOff(a) => {
                written_off.insert(a.loan_id.as_str());
                write_offs.push((i, a));
            }
            LoanEventBody::LoanMarkedLoss(a) => losses.push((i, a)),
            LoanEventBody::BusinessDayClosed(_) => {}
        }
    }
    out.applied +=
        disbursals.len() + payments.len() + after_write_off.len() + write_offs.len() + losses.len();
    // Each loan's payments and write-off keep their order in the stream.
    let mut daily = Daily::new();
    disburse(tx, &disbursals, out).await?;
    let partition_of: HashMap<usize, i32> =
        events.iter().map(|(i, m, _)| (*i, m.partition)).collect();
    let at = Arrival {
        last_closed,
        partition_of: &partition_of,
    };
    receive_payments(tx, &payments, &at, mode, &mut daily, out).await?;
    write_off(tx, &write_offs, &at, out).await?;
    receive_payments(tx, &after_write_off, &at, mode, &mut daily, out).await?;
    mark_loss(tx, &losses, out).await?;
    write_daily(tx, &daily).await?;
    Ok(ticks)
}

/// Record the batch's day-end ticks, running the day-end of each day they complete.
///
/// A batch holds at most one tick per partition (a partition's later messages wait until its
/// day closes), all of open days. Each ticking partition's waiting events are applied first,
/// before any day's row is locked, so two transactions apply theirs side by side and take the
/// shared rows in one order (repayment counters, then the day); the tick that completes a day
/// is counted once every other partition's is committed, with what it applied.
async fn record_ticks(
    tx: &mut PgConnection,
    ctx: &ApplyContext,
    ticks: &[Tick],
    out: &mut BatchOutcome,
) -> Result<(), sqlx::Error> {
    let mode = ctx.domain.servicing.prepayment;
    let mut closed_dates = HashSet::new();
    let mut open = Vec::with_capacity(ticks.len());
    for &(partition, date) in ticks {
        out.applied += 1;
        // A tick of a day already closed (a replay) changes nothing.
        let closed = sqlx::query_scalar!(
            "SELECT closed_at IS NOT NULL AS \"closed!\" FROM business_days \
             WHERE business_date = $1",
            date
        )
        .fetch_optional(&mut *tx)
        .await?;
        if closed == Some(true) {
            closed_dates.insert(date);
            continue;
        }
        // The partition has delivered the day's tick: nothing more of its loans is applied
        // until the day closes, so what waited for this day on it is applied now.
        release_pending(tx, date, mode, Some(partition)).await?;
        open.push((partition, date));
    }
    for (partition, date) in open {
        if record_tick(tx, ctx, partition, date, out).await? {
            closed_dates.insert(date);
        }
    }
    for &(partition, date) in ticks {
        out.ticks
            .push((partition, date, closed_dates.contains(&date)));
    }
    Ok(())
}

async fn disburse(
    tx: &mut PgConnection,
    disbursals: &[(usize, &LoanDisbursed)],
    out: &mut BatchOutcome,
) -> Result<(), sqlx::Error> {
    if disbursals.is_empty() {
        return Ok(());
    }
    let mut schedules = Vec::with_capacity(disbursals.len());
    for (_, d) in disbursals {
        let rate = RateBps::clamped(d.interest_rate_bps);
        let months = u32::try_from(d.tenure_months).unwrap_or(1);
        schedules.push((
            risk_core::schedule::emi(d.principal, rate, months),
            schedule(d.principal, rate, months, d.first_due_on),
        ));
    }
    let inserted: HashSet<String> = sqlx::query_scalar!(
        "INSERT INTO loans (loan_id, application_id, customer_id, principal, interest_rate_bps, \
           tenure_months, emi, instalments, disbursed_on, first_due_on, maturity_on, \
           collateral_value, purpose, region, grade, origination_pd) \
         SELECT t.id, t.app, t.cust, t.p, t.r, t.n, t.emi, t.k, t.dis, t.fd, t.mat, t.col, \
           a.purpose, c.region, d.grade, d.pd \
         FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::int4[], $6::int4[], \
           $7::int8[], $8::int4[], $9::date[], $10::date[], $11::date[], $12::int8[]) \
           AS t(id, app, cust, p, r, n, emi, k, dis, fd, mat, col) \
         LEFT JOIN applications a ON a.application_id = t.app \
         LEFT JOIN decisions d ON d.application_id = t.app \
         LEFT JOIN customers c ON c.customer_id = t.cust \
         ON CONFLICT DO NOTHING RETURNING loan_id",
        &disbursals
            .iter()
            .map(|(_, d)| d.loan_id.clone())
            .collect::<Vec<_>>(),
        &disbursals
            .iter()
            .map(|(_, d)| d.application_id.clone())
            .collect::<Vec<_>>(),
        &disbursals
            .iter()
            .map(|(_, d)| d.customer_id.clone())
            .collect::<Vec<_>>(),
        &disbursals
            .iter()
            .map(|(_, d)| d.principal)
            .collect::<Vec<_>>(),
        &disbursals
            .iter()
            .map(|(_, d)| d.interest_rate_bps)
            .collect::<Vec<_>>(),
        &disbursals
            .iter()
            .map(|(_, d)| d.tenure_months)
            .collect::<Vec<_>>(),
        &schedules.iter().map(|(emi, _)| *emi).collect::<Vec<_>>(),
        &schedules
            .iter()
            .map(|(_, s)| i32::try_from(s.len()).unwrap_or(i32::MAX).max(1))
            .collect::<Vec<_>>(),
        &disbursals
            .iter()
            .map(|(_, d)| d.disbursed_on)
            .collect::<Vec<_>>(),
        &disbursals
            .iter()
            .map(|(_, d)| d.first_due_on)
            .collect::<Vec<_>>(),
        &disbursals
            .iter()
            .zip(&schedules)
            .map(|((_, d), (_, s))| s.last().map_or(d.first_due_on, |i| i.due_on))
            .collect::<Vec<_>>(),
        &disbursals
            .iter()
            .map(|(_, d)| d.collateral_value)
            .collect::<Vec<_>>() as _
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();

    // Each schedule is one row; its arrays are slices of the batch's flat arrays.
    let mut sched_ids = Vec::new();
    let mut sched_from = Vec::new();
    let mut sched_to = Vec::new();
    let mut dues = Vec::new();
    let mut principals = Vec::new();
    let mut interests = Vec::new();
    let mut status_ids = Vec::new();
    let mut status_customers = Vec::new();
    let mut status_principal = Vec::new();
    let mut status_next = Vec::new();
    let mut status_next_due = Vec::new();
    for ((i, d), (_, sched)) in disbursals.iter().zip(&schedules) {
        if !inserted.contains(&d.loan_id) {
            out.rejected.push((
                *i,
                Rejection {
                    class: "conflict",
                    message: "loan_id or application_id is already booked".into(),
                },
            ));
            continue;
        }
        if !sched.is_empty() {
            sched_ids.push(d.loan_id.clone());
            sched_from.push(slice_bound(dues.len() + 1));
            for inst in sched {
                dues.push(inst.due_on);
                principals.push(inst.principal);
                interests.push(inst.interest);
            }
            sched_to.push(slice_bound(dues.len()));
        }
        // The first instalment with anything to pay (a schedule's instalments are never all
        // zero: its principal is positive).
        let first = sched.iter().find(|i| i.principal + i.interest > 0);
        status_ids.push(d.loan_id.clone());
        status_customers.push(d.customer_id.clone());
        status_principal.push(d.principal);
        status_next.push(first.map(|i| i32::try_from(i.seq).unwrap_or(i32::MAX)));
        status_next_due.push(first.map(|i| i.due_on));
    }
    if !sched_ids.is_empty() {
        sqlx::query!(
            "INSERT INTO loan_schedules (loan_id, due_on, principal, interest) \
             SELECT t.id, ($4::date[])[t.a:t.b], ($5::int8[])[t.a:t.b], ($6::int8[])[t.a:t.b] \
             FROM unnest($1::text[], $2::int4[], $3::int4[]) AS t(id, a, b)",
            &sched_ids,
            &sched_from,
            &sched_to,
            &dues,
            &principals,
            &interests
        )
        .execute(&mut *tx)
        .await?;
    }
    if !status_ids.is_empty() {
        sqlx::query!(
            "INSERT INTO loan_status (loan_id, customer_id, state, outstanding_principal, \
               next_unpaid_seq, next_unpaid_due_on) \
             SELECT id, c, 'ACTIVE', p, n, fd \
             FROM unnest($1::text[], $2::text[], $3::int8[], $4::int4[], $5::date[]) \
               AS t(id, c, p, n, fd)",
            &status_ids,
            &status_customers,
            &status_principal,
            &status_next as _,
            &status_next_due as _
        )
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// A 1-based array bound for a slice of a batch's flat array.
fn slice_bound(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// A loan's cursor as stored.
#[derive(Debug, Clone)]
struct Stored {
    cursor: Cursor,
    /// Money received on it is a recovery.
    written_off: bool,
}

/// The cursors of `loans` (each with the total its payments bring, `totals`), with the
/// instalments those totals can reach, or all of them from the next unpaid one with `to_end`.
async fn cursors_of(
    tx: &mut PgConnection,
    loans: &[String],
    totals: &[i64],
    to_end: bool,
    mode: PrepaymentMode,
) -> Result<HashMap<String, Stored>, sqlx::Error> {
    Ok(sqlx::query!(
        "SELECT s.loan_id, s.state, s.next_unpaid_seq, s.next_unpaid_paid, \
           s.outstanding_principal, l.disbursed_on, l.interest_rate_bps, l.emi, \
           cardinality(sc.due_on) AS \"length?\", \
           coalesce(sc.due_on[s.next_unpaid_seq - 1], l.disbursed_on) AS \"period_start!\", \
           sc.due_on[s.next_unpaid_seq:r.last] AS \"due_on?\", \
           sc.principal[s.next_unpaid_seq:r.last] AS \"principal?\", \
           sc.interest[s.next_unpaid_seq:r.last] AS \"interest?\" \
         FROM unnest($1::text[], $2::int8[]) AS u(loan_id, total) \
         JOIN loan_status s ON s.loan_id = u.loan_id \
         JOIN loans l ON l.loan_id = s.loan_id \
         LEFT JOIN loan_schedules sc ON sc.loan_id = s.loan_id AND s.state = 'ACTIVE' \
         CROSS JOIN LATERAL (SELECT CASE WHEN $3 THEN cardinality(sc.due_on) \
           ELSE s.next_unpaid_seq + least(u.total / greatest(1, \
             sc.principal[s.next_unpaid_seq] + sc.interest[s.next_unpaid_seq]), 100000)::int4 + 1 \
           END AS last) r",
        loans,
        totals,
        to_end
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|r| {
        let due_on = r.due_on.unwrap_or_default();
        let principal = r.principal.unwrap_or_default();
        let interest = r.interest.unwrap_or_default();
        let read = principal.len() == due_on.len() && interest.len() == due_on.len();
        let first = r
            .next_unpaid_seq
            .filter(|_| read && !due_on.is_empty())
            .and_then(|f| u32::try_from(f).ok());
        let rate = RateBps::clamped(r.interest_rate_bps);
        let cursor = match first {
            Some(first) => Cursor {
                first,
                paid: r.next_unpaid_paid,
                beyond: u32::try_from(
                    (i64::from(r.length.unwrap_or(0)) - i64::from(first) + 1 - due_on.len() as i64)
                        .max(0),
                )
                .unwrap_or(0),
                due_on,
                principal,
                interest,
                at: 0,
                outstanding: r.outstanding_principal,
                period_start: r.period_start,
                rate,
                emi: r.emi,
                mode,
            },
            // Not active (no schedule read), or nothing left to pay: payments are surplus.
            None => Cursor {
                first: 0,
                paid: 0,
                due_on: Vec::new(),
                principal: Vec::new(),
                interest: Vec::new(),
                at: 0,
                beyond: 0,
                outstanding: 0,
                period_start: r.disbursed_on,
                rate,
                emi: r.emi,
                mode,
            },
        };
        (
            r.loan_id,
            Stored {
                cursor,
                written_off: r.state == "WRITTEN_OFF",
            },
        )
    })
    .collect())
}

/// Whether a payment or write-off dated `date` is applied now: it is dated on or before the day
/// after the last closed day (so the next day-end counts it). Later ones wait for their day.
fn effective_now(last_closed: Option<NaiveDate>, date: NaiveDate) -> bool {
    last_closed
        .and_then(|c| c.succ_opt())
        .is_some_and(|next| date <= next)
}

/// Check the batch's payments; book those dated for now, keep the others for their day-end.
/// Where a batch's events stand: the last closed day, and each event's partition (by its index
/// in the batch).
struct Arrival<'a> {
    last_closed: Option<NaiveDate>,
    partition_of: &'a HashMap<usize, i32>,
}

async fn receive_payments(
    tx: &mut PgConnection,
    payments: &[(usize, &PaymentReceived)],
    at: &Arrival<'_>,
    mode: PrepaymentMode,
    daily: &mut Daily,
    out: &mut BatchOutcome,
) -> Result<(), sqlx::Error> {
    if payments.is_empty() {
        return Ok(());
    }
    // Payment ids already booked or waiting (under another event id) are conflicts.
    let ids: Vec<String> = payments.iter().map(|(_, p)| p.payment_id.clone()).collect();
    let known: HashSet<String> = sqlx::query_scalar!(
        "SELECT payment_id AS \"id!\" FROM payments WHERE payment_id = ANY($1) \
         UNION ALL SELECT payment_id AS \"id!\" FROM pending_events WHERE payment_id = ANY($1)",
        &ids
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    let loans: Vec<String> = payments
        .iter()
        .map(|(_, p)| p.loan_id.clone())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let disbursed: HashMap<String, NaiveDate> = sqlx::query!(
        "SELECT loan_id, disbursed_on FROM loans WHERE loan_id = ANY($1)",
        &loans
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|r| (r.loan_id, r.disbursed_on))
    .collect();
    let mut seen_ids = HashSet::new();
    let mut now: Vec<&PaymentReceived> = Vec::new();
    let last_closed = at.last_closed;
    let mut later: Vec<(i32, &PaymentReceived)> = Vec::new();
    for (i, p) in payments {
        let reject = |class, message: &str| Rejection {
            class,
            message: message.to_string(),
        };
        let refused = if known.contains(&p.payment_id) || !seen_ids.insert(p.payment_id.as_str()) {
            Some(reject("conflict", "payment_id is already booked"))
        } else if p.amount <= 0 || p.amount > MAX_PAYMENT {
            Some(reject(
                "invalid_amount",
                "amount must be positive and at most 10^15 paise",
            ))
        } else {
            match disbursed.get(&p.loan_id) {
                None => Some(reject("unknown_loan", "no disbursed loan has this loan_id")),
                Some(d) if p.paid_on < *d => Some(reject(
                    "before_disbursal",
                    "paid_on is before the loan's disbursal date",
                )),
                Some(_) => None,
            }
        };
        match refused {
            Some(r) => out.rejected.push((*i, r)),
            None if effective_now(last_closed, p.paid_on) => now.push(p),
            None => later.push((at.partition_of.get(i).copied().unwrap_or(0), p)),
        }
    }
    if !later.is_empty() {
        sqlx::query!(
            "INSERT INTO pending_events (business_date, kind, loan_id, payment_id, amount, \
               partition) \
             SELECT d, 'payment', l, p, a, k \
             FROM unnest($1::date[], $2::text[], $3::text[], $4::int8[], $5::int4[]) \
               WITH ORDINALITY AS t(d, l, p, a, k, n) ORDER BY n",
            &later.iter().map(|(_, p)| p.paid_on).collect::<Vec<_>>(),
            &later
                .iter()
                .map(|(_, p)| p.loan_id.clone())
                .collect::<Vec<_>>(),
            &later
                .iter()
                .map(|(_, p)| p.payment_id.clone())
                .collect::<Vec<_>>(),
            &later.iter().map(|(_, p)| p.amount).collect::<Vec<_>>(),
            &later.iter().map(|(k, _)| *k).collect::<Vec<_>>()
        )
        .execute(&mut *tx)
        .await?;
    }
    book_payments(tx, &now, last_closed, mode, daily).await
}

fn cursor_bug(e: NeedsRest) -> sqlx::Error {
    sqlx::Error::Protocol(format!("payment cursor: {e} after it was read to its end"))
}

/// The repayment counters of each counted date: payments, amount, to interest, to principal,
/// surplus, instalments settled, settled on time, recovered.
type Daily = BTreeMap<NaiveDate, [i64; 8]>;

/// Book checked payments, in the order given: allocation by the one cursor of
/// `risk_core::dpd`, the loan's figures, a rescheduled remainder after a prepayment or a
/// foreclosure; the day's repayment counters are added to `daily`.
async fn book_payments(
    tx: &mut PgConnection,
    accepted: &[&PaymentReceived],
    last_closed: Option<NaiveDate>,
    mode: PrepaymentMode,
    daily: &mut Daily,
) -> Result<(), sqlx::Error> {
    if accepted.is_empty() {
        return Ok(());
    }
    // Each loan's place in its schedule and the instalments its payments can reach from there:
    // as many as the batch's payments would settle at the next instalment's size, and one
    // more; a loan whose payments need more (a prepayment reschedules the rest) is read again
    // to the end.
    let mut totals: HashMap<&str, i64> = HashMap::new();
    for p in accepted {
        *totals.entry(p.loan_id.as_str()).or_default() += p.amount.max(0);
    }
    let loans: Vec<String> = totals.keys().map(|l| l.to_string()).collect();
    let loan_totals: Vec<i64> = totals.values().copied().collect();
    let mut cursors = cursors_of(tx, &loans, &loan_totals, false, mode).await?;
    let mut trial: HashMap<&str, Cursor> = HashMap::new();
    let mut short: HashSet<String> = HashSet::new();
    for p in accepted {
        let Some(stored) = cursors.get(&p.loan_id) else {
            continue;
        };
        let c = trial
            .entry(p.loan_id.as_str())
            .or_insert_with(|| stored.cursor.clone());
        if c.allocate(p.amount, p.paid_on).is_err() {
            short.insert(p.loan_id.clone());
        }
    }
    for (loan, c) in &trial {
        if c.seq().is_none() && c.beyond > 0 {
            short.insert(loan.to_string());
        }
    }
    if !short.is_empty() {
        let ids: Vec<String> = short.into_iter().collect();
        let zeros = vec![0i64; ids.len()];
        cursors.extend(cursors_of(tx, &ids, &zeros, true, mode).await?);
    }
    // Allocate in order.
    let mut pay = PaymentRows::default();
    let mut loan_delta: BTreeMap<&str, Delta> = BTreeMap::new();
    for p in accepted {
        let Some(stored) = cursors.get_mut(&p.loan_id) else {
            continue;
        };
        let mut a = stored
            .cursor
            .allocate(p.amount, p.paid_on)
            .map_err(cursor_bug)?;
        let recovery = if stored.written_off {
            std::mem::take(&mut a.surplus)
        } else {
            0
        };
        let counted_on = counted_on(last_closed, p.paid_on);
        let settled = a
            .settled
            .map_or(0, |(from, to)| i64::from(to) - i64::from(from) + 1);
        pay.push(p, &a, recovery, counted_on);
        let e = loan_delta.entry(p.loan_id.as_str()).or_insert(Delta {
            last: p.paid_on,
            ..Delta::default()
        });
        e.principal += a.to_principal;
        e.interest += a.to_interest;
        e.surplus += a.surplus;
        e.recovered += recovery;
        e.prepaid += a.prepaid;
        e.rescheduled |= a.rescheduled;
        e.last = e.last.max(p.paid_on);
        let d = daily.entry(counted_on).or_default();
        d[0] += 1;
        d[1] += p.amount;
        d[2] += a.to_interest;
        d[3] += a.to_principal;
        d[4] += a.surplus;
        d[5] += settled;
        d[6] += a.on_time;
        d[7] += recovery;
    }
    pay.insert(tx).await?;

    let lids: Vec<String> = loan_delta.keys().map(|l| l.to_string()).collect();
    let delta = |f: fn(&Delta) -> i64| -> Vec<i64> { loan_delta.values().map(f).collect() };
    let last_paid: Vec<NaiveDate> = loan_delta.values().map(|v| v.last).collect();
    let cursor_of = |l: &&str| cursors.get(*l).map(|s| &s.cursor);
    let next_seq: Vec<Option<i32>> = loan_delta
        .keys()
        .map(|l| {
            cursor_of(l)
                .and_then(Cursor::seq)
                .and_then(|s| i32::try_from(s).ok())
        })
        .collect();
    let next_due: Vec<Option<NaiveDate>> = loan_delta
        .keys()
        .map(|l| cursor_of(l).and_then(Cursor::next_due))
        .collect();
    let next_paid: Vec<i64> = loan_delta
        .keys()
        .map(|l| cursor_of(l).map_or(0, |c| c.paid))
        .collect();
    // A loan that was not active keeps its place (its payments are surplus; on a written-off
    // loan they are recoveries of the arrears it was written off with).
    sqlx::query!(
        "UPDATE loan_status s SET outstanding_principal = s.outstanding_principal - u.pp, \
           paid_principal = s.paid_principal + u.pp, paid_interest = s.paid_interest + u.pi, \
           prepaid_principal = s.prepaid_principal + u.pre, surplus = s.surplus + u.su, \
           recovered = s.recovered + u.rec, \
           unrecovered_arrears = greatest(s.unrecovered_arrears - u.rec, 0), \
           last_paid_on = greatest(s.last_paid_on, u.last), \
           next_unpaid_seq = CASE WHEN s.state = 'ACTIVE' THEN u.seq ELSE s.next_unpaid_seq END, \
           next_unpaid_due_on = CASE WHEN s.state = 'ACTIVE' THEN u.due \
             ELSE s.next_unpaid_due_on END, \
           next_unpaid_paid = CASE WHEN s.state = 'ACTIVE' THEN u.paid \
             ELSE s.next_unpaid_paid END, \
           state = CASE WHEN s.state = 'ACTIVE' AND u.seq IS NULL THEN 'CLOSED' ELSE s.state END, \
           closed_on = CASE WHEN s.state = 'ACTIVE' AND u.seq IS NULL THEN u.last ELSE s.closed_on END \
         FROM unnest($1::text[], $2::int8[], $3::int8[], $4::int8[], $5::date[], $6::int4[], \
           $7::date[], $8::int8[], $9::int8[], $10::int8[]) \
           AS u(loan_id, pp, pi, su, last, seq, due, paid, pre, rec) \
         WHERE s.loan_id = u.loan_id",
        &lids,
        &delta(|v| v.principal),
        &delta(|v| v.interest),
        &delta(|v| v.surplus),
        &last_paid,
        &next_seq as _,
        &next_due as _,
        &next_paid,
        &delta(|v| v.prepaid),
        &delta(|v| v.recovered)
    )
    .execute(&mut *tx)
    .await?;
    rewrite_schedules(tx, &loan_delta, &cursors).await
}

/// Add the repayment counters of `daily` to the book's. The rows are shared by concurrent
/// transactions: written once, last, in date order.
async fn write_daily(tx: &mut PgConnection, daily: &Daily) -> Result<(), sqlx::Error> {
    if daily.is_empty() {
        return Ok(());
    }
    let days: Vec<NaiveDate> = daily.keys().copied().collect();
    let col = |k: usize| daily.values().map(|v| v[k]).collect::<Vec<i64>>();
    sqlx::query!(
        "INSERT INTO repayment_daily AS r (counted_on, payments, amount, to_interest, \
           to_principal, surplus, instalments_settled, settled_on_time, recovered) \
         SELECT * FROM unnest($1::date[], $2::int8[], $3::int8[], $4::int8[], $5::int8[], \
           $6::int8[], $7::int8[], $8::int8[], $9::int8[]) \
         ON CONFLICT (counted_on) DO UPDATE SET payments = r.payments + excluded.payments, \
           amount = r.amount + excluded.amount, to_interest = r.to_interest + excluded.to_interest, \
           to_principal = r.to_principal + excluded.to_principal, \
           surplus = r.surplus + excluded.surplus, \
           instalments_settled = r.instalments_settled + excluded.instalments_settled, \
           settled_on_time = r.settled_on_time + excluded.settled_on_time, \
           recovered = r.recovered + excluded.recovered",
        &days,
        &col(0),
        &col(1),
        &col(2),
        &col(3),
        &col(4),
        &col(5),
        &col(6),
        &col(7)
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The business date an event dated `date` counts from: its own, or the day after the last
/// closed day when it arrives after its date's day-end (closed days are never restated).
fn counted_on(last_closed: Option<NaiveDate>, date: NaiveDate) -> NaiveDate {
    last_closed
        .and_then(|c| c.succ_opt())
        .map_or(date, |next| date.max(next))
}

/// What a batch's payments did to one loan.
#[derive(Debug, Default)]
struct Delta {
    principal: i64,
    interest: i64,
    surplus: i64,
    recovered: i64,
    prepaid: i64,
    rescheduled: bool,
    last: NaiveDate,
}

/// Store the schedules a prepayment or a foreclosure recomputed: the instalments before the
/// cursor's first as they were, then the cursor's; the loan's instalment count and maturity
/// follow.
async fn rewrite_schedules(
    tx: &mut PgConnection,
    deltas: &BTreeMap<&str, Delta>,
    cursors: &HashMap<String, Stored>,
) -> Result<(), sqlx::Error> {
    let mut ids = Vec::new();
    let mut firsts = Vec::new();
    let mut from = Vec::new();
    let mut to = Vec::new();
    let mut dues = Vec::new();
    let mut principals = Vec::new();
    let mut interests = Vec::new();
    for (loan, d) in deltas {
        let Some(stored) = cursors.get(*loan).filter(|_| d.rescheduled) else {
            continue;
        };
        ids.push(loan.to_string());
        firsts.push(i32::try_from(stored.cursor.first).unwrap_or(i32::MAX));
        from.push(slice_bound(dues.len() + 1));
        for (due, p, i) in stored.cursor.rows() {
            dues.push(due);
            principals.push(p);
            interests.push(i);
        }
        to.push(slice_bound(dues.len()));
    }
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        "WITH t AS (SELECT * FROM unnest($1::text[], $2::int4[], $3::int4[], $4::int4[]) \
           AS t(id, f, a, b)), \
         s AS (UPDATE loan_schedules sc SET \
           due_on = sc.due_on[1:t.f - 1] || ($5::date[])[t.a:t.b], \
           principal = sc.principal[1:t.f - 1] || ($6::int8[])[t.a:t.b], \
           interest = sc.interest[1:t.f - 1] || ($7::int8[])[t.a:t.b] \
           FROM t WHERE sc.loan_id = t.id \
           RETURNING sc.loan_id, cardinality(sc.due_on) AS n, sc.due_on[cardinality(sc.due_on)] AS last) \
         UPDATE loans l SET instalments = s.n, maturity_on = greatest(s.last, l.first_due_on) \
         FROM s WHERE l.loan_id = s.loan_id",
        &ids,
        &firsts,
        &from,
        &to,
        &dues,
        &principals,
        &interests
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

#[derive(Default)]
struct PaymentRows {
    ids: Vec<String>,
    loans: Vec<String>,
    amounts: Vec<i64>,
    dates: Vec<NaiveDate>,
    to_interest: Vec<i64>,
    to_principal: Vec<i64>,
    surplus: Vec<i64>,
    recovery: Vec<i64>,
    counted_on: Vec<NaiveDate>,
    settled_from: Vec<Option<i32>>,
    settled_to: Vec<Option<i32>>,
}

impl PaymentRows {
    fn push(&mut self, p: &PaymentReceived, a: &Allocation, recovery: i64, counted_on: NaiveDate) {
        let seq = |s: u32| i32::try_from(s).unwrap_or(i32::MAX);
        self.ids.push(p.payment_id.clone());
        self.loans.push(p.loan_id.clone());
        self.amounts.push(p.amount);
        self.dates.push(p.paid_on);
        self.to_interest.push(a.to_interest);
        self.to_principal.push(a.to_principal);
        self.surplus.push(a.surplus);
        self.recovery.push(recovery);
        self.counted_on.push(counted_on);
        self.settled_from.push(a.settled.map(|s| seq(s.0)));
        self.settled_to.push(a.settled.map(|s| seq(s.1)));
    }

    async fn insert(self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.ids.is_empty() {
            return Ok(());
        }
        sqlx::query!(
            "INSERT INTO payments (payment_id, loan_id, amount, paid_on, to_interest, \
               to_principal, surplus, settled_from, settled_to, recovery, counted_on) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::date[], $5::int8[], \
               $6::int8[], $7::int8[], $8::int4[], $9::int4[], $10::int8[], $11::date[])",
            &self.ids,
            &self.loans,
            &self.amounts,
            &self.dates,
            &self.to_interest,
            &self.to_principal,
            &self.surplus,
            &self.settled_from as _,
            &self.settled_to as _,
            &self.recovery,
            &self.counted_on
        )
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

async fn known_loans(
    tx: &mut PgConnection,
    actions: &[(usize, &LoanAction)],
) -> Result<HashSet<String>, sqlx::Error> {
    let ids: Vec<String> = actions.iter().map(|(_, a)| a.loan_id.clone()).collect();
    Ok(sqlx::query_scalar!(
        "SELECT loan_id FROM loan_status WHERE loan_id = ANY($1)",
        &ids
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect())
}

fn reject_unknown(
    actions: &[(usize, &LoanAction)],
    known: &HashSet<String>,
    out: &mut BatchOutcome,
) -> (Vec<String>, Vec<NaiveDate>) {
    let mut ids = Vec::new();
    let mut dates = Vec::new();
    for (i, a) in actions {
        if known.contains(&a.loan_id) {
            ids.push(a.loan_id.clone());
            dates.push(a.on);
        } else {
            out.rejected.push((
                *i,
                Rejection {
                    class: "unknown_loan",
                    message: "no disbursed loan has this loan_id".into(),
                },
            ));
        }
    }
    (ids, dates)
}

/// Check the batch's write-offs (an open loan, on or after its disbursal); apply those dated
/// for now, keep the others for their day-end.
async fn write_off(
    tx: &mut PgConnection,
    actions: &[(usize, &LoanAction)],
    at: &Arrival<'_>,
    out: &mut BatchOutcome,
) -> Result<(), sqlx::Error> {
    let last_closed = at.last_closed;
    if actions.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = actions.iter().map(|(_, a)| a.loan_id.clone()).collect();
    let loans: HashMap<String, (String, NaiveDate)> = sqlx::query!(
        "SELECT s.loan_id, s.state, l.disbursed_on FROM loan_status s \
         JOIN loans l USING (loan_id) WHERE s.loan_id = ANY($1)",
        &ids
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|r| (r.loan_id, (r.state, r.disbursed_on)))
    .collect();
    let mut now = Vec::new();
    let mut later = Vec::new();
    let mut seen = HashSet::new();
    for (i, a) in actions {
        let refused = match loans.get(&a.loan_id) {
            None => Some(("unknown_loan", "no disbursed loan has this loan_id")),
            Some((_, d)) if a.on < *d => Some((
                "before_disbursal",
                "the write-off is dated before the disbursal",
            )),
            Some((state, _)) if state != "ACTIVE" || !seen.insert(a.loan_id.as_str()) => {
                Some(("not_open", "the loan is closed or already written off"))
            }
            Some(_) => None,
        };
        match refused {
            Some((class, message)) => out.rejected.push((
                *i,
                Rejection {
                    class,
                    message: message.into(),
                },
            )),
            None if effective_now(last_closed, a.on) => now.push((a.loan_id.clone(), a.on)),
            None => later.push((
                a.loan_id.clone(),
                a.on,
                at.partition_of.get(i).copied().unwrap_or(0),
            )),
        }
    }
    if !later.is_empty() {
        sqlx::query!(
            "INSERT INTO pending_events (business_date, kind, loan_id, partition) \
             SELECT d, 'write_off', l, k FROM unnest($1::date[], $2::text[], $3::int4[]) \
               WITH ORDINALITY AS t(d, l, k, n) ORDER BY n",
            &later.iter().map(|w| w.1).collect::<Vec<_>>(),
            &later.iter().map(|w| w.0.clone()).collect::<Vec<_>>(),
            &later.iter().map(|w| w.2).collect::<Vec<_>>()
        )
        .execute(&mut *tx)
        .await?;
    }
    apply_write_offs(tx, &now, last_closed).await
}

/// Write loans off: the outstanding principal leaves the book, the loan keeps its last
/// classification and the arrears it is written off with (due on or before the date, unpaid)
/// until recovered; the history records the write-off.
async fn apply_write_offs(
    tx: &mut PgConnection,
    write_offs: &[(String, NaiveDate)],
    last_closed: Option<NaiveDate>,
) -> Result<(), sqlx::Error> {
    if write_offs.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        "WITH u AS (SELECT * FROM unnest($1::text[], $2::date[], $3::date[]) \
           AS u(loan_id, on_date, counted_on)), \
         w AS (UPDATE loan_status s SET state = 'WRITTEN_OFF', written_off_on = u.on_date, \
           written_off_amount = s.outstanding_principal, outstanding_principal = 0, \
           unrecovered_arrears = coalesce(( \
             SELECT sum(x.p + x.i) FROM loan_schedules sc \
             CROSS JOIN LATERAL unnest(sc.due_on[s.next_unpaid_seq:], \
               sc.principal[s.next_unpaid_seq:], sc.interest[s.next_unpaid_seq:]) AS x(d, p, i) \
             WHERE sc.loan_id = s.loan_id AND x.d <= u.on_date), 0)::int8 \
             - CASE WHEN s.next_unpaid_due_on <= u.on_date THEN s.next_unpaid_paid ELSE 0 END \
           FROM u WHERE s.loan_id = u.loan_id AND s.state = 'ACTIVE' \
           RETURNING s.loan_id, u.counted_on, s.asset_class, s.stage, s.dpd, \
             s.written_off_amount) \
         INSERT INTO status_history (loan_id, business_date, from_class, to_class, from_stage, \
           to_stage, dpd, outstanding, reason) \
         SELECT loan_id, counted_on, asset_class, asset_class, stage, stage, dpd, \
           coalesce(written_off_amount, 0), 'write_off' FROM w \
         ON CONFLICT DO NOTHING",
        &write_offs.iter().map(|w| w.0.clone()).collect::<Vec<_>>(),
        &write_offs.iter().map(|w| w.1).collect::<Vec<_>>(),
        &write_offs
            .iter()
            .map(|w| counted_on(last_closed, w.1))
            .collect::<Vec<_>>()
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Apply the payments and write-offs that waited for day-ends up to `date` — those that arrived
/// on `partition` when given, else all — each loan's in date order, then arrival order.
async fn release_pending(
    tx: &mut PgConnection,
    date: NaiveDate,
    mode: PrepaymentMode,
    partition: Option<i32>,
) -> Result<(), sqlx::Error> {
    let last_closed: Option<NaiveDate> = sqlx::query_scalar!(
        "SELECT max(business_date) FROM business_days WHERE closed_at IS NOT NULL"
    )
    .fetch_one(&mut *tx)
    .await?;
    let rows = sqlx::query!(
        "DELETE FROM pending_events WHERE business_date <= $1 \
           AND ($2::int4 IS NULL OR partition = $2) \
         RETURNING seq, business_date, kind, loan_id, payment_id, amount",
        date,
        partition
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut rows: Vec<_> = rows.into_iter().collect();
    rows.sort_by_key(|r| (r.business_date, r.seq));
    // Each loan's events in order, in layers: a layer holds, for every loan, its next run of
    // one kind (payments, or a write-off), so a loan's payment and write-off keep their order
    // while the payments of all loans without a write-off go in one call.
    let mut run_of: HashMap<&str, (usize, &str)> = HashMap::new();
    let mut layers: Vec<Vec<usize>> = Vec::new();
    for (k, r) in rows.iter().enumerate() {
        let layer = match run_of.get_mut(r.loan_id.as_str()) {
            Some((layer, kind)) if *kind == r.kind.as_str() => *layer,
            Some((layer, kind)) => {
                *layer += 1;
                *kind = r.kind.as_str();
                *layer
            }
            None => {
                run_of.insert(r.loan_id.as_str(), (0, r.kind.as_str()));
                0
            }
        };
        if layers.len() <= layer {
            layers.resize_with(layer + 1, Vec::new);
        }
        layers[layer].push(k);
    }
    let mut daily = Daily::new();
    for layer in &layers {
        let payments: Vec<PaymentReceived> = layer
            .iter()
            .map(|&k| &rows[k])
            .filter(|r| r.kind == "payment")
            .map(|r| PaymentReceived {
                payment_id: r.payment_id.clone().unwrap_or_default(),
                loan_id: r.loan_id.clone(),
                amount: r.amount.unwrap_or(0),
                paid_on: r.business_date,
            })
            .collect();
        let refs: Vec<&PaymentReceived> = payments.iter().collect();
        book_payments(tx, &refs, last_closed, mode, &mut daily).await?;
        let w: Vec<(String, NaiveDate)> = layer
            .iter()
            .map(|&k| &rows[k])
            .filter(|r| r.kind != "payment")
            .map(|r| (r.loan_id.clone(), r.business_date))
            .collect();
        if !w.is_empty() {
            apply_write_offs(tx, &w, last_closed).await?;
        }
    }
    write_daily(tx, &daily).await
}

async fn mark_loss(
    tx: &mut PgConnection,
    actions: &[(usize, &LoanAction)],
    out: &mut BatchOutcome,
) -> Result<(), sqlx::Error> {
    if actions.is_empty() {
        return Ok(());
    }
    let known = known_loans(tx, actions).await?;
    let (ids, dates) = reject_unknown(actions, &known, out);
    // Loss is the lender's decision; the day-end of that date classifies the loan as Loss.
    sqlx::query!(
        "UPDATE loan_status s SET loss_on = least(coalesce(s.loss_on, u.on_date), u.on_date) \
         FROM unnest($1::text[], $2::date[]) AS u(loan_id, on_date) \
         WHERE s.loan_id = u.loan_id",
        &ids,
        &dates
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Record partition `partition`'s tick for `date` (its waiting events already applied); run the
/// day-end when it is the last one. Returns whether the day is closed.
async fn record_tick(
    tx: &mut PgConnection,
    ctx: &ApplyContext,
    partition: i32,
    date: NaiveDate,
    out: &mut BatchOutcome,
) -> Result<bool, sqlx::Error> {
    let row = sqlx::query!(
        "INSERT INTO business_days AS b (business_date, partitions, ticks) \
         VALUES ($1, $2, ARRAY[$3::int4]) \
         ON CONFLICT (business_date) DO UPDATE SET ticks = CASE \
           WHEN $3 = ANY(b.ticks) THEN b.ticks ELSE b.ticks || $3 END \
         RETURNING cardinality(ticks) AS \"ticked!\", partitions, \
           closed_at IS NOT NULL AS \"closed!\"",
        date,
        ctx.event_partitions,
        partition
    )
    .fetch_one(&mut *tx)
    .await?;
    let (ticked, partitions, closed) = (row.ticked, row.partitions, row.closed);
    if closed {
        return Ok(true);
    }
    if ticked < partitions {
        return Ok(false);
    }
    release_pending(tx, date, ctx.domain.servicing.prepayment, None).await?;
    let report = dayend::close_day(tx, date, &ctx.domain).await?;
    out.closed.push(report);
    Ok(true)
}
