//! Random books through both engines, compared after every day-end for every loan: the real
//! path (loan events → `apply_batch` → the SQL day-end) against `risk_core::book::Book`.
//!
//! Each book has one to three customers with one to four loans each; every loan follows a
//! behaviour (on time, late, partial, part-prepaid, foreclosed, written off, marked loss, never
//! paid, stopping and curing); payments are delivered on time, before their day's close or
//! after it. Day-ends close every 1, 2, 5 or 10 days. A difference is shrunk to the smallest
//! book (fewest loans) that still shows it, and that book is printed.
//!
//! CI replays `DIFFERENTIAL_BOOKS` books (default 12) from a fixed seed; set it higher for a
//! soak, and `DIFFERENTIAL_SEED` to start elsewhere. Books that close on the same days are
//! replayed together, up to `DIFFERENTIAL_BATCH` (default 50) at a time, as one book of
//! disjoint customers; a difference is traced back to the single book that shows it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::no_current_pd;
use std::collections::BTreeSet;

use book::message::{Incoming, Payload, Source};
use book::write::{apply_batch, ApplyContext};
use chrono::{Duration, NaiveDate, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use risk_core::book::{Book, Disbursal};
use risk_core::dpd::{Ledger, PrepaymentMode};
use risk_core::money::RateBps;
use risk_core::schedule::schedule;
use risk_core::settings::DomainSettings;
use runtime::postgres::connect;
use schemas::{LoanAction, LoanDisbursed, LoanEvent, LoanEventBody, PaymentReceived, Purpose};
use sqlx::PgPool;
use tests::scratch::ScratchDatabase;

#[derive(Debug, Clone, Copy)]
enum Behaviour {
    OnTime,
    Late,
    Partial,
    PartPrepaid(usize),
    Foreclosed(usize),
    WrittenOff(usize),
    MarkedLoss(usize),
    NeverPaid,
    StopsAndCures(usize),
}

#[derive(Debug, Clone)]
struct RandomLoan {
    id: String,
    customer: String,
    principal: i64,
    rate_bps: i32,
    months: u32,
    disbursed_on: NaiveDate,
    collateral: i64,
    pd: f64,
    behaviour: Behaviour,
}

/// A loan event with the date it belongs to and how it is delivered: in the batch before its
/// day's close (0), that many closes early (< 0) or late (> 0).
#[derive(Debug, Clone)]
struct Planned {
    date: NaiveDate,
    shift: i32,
    body: LoanEventBody,
}

#[derive(Debug, Clone)]
struct RandomBook {
    seed: u64,
    loans: Vec<RandomLoan>,
    close_every: i64,
}

fn start() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 1, 1).unwrap()
}

fn random_book(seed: u64) -> RandomBook {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut loans = Vec::new();
    for c in 0..rng.gen_range(1..=3) {
        for _ in 0..rng.gen_range(1..=4) {
            let months = rng.gen_range(1..=18);
            let pick = rng.gen_range(0..9);
            let at = rng.gen_range(0..months as usize);
            let behaviour = match pick {
                0 => Behaviour::OnTime,
                1 => Behaviour::Late,
                2 => Behaviour::Partial,
                3 => Behaviour::PartPrepaid(at),
                4 => Behaviour::Foreclosed(at),
                5 => Behaviour::WrittenOff(at),
                6 => Behaviour::MarkedLoss(at),
                7 => Behaviour::NeverPaid,
                _ => Behaviour::StopsAndCures(at),
            };
            let collateral = match rng.gen_range(0..3) {
                0 => 0,
                _ => rng.gen_range(1..20_000_000),
            };
            loans.push(RandomLoan {
                id: format!("B{seed}L{}", loans.len() + 1),
                customer: format!("B{seed}C{c}"),
                principal: rng.gen_range(10_000..50_000_000),
                rate_bps: rng.gen_range(0..3_000),
                months,
                disbursed_on: start() + Duration::days(rng.gen_range(0..90)),
                collateral,
                pd: rng.gen_range(0.001..0.4),
                behaviour,
            });
        }
    }
    let close_every = [1, 2, 5, 10][rng.gen_range(0..4)];
    RandomBook {
        seed,
        loans,
        close_every,
    }
}

