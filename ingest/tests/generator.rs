//! The synthetic lender: determinism, decodability, domain invariants, calibration.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use chrono::{Duration, Months, NaiveDate};
use ingest::generator::sink::{FileFormat, FileSink, MemorySink};
use ingest::generator::summary::Summary;
use ingest::generator::{generate, GeneratorSettings};
use risk_core::dpd::{delinquency, Ledger, Payment, PrepaymentMode};
use risk_core::money::RateBps;
use risk_core::schedule::schedule;
use risk_core::settings::DomainSettings;
use schemas::{decode, encode, LoanEventBody, Outcome};

fn small(applications: u64) -> GeneratorSettings {
    GeneratorSettings {
        applications,
        months: 6,
        ..GeneratorSettings::default()
    }
}

fn run_memory(settings: &GeneratorSettings) -> (MemorySink, Summary) {
    let mut sink = MemorySink::default();
    let summary = generate(
        settings,
        &DomainSettings::default(),
        &mut sink,
        &mut |_, _| {},
    )
    .unwrap();
    (sink, summary)
}

fn files_of(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn the_same_seed_gives_byte_identical_files_in_both_formats() {
    for format in [FileFormat::Jsonl, FileFormat::Avro] {
        let settings = small(1_500);
        let outputs: Vec<_> = (0..2)
            .map(|_| {
                let dir = tempfile::tempdir().unwrap();
                let mut sink = FileSink::create(dir.path(), format, settings.seed).unwrap();
                generate(
                    &settings,
                    &DomainSettings::default(),
                    &mut sink,
                    &mut |_, _| {},
                )
                .unwrap();
                files_of(dir.path())
            })
            .collect();
        assert_eq!(outputs[0].len(), 5);
        assert!(outputs[0].iter().all(|(_, bytes)| bytes.len() > 100));
        assert_eq!(
            outputs[0], outputs[1],
            "{format:?} output differs between runs"
        );
    }
}

#[test]
fn another_seed_gives_another_history() {
    let (a, _) = run_memory(&small(300));
    let (b, _) = run_memory(&GeneratorSettings {
        seed: 7,
        ..small(300)
    });
    assert_ne!(a.applications, b.applications);
}

#[test]
fn the_true_pd_never_appears_in_an_event() {
    let (sink, _) = run_memory(&small(300));
    let truth: Vec<String> = sink
        .truth
        .iter()
        .map(|t| format!("{:.8}", t.true_pd))
        .collect();
    let events = serde_json::to_string(&sink.events).unwrap();
    let decisions = serde_json::to_string(&sink.decisions).unwrap();
    assert!(truth
        .iter()
        .take(50)
        .all(|pd| !events.contains(pd.as_str()) && !decisions.contains(pd.as_str())));
}

#[test]
fn every_record_round_trips_through_the_codec() {
    let (sink, _) = run_memory(&small(800));
    for a in &sink.applications {
        assert_eq!(
            &decode::<schemas::LoanApplication>(&encode(a).unwrap()).unwrap(),
            a
        );
    }
    for d in &sink.decisions {
        assert_eq!(
            &decode::<schemas::Decision>(&encode(d).unwrap()).unwrap(),
            d
        );
    }
    for e in &sink.events {
        assert_eq!(
            &decode::<schemas::LoanEvent>(&encode(e).unwrap()).unwrap(),
            e
        );
    }
    for c in &sink.customers {
        assert!(decode::<schemas::CustomerRegistered>(&encode(c).unwrap()).unwrap() == *c);
    }
}

struct LoanFacts {
    disbursed_on: NaiveDate,
    first_due: NaiveDate,
    principal: i64,
    rate: i32,
    tenure: u32,
    payments: Vec<Payment>,
    written_off: Option<NaiveDate>,
}

#[test]
fn histories_respect_the_domain_invariants_and_agree_with_the_dpd_engine() {
    let settings = small(4_000);
    let (sink, summary) = run_memory(&settings);
    let decided: HashMap<&str, Outcome> = sink
        .decisions
        .iter()
        .map(|d| (d.application_id.as_str(), d.decision))
        .collect();
    let mut loans: HashMap<String, LoanFacts> = HashMap::new();
    let mut last_day = None;
    for e in &sink.events {
        match &e.body {
            LoanEventBody::LoanDisbursed(d) => {
                let outcome = decided[d.application_id.as_str()];
                assert_ne!(
                    outcome,
                    Outcome::Decline,
                    "a declined application was disbursed"
                );
                assert!(d.first_due_on > d.disbursed_on);
                loans.insert(
                    d.loan_id.clone(),
                    LoanFacts {
                        disbursed_on: d.disbursed_on,
                        first_due: d.first_due_on,
                        principal: d.principal,
                        rate: d.interest_rate_bps,
                        tenure: d.tenure_months as u32,
                        payments: Vec::new(),
                        written_off: None,
                    },
                );
            }
            LoanEventBody::PaymentReceived(p) => {
                let loan = loans
                    .get_mut(&p.loan_id)
                    .expect("payment for an unknown loan");
                assert!(p.paid_on > loan.disbursed_on, "payment before disbursal");
                assert!(loan.written_off.is_none(), "payment after write-off");
                assert!(p.amount > 0);
                loan.payments.push(Payment {
                    amount: p.amount,
                    paid_on: p.paid_on,
                });
            }
            LoanEventBody::LoanWrittenOff(w) => {
                loans.get_mut(&w.loan_id).unwrap().written_off = Some(w.on);
            }
            LoanEventBody::LoanMarkedLoss(l) => {
                assert!(loans[&l.loan_id].written_off.is_some_and(|w| w < l.on));
            }
            LoanEventBody::BusinessDayClosed(b) => {
                if let Some(prev) = last_day {
                    assert_eq!(b.business_date, prev + Duration::days(1));
                }
                last_day = Some(b.business_date);
            }
        }
    }
    assert_eq!(loans.len() as u64, summary.disbursed);
    let end = settings.end();
    let mut matured = 0u64;
    let mut defaults = 0u64;
    for loan in loans.values() {
        let s = schedule(
            loan.principal,
            RateBps::parse(loan.rate).unwrap(),
            loan.tenure,
            loan.first_due,
        );
        // Payments never exceed what the loan owes (a foreclosure pays it off to the paisa).
        let rate = RateBps::parse(loan.rate).unwrap();
        let mut ledger = Ledger::new(&s, rate, loan.disbursed_on, PrepaymentMode::default());
        let mut payments = loan.payments.clone();
        payments.sort_by_key(|p| p.paid_on);
        let allocations: Vec<_> = payments
            .iter()
            .map(|p| (p, ledger.pay(p.amount, p.paid_on)))
            .collect();
        let surplus: i64 = allocations.iter().map(|(_, a)| a.surplus).sum();
        assert_eq!(
            surplus, 0,
            "disbursed {} first due {} principal {} rate {} tenure {}: {allocations:#?}",
            loan.disbursed_on, loan.first_due, loan.principal, loan.rate, loan.tenure
        );
        let window_end = loan
            .disbursed_on
            .checked_add_months(Months::new(12))
            .unwrap();
        if window_end >= end {
            continue;
        }
        matured += 1;
        // DPD first exceeds 90 on some due date + 90 days: check each inside the window.
        let defaulted = s
            .iter()
            .map(|i| i.due_on + Duration::days(90))
            .filter(|d| *d <= window_end)
            .any(|d| delinquency(&s, rate, loan.disbursed_on, &loan.payments, d).dpd > 90);
        defaults += u64::from(defaulted);
    }
    assert_eq!(matured, summary.matured_loans);
    assert_eq!(
        defaults, summary.defaults_12m,
        "the generator and the DPD engine disagree"
    );
    assert!(defaults > 0);
}

#[test]
fn bad_settings_are_refused_with_the_setting_named() {
    let mut sink = MemorySink::default();
    let bad = GeneratorSettings {
        target_default_rate: 0.9,
        ..small(10)
    };
    let err = generate(&bad, &DomainSettings::default(), &mut sink, &mut |_, _| {}).unwrap_err();
    assert!(err.to_string().contains("target_default_rate"));
}

#[test]
fn two_hundred_thousand_applications_hit_the_target_default_rate_and_a_realistic_auc() {
    let settings = GeneratorSettings {
        applications: 200_000,
        ..GeneratorSettings::default()
    };
    let mut sink = CountingSink::default();
    let summary = generate(
        &settings,
        &DomainSettings::default(),
        &mut sink,
        &mut |_, _| {},
    )
    .unwrap();
    println!("{}", summary.render());
    assert!(
        (summary.observed_default_rate - settings.target_default_rate).abs() <= 0.01,
        "observed {} vs target {}",
        summary.observed_default_rate,
        settings.target_default_rate
    );
    let auc = summary.true_pd_auc.unwrap();
    assert!((0.75..=0.90).contains(&auc), "true-PD AUC {auc}");
}

/// Counts records without keeping them (memory flat).
#[derive(Default)]
struct CountingSink(u64);

impl ingest::generator::sink::Sink for CountingSink {
    fn customer(
        &mut self,
        _: &schemas::CustomerRegistered,
    ) -> Result<(), ingest::generator::sink::SinkError> {
        self.0 += 1;
        Ok(())
    }
    fn application(
        &mut self,
        _: &schemas::LoanApplication,
    ) -> Result<(), ingest::generator::sink::SinkError> {
        self.0 += 1;
        Ok(())
    }
    fn decision(
        &mut self,
        _: &schemas::Decision,
    ) -> Result<(), ingest::generator::sink::SinkError> {
        self.0 += 1;
        Ok(())
    }
    fn event(&mut self, _: &schemas::LoanEvent) -> Result<(), ingest::generator::sink::SinkError> {
        self.0 += 1;
        Ok(())
    }
    fn truth(
        &mut self,
        _: &ingest::generator::sink::TruthRow,
    ) -> Result<(), ingest::generator::sink::SinkError> {
        Ok(())
    }
    fn finish(&mut self) -> Result<(), ingest::generator::sink::SinkError> {
        Ok(())
    }
}

#[test]
fn avro_files_read_back_with_a_standard_container_reader() {
    let settings = small(300);
    let dir = tempfile::tempdir().unwrap();
    let mut sink = FileSink::create(dir.path(), FileFormat::Avro, settings.seed).unwrap();
    let summary = generate(
        &settings,
        &DomainSettings::default(),
        &mut sink,
        &mut |_, _| {},
    )
    .unwrap();
    let file = std::fs::File::open(dir.path().join("loan_applications.avro")).unwrap();
    let reader = apache_avro::Reader::new(file).unwrap();
    assert_eq!(reader.count() as u64, summary.applications);
    let file = std::fs::File::open(dir.path().join("loan_events.avro")).unwrap();
    let reader = apache_avro::Reader::new(file).unwrap();
    let schema = &schemas::registry::Registry::global()
        .latest("LoanEvent")
        .unwrap()
        .schema;
    let mut read = 0u64;
    for value in reader {
        use schemas::AvroMessage;
        schemas::LoanEvent::from_avro(value.unwrap(), schema, schema).unwrap();
        read += 1;
    }
    assert_eq!(read, summary.events);
}
