//! The read side: portfolio figures as of the last closed business date, or any earlier one.
//!
//! Every portfolio read comes from the maintained aggregates (`portfolio_daily`,
//! `repayment_daily`, `vintage_hits`, `roll_rates`), so its cost does not grow with the book.
//! Money is minor units; ratios are fractions (0.05 = 5%).
//!
//! # Layout
//! - this module: the date a read answers for and the portfolio summary;
//! - `breakdowns`: the snapshot's breakdowns (NPA analysis, repayments, distribution,
//!   concentration);
//! - `curves`: vintage curves, roll-rate matrices and the trend.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

mod breakdowns;
mod curves;

pub use breakdowns::{
    loan_distribution, npa_analysis, repayment_stats, risk_concentration, Concentration, Group,
    LoanDistribution, NpaAnalysis, RepaymentStats, RiskConcentration,
};
pub use curves::{
    roll_rates, trend, vintage_curves, RollCell, RollRates, Trend, TrendPoint, VintageCurve,
    Vintages,
};

/// Why a query has no answer.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// No business day has been closed (on or before the date asked).
    #[error("no business day has been closed{}", .0.map(|d| format!(" on or before {d}")).unwrap_or_default())]
    NoClosedDay(Option<NaiveDate>),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// A stored snapshot column does not read as its breakdown (a defect, never an empty
    /// breakdown).
    #[error("the snapshot of {date} has a malformed {column}")]
    Snapshot {
        /// Business date.
        date: NaiveDate,
        /// Column.
        column: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// Seed-compatible summary plus the regulatory figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortfolioSummary {
    /// Business date the figures are as of.
    pub business_date: NaiveDate,
    /// Loans ever disbursed (to that date).
    pub total_loans: i64,
    /// Loans open.
    pub active_loans: i64,
    /// Loans ever 90+ DPD.
    pub defaulted_loans: i64,
    /// Loans repaid in full.
    pub closed_loans: i64,
    /// Loans written off.
    pub written_off_loans: i64,
    /// Principal disbursed, minor units.
    pub total_disbursed: i64,
    /// Outstanding principal of open loans, minor units.
    pub outstanding: i64,
    /// Outstanding principal of NPA loans (gross NPA), minor units.
    pub npa_amount: i64,
    /// NPA loans.
    pub npa_loans: i64,
    /// Gross NPA ratio.
    pub npa_ratio: f64,
    /// Net NPA ratio: (gross NPA − NPA provisions) / (outstanding − NPA provisions).
    pub net_npa_ratio: f64,
    /// Net NPA amount, minor units.
    pub net_npa_amount: i64,
    /// Provisions held on NPAs, minor units.
    pub npa_provisions: i64,
    /// All IRAC provisions, minor units.
    pub provisions: i64,
    /// Provision coverage ratio: NPA provisions / gross NPA.
    pub provision_coverage: f64,
    /// Outstanding with DPD > 30 over outstanding.
    pub par30: f64,
    /// Outstanding with DPD > 90 over outstanding.
    pub par90: f64,
    /// IFRS 9 expected credit loss, minor units.
    pub ecl: i64,
    /// Loans ever 90+ DPD over loans disbursed.
    pub default_rate: f64,
    /// Approved over approved and declined applications (referred ones are not decided yet);
    /// applications submitted on or before the date, whenever scored: a replayed or re-scored
    /// application counts on its submission date.
    pub approval_rate: f64,
    /// Referred over all applications scored.
    pub referral_rate: f64,
    /// Applications submitted to date and scored (approved, referred or declined).
    pub decided: i64,
    /// Applications approved.
    pub approved: i64,
    /// Applications referred for manual review.
    pub referred: i64,
    /// Applications declined.
    pub declined: i64,
    /// Principal written off, minor units.
    pub written_off_amount: i64,
    /// Repayments collected to date, minor units.
    pub collected: i64,
}

/// Approved over approved and declined (DOMAIN.md: referred applications are not decided yet).
fn approval_rate(approved: i64, declined: i64) -> f64 {
    ratio(approved, approved + declined)
}

fn ratio(n: i64, d: i64) -> f64 {
    if d > 0 {
        n as f64 / d as f64
    } else {
        0.0
    }
}

/// The closed business date a query answers for: the latest closed on or before `as_of`.
pub async fn resolve_date(
    pool: &PgPool,
    as_of: Option<NaiveDate>,
) -> Result<NaiveDate, QueryError> {
    let date: Option<NaiveDate> = sqlx::query_scalar!(
        "SELECT max(business_date) FROM portfolio_daily \
         WHERE $1::date IS NULL OR business_date <= $1",
        as_of
    )
    .fetch_one(pool)
    .await?;
    date.ok_or(QueryError::NoClosedDay(as_of))
}

/// The portfolio summary as of `as_of` (default: the last closed business date).
pub async fn summary(
    pool: &PgPool,
    as_of: Option<NaiveDate>,
) -> Result<PortfolioSummary, QueryError> {
    let date = resolve_date(pool, as_of).await?;
    let r = sqlx::query!(
        "SELECT total_loans, active_loans, defaulted_loans, closed_loans, written_off_loans, \
           total_disbursed, outstanding, npa_amount, npa_loans, npa_provisions, provisions, \
           par30, par90, ecl, decided, approved, referred, declined, written_off_amount, \
           collected \
         FROM portfolio_daily WHERE business_date = $1",
        date
    )
    .fetch_one(pool)
    .await?;
    let (total, outstanding, npa, npa_prov) =
        (r.total_loans, r.outstanding, r.npa_amount, r.npa_provisions);
    let (decided, approved) = (r.decided, r.approved);
    Ok(PortfolioSummary {
        business_date: date,
        total_loans: total,
        active_loans: r.active_loans,
        defaulted_loans: r.defaulted_loans,
        closed_loans: r.closed_loans,
        written_off_loans: r.written_off_loans,
        total_disbursed: r.total_disbursed,
        outstanding,
        npa_amount: npa,
        npa_loans: r.npa_loans,
        npa_ratio: ratio(npa, outstanding),
        net_npa_ratio: ratio(npa - npa_prov, outstanding - npa_prov),
        net_npa_amount: npa - npa_prov,
        npa_provisions: npa_prov,
        provisions: r.provisions,
        provision_coverage: ratio(npa_prov, npa),
        par30: ratio(r.par30, outstanding),
        par90: ratio(r.par90, outstanding),
        ecl: r.ecl,
        default_rate: ratio(r.defaulted_loans, total),
        approval_rate: approval_rate(approved, r.declined),
        referral_rate: ratio(r.referred, decided),
        decided,
        approved,
        referred: r.referred,
        declined: r.declined,
        written_off_amount: r.written_off_amount,
        collected: r.collected,
    })
}
