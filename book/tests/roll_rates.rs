//! Roll rates with month-end cut-offs, as a small book written out: every cell of June 2025's
//! matrix, by count and by balance. The opening population and balances are those of the last
//! day-end of May (31 May), the closing buckets those of the last day-end of June (30 June),
//! although the June roll is taken at the first day-end of July, after 1 July's events; loans
//! disbursed in June are not in it; loans closed or written off in June land in the Closed and
//! Written-off columns.
//!
//! Every loan is zero-rate, 12 monthly instalments of ₹1,000.00 (100,000 paise) on a principal
//! of ₹12,000.00, and each belongs to its own customer (no borrower-wise effects).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use book::message::{Incoming, Payload, Source};
use book::queries;
use book::write::{apply_batch, ApplyContext};
use chrono::{Duration, NaiveDate, TimeZone, Utc};
use common::d;
use risk_core::settings::DomainSettings;
use runtime::postgres::connect;
use schemas::{
    BusinessDayClosed, LoanAction, LoanDisbursed, LoanEvent, LoanEventBody, PaymentReceived,
};
use tests::scratch::ScratchDatabase;

const PRINCIPAL: i64 = 1_200_000;
const EMI: i64 = 100_000;

fn disbursal(loan: &str, on: NaiveDate, first_due: NaiveDate) -> (NaiveDate, LoanEventBody) {
    (
        on,
        LoanEventBody::LoanDisbursed(LoanDisbursed {
            loan_id: loan.into(),
            application_id: format!("APP-{loan}"),
            customer_id: format!("C-{loan}"),
            principal: PRINCIPAL,
            interest_rate_bps: 0,
            tenure_months: 12,
            disbursed_on: on,
            first_due_on: first_due,
            collateral_value: None,
        }),
    )
}

fn payment(loan: &str, amount: i64, on: NaiveDate) -> (NaiveDate, LoanEventBody) {
    (
        on,
        LoanEventBody::PaymentReceived(PaymentReceived {
            payment_id: format!("PAY-{loan}-{on}"),
            loan_id: loan.into(),
            amount,
            paid_on: on,
        }),
    )
}

