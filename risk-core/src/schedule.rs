//! EMI and the amortisation schedule.

use chrono::{Datelike, Months, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::money::{div_round, Minor, RateBps};

/// Equated monthly instalment for `principal` at `rate` over `months`.
///
/// `EMI = P·r·(1+r)^n / ((1+r)^n − 1)` with `r = annual / 12`; `r = 0` gives `P/n`. The result is
/// rounded *up* to the minor unit so that `EMI·n ≥ P` always holds; the last instalment absorbs
/// the difference. Returns 0 for a non-positive principal or tenure.
pub fn emi(principal: Minor, rate: RateBps, months: u32) -> Minor {
    if principal <= 0 || months == 0 {
        return 0;
    }
    let n = i32::try_from(months).unwrap_or(i32::MAX);
    let r = rate.monthly_fraction();
    let exact = if rate.bps() == 0 {
        principal as f64 / f64::from(n)
    } else {
        let growth = (1.0 + r).powi(n);
        principal as f64 * r * growth / (growth - 1.0)
    };
    // Guard against the float landing a hair above an exact integer (e.g. 100/4 = 25.000000001).
    let rounded = exact.round();
    if (exact - rounded).abs() < 1e-6 {
        rounded as Minor
    } else {
        exact.ceil() as Minor
    }
}

/// The EMI an application's requested terms imply (rate clamped to a plausible range, a
/// non-positive tenure giving 0).
pub fn proposed_emi(loan: &schemas::LoanTerms) -> Minor {
    emi(
        loan.amount,
        RateBps::clamped(loan.interest_rate_bps),
        u32::try_from(loan.tenure_months).unwrap_or(0),
    )
}

/// Interest for one month on `outstanding` at `rate`, rounded half up to the minor unit.
pub fn monthly_interest(outstanding: Minor, rate: RateBps) -> Minor {
    div_round(
        i128::from(outstanding) * i128::from(rate.bps()),
        12 * 10_000,
    )
}

/// One instalment of a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instalment {
    /// 1-based sequence number.
    pub seq: u32,
    /// Due date.
    pub due_on: NaiveDate,
    /// Principal component, minor units.
    pub principal: Minor,
    /// Interest component, minor units.
    pub interest: Minor,
    /// Outstanding principal after this instalment is paid.
    pub closing_balance: Minor,
}

impl Instalment {
    /// Amount due: principal + interest.
    pub fn amount(&self) -> Minor {
        self.principal + self.interest
    }
}

/// Due date of instalment `seq` (1-based), monthly from `first_due_on`, clamped to month end.
pub fn due_date(first_due_on: NaiveDate, seq: u32) -> NaiveDate {
    first_due_on
        .checked_add_months(Months::new(seq.saturating_sub(1)))
        .unwrap_or(first_due_on)
        .with_day(first_due_on.day())
        .unwrap_or_else(|| {
            // Shorter month: the last day of that month (e.g. 31 Jan → 28 Feb).
            first_due_on
                .checked_add_months(Months::new(seq.saturating_sub(1)))
                .unwrap_or(first_due_on)
        })
}

/// The amortisation schedule: equal instalments of [`emi`], interest on the opening balance,
/// the last instalment taking whatever principal remains so the schedule repays exactly `P`.
///
/// A schedule for a tiny principal can end before `months` once the balance reaches zero.
pub fn schedule(
    principal: Minor,
    rate: RateBps,
    months: u32,
    first_due_on: NaiveDate,
) -> Vec<Instalment> {
    let instalment = emi(principal, rate, months);
    let mut out = Vec::with_capacity(months as usize);
    let mut balance = principal.max(0);
    for seq in 1..=months {
        if balance == 0 {
            break;
        }
        let interest = monthly_interest(balance, rate);
        let principal_part = if seq == months {
            balance
        } else {
            (instalment - interest).clamp(0, balance)
        };
        balance -= principal_part;
        out.push(Instalment {
            seq,
            due_on: due_date(first_due_on, seq),
            principal: principal_part,
            interest,
            closing_balance: balance,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn emi_of_ten_lakh_at_ten_percent_over_five_years_matches_the_bank_tables() {
        // ₹10,00,000 at 10% for 60 months: ₹21,247.04 (published EMI tables).
        assert_eq!(
            emi(100_000_000, RateBps::parse(1000).unwrap(), 60),
            2_124_705
        );
    }

    #[test]
    fn a_zero_rate_loan_repays_principal_in_equal_parts() {
        assert_eq!(emi(1_200_000, RateBps::parse(0).unwrap(), 12), 100_000);
        let s = schedule(1_200_000, RateBps::parse(0).unwrap(), 12, d(2026, 1, 31));
        assert!(s.iter().all(|i| i.interest == 0 && i.principal == 100_000));
    }

    #[test]
    fn due_dates_keep_the_day_and_clamp_to_month_end() {
        let first = d(2026, 1, 31);
        assert_eq!(due_date(first, 1), d(2026, 1, 31));
        assert_eq!(due_date(first, 2), d(2026, 2, 28));
        assert_eq!(due_date(first, 3), d(2026, 3, 31));
    }

    #[test]
    fn the_last_instalment_absorbs_the_rounding() {
        let s = schedule(
            100_000_000,
            RateBps::parse(1000).unwrap(),
            60,
            d(2026, 1, 5),
        );
        assert_eq!(s.len(), 60);
        assert_eq!(s.iter().map(|i| i.principal).sum::<Minor>(), 100_000_000);
        assert_eq!(s[59].closing_balance, 0);
        assert!(s[..59].iter().all(|i| i.amount() == 2_124_705));
        assert!(s[59].amount() <= 2_124_705);
    }
}
