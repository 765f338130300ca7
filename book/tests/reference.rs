//! The set-based day-end in SQL against `risk_core`'s reference book, loan by loan and day by
//! day: a generated book is applied batch by batch (some payments delivered before their date's
//! day-end, some after it), the same events are replayed through `risk_core::book::Book`, and
//! every loan's DPD, class, NPA date, stage, provision and ECL must agree after every day-end,
//! with the same refusals and the same history of transitions (reasons included). Then the
//! portfolio figures must reconcile with the loans.
//!
//! `REFERENCE_SEEDS=N` replays N generated books instead of the default few (a long soak).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeSet, HashMap};

use book::message::{Incoming, Payload, Source};
use book::write::{apply_batch, ApplyContext};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use ingest::generator::sink::MemorySink;
use ingest::generator::GeneratorSettings;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use risk_core::book::{current_pd, Book, Disbursal, Loan};
use risk_core::settings::DomainSettings;
use runtime::postgres::connect;
use schemas::{LoanEvent, LoanEventBody, Purpose};
use sqlx::PgPool;
use tests::scratch::ScratchDatabase;

/// Apply a batch; returns the event ids it refused, with their class.
async fn apply(
    pool: &PgPool,
    ctx: &ApplyContext,
    batch: &[Incoming],
) -> BTreeSet<(String, String)> {
    let mut tx = pool.begin().await.unwrap();
    let out = apply_batch(&mut tx, ctx, batch).await.unwrap();
    tx.commit().await.unwrap();
    out.rejected
        .iter()
        .map(|(i, r)| {
            let id = match &batch[*i].payload {
                Ok(Payload::Event(e)) => e.event_id.clone(),
                _ => format!("record {i}"),
            };
            (id, r.class.to_string())
        })
        .collect()
}

fn book(seed: u64, applications: u64) -> MemorySink {
    let settings = GeneratorSettings {
        seed,
        applications,
        months: 10,
        performance_months: 14,
        target_default_rate: 0.12,
        ..GeneratorSettings::default()
    };
    MemorySink::generated(&settings, &DomainSettings::default()).unwrap()
}

