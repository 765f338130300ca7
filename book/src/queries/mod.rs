//! The read side: portfolio figures as of the last closed business date, or any earlier one.
//!
//! Every portfolio read comes from the maintained aggregates (`portfolio_daily`,
//! `repayment_daily`, `vintage_hits`, `roll_rates`), so its cost does not grow with the book.
//! Money is minor units; ratios are fractions (0.05 = 5%).
//!
//! # Layout
//! - `date`: the errors, the closed business date a read answers for, ratios;
//! - `summary`: the portfolio summary;
//! - `breakdowns`: the snapshot's breakdowns (NPA analysis, repayments, distribution,
//!   concentration);
//! - `curves`: vintage curves, roll-rate matrices and the trend.

mod breakdowns;
mod curves;
mod date;
mod summary;

pub use date::{resolve_date, QueryError};
pub use summary::{summary, PortfolioSummary};

pub use breakdowns::{
    loan_distribution, npa_analysis, repayment_stats, risk_concentration, Concentration, Group,
    LoanDistribution, NpaAnalysis, RepaymentStats, RiskConcentration,
};
pub use curves::{
    roll_rates, trend, vintage_curves, RollCell, RollRates, Trend, TrendPoint, VintageCurve,
    Vintages,
};
