//! Nobody rewrites history through the topics: customers, applications and decisions are
//! append-only. Re-publishing whole topics changes nothing; a record with a stored id and other
//! contents is dead-lettered as a conflict, and every stored row stays as it was.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use book::message::{Incoming, Payload, Source};
use book::write::ApplyContext;
use chrono::TimeZone;
use common::apply;
use ingest::generator::sink::MemorySink;
use ingest::generator::GeneratorSettings;
use risk_core::settings::DomainSettings;
use runtime::postgres::connect;
use schemas::{CustomerUpdated, Outcome, Purpose};
use sqlx::PgPool;
use tests::scratch::ScratchDatabase;

/// A checksum of every row of the tables the records write.
async fn checksums(pool: &PgPool) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for table in [
        "customers",
        "applications",
        "decisions",
        "decision_reasons",
        "customer_risk",
    ] {
        let sum: String = sqlx::query_scalar(&format!(
            "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t"
        ))
        .fetch_one(pool)
        .await
        .unwrap();
        out.push((table.to_string(), sum));
    }
    out
}

fn records(sink: &MemorySink, offset: &mut i64) -> Vec<Incoming> {
    let mut out = Vec::new();
    let mut push = |source, payload| {
        *offset += 1;
        out.push(Incoming::decoded(source, *offset, payload));
    };
    for c in &sink.customers {
        push(Source::Customers, Payload::Customer(Box::new(c.clone())));
    }
    for a in &sink.applications {
        push(
            Source::Applications,
            Payload::Application(Box::new(a.clone())),
        );
    }
    for d in &sink.decisions {
        push(Source::Decisions, Payload::Decision(Box::new(d.clone())));
    }
    out
}

/// A generated history, a migrated scratch book, and the aggregator's role to write it with.
struct Setup {
    sink: MemorySink,
    _db: ScratchDatabase,
    owner: PgPool,
    pool: PgPool,
    ctx: ApplyContext,
}

