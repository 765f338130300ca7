//! The direct codec of applications and decisions writes the very bytes of the generic Avro
//! path, reads them back to the same values, and refuses every body the generic path refuses.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use apache_avro::types::Value;
use chrono::{TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use schemas::codec::{encode, HEADER_LEN};
use schemas::registry::Registry;
use schemas::*;

fn text(rng: &mut ChaCha8Rng) -> String {
    let alphabet = ['a', 'Z', '0', '-', ' ', 'é', '₹', '字', '\u{1F600}', '"'];
    let n = match rng.gen_range(0..10) {
        0 => 0,
        1 => rng.gen_range(60..200),
        _ => rng.gen_range(1..20),
    };
    (0..n)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
        .collect()
}

fn long(rng: &mut ChaCha8Rng) -> i64 {
    match rng.gen_range(0..6) {
        0 => 0,
        1 => i64::MAX,
        2 => i64::MIN,
        3 => -rng.gen_range(1..1_000_000i64),
        _ => rng.gen_range(0..10_000_000_000i64),
    }
}

fn int(rng: &mut ChaCha8Rng) -> i32 {
    match rng.gen_range(0..5) {
        0 => i32::MIN,
        1 => i32::MAX,
        2 => -rng.gen_range(1..100),
        _ => rng.gen_range(0..100_000),
    }
}

fn double(rng: &mut ChaCha8Rng) -> f64 {
    match rng.gen_range(0..6) {
        0 => 0.0,
        1 => -0.0,
        2 => f64::INFINITY,
        3 => f64::MIN_POSITIVE,
        _ => rng.gen_range(-1e6..1e6),
    }
}

fn pick<T: Copy>(rng: &mut ChaCha8Rng, all: &[T]) -> T {
    all[rng.gen_range(0..all.len())]
}

fn application(rng: &mut ChaCha8Rng) -> LoanApplication {
    LoanApplication {
        application_id: text(rng),
        customer_id: text(rng),
        submitted_at: Utc
            .timestamp_millis_opt(rng.gen_range(-10_000_000_000_000..10_000_000_000_000))
            .unwrap(),
        channel: text(rng),
        applicant: Applicant {
            age: int(rng),
            employment_type: pick(rng, &EmploymentType::ALL),
            years_employed: rng.gen_range(-5.0..60.0),
            monthly_income: long(rng),
            existing_emi: long(rng),
            dependents: int(rng),
            residence: pick(rng, &Residence::ALL),
        },
        bureau: rng.gen_bool(0.7).then(|| Bureau {
            bureau_score: int(rng),
            history_months: int(rng),
            delinquencies_24m: int(rng),
            inquiries_6m: int(rng),
            revolving_utilisation_bps: int(rng),
            open_accounts: int(rng),
        }),
        loan: LoanTerms {
            amount: long(rng),
            tenure_months: int(rng),
            interest_rate_bps: int(rng),
            purpose: pick(rng, &Purpose::ALL),
            collateral_value: rng.gen_bool(0.5).then(|| long(rng)),
        },
        currency: text(rng),
    }
}

fn decision(rng: &mut ChaCha8Rng) -> Decision {
    let reasons = rng.gen_range(0..6);
    let hits = rng.gen_range(0..4);
    Decision {
        application_id: text(rng),
        customer_id: text(rng),
        decided_at: Utc
            .timestamp_millis_opt(rng.gen_range(0..4_000_000_000_000))
            .unwrap(),
        model_version: text(rng),
        feature_set_version: text(rng),
        pd: double(rng),
        score: int(rng),
        score_clamped: rng.gen(),
        grade: text(rng),
        decision: pick(rng, &[Outcome::Approve, Outcome::Refer, Outcome::Decline]),
        reasons: (0..reasons)
            .map(|_| Reason {
                code: text(rng),
                feature: text(rng),
                value: rng.gen_bool(0.8).then(|| double(rng)),
                points: double(rng),
            })
            .collect(),
        rule_hits: (0..hits).map(|_| text(rng)).collect(),
        emi: long(rng),
        foir: double(rng),
        ltv: rng.gen_bool(0.5).then(|| double(rng)),
        challenger: rng.gen_bool(0.3).then(|| Challenger {
            model_version: text(rng),
            pd: double(rng),
        }),
    }
}

/// The body the generic path (a `Value` tree through apache-avro) writes.
fn generic_body<T: AvroMessage>(message: &T) -> Vec<u8> {
    let schema = &Registry::global().latest(T::FAMILY).unwrap().schema;
    apache_avro::to_avro_datum(schema, message.to_avro(schema).unwrap()).unwrap()
}

/// A reader that notes a read past the end (apache-avro reads a union index cut off by the
/// end as null; the codec refuses such bodies as truncated).
struct Guarded<'a> {
    rest: &'a [u8],
    hit_end: bool,
}

