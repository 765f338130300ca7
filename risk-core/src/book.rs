//! The reference book: loans, payments, write-offs, losses and day-ends replayed in memory with
//! this crate's rules, one loan and one day at a time. The book's set-based day-end
//! (`book::dayend`) is tested against it.
//!
//! Event time: a payment or write-off counts from its own business date. One dated on or before
//! the day after the last closed day is applied when it arrives (the next day-end counts it; a
//! closed day is never restated); one dated later waits and is applied at the start of the first
//! day-end on or after its date, in date order, then arrival order.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::dpd::{Allocation, Ledger, MAX_PAYMENT};
use crate::ifrs9::Stage;
use crate::irac::{AssetClass, ClassState, Reason, Standing};
use crate::money::{Minor, RateBps};
use crate::provisioning::is_secured;
use crate::schedule::schedule;
use crate::settings::DomainSettings;

/// Where a loan stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoanState {
    /// Open.
    Active,
    /// Repaid in full (or foreclosed).
    Closed,
    /// Written off.
    WrittenOff,
}

/// A disbursal.
#[derive(Debug, Clone)]
pub struct Disbursal {
    /// Loan id.
    pub loan_id: String,
    /// Customer id.
    pub customer_id: String,
    /// Principal, minor units.
    pub principal: Minor,
    /// Annual rate.
    pub rate: RateBps,
    /// Tenure, months.
    pub months: u32,
    /// Disbursal date.
    pub disbursed_on: NaiveDate,
    /// First due date.
    pub first_due_on: NaiveDate,
    /// Realisable value of the security, minor units (0: none).
    pub collateral: Minor,
    /// Purpose.
    pub purpose: schemas::Purpose,
    /// The scorer's PD on the decision.
    pub origination_pd: Option<f64>,
}

impl Disbursal {
    /// The disbursal an event announces, with what the book learns elsewhere: the purpose (from
    /// the application) and the origination PD (from the decision).
    pub fn from_event(
        d: &schemas::LoanDisbursed,
        purpose: schemas::Purpose,
        origination_pd: Option<f64>,
    ) -> Self {
        Disbursal {
            loan_id: d.loan_id.clone(),
            customer_id: d.customer_id.clone(),
            principal: d.principal,
            rate: RateBps::clamped(d.interest_rate_bps),
            months: u32::try_from(d.tenure_months).unwrap_or(1).max(1),
            disbursed_on: d.disbursed_on,
            first_due_on: d.first_due_on,
            collateral: d.collateral_value.unwrap_or(0).max(0),
            purpose,
            origination_pd,
        }
    }
}

/// One loan of the reference book.
#[derive(Debug, Clone)]
pub struct Loan {
    /// The terms it was disbursed on.
    pub terms: Disbursal,
    /// Its account.
    pub ledger: Ledger,
    /// Open, closed or written off.
    pub state: LoanState,
    /// Reported class after the last day-end.
    pub reported: ClassState,
    /// Stage after the last day-end.
    pub stage: Stage,
    /// Date marked as loss.
    pub loss_on: Option<NaiveDate>,
    /// Of a written-off loan: the arrears it was written off with, less recoveries.
    pub unrecovered_arrears: Minor,
    /// Principal written off.
    pub written_off_amount: Minor,
    /// Date written off.
    pub written_off_on: Option<NaiveDate>,
    /// Recovered after the write-off.
    pub recovered: Minor,
    /// Paid beyond what the loan owed: owed to the customer.
    pub surplus: Minor,
}

/// Why an event is refused (the aggregator dead-letters it with this class).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No disbursed loan has this id.
    #[error("no disbursed loan has this loan_id")]
    UnknownLoan,
    /// Dated before the loan's disbursal.
    #[error("dated before the loan's disbursal")]
    BeforeDisbursal,
    /// A zero or negative amount, or one beyond any loan.
    #[error("the amount must be positive and at most dpd::MAX_PAYMENT")]
    NonPositiveAmount,
    /// A write-off of a loan that is not open.
    #[error("the loan is not open")]
    NotOpen,
}

impl Refusal {
    /// Dead-letter class.
    pub fn class(self) -> &'static str {
        match self {
            Self::UnknownLoan => "unknown_loan",
            Self::BeforeDisbursal => "before_disbursal",
            Self::NonPositiveAmount => "invalid_amount",
            Self::NotOpen => "not_open",
        }
    }
}

/// A loan's figures after a day-end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figures {
    /// IRAC class code.
    pub class: String,
    /// NPA date.
    pub npa_since: Option<NaiveDate>,
    /// DPD.
    pub dpd: i32,
    /// Arrears.
    pub arrears: Minor,
    /// Outstanding principal.
    pub outstanding: Minor,
    /// IFRS 9 stage.
    pub stage: i16,
    /// IRAC provision.
    pub provision: Minor,
    /// ECL.
    pub ecl: Minor,
}

