//! How a disbursed loan is serviced, month by month, consistent with its true PD.
//!
//! At disbursal the loan's fate within the 12-month performance window is drawn with its true
//! PD: a defaulter stops paying at an instalment early enough that DPD exceeds 90 inside the
//! window; everyone else pays, sometimes late or partly, never 90 days late inside it. After
//! the window, performing loans keep a monthly hazard of PD/12. Defaulters sometimes pay part
//! of their arrears, sometimes cure (pay everything), else are written off a year after they
//! stop paying, some later marked as loss. Performing loans may foreclose, paying the principal,
//! the interest accrued to the day and anything overdue (the book's payoff quote), or prepay
//! part of the principal, after which the instalments follow from the lower balance (EMI kept,
//! tenure shortened), as the book reschedules them.

use std::collections::VecDeque;

use chrono::{Duration, Months, NaiveDate};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use risk_core::dpd::{Ledger, PrepaymentMode};
use risk_core::money::{Minor, RateBps};
use risk_core::schedule::{due_date, emi, monthly_interest, schedule};

use super::settings::GeneratorSettings;

/// What a loan will do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Pays, with the odd late or skipped month.
    Performing,
    /// Stops paying from instalment `stop_seq`; cures at `cure_seq` when set.
    Defaulting {
        /// First instalment not paid.
        stop_seq: u32,
        /// Instalment at which all arrears are paid.
        cure_seq: Option<u32>,
    },
    /// Written off or foreclosed: nothing more is billed.
    Closed,
}

/// A scheduled action on a loan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Disburse the loan.
    Disburse,
    /// Bill the next instalment (five days before its due date) and decide its payment.
    Bill,
    /// Pay everything billed and unpaid.
    PayAll,
    /// Pay a fixed amount (a partial payment).
    Pay(Minor),
    /// Pay everything billed plus the next `n` instalments in advance (a part-prepayment).
    Prepay(u32),
    /// Pay the loan off: principal, interest accrued to the day and anything overdue.
    Foreclose,
    /// End of the 12-month performance window: the outcome is known.
    WindowEnd,
    /// Write the loan off.
    WriteOff,
    /// Mark the loan as loss.
    MarkLoss,
}

/// A loan being serviced.
#[derive(Debug, Clone)]
pub struct Loan {
    /// Loan sequence number.
    pub seq: u64,
    /// Application sequence number.
    pub app_seq: u64,
    /// Customer sequence number.
    pub customer_seq: u64,
    /// Principal.
    pub principal: Minor,
    /// Rate.
    pub rate: RateBps,
    /// Tenure, months.
    pub tenure: u32,
    /// Collateral value.
    pub collateral_value: Option<Minor>,
    /// EMI.
    pub emi: Minor,
    /// Disbursal date.
    pub disbursed_on: NaiveDate,
    /// First due date.
    pub first_due: NaiveDate,
    /// End of the 12-month performance window.
    pub window_end: NaiveDate,
    /// True PD.
    pub true_pd: f64,
    /// Fate.
    pub plan: Plan,
    /// Next instalment to bill (1-based).
    pub next_seq: u32,
    /// Scheduled principal outstanding before billing `next_seq`.
    pub sched_balance: Minor,
    /// Billed and unpaid: (due date, amount left), oldest first.
    pub unpaid: VecDeque<(NaiveDate, Minor)>,
    /// DPD exceeded 90 inside the window.
    pub defaulted_12m: bool,
    /// The outcome has been counted.
    pub outcome_counted: bool,
    /// Written off: no payment is received any more.
    pub written_off: bool,
    /// Paid in advance of instalments not yet billed; applied as they are billed.
    pub credit: Minor,
    /// The loan's account as the book keeps it (payoff quotes for foreclosures).
    pub ledger: Ledger,
}

/// Latest day an instalment can first be missed so that DPD > 90 falls inside 12 months.
const LAST_DEFAULT_SEQ: u32 = 8;

