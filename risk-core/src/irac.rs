//! RBI IRAC asset classification: SMA buckets, NPA and its ageing sub-classes, Loss.

use chrono::{Months, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::money::Minor;

/// IRAC asset class of a loan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AssetClass {
    /// Performing, nothing overdue.
    Standard,
    /// Special mention, DPD 1-30.
    Sma0,
    /// Special mention, DPD 31-60.
    Sma1,
    /// Special mention, DPD 61-90.
    Sma2,
    /// NPA for up to 12 months.
    SubStandard,
    /// Doubtful, NPA 12-24 months.
    Doubtful1,
    /// Doubtful, NPA 24-48 months.
    Doubtful2,
    /// Doubtful, NPA over 48 months.
    Doubtful3,
    /// Marked as loss by the lender.
    Loss,
}

impl AssetClass {
    /// Whether the class is non-performing.
    pub fn is_npa(self) -> bool {
        self >= Self::SubStandard
    }

    /// Stable code used in the database and reports.
    pub fn code(self) -> &'static str {
        match self {
            Self::Standard => "STANDARD",
            Self::Sma0 => "SMA0",
            Self::Sma1 => "SMA1",
            Self::Sma2 => "SMA2",
            Self::SubStandard => "SUBSTANDARD",
            Self::Doubtful1 => "D1",
            Self::Doubtful2 => "D2",
            Self::Doubtful3 => "D3",
            Self::Loss => "LOSS",
        }
    }

    /// Parse a [`AssetClass::code`].
    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "STANDARD" => Self::Standard,
            "SMA0" => Self::Sma0,
            "SMA1" => Self::Sma1,
            "SMA2" => Self::Sma2,
            "SUBSTANDARD" => Self::SubStandard,
            "D1" => Self::Doubtful1,
            "D2" => Self::Doubtful2,
            "D3" => Self::Doubtful3,
            "LOSS" => Self::Loss,
            _ => return None,
        })
    }
}

/// IRAC thresholds. Defaults are the RBI master circular's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IracSettings {
    /// Highest DPD of SMA-0 (30).
    pub sma0_max_dpd: u32,
    /// Highest DPD of SMA-1 (60).
    pub sma1_max_dpd: u32,
    /// Highest DPD before NPA, i.e. of SMA-2 (90): NPA when DPD exceeds it.
    pub npa_after_dpd: u32,
    /// Months as NPA up to which a loan is Sub-standard (12).
    pub substandard_months: u32,
    /// Months as NPA up to which a loan is Doubtful-1 (24).
    pub d1_months: u32,
    /// Months as NPA up to which a loan is Doubtful-2 (48); beyond, Doubtful-3.
    pub d2_months: u32,
}

impl Default for IracSettings {
    fn default() -> Self {
        Self {
            sma0_max_dpd: 30,
            sma1_max_dpd: 60,
            npa_after_dpd: 90,
            substandard_months: 12,
            d1_months: 24,
            d2_months: 48,
        }
    }
}

/// Classification state kept per loan between day-ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassState {
    /// Current class.
    pub class: AssetClass,
    /// Business date the loan (or, borrower-wise, the borrower) became NPA.
    pub npa_since: Option<NaiveDate>,
}

impl ClassState {
    /// A new, performing loan.
    pub const STANDARD: ClassState = ClassState {
        class: AssetClass::Standard,
        npa_since: None,
    };
}

impl IracSettings {
    /// Class of a performing loan by its DPD.
    pub fn performing_class(&self, dpd: u32) -> AssetClass {
        match dpd {
            0 => AssetClass::Standard,
            d if d <= self.sma0_max_dpd => AssetClass::Sma0,
            d if d <= self.sma1_max_dpd => AssetClass::Sma1,
            _ => AssetClass::Sma2,
        }
    }

    /// NPA sub-class by time spent as NPA (not by DPD). The NPA date is the first day as NPA,
    /// so the class moves on the anniversary: NPA on 29 Jun 2025 is Doubtful-1 on 29 Jun 2026.
    pub fn npa_class(&self, npa_since: NaiveDate, on: NaiveDate) -> AssetClass {
        let after = |months: u32| npa_since.checked_add_months(Months::new(months));
        let within = |months: u32| after(months).is_none_or(|limit| on < limit);
        if within(self.substandard_months) {
            AssetClass::SubStandard
        } else if within(self.d1_months) {
            AssetClass::Doubtful1
        } else if within(self.d2_months) {
            AssetClass::Doubtful2
        } else {
            AssetClass::Doubtful3
        }
    }