fn write_off(loan: &str, on: NaiveDate) -> (NaiveDate, LoanEventBody) {
    (
        on,
        LoanEventBody::LoanWrittenOff(LoanAction {
            loan_id: loan.into(),
            on,
        }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn june_2025_rolls_from_the_31_may_day_end_to_the_30_june_day_end_by_count_and_balance() {
    let (apr15, may15, jun15) = (d(2025, 4, 15), d(2025, 5, 15), d(2025, 6, 15));
    let mut events = vec![
        // A: on time in May and June — CURRENT → CURRENT, opening balance 1,100,000.
        disbursal("A", apr15, may15),
        payment("A", EMI, may15),
        payment("A", EMI, jun15),
        // B: pays May, misses 15 June (DPD 16 on 30 June), clears it on 1 July — CURRENT →
        // 1-30: the 1 July payment is after the cut-off.
        disbursal("B", apr15, may15),
        payment("B", EMI, may15),
        payment("B", EMI, d(2025, 7, 1)),
        // C: misses 15 May (DPD 17 on 31 May), pays both instalments on 20 June — 1-30 →
        // CURRENT, opening balance 1,200,000.
        disbursal("C", apr15, may15),
        payment("C", 2 * EMI, d(2025, 6, 20)),
        // D: never pays (DPD 17 on 31 May, 47 on 30 June) — 1-30 → 31-60.
        disbursal("D", apr15, may15),
        // E: pays May, forecloses on 10 June (1,100,000 at zero rate) — CURRENT → CLOSED.
        disbursal("E", apr15, may15),
        payment("E", EMI, may15),
        payment("E", PRINCIPAL - EMI, d(2025, 6, 10)),
        // F: disbursed on 5 June — not in June's opening population.
        disbursal("F", d(2025, 6, 5), d(2025, 7, 5)),
        // G: on time, forecloses on 1 July — still CURRENT → CURRENT (its 30 June bucket).
        disbursal("G", apr15, may15),
        payment("G", EMI, may15),
        payment("G", EMI, jun15),
        payment("G", PRINCIPAL - 2 * EMI, d(2025, 7, 1)),
        // H: disbursed on 1 July — in no June figure.
        disbursal("H", d(2025, 7, 1), d(2025, 8, 1)),
        // I: first due 10 February, never paid (DPD 111 on 31 May), written off on 20 June —
        // 90+ → WRITTEN_OFF, opening balance 1,200,000.
        disbursal("I", d(2025, 1, 10), d(2025, 2, 10)),
        write_off("I", d(2025, 6, 20)),
        // J: first due 20 March, never paid (DPD 73 on 31 May, 103 on 30 June) — 61-90 → 90+.
        disbursal("J", d(2025, 2, 20), d(2025, 3, 20)),
        // L: disbursed on 1 June — not in June's opening population, though the first June
        // day-end sees it.
        disbursal("L", d(2025, 6, 1), d(2025, 7, 1)),
        // M: pays May, forecloses on 1 June — CURRENT (31 May) → CLOSED, 1,100,000.
        disbursal("M", apr15, may15),
        payment("M", EMI, may15),
        payment("M", PRINCIPAL - EMI, d(2025, 6, 1)),
        // N: pays May, pays June's instalment on 1 June — opening balance 1,100,000 (31 May),
        // not 1,000,000; CURRENT → CURRENT.
        disbursal("N", apr15, may15),
        payment("N", EMI, may15),
        payment("N", EMI, d(2025, 6, 1)),
    ];
    // Day-ends every day from 31 May to 1 July, each after its own day's events.
    let mut day = d(2025, 5, 31);
    while day <= d(2025, 7, 1) {
        events.push((
            day,
            LoanEventBody::BusinessDayClosed(BusinessDayClosed { business_date: day }),
        ));
        day += Duration::days(1);
    }
    // Events before the first close arrive with it; later ones on their own day, before its
    // close (a stable sort keeps each day's events before its tick).
    events.sort_by_key(|(on, _)| (*on).max(d(2025, 5, 31)));

    let db = ScratchDatabase::create().await.unwrap();
    let pool = connect(&db.url, 2).await.unwrap();
    book::db::migrate(&pool).await.unwrap();
    let ctx = ApplyContext {
        group: "roll".into(),
        event_partitions: 1,
        domain: DomainSettings::default(),
    };
    for (offset, (_, body)) in events.into_iter().enumerate() {
        let event = LoanEvent {
            event_id: format!("EV-{offset}"),
            occurred_at: Utc.with_ymd_and_hms(2025, 7, 1, 0, 0, 0).unwrap(),
            body,
        };
        let batch = [Incoming::decoded(
            Source::Events,
            offset as i64,
            Payload::Event(Box::new(event)),
        )];
        let mut tx = pool.begin().await.unwrap();
        let out = apply_batch(&mut tx, &ctx, &batch).await.unwrap();
        tx.commit().await.unwrap();
        assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    }

    // May has no roll (no day-end of April); June is the last complete month on 1 July.
    let june = queries::roll_rates(&pool, Some(d(2025, 7, 1)))
        .await
        .unwrap();
    assert_eq!(june.month, d(2025, 6, 1));
    let cells: Vec<(&str, &str, i64, i64)> = june
        .cells
        .iter()
        .map(|c| {
            (
                c.from_bucket.as_str(),
                c.to_bucket.as_str(),
                c.loans,
                c.balance,
            )
        })
        .collect();
    assert_eq!(
        cells,
        vec![
            ("1-30", "31-60", 1, 1_200_000),      // D
            ("1-30", "CURRENT", 1, 1_200_000),    // C
            ("61-90", "90+", 1, 1_200_000),       // J
            ("90+", "WRITTEN_OFF", 1, 1_200_000), // I
            ("CURRENT", "1-30", 1, 1_100_000),    // B
            ("CURRENT", "CLOSED", 2, 2_200_000),  // E, M
            ("CURRENT", "CURRENT", 3, 3_300_000), // A, G, N
        ]
    );
    // Rates within each opening bucket: CURRENT opened with 6 loans and 6,600,000.
    let current_current = june
        .cells
        .iter()
        .find(|c| c.from_bucket == "CURRENT" && c.to_bucket == "CURRENT")
        .unwrap();
    assert_eq!(current_current.rate_by_count, 0.5);
    assert_eq!(current_current.rate_by_balance, 0.5);
    let closed = june.cells.iter().find(|c| c.to_bucket == "CLOSED").unwrap();
    assert!((closed.rate_by_count - 2.0 / 6.0).abs() < 1e-12);
    assert!((closed.rate_by_balance - 2_200_000.0 / 6_600_000.0).abs() < 1e-12);
    // Before July's first day-end, the last complete month rolled is none.
    assert!(queries::roll_rates(&pool, Some(d(2025, 6, 30)))
        .await
        .is_err());
}
