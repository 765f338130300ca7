//! The day-end of a business date, set-based in SQL: a handful of statements whatever the size
//! of the book, never a loop of per-loan round trips.
//!
//! 1. Loans still missing their purpose, region, grade or origination PD take them from the
//!    application, the customer and the decision that have arrived since.
//! 2. At the first day-end of a month, the month just ended is rolled from month-end cut-offs:
//!    each loan's bucket and balance at the last day-end of the month before against its bucket
//!    at the last day-end of the month (both recorded by the day-ends, so the new day's events
//!    change neither); loans disbursed during the month are not in it.
//! 3. Every open loan is aged: DPD from its oldest unpaid instalment, arrears, the IRAC class
//!    (SMA buckets, NPA on DPD above the threshold, NPA sub-classes by time as NPA, upgrade only
//!    when all arrears are paid, Loss when marked), borrower-wise NPA, the IFRS 9 stage (DPD
//!    backstops, credit impairment, PD-ratio trigger against the origination PD), interest
//!    recognised or held in suspense, the IRAC provision and the ECL. A `status_history` row is
//!    written for every change of class or stage.
//! 4. The `portfolio_daily` snapshot of the date.
//!
//! The rules are the same as `risk_core`'s (`irac`, `ifrs9`, `provisioning`), with the same
//! settings; a test plays generated books through both and compares loan by loan.

use std::time::Instant;

use chrono::{Datelike, NaiveDate};
use risk_core::settings::DomainSettings;
use serde::Serialize;
use sqlx::PgConnection;

/// What a day-end did.
#[derive(Debug, Clone, Serialize)]
pub struct DayEndReport {
    /// Business date closed.
    pub business_date: NaiveDate,
    /// Loans aged (open loans and loans whose figures had to be released).
    pub loans_aged: i64,
    /// Loans whose state changed.
    pub loans_changed: i64,
    /// Class or stage transitions recorded.
    pub transitions: i64,
    /// Gross NPA ratio after the day-end.
    pub gross_npa_ratio: f64,
    /// Wall time of the day-end, seconds.
    pub seconds: f64,
}

/// Close business date `date`: age the book and take the snapshot, inside the caller's
/// transaction.
pub async fn close_day(
    tx: &mut PgConnection,
    date: NaiveDate,
    domain: &DomainSettings,
) -> Result<DayEndReport, sqlx::Error> {
    let started = Instant::now();
    // The statements are large but cheap per row; compiling them (JIT) costs more than running.
    sqlx::query!("SET LOCAL jit = off")
        .execute(&mut *tx)
        .await?;
    // The joins and groupings of a large book sort and hash in memory rather than on disk
    // (PostgreSQL's default, 4 MB, spills a book of a million loans several times over).
    sqlx::query!("SET LOCAL work_mem = '256MB'")
        .execute(&mut *tx)
        .await?;
    fill_loan_attributes(tx).await?;
    refresh_statistics(tx).await?;
    let previous: Option<NaiveDate> = sqlx::query_scalar!(
        "SELECT max(business_date) FROM business_days \
         WHERE closed_at IS NOT NULL AND business_date < $1",
        date
    )
    .fetch_one(&mut *tx)
    .await?;
    if let Some(prev) = previous {
        if (prev.year(), prev.month()) != (date.year(), date.month()) {
            roll_month(tx, prev).await?;
        }
    }
    let (aged, changed, transitions) = age(tx, date, domain).await?;
    let gross_npa_ratio = snapshot(tx, date).await?;
    let seconds = started.elapsed().as_secs_f64();
    sqlx::query!(
        "UPDATE business_days SET closed_at = now(), loans_aged = $2, seconds = $3 \
         WHERE business_date = $1",
        date,
        i32::try_from(aged).unwrap_or(i32::MAX),
        seconds
    )
    .execute(&mut *tx)
    .await?;
    Ok(DayEndReport {
        business_date: date,
        loans_aged: aged,
        loans_changed: changed,
        transitions,
        gross_npa_ratio,
        seconds,
    })
}

