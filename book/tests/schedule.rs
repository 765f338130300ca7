//! A schedule stored as one row, paid through `apply_batch`: payments that reach past the
//! instalments first read (a schedule whose later instalments are smaller than the next one)
//! read the rest of it and are allocated in full, a prepayment recomputes the rest; the
//! `instalments` view shows each instalment's paid parts and the date it was settled.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use book::message::{Incoming, Payload, Source};
use book::write::{apply_batch, ApplyContext};
use chrono::{NaiveDate, TimeZone, Utc};
use risk_core::settings::DomainSettings;
use runtime::postgres::connect;
use schemas::{LoanDisbursed, LoanEvent, LoanEventBody, PaymentReceived};
use sqlx::PgPool;
use tests::scratch::ScratchDatabase;

fn date(m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, m, d).unwrap()
}

fn event(id: &str, body: LoanEventBody) -> LoanEvent {
    LoanEvent {
        event_id: id.into(),
        occurred_at: Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap(),
        body,
    }
}

fn tick(day: NaiveDate) -> LoanEvent {
    event(
        &format!("T-{day}"),
        LoanEventBody::BusinessDayClosed(schemas::BusinessDayClosed { business_date: day }),
    )
}

fn payment(id: &str, amount: i64, paid_on: NaiveDate) -> LoanEvent {
    event(
        &format!("E-{id}"),
        LoanEventBody::PaymentReceived(PaymentReceived {
            payment_id: id.into(),
            loan_id: "L1".into(),
            amount,
            paid_on,
        }),
    )
}

async fn apply(pool: &PgPool, ctx: &ApplyContext, offset: i64, e: LoanEvent) {
    let batch = [Incoming::decoded(
        Source::Events,
        offset,
        Payload::Event(Box::new(e)),
    )];
    let mut tx = pool.begin().await.unwrap();
    let out = apply_batch(&mut tx, ctx, &batch).await.unwrap();
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    tx.commit().await.unwrap();
}

/// (seq, paid principal, paid interest, settled on) of each instalment.
async fn instalments(pool: &PgPool) -> Vec<(i32, i64, i64, Option<NaiveDate>)> {
    sqlx::query_as(
        "SELECT seq, paid_principal, paid_interest, settled_on FROM instalments \
         WHERE loan_id = 'L1' ORDER BY seq",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn payments_past_the_instalments_first_read_are_allocated_through_the_whole_schedule() {
    let db = ScratchDatabase::create().await.unwrap();
    let pool = connect(&db.url, 2).await.unwrap();
    book::db::migrate(&pool).await.unwrap();
    let ctx = ApplyContext {
        group: "schedule".into(),
        event_partitions: 1,
        domain: DomainSettings::default(),
    };
    apply(
        &pool,
        &ctx,
        0,
        event(
            "E-D1",
            LoanEventBody::LoanDisbursed(LoanDisbursed {
                loan_id: "L1".into(),
                application_id: "A1".into(),
                customer_id: "C1".into(),
                principal: 1_400,
                interest_rate_bps: 0,
                tenure_months: 5,
                disbursed_on: date(1, 1),
                first_due_on: date(2, 1),
                collateral_value: None,
            }),
        ),
    )
    .await;
    // An EMI schedule has equal instalments (280 each here); make the first one the largest,
    // so that a payment sized by it reaches past the instalments read at first.
    let changed = sqlx::query(
        "UPDATE loan_schedules SET principal = '{1000,100,100,100,100}', \
           interest = '{0,0,0,0,0}' WHERE loan_id = 'L1'",
    )
    .execute(&pool)
    .await
    .unwrap()
    .rows_affected();
    assert_eq!(changed, 1);

    // The day before the payments is closed, so they count at once.
    apply(&pool, &ctx, 1, tick(date(3, 9))).await;
    // 1,200 on 10 Mar settles instalments 1-3 (1,000 + 100 due, 100 of the running period):
    // it reaches the end of the instalments read at first. 100 more the same day is a
    // part-prepayment: off the principal at once, the rest recomputed (one instalment of 100).
    let batch = [
        Incoming::decoded(
            Source::Events,
            2,
            Payload::Event(Box::new(payment("P1", 1_200, date(3, 10)))),
        ),
        Incoming::decoded(
            Source::Events,
            3,
            Payload::Event(Box::new(payment("P1b", 100, date(3, 10)))),
        ),
    ];
    let mut tx = pool.begin().await.unwrap();
    let out = apply_batch(&mut tx, &ctx, &batch).await.unwrap();
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    tx.commit().await.unwrap();
    let status: (String, Option<i32>, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT state, next_unpaid_seq, next_unpaid_paid, paid_principal, surplus, \
           outstanding_principal FROM loan_status WHERE loan_id = 'L1'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(status, ("ACTIVE".into(), Some(4), 0, 1_300, 0, 100));
    let settled: (Option<i32>, Option<i32>, i64, i64) = sqlx::query_as(
        "SELECT settled_from, settled_to, to_principal, surplus FROM payments \
         WHERE payment_id = 'P1'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(settled, (Some(1), Some(3), 1_200, 0));
    let instalments_now: i32 =
        sqlx::query_scalar("SELECT instalments FROM loans WHERE loan_id = 'L1'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(instalments_now, 4);
    let s = instalments(&pool).await;
    assert_eq!(s.len(), 4);
    assert_eq!(s[0], (1, 1_000, 0, Some(date(3, 10))));
    assert_eq!(s[2], (3, 100, 0, Some(date(3, 10))));
    assert_eq!(s[3], (4, 0, 0, None));

    // 60 on 15 Apr goes into instalment 4 (due 1 May, its period running); 90 on 1 Jun settles
    // it and leaves 50 as surplus (owed to the customer); the loan closes.
    apply(&pool, &ctx, 4, tick(date(4, 14))).await;
    apply(&pool, &ctx, 5, payment("P2", 60, date(4, 15))).await;
    assert_eq!(instalments(&pool).await[3], (4, 60, 0, None));
    apply(&pool, &ctx, 6, tick(date(5, 31))).await;
    apply(&pool, &ctx, 7, payment("P3", 90, date(6, 1))).await;
    let status: (String, Option<i32>, i64, i64, i64) = sqlx::query_as(
        "SELECT state, next_unpaid_seq, paid_principal, surplus, outstanding_principal \
         FROM loan_status WHERE loan_id = 'L1'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(status, ("CLOSED".into(), None, 1_400, 50, 0));
    assert_eq!(instalments(&pool).await[3], (4, 100, 0, Some(date(6, 1))));
    pool.close().await;
}