async fn setup(seed: u64, applications: u64, months: u32, group: &str) -> Setup {
    let settings = GeneratorSettings {
        seed,
        applications,
        months,
        performance_months: 0,
        ..GeneratorSettings::default()
    };
    let sink = MemorySink::generated(&settings, &DomainSettings::default()).unwrap();
    let db = ScratchDatabase::create().await.unwrap();
    let owner = connect(&db.url, 2).await.unwrap();
    book::db::migrate(&owner).await.unwrap();
    // The aggregator writes with its stage's role only.
    let pool = connect(&db.login_as("credit_risk_aggregator").await.unwrap(), 2)
        .await
        .unwrap();
    let ctx = ApplyContext {
        group: group.into(),
        event_partitions: 1,
        domain: DomainSettings::default(),
    };
    Setup {
        sink,
        _db: db,
        owner,
        pool,
        ctx,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn republished_records_change_nothing_and_conflicting_ones_are_dead_lettered() {
    let Setup {
        sink,
        _db,
        owner: _,
        pool,
        ctx,
    } = setup(5, 300, 2, "append-only").await;
    let mut offset = 0;
    let first = records(&sink, &mut offset);
    for chunk in first.chunks(250) {
        assert!(apply(&pool, &ctx, chunk).await.rejected.is_empty());
    }
    let before = checksums(&pool).await;

    // The whole topics published again (new offsets): identical records are no-ops, also
    // when a batch holds the same record twice.
    let again = records(&sink, &mut offset);
    let mut doubled = again.clone();
    doubled.extend(records(&sink, &mut offset));
    for chunk in doubled.chunks(400) {
        let out = apply(&pool, &ctx, chunk).await;
        assert!(out.rejected.is_empty(), "{:?}", out.rejected);
        assert_eq!(out.applied, chunk.len());
    }
    assert_eq!(checksums(&pool).await, before);

    // A disbursed application turned into a 100-paise gold loan of another customer; a
    // declined application's decision flipped to approved; a customer re-registered with
    // another e-mail address; and the same in one batch after the genuine record.
    let mut forged_app = sink.applications[3].clone();
    forged_app.customer_id = sink.customers[7].customer_id.clone();
    forged_app.loan.amount = 100;
    forged_app.loan.purpose = Purpose::Gold;
    let declined = sink
        .decisions
        .iter()
        .find(|d| d.decision == Outcome::Decline)
        .expect("a declined application");
    let mut flipped = declined.clone();
    flipped.decision = Outcome::Approve;
    flipped.pd = 0.01;
    let mut customer = sink.customers[2].clone();
    customer.email = "someone.else@example.com".into();
    let forged = [
        Payload::Application(Box::new(forged_app.clone())),
        Payload::Decision(Box::new(flipped.clone())),
        Payload::Customer(Box::new(customer.clone())),
    ];
    let sources = [Source::Applications, Source::Decisions, Source::Customers];
    let batch: Vec<Incoming> = forged
        .iter()
        .zip(sources)
        .map(|(p, s)| {
            offset += 1;
            Incoming::decoded(s, offset, p.clone())
        })
        .collect();
    let out = apply(&pool, &ctx, &batch).await;
    let mut refused: Vec<(usize, &str)> = out.rejected.iter().map(|(i, r)| (*i, r.class)).collect();
    refused.sort_unstable();
    assert_eq!(
        refused,
        vec![(0, "conflict"), (1, "conflict"), (2, "conflict")]
    );
    assert!(out.rejected[0]
        .1
        .message
        .contains("a correction is a new record"));
    assert_eq!(out.applied, 0);
    assert_eq!(checksums(&pool).await, before);

    // A new application and its forged twin in one batch: the first stands.
    let mut fresh = sink.applications[0].clone();
    fresh.application_id = "APP-NEW-1".into();
    let mut twin = fresh.clone();
    twin.loan.amount += 1;
    offset += 1;
    let a = Incoming::decoded(
        Source::Applications,
        offset,
        Payload::Application(Box::new(fresh.clone())),
    );
    offset += 1;
    let b = Incoming::decoded(
        Source::Applications,
        offset,
        Payload::Application(Box::new(twin)),
    );
    let out = apply(&pool, &ctx, &[a, b]).await;
    let refused: Vec<(usize, &str)> = out.rejected.iter().map(|(i, r)| (*i, r.class)).collect();
    assert_eq!(refused, vec![(1, "conflict")]);
    let amount: i64 =
        sqlx::query_scalar("SELECT amount FROM applications WHERE application_id = 'APP-NEW-1'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(amount, fresh.loan.amount);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_change_keeps_the_record_before_it_and_names_who_made_it() {
    let Setup {
        sink,
        _db,
        owner,
        pool,
        ctx,
    } = setup(6, 40, 1, "customer-changes").await;
    let mut offset = 0;
    assert!(apply(&pool, &ctx, &records(&sink, &mut offset))
        .await
        .rejected
        .is_empty());
    let registered = &sink.customers[2];
    let id = registered.customer_id.clone();

    // On 1 June 2026 an originator's key records a new e-mail address and income.
    let change = CustomerUpdated {
        update_id: "U-2026-06-01-1".into(),
        customer_id: id.clone(),
        updated_at: chrono::Utc.with_ymd_and_hms(2026, 6, 1, 9, 30, 0).unwrap(),
        updated_by: "3fa2c19e0b11".into(),
        reason: Some("customer moved employer".into()),
        full_name: None,
        email: Some("new.address@example.com".into()),
        phone: None,
        employment_type: None,
        employer_name: None,
        years_employed: None,
        monthly_income: Some(21_000_000),
        existing_emi: None,
        dependents: None,
        residence: None,
        region: None,
    };
    // The change, the same change again (a retry), the same id with other contents, and a
    // change to a customer never registered.
    let mut forged = change.clone();
    forged.monthly_income = Some(99_900_000);
    let mut stranger = change.clone();
    stranger.update_id = "U-2".into();
    stranger.customer_id = "NOBODY".into();
    let batch: Vec<Incoming> = [change.clone(), change.clone(), forged, stranger]
        .into_iter()
        .map(|u| {
            offset += 1;
            Incoming::decoded(
                Source::Customers,
                offset,
                Payload::CustomerUpdate(Box::new(u)),
            )
        })
        .collect();
    let out = apply(&pool, &ctx, &batch).await;
    let refused: Vec<(usize, &str)> = out.rejected.iter().map(|(i, r)| (*i, r.class)).collect();
    assert_eq!(refused, vec![(2, "conflict"), (3, "unknown_customer")]);

    let (email, income): (String, i64) =
        sqlx::query_as("SELECT email, monthly_income FROM customers WHERE customer_id = $1")
            .bind(&id)
            .fetch_one(&owner)
            .await
            .unwrap();
    assert_eq!(
        (email.as_str(), income),
        ("new.address@example.com", 21_000_000)
    );
    // History: version 2, with the whole record as registered.
    let (version, by, previous): (i32, String, serde_json::Value) = sqlx::query_as(
        "SELECT version, changed_by, previous FROM customer_changes WHERE customer_id = $1",
    )
    .bind(&id)
    .fetch_one(&owner)
    .await
    .unwrap();
    assert_eq!((version, by.as_str()), (2, "3fa2c19e0b11"));
    assert_eq!(previous["email"], serde_json::json!(registered.email));
    assert_eq!(previous["monthly_income"], registered.monthly_income);
    // The audit row names who and which fields, not the values.
    let (actor, details): (String, serde_json::Value) = sqlx::query_as(
        "SELECT actor, details FROM audit_log WHERE action = 'customer.updated' AND subject = $1",
    )
    .bind(&id)
    .fetch_one(&owner)
    .await
    .unwrap();
    assert_eq!(actor, "3fa2c19e0b11");
    assert_eq!(
        details["fields"],
        serde_json::json!(["email", "monthly_income"])
    );
    assert!(!details.to_string().contains("new.address"));

    // Replaying the whole customers topic (registrations and the change) changes nothing: a
    // registration is compared with the record as it was registered.
    let after = checksums(&owner).await;
    let mut replay = records(&sink, &mut offset);
    offset += 1;
    replay.push(Incoming::decoded(
        Source::Customers,
        offset,
        Payload::CustomerUpdate(Box::new(change)),
    ));
    let out = apply(&pool, &ctx, &replay).await;
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    assert_eq!(checksums(&owner).await, after);
    let changes: i64 = sqlx::query_scalar("SELECT count(*) FROM customer_changes")
        .fetch_one(&owner)
        .await
        .unwrap();
    assert_eq!(changes, 1);
}

#[test]
fn a_customer_change_on_the_customers_topic_is_decoded_as_one() {
    let change = CustomerUpdated {
        update_id: "U-1".into(),
        customer_id: "C-1".into(),
        updated_at: chrono::Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap(),
        updated_by: "ops".into(),
        reason: None,
        full_name: None,
        email: None,
        phone: Some("+91 98000 11111".into()),
        employment_type: None,
        employer_name: None,
        years_employed: None,
        monthly_income: None,
        existing_emi: None,
        dependents: None,
        residence: None,
        region: None,
    };
    let bytes = schemas::encode(&change).unwrap();
    assert!(matches!(
        book::message::parse(Source::Customers, &bytes),
        Ok(Payload::CustomerUpdate(u)) if *u == change
    ));
    let mut empty = change.clone();
    empty.phone = None;
    let refused = book::message::parse(Source::Customers, &schemas::encode(&empty).unwrap())
        .err()
        .unwrap();
    assert!(
        refused.message.contains("at least one field"),
        "{refused:?}"
    );
}
