//! Round trips, malformed input and schema evolution of the single-object codec.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use apache_avro::schema_compatibility::SchemaCompatibility;
use chrono::{NaiveDate, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use schemas::codec::{encode_with, writer_version, HEADER_LEN, MAGIC};
use schemas::registry::{Registry, FAMILIES};
use schemas::*;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn application() -> LoanApplication {
    LoanApplication {
        application_id: "APP-000123".into(),
        customer_id: "CUST-42".into(),
        submitted_at: Utc.with_ymd_and_hms(2026, 3, 14, 10, 30, 0).unwrap(),
        channel: "branch".into(),
        applicant: Applicant {
            age: 34,
            employment_type: EmploymentType::SelfEmployed,
            years_employed: 6.5,
            monthly_income: 12_500_000,
            existing_emi: 1_800_000,
            dependents: 2,
            residence: Residence::Mortgaged,
        },
        bureau: Some(Bureau {
            bureau_score: 742,
            history_months: 96,
            delinquencies_24m: 1,
            inquiries_6m: 2,
            revolving_utilisation_bps: 3_400,
            open_accounts: 5,
        }),
        loan: LoanTerms {
            amount: 450_000_000,
            tenure_months: 240,
            interest_rate_bps: 875,
            purpose: Purpose::Home,
            collateral_value: Some(600_000_000),
        },
        currency: "INR".into(),
    }
}

fn decision() -> Decision {
    Decision {
        application_id: "APP-000123".into(),
        customer_id: "CUST-42".into(),
        decided_at: Utc.with_ymd_and_hms(2026, 3, 14, 10, 30, 1).unwrap(),
        model_version: "pd-gbt-20260301-1".into(),
        feature_set_version: "fs-v1".into(),
        pd: 0.0412,
        score: 641,
        score_clamped: false,
        grade: "C".into(),
        decision: Outcome::Refer,
        reasons: vec![Reason {
            code: "R03".into(),
            feature: "foir".into(),
            value: Some(0.52),
            points: 18.4,
        }],
        rule_hits: vec!["KO-AGE".into()],
        emi: 3_976_552,
        foir: 0.462,
        ltv: None,
        challenger: Some(Challenger {
            model_version: "pd-rf-20260301-2".into(),
            pd: 0.05,
        }),
    }
}

fn events() -> Vec<LoanEvent> {
    let at = Utc.with_ymd_and_hms(2026, 4, 1, 18, 0, 0).unwrap();
    let action = LoanAction {
        loan_id: "L-1".into(),
        on: date(2027, 1, 31),
    };
    [
        LoanEventBody::LoanDisbursed(LoanDisbursed {
            loan_id: "L-1".into(),
            application_id: "APP-000123".into(),
            customer_id: "CUST-42".into(),
            principal: 450_000_000,
            interest_rate_bps: 875,
            tenure_months: 240,
            disbursed_on: date(2026, 3, 20),
            first_due_on: date(2026, 4, 20),
            collateral_value: Some(600_000_000),
        }),
        LoanEventBody::PaymentReceived(PaymentReceived {
            payment_id: "P-1".into(),
            loan_id: "L-1".into(),
            amount: 3_976_552,
            paid_on: date(2026, 4, 19),
        }),
        LoanEventBody::LoanWrittenOff(action.clone()),
        LoanEventBody::LoanMarkedLoss(action),
        LoanEventBody::BusinessDayClosed(BusinessDayClosed {
            business_date: date(2026, 4, 20),
        }),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, body)| LoanEvent {
        event_id: format!("E-{i}"),
        occurred_at: at,
        body,
    })
    .collect()
}

fn model_promoted() -> ModelPromoted {
    ModelPromoted {
        model_name: "pd".into(),
        model_version: "pd-gbt-20260301-1".into(),
        alias: ModelAlias::Champion,
        feature_set_version: "fs-v1".into(),
        artifact_uri: "file:///var/models/pd-gbt-20260301-1".into(),
        promoted_at: Utc.with_ymd_and_hms(2026, 3, 1, 2, 0, 0).unwrap(),
        promoted_by: "trainer".into(),
        previous_version: None,
    }
}

fn customer() -> CustomerRegistered {
    CustomerRegistered {
        customer_id: "CUST-42".into(),
        registered_at: Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap(),
        full_name: "A. Borrower".into(),
        email: "a@example.com".into(),
        phone: "+91-00000-00000".into(),
        date_of_birth: Some(date(1992, 2, 29)),
        age: None,
        employment_type: EmploymentType::Salaried,
        employer_name: Some("Acme".into()),
        years_employed: 3.0,
        monthly_income: 9_000_000,
        existing_emi: 0,
        dependents: 1,
        residence: Residence::Rent,
        region: "south".into(),
        bureau: None,
    }
}

