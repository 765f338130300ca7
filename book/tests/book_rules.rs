//! The book's rules as named examples, dates and amounts written out, each played through both
//! engines: the aggregator (events → apply → SQL day-end) and `risk_core::book::Book`, the
//! reference. After every day-end every loan's figures must agree between the two, and each
//! example's own expectations must hold.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{d, no_current_pd};
use std::collections::BTreeSet;

use book::message::{Incoming, Payload, Source};
use book::write::{apply_batch, ApplyContext};
use chrono::{NaiveDate, TimeZone, Utc};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use risk_core::book::{Book, Disbursal, Figures};
use risk_core::ifrs9::{ecl_of, Ifrs9Settings, Stage};
use risk_core::money::RateBps;
use risk_core::settings::DomainSettings;
use runtime::postgres::connect;
use schemas::{LoanAction, LoanDisbursed, LoanEvent, LoanEventBody, PaymentReceived, Purpose};
use sqlx::PgPool;
use tests::scratch::ScratchDatabase;

/// Both engines, fed the same events.
struct Both {
    book: Book,
    pool: PgPool,
    ctx: ApplyContext,
    offset: i64,
    events: u64,
    _db: ScratchDatabase,
}

impl Both {
    async fn new() -> Both {
        let domain = DomainSettings::default();
        let db = ScratchDatabase::create().await.unwrap();
        let pool = connect(&db.url, 2).await.unwrap();
        book::db::migrate(&pool).await.unwrap();
        Both {
            book: Book::new(domain.clone()),
            pool,
            ctx: ApplyContext {
                group: "rules".into(),
                event_partitions: 1,
                domain,
            },
            offset: 0,
            events: 0,
            _db: db,
        }
    }

    /// Deliver one event to the aggregator; returns the dead-letter class, if refused.
    async fn send(&mut self, body: LoanEventBody) -> Option<String> {
        self.events += 1;
        let event = LoanEvent {
            event_id: format!("EV-{}", self.events),
            occurred_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            body,
        };
        let batch = [Incoming::decoded(
            Source::Events,
            self.offset,
            Payload::Event(Box::new(event)),
        )];
        self.offset += 1;
        let mut tx = self.pool.begin().await.unwrap();
        let out = apply_batch(&mut tx, &self.ctx, &batch).await.unwrap();
        tx.commit().await.unwrap();
        out.rejected.first().map(|(_, r)| r.class.to_string())
    }

    #[allow(clippy::too_many_arguments)]
    async fn disburse(
        &mut self,
        loan: &str,
        customer: &str,
        principal: i64,
        rate_bps: i32,
        months: u32,
        disbursed_on: NaiveDate,
        first_due_on: NaiveDate,
        collateral: i64,
        pd: f64,
    ) {
        self.book.disburse(Disbursal {
            loan_id: loan.into(),
            customer_id: customer.into(),
            principal,
            rate: RateBps::parse(rate_bps).unwrap(),
            months,
            disbursed_on,
            first_due_on,
            collateral,
            purpose: Purpose::Personal,
            origination_pd: Some(pd),
        });
        let refused = self
            .send(LoanEventBody::LoanDisbursed(LoanDisbursed {
                loan_id: loan.into(),
                application_id: format!("APP-{loan}"),
                customer_id: customer.into(),
                principal,
                interest_rate_bps: rate_bps,
                tenure_months: i32::try_from(months).unwrap(),
                disbursed_on,
                first_due_on,
                collateral_value: (collateral > 0).then_some(collateral),
            }))
            .await;
        assert_eq!(refused, None);
        // No application or decision in these books: the origination PD is set directly.
        sqlx::query("UPDATE loans SET origination_pd = $1 WHERE loan_id = $2")
            .bind(pd)
            .bind(loan)
            .execute(&self.pool)
            .await
            .unwrap();
    }