    /// Classify one loan at the day-end of `on`, from its previous state and its delinquency.
    ///
    /// - Loss is an action ([`mark_loss`]) and is never undone here.
    /// - An NPA is upgraded only when all arrears are paid (`arrears == 0`); a partial payment
    ///   that lowers DPD leaves it NPA, ageing from its original NPA date.
    /// - A performing loan becomes NPA, dated `on`, when DPD exceeds the threshold.
    pub fn classify(
        &self,
        prev: ClassState,
        dpd: u32,
        arrears: Minor,
        on: NaiveDate,
    ) -> ClassState {
        if prev.class == AssetClass::Loss {
            return prev;
        }
        if let Some(since) = prev.npa_since {
            if arrears > 0 || dpd > 0 {
                return ClassState {
                    class: self.npa_class(since, on),
                    npa_since: Some(since),
                };
            }
            return ClassState {
                class: AssetClass::Standard,
                npa_since: None,
            };
        }
        if dpd > self.npa_after_dpd {
            return ClassState {
                class: AssetClass::SubStandard,
                npa_since: Some(on),
            };
        }
        ClassState {
            class: self.performing_class(dpd),
            npa_since: None,
        }
    }

    /// Borrower-wise classification: when any loan of a borrower is NPA, all of that borrower's
    /// loans are NPA, aged from the borrower's earliest NPA date. `loans` are one borrower's own
    /// (loan-level) states; the result is the reported state of each, in the same order.
    pub fn borrower_wise(&self, loans: &[ClassState], on: NaiveDate) -> Vec<ClassState> {
        let earliest = loans.iter().filter_map(|l| l.npa_since).min();
        match earliest {
            None => loans.to_vec(),
            Some(since) => loans
                .iter()
                .map(|l| {
                    if l.class == AssetClass::Loss {
                        *l
                    } else {
                        ClassState {
                            class: self.npa_class(since, on),
                            npa_since: Some(since),
                        }
                    }
                })
                .collect(),
        }
    }
}

/// One of a borrower's loans as the day-end of a date sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// Reported state after the previous day-end.
    pub prev: ClassState,
    /// Open (not closed, not written off).
    pub active: bool,
    /// DPD on the date (0 unless active).
    pub dpd: u32,
    /// Overdue amount unpaid: of an open loan, its arrears; of a written-off loan, the arrears
    /// it was written off with that are not yet recovered.
    pub arrears: Minor,
    /// Date the lender marked it as loss, if on or before the date.
    pub loss_on: Option<NaiveDate>,
    /// Date it was written off, if it was.
    pub written_off_on: Option<NaiveDate>,
}

/// Why a loan's reported class changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Its own DPD moved it (between SMA buckets, or into NPA).
    Dpd,
    /// Another loan of the borrower made it NPA.
    Borrower,
    /// Every arrear of every loan of the borrower is paid: back to Standard.
    Upgrade,
    /// Its time as NPA moved it to the next sub-class.
    Age,
    /// The lender marked it as loss.
    Loss,
    /// It was written off.
    WriteOff,
    /// It was repaid in full.
    Closed,
    /// Its IFRS 9 stage alone changed.
    Stage,
}

impl Reason {
    /// Stable code used in the database.
    pub fn code(self) -> &'static str {
        match self {
            Self::Dpd => "dpd",
            Self::Borrower => "borrower",
            Self::Upgrade => "upgrade",
            Self::Age => "age",
            Self::Loss => "loss",
            Self::WriteOff => "write_off",
            Self::Closed => "closed",
            Self::Stage => "stage",
        }
    }
}

impl IracSettings {
    /// Classify every loan of one borrower at the day-end of `on` (the reported states, in the
    /// order given; a loan that is not active keeps its state).
    ///
    /// - Loss is an action and is kept; a loss loan's NPA date is its own (or the loss date).
    /// - The borrower is NPA from the earliest NPA date of their loans, and every open loan
    ///   carries that date and its sub-class by time as NPA.
    /// - A borrower who was NPA stays NPA while any of their loans has an arrear unpaid,
    ///   including the unrecovered arrears of a written-off loan (RBI, 12 Nov 2021): clearing
    ///   one loan's arrears upgrades nothing while another's remain.
    /// - A borrower who was not NPA becomes NPA, dated `on`, when an open loan's DPD exceeds the
    ///   threshold.
    /// - A written-off loan whose arrears are not recovered keeps the borrower NPA from its own
    ///   NPA date (or its write-off date): writing a loan off is no way out of borrower-wise NPA.
    pub fn classify_borrower(&self, loans: &[Standing], on: NaiveDate) -> Vec<ClassState> {
        let is_loss = |l: &Standing| {
            l.active && (l.prev.class == AssetClass::Loss || l.loss_on.is_some_and(|x| x <= on))
        };
        let loss_since = |l: &Standing| l.prev.npa_since.or(l.loss_on);
        let was = loans
            .iter()
            .filter(|l| l.active && !is_loss(l))
            .filter_map(|l| l.prev.npa_since)
            .min();
        let any_arrears = loans.iter().any(|l| l.arrears > 0 || l.dpd > 0);
        let stays = was.filter(|_| any_arrears);
        let new = loans
            .iter()
            .any(|l| l.active && !is_loss(l) && l.dpd > self.npa_after_dpd)
            .then_some(on);
        let losses = loans.iter().filter(|l| is_loss(l)).filter_map(loss_since);
        let written_off = loans
            .iter()
            .filter(|l| !l.active && l.written_off_on.is_some() && l.arrears > 0)
            .filter_map(|l| l.prev.npa_since.or(l.written_off_on));
        let since = stays
            .into_iter()
            .chain(new)
            .chain(losses)
            .chain(written_off)
            .min();
        loans
            .iter()
            .map(|l| {
                if !l.active {
                    l.prev
                } else if is_loss(l) {
                    ClassState {
                        class: AssetClass::Loss,
                        npa_since: loss_since(l),
                    }
                } else if let Some(s) = since {
                    ClassState {
                        class: self.npa_class(s, on),
                        npa_since: Some(s),
                    }
                } else {
                    ClassState {
                        class: self.performing_class(l.dpd),
                        npa_since: None,
                    }
                }
            })
            .collect()
    }

