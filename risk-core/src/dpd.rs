//! Payment allocation and days past due: one cursor over a loan's unpaid schedule, used by the
//! book's writes (`book::write`) on the stored schedule and by [`Ledger`], the reference replay.
//!
//! A payment on date `t`, in this order:
//! 1. settles the instalments due on or before `t`, oldest first, interest then principal;
//! 2. forecloses the loan when what is left covers the outstanding principal plus the interest
//!    accrued from the last due date to `t` (actual/365): the loan closes and the rest is a
//!    surplus owed to the customer;
//! 3. settles the instalment of the running period (the first one falling due after `t`, when
//!    `t` lies in its period): an EMI paid ahead of its date is that instalment, not a
//!    prepayment;
//! 4. anything beyond is a part-prepayment: it reduces the outstanding principal at once and the
//!    instalments still to fall due are recomputed from the new balance (EMI kept, tenure
//!    shortened; or, by setting, the EMI recomputed over the remaining instalments). No interest
//!    for a future period is ever charged.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::money::{div_round, Minor, RateBps};
use crate::schedule::{emi, monthly_interest, Instalment};

/// What a part-prepayment changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrepaymentMode {
    /// The EMI stays and the tenure shortens (the default).
    #[default]
    ReduceTenure,
    /// The tenure stays and the EMI is recomputed.
    ReduceEmi,
}

/// The largest amount a payment may carry (₹10 lakh crore): anything above is a data error, and
/// sums of such amounts stay far inside `i64`.
pub const MAX_PAYMENT: Minor = 1_000_000_000_000_000;

/// Servicing settings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServicingSettings {
    /// What a part-prepayment changes.
    pub prepayment: PrepaymentMode,
}

/// A payment received on a loan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// Amount, minor units.
    pub amount: Minor,
    /// Value date.
    pub paid_on: NaiveDate,
}

/// Interest on `principal` at `rate` for `days` days, actual/365, rounded half away from zero.
pub fn accrued_interest(principal: Minor, rate: RateBps, days: i64) -> Minor {
    if days <= 0 || principal <= 0 {
        return 0;
    }
    div_round(
        i128::from(principal) * i128::from(rate.bps()) * i128::from(days),
        365 * 10_000,
    )
}

/// One payment's allocation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    /// Paid to interest.
    pub to_interest: Minor,
    /// Paid to principal (instalments and prepayment).
    pub to_principal: Minor,
    /// Of `to_principal`, a part-prepayment (principal no instalment of the recomputed schedule
    /// holds; a foreclosure's principal is its last instalment's).
    pub prepaid: Minor,
    /// Beyond what the loan owed: owed back to the customer.
    pub surplus: Minor,
    /// First and last seq of the instalments it settled.
    pub settled: Option<(u32, u32)>,
    /// Instalments it settled on or before their due date.
    pub on_time: i64,
    /// The loan was foreclosed or fully repaid by this payment.
    pub closed: bool,
    /// The instalments still to fall due were recomputed (a prepayment or a foreclosure).
    pub rescheduled: bool,
}

/// The cursor needs instalments it was not given: read the schedule to its end and retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the schedule must be read to its end")]
pub struct NeedsRest;

/// Where a loan's payments stand in its schedule: the next unpaid instalment, what has been
/// paid into it, and the instalments from it on (all of them, or a prefix with `beyond` more
/// not read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Seq of the first instalment in the vectors (the next unpaid one when read).
    pub first: u32,
    /// Paid so far into the next unpaid instalment (interest first).
    pub paid: Minor,
    /// Due dates of the instalments read, from the next unpaid one on.
    pub due_on: Vec<NaiveDate>,
    /// Principal parts.
    pub principal: Vec<Minor>,
    /// Interest parts.
    pub interest: Vec<Minor>,
    /// Index into the vectors of the next unpaid instalment.
    pub at: usize,
    /// Instalments of the schedule after the last one in the vectors (not read).
    pub beyond: u32,
    /// Outstanding principal (of every unpaid instalment, read or not).
    pub outstanding: Minor,
    /// Due date of the instalment before the first read (the disbursal date for the first).
    pub period_start: NaiveDate,
    /// Annual rate.
    pub rate: RateBps,
    /// The EMI kept by a prepayment.
    pub emi: Minor,
    /// What a prepayment changes.
    pub mode: PrepaymentMode,
}

