//! The read side: portfolio figures as of the last closed business date, or any earlier one.
//!
//! Every portfolio read comes from the maintained aggregates (`portfolio_daily`,
//! `repayment_daily`, `vintage_hits`, `roll_rates`), so its cost does not grow with the book.
//! Money is minor units; ratios are fractions (0.05 = 5%).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

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
async fn breakdown(pool: &PgPool, date: NaiveDate, column: &str) -> Result<Vec<Group>, QueryError> {
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

/// One vintage's curve: share of its loans ever past a DPD threshold by month on book.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VintageCurve {
    /// Origination month (first day).
    pub vintage: NaiveDate,
    /// Loans disbursed in the month.
    pub loans: i64,
    /// Cumulative share ever 30+ DPD at months on book 0, 1, 2, …
    pub ever_30: Vec<f64>,
    /// Cumulative share ever 60+ DPD.
    pub ever_60: Vec<f64>,
    /// Cumulative share ever 90+ DPD.
    pub ever_90: Vec<f64>,
}

/// Vintage curves as of a business date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vintages {
    /// Business date answered for.
    pub business_date: NaiveDate,
    /// One curve per origination month, oldest first.
    pub vintages: Vec<VintageCurve>,
}

/// Vintage curves as of `as_of`.
pub async fn vintage_curves(
    pool: &PgPool,
    as_of: Option<NaiveDate>,
) -> Result<Vintages, QueryError> {
    let d = resolve_date(pool, as_of).await?;
    let groups = breakdown(pool, d, "by_vintage").await?;
    let hits: Vec<(NaiveDate, i16, i32, i64)> = sqlx::query!(
        "SELECT vintage, threshold, mob, sum(loans)::int8 AS \"loans!\" FROM vintage_hits \
         WHERE business_date <= $1 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        d
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|h| (h.vintage, h.threshold, h.mob, h.loans))
    .collect();
    let mut out = Vec::new();
    for g in groups {
        let Ok(vintage) = g.key.parse::<NaiveDate>() else {
            continue;
        };
        let months = chrono::Datelike::year(&d) * 12 + chrono::Datelike::month0(&d) as i32
            - (chrono::Datelike::year(&vintage) * 12 + chrono::Datelike::month0(&vintage) as i32);
        let len = usize::try_from(months.max(0) + 1).unwrap_or(1);
        let mut curves = [vec![0i64; len], vec![0i64; len], vec![0i64; len]];
        for (v, threshold, mob, n) in hits.iter().filter(|h| h.0 == vintage) {
            let which = match threshold {
                30 => 0,
                60 => 1,
                _ => 2,
            };
            if let Some(cell) = usize::try_from(*mob)
                .ok()
                .and_then(|m| curves[which].get_mut(m))
            {
                *cell += n;
            }
            let _ = v;
        }
        let cumulative = |c: &Vec<i64>| -> Vec<f64> {
            let mut sum = 0;
            c.iter()
                .map(|n| {
                    sum += n;
                    ratio(sum, g.loans)
                })
                .collect()
        };
        out.push(VintageCurve {
            vintage,
            loans: g.loans,
            ever_30: cumulative(&curves[0]),
            ever_60: cumulative(&curves[1]),
            ever_90: cumulative(&curves[2]),
        });
    }
    Ok(Vintages {
        business_date: d,
        vintages: out,
    })
}

/// One cell of a roll-rate matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollCell {
    /// Bucket at the start of the month.
    pub from_bucket: String,
    /// Bucket at the end of the month.
    pub to_bucket: String,
    /// Loans.
    pub loans: i64,
    /// Balance at the start of the month, minor units.
    pub balance: i64,
    /// Share of the from-bucket's loans.
    pub rate_by_count: f64,
    /// Share of the from-bucket's balance.
    pub rate_by_balance: f64,
}

