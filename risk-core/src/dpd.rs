//! Days past due from a schedule and the payments received.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::money::Minor;
use crate::schedule::Instalment;

/// A payment received on a loan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// Amount, minor units.
    pub amount: Minor,
    /// Value date.
    pub paid_on: NaiveDate,
}

/// What has been paid against one instalment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Allocation {
    /// Interest paid.
    pub interest_paid: Minor,
    /// Principal paid.
    pub principal_paid: Minor,
}

/// Payments spread over a schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocated {
    /// One entry per instalment, in schedule order.
    pub per_instalment: Vec<Allocation>,
    /// Paid beyond the whole schedule (a prepayment surplus).
    pub surplus: Minor,
}

/// Allocate payments (in value-date order) to the oldest unpaid instalment first: interest,
/// then principal. Payments after `as_of` are ignored.
pub fn allocate(schedule: &[Instalment], payments: &[Payment], as_of: NaiveDate) -> Allocated {
    let mut ordered: Vec<&Payment> = payments.iter().filter(|p| p.paid_on <= as_of).collect();
    ordered.sort_by_key(|p| p.paid_on);
    let mut per_instalment = vec![Allocation::default(); schedule.len()];
    let mut surplus = 0;
    let mut next = 0;
    for payment in ordered {
        let mut left = payment.amount.max(0);
        while left > 0 {
            let Some(inst) = schedule.get(next) else {
                surplus += left;
                break;
            };
            let alloc = &mut per_instalment[next];
            let interest = (inst.interest - alloc.interest_paid).min(left);
            alloc.interest_paid += interest;
            left -= interest;
            let principal = (inst.principal - alloc.principal_paid).min(left);
            alloc.principal_paid += principal;
            left -= principal;
            if alloc.interest_paid == inst.interest && alloc.principal_paid == inst.principal {
                next += 1;
            }
        }
    }
    Allocated {
        per_instalment,
        surplus,
    }
}

/// Delinquency of a loan on a business date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delinquency {
    /// Days past due of the oldest instalment not fully paid; 0 when nothing is overdue.
    pub dpd: u32,
    /// Overdue amount unpaid (principal and interest of instalments due on or before the date).
    pub arrears: Minor,
    /// Overdue principal unpaid.
    pub arrears_principal: Minor,
    /// Instalments due on or before the date and not fully paid.
    pub overdue_instalments: u32,
    /// Principal not yet repaid (due or not).
    pub outstanding_principal: Minor,
}

/// DPD on `as_of`: an instalment not fully paid by the day-end of its due date is overdue, the
/// due date counting as day 1, so `DPD = (as_of − due) + 1` for the oldest such instalment.
pub fn delinquency(schedule: &[Instalment], payments: &[Payment], as_of: NaiveDate) -> Delinquency {
    let allocated = allocate(schedule, payments, as_of);
    let mut result = Delinquency {
        dpd: 0,
        arrears: 0,
        arrears_principal: 0,
        overdue_instalments: 0,
        outstanding_principal: 0,
    };
    for (inst, paid) in schedule.iter().zip(&allocated.per_instalment) {
        let unpaid_principal = inst.principal - paid.principal_paid;
        let unpaid = inst.amount() - paid.interest_paid - paid.principal_paid;
        result.outstanding_principal += unpaid_principal;
        if inst.due_on <= as_of && unpaid > 0 {
            if result.overdue_instalments == 0 {
                let days = (as_of - inst.due_on).num_days() + 1;
                result.dpd = u32::try_from(days).unwrap_or(u32::MAX);
            }
            result.overdue_instalments += 1;
            result.arrears += unpaid;
            result.arrears_principal += unpaid_principal;
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::RateBps;
    use crate::schedule::schedule;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn an_unpaid_instalment_is_one_day_past_due_at_the_day_end_of_its_due_date() {
        let s = schedule(1_200_000, RateBps::parse(1200).unwrap(), 12, d(2026, 3, 31));
        assert_eq!(delinquency(&s, &[], d(2026, 3, 30)).dpd, 0);
        assert_eq!(delinquency(&s, &[], d(2026, 3, 31)).dpd, 1);
        assert_eq!(delinquency(&s, &[], d(2026, 4, 30)).dpd, 31);
    }

    #[test]
    fn a_payment_on_the_due_date_keeps_the_loan_current() {
        let s = schedule(1_200_000, RateBps::parse(1200).unwrap(), 12, d(2026, 3, 31));
        let paid = [Payment {
            amount: s[0].amount(),
            paid_on: d(2026, 3, 31),
        }];
        assert_eq!(delinquency(&s, &paid, d(2026, 3, 31)).dpd, 0);
    }

    #[test]
    fn payments_go_to_the_oldest_instalment_interest_first() {
        let s = schedule(1_200_000, RateBps::parse(1200).unwrap(), 12, d(2026, 1, 31));
        let paid = [Payment {
            amount: s[0].interest + 1,
            paid_on: d(2026, 3, 1),
        }];
        let a = allocate(&s, &paid, d(2026, 3, 31));
        assert_eq!(a.per_instalment[0].interest_paid, s[0].interest);
        assert_eq!(a.per_instalment[0].principal_paid, 1);
        assert_eq!(a.per_instalment[1], Allocation::default());
        // Instalment 1 still unpaid: DPD counts from its due date, 31 Jan.
        assert_eq!(delinquency(&s, &paid, d(2026, 3, 31)).dpd, 60);
    }

    #[test]
    fn a_payment_after_the_date_asked_about_is_not_counted() {
        let s = schedule(1_200_000, RateBps::parse(1200).unwrap(), 12, d(2026, 1, 31));
        let paid = [Payment {
            amount: s[0].amount(),
            paid_on: d(2026, 2, 10),
        }];
        assert_eq!(delinquency(&s, &paid, d(2026, 2, 9)).dpd, 10);
        assert_eq!(delinquency(&s, &paid, d(2026, 2, 10)).dpd, 0);
    }
}