    /// Why a loan moved from `from` to `to` (for a loan still open), given its own DPD.
    pub fn reason(&self, from: AssetClass, to: AssetClass, dpd: u32) -> Reason {
        match (from.is_npa(), to.is_npa()) {
            _ if from == to => Reason::Stage,
            _ if to == AssetClass::Loss => Reason::Loss,
            (true, false) => Reason::Upgrade,
            (false, true) if dpd > self.npa_after_dpd => Reason::Dpd,
            (false, true) => Reason::Borrower,
            (true, true) => Reason::Age,
            (false, false) => Reason::Dpd,
        }
    }
}

/// Mark a loan as loss: the lender's decision, whatever its age.
pub fn mark_loss(prev: ClassState, on: NaiveDate) -> ClassState {
    ClassState {
        class: AssetClass::Loss,
        npa_since: prev.npa_since.or(Some(on)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn sma_buckets_follow_dpd() {
        let s = IracSettings::default();
        assert_eq!(s.performing_class(0), AssetClass::Standard);
        assert_eq!(s.performing_class(1), AssetClass::Sma0);
        assert_eq!(s.performing_class(30), AssetClass::Sma0);
        assert_eq!(s.performing_class(31), AssetClass::Sma1);
        assert_eq!(s.performing_class(61), AssetClass::Sma2);
        assert_eq!(s.performing_class(90), AssetClass::Sma2);
    }

    #[test]
    fn npa_sub_classes_age_by_time_as_npa() {
        let s = IracSettings::default();
        let since = d(2026, 6, 29);
        assert_eq!(s.npa_class(since, d(2027, 6, 28)), AssetClass::SubStandard);
        assert_eq!(s.npa_class(since, d(2027, 6, 29)), AssetClass::Doubtful1);
        assert_eq!(s.npa_class(since, d(2028, 6, 28)), AssetClass::Doubtful1);
        assert_eq!(s.npa_class(since, d(2028, 6, 29)), AssetClass::Doubtful2);
        assert_eq!(s.npa_class(since, d(2030, 6, 28)), AssetClass::Doubtful2);
        assert_eq!(s.npa_class(since, d(2030, 6, 29)), AssetClass::Doubtful3);
    }

    #[test]
    fn a_partial_payment_leaves_an_npa_as_npa() {
        let s = IracSettings::default();
        let npa = ClassState {
            class: AssetClass::SubStandard,
            npa_since: Some(d(2026, 6, 29)),
        };
        let after = s.classify(npa, 40, 5_000, d(2026, 7, 15));
        assert!(after.class.is_npa());
        assert_eq!(after.npa_since, Some(d(2026, 6, 29)));
    }

    #[test]
    fn paying_all_arrears_upgrades_an_npa_to_standard() {
        let s = IracSettings::default();
        let npa = ClassState {
            class: AssetClass::SubStandard,
            npa_since: Some(d(2026, 6, 29)),
        };
        assert_eq!(s.classify(npa, 0, 0, d(2026, 7, 15)), ClassState::STANDARD);
    }

    #[test]
    fn loss_is_kept_whatever_is_paid() {
        let s = IracSettings::default();
        let lost = mark_loss(ClassState::STANDARD, d(2026, 1, 1));
        assert_eq!(
            s.classify(lost, 0, 0, d(2026, 2, 1)).class,
            AssetClass::Loss
        );
    }

    #[test]
    fn one_npa_loan_makes_all_the_borrowers_loans_npa() {
        let s = IracSettings::default();
        let on = d(2026, 7, 1);
        let own = [
            ClassState::STANDARD,
            ClassState {
                class: AssetClass::SubStandard,
                npa_since: Some(d(2026, 6, 29)),
            },
        ];
        let reported = s.borrower_wise(&own, on);
        assert!(reported.iter().all(|l| l.class.is_npa()));
        assert!(reported.iter().all(|l| l.npa_since == Some(d(2026, 6, 29))));
    }
}
