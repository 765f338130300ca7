//! The breakdowns of a day's snapshot: NPA analysis by class, stage and DPD bucket,
//! repayments, the loan distribution and risk concentration.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use std::collections::BTreeMap;

use super::date::{ratio, resolve_date, QueryError};
use super::summary::summary;

/// One group of a breakdown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// Group key (class, stage, bucket, purpose, region, grade, status or vintage month).
    pub key: String,
    /// Loans in the group.
    pub loans: i64,
    /// Open loans in the group.
    pub active: i64,
    /// Outstanding principal, minor units.
    pub outstanding: i64,
    /// Share of the book's outstanding.
    pub share: f64,
    /// NPA outstanding, minor units.
    pub npa_amount: i64,
    /// Provisions, minor units.
    pub provisions: i64,
    /// ECL, minor units.
    pub ecl: i64,
    /// Principal disbursed, minor units.
    pub disbursed: i64,
    /// Loans ever 90+ DPD.
    pub defaulted: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Cell {
    loans: i64,
    active: i64,
    outstanding: i64,
    npa_amount: i64,
    provisions: i64,
    ecl: i64,
    disbursed: i64,
    defaulted: i64,
}

/// A breakdown column of the snapshot (`by_class`, `by_purpose`, …) as groups.
pub(super) async fn breakdown(
    pool: &PgPool,
    date: NaiveDate,
    column: &str,
) -> Result<Vec<Group>, QueryError> {
    // `column` is one of this module's constants, never user input.
    let json: serde_json::Value = sqlx::query_scalar(&format!(
        "SELECT {column} FROM portfolio_daily WHERE business_date = $1"
    ))
    .bind(date)
    .fetch_one(pool)
    .await?;
    let cells: BTreeMap<String, Cell> =
        serde_json::from_value(json).map_err(|source| QueryError::Snapshot {
            date,
            column: column.to_string(),
            source,
        })?;
    let total: i64 = cells.values().map(|c| c.outstanding).sum();
    Ok(cells
        .into_iter()
        .map(|(key, c)| Group {
            key,
            loans: c.loans,
            active: c.active,
            outstanding: c.outstanding,
            share: ratio(c.outstanding, total),
            npa_amount: c.npa_amount,
            provisions: c.provisions,
            ecl: c.ecl,
            disbursed: c.disbursed,
            defaulted: c.defaulted,
        })
        .collect())
}

/// NPA analysis: IRAC classes and IFRS 9 stages side by side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NpaAnalysis {
    /// Business date.
    pub business_date: NaiveDate,
    /// Gross NPA, minor units.
    pub gross_npa: i64,
    /// Net NPA, minor units.
    pub net_npa: i64,
    /// Gross NPA ratio.
    pub gross_npa_ratio: f64,
    /// Net NPA ratio.
    pub net_npa_ratio: f64,
    /// Provision coverage ratio.
    pub provision_coverage: f64,
    /// By IRAC class (STANDARD, SMA0-2, SUBSTANDARD, D1-D3, LOSS).
    pub by_class: Vec<Group>,
    /// By IFRS 9 stage.
    pub by_stage: Vec<Group>,
    /// By DPD bucket.
    pub by_dpd_bucket: Vec<Group>,
}

/// NPA analysis as of `as_of`.
pub async fn npa_analysis(
    pool: &PgPool,
    as_of: Option<NaiveDate>,
) -> Result<NpaAnalysis, QueryError> {
    let s = summary(pool, as_of).await?;
    let d = s.business_date;
    Ok(NpaAnalysis {
        business_date: d,
        gross_npa: s.npa_amount,
        net_npa: s.net_npa_amount,
        gross_npa_ratio: s.npa_ratio,
        net_npa_ratio: s.net_npa_ratio,
        provision_coverage: s.provision_coverage,
        by_class: breakdown(pool, d, "by_class").await?,
        by_stage: breakdown(pool, d, "by_stage").await?,
        by_dpd_bucket: breakdown(pool, d, "by_dpd_bucket").await?,
    })
}