/// The roll-rate matrix of one month.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollRates {
    /// Business date answered for: the month is the last one complete (rolled at the first
    /// day-end of the month after it) on that date.
    pub business_date: NaiveDate,
    /// Month (first day).
    pub month: NaiveDate,
    /// Cells.
    pub cells: Vec<RollCell>,
}

/// The roll-rate matrix of the last month rolled by the day-end of `as_of` (default: the last
/// closed date): a month is rolled at the first day-end after it, so on any closed date in the
/// month after it or later.
pub async fn roll_rates(pool: &PgPool, as_of: Option<NaiveDate>) -> Result<RollRates, QueryError> {
    let d = resolve_date(pool, as_of).await?;
    let month: Option<NaiveDate> = sqlx::query_scalar!(
        "SELECT max(month) FROM roll_rates WHERE month + interval '1 month' <= $1::date",
        d
    )
    .fetch_one(pool)
    .await?;
    let Some(month) = month else {
        return Err(QueryError::NoClosedDay(as_of));
    };
    let rows: Vec<(String, String, i64, i64)> = sqlx::query!(
        "SELECT from_bucket, to_bucket, loans, balance FROM roll_rates WHERE month = $1 \
         ORDER BY from_bucket, to_bucket",
        month
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| (r.from_bucket, r.to_bucket, r.loans, r.balance))
    .collect();
    let mut totals: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for (from, _, n, b) in &rows {
        let t = totals.entry(from.as_str()).or_default();
        t.0 += n;
        t.1 += b;
    }
    let cells = rows
        .iter()
        .map(|(from, to, n, b)| {
            let t = totals.get(from.as_str()).copied().unwrap_or_default();
            RollCell {
                from_bucket: from.clone(),
                to_bucket: to.clone(),
                loans: *n,
                balance: *b,
                rate_by_count: ratio(*n, t.0),
                rate_by_balance: ratio(*b, t.1),
            }
        })
        .collect();
    Ok(RollRates {
        business_date: d,
        month,
        cells,
    })
}

/// One point of the portfolio trend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendPoint {
    /// Business date.
    pub business_date: NaiveDate,
    /// Outstanding, minor units.
    pub outstanding: i64,
    /// Gross NPA ratio.
    pub npa_ratio: f64,
    /// PAR30.
    pub par30: f64,
    /// PAR90.
    pub par90: f64,
    /// ECL, minor units.
    pub ecl: i64,
    /// Approval rate to date: approved over approved and declined.
    pub approval_rate: f64,
    /// Referral rate to date: referred over all scored.
    pub referral_rate: f64,
}

/// The trend up to a business date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trend {
    /// Business date answered for (the last point's).
    pub business_date: NaiveDate,
    /// One point per closed business date, oldest first.
    pub points: Vec<TrendPoint>,
}

/// The last `days` snapshots up to `as_of`, oldest first.
pub async fn trend(
    pool: &PgPool,
    as_of: Option<NaiveDate>,
    days: i64,
) -> Result<Trend, QueryError> {
    let d = resolve_date(pool, as_of).await?;
    let rows = sqlx::query!(
        "SELECT business_date, outstanding, npa_amount, par30, par90, ecl, approved, decided, \
           referred, declined \
         FROM portfolio_daily WHERE business_date <= $1 ORDER BY business_date DESC LIMIT $2",
        d,
        days.max(1)
    )
    .fetch_all(pool)
    .await?;
    let points = rows
        .into_iter()
        .rev()
        .map(|r| TrendPoint {
            business_date: r.business_date,
            outstanding: r.outstanding,
            npa_ratio: ratio(r.npa_amount, r.outstanding),
            par30: ratio(r.par30, r.outstanding),
            par90: ratio(r.par90, r.outstanding),
            ecl: r.ecl,
            approval_rate: approval_rate(r.approved, r.declined),
            referral_rate: ratio(r.referred, r.decided),
        })
        .collect();
    Ok(Trend {
        business_date: d,
        points,
    })
}
