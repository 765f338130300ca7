//! The `portfolio_daily` snapshot of a closed day.

use chrono::NaiveDate;
use sqlx::PgConnection;

/// Take the `portfolio_daily` snapshot of `date` from the aged book (one pass, grouping sets);
/// returns the gross NPA ratio.
pub(super) async fn snapshot(tx: &mut PgConnection, date: NaiveDate) -> Result<f64, sqlx::Error> {
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