/// Repayment statistics to a date (payments by the business date they count from).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepaymentStats {
    /// Business date.
    pub business_date: NaiveDate,
    /// Payments received.
    pub payments: i64,
    /// Amount collected, minor units.
    pub collected: i64,
    /// Of which interest.
    pub interest_collected: i64,
    /// Of which principal.
    pub principal_collected: i64,
    /// Paid beyond what loans owed (owed to customers), minor units.
    pub surplus: i64,
    /// Recovered on written-off loans, minor units.
    pub recovered: i64,
    /// Instalments settled in full.
    pub instalments_settled: i64,
    /// Share of settled instalments settled by their due date.
    pub on_time_rate: f64,
    /// Open loans by DPD bucket.
    pub by_dpd_bucket: Vec<Group>,
}

/// Repayment statistics as of `as_of`.
pub async fn repayment_stats(
    pool: &PgPool,
    as_of: Option<NaiveDate>,
) -> Result<RepaymentStats, QueryError> {
    let d = resolve_date(pool, as_of).await?;
    let r = sqlx::query!(
        "SELECT coalesce(sum(payments), 0)::int8 AS \"payments!\", \
           coalesce(sum(amount), 0)::int8 AS \"collected!\", \
           coalesce(sum(to_interest), 0)::int8 AS \"interest!\", \
           coalesce(sum(to_principal), 0)::int8 AS \"principal!\", \
           coalesce(sum(surplus), 0)::int8 AS \"surplus!\", \
           coalesce(sum(recovered), 0)::int8 AS \"recovered!\", \
           coalesce(sum(instalments_settled), 0)::int8 AS \"settled!\", \
           coalesce(sum(settled_on_time), 0)::int8 AS \"on_time!\" \
         FROM repayment_daily WHERE counted_on <= $1",
        d
    )
    .fetch_one(pool)
    .await?;
    Ok(RepaymentStats {
        business_date: d,
        payments: r.payments,
        collected: r.collected,
        interest_collected: r.interest,
        principal_collected: r.principal,
        surplus: r.surplus,
        recovered: r.recovered,
        instalments_settled: r.settled,
        on_time_rate: ratio(r.on_time, r.settled),
        by_dpd_bucket: breakdown(pool, d, "by_dpd_bucket").await?,
    })
}

/// Loans by purpose and by status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoanDistribution {
    /// Business date.
    pub business_date: NaiveDate,
    /// By purpose.
    pub by_purpose: Vec<Group>,
    /// By status (ACTIVE, CLOSED, WRITTEN_OFF).
    pub by_status: Vec<Group>,
    /// By risk grade.
    pub by_grade: Vec<Group>,
}

/// Loan distribution as of `as_of`.
pub async fn loan_distribution(
    pool: &PgPool,
    as_of: Option<NaiveDate>,
) -> Result<LoanDistribution, QueryError> {
    let d = resolve_date(pool, as_of).await?;
    Ok(LoanDistribution {
        business_date: d,
        by_purpose: breakdown(pool, d, "by_purpose").await?,
        by_status: breakdown(pool, d, "by_status").await?,
        by_grade: breakdown(pool, d, "by_grade").await?,
    })
}

/// Concentration of one dimension.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Concentration {
    /// Groups with their share of outstanding.
    pub groups: Vec<Group>,
    /// Herfindahl-Hirschman index of the shares (1 = one group holds everything).
    pub herfindahl: f64,
    /// Largest share.
    pub top_share: f64,
}

/// Risk concentration by purpose, region and grade.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskConcentration {
    /// Business date.
    pub business_date: NaiveDate,
    /// By purpose (product).
    pub by_purpose: Concentration,
    /// By region.
    pub by_region: Concentration,
    /// By risk grade.
    pub by_grade: Concentration,
}

fn concentration(groups: Vec<Group>) -> Concentration {
    let herfindahl = groups.iter().map(|g| g.share * g.share).sum();
    let top_share = groups.iter().map(|g| g.share).fold(0.0, f64::max);
    Concentration {
        groups,
        herfindahl,
        top_share,
    }
}

/// Risk concentration as of `as_of`.
pub async fn risk_concentration(
    pool: &PgPool,
    as_of: Option<NaiveDate>,
) -> Result<RiskConcentration, QueryError> {
    let d = resolve_date(pool, as_of).await?;
    Ok(RiskConcentration {
        business_date: d,
        by_purpose: concentration(breakdown(pool, d, "by_purpose").await?),
        by_region: concentration(breakdown(pool, d, "by_region").await?),
        by_grade: concentration(breakdown(pool, d, "by_grade").await?),
    })
}