impl std::io::Read for Guarded<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.hit_end |= !buf.is_empty() && self.rest.len() < buf.len();
        self.rest.read(buf)
    }
}

/// What the generic path reads from a body: `None` when it refuses it.
fn generic_read<T: AvroMessage>(body: &[u8]) -> Option<T> {
    let schema = &Registry::global().latest(T::FAMILY).unwrap().schema;
    let mut reader = Guarded {
        rest: body,
        hit_end: false,
    };
    let value: Value = apache_avro::from_avro_datum(schema, &mut reader, None).ok()?;
    if reader.hit_end || !reader.rest.is_empty() {
        return None;
    }
    T::from_avro(value, schema, schema).ok()
}

fn check<T: AvroMessage + PartialEq + std::fmt::Debug>(
    messages: impl Iterator<Item = T>,
    rng: &mut ChaCha8Rng,
) -> (usize, usize) {
    let (mut mutated, mut refused) = (0, 0);
    for message in messages {
        let bytes = encode(&message).unwrap();
        let body = &bytes[HEADER_LEN..];
        assert_eq!(body, generic_body(&message).as_slice(), "{message:?}");
        assert_eq!(decode::<T>(&bytes).unwrap(), message);
        // Damaged bodies: the direct reader accepts exactly what the generic one accepts, and
        // reads the same value from it.
        for _ in 0..8 {
            let mut damaged = bytes.clone();
            match rng.gen_range(0..3) {
                0 => damaged.truncate(rng.gen_range(HEADER_LEN..bytes.len())),
                1 => {
                    let at = rng.gen_range(HEADER_LEN..bytes.len());
                    damaged[at] = rng.gen();
                }
                _ => damaged.push(rng.gen()),
            }
            let direct_result = decode::<T>(&damaged);
            let direct = direct_result.as_ref().ok();
            let generic = generic_read::<T>(&damaged[HEADER_LEN..]);
            mutated += 1;
            refused += usize::from(direct.is_none());
            match (direct, &generic) {
                (Some(a), Some(b)) => assert!(
                    format!("{a:?}") == format!("{b:?}"),
                    "the two paths read {damaged:02x?} differently:\n{a:?}\n{b:?}"
                ),
                (None, None) => {}
                _ => panic!(
                    "only one path accepts {damaged:02x?}: direct {direct_result:?}, generic {generic:?}"
                ),
            }
        }
    }
    (mutated, refused)
}

#[test]
fn applications_are_written_and_read_as_the_generic_path_does() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let apps: Vec<_> = (0..3_000).map(|_| application(&mut rng)).collect();
    let (mutated, refused) = check(apps.into_iter(), &mut rng);
    eprintln!("{mutated} damaged applications, {refused} refused by both paths");
    assert!(refused > mutated / 4, "the damage exercised too few errors");
}

#[test]
fn decisions_are_written_and_read_as_the_generic_path_does() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let decisions: Vec<_> = (0..3_000).map(|_| decision(&mut rng)).collect();
    let (mutated, refused) = check(decisions.into_iter(), &mut rng);
    eprintln!("{mutated} damaged decisions, {refused} refused by both paths");
    assert!(refused > mutated / 4, "the damage exercised too few errors");
}