impl Cursor {
    /// A cursor at the start of a whole schedule.
    pub fn new(
        schedule: &[Instalment],
        rate: RateBps,
        disbursed_on: NaiveDate,
        mode: PrepaymentMode,
    ) -> Self {
        let principal: Vec<Minor> = schedule.iter().map(|i| i.principal).collect();
        Cursor {
            first: 1,
            paid: 0,
            due_on: schedule.iter().map(|i| i.due_on).collect(),
            outstanding: principal.iter().sum(),
            interest: schedule.iter().map(|i| i.interest).collect(),
            principal,
            at: 0,
            beyond: 0,
            period_start: disbursed_on,
            rate,
            emi: schedule.first().map_or(0, Instalment::amount),
            mode,
        }
    }

    /// Seq of the next unpaid instalment (`None`: nothing left to pay).
    pub fn seq(&self) -> Option<u32> {
        if self.at >= self.principal.len() {
            return None;
        }
        u32::try_from(self.at).ok().map(|a| self.first + a)
    }

    /// Due date of the next unpaid instalment.
    pub fn next_due(&self) -> Option<NaiveDate> {
        self.due_on.get(self.at).copied()
    }

    /// Whether everything is repaid.
    pub fn is_closed(&self) -> bool {
        self.seq().is_none() && self.beyond == 0
    }

    fn owed_now(&self) -> Minor {
        (self.principal[self.at] + self.interest[self.at] - self.paid).max(0)
    }

    /// Pay into the next unpaid instalment; returns what was taken.
    fn pay_next(&mut self, left: Minor, paid_on: NaiveDate, a: &mut Allocation) -> Minor {
        let k = self.at;
        let (principal, interest) = (self.principal[k], self.interest[k]);
        let take = self.owed_now().min(left);
        let interest_owed = (interest - self.paid.min(interest)).max(0);
        let to_i = take.min(interest_owed);
        a.to_interest += to_i;
        a.to_principal += take - to_i;
        self.outstanding -= take - to_i;
        self.paid += take;
        if self.paid >= principal + interest {
            let seq = self.first + u32::try_from(k).unwrap_or(u32::MAX);
            a.settled = Some((a.settled.map_or(seq, |s| s.0), seq));
            if paid_on <= self.due_on[k] {
                a.on_time += 1;
            }
            self.advance();
        }
        take
    }

    /// Move past the settled instalment to the next one with anything to pay.
    fn advance(&mut self) {
        self.paid = 0;
        self.at += 1;
        while self.at < self.principal.len()
            && self.principal[self.at] + self.interest[self.at] == 0
        {
            self.at += 1;
        }
    }

    /// Start of the period of the next unpaid instalment.
    fn current_period_start(&self) -> NaiveDate {
        match self.at.checked_sub(1) {
            Some(k) => self.due_on[k],
            None => self.period_start,
        }
    }

    /// Allocate `amount` paid on `paid_on` (see the module's rules). Fails, changing nothing,
    /// when it needs instalments beyond those read.
    pub fn allocate(&mut self, amount: Minor, paid_on: NaiveDate) -> Result<Allocation, NeedsRest> {
        let before = self.clone();
        let result = self.allocate_inner(amount, paid_on);
        if result.is_err() {
            *self = before;
        }
        result
    }

    fn allocate_inner(
        &mut self,
        amount: Minor,
        paid_on: NaiveDate,
    ) -> Result<Allocation, NeedsRest> {
        let mut a = Allocation::default();
        let mut left = amount.max(0);
        // 1. Everything due on or before the payment date.
        while left > 0 {
            match self.next_due() {
                Some(due) if due <= paid_on => left -= self.pay_next(left, paid_on, &mut a),
                Some(_) => break,
                None if self.beyond > 0 => return Err(NeedsRest),
                None => break,
            }
        }
        if left == 0 || self.seq().is_none() {
            a.surplus = left;
            a.closed = self.is_closed() && amount > 0 && a.surplus < amount;
            return Ok(a);
        }
        // 2. Foreclosure: principal + interest accrued since the last due date.
        let start = self.current_period_start();
        let interest_paid_in_period = self.paid.min(self.interest[self.at]);
        let principal_paid_in_period = self.paid - interest_paid_in_period;
        let accrued_due = self.accrued_due(paid_on);
        if left >= self.outstanding + accrued_due {
            if self.beyond > 0 {
                return Err(NeedsRest);
            }
            let k = self.at;
            let rest = self.outstanding;
            a.to_interest += accrued_due;
            a.to_principal += rest;
            left -= rest + accrued_due;
            // The schedule ends with this instalment, as charged.
            self.interest[k] = interest_paid_in_period + accrued_due;
            self.principal[k] = principal_paid_in_period + rest;
            self.truncate(k + 1);
            self.outstanding = 0;
            let seq = self.first + u32::try_from(k).unwrap_or(u32::MAX);
            a.settled = Some((a.settled.map_or(seq, |s| s.0), seq));
            if paid_on <= self.due_on[k] {
                a.on_time += 1;
            }
            self.advance();
            a.surplus = left;
            a.closed = true;
            a.rescheduled = true;
            return Ok(a);
        }
        // 3. The instalment of the running period (which starts the day after a due date), or
        // one already part-paid (an earlier-dated payment arriving after a later one): what is
        // paid into an instalment is never recomputed away.
        if start < paid_on || self.paid > 0 {
            left -= self.pay_next(left, paid_on, &mut a);
        }
        if left == 0 {
            return Ok(a);
        }
        if self.seq().is_none() {
            if self.beyond > 0 {
                return Err(NeedsRest);
            }
            a.surplus = left;
            a.closed = true;
            return Ok(a);
        }
        // 4. A part-prepayment: the principal falls at once, the rest is recomputed.
        if self.beyond > 0 {
            return Err(NeedsRest);
        }
        let prepaid = left.min(self.outstanding);
        a.to_principal += prepaid;
        a.prepaid += prepaid;
        self.outstanding -= prepaid;
        left -= prepaid;
        a.surplus = left;
        a.rescheduled = true;
        self.reschedule();
        if self.outstanding == 0 {
            a.closed = true;
        }
        Ok(a)
    }

