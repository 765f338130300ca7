//! The set-based day-end in SQL against `risk_core`'s rules, loan by loan: a generated book is
//! applied batch by batch, and an independent replay of the same events through `risk_core`
//! (DPD engine, IRAC classification with borrower-wise NPA, IFRS 9 staging, provisioning, ECL)
//! must give the same classes, stages, provisions and ECL on every loan and the same history
//! of transitions. Then the portfolio figures must reconcile with the loans.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use ingest::generator::sink::MemorySink;
use ingest::generator::{generate, GeneratorSettings};
use portfolio_aggregator::apply::{apply_batch, ApplyContext};
use portfolio_aggregator::message::{Incoming, Payload, Source};
use risk_core::dpd::{allocate, delinquency, Payment};
use risk_core::ifrs9::{ecl, Stage};
use risk_core::irac::{mark_loss, AssetClass, ClassState};
use risk_core::money::RateBps;
use risk_core::schedule::{schedule, Instalment};
use risk_core::settings::DomainSettings;
use runtime::postgres::{connect, ScratchDatabase};
use schemas::{LoanEventBody, Purpose};
use sqlx::PgPool;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Active,
    Closed,
    WrittenOff,
}

struct RefLoan {
    customer: String,
    schedule: Vec<Instalment>,
    payments: Vec<Payment>,
    collateral: i64,
    purpose: Purpose,
    origination_pd: Option<f64>,
    disbursed_on: NaiveDate,
    state: State,
    own: ClassState,
    reported: ClassState,
    stage: Stage,
    loss_on: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq)]
struct Figures {
    class: String,
    npa_since: Option<NaiveDate>,
    dpd: i32,
    arrears: i64,
    outstanding: i64,
    stage: i16,
    provision: i64,
    ecl: i64,
}

async fn apply(pool: &PgPool, ctx: &ApplyContext, batch: &[Incoming]) {
    let mut tx = pool.begin().await.unwrap();
    let out = apply_batch(&mut tx, ctx, batch).await.unwrap();
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    tx.commit().await.unwrap();
}

