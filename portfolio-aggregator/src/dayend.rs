//! The day-end of a business date, set-based in SQL: a handful of statements whatever the size
//! of the book, never a loop of per-loan round trips.
//!
//! 1. Loans still missing their purpose, region, grade or origination PD take them from the
//!    application, the customer and the decision that have arrived since.
//! 2. At the first day-end of a month, the month just ended is rolled: each loan's bucket at the
//!    start of the month against its bucket now (count and balance).
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
use sqlx::{PgConnection, Row};

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

const NPA: &str = "('SUBSTANDARD', 'D1', 'D2', 'D3', 'LOSS')";

/// Bucket of a loan for roll rates and the DPD mix.
pub const BUCKET_SQL: &str = "CASE WHEN state = 'CLOSED' THEN 'CLOSED' \
     WHEN state = 'WRITTEN_OFF' THEN 'WRITTEN_OFF' \
     WHEN dpd = 0 THEN 'CURRENT' WHEN dpd <= 30 THEN '1-30' WHEN dpd <= 60 THEN '31-60' \
     WHEN dpd <= 90 THEN '61-90' ELSE '90+' END";

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
    for table in stale {
        if AGED_TABLES.contains(&table.as_str()) {
            sqlx::query(&format!("ANALYZE {table}"))
                .execute(&mut *tx)
                .await?;
        }
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

/// Record the month of `last_day`: bucket at the month's start → bucket now, then restart.
async fn roll_month(tx: &mut PgConnection, last_day: NaiveDate) -> Result<(), sqlx::Error> {
    let month = last_day.with_day(1).unwrap_or(last_day);
    sqlx::query(&format!(
        "INSERT INTO roll_rates (month, from_bucket, to_bucket, loans, balance) \
         SELECT $1, month_start_bucket, {BUCKET_SQL}, count(*), coalesce(sum(month_start_balance), 0) \
         FROM loan_status WHERE month_start_bucket IS NOT NULL GROUP BY 2, 3 \
         ON CONFLICT DO NOTHING"
    ))
    .bind(month)
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!(
        "UPDATE loan_status SET \
           month_start_bucket = CASE WHEN state = 'ACTIVE' THEN {BUCKET_SQL} END, \
           month_start_balance = CASE WHEN state = 'ACTIVE' THEN outstanding_principal END \
         WHERE state = 'ACTIVE' OR month_start_bucket IS NOT NULL"
    ))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Age the book; returns (loans aged, loans changed, transitions).
async fn age(
    tx: &mut PgConnection,
    date: NaiveDate,
    d: &DomainSettings,
) -> Result<(i64, i64, i64), sqlx::Error> {
    let sql = format!(
        r#"
WITH base AS (
  SELECT s.loan_id, s.customer_id, s.state, s.outstanding_principal AS outstanding,
    s.next_unpaid_seq, s.next_unpaid_paid, s.own_npa_since AS prev_own, s.asset_class AS prev_class,
    s.stage AS prev_stage, s.npa_since AS prev_npa_since, s.loss_on,
    s.first_dpd30_on, s.first_dpd60_on, s.first_dpd90_on,
    l.instalments, l.first_due_on, l.vintage, greatest(coalesce(l.collateral_value, 0), 0) AS security,
    l.purpose, l.origination_pd,
    CASE WHEN s.state = 'ACTIVE' AND s.next_unpaid_due_on <= $1
         THEN ($1 - s.next_unpaid_due_on) + 1 ELSE 0 END AS dpd,
    cp.pd AS current_pd,
    CASE WHEN $1 < l.first_due_on THEN 0 ELSE least(l.instalments,
      ((extract(year FROM $1) - extract(year FROM l.first_due_on)) * 12
        + extract(month FROM $1) - extract(month FROM l.first_due_on))::int
      + CASE WHEN (l.first_due_on + make_interval(months =>
          ((extract(year FROM $1) - extract(year FROM l.first_due_on)) * 12
            + extract(month FROM $1) - extract(month FROM l.first_due_on))::int))::date <= $1
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
      AND d.decided_at < ($1 + 1)::timestamp AT TIME ZONE 'UTC'
    ORDER BY d.decided_at DESC LIMIT 1
  ) cp ON true
  WHERE s.state = 'ACTIVE' OR s.dpd > 0 OR s.provision > 0 OR s.ecl > 0
     OR s.accrued_interest > 0 OR s.interest_suspended > 0
     OR (s.state = 'CLOSED' AND (s.asset_class <> 'STANDARD' OR s.stage <> 1))
),
own AS (
  SELECT b.*, coalesce(a.arrears, 0) AS arrears, coalesce(a.arrears_interest, 0) AS arrears_interest,
    b.state = 'ACTIVE' AND (b.prev_class = 'LOSS' OR b.loss_on <= $1) AS is_loss,
    CASE WHEN b.state <> 'ACTIVE' THEN NULL
         WHEN b.prev_class = 'LOSS' OR b.loss_on <= $1
           THEN coalesce(b.prev_own, b.loss_on)
         WHEN b.prev_own IS NOT NULL
           THEN CASE WHEN b.dpd > 0 OR coalesce(a.arrears, 0) > 0 THEN b.prev_own END
         WHEN b.dpd > $4 THEN $1
    END AS own_npa
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
    WHERE b.dpd > 0 AND sc.loan_id = b.loan_id AND u.d <= $1
) a ON true
),
npa_borrowers AS (
  -- Borrower-wise NPA: a borrower is NPA from the earliest date any of their loans is.
  SELECT customer_id, min(own_npa) AS borrower_npa FROM own WHERE own_npa IS NOT NULL
  GROUP BY customer_id
),
bw AS (
  SELECT o.*, n.borrower_npa FROM own o LEFT JOIN npa_borrowers n USING (customer_id)
),
cls AS (
  SELECT w.*,
    CASE WHEN w.state = 'WRITTEN_OFF' THEN w.prev_class
         WHEN w.state = 'CLOSED' THEN 'STANDARD'
         WHEN w.is_loss THEN 'LOSS'
         WHEN w.borrower_npa IS NOT NULL THEN CASE
           WHEN $1 <= (w.borrower_npa + make_interval(months => $5))::date THEN 'SUBSTANDARD'
           WHEN $1 <= (w.borrower_npa + make_interval(months => $6))::date THEN 'D1'
           WHEN $1 <= (w.borrower_npa + make_interval(months => $7))::date THEN 'D2'
           ELSE 'D3' END
         WHEN w.dpd = 0 THEN 'STANDARD'
         WHEN w.dpd <= $2 THEN 'SMA0'
         WHEN w.dpd <= $3 THEN 'SMA1'
         ELSE 'SMA2'
    END AS class,
    CASE WHEN w.state = 'WRITTEN_OFF' THEN w.prev_npa_since
         WHEN w.state = 'CLOSED' THEN NULL
         WHEN w.is_loss THEN w.own_npa
         ELSE w.borrower_npa
    END AS npa_since
  FROM bw w
),
stg AS (
  SELECT c.*,
    (CASE WHEN c.state = 'WRITTEN_OFF' THEN c.prev_stage
         WHEN c.state = 'CLOSED' THEN 1
         WHEN c.class IN {NPA} OR c.dpd > $9 THEN 3
         WHEN c.dpd > $8 THEN 2
         WHEN c.current_pd IS NOT NULL AND c.origination_pd > 0
              AND c.current_pd >= $10 * c.origination_pd THEN 2
         ELSE 1 END)::int2 AS stage,
    CASE WHEN c.state = 'ACTIVE' AND c.class NOT IN {NPA} THEN c.arrears_interest ELSE 0 END
      AS accrued_interest,
    CASE WHEN c.state = 'ACTIVE' AND c.class IN {NPA} THEN c.arrears_interest ELSE 0 END
      AS interest_suspended,
    greatest(c.instalments - c.due_count, 0) AS remaining,
    least(c.security, greatest(c.outstanding, 0)) AS secured_part,
    least(greatest(coalesce(c.current_pd, c.origination_pd, 0), 0), 1) AS pd12,
    CASE WHEN c.security <= 0 THEN $23 ELSE CASE c.purpose
      WHEN 'home' THEN $19 WHEN 'auto' THEN $20 WHEN 'gold' THEN $21 ELSE $22 END END AS lgd
  FROM cls c
),
fin AS (
  SELECT s.*,
    (CASE WHEN s.state <> 'ACTIVE' THEN 0
      WHEN s.class IN ('STANDARD', 'SMA0', 'SMA1', 'SMA2') THEN round(s.outstanding::numeric * $11 / 10000)
      WHEN s.class = 'SUBSTANDARD' AND s.security > 0 THEN round(s.outstanding::numeric * $12 / 10000)
      WHEN s.class = 'SUBSTANDARD' THEN round(s.outstanding::numeric * $13 / 10000)
      WHEN s.class = 'D1' THEN round(s.secured_part::numeric * $14 / 10000)
        + round((s.outstanding - s.secured_part)::numeric * $17 / 10000)
      WHEN s.class = 'D2' THEN round(s.secured_part::numeric * $15 / 10000)
        + round((s.outstanding - s.secured_part)::numeric * $17 / 10000)
      WHEN s.class = 'D3' THEN round(s.secured_part::numeric * $16 / 10000)
        + round((s.outstanding - s.secured_part)::numeric * $17 / 10000)
      ELSE round(s.outstanding::numeric * $18 / 10000) END)::int8 AS provision,
    (CASE WHEN s.state <> 'ACTIVE' THEN 0
      ELSE round((CASE s.stage
        WHEN 1 THEN round(s.pd12 * 1e9)
        WHEN 2 THEN round((1 - power(1 - s.pd12, s.remaining::float8 / 12)) * 1e9)
        ELSE 1e9 END)::numeric * s.lgd * (s.outstanding + s.accrued_interest) / 10000000000000)
     END)::int8 AS ecl,
    ((extract(year FROM $1) - extract(year FROM s.vintage)) * 12
      + extract(month FROM $1) - extract(month FROM s.vintage))::int AS mob
  FROM stg s
),
hist AS (
  INSERT INTO status_history (loan_id, business_date, from_class, to_class, from_stage,
    to_stage, dpd, outstanding)
  SELECT loan_id, $1, prev_class, class, prev_stage, stage, dpd, outstanding FROM fin
  WHERE class <> prev_class OR stage <> prev_stage
  RETURNING 1
),
vint AS (
  INSERT INTO vintage_hits (vintage, threshold, mob, business_date, loans)
  SELECT f.vintage, t.threshold, f.mob, $1, count(*)
  FROM fin f
  CROSS JOIN LATERAL (VALUES (30::int2, f.first_dpd30_on), (60::int2, f.first_dpd60_on),
    (90::int2, f.first_dpd90_on)) AS t(threshold, first_on)
  WHERE t.first_on IS NULL AND f.dpd > t.threshold
  GROUP BY f.vintage, t.threshold, f.mob
  RETURNING 1
),
upd AS (
  UPDATE loan_status s SET
    dpd = f.dpd, max_dpd = greatest(s.max_dpd, f.dpd), arrears = f.arrears,
    arrears_interest = f.arrears_interest, accrued_interest = f.accrued_interest,
    interest_suspended = f.interest_suspended, own_npa_since = f.own_npa,
    asset_class = f.class, npa_since = f.npa_since, stage = f.stage,
    current_pd = f.current_pd, provision = f.provision, ecl = f.ecl,
    first_dpd30_on = coalesce(s.first_dpd30_on, CASE WHEN f.dpd > 30 THEN $1 END),
    first_dpd60_on = coalesce(s.first_dpd60_on, CASE WHEN f.dpd > 60 THEN $1 END),
    first_dpd90_on = coalesce(s.first_dpd90_on, CASE WHEN f.dpd > 90 THEN $1 END)
  FROM fin f
  WHERE s.loan_id = f.loan_id
    AND (s.dpd, s.arrears, s.arrears_interest, s.accrued_interest, s.interest_suspended,
         s.own_npa_since, s.asset_class, s.npa_since, s.stage, s.current_pd, s.provision, s.ecl)
      IS DISTINCT FROM
        (f.dpd, f.arrears, f.arrears_interest, f.accrued_interest, f.interest_suspended,
         f.own_npa, f.class, f.npa_since, f.stage, f.current_pd, f.provision, f.ecl)
  RETURNING 1
)
SELECT (SELECT count(*) FROM fin), (SELECT count(*) FROM upd), (SELECT count(*) FROM hist),
  (SELECT count(*) FROM vint)
"#
    );
    let i = &d.irac;
    let s = &d.ifrs9;
    let p = &d.provisioning;
    let l = &d.lgd;
    let as_i32 = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
    let row = sqlx::query(&sql)
        .bind(date)
        .bind(as_i32(i.sma0_max_dpd))
        .bind(as_i32(i.sma1_max_dpd))
        .bind(as_i32(i.npa_after_dpd))
        .bind(as_i32(i.substandard_months))
        .bind(as_i32(i.d1_months))
        .bind(as_i32(i.d2_months))
        .bind(as_i32(s.stage2_after_dpd))
        .bind(as_i32(s.stage3_after_dpd))
        .bind(s.pd_ratio_trigger)
        .bind(p.standard_bps)
        .bind(p.substandard_bps)
        .bind(p.substandard_unsecured_bps)
        .bind(p.d1_secured_bps)
        .bind(p.d2_secured_bps)
        .bind(p.d3_secured_bps)
        .bind(p.doubtful_unsecured_bps)
        .bind(p.loss_bps)
        .bind(l.home_bps)
        .bind(l.auto_bps)
        .bind(l.gold_bps)
        .bind(l.other_secured_bps)
        .bind(l.unsecured_bps)
        .fetch_one(&mut *tx)
        .await?;
    Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))
}

