//! Curves over time: vintage curves, month-end roll-rate matrices and the daily trend.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use std::collections::BTreeMap;

use super::breakdowns::breakdown;
use super::date::{approval_rate, ratio, resolve_date, QueryError};

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
        let vintage = g
            .key
            .parse::<NaiveDate>()
            .map_err(|_| QueryError::Vintage(g.key.clone()))?;
        let months = chrono::Datelike::year(&d) * 12 + chrono::Datelike::month0(&d) as i32
            - (chrono::Datelike::year(&vintage) * 12 + chrono::Datelike::month0(&vintage) as i32);
        let len = usize::try_from(months.max(0) + 1).unwrap_or(1);
        let mut curves = [vec![0i64; len], vec![0i64; len], vec![0i64; len]];
        for (_, threshold, mob, n) in hits.iter().filter(|h| h.0 == vintage) {
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