/// Tables the day-end reads whose statistics are refreshed when they have grown by half since
/// PostgreSQL last sampled them (or were never sampled).
const AGED_TABLES: [&str; 5] = [
    "loans",
    "loan_status",
    "customer_risk",
    "decisions",
    "loan_schedules",
];

/// Sample the tables a book that grows faster than autovacuum looks at (a replayed history,
/// a bulk load) has outgrown, so the day-end is planned for the book it has, not the one the
/// statistics remember. A book of steady size (a daily day-end) is left to autovacuum.
async fn refresh_statistics(tx: &mut PgConnection) -> Result<(), sqlx::Error> {
    let tables: Vec<String> = AGED_TABLES.map(String::from).to_vec();
    let stale: Vec<String> = sqlx::query_scalar!(
        "SELECT t.relname::text AS \"relname!\" \
         FROM pg_stat_user_tables t JOIN pg_class c ON c.oid = t.relid \
         WHERE t.relname = ANY($1) AND t.schemaname = current_schema() \
           AND t.n_live_tup > 100 AND (c.reltuples < 0 OR t.n_live_tup > 1.5 * c.reltuples)",
        &tables
    )
    .fetch_all(&mut *tx)
    .await?;
    if !stale.is_empty() {
        // As the tables' owner (ANALYZE needs it), whatever role the aggregator runs as.
        sqlx::query!("SELECT refresh_book_statistics($1)", &stale)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

async fn fill_loan_attributes(tx: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE loans l SET purpose = coalesce(l.purpose, a.purpose), \
           region = coalesce(l.region, c.region), grade = coalesce(l.grade, d.grade), \
           origination_pd = coalesce(l.origination_pd, d.pd) \
         FROM loans m \
         LEFT JOIN applications a ON a.application_id = m.application_id \
         LEFT JOIN decisions d ON d.application_id = m.application_id \
         LEFT JOIN customers c ON c.customer_id = m.customer_id \
         WHERE l.loan_id = m.loan_id \
           AND (m.purpose IS NULL OR m.region IS NULL OR m.grade IS NULL \
                OR m.origination_pd IS NULL) \
           AND (a.purpose IS NOT NULL OR c.region IS NOT NULL OR d.grade IS NOT NULL)"
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Roll the month of `last_day` (the month's last day-end): each loan open at the last day-end
/// of the month before, from its bucket then to its bucket at `last_day`'s day-end (Closed and
/// Written-off included), by count and by its balance then; then the next month's opening
/// population: the loans open at `last_day`'s day-end. Runs before the new day is aged, so the
/// day-end figures read are still `last_day`'s.
async fn roll_month(tx: &mut PgConnection, last_day: NaiveDate) -> Result<(), sqlx::Error> {
    let month = last_day.with_day(1).unwrap_or(last_day);
    sqlx::query!(
        "INSERT INTO roll_rates (month, from_bucket, to_bucket, loans, balance) \
         SELECT $1, month_start_bucket, dayend_bucket, count(*), \
           coalesce(sum(month_start_balance), 0) \
         FROM loan_status WHERE month_start_bucket IS NOT NULL AND dayend_bucket IS NOT NULL \
         GROUP BY 2, 3 \
         ON CONFLICT DO NOTHING",
        month
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE loan_status SET \
           month_start_bucket = CASE WHEN dayend_bucket NOT IN ('CLOSED', 'WRITTEN_OFF') \
             THEN dayend_bucket END, \
           month_start_balance = CASE WHEN dayend_bucket NOT IN ('CLOSED', 'WRITTEN_OFF') \
             THEN dayend_balance END \
         WHERE month_start_bucket IS NOT NULL \
            OR dayend_bucket NOT IN ('CLOSED', 'WRITTEN_OFF')"
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The domain settings the day-end reads, as one JSON object (named, not positional).
fn day_end_settings(d: &DomainSettings) -> serde_json::Value {
    let (i, s, p, l) = (&d.irac, &d.ifrs9, &d.provisioning, &d.lgd);
    serde_json::json!({
        "sma0_max_dpd": i.sma0_max_dpd, "sma1_max_dpd": i.sma1_max_dpd,
        "npa_after_dpd": i.npa_after_dpd, "substandard_months": i.substandard_months,
        "d1_months": i.d1_months, "d2_months": i.d2_months,
        "stage2_after_dpd": s.stage2_after_dpd, "stage3_after_dpd": s.stage3_after_dpd,
        "pd_ratio_trigger": s.pd_ratio_trigger, "min_horizon_months": s.min_horizon_months,
        "standard_bps": p.standard_bps, "substandard_bps": p.substandard_bps,
        "substandard_unsecured_bps": p.substandard_unsecured_bps,
        "d1_secured_bps": p.d1_secured_bps, "d2_secured_bps": p.d2_secured_bps,
        "d3_secured_bps": p.d3_secured_bps, "doubtful_unsecured_bps": p.doubtful_unsecured_bps,
        "loss_bps": p.loss_bps, "home_bps": l.home_bps, "auto_bps": l.auto_bps,
        "gold_bps": l.gold_bps, "other_secured_bps": l.other_secured_bps,
        "unsecured_bps": l.unsecured_bps,
    })
}

/// Age the book; returns (loans aged, loans changed, transitions).
async fn age(
    tx: &mut PgConnection,
    date: NaiveDate,
    d: &DomainSettings,
) -> Result<(i64, i64, i64), sqlx::Error> {
    let r = sqlx::query!(
        r#"
WITH p AS (
  SELECT (j->>'sma0_max_dpd')::int AS sma0, (j->>'sma1_max_dpd')::int AS sma1,
    (j->>'npa_after_dpd')::int AS npa_after, (j->>'substandard_months')::int AS sub_m,
    (j->>'d1_months')::int AS d1_m, (j->>'d2_months')::int AS d2_m,
    (j->>'stage2_after_dpd')::int AS stage2_after, (j->>'stage3_after_dpd')::int AS stage3_after,
    (j->>'pd_ratio_trigger')::float8 AS pd_ratio, (j->>'min_horizon_months')::int AS min_h,
    (j->>'standard_bps')::int8 AS std_bps, (j->>'substandard_bps')::int8 AS sub_bps,
    (j->>'substandard_unsecured_bps')::int8 AS sub_u_bps, (j->>'d1_secured_bps')::int8 AS d1_bps,
    (j->>'d2_secured_bps')::int8 AS d2_bps, (j->>'d3_secured_bps')::int8 AS d3_bps,
    (j->>'doubtful_unsecured_bps')::int8 AS dbt_u_bps, (j->>'loss_bps')::int8 AS loss_bps,
    (j->>'home_bps')::int8 AS home_lgd, (j->>'auto_bps')::int8 AS auto_lgd,
    (j->>'gold_bps')::int8 AS gold_lgd, (j->>'other_secured_bps')::int8 AS other_lgd,
    (j->>'unsecured_bps')::int8 AS unsecured_lgd
  FROM (SELECT $2::jsonb AS j) x
),
base0 AS (
  SELECT s.loan_id, s.customer_id, s.state, s.outstanding_principal AS outstanding,
    s.next_unpaid_seq, s.next_unpaid_paid, s.asset_class AS prev_class,
    s.stage AS prev_stage, s.npa_since AS prev_npa_since, s.loss_on, s.unrecovered_arrears,
    s.written_off_on,
    s.first_dpd30_on, s.first_dpd60_on, s.first_dpd90_on,
    l.instalments, l.first_due_on, l.disbursed_on, l.interest_rate_bps, l.vintage,
    greatest(coalesce(l.collateral_value, 0), 0) AS security, l.purpose, l.origination_pd,
    CASE WHEN s.state = 'ACTIVE' AND s.next_unpaid_due_on <= $1::date
         THEN ($1::date - s.next_unpaid_due_on) + 1 ELSE 0 END AS dpd,
    cp.pd AS current_pd,
    CASE WHEN $1::date < l.first_due_on THEN 0 ELSE least(l.instalments,
      ((extract(year FROM $1::date) - extract(year FROM l.first_due_on)) * 12
        + extract(month FROM $1::date) - extract(month FROM l.first_due_on))::int
      + CASE WHEN (l.first_due_on + make_interval(months =>
          ((extract(year FROM $1::date) - extract(year FROM l.first_due_on)) * 12
            + extract(month FROM $1::date) - extract(month FROM l.first_due_on))::int))::date <= $1::date
        THEN 1 ELSE 0 END) END AS due_count
  FROM loan_status s
  JOIN loans l USING (loan_id)
  LEFT JOIN customer_risk cr ON cr.customer_id = s.customer_id
  LEFT JOIN LATERAL (
    -- The customer's latest decision after the disbursal and on or before the date: a current
    -- PD (customer_risk says whether there is any, so most loans skip the lookup).
    SELECT d.pd FROM decisions d
    WHERE s.state = 'ACTIVE'
      AND cr.decided_at >= (l.disbursed_on + 1)::timestamp AT TIME ZONE 'UTC'
      AND d.customer_id = s.customer_id
      AND d.decided_at >= (l.disbursed_on + 1)::timestamp AT TIME ZONE 'UTC'
      AND d.decided_at < ($1::date + 1)::timestamp AT TIME ZONE 'UTC'
    ORDER BY d.decided_at DESC LIMIT 1
  ) cp ON true
  WHERE s.state = 'ACTIVE' OR s.dpd > 0 OR s.provision > 0 OR s.ecl > 0
     OR s.accrued_interest > 0 OR s.interest_suspended > 0 OR s.unrecovered_arrears > 0
     OR s.ead > 0
     OR (s.state = 'CLOSED' AND (s.asset_class <> 'STANDARD' OR s.stage <> 1))
     -- A loan closed or written off since the last day-end that aged it.
     OR s.dayend_bucket IS DISTINCT FROM dpd_bucket(s.state, 0)
),
base AS (
  SELECT b.*, CASE WHEN b.due_count = 0 THEN b.disbursed_on
    ELSE (b.first_due_on + make_interval(months => b.due_count - 1))::date END AS last_due
  FROM base0 b
),
own AS (
  SELECT b.*, coalesce(a.arrears, 0) AS arrears, coalesce(a.arrears_interest, 0) AS arrears_interest,
    b.state = 'ACTIVE' AND (b.prev_class = 'LOSS' OR coalesce(b.loss_on <= $1::date, false))
      AS is_loss
  FROM base b
  -- Arrears only of loans past due, from the schedule row: the instalments due from the next
  -- unpaid one on, less what is paid into it (interest first). The cost follows the arrears, not
  -- the book (one row per loan, so the estimates stay those of the book).
  LEFT JOIN LATERAL (
    SELECT (sum(u.p + u.i) - b.next_unpaid_paid)::int8 AS arrears,
      (sum(u.i) - least(b.next_unpaid_paid, min(sc.interest[b.next_unpaid_seq])))::int8
        AS arrears_interest
    FROM loan_schedules sc
    CROSS JOIN LATERAL unnest(sc.due_on[b.next_unpaid_seq:], sc.principal[b.next_unpaid_seq:],
      sc.interest[b.next_unpaid_seq:]) AS u(d, p, i)
    WHERE b.dpd > 0 AND sc.loan_id = b.loan_id AND u.d <= $1::date
) a ON true
),
candidates AS (
  -- Borrowers whose classification is borrower-wise today: NPA before, a loan past the NPA
  -- threshold, or a loan marked as loss.
  SELECT DISTINCT o.customer_id FROM own o, p
  WHERE (o.state = 'ACTIVE' AND o.prev_npa_since IS NOT NULL) OR o.is_loss
     OR (o.state = 'ACTIVE' AND o.dpd > p.npa_after)
     OR (o.state = 'WRITTEN_OFF' AND o.unrecovered_arrears > 0)
),
borrowers AS (
  -- A borrower who was NPA stays NPA, from that date, while any of their loans has an arrear
  -- unpaid (a written-off loan's unrecovered arrears included); one who was not becomes NPA
  -- today when a loan's DPD exceeds the threshold; a loss loan's NPA date always counts.
  SELECT o.customer_id, least(
      CASE WHEN bool_or(o.arrears > 0 OR o.dpd > 0 OR o.unrecovered_arrears > 0)
        THEN min(o.prev_npa_since) FILTER (WHERE o.state = 'ACTIVE' AND NOT o.is_loss) END,
      CASE WHEN bool_or(o.state = 'ACTIVE' AND NOT o.is_loss AND o.dpd > p.npa_after)
        THEN $1::date END,
      min(coalesce(o.prev_npa_since, o.loss_on)) FILTER (WHERE o.is_loss),
      -- A written-off loan with arrears unrecovered keeps the borrower NPA.
      min(coalesce(o.prev_npa_since, o.written_off_on))
        FILTER (WHERE o.state = 'WRITTEN_OFF' AND o.unrecovered_arrears > 0)) AS borrower_npa
  FROM own o JOIN candidates USING (customer_id), p
  GROUP BY o.customer_id
),
cls AS (
  SELECT w.*, b.borrower_npa,
    CASE WHEN w.state = 'WRITTEN_OFF' THEN w.prev_class
         WHEN w.state = 'CLOSED' THEN 'STANDARD'
         WHEN w.is_loss THEN 'LOSS'
         WHEN b.borrower_npa IS NOT NULL
           THEN npa_class(b.borrower_npa, $1::date, p.sub_m, p.d1_m, p.d2_m)
         ELSE performing_class(w.dpd, p.sma0, p.sma1)
    END AS class,
    CASE WHEN w.state = 'WRITTEN_OFF' THEN w.prev_npa_since
         WHEN w.state = 'CLOSED' THEN NULL
         WHEN w.is_loss THEN coalesce(w.prev_npa_since, w.loss_on)
         ELSE b.borrower_npa
    END AS npa_since
  FROM own w CROSS JOIN p LEFT JOIN borrowers b USING (customer_id)
),
stg AS (
  SELECT c.*,
    (CASE WHEN c.state = 'WRITTEN_OFF' THEN c.prev_stage
         WHEN c.state = 'CLOSED' THEN 1
         WHEN is_npa(c.class) OR c.dpd > p.stage3_after THEN 3
         WHEN c.dpd > p.stage2_after THEN 2
         WHEN c.current_pd IS NOT NULL AND c.origination_pd > 0
              AND c.current_pd >= p.pd_ratio * c.origination_pd THEN 2
         ELSE 1 END)::int2 AS stage,
    CASE WHEN c.state = 'ACTIVE' AND NOT is_npa(c.class) THEN c.arrears_interest ELSE 0 END
      AS accrued_interest,
    CASE WHEN c.state = 'ACTIVE' AND is_npa(c.class) THEN c.arrears_interest ELSE 0 END
      AS interest_suspended,
    -- Interest accrued since the last due date on the principal not yet due, while an
    -- instalment is still to fall due: in a performing loan's exposure only.
    CASE WHEN c.state = 'ACTIVE' AND NOT is_npa(c.class) AND c.instalments > c.due_count
         THEN accrued_interest(c.outstanding - (c.arrears - c.arrears_interest),
           c.interest_rate_bps, $1::date - c.last_due) ELSE 0 END
      AS accrued_since_due,
    greatest(c.instalments - c.due_count, 0) AS remaining,
    least(greatest(coalesce(c.current_pd, c.origination_pd, 0), 0), 1) AS pd12,
    lgd_bps(c.purpose, c.security, c.outstanding, p.home_lgd, p.auto_lgd, p.gold_lgd,
      p.other_lgd, p.unsecured_lgd) AS lgd
  FROM cls c CROSS JOIN p
  -- Kept as its own scan (not flattened into `fin`), so `provision()` and `ecl()` are called on
  -- plain columns and PostgreSQL inlines them instead of calling them row by row.
  OFFSET 0
),
fin AS (
  SELECT s.*,
    CASE WHEN s.state <> 'ACTIVE' THEN 0
      ELSE provision(s.class, s.outstanding, s.security, p.std_bps, p.sub_bps, p.sub_u_bps,
        p.d1_bps, p.d2_bps, p.d3_bps, p.dbt_u_bps, p.loss_bps) END AS provision,
    CASE WHEN s.state <> 'ACTIVE' THEN 0
      ELSE ecl(s.stage, s.pd12, s.lgd, s.outstanding + s.arrears_interest + s.accrued_since_due,
        s.remaining, p.min_h) END AS ecl,
    -- EAD: outstanding principal, overdue interest, interest accrued since the last due date.
    CASE WHEN s.state <> 'ACTIVE' THEN 0
      ELSE s.outstanding + s.arrears_interest + s.accrued_since_due END AS ead,
    ((extract(year FROM $1::date) - extract(year FROM s.vintage)) * 12
      + extract(month FROM $1::date) - extract(month FROM s.vintage))::int AS mob,
    CASE WHEN s.state = 'CLOSED' THEN 'closed'
         WHEN s.class = s.prev_class THEN 'stage'
         WHEN s.class = 'LOSS' THEN 'loss'
         WHEN is_npa(s.prev_class) AND NOT is_npa(s.class) THEN 'upgrade'
         WHEN is_npa(s.prev_class) THEN 'age'
         WHEN is_npa(s.class) AND s.dpd > p.npa_after THEN 'dpd'
         WHEN is_npa(s.class) THEN 'borrower'
         ELSE 'dpd' END AS reason
  FROM stg s CROSS JOIN p
),
hist AS (
  INSERT INTO status_history (loan_id, business_date, from_class, to_class, from_stage,
    to_stage, dpd, outstanding, reason)
  SELECT loan_id, $1::date, prev_class, class, prev_stage, stage, dpd, outstanding, reason FROM fin
  WHERE class <> prev_class OR stage <> prev_stage
  RETURNING 1
),
vint AS (
  INSERT INTO vintage_hits (vintage, threshold, mob, business_date, loans)
  SELECT f.vintage, t.threshold, f.mob, $1::date, count(*)
  FROM fin f
  CROSS JOIN LATERAL (VALUES (30::int2, f.first_dpd30_on), (60::int2, f.first_dpd60_on),
    (90::int2, f.first_dpd90_on)) AS t(threshold, first_on)
  WHERE t.first_on IS NULL AND f.dpd > t.threshold
  GROUP BY f.vintage, t.threshold, f.mob
  RETURNING 1
),
upd AS (
  UPDATE loan_status s SET
    dpd = f.dpd, max_dpd = greatest(s.max_dpd, f.dpd),
    arrears = CASE WHEN f.state = 'ACTIVE' THEN f.arrears ELSE 0 END,
    arrears_interest = f.arrears_interest, accrued_interest = f.accrued_interest,
    interest_suspended = f.interest_suspended,
    asset_class = f.class, npa_since = f.npa_since, stage = f.stage,
    current_pd = f.current_pd, provision = f.provision, ecl = f.ecl, ead = f.ead,
    remaining_months = f.remaining, lgd_bps = CASE WHEN f.state = 'ACTIVE' THEN f.lgd ELSE 0 END,
    dayend_bucket = dpd_bucket(f.state, f.dpd), dayend_balance = f.outstanding,
    first_dpd30_on = coalesce(s.first_dpd30_on, CASE WHEN f.dpd > 30 THEN $1::date END),
    first_dpd60_on = coalesce(s.first_dpd60_on, CASE WHEN f.dpd > 60 THEN $1::date END),
    first_dpd90_on = coalesce(s.first_dpd90_on, CASE WHEN f.dpd > 90 THEN $1::date END)
  FROM fin f
  WHERE s.loan_id = f.loan_id
    AND (s.dpd, s.arrears, s.arrears_interest, s.accrued_interest, s.interest_suspended,
         s.asset_class, s.npa_since, s.stage, s.current_pd, s.provision, s.ecl, s.ead,
         s.remaining_months, s.lgd_bps, s.dayend_bucket, s.dayend_balance)
      IS DISTINCT FROM
        (f.dpd, CASE WHEN f.state = 'ACTIVE' THEN f.arrears ELSE 0 END, f.arrears_interest,
         f.accrued_interest, f.interest_suspended, f.class, f.npa_since, f.stage, f.current_pd,
         f.provision, f.ecl, f.ead, f.remaining,
         CASE WHEN f.state = 'ACTIVE' THEN f.lgd ELSE 0 END, dpd_bucket(f.state, f.dpd),
         f.outstanding)
  RETURNING 1
)
SELECT (SELECT count(*) FROM fin) AS "aged!", (SELECT count(*) FROM upd) AS "changed!",
  (SELECT count(*) FROM hist) AS "transitions!", (SELECT count(*) FROM vint) AS "vintage!"
"#,
        date,
        day_end_settings(d)
    )
    .fetch_one(&mut *tx)
    .await?;
    Ok((r.aged, r.changed, r.transitions))
}

/// Take the `portfolio_daily` snapshot of `date` from the aged book (one pass, grouping sets);
/// returns the gross NPA ratio.
async fn snapshot(tx: &mut PgConnection, date: NaiveDate) -> Result<f64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"
WITH book AS (
  SELECT s.state, s.asset_class, s.stage, s.dpd, s.outstanding_principal AS outstanding,
    s.provision, s.ecl, s.first_dpd90_on, coalesce(s.written_off_amount, 0) AS written_off,
    l.principal, coalesce(l.purpose, 'unknown') AS purpose, coalesce(l.region, 'unknown') AS region,
    coalesce(l.grade, 'unknown') AS grade, l.vintage,
    dpd_bucket(s.state, s.dpd) AS bucket,
    is_npa(s.asset_class) AND s.state = 'ACTIVE' AS npa
  FROM loan_status s JOIN loans l USING (loan_id)
  WHERE l.disbursed_on <= $1
),
g AS (
  SELECT
    CASE WHEN grouping(asset_class) = 0 THEN 'class' WHEN grouping(stage) = 0 THEN 'stage'
         WHEN grouping(bucket) = 0 THEN 'bucket' WHEN grouping(purpose) = 0 THEN 'purpose'
         WHEN grouping(region) = 0 THEN 'region' WHEN grouping(grade) = 0 THEN 'grade'
         WHEN grouping(state) = 0 THEN 'status' WHEN grouping(vintage) = 0 THEN 'vintage'
         ELSE 'total' END AS kind,
    coalesce(asset_class, stage::text, bucket, purpose, region, grade, state, vintage::text) AS key,
    count(*) AS loans,
    count(*) FILTER (WHERE state = 'ACTIVE') AS active,
    count(*) FILTER (WHERE state = 'CLOSED') AS closed,
    count(*) FILTER (WHERE state = 'WRITTEN_OFF') AS written_off_loans,
    count(*) FILTER (WHERE first_dpd90_on IS NOT NULL) AS defaulted,
    coalesce(sum(principal), 0)::int8 AS disbursed,
    coalesce(sum(outstanding), 0)::int8 AS outstanding,
    count(*) FILTER (WHERE npa) AS npa_loans,
    coalesce(sum(outstanding) FILTER (WHERE npa), 0)::int8 AS npa_amount,
    coalesce(sum(provision) FILTER (WHERE npa), 0)::int8 AS npa_provisions,
    coalesce(sum(provision), 0)::int8 AS provisions,
    coalesce(sum(ecl), 0)::int8 AS ecl,
    coalesce(sum(outstanding) FILTER (WHERE dpd > 30), 0)::int8 AS par30,
    coalesce(sum(outstanding) FILTER (WHERE dpd > 90), 0)::int8 AS par90,
    coalesce(sum(written_off), 0)::int8 AS written_off
  FROM book
  GROUP BY GROUPING SETS ((asset_class), (stage), (bucket), (purpose), (region), (grade), (state),
    (vintage), ())
),
parts AS (
  SELECT kind, coalesce(jsonb_object_agg(key, jsonb_build_object(
      'loans', loans, 'active', active, 'outstanding', outstanding, 'npa_amount', npa_amount,
      'provisions', provisions, 'ecl', ecl, 'disbursed', disbursed, 'defaulted', defaulted))
    FILTER (WHERE key IS NOT NULL), '{}'::jsonb) AS j
  FROM g WHERE kind <> 'total' GROUP BY kind
),
dec AS (
  SELECT count(*) AS decided,
    count(*) FILTER (WHERE decision = 'APPROVE') AS approved,
    count(*) FILTER (WHERE decision = 'REFER') AS referred,
    count(*) FILTER (WHERE decision = 'DECLINE') AS declined
  FROM decisions d JOIN applications a USING (application_id)
  WHERE a.submitted_at < ($1 + 1)::timestamp AT TIME ZONE 'UTC'
),
col AS (SELECT coalesce(sum(amount), 0)::int8 AS collected FROM repayment_daily WHERE counted_on <= $1)
INSERT INTO portfolio_daily (business_date, total_loans, active_loans, closed_loans,
  written_off_loans, defaulted_loans, total_disbursed, outstanding, npa_loans, npa_amount,
  npa_provisions, provisions, ecl, par30, par90, written_off_amount, collected, decided,
  approved, referred, declined, by_class, by_stage, by_dpd_bucket, by_purpose, by_region,
  by_grade, by_status, by_vintage)
SELECT $1, t.loans, t.active, t.closed, t.written_off_loans, t.defaulted, t.disbursed,
  t.outstanding, t.npa_loans, t.npa_amount, t.npa_provisions, t.provisions, t.ecl, t.par30,
  t.par90, t.written_off, col.collected, dec.decided, dec.approved, dec.referred, dec.declined,
  coalesce((SELECT j FROM parts WHERE kind = 'class'), '{}'),
  coalesce((SELECT j FROM parts WHERE kind = 'stage'), '{}'),
  coalesce((SELECT j FROM parts WHERE kind = 'bucket'), '{}'),
  coalesce((SELECT j FROM parts WHERE kind = 'purpose'), '{}'),
  coalesce((SELECT j FROM parts WHERE kind = 'region'), '{}'),
  coalesce((SELECT j FROM parts WHERE kind = 'grade'), '{}'),
  coalesce((SELECT j FROM parts WHERE kind = 'status'), '{}'),
  coalesce((SELECT j FROM parts WHERE kind = 'vintage'), '{}')
FROM g t, dec, col WHERE t.kind = 'total'
ON CONFLICT (business_date) DO UPDATE SET total_loans = excluded.total_loans,
  active_loans = excluded.active_loans, closed_loans = excluded.closed_loans,
  written_off_loans = excluded.written_off_loans, defaulted_loans = excluded.defaulted_loans,
  total_disbursed = excluded.total_disbursed, outstanding = excluded.outstanding,
  npa_loans = excluded.npa_loans, npa_amount = excluded.npa_amount,
  npa_provisions = excluded.npa_provisions, provisions = excluded.provisions,
  ecl = excluded.ecl, par30 = excluded.par30, par90 = excluded.par90,
  written_off_amount = excluded.written_off_amount, collected = excluded.collected,
  decided = excluded.decided, approved = excluded.approved, referred = excluded.referred,
  declined = excluded.declined, by_class = excluded.by_class, by_stage = excluded.by_stage,
  by_dpd_bucket = excluded.by_dpd_bucket, by_purpose = excluded.by_purpose,
  by_region = excluded.by_region, by_grade = excluded.by_grade, by_status = excluded.by_status,
  by_vintage = excluded.by_vintage,
  computed_at = now()
RETURNING CASE WHEN outstanding > 0 THEN npa_amount::float8 / outstanding ELSE 0 END
  AS "ratio!"
"#,
        date
    )
    .fetch_one(&mut *tx)
    .await
}
