//! Nobody rewrites history through the topics: customers, applications and decisions are
//! append-only. Re-publishing whole topics changes nothing; a record with a stored id and other
//! contents is dead-lettered as a conflict, and every stored row stays as it was.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ingest::generator::sink::MemorySink;
use ingest::generator::GeneratorSettings;
use portfolio_aggregator::apply::{apply_batch, ApplyContext, BatchOutcome};
use portfolio_aggregator::message::{Incoming, Payload, Source};
use risk_core::settings::DomainSettings;
use runtime::postgres::{connect, ScratchDatabase};
use schemas::{Outcome, Purpose};
use sqlx::PgPool;

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

async fn apply(pool: &PgPool, ctx: &ApplyContext, batch: &[Incoming]) -> BatchOutcome {
    let mut tx = pool.begin().await.unwrap();
    let out = apply_batch(&mut tx, ctx, batch).await.unwrap();
    tx.commit().await.unwrap();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn republished_records_change_nothing_and_conflicting_ones_are_dead_lettered() {
    let settings = GeneratorSettings {
        seed: 5,
        applications: 300,
        months: 2,
        performance_months: 0,
        ..GeneratorSettings::default()
    };
    let sink = MemorySink::generated(&settings, &DomainSettings::default()).unwrap();
    let db = ScratchDatabase::create().await.unwrap();
    let pool = connect(&db.url, 2).await.unwrap();
    portfolio_aggregator::db::migrate(&pool).await.unwrap();
    let ctx = ApplyContext {
        group: "append-only".into(),
        event_partitions: 1,
        domain: DomainSettings::default(),
    };
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
