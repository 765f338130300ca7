//! Property: on any generated book, applied in any batching, the portfolio figures reconcile
//! with the loans: the summary's outstanding is the sum over loans, its NPA amount the sum over
//! NPA loans, provisions and ECL the sums of the loans' own; every breakdown (class, stage, DPD
//! bucket, purpose, status, grade) adds up to the whole; concentration shares add up to one
//! with the Herfindahl index their sum of squares; and a summary asked for a past business
//! date is the one that day closed with.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use book::message::{Incoming, Payload, Source};
use book::queries::{self, Group, PortfolioSummary};
use book::write::ApplyContext;
use chrono::NaiveDate;
use common::apply;
use ingest::generator::sink::MemorySink;
use ingest::generator::GeneratorSettings;
use proptest::prelude::*;
use risk_core::settings::DomainSettings;
use runtime::postgres::connect;
use schemas::LoanEventBody;
use tests::scratch::ScratchDatabase;

#[derive(Debug, Clone)]
struct Case {
    seed: u64,
    applications: u64,
    months: u32,
    performance_months: u32,
    default_rate: f64,
    batch: usize,
}

fn cases() -> impl Strategy<Value = Case> {
    (
        any::<u64>(),
        150u64..900,
        2u32..7,
        0u32..10,
        0.02f64..0.30,
        prop::sample::select(vec![17usize, 400, 5_000]),
    )
        .prop_map(
            |(seed, applications, months, performance_months, default_rate, batch)| Case {
                seed,
                applications,
                months,
                performance_months,
                default_rate,
                batch,
            },
        )
}

fn sum(groups: &[Group], field: impl Fn(&Group) -> i64) -> i64 {
    groups.iter().map(field).sum()
}

async fn check(case: Case) {
    let settings = GeneratorSettings {
        seed: case.seed,
        applications: case.applications,
        months: case.months,
        performance_months: case.performance_months,
        target_default_rate: case.default_rate,
        ..GeneratorSettings::default()
    };
    let sink = MemorySink::generated(&settings, &DomainSettings::default()).unwrap();
    let db = ScratchDatabase::create().await.unwrap();
    let pool = connect(&db.url, 2).await.unwrap();
    book::db::migrate(&pool).await.unwrap();
    let ctx = ApplyContext {
        group: "reconcile".into(),
        event_partitions: 1,
        domain: DomainSettings::default(),
    };

    let mut records = Vec::new();
    let mut offset = 0;
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
    for chunk in records.chunks(case.batch) {
        let out = apply(&pool, &ctx, chunk).await;
        assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    }

    // Events in batches of the case's size; a day-end ends its batch (as the service does).
    let mut closed: Vec<(NaiveDate, PortfolioSummary)> = Vec::new();
    let mut batch = Vec::new();
    for (i, e) in sink.events.iter().enumerate() {
        batch.push(Incoming::decoded(
            Source::Events,
            i as i64,
            Payload::Event(Box::new(e.clone())),
        ));
        let day_end = match &e.body {
            LoanEventBody::BusinessDayClosed(b) => Some(b.business_date),
            _ => None,
        };
        if day_end.is_some() || batch.len() >= case.batch {
            let out = apply(&pool, &ctx, &batch).await;
            assert!(out.rejected.is_empty(), "{:?}", out.rejected);
            batch.clear();
        }
        if let Some(date) = day_end {
            closed.push((date, queries::summary(&pool, None).await.unwrap()));
        }
    }
    let out = apply(&pool, &ctx, &batch).await;
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    let Some((last_day, _)) = closed.last().cloned() else {
        return;
    };

    let s = queries::summary(&pool, None).await.unwrap();
    assert_eq!(s.business_date, last_day);
    type Totals = (i64, i64, i64, i64, i64, i64, i64, i64);
    let (loans, active, outstanding, npa, npa_loans, provisions, ecl, disbursed): Totals =
        sqlx::query_as(
            "SELECT count(*)::int8, count(*) FILTER (WHERE state = 'ACTIVE')::int8, \
               coalesce(sum(outstanding_principal), 0)::int8, \
               coalesce(sum(outstanding_principal) FILTER (WHERE state = 'ACTIVE' AND \
                 asset_class IN ('SUBSTANDARD', 'D1', 'D2', 'D3', 'LOSS')), 0)::int8, \
               count(*) FILTER (WHERE state = 'ACTIVE' AND \
                 asset_class IN ('SUBSTANDARD', 'D1', 'D2', 'D3', 'LOSS'))::int8, \
               coalesce(sum(provision), 0)::int8, coalesce(sum(ecl), 0)::int8, \
               (SELECT coalesce(sum(principal), 0)::int8 FROM loans) \
             FROM loan_status",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(s.total_loans, loans);
    assert_eq!(s.active_loans, active);
    assert_eq!(s.outstanding, outstanding, "outstanding = Σ loans");
    assert_eq!(s.npa_amount, npa, "NPA amount = Σ NPA loans");
    assert_eq!(s.npa_loans, npa_loans);
    assert_eq!(s.provisions, provisions);
    assert_eq!(s.ecl, ecl);
    assert_eq!(s.total_disbursed, disbursed);
    if outstanding > 0 {
        assert!((s.npa_ratio - npa as f64 / outstanding as f64).abs() < 1e-9);
    }

    let n = queries::npa_analysis(&pool, None).await.unwrap();
    assert_eq!(n.gross_npa, npa);
    for groups in [&n.by_class, &n.by_stage, &n.by_dpd_bucket] {
        assert_eq!(sum(groups, |g| g.outstanding), outstanding);
        assert_eq!(sum(groups, |g| g.provisions), provisions);
        assert_eq!(sum(groups, |g| g.ecl), ecl);
    }
    let d = queries::loan_distribution(&pool, None).await.unwrap();
    for groups in [&d.by_purpose, &d.by_status, &d.by_grade] {
        assert_eq!(sum(groups, |g| g.loans), loans);
        assert_eq!(sum(groups, |g| g.outstanding), outstanding);
    }
    let r = queries::risk_concentration(&pool, None).await.unwrap();
    for c in [&r.by_purpose, &r.by_region, &r.by_grade] {
        assert_eq!(sum(&c.groups, |g| g.outstanding), outstanding);
        if outstanding > 0 {
            let shares: f64 = c.groups.iter().map(|g| g.share).sum();
            assert!((shares - 1.0).abs() < 1e-9, "shares add up to {shares}");
            let hhi: f64 = c.groups.iter().map(|g| g.share * g.share).sum();
            assert!((c.herfindahl - hhi).abs() < 1e-9);
        }
    }

    // As of any closed day: the summary that day closed with.
    for (date, then) in &closed {
        let again = queries::summary(&pool, Some(*date)).await.unwrap();
        assert_eq!(format!("{again:?}"), format!("{then:?}"), "as of {date}");
    }
    pool.close().await;
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 6,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn portfolio_figures_reconcile_with_the_loans_on_generated_books(case in cases()) {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(check(case));
    }
}