/// A recorded change of class or stage.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Transition {
    /// Loan id.
    pub loan_id: String,
    /// Business date.
    pub date: NaiveDate,
    /// From class code.
    pub from_class: String,
    /// To class code.
    pub to_class: String,
    /// From stage.
    pub from_stage: i16,
    /// To stage.
    pub to_stage: i16,
    /// Reason code.
    pub reason: String,
}

#[derive(Debug, Clone)]
enum Pending {
    Payment { loan: String, amount: Minor },
    WriteOff { loan: String },
}

/// A loan's current 12-month PD on `on`: that of its customer's latest decision made after the
/// disbursal date and before the end of `on` (`decisions`: the customer's decisions as (decided
/// at, PD), oldest first). None when there is none: the origination PD stands.
pub fn current_pd(
    l: &Loan,
    on: NaiveDate,
    decisions: &[(chrono::DateTime<chrono::Utc>, f64)],
) -> Option<f64> {
    let from = l
        .terms
        .disbursed_on
        .succ_opt()?
        .and_hms_opt(0, 0, 0)?
        .and_utc();
    let to = on.succ_opt()?.and_hms_opt(0, 0, 0)?.and_utc();
    decisions
        .iter()
        .rev()
        .find(|(at, _)| *at >= from && *at < to)
        .map(|(_, pd)| *pd)
}

/// What the payments counted from one business date did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Repayments {
    /// Payments booked.
    pub payments: i64,
    /// Amount received.
    pub amount: Minor,
    /// Paid to interest.
    pub to_interest: Minor,
    /// Paid to principal.
    pub to_principal: Minor,
    /// Beyond what loans owed (owed back to customers).
    pub surplus: Minor,
    /// Recovered on written-off loans.
    pub recovered: Minor,
    /// Instalments settled in full.
    pub settled: i64,
    /// Of those, settled on or before their due date.
    pub on_time: i64,
}

/// The reference book.
#[derive(Debug, Clone, Default)]
pub struct Book {
    /// Settings.
    pub domain: DomainSettings,
    /// Loans by id.
    pub loans: BTreeMap<String, Loan>,
    /// Last closed business date.
    pub last_closed: Option<NaiveDate>,
    /// Every change of class or stage.
    pub transitions: Vec<Transition>,
    /// Repayment counters by the business date payments count from.
    pub repayments: BTreeMap<NaiveDate, Repayments>,
    pending: Vec<(NaiveDate, u64, Pending)>,
    arrivals: u64,
}

impl Book {
    /// An empty book.
    pub fn new(domain: DomainSettings) -> Self {
        Book {
            domain,
            ..Book::default()
        }
    }

    /// The business date an event dated `date` counts from: its own, or the day after the last
    /// closed day when it arrives after its date's day-end (closed days are never restated).
    pub fn counted_on(&self, date: NaiveDate) -> NaiveDate {
        self.last_closed
            .and_then(|c| c.succ_opt())
            .map_or(date, |next| date.max(next))
    }

    fn effective_now(&self, date: NaiveDate) -> bool {
        self.last_closed
            .and_then(|c| c.succ_opt())
            .is_some_and(|next| date <= next)
    }

    /// Disburse a loan.
    pub fn disburse(&mut self, d: Disbursal) {
        let s = schedule(d.principal, d.rate, d.months, d.first_due_on);
        let ledger = Ledger::new(&s, d.rate, d.disbursed_on, self.domain.servicing.prepayment);
        self.loans.insert(
            d.loan_id.clone(),
            Loan {
                terms: d,
                ledger,
                state: LoanState::Active,
                reported: ClassState::STANDARD,
                stage: Stage::One,
                loss_on: None,
                unrecovered_arrears: 0,
                written_off_amount: 0,
                written_off_on: None,
                recovered: 0,
                surplus: 0,
            },
        );
    }

    /// Receive a payment; `Ok(None)` when it waits for its date's day-end.
    pub fn pay(
        &mut self,
        loan_id: &str,
        amount: Minor,
        paid_on: NaiveDate,
    ) -> Result<Option<Allocation>, Refusal> {
        let l = self.loans.get(loan_id).ok_or(Refusal::UnknownLoan)?;
        if amount <= 0 || amount > MAX_PAYMENT {
            return Err(Refusal::NonPositiveAmount);
        }
        if paid_on < l.terms.disbursed_on {
            return Err(Refusal::BeforeDisbursal);
        }
        if self.effective_now(paid_on) {
            Ok(Some(self.apply_payment(loan_id, amount, paid_on)))
        } else {
            self.arrivals += 1;
            self.pending.push((
                paid_on,
                self.arrivals,
                Pending::Payment {
                    loan: loan_id.into(),
                    amount,
                },
            ));
            Ok(None)
        }
    }