fn customer_update() -> CustomerUpdated {
    CustomerUpdated {
        update_id: "U-1".into(),
        customer_id: "CUST-42".into(),
        updated_at: Utc.with_ymd_and_hms(2025, 6, 1, 9, 30, 0).unwrap(),
        updated_by: "3fa2c19e0b11".into(),
        reason: Some("moved house".into()),
        full_name: None,
        email: Some("new@example.com".into()),
        phone: None,
        employment_type: Some(EmploymentType::SelfEmployed),
        employer_name: None,
        years_employed: Some(0.5),
        monthly_income: Some(12_000_000),
        existing_emi: None,
        dependents: Some(2),
        residence: Some(Residence::Own),
        region: None,
    }
}

#[test]
fn a_customer_update_round_trips_and_is_told_apart_from_a_registration() {
    let bytes = encode(&customer_update()).unwrap();
    assert!(decode::<CustomerUpdated>(&bytes).unwrap() == customer_update());
    assert!(matches!(
        decode::<CustomerRegistered>(&bytes),
        Err(DecodeError::WrongType {
            found: "CustomerUpdated",
            ..
        })
    ));
    assert_eq!(
        schemas::codec::writer_version(&bytes).unwrap().family,
        "CustomerUpdated"
    );
    assert_eq!(
        customer_update().changed_fields(),
        vec![
            "email",
            "employment_type",
            "years_employed",
            "monthly_income",
            "dependents",
            "residence"
        ]
    );
    let printed = format!("{:?}", customer_update());
    assert!(!printed.contains("new@example.com"), "{printed}");
}

/// Every valid encoded message of every family, for the malformed-input tests.
fn valid_messages() -> Vec<Vec<u8>> {
    let mut all = vec![
        encode(&application()).unwrap(),
        encode(&decision()).unwrap(),
        encode(&model_promoted()).unwrap(),
        encode(&customer()).unwrap(),
        encode(&customer_update()).unwrap(),
    ];
    let mut thin = application();
    thin.bureau = None;
    thin.loan.collateral_value = None;
    all.push(encode(&thin).unwrap());
    all.extend(events().iter().map(|e| encode(e).unwrap()));
    all
}

#[test]
fn every_message_type_survives_a_round_trip() {
    assert_eq!(
        decode::<LoanApplication>(&encode(&application()).unwrap()).unwrap(),
        application()
    );
    assert_eq!(
        decode::<Decision>(&encode(&decision()).unwrap()).unwrap(),
        decision()
    );
    assert_eq!(
        decode::<ModelPromoted>(&encode(&model_promoted()).unwrap()).unwrap(),
        model_promoted()
    );
    assert!(decode::<CustomerRegistered>(&encode(&customer()).unwrap()).unwrap() == customer());
    for event in events() {
        assert_eq!(
            decode::<LoanEvent>(&encode(&event).unwrap()).unwrap(),
            event
        );
    }
}

#[test]
fn written_off_and_marked_loss_stay_distinct_although_they_share_a_shape() {
    let all = events();
    let off = decode::<LoanEvent>(&encode(&all[2]).unwrap()).unwrap();
    let loss = decode::<LoanEvent>(&encode(&all[3]).unwrap()).unwrap();
    assert!(matches!(off.body, LoanEventBody::LoanWrittenOff(_)));
    assert!(matches!(loss.body, LoanEventBody::LoanMarkedLoss(_)));
}

#[test]
fn a_message_starts_with_the_magic_and_the_writer_fingerprint() {
    let bytes = encode(&application()).unwrap();
    assert_eq!(bytes[..2], MAGIC);
    let latest = Registry::global().latest("LoanApplication").unwrap();
    assert_eq!(bytes[2..HEADER_LEN], latest.fingerprint);
    assert_eq!(writer_version(&bytes).unwrap().version, latest.version);
}

#[test]
fn each_malformed_header_gets_its_own_typed_error() {
    assert_eq!(
        decode::<LoanApplication>(&[0xC3]),
        Err(DecodeError::TooShort { len: 1 })
    );
    let mut bytes = encode(&application()).unwrap();
    bytes[0] = b'{';
    assert!(matches!(
        decode::<LoanApplication>(&bytes),
        Err(DecodeError::BadMagic { .. })
    ));
    let mut bytes = encode(&application()).unwrap();
    bytes[5] ^= 0xFF;
    assert!(matches!(
        decode::<LoanApplication>(&bytes),
        Err(DecodeError::UnknownFingerprint { .. })
    ));
    let bytes = encode(&decision()).unwrap();
    assert!(matches!(
        decode::<LoanApplication>(&bytes),
        Err(DecodeError::WrongType { .. })
    ));
    let mut bytes = encode(&application()).unwrap();
    bytes.push(0);
    assert!(matches!(
        decode::<LoanApplication>(&bytes),
        Err(DecodeError::TrailingBytes { count: 1, .. })
    ));
}