    /// Interest accrued on the outstanding principal from the start of the next unpaid
    /// instalment's period to `on` (actual/365), less the interest already paid into it; none
    /// once every instalment has fallen due.
    fn accrued_due(&self, on: NaiveDate) -> Minor {
        let Some(&interest) = self.interest.get(self.at) else {
            return 0;
        };
        let interest_paid = self.paid.min(interest);
        let principal_paid = self.paid - interest_paid;
        let accrued = accrued_interest(
            self.outstanding + principal_paid,
            self.rate,
            (on - self.current_period_start()).num_days(),
        );
        (accrued - interest_paid).max(0)
    }

    /// What a payment on `on` must bring to close the loan: everything due on or before `on`,
    /// then the outstanding principal and the interest accrued since the last due date.
    pub fn payoff(&self, on: NaiveDate) -> Result<Minor, NeedsRest> {
        let mut c = self.clone();
        let mut a = Allocation::default();
        let mut total = 0;
        loop {
            match c.next_due() {
                Some(due) if due <= on => {
                    let owed = c.owed_now();
                    total += c.pay_next(owed, on, &mut a);
                }
                Some(_) => break,
                None if c.beyond > 0 => return Err(NeedsRest),
                None => return Ok(total),
            }
        }
        if c.beyond > 0 {
            return Err(NeedsRest);
        }
        Ok(total + c.outstanding + c.accrued_due(on))
    }

    fn truncate(&mut self, len: usize) {
        self.due_on.truncate(len);
        self.principal.truncate(len);
        self.interest.truncate(len);
    }

    /// Recompute the instalments from the next unpaid one (nothing paid into it) for the
    /// outstanding principal.
    fn reschedule(&mut self) {
        debug_assert_eq!(self.paid, 0);
        let from = self.at;
        let rows = self.principal.len() - from;
        let instalment = match self.mode {
            PrepaymentMode::ReduceTenure => self.emi,
            PrepaymentMode::ReduceEmi => emi(
                self.outstanding,
                self.rate,
                u32::try_from(rows).unwrap_or(u32::MAX),
            ),
        };
        let mut balance = self.outstanding;
        let mut k = from;
        while balance > 0 && k < self.principal.len() {
            let interest = monthly_interest(balance, self.rate);
            let last = k + 1 == self.principal.len();
            let part = if last || instalment <= interest {
                balance
            } else {
                (instalment - interest).min(balance)
            };
            self.interest[k] = interest;
            self.principal[k] = part;
            balance -= part;
            k += 1;
        }
        self.truncate(k);
    }

