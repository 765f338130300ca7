//! Payments: arrivals allocated against the schedule, the loan's balances and daily rows.

use super::batch::BatchOutcome;
use super::batch::WriteError;
use super::cursors::{cursor_bug, cursors_of, effective_now, rewrite_schedules, Delta};
use crate::message::Rejection;
use chrono::NaiveDate;
use risk_core::dpd::{Allocation, Cursor, PrepaymentMode, MAX_PAYMENT};
use schemas::PaymentReceived;
use sqlx::PgConnection;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Check the batch's payments; book those dated for now, keep the others for their day-end.
/// Where a batch's events stand: the last closed day, and each event's partition (by its index
/// in the batch).
pub(super) struct Arrival<'a> {
    pub(super) last_closed: Option<NaiveDate>,
    pub(super) partition_of: &'a HashMap<usize, i32>,
}

pub(super) async fn receive_payments(
    tx: &mut PgConnection,
    payments: &[(usize, &PaymentReceived)],
    at: &Arrival<'_>,
    mode: PrepaymentMode,
    daily: &mut Daily,
    out: &mut BatchOutcome,
) -> Result<(), WriteError> {
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

/// The repayment counters of each counted date: payments, amount, to interest, to principal,
/// surplus, instalments settled, settled on time, recovered.
pub(super) type Daily = BTreeMap<NaiveDate, [i64; 8]>;

/// Book checked payments, in the order given: allocation by the one cursor of
/// `risk_core::dpd`, the loan's figures, a rescheduled remainder after a prepayment or a
/// foreclosure; the day's repayment counters are added to `daily`.
pub(super) async fn book_payments(
    tx: &mut PgConnection,
    accepted: &[&PaymentReceived],
    last_closed: Option<NaiveDate>,
    mode: PrepaymentMode,
    daily: &mut Daily,
) -> Result<(), WriteError> {
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
pub(super) async fn write_daily(tx: &mut PgConnection, daily: &Daily) -> Result<(), WriteError> {
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
pub(super) fn counted_on(last_closed: Option<NaiveDate>, date: NaiveDate) -> NaiveDate {
    last_closed
        .and_then(|c| c.succ_opt())
        .map_or(date, |next| date.max(next))
}

#[derive(Default)]
pub(super) struct PaymentRows {
    pub(super) ids: Vec<String>,
    pub(super) loans: Vec<String>,
    pub(super) amounts: Vec<i64>,
    pub(super) dates: Vec<NaiveDate>,
    pub(super) to_interest: Vec<i64>,
    pub(super) to_principal: Vec<i64>,
    pub(super) surplus: Vec<i64>,
    pub(super) recovery: Vec<i64>,
    pub(super) counted_on: Vec<NaiveDate>,
    pub(super) settled_from: Vec<Option<i32>>,
    pub(super) settled_to: Vec<Option<i32>>,
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

    async fn insert(self, tx: &mut PgConnection) -> Result<(), WriteError> {
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