fn book() -> MemorySink {
    let settings = GeneratorSettings {
        seed: 11,
        applications: 2_500,
        months: 10,
        performance_months: 14,
        target_default_rate: 0.12,
        ..GeneratorSettings::default()
    };
    let mut sink = MemorySink::default();
    generate(
        &settings,
        &DomainSettings::default(),
        &mut sink,
        &mut |_, _| {},
    )
    .unwrap();
    sink
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sql_day_end_agrees_with_risk_core_loan_by_loan() {
    let domain = DomainSettings::default();
    let sink = book();
    let db = ScratchDatabase::create().await.unwrap();
    let pool = connect(&db.url, 2).await.unwrap();
    portfolio_aggregator::db::migrate(&pool).await.unwrap();
    let ctx = ApplyContext {
        group: "reference".into(),
        event_partitions: 1,
        domain: domain.clone(),
    };

    // Reference data.
    let purpose: HashMap<&str, Purpose> = sink
        .applications
        .iter()
        .map(|a| (a.application_id.as_str(), a.loan.purpose))
        .collect();
    let origination: HashMap<&str, f64> = sink
        .decisions
        .iter()
        .map(|d| (d.application_id.as_str(), d.pd))
        .collect();
    let mut decisions_of: HashMap<&str, Vec<(DateTime<Utc>, f64)>> = HashMap::new();
    for d in &sink.decisions {
        decisions_of
            .entry(d.customer_id.as_str())
            .or_default()
            .push((d.decided_at, d.pd));
    }
    for v in decisions_of.values_mut() {
        v.sort_by_key(|a| a.0);
    }

    // The book through the aggregator: records first, then events batch by batch, each batch
    // ending at a day-end tick.
    let mut offset = 0;
    let mut records: Vec<Incoming> = Vec::new();
    for c in &sink.customers {
        records.push(Incoming::decoded(
            Source::Customers,
            offset,
            Payload::Customer(Box::new(c.clone())),
        ));
        offset += 1;
    }
    for a in &sink.applications {
        records.push(Incoming::decoded(
            Source::Applications,
            offset,
            Payload::Application(Box::new(a.clone())),
        ));
        offset += 1;
    }
    for d in &sink.decisions {
        records.push(Incoming::decoded(
            Source::Decisions,
            offset,
            Payload::Decision(Box::new(d.clone())),
        ));
        offset += 1;
    }
    for chunk in records.chunks(2_000) {
        apply(&pool, &ctx, chunk).await;
    }

    let mut loans: BTreeMap<String, RefLoan> = BTreeMap::new();
    let mut transitions: Vec<(String, NaiveDate, String, String, i16, i16)> = Vec::new();
    let mut batch: Vec<Incoming> = Vec::new();
    let mut last_day = None;
    for (i, e) in sink.events.iter().enumerate() {
        batch.push(Incoming::decoded(
            Source::Events,
            i as i64,
            Payload::Event(Box::new(e.clone())),
        ));
        match &e.body {
            LoanEventBody::LoanDisbursed(d) => {
                let sched = schedule(
                    d.principal,
                    RateBps::clamped(d.interest_rate_bps),
                    u32::try_from(d.tenure_months).unwrap(),
                    d.first_due_on,
                );
                loans.insert(
                    d.loan_id.clone(),
                    RefLoan {
                        customer: d.customer_id.clone(),
                        schedule: sched,
                        payments: Vec::new(),
                        collateral: d.collateral_value.unwrap_or(0).max(0),
                        purpose: purpose[d.application_id.as_str()],
                        origination_pd: origination.get(d.application_id.as_str()).copied(),
                        disbursed_on: d.disbursed_on,
                        state: State::Active,
                        own: ClassState::STANDARD,
                        reported: ClassState::STANDARD,
                        stage: Stage::One,
                        loss_on: None,
                    },
                );
            }
            LoanEventBody::PaymentReceived(p) => {
                let l = loans.get_mut(&p.loan_id).unwrap();
                if l.state == State::Active {
                    l.payments.push(Payment {
                        amount: p.amount,
                        paid_on: p.paid_on,
                    });
                    let far = NaiveDate::from_ymd_opt(2200, 1, 1).unwrap();
                    let alloc = allocate(&l.schedule, &l.payments, far);
                    let done = l.schedule.iter().zip(&alloc.per_instalment).all(|(s, a)| {
                        a.interest_paid == s.interest && a.principal_paid == s.principal
                    });
                    if done {
                        l.state = State::Closed;
                    }
                }
            }
            LoanEventBody::LoanWrittenOff(a) => {
                let l = loans.get_mut(&a.loan_id).unwrap();
                if l.state == State::Active {
                    l.state = State::WrittenOff;
                }
            }
            LoanEventBody::LoanMarkedLoss(a) => {
                let l = loans.get_mut(&a.loan_id).unwrap();
                l.loss_on = Some(l.loss_on.map_or(a.on, |x| x.min(a.on)));
            }
            LoanEventBody::BusinessDayClosed(b) => {
                apply(&pool, &ctx, &batch).await;
                batch.clear();
                day_end(
                    &mut loans,
                    b.business_date,
                    &domain,
                    &decisions_of,
                    &mut transitions,
                );
                last_day = Some(b.business_date);
            }
        }
    }
    let last_day = last_day.unwrap();

    // Loan by loan.
    type Row = (
        String,
        String,
        Option<NaiveDate>,
        i32,
        i64,
        i64,
        i16,
        i64,
        i64,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT loan_id, asset_class, npa_since, dpd, arrears, outstanding_principal, stage, \
               provision, ecl FROM loan_status ORDER BY loan_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), loans.len());
    let mut npa_loans = 0;
    let mut classes_seen = std::collections::BTreeSet::new();
    for (id, class, since, dpd, arrears, outstanding, stage, provision, ecl_sql) in rows {
        let l = &loans[&id];
        let expected = figures(l, last_day, &domain, &decisions_of);
        let got = Figures {
            class,
            npa_since: since,
            dpd,
            arrears,
            outstanding,
            stage,
            provision,
            ecl: ecl_sql,
        };
        assert_eq!(got, expected, "loan {id} on {last_day}");
        if l.reported.class.is_npa() {
            npa_loans += 1;
        }
        classes_seen.insert(got.class);
    }
    assert!(
        npa_loans > 10,
        "the book must exercise NPA rules ({npa_loans} NPA loans)"
    );
    assert!(classes_seen.len() >= 5, "{classes_seen:?}");

    // The history of every transition.
    let history: Vec<(String, NaiveDate, String, String, i16, i16)> = sqlx::query_as(
        "SELECT loan_id, business_date, from_class, to_class, from_stage, to_stage \
         FROM status_history ORDER BY business_date, loan_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    transitions.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    assert_eq!(history.len(), transitions.len());
    assert_eq!(history, transitions);

    // The summary reconciles with the loans.
    let s = portfolio_aggregator::queries::summary(&pool, None)
        .await
        .unwrap();
    let (outstanding, npa, provisions, ecl_total): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT coalesce(sum(outstanding_principal), 0)::int8, \
           coalesce(sum(outstanding_principal) FILTER (WHERE state = 'ACTIVE' AND asset_class IN \
             ('SUBSTANDARD', 'D1', 'D2', 'D3', 'LOSS')), 0)::int8, \
           coalesce(sum(provision), 0)::int8, coalesce(sum(ecl), 0)::int8 FROM loan_status",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(s.outstanding, outstanding);
    assert_eq!(s.npa_amount, npa);
    assert_eq!(s.provisions, provisions);
    assert_eq!(s.ecl, ecl_total);
    assert_eq!(s.total_loans as usize, loans.len());
    let by_class = portfolio_aggregator::queries::npa_analysis(&pool, None)
        .await
        .unwrap()
        .by_class;
    assert_eq!(
        by_class.iter().map(|g| g.outstanding).sum::<i64>(),
        outstanding
    );
    pool.close().await;
}

fn pd_now(
    l: &RefLoan,
    on: NaiveDate,
    decisions_of: &HashMap<&str, Vec<(DateTime<Utc>, f64)>>,
) -> Option<f64> {
    let from = Utc.from_utc_datetime(&l.disbursed_on.succ_opt()?.and_hms_opt(0, 0, 0)?);
    let to = Utc.from_utc_datetime(&on.succ_opt()?.and_hms_opt(0, 0, 0)?);
    decisions_of
        .get(l.customer.as_str())?
        .iter()
        .rev()
        .find(|(at, _)| *at >= from && *at < to)
        .map(|(_, pd)| *pd)
}

fn day_end(
    loans: &mut BTreeMap<String, RefLoan>,
    on: NaiveDate,
    domain: &DomainSettings,
    decisions_of: &HashMap<&str, Vec<(DateTime<Utc>, f64)>>,
    transitions: &mut Vec<(String, NaiveDate, String, String, i16, i16)>,
) {
    let irac = &domain.irac;
    // Loan-level states.
    for l in loans.values_mut() {
        if l.state != State::Active {
            l.own = ClassState::STANDARD;
            continue;
        }
        let del = delinquency(&l.schedule, &l.payments, on);
        l.own = if l.own.class == AssetClass::Loss {
            l.own
        } else if let Some(loss) = l.loss_on.filter(|x| *x <= on) {
            mark_loss(l.own, loss)
        } else {
            irac.classify(l.own, del.dpd, del.arrears, on)
        };
    }
    // Borrower-wise.
    let mut by_customer: HashMap<String, Vec<String>> = HashMap::new();
    for (id, l) in loans.iter() {
        if l.state == State::Active {
            by_customer
                .entry(l.customer.clone())
                .or_default()
                .push(id.clone());
        }
    }
    for ids in by_customer.values() {
        let states: Vec<ClassState> = ids.iter().map(|id| loans[id].own).collect();
        let reported = irac.borrower_wise(&states, on);
        for (id, r) in ids.iter().zip(reported) {
            let l = loans.get_mut(id).unwrap();
            let (prev_class, prev_stage) = (l.reported.class, l.stage);
            l.reported = r;
            let del = delinquency(&l.schedule, &l.payments, on);
            l.stage = domain.ifrs9.stage(
                del.dpd,
                r.class.is_npa(),
                pd_now(l, on, decisions_of),
                l.origination_pd,
            );
            if prev_class != l.reported.class || prev_stage != l.stage {
                transitions.push((
                    id.clone(),
                    on,
                    prev_class.code().into(),
                    l.reported.class.code().into(),
                    prev_stage.number(),
                    l.stage.number(),
                ));
            }
        }
    }
    // Closed loans fall back to Standard, stage 1, once.
    for (id, l) in loans.iter_mut() {
        if l.state == State::Closed
            && (l.reported.class != AssetClass::Standard || l.stage != Stage::One)
        {
            transitions.push((
                id.clone(),
                on,
                l.reported.class.code().into(),
                "STANDARD".into(),
                l.stage.number(),
                1,
            ));
            l.reported = ClassState::STANDARD;
            l.stage = Stage::One;
        }
    }
}

fn figures(
    l: &RefLoan,
    on: NaiveDate,
    domain: &DomainSettings,
    decisions_of: &HashMap<&str, Vec<(DateTime<Utc>, f64)>>,
) -> Figures {
    let del = delinquency(&l.schedule, &l.payments, on);
    let active = l.state == State::Active;
    let outstanding = if active { del.outstanding_principal } else { 0 };
    let accrued = if active && !l.reported.class.is_npa() {
        del.arrears - del.arrears_principal
    } else {
        0
    };
    let due = l.schedule.iter().filter(|i| i.due_on <= on).count();
    let remaining = u32::try_from(l.schedule.len() - due).unwrap();
    let pd12 = pd_now(l, on, decisions_of)
        .or(l.origination_pd)
        .unwrap_or(0.0);
    Figures {
        class: l.reported.class.code().into(),
        npa_since: l.reported.npa_since,
        dpd: if active {
            i32::try_from(del.dpd).unwrap()
        } else {
            0
        },
        arrears: if active { del.arrears } else { 0 },
        outstanding,
        stage: l.stage.number(),
        provision: if active {
            domain
                .provisioning
                .provision(l.reported.class, outstanding, l.collateral)
        } else {
            0
        },
        ecl: if active {
            ecl(
                l.stage,
                pd12,
                domain.lgd.lgd_bps(l.purpose, l.collateral > 0),
                outstanding + accrued,
                remaining,
            )
        } else {
            0
        },
    }
}