    fn apply_payment(&mut self, loan_id: &str, amount: Minor, paid_on: NaiveDate) -> Allocation {
        let counted_on = self.counted_on(paid_on);
        let Some(l) = self.loans.get_mut(loan_id) else {
            return Allocation::default();
        };
        let written_off = l.state == LoanState::WrittenOff;
        let a = match l.state {
            LoanState::Active => {
                let a = l.ledger.pay(amount, paid_on);
                l.surplus += a.surplus;
                if l.ledger.is_closed() {
                    l.state = LoanState::Closed;
                }
                a
            }
            LoanState::WrittenOff => {
                l.unrecovered_arrears = (l.unrecovered_arrears - amount).max(0);
                l.recovered += amount;
                Allocation::default()
            }
            LoanState::Closed => {
                l.surplus += amount;
                Allocation {
                    surplus: amount,
                    ..Allocation::default()
                }
            }
        };
        let r = self.repayments.entry(counted_on).or_default();
        r.payments += 1;
        r.amount += amount;
        r.to_interest += a.to_interest;
        r.to_principal += a.to_principal;
        r.surplus += a.surplus;
        if written_off {
            r.recovered += amount;
        }
        r.settled += a
            .settled
            .map_or(0, |(from, to)| i64::from(to) - i64::from(from) + 1);
        r.on_time += a.on_time;
        a
    }

    /// Write a loan off on `on`.
    pub fn write_off(&mut self, loan_id: &str, on: NaiveDate) -> Result<(), Refusal> {
        let l = self.loans.get(loan_id).ok_or(Refusal::UnknownLoan)?;
        if on < l.terms.disbursed_on {
            return Err(Refusal::BeforeDisbursal);
        }
        if l.state != LoanState::Active {
            return Err(Refusal::NotOpen);
        }
        if self.effective_now(on) {
            self.apply_write_off(loan_id, on);
        } else {
            self.arrivals += 1;
            self.pending.push((
                on,
                self.arrivals,
                Pending::WriteOff {
                    loan: loan_id.into(),
                },
            ));
        }
        Ok(())
    }

    fn apply_write_off(&mut self, loan_id: &str, on: NaiveDate) {
        let counted = self.counted_on(on);
        let Some(l) = self.loans.get_mut(loan_id) else {
            return;
        };
        if l.state != LoanState::Active {
            return;
        }
        let q = l.ledger.delinquency(on);
        l.state = LoanState::WrittenOff;
        l.written_off_on = Some(on);
        l.unrecovered_arrears = q.arrears;
        l.written_off_amount = q.outstanding_principal;
        self.transitions.push(Transition {
            loan_id: loan_id.into(),
            date: counted,
            from_class: l.reported.class.code().into(),
            to_class: l.reported.class.code().into(),
            from_stage: l.stage.number(),
            to_stage: l.stage.number(),
            reason: Reason::WriteOff.code().into(),
        });
    }

    /// Mark a loan as loss from `on` (the day-end of that date classifies it).
    pub fn mark_loss(&mut self, loan_id: &str, on: NaiveDate) -> Result<(), Refusal> {
        let l = self.loans.get_mut(loan_id).ok_or(Refusal::UnknownLoan)?;
        l.loss_on = Some(l.loss_on.map_or(on, |x| x.min(on)));
        Ok(())
    }

