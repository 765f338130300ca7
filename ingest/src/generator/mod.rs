//! The synthetic lender: customers, applications, legacy decisions and loan histories with a
//! known true PD per application.
//!
//! # Layout
//! - [`settings`]: what to simulate.
//! - [`population`]: customers and applications.
//! - [`truth`]: the causal model of default and its calibration.
//! - [`legacy`]: the lender's previous rule-based policy.
//! - [`servicing`]: how each loan is repaid (or not).
//! - [`sink`]: files or memory; [`kafka`]: the topics.
//! - [`summary`]: what was generated and how it performed.
//!
//! The simulation steps one business day at a time: that day's applications and decisions,
//! then the day's loan events in order, then the day-end tick. Output is therefore in business
//! date order, and memory holds only the loans still being serviced.

pub mod kafka;
pub mod legacy;
pub mod population;
pub mod servicing;
pub mod settings;
pub mod sink;
pub mod summary;
pub mod truth;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use risk_core::settings::DomainSettings;
use schemas::{
    BusinessDayClosed, LoanAction, LoanDisbursed, LoanEvent, LoanEventBody, Outcome,
    PaymentReceived,
};

use population::Customer;
use servicing::{Action, Loan};
pub use settings::GeneratorSettings;
use sink::{Sink, SinkError, TruthRow};
use summary::{Summary, Tally};

/// Customers kept for repeat applications (bounds memory whatever the run's size).
const REPEAT_POOL: usize = 50_000;
/// Applications in the calibration pilot.
const PILOT: usize = 20_000;