/// The events a loan's behaviour produces (amounts from its own ledger, in date order).
fn plan(l: &RandomLoan, rng: &mut ChaCha8Rng, n: &mut u64) -> Vec<Planned> {
    let rate = RateBps::parse(l.rate_bps).unwrap();
    let first_due = l
        .disbursed_on
        .checked_add_months(chrono::Months::new(1))
        .unwrap();
    let s = schedule(l.principal, rate, l.months, first_due);
    let mut ledger = Ledger::new(&s, rate, l.disbursed_on, PrepaymentMode::default());
    let mut out = vec![Planned {
        date: l.disbursed_on,
        shift: 0,
        body: LoanEventBody::LoanDisbursed(LoanDisbursed {
            loan_id: l.id.clone(),
            application_id: format!("APP-{}", l.id),
            customer_id: l.customer.clone(),
            principal: l.principal,
            interest_rate_bps: l.rate_bps,
            tenure_months: i32::try_from(l.months).unwrap(),
            disbursed_on: l.disbursed_on,
            first_due_on: first_due,
            collateral_value: (l.collateral > 0).then_some(l.collateral),
        }),
    }];
    fn shift(rng: &mut ChaCha8Rng) -> i32 {
        match rng.gen_range(0..10) {
            0 => -rng.gen_range(1..=3),
            1 => rng.gen_range(1..=3),
            _ => 0,
        }
    }
    let pay =
        |ledger: &mut Ledger, amount: i64, on: NaiveDate, rng: &mut ChaCha8Rng, n: &mut u64| {
            if amount <= 0 || ledger.is_closed() {
                return None;
            }
            ledger.pay(amount, on);
            *n += 1;
            Some(Planned {
                date: on,
                shift: shift(rng),
                body: LoanEventBody::PaymentReceived(PaymentReceived {
                    payment_id: format!("{}P{n}", l.id),
                    loan_id: l.id.clone(),
                    amount,
                    paid_on: on,
                }),
            })
        };
    let action = |on: NaiveDate, loss: bool| Planned {
        date: on,
        shift: 0,
        body: if loss {
            LoanEventBody::LoanMarkedLoss(LoanAction {
                loan_id: l.id.clone(),
                on,
            })
        } else {
            LoanEventBody::LoanWrittenOff(LoanAction {
                loan_id: l.id.clone(),
                on,
            })
        },
    };
    for (k, inst) in s.iter().enumerate() {
        let due = inst.due_on;
        let row = |ledger: &Ledger| {
            let c = &ledger.cursor;
            c.principal
                .get(c.at)
                .map_or(0, |p| p + c.interest[c.at] - c.paid)
        };
        let event = match l.behaviour {
            Behaviour::NeverPaid => None,
            Behaviour::OnTime => {
                let on = due - Duration::days(rng.gen_range(0..=4));
                let amount = row(&ledger);
                pay(&mut ledger, amount, on, rng, n)
            }
            Behaviour::Late => {
                let on = due + Duration::days(rng.gen_range(1..=45));
                let amount = ledger.delinquency(on).arrears;
                pay(&mut ledger, amount, on, rng, n)
            }
            Behaviour::Partial => {
                let on = due + Duration::days(rng.gen_range(0..=20));
                let amount = ledger.delinquency(on).arrears * rng.gen_range(3..=9) / 10;
                pay(&mut ledger, amount, on, rng, n)
            }
            Behaviour::PartPrepaid(at) => {
                let on = due - Duration::days(rng.gen_range(0..=3));
                let extra = if k == at {
                    rng.gen_range(1..l.principal)
                } else {
                    0
                };
                let amount = row(&ledger) + extra;
                pay(&mut ledger, amount, on, rng, n)
            }
            Behaviour::Foreclosed(at) if k == at => {
                let on = due - Duration::days(rng.gen_range(0..=20));
                let on = on.max(l.disbursed_on);
                let amount = ledger.payoff(on) + rng.gen_range(0..=1);
                let p = pay(&mut ledger, amount, on, rng, n);
                out.extend(p);
                break;
            }
            Behaviour::Foreclosed(_) => {
                let amount = row(&ledger);
                pay(&mut ledger, amount, due, rng, n)
            }
            Behaviour::WrittenOff(at) | Behaviour::MarkedLoss(at) if k >= at => {
                if k == at {
                    let on = due + Duration::days(rng.gen_range(95..=200));
                    let loss = matches!(l.behaviour, Behaviour::MarkedLoss(_));
                    out.push(action(on, loss));
                    if !loss && rng.gen_bool(0.5) {
                        // A recovery after the write-off.
                        let amount = rng.gen_range(1..=l.principal / 4 + 1);
                        *n += 1;
                        out.push(Planned {
                            date: on + Duration::days(20),
                            shift: 0,
                            body: LoanEventBody::PaymentReceived(PaymentReceived {
                                payment_id: format!("{}P{n}", l.id),
                                loan_id: l.id.clone(),
                                amount,
                                paid_on: on + Duration::days(20),
                            }),
                        });
                    }
                }
                None
            }
            Behaviour::StopsAndCures(at) if k >= at => {
                if k == at + 4 {
                    let on = due + Duration::days(rng.gen_range(0..=10));
                    let amount = ledger.delinquency(on).arrears;
                    pay(&mut ledger, amount, on, rng, n)
                } else {
                    None
                }
            }
            Behaviour::WrittenOff(_) | Behaviour::MarkedLoss(_) | Behaviour::StopsAndCures(_) => {
                let amount = row(&ledger);
                pay(&mut ledger, amount, due, rng, n)
            }
        };
        out.extend(event);
    }
    out
}

