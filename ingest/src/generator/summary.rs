//! Counts and outcome statistics gathered while generating.

use risk_core::metrics::BinnedAuc;
use risk_core::money::Minor;
use risk_core::scoring::GradeBands;
use schemas::Outcome;
use serde::Serialize;

use super::servicing::Loan;
use super::settings::GeneratorSettings;

/// Default rate of matured loans in one grade of true PD.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GradeRow {
    /// Grade A-E of the true PD.
    pub grade: &'static str,
    /// Matured loans.
    pub loans: u64,
    /// Of which DPD > 90 within 12 months.
    pub defaults: u64,
    /// Observed rate.
    pub default_rate: f64,
    /// Mean true PD.
    pub mean_true_pd: f64,
}

/// What a run produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Seed used.
    pub seed: u64,
    /// New customers.
    pub customers: u64,
    /// Applications.
    pub applications: u64,
    /// Legacy approvals.
    pub approved: u64,
    /// Legacy referrals.
    pub referred: u64,
    /// Legacy declines.
    pub declined: u64,
    /// Approved / (approved + declined): referrals are not decided yet.
    pub approval_rate: f64,
    /// Referred / all applications.
    pub referral_rate: f64,
    /// Loans disbursed.
    pub disbursed: u64,
    /// Principal disbursed, minor units.
    pub disbursed_amount: Minor,
    /// Payments.
    pub payments: u64,
    /// Paid, minor units.
    pub paid_amount: Minor,
    /// Part-prepayments (instalments paid in advance).
    pub prepayments: u64,
    /// Foreclosures.
    pub foreclosures: u64,
    /// Write-offs.
    pub write_offs: u64,
    /// Loans marked as loss.
    pub losses: u64,
    /// Loan events written (including day-end ticks).
    pub events: u64,
    /// Business days simulated.
    pub business_days: u64,
    /// Disbursed loans whose 12-month window ended inside the simulation.
    pub matured_loans: u64,
    /// Of which DPD > 90 within 12 months.
    pub defaults_12m: u64,
    /// Observed 12-month default rate of matured loans.
    pub observed_default_rate: f64,
    /// Configured target.
    pub target_default_rate: f64,
    /// Mean true PD of matured loans.
    pub mean_true_pd: f64,
    /// AUC of the true PD against the observed outcomes: the best any model can do.
    pub true_pd_auc: Option<f64>,
    /// By grade of true PD.
    pub by_grade: Vec<GradeRow>,
    /// Calibrated intercept of the causal model.
    pub intercept: f64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Running counts.
#[derive(Debug, Default)]
pub struct Tally {
    pub(crate) customers: u64,
    pub(crate) approved: u64,
    pub(crate) referred: u64,
    pub(crate) declined: u64,
    pub(crate) disbursed: u64,
    pub(crate) disbursed_amount: Minor,
    pub(crate) payments: u64,
    pub(crate) paid_amount: Minor,
    pub(crate) prepayments: u64,
    pub(crate) foreclosures: u64,
    pub(crate) write_offs: u64,
    pub(crate) losses: u64,
    pub(crate) events: u64,
    pub(crate) business_days: u64,
    matured: u64,
    defaults: u64,
    pd_sum: f64,
    auc: BinnedAuc,
    grade_loans: [u64; 5],
    grade_defaults: [u64; 5],
    grade_pd: [f64; 5],
}

impl Tally {
    pub(crate) fn decided(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Approve => self.approved += 1,
            Outcome::Refer => self.referred += 1,
            Outcome::Decline => self.declined += 1,
        }
    }

    /// Count a matured loan's outcome once.
    pub(crate) fn outcome(&mut self, loan: &mut Loan) {
        if loan.outcome_counted {
            return;
        }
        loan.outcome_counted = true;
        self.matured += 1;
        self.pd_sum += loan.true_pd;
        self.auc.add(loan.true_pd, loan.defaulted_12m);
        let grade = GradeBands::default().grade(loan.true_pd);
        let g = usize::from(grade.as_bytes()[0] - b'A').min(4);
        self.grade_loans[g] += 1;
        self.grade_pd[g] += loan.true_pd;
        if loan.defaulted_12m {
            self.defaults += 1;
            self.grade_defaults[g] += 1;
        }
    }

    pub(crate) fn summary(
        &self,
        settings: &GeneratorSettings,
        intercept: f64,
        seconds: f64,
    ) -> Summary {
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let decided = self.approved + self.referred + self.declined;
        Summary {
            seed: settings.seed,
            customers: self.customers,
            applications: decided,
            approved: self.approved,
            referred: self.referred,
            declined: self.declined,
            approval_rate: ratio(self.approved, self.approved + self.declined),
            referral_rate: ratio(self.referred, decided),
            disbursed: self.disbursed,
            disbursed_amount: self.disbursed_amount,
            payments: self.payments,
            paid_amount: self.paid_amount,
            prepayments: self.prepayments,
            foreclosures: self.foreclosures,
            write_offs: self.write_offs,
            losses: self.losses,
            events: self.events,
            business_days: self.business_days,
            matured_loans: self.matured,
            defaults_12m: self.defaults,
            observed_default_rate: ratio(self.defaults, self.matured),
            target_default_rate: settings.target_default_rate,
            mean_true_pd: if self.matured == 0 {
                0.0
            } else {
                self.pd_sum / self.matured as f64
            },
            true_pd_auc: self.auc.auc(),
            by_grade: ["A", "B", "C", "D", "E"]
                .iter()
                .enumerate()
                .map(|(i, grade)| GradeRow {
                    grade,
                    loans: self.grade_loans[i],
                    defaults: self.grade_defaults[i],
                    default_rate: ratio(self.grade_defaults[i], self.grade_loans[i]),
                    mean_true_pd: if self.grade_loans[i] == 0 {
                        0.0
                    } else {
                        self.grade_pd[i] / self.grade_loans[i] as f64
                    },
                })
                .collect(),
            intercept,
            seconds,
        }
    }
}

impl Summary {
    /// A human-readable report.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let pct = |x: f64| format!("{:.2}%", 100.0 * x);
        s.push_str(&format!(
            "customers {}  applications {}  approved {} ({} of decided)  referred {} ({})  declined {}\n",
            self.customers,
            self.applications,
            self.approved,
            pct(self.approval_rate),
            self.referred,
            pct(self.referral_rate),
            self.declined
        ));
        s.push_str(&format!(
            "loans disbursed {}  payments {}  prepayments {}  foreclosures {}  write-offs {}  losses {}  events {}\n",
            self.disbursed,
            self.payments,
            self.prepayments,
            self.foreclosures,
            self.write_offs,
            self.losses,
            self.events
        ));
        s.push_str(&format!(
            "matured loans {}  12-month defaults {}  observed default rate {} (target {})  mean true PD {}\n",
            self.matured_loans,
            self.defaults_12m,
            pct(self.observed_default_rate),
            pct(self.target_default_rate),
            pct(self.mean_true_pd)
        ));
        s.push_str(&format!(
            "true-PD AUC (the best any model can reach) {}\n",
            self.true_pd_auc.map_or("n/a".into(), |a| format!("{a:.4}"))
        ));
        s.push_str("grade  loans  defaults  default rate  mean true PD\n");
        for g in &self.by_grade {
            s.push_str(&format!(
                "{:<5}  {:>5}  {:>8}  {:>12}  {:>12}\n",
                g.grade,
                g.loans,
                g.defaults,
                pct(g.default_rate),
                pct(g.mean_true_pd)
            ));
        }
        s.push_str(&format!("{:.1} s\n", self.seconds));
        s
    }
}