impl Loan {
    /// A loan disbursed on `on`, its fate drawn from `true_pd`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        rng: &mut ChaCha8Rng,
        settings: &GeneratorSettings,
        seq: u64,
        app_seq: u64,
        customer_seq: u64,
        terms: &schemas::LoanTerms,
        on: NaiveDate,
        true_pd: f64,
    ) -> Loan {
        let rate = RateBps::clamped(terms.interest_rate_bps);
        let tenure = u32::try_from(terms.tenure_months).unwrap_or(1).max(1);
        let first_due = on.checked_add_months(Months::new(1)).unwrap_or(on);
        let window_end = on.checked_add_months(Months::new(12)).unwrap_or(on);
        let plan = if rng.gen::<f64>() < true_pd {
            let last = LAST_DEFAULT_SEQ.min(tenure);
            let stop_seq = rng.gen_range(1..=last);
            let cure_seq =
                (rng.gen::<f64>() < settings.cure_share).then(|| stop_seq + rng.gen_range(4..=8));
            Plan::Defaulting { stop_seq, cure_seq }
        } else {
            Plan::Performing
        };
        Loan {
            seq,
            app_seq,
            customer_seq,
            principal: terms.amount,
            rate,
            tenure,
            collateral_value: terms.collateral_value,
            emi: emi(terms.amount, rate, tenure),
            disbursed_on: on,
            first_due,
            window_end,
            true_pd,
            plan,
            next_seq: 1,
            sched_balance: terms.amount,
            unpaid: VecDeque::new(),
            defaulted_12m: false,
            outcome_counted: false,
            written_off: false,
            credit: 0,
            ledger: Ledger::new(
                &schedule(terms.amount, rate, tenure, first_due),
                rate,
                on,
                PrepaymentMode::ReduceTenure,
            ),
        }
    }

    /// Id of the loan.
    pub fn id(&self) -> String {
        format!("LN-{:09}", self.seq)
    }

    /// Due date of instalment `seq`.
    pub fn due(&self, seq: u32) -> NaiveDate {
        due_date(self.first_due, seq)
    }

    /// The bill date of the next instalment, if any remains.
    pub fn next_bill_date(&self) -> Option<NaiveDate> {
        (self.next_seq <= self.tenure && self.sched_balance > 0 && self.plan != Plan::Closed)
            .then(|| self.due(self.next_seq) - Duration::days(5))
    }

    /// Split of the next instalment exactly as [`risk_core::schedule::schedule`] computes it.
    fn next_instalment(&self) -> (Minor, Minor) {
        let interest = monthly_interest(self.sched_balance, self.rate);
        let principal = if self.next_seq == self.tenure {
            self.sched_balance
        } else {
            (self.emi - interest).clamp(0, self.sched_balance)
        };
        (principal, interest)
    }

    /// Everything still owed under the schedule: billed and unpaid plus not yet billed, less
    /// what was paid in advance.
    pub fn remaining_schedule(&self) -> Minor {
        self.owed_with_next(u32::MAX)
    }

    /// Billed and unpaid, plus the next `n` instalments not yet billed, less advance credit.
    pub fn owed_with_next(&self, n: u32) -> Minor {
        let mut probe = self.clone();
        let mut total: Minor = self.unpaid.iter().map(|(_, a)| a).sum();
        let mut taken = 0;
        while taken < n && probe.next_seq <= probe.tenure && probe.sched_balance > 0 {
            let (p, i) = probe.next_instalment();
            total += p + i;
            probe.sched_balance -= p;
            probe.next_seq += 1;
            taken += 1;
        }
        (total - self.credit).max(0)
    }

    /// Whether nothing is owed any more.
    pub fn is_settled(&self) -> bool {
        self.unpaid.is_empty() && (self.next_seq > self.tenure || self.sched_balance == 0)
    }

    /// Whether the last payment settled the schedule in advance.
    pub fn is_prepaid_in_full(&self) -> bool {
        self.unpaid.is_empty() && self.credit > 0 && self.remaining_schedule() == 0
    }

    /// Note whether the oldest unpaid instalment reached DPD > 90 inside the window by `day`
    /// (it was unpaid at the day-end of due + 90, and that day is inside the window).
    pub fn check_default(&mut self, before: NaiveDate) {
        if let Some((due, _)) = self.unpaid.front() {
            let npa_day = *due + Duration::days(90);
            if npa_day < before && npa_day <= self.window_end {
                self.defaulted_12m = true;
            }
        }
    }

    /// Apply a payment made on `on` (oldest instalment first). Returns the amount applied.
    pub fn pay(&mut self, amount: Minor, on: NaiveDate) -> Minor {
        self.check_default(on);
        let mut left = amount;
        while left > 0 {
            let Some(front) = self.unpaid.front_mut() else {
                break;
            };
            let take = front.1.min(left);
            front.1 -= take;
            left -= take;
            if front.1 == 0 {
                self.unpaid.pop_front();
            }
        }
        // Beyond what is billed: a part-prepayment, off the principal at once; the instalments
        // still to bill follow from the lower balance (EMI kept, tenure shortened).
        let prepaid = left.min(self.sched_balance);
        self.sched_balance -= prepaid;
        self.credit += left - prepaid;
        self.ledger.pay(amount, on);
        amount
    }

    /// A foreclosure was paid: nothing is owed or billed any more.
    pub fn settle(&mut self) {
        self.unpaid.clear();
        self.sched_balance = 0;
    }

    /// Add the next instalment to what is owed (less any advance credit); returns its
    /// sequence number and due date.
    fn push_next(&mut self) -> (u32, NaiveDate) {
        let seq = self.next_seq;
        let due = self.due(seq);
        let (principal, interest) = self.next_instalment();
        let prepaid = self.credit.min(principal + interest);
        self.credit -= prepaid;
        if principal + interest > prepaid {
            self.unpaid.push_back((due, principal + interest - prepaid));
        }
        self.sched_balance -= principal;
        self.next_seq += 1;
        (seq, due)
    }

    /// Bill the next instalment and decide how it will be paid; returns the actions to
    /// schedule (date, action).
    pub fn bill(
        &mut self,
        rng: &mut ChaCha8Rng,
        settings: &GeneratorSettings,
    ) -> Vec<(NaiveDate, Action)> {
        let mut out = Vec::new();
        let (seq, due) = self.push_next();
        match self.plan {
            Plan::Closed => return out,
            Plan::Defaulting { stop_seq, cure_seq } if seq >= stop_seq => {
                if cure_seq == Some(seq) {
                    self.plan = Plan::Performing;
                    out.push((due + Duration::days(rng.gen_range(0..=10)), Action::PayAll));
                } else if cure_seq.is_none() && seq == stop_seq + 12 {
                    out.push((due, Action::WriteOff));
                    self.plan = Plan::Closed;
                    return out;
                } else if rng.gen::<f64>() < 0.25 {
                    let part = (self.emi as f64 * rng.gen_range(0.3..0.6)) as Minor;
                    out.push((
                        due + Duration::days(rng.gen_range(0..=20)),
                        Action::Pay(part.max(1)),
                    ));
                }
                if self.next_bill_date().is_none() && matches!(self.plan, Plan::Defaulting { .. }) {
                    // Nothing more to bill and no cure: written off a year after the first miss.
                    let after_a_year = self
                        .due(stop_seq)
                        .checked_add_months(Months::new(12))
                        .unwrap_or(due)
                        .max(due + Duration::days(1));
                    out.push((after_a_year, Action::WriteOff));
                    self.plan = Plan::Closed;
                    return out;
                }
            }
            _ => {
                let late_p = 0.05 + 0.6 * self.true_pd;
                let u = rng.gen::<f64>();
                // Lateness only when nothing older is owed, so a performing loan never
                // reaches 90 days past due.
                let clean = self.unpaid.len() == 1;
                if seq > 6 && rng.gen::<f64>() < settings.foreclosure_hazard {
                    out.push((
                        due - Duration::days(rng.gen_range(0..=4)),
                        Action::Foreclose,
                    ));
                    self.plan = Plan::Closed;
                    return out;
                } else if due > self.window_end && rng.gen::<f64>() < self.true_pd / 12.0 {
                    self.plan = Plan::Defaulting {
                        stop_seq: seq,
                        cure_seq: (rng.gen::<f64>() < settings.cure_share)
                            .then(|| seq + rng.gen_range(4..=8)),
                    };
                } else if clean && seq > 3 && seq + 6 < self.tenure && u > 0.99 {
                    // A part-prepayment: this instalment and a few more in advance.
                    let ahead = rng.gen_range(2..=6);
                    out.push((
                        due - Duration::days(rng.gen_range(0..=4)),
                        Action::Prepay(ahead),
                    ));
                } else if clean && u < late_p {
                    out.push((due + Duration::days(rng.gen_range(3..=40)), Action::PayAll));
                } else if clean && u < late_p + 0.02 && seq < self.tenure {
                    // Skips this month; next month's payment clears both.
                } else {
                    out.push((due - Duration::days(rng.gen_range(0..=4)), Action::PayAll));
                }
            }
        }
        if let Some(next) = self.next_bill_date() {
            out.push((next, Action::Bill));
        }
        out
    }
}