    /// The schedule rows from the first read, as (due, principal, interest).
    pub fn rows(&self) -> impl Iterator<Item = (NaiveDate, Minor, Minor)> + '_ {
        self.due_on
            .iter()
            .zip(&self.principal)
            .zip(&self.interest)
            .map(|((d, p), i)| (*d, *p, *i))
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

/// DPD on `as_of` from a cursor read to the schedule's end: an instalment not fully paid by
/// the day-end of its due date is overdue, the due date counting as day 1, so
/// `DPD = (as_of − due) + 1` for the oldest such instalment.
pub fn delinquency_of(c: &Cursor, as_of: NaiveDate) -> Delinquency {
    let mut out = Delinquency {
        dpd: 0,
        arrears: 0,
        arrears_principal: 0,
        overdue_instalments: 0,
        outstanding_principal: c.outstanding,
    };
    let mut paid = c.paid;
    for k in c.at..c.principal.len() {
        if c.due_on[k] > as_of {
            break;
        }
        let paid_interest = paid.min(c.interest[k]);
        let unpaid_principal = c.principal[k] - (paid - paid_interest);
        let unpaid = c.principal[k] + c.interest[k] - paid;
        paid = 0;
        if unpaid <= 0 {
            continue;
        }
        if out.overdue_instalments == 0 {
            let days = (as_of - c.due_on[k]).num_days() + 1;
            out.dpd = u32::try_from(days).unwrap_or(u32::MAX);
        }
        out.overdue_instalments += 1;
        out.arrears += unpaid;
        out.arrears_principal += unpaid_principal;
    }
    out
}

/// A loan's account replayed in memory: its schedule and the payments applied so far.
#[derive(Debug, Clone)]
pub struct Ledger {
    /// The cursor over the whole schedule (from instalment 1).
    pub cursor: Cursor,
}

impl Ledger {
    /// A new loan's ledger.
    pub fn new(
        schedule: &[Instalment],
        rate: RateBps,
        disbursed_on: NaiveDate,
        mode: PrepaymentMode,
    ) -> Self {
        Ledger {
            cursor: Cursor::new(schedule, rate, disbursed_on, mode),
        }
    }

    /// Apply one payment.
    pub fn pay(&mut self, amount: Minor, paid_on: NaiveDate) -> Allocation {
        // A whole schedule is always read: the cursor never asks for more.
        self.cursor.allocate(amount, paid_on).unwrap_or_default()
    }

    /// Delinquency on `as_of` of the payments applied so far.
    pub fn delinquency(&self, as_of: NaiveDate) -> Delinquency {
        delinquency_of(&self.cursor, as_of)
    }

    /// Interest accrued on `as_of` since the last due date (actual/365) on the principal not
    /// yet due; none once every instalment has fallen due. The same accrual as a payoff quote.
    pub fn accrued_since_due(&self, as_of: NaiveDate) -> Minor {
        if self.remaining_instalments(as_of) == 0 {
            return 0;
        }
        let q = self.delinquency(as_of);
        accrued_interest(
            q.outstanding_principal - q.arrears_principal,
            self.cursor.rate,
            (as_of - self.last_due_on_or_before(as_of)).num_days(),
        )
    }

