//! DOMAIN.md's worked example (RBI's own), played day by day through the DPD engine and IRAC.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::NaiveDate;
use risk_core::dpd::{delinquency, Payment};
use risk_core::irac::{AssetClass, ClassState, IracSettings};
use risk_core::money::RateBps;
use risk_core::schedule::schedule;

fn d(m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, m, day).unwrap()
}

fn rate() -> RateBps {
    RateBps::parse(1200).unwrap()
}

/// Run day-ends from `from` to `to` inclusive and return each day's state.
fn day_ends(
    payments: &[Payment],
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<(NaiveDate, u32, ClassState)> {
    let irac = IracSettings::default();
    let s = schedule(100_000_000, RateBps::parse(1200).unwrap(), 24, d(3, 31));
    let mut state = ClassState::STANDARD;
    let mut out = Vec::new();
    for day in from.iter_days().take_while(|x| *x <= to) {
        let q = delinquency(&s, rate(), d(2, 28), payments, day);
        state = irac.classify(state, q.dpd, q.arrears, day);
        out.push((day, q.dpd, state));
    }
    out
}

fn on(days: &[(NaiveDate, u32, ClassState)], date: NaiveDate) -> (u32, ClassState) {
    let (_, dpd, state) = days.iter().find(|(x, _, _)| *x == date).unwrap();
    (*dpd, *state)
}

#[test]
fn an_instalment_due_31_march_left_unpaid_is_npa_on_29_june() {
    let days = day_ends(&[], d(3, 1), d(7, 31));
    assert_eq!(on(&days, d(3, 30)), (0, ClassState::STANDARD));
    assert_eq!(on(&days, d(3, 31)).0, 1);
    assert_eq!(on(&days, d(3, 31)).1.class, AssetClass::Sma0);
    assert_eq!(on(&days, d(4, 29)).1.class, AssetClass::Sma0);
    assert_eq!(on(&days, d(4, 30)).0, 31);
    assert_eq!(on(&days, d(4, 30)).1.class, AssetClass::Sma1);
    assert_eq!(on(&days, d(5, 29)).1.class, AssetClass::Sma1);
    assert_eq!(on(&days, d(5, 30)).0, 61);
    assert_eq!(on(&days, d(5, 30)).1.class, AssetClass::Sma2);
    assert_eq!(on(&days, d(6, 28)).1.class, AssetClass::Sma2);
    let (dpd, npa) = on(&days, d(6, 29));
    assert_eq!(dpd, 91);
    assert_eq!(npa.class, AssetClass::SubStandard);
    assert_eq!(
        npa.npa_since,
        Some(d(6, 29)),
        "the NPA date is the day DPD first exceeds 90"
    );
    // Once NPA it stays NPA, dated 29 June, while arrears remain.
    assert_eq!(on(&days, d(7, 31)).1.npa_since, Some(d(6, 29)));
}

#[test]
fn clearing_only_the_oldest_instalment_does_not_upgrade_the_npa() {
    let s = schedule(100_000_000, RateBps::parse(1200).unwrap(), 24, d(3, 31));
    let partial = [Payment {
        amount: s[0].amount(),
        paid_on: d(7, 1),
    }];
    let days = day_ends(&partial, d(3, 1), d(7, 2));
    let (dpd, state) = on(&days, d(7, 2));
    assert!(dpd < 90, "DPD fell to {dpd}");
    assert!(state.class.is_npa());
}

#[test]
fn paying_every_arrear_upgrades_the_npa_at_that_day_end() {
    let s = schedule(100_000_000, RateBps::parse(1200).unwrap(), 24, d(3, 31));
    let arrears: i64 = s
        .iter()
        .filter(|i| i.due_on <= d(7, 1))
        .map(|i| i.amount())
        .sum();
    let full = [Payment {
        amount: arrears,
        paid_on: d(7, 1),
    }];
    let days = day_ends(&full, d(3, 1), d(7, 1));
    assert_eq!(on(&days, d(6, 30)).1.class, AssetClass::SubStandard);
    assert_eq!(on(&days, d(7, 1)), (0, ClassState::STANDARD));
}