struct Engine {
    pool: PgPool,
    _db: ScratchDatabase,
}

impl Engine {
    async fn new() -> Engine {
        let db = ScratchDatabase::create().await.unwrap();
        let pool = connect(&db.url, 2).await.unwrap();
        book::db::migrate(&pool).await.unwrap();
        Engine { pool, _db: db }
    }

    async fn reset(&self) {
        sqlx::query(
            "TRUNCATE customers, applications, decisions, decision_reasons, loans, \
             loan_schedules, payments, loan_status, status_history, business_days, \
             portfolio_daily, repayment_daily, vintage_hits, roll_rates, applied_events, \
             consumer_offsets, customer_risk, pending_events RESTART IDENTITY CASCADE",
        )
        .execute(&self.pool)
        .await
        .unwrap();
    }
}

/// Replay `books` (which close on the same days) through both engines as one book: their
/// customers and loans are disjoint, so each loan is compared exactly as if its book were
/// replayed alone. The first difference, if any.
async fn replay(engine: &Engine, books: &[&RandomBook]) -> Result<(usize, usize), String> {
    engine.reset().await;
    let domain = DomainSettings::default();
    let ctx = ApplyContext {
        group: "differential".into(),
        event_partitions: 1,
        domain: domain.clone(),
    };
    let close_every = books.first().map_or(1, |b| b.close_every);
    assert!(books.iter().all(|b| b.close_every == close_every));
    let mut planned: Vec<Planned> = Vec::new();
    for book in books {
        let mut rng = ChaCha8Rng::seed_from_u64(book.seed ^ 0x5eed);
        let mut n = 0;
        for l in &book.loans {
            planned.extend(plan(l, &mut rng, &mut n));
        }
    }
    let last = planned.iter().map(|p| p.date).max().unwrap_or(start()) + Duration::days(100);
    let mut closes = Vec::new();
    let mut day = start() + Duration::days(close_every - 1);
    while day <= last {
        closes.push(day);
        day += Duration::days(close_every);
    }
    // Each event's slot: the index of the first close on or after its date, shifted; a loan's
    // disbursal always comes first, so nothing is shifted before it.
    let slot_of = |date: NaiveDate| closes.partition_point(|c| *c < date);
    let mut slots: Vec<Vec<LoanEvent>> = vec![Vec::new(); closes.len() + 1];
    let mut disbursal_slot = std::collections::HashMap::new();
    let mut order: Vec<&Planned> = planned.iter().collect();
    order.sort_by_key(|p| (p.date, !matches!(p.body, LoanEventBody::LoanDisbursed(_))));
    for (i, p) in order.into_iter().enumerate() {
        let base = slot_of(p.date);
        let loan = match &p.body {
            LoanEventBody::LoanDisbursed(d) => {
                disbursal_slot.insert(d.loan_id.clone(), base);
                d.loan_id.clone()
            }
            LoanEventBody::PaymentReceived(x) => x.loan_id.clone(),
            LoanEventBody::LoanWrittenOff(a) | LoanEventBody::LoanMarkedLoss(a) => {
                a.loan_id.clone()
            }
            LoanEventBody::BusinessDayClosed(_) => continue,
        };
        let floor = disbursal_slot.get(&loan).copied().unwrap_or(base);
        let slot = (base as i64 + i64::from(p.shift))
            .clamp(floor as i64, closes.len() as i64 - 1)
            .max(0) as usize;
        slots[slot].push(LoanEvent {
            event_id: format!("E{i}"),
            occurred_at: Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap(),
            body: p.body.clone(),
        });
    }

    let mut reference = Book::new(domain.clone());
    let mut offset = 0i64;
    let loans: Vec<&RandomLoan> = books.iter().flat_map(|b| &b.loans).collect();
    let pd_of: std::collections::HashMap<&str, f64> =
        loans.iter().map(|l| (l.id.as_str(), l.pd)).collect();
    let mut compared = 0;
    for (k, close) in closes.iter().enumerate() {
        let mut batch = Vec::new();
        let mut refused = BTreeSet::new();
        for e in &slots[k] {
            let r = match &e.body {
                LoanEventBody::LoanDisbursed(d) => {
                    reference.disburse(Disbursal::from_event(
                        d,
                        Purpose::Personal,
                        Some(pd_of[d.loan_id.as_str()]),
                    ));
                    Ok(())
                }
                LoanEventBody::PaymentReceived(p) => {
                    reference.pay(&p.loan_id, p.amount, p.paid_on).map(|_| ())
                }
                LoanEventBody::LoanWrittenOff(a) => reference.write_off(&a.loan_id, a.on),
                LoanEventBody::LoanMarkedLoss(a) => reference.mark_loss(&a.loan_id, a.on),
                LoanEventBody::BusinessDayClosed(_) => Ok(()),
            };
            if let Err(r) = r {
                refused.insert((e.event_id.clone(), r.class().to_string()));
            }
            batch.push(Incoming::decoded(
                Source::Events,
                offset,
                Payload::Event(Box::new(e.clone())),
            ));
            offset += 1;
        }
        let mut tx = engine.pool.begin().await.unwrap();
        let out = apply_batch(&mut tx, &ctx, &batch)
            .await
            .map_err(|e| e.to_string())?;
        tx.commit().await.unwrap();
        // Origination PDs (no decisions in these books), set once each loan exists.
        sqlx::query(
            "UPDATE loans l SET origination_pd = u.pd \
             FROM unnest($1::text[], $2::float8[]) AS u(id, pd) \
             WHERE l.loan_id = u.id AND l.origination_pd IS NULL",
        )
        .bind(loans.iter().map(|l| l.id.clone()).collect::<Vec<_>>())
        .bind(loans.iter().map(|l| l.pd).collect::<Vec<_>>())
        .execute(&engine.pool)
        .await
        .unwrap();
        let tick = [Incoming::decoded(
            Source::Events,
            offset,
            Payload::Event(Box::new(LoanEvent {
                event_id: format!("TICK-{close}"),
                occurred_at: Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap(),
                body: LoanEventBody::BusinessDayClosed(schemas::BusinessDayClosed {
                    business_date: *close,
                }),
            })),
        )];
        offset += 1;
        let mut tx = engine.pool.begin().await.unwrap();
        let closed = apply_batch(&mut tx, &ctx, &tick)
            .await
            .map_err(|e| e.to_string())?;
        tx.commit().await.unwrap();
        if closed.closed.len() != 1 {
            return Err(format!("the tick of {close} did not close the day"));
        }
        let sql_refused: BTreeSet<(String, String)> = out
            .rejected
            .iter()
            .map(|(i, r)| {
                let id = match &batch[*i].payload {
                    Ok(Payload::Event(e)) => e.event_id.clone(),
                    _ => String::new(),
                };
                (id, r.class.to_string())
            })
            .collect();
        if sql_refused != refused {
            return Err(format!(
                "refusals before the close of {close}: sql {sql_refused:?}, reference {refused:?}"
            ));
        }
        reference.close_day(*close, &no_current_pd);
        for (id, got) in common::sql_figures(&engine.pool).await {
            let expected = reference.figures(&id, *close, &no_current_pd).unwrap();
            if got != expected {
                return Err(format!(
                    "loan {id} after the day-end of {close}:\n  sql:       {got:?}\n  \
                     reference: {expected:?}"
                ));
            }
            compared += 1;
        }
    }
    // The history of changes, reasons included.
    let history = common::sql_history(&engine.pool).await;
    let expected = common::reference_history(&reference);
    if history != expected {
        let first = history
            .iter()
            .zip(&expected)
            .find(|(a, b)| a != b)
            .map(|(a, b)| format!("sql {a:?}, reference {b:?}"))
            .unwrap_or_else(|| format!("{} rows vs {}", history.len(), expected.len()));
        return Err(format!("history differs: {first}"));
    }
    Ok((closes.len(), compared))
}