    /// Pay on both engines; returns the refusal class, the same on both.
    async fn pay(&mut self, loan: &str, amount: i64, on: NaiveDate) -> Option<String> {
        let reference = self
            .book
            .pay(loan, amount, on)
            .err()
            .map(|r| r.class().to_string());
        let sql = self
            .send(LoanEventBody::PaymentReceived(PaymentReceived {
                payment_id: format!("PAY-{}", self.events + 1),
                loan_id: loan.into(),
                amount,
                paid_on: on,
            }))
            .await;
        assert_eq!(sql, reference, "refusal of a payment of {amount} on {on}");
        sql
    }

    async fn write_off(&mut self, loan: &str, on: NaiveDate) -> Option<String> {
        let reference = self
            .book
            .write_off(loan, on)
            .err()
            .map(|r| r.class().to_string());
        let sql = self
            .send(LoanEventBody::LoanWrittenOff(LoanAction {
                loan_id: loan.into(),
                on,
            }))
            .await;
        assert_eq!(sql, reference, "refusal of a write-off on {on}");
        sql
    }

    /// Close `day` on both engines and compare every loan.
    async fn close(&mut self, day: NaiveDate) {
        let refused = self
            .send(LoanEventBody::BusinessDayClosed(
                schemas::BusinessDayClosed { business_date: day },
            ))
            .await;
        assert_eq!(refused, None);
        self.book.close_day(day, &no_current_pd);
        for id in self.book.loans.keys().cloned().collect::<Vec<_>>() {
            let expected = self.book.figures(&id, day, &no_current_pd).unwrap();
            assert_eq!(self.sql(&id).await, expected, "loan {id} on {day}");
        }
    }

    /// Close every day from `from` to `to`, inclusive.
    async fn close_days(&mut self, from: NaiveDate, to: NaiveDate) {
        for day in from.iter_days().take_while(|x| *x <= to) {
            self.close(day).await;
        }
    }

    async fn sql(&self, loan: &str) -> Figures {
        let r: (String, Option<NaiveDate>, i32, i64, i64, i16, i64, i64) = sqlx::query_as(
            "SELECT asset_class, npa_since, dpd, arrears, outstanding_principal, stage, \
               provision, ecl FROM loan_status WHERE loan_id = $1",
        )
        .bind(loan)
        .fetch_one(&self.pool)
        .await
        .unwrap();
        Figures {
            class: r.0,
            npa_since: r.1,
            dpd: r.2,
            arrears: r.3,
            outstanding: r.4,
            stage: r.5,
            provision: r.6,
            ecl: r.7,
        }
    }

    /// The loan's figures (both engines agree after every `close`).
    async fn figures(&self, loan: &str) -> Figures {
        self.sql(loan).await
    }

