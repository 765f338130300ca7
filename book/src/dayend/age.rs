//! Ageing the book: DPD, arrears, IRAC class (borrower-wise), IFRS 9 stage, income recognition,
//! provision and ECL of every open loan in one statement, with the status history of changes.

use chrono::NaiveDate;
use risk_core::settings::DomainSettings;
use sqlx::PgConnection;

/// Age the book; returns (loans aged, loans changed, transitions).
pub(super) async fn age(
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