/// Take the `portfolio_daily` snapshot of `date` from the aged book (one pass, grouping sets);
/// returns the gross NPA ratio.
async fn snapshot(tx: &mut PgConnection, date: NaiveDate) -> Result<f64, sqlx::Error> {
    let sql = format!(
        r#"
WITH book AS (
  SELECT s.state, s.asset_class, s.stage, s.dpd, s.outstanding_principal AS outstanding,
    s.provision, s.ecl, s.first_dpd90_on, coalesce(s.written_off_amount, 0) AS written_off,
    l.principal, coalesce(l.purpose, 'unknown') AS purpose, coalesce(l.region, 'unknown') AS region,
    coalesce(l.grade, 'unknown') AS grade, l.vintage,
    ({BUCKET_SQL}) AS bucket,
    s.asset_class IN {NPA} AND s.state = 'ACTIVE' AS npa
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
    FILTER (WHERE key IS NOT NULL), '{{}}'::jsonb) AS j
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
col AS (SELECT coalesce(sum(amount), 0)::int8 AS collected FROM repayment_daily WHERE paid_on <= $1)
INSERT INTO portfolio_daily (business_date, total_loans, active_loans, closed_loans,
  written_off_loans, defaulted_loans, total_disbursed, outstanding, npa_loans, npa_amount,
  npa_provisions, provisions, ecl, par30, par90, written_off_amount, collected, decided,
  approved, referred, declined, by_class, by_stage, by_dpd_bucket, by_purpose, by_region,
  by_grade, by_status, by_vintage)
SELECT $1, t.loans, t.active, t.closed, t.written_off_loans, t.defaulted, t.disbursed,
  t.outstanding, t.npa_loans, t.npa_amount, t.npa_provisions, t.provisions, t.ecl, t.par30,
  t.par90, t.written_off, col.collected, dec.decided, dec.approved, dec.referred, dec.declined,
  coalesce((SELECT j FROM parts WHERE kind = 'class'), '{{}}'),
  coalesce((SELECT j FROM parts WHERE kind = 'stage'), '{{}}'),
  coalesce((SELECT j FROM parts WHERE kind = 'bucket'), '{{}}'),
  coalesce((SELECT j FROM parts WHERE kind = 'purpose'), '{{}}'),
  coalesce((SELECT j FROM parts WHERE kind = 'region'), '{{}}'),
  coalesce((SELECT j FROM parts WHERE kind = 'grade'), '{{}}'),
  coalesce((SELECT j FROM parts WHERE kind = 'status'), '{{}}'),
  coalesce((SELECT j FROM parts WHERE kind = 'vintage'), '{{}}')
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
"#
    );
    sqlx::query_scalar(&sql)
        .bind(date)
        .fetch_one(&mut *tx)
        .await
}
