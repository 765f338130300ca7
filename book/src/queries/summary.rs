//! The portfolio summary: the seed's fields and the regulatory figures of one closed day.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use super::date::{approval_rate, ratio, resolve_date, QueryError};

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