/// The smallest book (fewest loans) that still fails.
async fn shrink(engine: &Engine, mut book: RandomBook, mut error: String) -> (RandomBook, String) {
    loop {
        let mut smaller = None;
        for k in 0..book.loans.len() {
            let mut candidate = book.clone();
            candidate.loans.remove(k);
            if candidate.loans.is_empty() {
                continue;
            }
            if let Err(e) = replay(engine, &[&candidate]).await {
                smaller = Some((candidate, e));
                break;
            }
        }
        match smaller {
            Some((b, e)) => {
                book = b;
                error = e;
            }
            None => return (book, error),
        }
    }
}

/// Replay a batch of books that close on the same days; on a difference, find the book that
/// shows it alone and panic with its smallest form.
async fn check(engine: &Engine, batch: &[RandomBook]) -> (usize, usize, usize) {
    let refs: Vec<&RandomBook> = batch.iter().collect();
    match replay(engine, &refs).await {
        Ok((closes, compared)) => (closes, compared, batch.iter().map(|b| b.loans.len()).sum()),
        Err(e) => {
            for book in batch {
                if let Err(alone) = replay(engine, &[book]).await {
                    let (smallest, error) = shrink(engine, book.clone(), alone).await;
                    panic!(
                        "book {} differs: {error}\nsmallest book showing it:\n{smallest:#?}",
                        book.seed
                    );
                }
            }
            let seeds: Vec<u64> = batch.iter().map(|b| b.seed).collect();
            panic!("books {seeds:?} differ only together: {e}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_books_agree_with_risk_core_every_loan_every_day() {
    let env = |name: &str, default: u64| -> u64 {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let books = env("DIFFERENTIAL_BOOKS", 12);
    let first = env("DIFFERENTIAL_SEED", 1);
    // Books replayed together (those that close on the same days).
    let together = env("DIFFERENTIAL_BATCH", 50).max(1) as usize;
    let engine = Engine::new().await;
    let (mut closes, mut compared, mut loans, mut done) = (0, 0, 0, 0u64);
    let mut waiting: std::collections::BTreeMap<i64, Vec<RandomBook>> = Default::default();
    for seed in first..first + books {
        let book = random_book(seed);
        let bucket = waiting.entry(book.close_every).or_default();
        bucket.push(book);
        let last = seed + 1 == first + books;
        let full: Vec<i64> = waiting
            .iter()
            .filter(|(_, b)| b.len() >= together || (last && !b.is_empty()))
            .map(|(k, _)| *k)
            .collect();
        for k in full {
            let batch = waiting.remove(&k).unwrap_or_default();
            let (c, n, l) = check(&engine, &batch).await;
            closes += c;
            compared += n;
            loans += l;
            let before = done;
            done += batch.len() as u64;
            if done / 500 != before / 500 {
                eprintln!("{done} books, {loans} loans, {closes} day-ends, {compared} loan-days");
            }
        }
    }
    eprintln!(
        "{books} random books from seed {first}: {loans} loans, {closes} day-ends, \
         {compared} loan-days compared"
    );
    assert_eq!(done, books);
    assert!(compared > 0);
}
