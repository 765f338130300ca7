//! Disbursals: the loan row and its repayment schedule.

use super::batch::BatchOutcome;
use super::batch::WriteError;
use crate::message::Rejection;
use risk_core::money::RateBps;
use risk_core::schedule::schedule;
use schemas::LoanDisbursed;
use sqlx::PgConnection;
use std::collections::HashSet;

pub(super) async fn disburse(
    tx: &mut PgConnection,
    disbursals: &[(usize, &LoanDisbursed)],
    out: &mut BatchOutcome,
) -> Result<(), WriteError> {
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
pub(super) fn slice_bound(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}
