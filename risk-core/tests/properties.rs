//! Property tests of the domain invariants.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::NaiveDate;
use proptest::prelude::*;
use risk_core::dpd::{delinquency, Payment};
use risk_core::irac::{AssetClass, ClassState, IracSettings};
use risk_core::money::RateBps;
use risk_core::ratios::foir;
use risk_core::schedule::{emi, schedule};
use risk_core::scoring::ScoreScaling;

fn start() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 15).unwrap()
}

proptest! {
    #[test]
    fn a_schedule_repays_exactly_the_principal(
        principal in 1i64..10_000_000_000,
        bps in 0i32..4_000,
        months in 1u32..=360,
    ) {
        let s = schedule(principal, RateBps::parse(bps).unwrap(), months, start());
        prop_assert_eq!(s.iter().map(|i| i.principal).sum::<i64>(), principal);
        prop_assert!(s.iter().all(|i| i.principal >= 0 && i.interest >= 0));
        prop_assert_eq!(s.last().map(|i| i.closing_balance), Some(0));
    }

    #[test]
    fn emi_times_tenure_covers_the_principal(
        principal in 1i64..10_000_000_000,
        bps in 0i32..4_000,
        months in 1u32..=360,
    ) {
        let e = emi(principal, RateBps::parse(bps).unwrap(), months);
        prop_assert!(i128::from(e) * i128::from(months) >= i128::from(principal));
    }

    #[test]
    fn foir_never_falls_as_obligations_rise(
        existing in 0i64..100_000_000,
        extra in 0i64..100_000_000,
        new_emi in 0i64..100_000_000,
        income in 1i64..1_000_000_000,
    ) {
        let lower = foir(existing, new_emi, income).unwrap();
        let higher = foir(existing + extra, new_emi, income).unwrap();
        prop_assert!(higher >= lower);
    }

    #[test]
    fn dpd_is_never_negative_and_zero_before_the_first_due_date(
        months in 1u32..60,
        paid in proptest::collection::vec((0i64..5_000_000, 0i64..900), 0..12),
        day in 0i64..1_200,
    ) {
        let s = schedule(10_000_000, RateBps::parse(1400).unwrap(), months, start());
        let payments: Vec<Payment> = paid
            .iter()
            .map(|(a, off)| Payment { amount: *a, paid_on: start() + chrono::Duration::days(*off) })
            .collect();
        let as_of = start() - chrono::Duration::days(30) + chrono::Duration::days(day);
        let q = delinquency(&s, RateBps::parse(1400).unwrap(), start() - chrono::Duration::days(30), &payments, as_of);
        if as_of < start() {
            prop_assert_eq!(q.dpd, 0);
        }
        prop_assert!(q.arrears >= 0);
        prop_assert_eq!(q.dpd == 0, q.overdue_instalments == 0);
    }

    #[test]
    fn no_loan_is_npa_before_its_dpd_exceeds_ninety(
        dpds in proptest::collection::vec(0u32..200, 1..150),
    ) {
        // A loan that never went past 90 DPD must never be classified NPA.
        let irac = IracSettings::default();
        let mut state = ClassState::STANDARD;
        let mut max_dpd = 0;
        let mut day = start();
        for dpd in dpds {
            max_dpd = max_dpd.max(dpd);
            state = irac.classify(state, dpd, if dpd > 0 { 1 } else { 0 }, day);
            prop_assert_eq!(state.class.is_npa(), max_dpd > 90 && state.npa_since.is_some());
            if max_dpd <= 90 {
                prop_assert!(!state.class.is_npa());
            }
            day = day.succ_opt().unwrap();
        }
    }

    #[test]
    fn a_partial_payment_never_upgrades_an_npa(
        dpd in 0u32..400,
        arrears_left in 1i64..10_000_000,
        months_npa in 0u32..80,
    ) {
        let irac = IracSettings::default();
        let since = start();
        let npa = ClassState { class: AssetClass::SubStandard, npa_since: Some(since) };
        let on = since.checked_add_months(chrono::Months::new(months_npa)).unwrap();
        let after = irac.classify(npa, dpd, arrears_left, on);
        prop_assert!(after.class.is_npa());
        prop_assert_eq!(after.npa_since, Some(since));
    }

    #[test]
    fn the_base_odds_score_exactly_the_base_score(
        base in 300.0f64..800.0,
        odds in 1.5f64..200.0,
        pdo in 10.0f64..100.0,
    ) {
        let s = ScoreScaling { base_score: base, base_odds: odds, pdo, ..ScoreScaling::default() };
        prop_assert!((s.raw_from_odds(odds) - base).abs() < 1e-9);
        prop_assert!((s.raw(1.0 / (1.0 + odds)) - base).abs() < 1e-6);
    }

    #[test]
    fn doubling_the_odds_adds_exactly_pdo_points(
        base in 300.0f64..800.0,
        odds in 1.5f64..200.0,
        pdo in 10.0f64..100.0,
    ) {
        let s = ScoreScaling { base_score: base, base_odds: odds, pdo, ..ScoreScaling::default() };
        prop_assert!((s.raw_from_odds(2.0 * odds) - (base + pdo)).abs() < 1e-9);
    }
}

#[test]
fn with_the_default_scaling_thirty_to_one_scores_600_and_sixty_to_one_scores_640() {
    let s = ScoreScaling::default();
    assert_eq!(s.score(1.0 / 31.0).value, 600);
    assert_eq!(s.score(1.0 / 61.0).value, 640);
}
