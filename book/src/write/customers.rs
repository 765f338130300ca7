//! Customer registrations, changes (with their history) and the customers' risk summary.

use super::batch::{conflict, drop_conflicts, first_by_key, BatchOutcome, WriteError};
use super::symbols::{employment_symbol, residence_symbol};
use crate::message::Rejection;
use chrono::{DateTime, NaiveDate, Utc};
use schemas::{CustomerRegistered, CustomerUpdated};
use sqlx::PgConnection;
use std::collections::HashSet;

/// Customer records as the columns of the `customers` table.
pub(super) struct CustomerColumns {
    pub(super) id: Vec<String>,
    pub(super) at: Vec<DateTime<Utc>>,
    pub(super) name: Vec<String>,
    pub(super) email: Vec<String>,
    pub(super) phone: Vec<String>,
    pub(super) dob: Vec<Option<NaiveDate>>,
    pub(super) age: Vec<Option<i32>>,
    pub(super) employment: Vec<&'static str>,
    pub(super) employer: Vec<Option<String>>,
    pub(super) years: Vec<f32>,
    pub(super) income: Vec<i64>,
    pub(super) emi: Vec<i64>,
    pub(super) dependents: Vec<i32>,
    pub(super) residence: Vec<&'static str>,
    pub(super) region: Vec<String>,
    pub(super) bureau: Vec<Option<String>>,
}

impl CustomerColumns {
    fn of(rows: &[(usize, &CustomerRegistered)]) -> Result<Self, WriteError> {
        let bureau = rows
            .iter()
            .map(|(_, c)| c.bureau.as_ref().map(serde_json::to_string).transpose())
            .collect::<Result<Vec<_>, _>>()?;
        let col = |f: &dyn Fn(&CustomerRegistered) -> String| -> Vec<String> {
            rows.iter().map(|(_, c)| f(c)).collect()
        };
        Ok(CustomerColumns {
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
            bureau,
        })
    }
}

/// Store the batch's new customers. A customer id already stored with the same record (as it
/// was registered, before any change) changes nothing; with another record it is refused as a
/// conflict (changes to a customer are `CustomerUpdated` events, not registrations).
pub(super) async fn insert_customers(
    tx: &mut PgConnection,
    customers: &[(usize, &CustomerRegistered)],
    out: &mut BatchOutcome,
) -> Result<(), WriteError> {
    if customers.is_empty() {
        return Ok(());
    }
    let rows = first_by_key(customers, |c| c.customer_id.clone(), "customer_id", out);
    let c = CustomerColumns::of(&rows)?;
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
pub(super) async fn apply_customer_updates(
    tx: &mut PgConnection,
    updates: &[(usize, &CustomerUpdated)],
    out: &mut BatchOutcome,
) -> Result<(), WriteError> {
    for &(i, u) in updates {
        let changes = serde_json::to_value(u)?;
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

/// A customer's PD from their latest decision, and when it was decided.
pub(super) type CustomerRisk = (String, f64, DateTime<Utc>);

/// Keep each customer's latest PD (`risk` sorted by customer, so concurrent batches lock the
/// rows in one order).
pub(super) async fn upsert_customer_risk(
    tx: &mut PgConnection,
    risk: &[CustomerRisk],
) -> Result<(), WriteError> {
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