#[test]
fn every_truncation_of_every_valid_message_is_an_error() {
    for bytes in valid_messages() {
        for len in 0..bytes.len() {
            let cut = &bytes[..len];
            let results = [
                decode::<LoanApplication>(cut).err(),
                decode::<Decision>(cut).err(),
                decode::<LoanEvent>(cut).err(),
                decode::<ModelPromoted>(cut).err(),
                decode::<CustomerRegistered>(cut).err(),
            ];
            assert!(
                results.iter().all(Option::is_some),
                "prefix of {len} of {} bytes decoded: {results:?} {:02x?}",
                bytes.len(),
                &bytes[len..]
            );
        }
    }
}

#[test]
fn a_hundred_thousand_random_and_truncated_inputs_return_errors_without_panicking() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let valid = valid_messages();
    for i in 0..100_000 {
        let input: Vec<u8> = match i % 4 {
            // Pure noise of any length.
            0 => (0..rng.gen_range(0..64)).map(|_| rng.gen()).collect(),
            // A valid header followed by noise: exercises the body decoder on garbage.
            1 => {
                let base = &valid[rng.gen_range(0..valid.len())];
                let mut v = base[..HEADER_LEN].to_vec();
                v.extend((0..rng.gen_range(0..48)).map(|_| rng.gen::<u8>()));
                v
            }
            // A valid message, truncated.
            2 => {
                let base = &valid[rng.gen_range(0..valid.len())];
                base[..rng.gen_range(0..base.len())].to_vec()
            }
            // A valid message with body bytes flipped, then truncated to a random length.
            _ => {
                let base = &valid[rng.gen_range(0..valid.len())];
                let mut v = base.clone();
                for _ in 0..rng.gen_range(1..4) {
                    let at = rng.gen_range(HEADER_LEN..v.len());
                    v[at] = rng.gen();
                }
                let keep = rng.gen_range(HEADER_LEN..v.len());
                v.truncate(keep);
                v
            }
        };
        let results = [
            decode::<LoanApplication>(&input).is_err(),
            decode::<Decision>(&input).is_err(),
            decode::<LoanEvent>(&input).is_err(),
            decode::<ModelPromoted>(&input).is_err(),
            decode::<CustomerRegistered>(&input).is_err(),
            decode::<CustomerUpdated>(&input).is_err(),
        ];
        match i % 4 {
            // Noise and truncations are never a whole message: each must be an error.
            0 | 2 => assert!(
                results.iter().all(|e| *e),
                "input {i} decoded: {input:02x?}"
            ),
            // A header with noise, or a mutated body, can by chance be a valid message of its
            // type; it must then be valid for at most that one type, and nothing may panic.
            _ => assert!(results.iter().filter(|e| !**e).count() <= 1, "input {i}"),
        }
    }
}

#[test]
fn every_schema_version_reads_every_earlier_version() {
    let registry = Registry::global();
    for family in FAMILIES {
        let versions = registry.versions(family.name);
        assert_eq!(versions.len(), family.versions.len());
        for (i, reader) in versions.iter().enumerate() {
            for writer in &versions[..=i] {
                SchemaCompatibility::can_read(&writer.schema, &reader.schema).unwrap_or_else(|e| {
                    panic!(
                        "{} v{} cannot read v{}: {e}",
                        family.name, reader.version, writer.version
                    )
                });
            }
        }
    }
}

#[test]
fn a_message_written_with_any_known_version_decodes_into_the_current_type() {
    let registry = Registry::global();
    for version in registry.versions("LoanApplication") {
        let bytes = encode_with(&application(), version).unwrap();
        assert_eq!(decode::<LoanApplication>(&bytes).unwrap(), application());
    }
    for version in registry.versions("LoanEvent") {
        for event in events() {
            let bytes = encode_with(&event, version).unwrap();
            assert_eq!(decode::<LoanEvent>(&bytes).unwrap(), event);
        }
    }
    for version in registry.versions("Decision") {
        let bytes = encode_with(&decision(), version).unwrap();
        assert_eq!(decode::<Decision>(&bytes).unwrap(), decision());
    }
}

#[test]
fn the_customer_debug_output_hides_personal_data() {
    let shown = format!("{:?}", customer());
    assert!(!shown.contains("Borrower"));
    assert!(!shown.contains("example.com"));
    assert!(!shown.contains("+91"));
}

#[test]
fn the_compatibility_check_rejects_a_new_field_without_a_default() {
    use schemas::registry::Family;
    let v1 = r#"{"type":"record","name":"T","fields":[{"name":"a","type":"int"}]}"#;
    let good = r#"{"type":"record","name":"T","fields":[{"name":"a","type":"int"},
        {"name":"b","type":"string","default":"x"}]}"#;
    let bad = r#"{"type":"record","name":"T","fields":[{"name":"a","type":"int"},
        {"name":"b","type":"string"}]}"#;
    for (v2, compatible) in [(good, true), (bad, false)] {
        let versions: &'static [&'static str] = Box::leak(Box::new([v1, v2]));
        let registry = Registry::build(&[Family {
            name: "T",
            versions,
        }])
        .unwrap();
        let all = registry.versions("T");
        let result = SchemaCompatibility::can_read(&all[0].schema, &all[1].schema);
        assert_eq!(result.is_ok(), compatible);
    }
}