/// The events in the order they are delivered, cut at each day-end tick: about one payment in
/// ten arrives one to five day-ends late (after its date's day-end), one in ten up to three
/// day-ends early (before it), never before its loan's disbursal.
fn deliveries(events: &[LoanEvent], seed: u64) -> Vec<(Vec<LoanEvent>, Option<NaiveDate>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let ticks = events
        .iter()
        .filter(|e| matches!(e.body, LoanEventBody::BusinessDayClosed(_)))
        .count();
    let mut slots: Vec<Vec<LoanEvent>> = vec![Vec::new(); ticks + 1];
    let mut disbursed_in: HashMap<String, usize> = HashMap::new();
    let mut slot = 0;
    let mut dates = Vec::new();
    for e in events {
        match &e.body {
            LoanEventBody::BusinessDayClosed(b) => {
                dates.push(b.business_date);
                slot += 1;
                continue;
            }
            LoanEventBody::LoanDisbursed(d) => {
                disbursed_in.insert(d.loan_id.clone(), slot);
            }
            _ => {}
        }
        let target = match &e.body {
            LoanEventBody::PaymentReceived(p) => {
                let u: f64 = rng.gen();
                if u < 0.1 {
                    (slot + rng.gen_range(1..=5))
                        .min(ticks.saturating_sub(1))
                        .max(slot)
                } else if u < 0.2 {
                    slot.saturating_sub(rng.gen_range(1..=3))
                        .max(disbursed_in.get(&p.loan_id).copied().unwrap_or(slot))
                } else {
                    slot
                }
            }
            _ => slot,
        };
        slots[target].push(e.clone());
    }
    slots
        .into_iter()
        .enumerate()
        .map(|(k, evs)| (evs, dates.get(k).copied()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sql_day_end_agrees_with_risk_core_loan_by_loan_every_day() {
    let seeds: u64 = std::env::var("REFERENCE_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    for seed in 0..seeds {
        let applications = if seed == 0 { 2_500 } else { 600 };
        replay(11 + seed, applications).await;
    }
}

async fn replay(seed: u64, applications: u64) {
    let domain = DomainSettings::default();
    let sink = book(seed, applications);
    let db = ScratchDatabase::create().await.unwrap();
    let pool = connect(&db.url, 2).await.unwrap();
    book::db::migrate(&pool).await.unwrap();
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
    let mut decisions_of: HashMap<String, Vec<(DateTime<Utc>, f64)>> = HashMap::new();
    for d in &sink.decisions {
        decisions_of
            .entry(d.customer_id.clone())
            .or_default()
            .push((d.decided_at, d.pd));
    }
    for v in decisions_of.values_mut() {
        v.sort_by_key(|a| a.0);
    }
    let current_pd = move |l: &Loan, on: NaiveDate| pd_now(l, on, &decisions_of);

    // Records first.
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
        assert!(apply(&pool, &ctx, chunk).await.is_empty());
    }

    // Events, slot by slot, through both engines.
    let mut reference = Book::new(domain.clone());
    let mut offset = 0i64;
    let mut days = 0;
    let mut late = 0;
    for (events, tick) in deliveries(&sink.events, seed) {
        let mut batch = Vec::new();
        let mut refused = BTreeSet::new();
        for e in &events {
            batch.push(Incoming::decoded(
                Source::Events,
                offset,
                Payload::Event(Box::new(e.clone())),
            ));
            offset += 1;
            let outcome = match &e.body {
                LoanEventBody::LoanDisbursed(d) => {
                    reference.disburse(Disbursal::from_event(
                        d,
                        purpose[d.application_id.as_str()],
                        origination.get(d.application_id.as_str()).copied(),
                    ));
                    Ok(())
                }
                LoanEventBody::PaymentReceived(p) => {
                    if reference.last_closed.is_some_and(|c| p.paid_on <= c) {
                        late += 1;
                    }
                    reference.pay(&p.loan_id, p.amount, p.paid_on).map(|_| ())
                }
                LoanEventBody::LoanWrittenOff(a) => reference.write_off(&a.loan_id, a.on),
                LoanEventBody::LoanMarkedLoss(a) => reference.mark_loss(&a.loan_id, a.on),
                LoanEventBody::BusinessDayClosed(_) => Ok(()),
            };
            if let Err(r) = outcome {
                refused.insert((e.event_id.clone(), r.class().to_string()));
            }
        }
        let Some(day) = tick else {
            assert_eq!(apply(&pool, &ctx, &batch).await, refused);
            break;
        };
        batch.push(Incoming::decoded(
            Source::Events,
            offset,
            Payload::Event(Box::new(LoanEvent {
                event_id: format!("TICK-{day}"),
                occurred_at: Utc.from_utc_datetime(&day.and_hms_opt(23, 0, 0).unwrap()),
                body: LoanEventBody::BusinessDayClosed(schemas::BusinessDayClosed {
                    business_date: day,
                }),
            })),
        ));
        offset += 1;
        assert_eq!(
            apply(&pool, &ctx, &batch).await,
            refused,
            "refusals on {day}"
        );
        reference.close_day(day, &current_pd);
        compare(&pool, &reference, day, &current_pd).await;
        days += 1;
    }
    assert!(days > 300, "{days} day-ends");
    assert!(late > 50, "{late} payments delivered after their day-end");

    // Coverage: the book exercises the rules.
    let mut classes_seen = BTreeSet::new();
    let mut npa_loans = 0;
    let mut reasons = BTreeSet::new();
    for l in reference.loans.values() {
        classes_seen.insert(l.reported.class.code());
        if l.reported.class.is_npa() {
            npa_loans += 1;
        }
    }
    for t in &reference.transitions {
        reasons.insert(t.reason.clone());
    }
    assert!(npa_loans > 10 || seed != 11, "{npa_loans} NPA loans");
    assert!(classes_seen.len() >= 3, "{classes_seen:?}");
    assert!(reasons.len() >= 4, "{reasons:?}");

    // The history of every transition, with its reason.
    let history = common::sql_history(&pool).await;
    let expected = common::reference_history(&reference);
    assert_eq!(history.len(), expected.len());
    assert_eq!(history, expected);

    // The summary reconciles with the loans.
    let s = book::queries::summary(&pool, None).await.unwrap();
    let (outstanding, npa, provisions, ecl_total): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT coalesce(sum(outstanding_principal), 0)::int8, \
           coalesce(sum(outstanding_principal) FILTER (WHERE state = 'ACTIVE' AND \
             is_npa(asset_class)), 0)::int8, \
           coalesce(sum(provision), 0)::int8, coalesce(sum(ecl), 0)::int8 FROM loan_status",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(s.outstanding, outstanding);
    assert_eq!(s.npa_amount, npa);
    assert_eq!(s.provisions, provisions);
    assert_eq!(s.ecl, ecl_total);
    assert_eq!(s.total_loans as usize, reference.loans.len());
    pool.close().await;
}

/// Every loan's figures after the day-end of `day`, SQL against the reference.
async fn compare(
    pool: &PgPool,
    reference: &Book,
    day: NaiveDate,
    current_pd: &dyn Fn(&Loan, NaiveDate) -> Option<f64>,
) {
    let rows = common::sql_figures(pool).await;
    assert_eq!(rows.len(), reference.loans.len(), "loans on {day}");
    for (id, got) in rows {
        let expected = reference.figures(&id, day, current_pd).unwrap();
        if got != expected {
            let l = &reference.loans[&id];
            panic!(
                "loan {id} after the day-end of {day}:\n  sql:       {got:?}\n  reference: \
                 {expected:?}\n  terms: {:?}\n  state: {:?}",
                l.terms, l.state
            );
        }
    }
}

fn pd_now(
    l: &Loan,
    on: NaiveDate,
    decisions_of: &HashMap<String, Vec<(DateTime<Utc>, f64)>>,
) -> Option<f64> {
    current_pd(l, on, decisions_of.get(l.terms.customer_id.as_str())?)
}