    /// Close business date `on`: apply what waited for it, then classify every borrower, stage
    /// every loan and record each change. `current_pd` gives a loan's current 12-month PD on
    /// `on`, where one exists.
    pub fn close_day(
        &mut self,
        on: NaiveDate,
        current_pd: &dyn Fn(&Loan, NaiveDate) -> Option<f64>,
    ) {
        let mut due: Vec<(NaiveDate, u64, Pending)> = Vec::new();
        let mut later = Vec::new();
        for p in self.pending.drain(..) {
            if p.0 <= on {
                due.push(p);
            } else {
                later.push(p);
            }
        }
        self.pending = later;
        due.sort_by_key(|p| (p.0, p.1));
        for (date, _, p) in due {
            match p {
                Pending::Payment { loan, amount } => {
                    self.apply_payment(&loan, amount, date);
                }
                Pending::WriteOff { loan } => self.apply_write_off(&loan, date),
            }
        }

        let irac = self.domain.irac.clone();
        let ifrs9 = self.domain.ifrs9.clone();
        let mut by_customer: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (id, l) in &self.loans {
            if l.state != LoanState::Closed {
                by_customer
                    .entry(l.terms.customer_id.clone())
                    .or_default()
                    .push(id.clone());
            }
        }
        for ids in by_customer.values() {
            let standings: Vec<Standing> = ids
                .iter()
                .map(|id| {
                    let l = &self.loans[id];
                    let active = l.state == LoanState::Active;
                    let q = l.ledger.delinquency(on);
                    Standing {
                        prev: l.reported,
                        active,
                        dpd: if active { q.dpd } else { 0 },
                        arrears: if active {
                            q.arrears
                        } else {
                            l.unrecovered_arrears
                        },
                        loss_on: l.loss_on.filter(|x| *x <= on),
                        written_off_on: l.written_off_on,
                    }
                })
                .collect();
            let reported = irac.classify_borrower(&standings, on);
            for ((id, r), st) in ids.iter().zip(reported).zip(&standings) {
                let Some(l) = self.loans.get_mut(id) else {
                    continue;
                };
                if l.state != LoanState::Active {
                    continue;
                }
                let (prev_class, prev_stage) = (l.reported.class, l.stage);
                l.reported = r;
                let pd_now = current_pd(l, on);
                l.stage = ifrs9.stage(st.dpd, r.class.is_npa(), pd_now, l.terms.origination_pd);
                if prev_class != l.reported.class || prev_stage != l.stage {
                    self.transitions.push(Transition {
                        loan_id: id.clone(),
                        date: on,
                        from_class: prev_class.code().into(),
                        to_class: l.reported.class.code().into(),
                        from_stage: prev_stage.number(),
                        to_stage: l.stage.number(),
                        reason: irac
                            .reason(prev_class, l.reported.class, st.dpd)
                            .code()
                            .into(),
                    });
                }
            }
        }
        // Closed loans fall back to Standard, stage 1, once.
        for (id, l) in self.loans.iter_mut() {
            if l.state == LoanState::Closed
                && (l.reported.class != AssetClass::Standard || l.stage != Stage::One)
            {
                self.transitions.push(Transition {
                    loan_id: id.clone(),
                    date: on,
                    from_class: l.reported.class.code().into(),
                    to_class: "STANDARD".into(),
                    from_stage: l.stage.number(),
                    to_stage: 1,
                    reason: Reason::Closed.code().into(),
                });
                l.reported = ClassState::STANDARD;
                l.stage = Stage::One;
            }
        }
        self.last_closed = Some(on);
    }

    /// A loan's figures at the day-end of `on` (the last one closed).
    pub fn figures(
        &self,
        loan_id: &str,
        on: NaiveDate,
        current_pd: &dyn Fn(&Loan, NaiveDate) -> Option<f64>,
    ) -> Option<Figures> {
        let l = self.loans.get(loan_id)?;
        let d = &self.domain;
        let active = l.state == LoanState::Active;
        let q = l.ledger.delinquency(on);
        let npa = l.reported.class.is_npa();
        let outstanding = if active { q.outstanding_principal } else { 0 };
        let ead = outstanding + if active { ead_interest(l, on, npa) } else { 0 };
        let pd12 = current_pd(l, on).or(l.terms.origination_pd).unwrap_or(0.0);
        let secured = is_secured(l.terms.collateral, outstanding);
        Some(Figures {
            class: l.reported.class.code().into(),
            npa_since: l.reported.npa_since,
            dpd: if active {
                i32::try_from(q.dpd).unwrap_or(i32::MAX)
            } else {
                0
            },
            arrears: if active { q.arrears } else { 0 },
            outstanding,
            stage: l.stage.number(),
            provision: if active {
                d.provisioning
                    .provision(l.reported.class, outstanding, l.terms.collateral)
            } else {
                0
            },
            ecl: if active {
                d.ifrs9.ecl(
                    l.stage,
                    pd12,
                    d.lgd.lgd_bps(l.terms.purpose, secured),
                    ead,
                    l.ledger.remaining_instalments(on),
                )
            } else {
                0
            },
        })
    }
}

/// Interest in a loan's exposure on `on`: its overdue interest, and for a performing loan the
/// interest accrued since the last due date (an NPA loan accrues none).
pub fn ead_interest(l: &Loan, on: NaiveDate, npa: bool) -> Minor {
    let q = l.ledger.delinquency(on);
    let overdue_interest = q.arrears - q.arrears_principal;
    overdue_interest
        + if npa {
            0
        } else {
            l.ledger.accrued_since_due(on)
        }
}