    /// Instalments still to fall due after `as_of`.
    pub fn remaining_instalments(&self, as_of: NaiveDate) -> u32 {
        let n = self.cursor.due_on.iter().filter(|d| **d > as_of).count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Due date of the last instalment due on or before `as_of` (the disbursal date if none).
    pub fn last_due_on_or_before(&self, as_of: NaiveDate) -> NaiveDate {
        self.cursor
            .due_on
            .iter()
            .filter(|d| **d <= as_of)
            .max()
            .copied()
            .unwrap_or(self.cursor.period_start)
    }

    /// Whether everything is repaid.
    pub fn is_closed(&self) -> bool {
        self.cursor.is_closed()
    }

    /// What a payment on `on` must bring to close the loan (a foreclosure).
    pub fn payoff(&self, on: NaiveDate) -> Minor {
        self.cursor.payoff(on).unwrap_or_default()
    }
}

/// DPD on `as_of` of `payments` (applied in value-date order; those dated after `as_of` are
/// not counted) on a schedule disbursed on `disbursed_on`.
pub fn delinquency(
    schedule: &[Instalment],
    rate: RateBps,
    disbursed_on: NaiveDate,
    payments: &[Payment],
    as_of: NaiveDate,
) -> Delinquency {
    let mut ordered: Vec<&Payment> = payments.iter().filter(|p| p.paid_on <= as_of).collect();
    ordered.sort_by_key(|p| p.paid_on);
    let mut ledger = Ledger::new(schedule, rate, disbursed_on, PrepaymentMode::default());
    for p in ordered {
        ledger.pay(p.amount, p.paid_on);
    }
    ledger.delinquency(as_of)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::schedule;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn rate() -> RateBps {
        RateBps::parse(1200).unwrap()
    }

    #[test]
    fn an_unpaid_instalment_is_one_day_past_due_at_the_day_end_of_its_due_date() {
        let s = schedule(1_200_000, rate(), 12, d(2026, 3, 31));
        let q = |on| delinquency(&s, rate(), d(2026, 2, 28), &[], on).dpd;
        assert_eq!(q(d(2026, 3, 30)), 0);
        assert_eq!(q(d(2026, 3, 31)), 1);
        assert_eq!(q(d(2026, 4, 30)), 31);
    }

    #[test]
    fn a_payment_on_the_due_date_keeps_the_loan_current() {
        let s = schedule(1_200_000, rate(), 12, d(2026, 3, 31));
        let paid = [Payment {
            amount: s[0].amount(),
            paid_on: d(2026, 3, 31),
        }];
        assert_eq!(
            delinquency(&s, rate(), d(2026, 2, 28), &paid, d(2026, 3, 31)).dpd,
            0
        );
    }

    #[test]
    fn payments_go_to_the_oldest_instalment_interest_first() {
        let s = schedule(1_200_000, rate(), 12, d(2026, 1, 31));
        let mut l = Ledger::new(&s, rate(), d(2025, 12, 31), PrepaymentMode::default());
        let a = l.pay(s[0].interest + 1, d(2026, 3, 1));
        assert_eq!(a.to_interest, s[0].interest);
        assert_eq!(a.to_principal, 1);
        // Instalment 1 still unpaid: DPD counts from its due date, 31 Jan.
        assert_eq!(l.delinquency(d(2026, 3, 31)).dpd, 60);
    }

    #[test]
    fn a_payment_after_the_date_asked_about_is_not_counted() {
        let s = schedule(1_200_000, rate(), 12, d(2026, 1, 31));
        let paid = [Payment {
            amount: s[0].amount(),
            paid_on: d(2026, 2, 10),
        }];
        let q = |on| delinquency(&s, rate(), d(2025, 12, 31), &paid, on).dpd;
        assert_eq!(q(d(2026, 2, 9)), 10);
        assert_eq!(q(d(2026, 2, 10)), 0);
    }

    #[test]
    fn the_payoff_quote_closes_the_loan_to_the_paisa() {
        let s = schedule(12_000_000, rate(), 12, d(2026, 3, 31));
        let mut l = Ledger::new(&s, rate(), d(2026, 2, 28), PrepaymentMode::default());
        l.pay(1_066_186, d(2026, 3, 31));
        // ₹1,10,538.14 principal + 15 days at 12% (₹545.12).
        assert_eq!(l.payoff(d(2026, 4, 15)), 11_108_326);
        let mut short = l.clone();
        let a = short.pay(11_108_325, d(2026, 4, 15));
        assert!(!a.closed && !short.is_closed());
        let a = l.pay(11_108_326, d(2026, 4, 15));
        assert!(a.closed && l.is_closed());
        assert_eq!(
            (a.to_interest, a.to_principal, a.surplus),
            (54_512, 11_053_814, 0)
        );
    }

    #[test]
    fn an_older_payment_arriving_after_a_newer_one_completes_its_instalment_first() {
        let s = schedule(1_200_000, rate(), 12, d(2026, 3, 31));
        let mut l = Ledger::new(&s, rate(), d(2026, 2, 28), PrepaymentMode::default());
        // 10 Apr: instalment 1 (₹1,066.19) and ₹433.81 into instalment 2.
        l.pay(150_000, d(2026, 4, 10));
        assert_eq!(l.cursor.paid, 150_000 - 106_619);
        // Dated 25 Mar, arriving after: it completes instalment 2, then prepays.
        let a = l.pay(200_000, d(2026, 3, 25));
        assert_eq!(a.settled, Some((2, 2)));
        assert_eq!(a.prepaid, 200_000 - (106_619 - 43_381));
        let principal_left: i64 = l.cursor.principal[l.cursor.at..].iter().sum();
        assert_eq!(principal_left, l.cursor.outstanding);
    }

    #[test]
    fn an_emi_paid_four_days_early_is_that_instalment_not_a_prepayment() {
        // ₹12,000 at 12% over 12 months, first due 31 Mar 2026; EMI ₹1,066.19.
        let s = schedule(1_200_000, rate(), 12, d(2026, 3, 31));
        assert_eq!(s[0].amount(), 106_619);
        let mut l = Ledger::new(&s, rate(), d(2026, 2, 28), PrepaymentMode::default());
        let a = l.pay(106_619, d(2026, 3, 27));
        assert_eq!(
            (a.to_interest, a.to_principal, a.prepaid),
            (12_000, 94_619, 0)
        );
        assert_eq!(a.settled, Some((1, 1)));
        assert_eq!(l.delinquency(d(2026, 3, 31)).dpd, 0);
        assert_eq!(l.cursor.principal.len(), 12);
    }
}