    async fn state(&self, loan: &str) -> String {
        sqlx::query_scalar("SELECT state FROM loan_status WHERE loan_id = $1")
            .bind(loan)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// History rows of a loan from SQL: (date, from, to, reason); the same as the reference's.
    async fn history(&self, loan: &str) -> Vec<(NaiveDate, String, String, String)> {
        let sql: Vec<(NaiveDate, String, String, String)> = sqlx::query_as(
            "SELECT business_date, from_class, to_class, reason FROM status_history \
             WHERE loan_id = $1 ORDER BY business_date, reason",
        )
        .bind(loan)
        .fetch_all(&self.pool)
        .await
        .unwrap();
        let mut reference: Vec<(NaiveDate, String, String, String)> = self
            .book
            .transitions
            .iter()
            .filter(|t| t.loan_id == loan)
            .map(|t| {
                (
                    t.date,
                    t.from_class.clone(),
                    t.to_class.clone(),
                    t.reason.clone(),
                )
            })
            .collect();
        reference.sort_by(|a, b| (a.0, &a.3).cmp(&(b.0, &b.3)));
        assert_eq!(sql, reference, "history of {loan}");
        sql
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clearing_one_loans_arrears_upgrades_nothing_while_another_loan_of_the_borrower_is_overdue()
{
    let mut b = Both::new().await;
    // Loan A: ₹1,20,000 at 12% over 12 months, first due 31 Jan 2026 (EMI ₹10,661.86), unpaid.
    b.disburse(
        "A",
        "C1",
        12_000_000,
        1200,
        12,
        d(2025, 12, 31),
        d(2026, 1, 31),
        0,
        0.05,
    )
    .await;
    // Loan B: ₹60,000 at 14% over 24 months, first due 24 Mar 2026 (EMI ₹2,880.78), unpaid.
    b.disburse(
        "B",
        "C1",
        6_000_000,
        1400,
        24,
        d(2026, 2, 24),
        d(2026, 3, 24),
        0,
        0.05,
    )
    .await;
    b.close_days(d(2026, 1, 31), d(2026, 5, 1)).await;
    // 1 May: A is 91 days past due → NPA; B (39 DPD) is NPA with it, borrower-wise.
    let a = b.figures("A").await;
    assert_eq!(
        (a.dpd, a.class.as_str(), a.npa_since),
        (91, "SUBSTANDARD", Some(d(2026, 5, 1)))
    );
    let bb = b.figures("B").await;
    assert_eq!(
        (bb.dpd, bb.class.as_str(), bb.npa_since),
        (39, "SUBSTANDARD", Some(d(2026, 5, 1)))
    );
    b.close_days(d(2026, 5, 2), d(2026, 5, 9)).await;
    // 10 May: the customer pays A's four instalments due (31 Jan - 30 Apr): 4 × ₹10,661.86.
    assert_eq!(b.pay("A", 4 * 1_066_186, d(2026, 5, 10)).await, None);
    b.close(d(2026, 5, 10)).await;
    let a = b.figures("A").await;
    assert_eq!((a.dpd, a.arrears), (0, 0));
    assert_eq!(
        (a.class.as_str(), a.npa_since),
        ("SUBSTANDARD", Some(d(2026, 5, 1)))
    );
    let bb = b.figures("B").await;
    assert_eq!(bb.dpd, 48);
    assert_eq!(
        (bb.class.as_str(), bb.npa_since),
        ("SUBSTANDARD", Some(d(2026, 5, 1)))
    );
    b.close(d(2026, 5, 11)).await;
    // 12 May: B's two instalments due (24 Mar, 24 Apr) are paid: both loans upgrade together.
    assert_eq!(b.pay("B", 2 * 288_078, d(2026, 5, 12)).await, None);
    b.close(d(2026, 5, 12)).await;
    for loan in ["A", "B"] {
        let f = b.figures(loan).await;
        assert_eq!(
            (f.class.as_str(), f.npa_since, f.stage),
            ("STANDARD", None, 1)
        );
    }
    let history = b.history("B").await;
    assert!(history.contains(&(
        d(2026, 5, 1),
        "SMA1".into(),
        "SUBSTANDARD".into(),
        "borrower".into()
    )));
    assert!(history.contains(&(
        d(2026, 5, 12),
        "SUBSTANDARD".into(),
        "STANDARD".into(),
        "upgrade".into()
    )));
    let history = b.history("A").await;
    assert!(history.contains(&(
        d(2026, 5, 1),
        "SMA2".into(),
        "SUBSTANDARD".into(),
        "dpd".into()
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreclosure_after_the_first_instalment_charges_interest_to_the_day_and_closes_the_loan() {
    let mut b = Both::new().await;
    // ₹1,20,000 at 12% over 12 months, disbursed 28 Feb 2026, first due 31 Mar 2026.
    b.disburse(
        "F",
        "C1",
        12_000_000,
        1200,
        12,
        d(2026, 2, 28),
        d(2026, 3, 31),
        0,
        0.03,
    )
    .await;
    b.disburse(
        "S",
        "C2",
        12_000_000,
        1200,
        12,
        d(2026, 2, 28),
        d(2026, 3, 31),
        0,
        0.03,
    )
    .await;
    // Instalment 1 on its due date: ₹1,200 interest + ₹9,461.86 principal.
    b.pay("F", 1_066_186, d(2026, 3, 31)).await;
    b.pay("S", 1_066_186, d(2026, 3, 31)).await;
    b.close_days(d(2026, 3, 31), d(2026, 4, 14)).await;
    assert_eq!(b.figures("F").await.outstanding, 11_053_814);
    // 15 Apr: foreclosure = ₹1,10,538.14 principal + 15 days' interest at 12% (₹545.12)
    // = ₹1,11,083.26. No interest for a future period.
    b.pay("F", 11_108_326, d(2026, 4, 15)).await;
    assert_eq!(b.state("F").await, "CLOSED");
    // One paisa more is a surplus owed to the customer.
    b.pay("S", 11_108_327, d(2026, 4, 15)).await;
    assert_eq!(b.state("S").await, "CLOSED");
    let (paid, surplus): (i64, i64) = sqlx::query_as(
        "SELECT paid_principal + paid_interest, surplus FROM loan_status WHERE loan_id = 'S'",
    )
    .fetch_one(&b.pool)
    .await
    .unwrap();
    assert_eq!((paid, surplus), (1_066_186 + 11_108_326, 1));
    b.close(d(2026, 4, 15)).await;
    assert_eq!(b.figures("F").await.outstanding, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_prepayment_reduces_the_principal_at_once_and_shortens_the_tenure() {
    let mut b = Both::new().await;
    b.disburse(
        "P",
        "C1",
        12_000_000,
        1200,
        12,
        d(2026, 2, 28),
        d(2026, 3, 31),
        0,
        0.03,
    )
    .await;
    b.pay("P", 1_066_186, d(2026, 3, 31)).await;
    // 30 Apr: instalment 2 (₹1,105.38 interest on ₹1,10,538.14) and ₹50,000 more.
    b.pay("P", 1_066_186 + 5_000_000, d(2026, 4, 30)).await;
    b.close_days(d(2026, 3, 31), d(2026, 4, 30)).await;
    // Principal after instalment 2 would be ₹1,01,182.66; the ₹50,000 comes off at once.
    let f = b.figures("P").await;
    assert_eq!(
        f.outstanding,
        11_053_814 - (1_066_186 - 110_538) - 5_000_000
    );
    // The EMI stays ₹10,661.86: the remaining ₹51,182.66 needs 5 more instalments, not 10.
    let (instalments, next_amount): (i32, i64) = sqlx::query_as(
        "SELECT l.instalments, sc.principal[3] + sc.interest[3] FROM loans l \
         JOIN loan_schedules sc USING (loan_id) WHERE loan_id = 'P'",
    )
    .fetch_one(&b.pool)
    .await
    .unwrap();
    assert_eq!((instalments, next_amount), (7, 1_066_186));
    assert_eq!(
        b.book.loans["P"]
            .ledger
            .remaining_instalments(d(2026, 4, 30)),
        5
    );
    // Paying the next EMI on its date (31 May) keeps the loan current.
    b.pay("P", 1_066_186, d(2026, 5, 31)).await;
    b.close_days(d(2026, 5, 1), d(2026, 6, 1)).await;
    assert_eq!(b.figures("P").await.dpd, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_counts_from_its_own_date_never_earlier_and_closed_days_stay_closed() {
    let mut b = Both::new().await;
    b.disburse(
        "E",
        "C1",
        12_000_000,
        1200,
        12,
        d(2026, 2, 28),
        d(2026, 3, 31),
        0,
        0.03,
    )
    .await;
    b.close_days(d(2026, 3, 1), d(2026, 3, 30)).await;
    // Dated 2 Apr, delivered before the day-end of 31 Mar: it waits for 2 Apr.
    assert_eq!(b.pay("E", 1_066_186, d(2026, 4, 2)).await, None);
    b.close(d(2026, 3, 31)).await;
    assert_eq!(
        (b.figures("E").await.dpd, b.figures("E").await.class),
        (1, "SMA0".into())
    );
    b.close(d(2026, 4, 1)).await;
    assert_eq!(b.figures("E").await.dpd, 2);
    b.close(d(2026, 4, 2)).await;
    assert_eq!(b.figures("E").await.dpd, 0);
    b.close_days(d(2026, 4, 3), d(2026, 4, 30)).await;
    assert_eq!(b.figures("E").await.dpd, 1);
    // Dated 30 Apr, delivered after the day-end of 30 Apr: 30 Apr is not restated, 1 May
    // counts it.
    let snapshot = |pool: PgPool| async move {
        sqlx::query_scalar::<_, i64>(
            "SELECT par30 + (by_dpd_bucket->'1-30'->>'loans')::int8 FROM portfolio_daily \
             WHERE business_date = '2026-04-30'",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let before = snapshot(b.pool.clone()).await;
    assert_eq!(b.pay("E", 1_066_186, d(2026, 4, 30)).await, None);
    assert_eq!(snapshot(b.pool.clone()).await, before);
    b.close(d(2026, 5, 1)).await;
    assert_eq!(b.figures("E").await.dpd, 0);
    // A write-off dated 3 May, delivered on 1 May's close, waits for 3 May too.
    assert_eq!(b.write_off("E", d(2026, 5, 3)).await, None);
    b.close(d(2026, 5, 2)).await;
    assert_eq!(b.state("E").await, "ACTIVE");
    b.close(d(2026, 5, 3)).await;
    assert_eq!(b.state("E").await, "WRITTEN_OFF");
    let (on, history_on): (NaiveDate, NaiveDate) = sqlx::query_as(
        "SELECT s.written_off_on, h.business_date FROM loan_status s \
         JOIN status_history h USING (loan_id) WHERE loan_id = 'E' AND h.reason = 'write_off'",
    )
    .fetch_one(&b.pool)
    .await
    .unwrap();
    assert_eq!((on, history_on), (d(2026, 5, 3), d(2026, 5, 3)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_loan_events_are_dead_lettered_with_their_reason_and_change_nothing() {
    let mut b = Both::new().await;
    b.disburse(
        "X",
        "C1",
        1_000_000,
        1200,
        1,
        d(2026, 2, 28),
        d(2026, 3, 31),
        0,
        0.03,
    )
    .await;
    b.close(d(2026, 3, 1)).await;
    let checksum = |pool: PgPool| async move {
        sqlx::query_scalar::<_, String>(
            "SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM \
             (SELECT * FROM loan_status) t",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let before = checksum(b.pool.clone()).await;
    assert_eq!(
        b.pay("X", 5_000, d(2026, 2, 27)).await.as_deref(),
        Some("before_disbursal")
    );
    assert_eq!(
        b.pay("NOPE", 5_000, d(2026, 3, 1)).await.as_deref(),
        Some("unknown_loan")
    );
    assert_eq!(
        b.pay("X", 0, d(2026, 3, 1)).await.as_deref(),
        Some("invalid_amount")
    );
    assert_eq!(
        b.pay("X", -5, d(2026, 3, 1)).await.as_deref(),
        Some("invalid_amount")
    );
    assert_eq!(
        b.write_off("X", d(2026, 2, 1)).await.as_deref(),
        Some("before_disbursal")
    );
    assert_eq!(checksum(b.pool.clone()).await, before);
    // ₹10,000 at 12% over one month: ₹10,100 repays it; a write-off of the closed loan is refused.
    assert_eq!(b.pay("X", 1_010_000, d(2026, 3, 2)).await, None);
    assert_eq!(b.state("X").await, "CLOSED");
    assert_eq!(
        b.write_off("X", d(2026, 3, 2)).await.as_deref(),
        Some("not_open")
    );
    assert_eq!(b.state("X").await, "CLOSED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loan_at_dpd_32_on_its_last_due_date_keeps_an_ecl_over_a_one_month_horizon() {
    let mut b = Both::new().await;
    // ₹1,20,000 at 12% over 12 months, dues on the 28th from 28 Mar 2026 to 28 Feb 2027; PD 12%.
    b.disburse(
        "H",
        "C1",
        12_000_000,
        1200,
        12,
        d(2026, 2, 28),
        d(2026, 3, 28),
        0,
        0.12,
    )
    .await;
    // Instalments 1-10 paid on their dates; 11 (28 Jan 2027) and 12 (28 Feb 2027) not.
    let mut due = d(2026, 3, 28);
    for _ in 0..10 {
        b.pay("H", 1_066_186, due).await;
        due = due.checked_add_months(chrono::Months::new(1)).unwrap();
    }
    b.close(d(2027, 1, 27)).await;
    let stage1 = b.figures("H").await;
    assert_eq!((stage1.stage, stage1.dpd), (1, 0));
    b.close(d(2027, 2, 28)).await;
    let f = b.figures("H").await;
    assert_eq!((f.dpd, f.stage), (32, 2));
    // Outstanding ₹21,010.56 (the last two instalments' principal), overdue interest of
    // instalment 11; no instalment left to fall due, but the horizon is one month.
    assert!(f.ecl > 0, "{f:?}");
    assert!(f.ecl >= stage1.ecl * f.outstanding / stage1.outstanding / 2);
    let one_month = 1.0 - 0.88f64.powf(1.0 / 12.0);
    let ead = b.book.loans["H"].ledger.delinquency(d(2027, 2, 28));
    let ppb = risk_core::ifrs9::pd_ppb(one_month);
    let overdue_interest = ead.arrears - ead.arrears_principal;
    assert_eq!(f.ecl, ecl_of(ppb, 6_500, f.outstanding + overdue_interest));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_worth_ten_percent_of_the_outstanding_or_less_is_unsecured_everywhere() {
    let mut b = Both::new().await;
    // Two ₹1,00,000 loans never paid, NPA on 29 Jun 2026: security ₹10,000 (10%: unsecured)
    // and ₹10,000.01 (secured).
    b.disburse(
        "U",
        "C1",
        10_000_000,
        1200,
        12,
        d(2026, 2, 28),
        d(2026, 3, 31),
        1_000_000,
        0.05,
    )
    .await;
    b.disburse(
        "S",
        "C2",
        10_000_000,
        1200,
        12,
        d(2026, 2, 28),
        d(2026, 3, 31),
        1_000_001,
        0.05,
    )
    .await;
    b.close(d(2026, 6, 29)).await;
    let u = b.figures("U").await;
    let s = b.figures("S").await;
    assert_eq!(
        (u.class.as_str(), s.class.as_str()),
        ("SUBSTANDARD", "SUBSTANDARD")
    );
    assert_eq!(u.provision, 2_500_000);
    assert_eq!(s.provision, 1_500_000);
    // Stage 3: ECL = LGD × EAD, EAD = ₹1,00,000 principal + the overdue interest of the
    // instalments of 31 Mar, 30 Apr and 31 May (₹1,000 + ₹921.15 + ₹841.51 = ₹2,762.66; EMI
    // ₹8,884.88); unsecured LGD 65%, other secured 35%.
    assert_eq!(u.ecl, 6_679_573);
    assert_eq!(s.ecl, 3_596_693);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_off_is_not_a_payment_so_the_borrowers_other_loans_stay_npa() {
    let mut b = Both::new().await;
    // A: never paid, NPA on 1 May 2026 (first due 31 Jan). B: one instalment overdue.
    b.disburse(
        "A",
        "C1",
        12_000_000,
        1200,
        12,
        d(2025, 12, 31),
        d(2026, 1, 31),
        0,
        0.05,
    )
    .await;
    b.disburse(
        "B",
        "C1",
        6_000_000,
        1400,
        24,
        d(2026, 3, 24),
        d(2026, 4, 24),
        0,
        0.05,
    )
    .await;
    b.close(d(2026, 5, 1)).await;
    assert_eq!(b.figures("B").await.class, "SUBSTANDARD");
    // 2 May: A is written off with its four instalments unpaid (4 × ₹10,661.86).
    assert_eq!(b.write_off("A", d(2026, 5, 2)).await, None);
    b.close(d(2026, 5, 2)).await;
    assert_eq!(b.figures("B").await.class, "SUBSTANDARD");
    // B's arrears are paid: B stays NPA while A's arrears are unrecovered.
    b.pay("B", 288_078, d(2026, 5, 3)).await;
    b.close(d(2026, 5, 3)).await;
    let f = b.figures("B").await;
    assert_eq!(
        (f.dpd, f.class.as_str(), f.npa_since),
        (0, "SUBSTANDARD", Some(d(2026, 5, 1)))
    );
    // A recovery of A's arrears upgrades B.
    b.pay("A", 4 * 1_066_186, d(2026, 5, 4)).await;
    b.close(d(2026, 5, 4)).await;
    assert_eq!(b.figures("B").await.class, "STANDARD");
    let history = b.history("A").await;
    assert!(history.contains(&(
        d(2026, 5, 2),
        "SUBSTANDARD".into(),
        "SUBSTANDARD".into(),
        "write_off".into()
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_npa_of_29_june_2025_is_doubtful_1_on_29_june_2026_itself() {
    let mut b = Both::new().await;
    // RBI's worked example: instalment due 31 Mar 2025 unpaid.
    b.disburse(
        "N",
        "C1",
        100_000_000,
        1200,
        24,
        d(2025, 2, 28),
        d(2025, 3, 31),
        0,
        0.05,
    )
    .await;
    b.close_days(d(2025, 3, 30), d(2025, 7, 1)).await;
    let seen: Vec<(NaiveDate, String, String, String)> = b.history("N").await;
    let dates: Vec<(NaiveDate, String)> = seen.iter().map(|h| (h.0, h.2.clone())).collect();
    assert!(dates.contains(&(d(2025, 3, 31), "SMA0".into())));
    assert!(dates.contains(&(d(2025, 4, 30), "SMA1".into())));
    assert!(dates.contains(&(d(2025, 5, 30), "SMA2".into())));
    assert!(dates.contains(&(d(2025, 6, 29), "SUBSTANDARD".into())));
    b.close(d(2026, 6, 28)).await;
    assert_eq!(b.figures("N").await.class, "SUBSTANDARD");
    b.close(d(2026, 6, 29)).await;
    assert_eq!(b.figures("N").await.class, "D1");
    b.close(d(2027, 6, 29)).await;
    assert_eq!(b.figures("N").await.class, "D2");
    b.close(d(2029, 6, 28)).await;
    assert_eq!(b.figures("N").await.class, "D2");
    b.close(d(2029, 6, 29)).await;
    assert_eq!(b.figures("N").await.class, "D3");
    let reasons: BTreeSet<String> = b.history("N").await.into_iter().map(|h| h.3).collect();
    assert!(reasons.contains("age"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecl_rounds_half_away_from_zero_in_sql_as_in_risk_core() {
    let db = ScratchDatabase::create().await.unwrap();
    let pool = connect(&db.url, 1).await.unwrap();
    book::db::migrate(&pool).await.unwrap();
    let s = Ifrs9Settings::default();
    // Stage 3, LGD 50%, EAD 1 paisa: 0.5 → 1. PD 2.5e-9 is 2.5 ppb → 3, not 2.
    let cases: [(i16, f64, i64, i64, i32); 3] = [
        (3, 0.5, 5_000, 1, 0),
        (1, 2.5e-9, 10_000, 1_000_000_000, 12),
        (2, 0.12, 6_500, 1_000_000, 0),
    ];
    for (stage, pd, lgd, ead, months) in cases {
        let sql: i64 = sqlx::query_scalar("SELECT ecl($1, $2, $3, $4, $5, 1)")
            .bind(i32::from(stage))
            .bind(pd)
            .bind(lgd)
            .bind(ead)
            .bind(months)
            .fetch_one(&pool)
            .await
            .unwrap();
        let stage = match stage {
            1 => Stage::One,
            2 => Stage::Two,
            _ => Stage::Three,
        };
        let rust = s.ecl(stage, pd, lgd, ead, u32::try_from(months).unwrap());
        assert_eq!(
            sql, rust,
            "{stage:?} pd {pd} lgd {lgd} ead {ead} months {months}"
        );
    }
    assert_eq!(s.ecl(Stage::Three, 0.5, 5_000, 1, 0), 1);
    assert_eq!(s.ecl(Stage::One, 2.5e-9, 10_000, 1_000_000_000, 12), 3);
    let sql_ppb: i64 = sqlx::query_scalar("SELECT pd_ppb(2.5e-9)")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(sql_ppb, 3);
    // Random inputs: the SQL functions and risk-core agree to the paisa.
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = (
        1i32..=3,
        0.0f64..1.0,
        0i64..=10_000,
        0i64..10_000_000_000,
        0i32..400,
    );
    let mut inputs = Vec::new();
    for _ in 0..2_000 {
        inputs.push(strategy.new_tree(&mut runner).unwrap().current());
    }
    let sql: Vec<i64> = sqlx::query_scalar(
        "SELECT ecl(s, p, l, e, m, 1) FROM unnest($1::int4[], $2::float8[], $3::int8[], \
           $4::int8[], $5::int4[]) WITH ORDINALITY AS t(s, p, l, e, m, n) ORDER BY n",
    )
    .bind(inputs.iter().map(|i| i.0).collect::<Vec<_>>())
    .bind(inputs.iter().map(|i| i.1).collect::<Vec<_>>())
    .bind(inputs.iter().map(|i| i.2).collect::<Vec<_>>())
    .bind(inputs.iter().map(|i| i.3).collect::<Vec<_>>())
    .bind(inputs.iter().map(|i| i.4).collect::<Vec<_>>())
    .fetch_all(&pool)
    .await
    .unwrap();
    for (i, got) in inputs.iter().zip(sql) {
        let stage = match i.0 {
            1 => Stage::One,
            2 => Stage::Two,
            _ => Stage::Three,
        };
        let rust = s.ecl(stage, i.1, i.2, i.3, u32::try_from(i.4).unwrap());
        assert_eq!(got, rust, "{i:?}");
    }
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writing_a_loan_off_before_its_npa_day_end_still_makes_the_borrower_npa() {
    let mut b = Both::new().await;
    // A: ₹1,20,000, first due 31 Jan 2026, never paid: DPD 90 on 30 Apr (SMA-2).
    b.disburse(
        "A",
        "C1",
        12_000_000,
        1200,
        12,
        d(2025, 12, 31),
        d(2026, 1, 31),
        0,
        0.05,
    )
    .await;
    // B: ₹60,000, first due 24 Apr 2026, never paid.
    b.disburse(
        "B",
        "C1",
        6_000_000,
        1400,
        24,
        d(2026, 3, 24),
        d(2026, 4, 24),
        0,
        0.05,
    )
    .await;
    b.close(d(2026, 4, 30)).await;
    assert_eq!(b.figures("A").await.class, "SMA2");
    // Written off on 1 May, before the day-end that would have made it NPA (DPD 91).
    assert_eq!(b.write_off("A", d(2026, 5, 1)).await, None);
    b.close(d(2026, 5, 1)).await;
    let f = b.figures("B").await;
    assert_eq!(
        (f.class.as_str(), f.npa_since),
        ("SUBSTANDARD", Some(d(2026, 5, 1)))
    );
    // A later loan of the same borrower is NPA from its first day-end too.
    b.disburse(
        "C",
        "C1",
        1_000_000,
        1200,
        6,
        d(2026, 5, 2),
        d(2026, 6, 2),
        0,
        0.05,
    )
    .await;
    b.close(d(2026, 5, 2)).await;
    assert_eq!(b.figures("C").await.class, "SUBSTANDARD");
}
