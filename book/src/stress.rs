//! A stress test of the book: the open loans as of a closed business day under PD and LGD
//! shocks, staged and provisioned with the day-end's own `ecl()` on the exposure and months left
//! the last day-end stored, so an unshocked run reproduces the day-end's ECL to the paisa.

use chrono::NaiveDate;
use sqlx::PgPool;

/// The shocks, and the IFRS 9 rules they are applied with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shocks {
    /// Multiplier on every open loan's 12-month PD (capped at 1).
    pub pd_multiplier: f64,
    /// Basis points added to every LGD (capped at 10,000).
    pub lgd_add_bps: i64,
    /// A performing loan whose shocked PD reaches this multiple of its origination PD moves
    /// to stage 2.
    pub pd_ratio_trigger: f64,
    /// The shortest ECL horizon of a loan with exposure, months.
    pub min_horizon_months: i32,
    /// Loans disbursed on or before this business date are in the book.
    pub business_date: NaiveDate,
}

/// The book under the shocks. Amounts in minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Stressed {
    /// Open loans (active, or with exposure left).
    pub open_loans: i64,
    /// Their principal outstanding.
    pub outstanding: i64,
    /// ECL under the shocks.
    pub ecl: i64,
    /// Loans in stage 1 that the shocks move to stage 2.
    pub moved_to_stage_2: i64,
    /// Outstanding of the loans already NPA.
    pub npa_amount: i64,
    /// Σ shocked PD × outstanding of the performing loans: the NPA expected within 12 months.
    pub expected_new_npa: i64,
    /// Loans in stage 1 under the shocks.
    pub stage_1: i64,
    /// In stage 2.
    pub stage_2: i64,
    /// In stage 3.
    pub stage_3: i64,
}

/// Run the stress test on the book as of `shocks.business_date`.
pub async fn run(pool: &PgPool, shocks: &Shocks) -> Result<Stressed, sqlx::Error> {
    sqlx::query_as(
        "WITH b AS ( \
           SELECT s.outstanding_principal AS out, s.ead, s.remaining_months, s.stage, \
             is_npa(s.asset_class) AS npa, \
             least(1, greatest(0, coalesce(s.current_pd, l.origination_pd, 0)) * $1) AS pd, \
             l.origination_pd AS opd, \
             least(10000, s.lgd_bps + $2) AS lgd \
           FROM loan_status s JOIN loans l USING (loan_id) \
           WHERE (s.state = 'ACTIVE' OR s.ead > 0) AND l.disbursed_on <= $5), \
         st AS (SELECT b.*, CASE WHEN stage = 3 OR npa THEN 3 \
             WHEN stage = 2 OR (opd > 0 AND pd >= $3 * opd) THEN 2 ELSE 1 END AS sstage FROM b) \
         SELECT count(*) AS open_loans, coalesce(sum(out), 0)::int8 AS outstanding, \
           coalesce(sum(ecl(sstage, pd, lgd, ead, remaining_months, $4)), 0)::int8 AS ecl, \
           count(*) FILTER (WHERE sstage = 2 AND stage = 1) AS moved_to_stage_2, \
           coalesce(sum(out) FILTER (WHERE npa), 0)::int8 AS npa_amount, \
           coalesce(round(sum(pd * out) FILTER (WHERE NOT npa)), 0)::int8 AS expected_new_npa, \
           count(*) FILTER (WHERE sstage = 1) AS stage_1, \
           count(*) FILTER (WHERE sstage = 2) AS stage_2, \
           count(*) FILTER (WHERE sstage = 3) AS stage_3 \
         FROM st",
    )
    .bind(shocks.pd_multiplier)
    .bind(shocks.lgd_add_bps)
    .bind(shocks.pd_ratio_trigger)
    .bind(shocks.min_horizon_months)
    .bind(shocks.business_date)
    .fetch_one(pool)
    .await
}