/// Generation failed.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The settings are inconsistent.
    #[error(transparent)]
    Settings(#[from] settings::InvalidSettings),
    /// The output could not be written.
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// Progress callback: (business dates done, business dates in all).
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

fn at(date: NaiveDate, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.from_utc_datetime(&date.and_hms_opt(hour, minute, 0).unwrap_or_default())
}

fn months_between(start: NaiveDate, date: NaiveDate) -> u32 {
    let m = (date.year() - start.year()) * 12 + date.month() as i32 - start.month() as i32;
    u32::try_from(m).unwrap_or(0)
}

/// Applications per day of the application span, seasonal (festive peak in October and
/// November, a lull in the monsoon months), summing exactly to the total.
fn daily_plan(settings: &GeneratorSettings) -> Vec<u64> {
    let end = settings
        .start
        .checked_add_months(chrono::Months::new(settings.months))
        .unwrap_or(settings.start);
    let days: Vec<NaiveDate> = settings
        .start
        .iter_days()
        .take_while(|d| *d < end)
        .collect();
    let weight = |d: &NaiveDate| match d.month() {
        10 | 11 => 1.3,
        6..=8 => 0.85,
        _ => 1.0,
    };
    let total: f64 = days.iter().map(weight).sum();
    let mut plan = Vec::with_capacity(days.len());
    let mut cumulative = 0.0;
    let mut given = 0u64;
    for d in &days {
        cumulative += weight(d) / total * settings.applications as f64;
        let upto = cumulative.round() as u64;
        plan.push(upto - given);
        given = upto;
    }
    if let Some(last) = plan.last_mut() {
        *last += settings.applications - given;
    }
    plan
}

/// Whether the legacy policy's outcome leads to a disbursal, drawn.
fn disbursed(rng: &mut ChaCha8Rng, outcome: Outcome, settings: &GeneratorSettings) -> bool {
    match outcome {
        Outcome::Approve => rng.gen::<f64>() < settings.take_up,
        Outcome::Refer => rng.gen::<f64>() < settings.refer_take_up,
        Outcome::Decline => false,
    }
}

fn disbursal_weight(outcome: Outcome, settings: &GeneratorSettings) -> f64 {
    match outcome {
        Outcome::Approve => settings.take_up,
        Outcome::Refer => settings.refer_take_up,
        Outcome::Decline => 0.0,
    }
}

/// Solve the intercept on a pilot sample drawn from its own stream of the seed.
fn calibrate(settings: &GeneratorSettings, domain: &DomainSettings) -> f64 {
    let mut rng = truth::pilot_rng(settings.seed);
    let noise = Normal::new(0.0, settings.noise_sd.max(1e-9)).ok();
    let pilot: Vec<(f64, f64)> = (0..PILOT as u64)
        .map(|i| {
            let month = rng.gen_range(0..settings.months);
            let day = settings
                .start
                .checked_add_months(chrono::Months::new(month))
                .unwrap_or(settings.start);
            let c = population::new_customer(&mut rng, i, day, settings);
            let app = population::application(&mut rng, &c, i, day, settings);
            let legacy = legacy::decide(&app, domain);
            let eps = noise.map_or(0.0, |n| n.sample(&mut rng));
            let z = truth::structural_logit(&app) + truth::macro_shift(settings, month) + eps;
            (z, disbursal_weight(legacy.decision, settings))
        })
        .collect();
    truth::calibrate_intercept(&pilot, settings.target_default_rate)
}

struct Ids {
    customer: u64,
    application: u64,
    loan: u64,
    payment: u64,
    event: u64,
}

impl Ids {
    fn event(&mut self) -> String {
        self.event += 1;
        format!("EV-{:011}", self.event)
    }
}

impl sink::MemorySink {
    /// A whole generated history, in memory.
    pub fn generated(
        settings: &GeneratorSettings,
        domain: &risk_core::settings::DomainSettings,
    ) -> Result<sink::MemorySink, GenerateError> {
        let mut sink = sink::MemorySink::default();
        generate(settings, domain, &mut sink, &mut |_, _| {})?;
        Ok(sink)
    }
}

/// Run the simulation, writing everything to `sink`; returns the summary.
pub fn generate(
    settings: &GeneratorSettings,
    domain: &DomainSettings,
    sink: &mut dyn Sink,
    progress: Progress<'_>,
) -> Result<Summary, GenerateError> {
    settings.validate()?;
    let started = std::time::Instant::now();
    let intercept = calibrate(settings, domain);
    let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
    let noise = Normal::new(0.0, settings.noise_sd.max(1e-9)).ok();
    let plan = daily_plan(settings);
    let end = settings.end();
    let total_days = u64::try_from((end - settings.start).num_days()).unwrap_or(0);

    let mut pool: Vec<Customer> = Vec::new();
    let mut loans: HashMap<u64, Loan> = HashMap::new();
    let mut calendar: BTreeMap<NaiveDate, Vec<(u64, Action)>> = BTreeMap::new();
    let mut ids = Ids {
        customer: 0,
        application: 0,
        loan: 0,
        payment: 0,
        event: 0,
    };
    let mut tally = Tally::default();

    for (day_index, day) in settings
        .start
        .iter_days()
        .take_while(|d| *d < end)
        .enumerate()
    {
        let todays = plan.get(day_index).copied().unwrap_or(0);
        let month = months_between(settings.start, day);
        for _ in 0..todays {
            let customer = if !pool.is_empty() && rng.gen::<f64>() < settings.repeat_customer_share
            {
                pool[rng.gen_range(0..pool.len())].clone()
            } else {
                ids.customer += 1;
                let c = population::new_customer(&mut rng, ids.customer, day, settings);
                sink.customer(&population::registration(&c, at(day, 9, 0)))?;
                tally.customers += 1;
                if pool.len() < REPEAT_POOL {
                    pool.push(c.clone());
                } else {
                    let slot = rng.gen_range(0..REPEAT_POOL);
                    pool[slot] = c.clone();
                }
                c
            };
            ids.application += 1;
            let app = population::application(&mut rng, &customer, ids.application, day, settings);
            let decision = legacy::decide(&app, domain);
            let eps = noise.map_or(0.0, |n| n.sample(&mut rng));
            let true_pd = truth::sigmoid(
                intercept
                    + truth::structural_logit(&app)
                    + truth::macro_shift(settings, month)
                    + eps,
            );
            let disburse = disbursed(&mut rng, decision.decision, settings);
            sink.application(&app)?;
            sink.decision(&decision)?;
            tally.decided(decision.decision);
            let loan_id = if disburse {
                ids.loan += 1;
                let on = day + Duration::days(rng.gen_range(0..=5));
                let loan = Loan::new(
                    &mut rng,
                    settings,
                    ids.loan,
                    ids.application,
                    customer.seq,
                    &app.loan,
                    on,
                    true_pd,
                );
                let id = loan.id();
                loans.insert(ids.loan, loan);
                calendar
                    .entry(on)
                    .or_default()
                    .push((ids.loan, Action::Disburse));
                Some(id)
            } else {
                None
            };
            sink.truth(&TruthRow {
                application_id: app.application_id.clone(),
                customer_id: app.customer_id.clone(),
                month: format!("{:04}-{:02}", day.year(), day.month()),
                true_pd,
                decision: format!("{:?}", decision.decision).to_uppercase(),
                loan_id,
            })?;
        }

        while let Some(actions) = calendar.remove(&day) {
            for (loan_seq, action) in actions {
                run_action(
                    &mut rng,
                    settings,
                    sink,
                    &mut loans,
                    &mut calendar,
                    &mut ids,
                    &mut tally,
                    loan_seq,
                    action,
                    day,
                    end,
                )?;
            }
        }

        let tick = LoanEvent {
            event_id: ids.event(),
            occurred_at: at(day, 23, 59),
            body: LoanEventBody::BusinessDayClosed(BusinessDayClosed { business_date: day }),
        };
        sink.event(&tick)?;
        tally.events += 1;
        tally.business_days += 1;
        progress(day_index as u64 + 1, total_days);
    }
    sink.finish()?;
    Ok(tally.summary(settings, intercept, started.elapsed().as_secs_f64()))
}

#[allow(clippy::too_many_arguments)]
fn run_action(
    rng: &mut ChaCha8Rng,
    settings: &GeneratorSettings,
    sink: &mut dyn Sink,
    loans: &mut HashMap<u64, Loan>,
    calendar: &mut BTreeMap<NaiveDate, Vec<(u64, Action)>>,
    ids: &mut Ids,
    tally: &mut Tally,
    loan_seq: u64,
    action: Action,
    day: NaiveDate,
    end: NaiveDate,
) -> Result<(), SinkError> {
    let Some(loan) = loans.get_mut(&loan_seq) else {
        return Ok(());
    };
    let mut schedule = |date: NaiveDate, action: Action| {
        if date < end {
            calendar
                .entry(date.max(day))
                .or_default()
                .push((loan_seq, action));
        }
    };
    let mut close = false;
    match action {
        Action::Disburse => {
            let event = LoanEvent {
                event_id: ids.event(),
                occurred_at: at(day, 11, 0),
                body: LoanEventBody::LoanDisbursed(LoanDisbursed {
                    loan_id: loan.id(),
                    application_id: population::application_id(loan.app_seq),
                    customer_id: population::customer_id(loan.customer_seq),
                    principal: loan.principal,
                    interest_rate_bps: loan.rate.bps(),
                    tenure_months: i32::try_from(loan.tenure).unwrap_or(i32::MAX),
                    disbursed_on: day,
                    first_due_on: loan.first_due,
                    collateral_value: loan.collateral_value,
                }),
            };
            sink.event(&event)?;
            tally.events += 1;
            tally.disbursed += 1;
            tally.disbursed_amount += loan.principal;
            if let Some(bill) = loan.next_bill_date() {
                schedule(bill, Action::Bill);
            }
            schedule(loan.window_end, Action::WindowEnd);
        }
        Action::Bill => {
            for (date, next) in loan.bill(rng, settings) {
                schedule(date, next);
            }
        }
        Action::PayAll | Action::Pay(_) | Action::Prepay(_) | Action::Foreclose
            if loan.written_off => {}
        Action::PayAll | Action::Pay(_) | Action::Prepay(_) | Action::Foreclose => {
            let owed: i64 = loan.unpaid.iter().map(|(_, a)| a).sum();
            let amount = match action {
                Action::Pay(part) => part.min(owed),
                Action::Prepay(ahead) => {
                    tally.prepayments += 1;
                    loan.owed_with_next(ahead)
                }
                // Principal, interest accrued to the day and anything overdue.
                Action::Foreclose => loan.ledger.payoff(day),
                _ => owed,
            };
            // Whatever pays the loan off (a last instalment paid ahead of its date is a
            // payoff, with no interest for the days not run) pays the payoff quote, no more.
            let payoff = loan.ledger.payoff(day);
            let pays_off = amount >= payoff;
            let amount = amount.min(payoff);
            if amount > 0 {
                loan.pay(amount, day);
                if pays_off {
                    loan.settle();
                }
                if action == Action::Foreclose {
                    tally.foreclosures += 1;
                }
                ids.payment += 1;
                let event = LoanEvent {
                    event_id: ids.event(),
                    occurred_at: at(day, 12, 0),
                    body: LoanEventBody::PaymentReceived(PaymentReceived {
                        payment_id: format!("PAY-{:010}", ids.payment),
                        loan_id: loan.id(),
                        amount,
                        paid_on: day,
                    }),
                };
                sink.event(&event)?;
                tally.events += 1;
                tally.payments += 1;
                tally.paid_amount += amount;
            }
            close = loan.is_settled() || loan.is_prepaid_in_full();
        }
        Action::WindowEnd => {
            loan.check_default(day + Duration::days(1));
            tally.outcome(loan);
        }
        Action::WriteOff | Action::MarkLoss => {
            let body = LoanAction {
                loan_id: loan.id(),
                on: day,
            };
            let body = if action == Action::WriteOff {
                tally.write_offs += 1;
                loan.written_off = true;
                if rng.gen::<f64>() < 0.3 {
                    schedule(day + Duration::days(180), Action::MarkLoss);
                } else {
                    close = true;
                }
                LoanEventBody::LoanWrittenOff(body)
            } else {
                tally.losses += 1;
                close = true;
                LoanEventBody::LoanMarkedLoss(body)
            };
            sink.event(&LoanEvent {
                event_id: ids.event(),
                occurred_at: at(day, 17, 0),
                body,
            })?;
            tally.events += 1;
        }
    }
    if close {
        if let Some(loan) = loans.remove(&loan_seq) {
            // Settled before the window ended: its outcome is already known.
            if loan.window_end >= day && !loan.outcome_counted && loan.window_end < end {
                let mut loan = loan;
                tally.outcome(&mut loan);
            }
        }
    }
    Ok(())
}
