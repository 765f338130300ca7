-- The book's rules as SQL functions, each defined once and used by the day-end, the snapshot,
-- the roll rates and the stress test. They mirror risk_core's (`irac`, `ifrs9`,
-- `provisioning`, `dpd`), against which the day-end is tested loan by loan and day by day.

-- Bucket of a loan for roll rates and the DPD mix.
CREATE FUNCTION dpd_bucket(state text, dpd integer) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN state = 'CLOSED' THEN 'CLOSED'
              WHEN state = 'WRITTEN_OFF' THEN 'WRITTEN_OFF'
              WHEN dpd = 0 THEN 'CURRENT' WHEN dpd <= 30 THEN '1-30' WHEN dpd <= 60 THEN '31-60'
              WHEN dpd <= 90 THEN '61-90' ELSE '90+' END
$$;

-- Whether an IRAC class is non-performing.
CREATE FUNCTION is_npa(asset_class text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT asset_class IN ('SUBSTANDARD', 'D1', 'D2', 'D3', 'LOSS')
$$;

-- Class of a performing loan by its DPD.
CREATE FUNCTION performing_class(dpd integer, sma0_max integer, sma1_max integer) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN dpd = 0 THEN 'STANDARD' WHEN dpd <= sma0_max THEN 'SMA0'
              WHEN dpd <= sma1_max THEN 'SMA1' ELSE 'SMA2' END
$$;

-- NPA sub-class by time as NPA: the NPA date is the first day as NPA, so the class moves on
-- the anniversary (NPA 29 Jun 2025: D1 on 29 Jun 2026).
CREATE FUNCTION npa_class(npa_since date, on_date date, substandard_months integer,
                          d1_months integer, d2_months integer) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN on_date < (npa_since + make_interval(months => substandard_months))::date
                THEN 'SUBSTANDARD'
              WHEN on_date < (npa_since + make_interval(months => d1_months))::date THEN 'D1'
              WHEN on_date < (npa_since + make_interval(months => d2_months))::date THEN 'D2'
              ELSE 'D3' END
$$;

-- Secured when the realisable value of the security is more than 10% of the exposure (RBI).
CREATE FUNCTION is_secured(security bigint, exposure bigint) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT security > 0 AND security::numeric * 10 > greatest(exposure, 0)
$$;

-- Loss given default (basis points) by product and security.
CREATE FUNCTION lgd_bps(purpose text, security bigint, exposure bigint, home_bps bigint,
                        auto_bps bigint, gold_bps bigint, other_secured_bps bigint,
                        unsecured_bps bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN NOT is_secured(security, exposure) THEN unsecured_bps
              WHEN purpose = 'home' THEN home_bps WHEN purpose = 'auto' THEN auto_bps
              WHEN purpose = 'gold' THEN gold_bps ELSE other_secured_bps END
$$;

-- Interest on `principal` at `rate_bps` for `days`, actual/365, half away from zero.
CREATE FUNCTION accrued_interest(principal bigint, rate_bps integer, days integer) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN days <= 0 OR principal <= 0 THEN 0
              ELSE round(principal::numeric * rate_bps * days / 3650000)::int8 END
$$;

-- The part of an exposure its security covers: none unless the exposure is secured.
CREATE FUNCTION secured_portion(security bigint, exposure bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN is_secured(security, exposure)
              THEN least(greatest(security, 0), greatest(exposure, 0)) ELSE 0 END
$$;

-- IRAC provision of a loan (rates in basis points), half away from zero on each portion.
-- Every function here is one expression, so PostgreSQL inlines it into the day-end's plan.
CREATE FUNCTION provision(asset_class text, outstanding bigint, security bigint,
                          standard_bps bigint, substandard_bps bigint,
                          substandard_unsecured_bps bigint, d1_bps bigint, d2_bps bigint,
                          d3_bps bigint, doubtful_unsecured_bps bigint, loss_bps bigint)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT (CASE
    WHEN asset_class IN ('STANDARD', 'SMA0', 'SMA1', 'SMA2')
      THEN round(greatest(outstanding, 0)::numeric * standard_bps / 10000)
    WHEN asset_class = 'SUBSTANDARD' AND is_secured(security, outstanding)
      THEN round(greatest(outstanding, 0)::numeric * substandard_bps / 10000)
    WHEN asset_class = 'SUBSTANDARD'
      THEN round(greatest(outstanding, 0)::numeric * substandard_unsecured_bps / 10000)
    WHEN asset_class IN ('D1', 'D2', 'D3')
      THEN round(secured_portion(security, outstanding)::numeric
                 * CASE asset_class WHEN 'D1' THEN d1_bps WHEN 'D2' THEN d2_bps ELSE d3_bps END
                 / 10000)
         + round((greatest(outstanding, 0) - secured_portion(security, outstanding))::numeric
                 * doubtful_unsecured_bps / 10000)
    ELSE round(greatest(outstanding, 0)::numeric * loss_bps / 10000) END)::int8
$$;

-- A PD in parts per billion: floor(PD·1e9 + 0.5), in double precision as risk_core does.
CREATE FUNCTION pd_ppb(pd double precision) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT floor(least(greatest(pd, 0::float8), 1::float8) * 1e9::float8 + 0.5::float8)::int8
$$;

-- PD over `months` from a 12-month PD under a constant hazard.
CREATE FUNCTION lifetime_pd(pd_12m double precision, months integer) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT 1::float8 - power(1::float8 - least(greatest(pd_12m, 0::float8), 1::float8),
                           months::float8 / 12::float8)
$$;

-- Months of the ECL horizon: the months left, at least `min_horizon` while there is exposure.
CREATE FUNCTION ecl_horizon(remaining_months integer, ead bigint, min_horizon integer)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN ead > 0 THEN greatest(remaining_months, min_horizon)
              ELSE remaining_months END
$$;

-- ECL = PD × LGD × EAD: Stage 1 over min(12, horizon) months (the 12-month PD itself from 12
-- on), Stage 2 over the horizon, Stage 3 PD 1.
CREATE FUNCTION ecl(stage integer, pd_12m double precision, lgd_bps bigint, ead bigint,
                    remaining_months integer, min_horizon integer) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT round((CASE
      WHEN stage = 1 AND ecl_horizon(remaining_months, ead, min_horizon) >= 12
        THEN pd_ppb(pd_12m)
      WHEN stage IN (1, 2)
        THEN pd_ppb(lifetime_pd(pd_12m, ecl_horizon(remaining_months, ead, min_horizon)))
      ELSE 1000000000 END)::numeric
    * lgd_bps * greatest(ead, 0) / 10000000000000)::int8
$$;

-- Written-off loans keep the arrears they were written off with until recovered: a write-off
-- is not a payment, so the borrower's other loans are not upgraded by it.
ALTER TABLE loan_status
    ADD COLUMN unrecovered_arrears bigint NOT NULL DEFAULT 0 CHECK (unrecovered_arrears >= 0);
ALTER TABLE loan_status DROP COLUMN own_npa_since;

-- What the last day-end's ECL was computed on: the exposure, the LGD and the instalments left
-- to fall due (the stress test re-prices the same ECL under shocks).
ALTER TABLE loan_status
    ADD COLUMN ead bigint NOT NULL DEFAULT 0 CHECK (ead >= 0),
    ADD COLUMN remaining_months integer NOT NULL DEFAULT 0 CHECK (remaining_months >= 0),
    ADD COLUMN lgd_bps bigint NOT NULL DEFAULT 0 CHECK (lgd_bps BETWEEN 0 AND 10000);

-- Why a class or stage changed.
ALTER TABLE status_history
    ADD COLUMN reason text NOT NULL DEFAULT 'dpd'
        CHECK (reason IN ('dpd', 'borrower', 'upgrade', 'age', 'loss', 'write_off', 'closed',
                          'stage'));
ALTER TABLE status_history ALTER COLUMN reason DROP DEFAULT;
ALTER TABLE status_history DROP CONSTRAINT status_history_pkey;
ALTER TABLE status_history ADD PRIMARY KEY (loan_id, business_date, reason);

-- Payments and write-offs dated after the day following the last closed day wait here for
-- the day-end of their date (event time: a day-end counts only what is dated on or before it).
-- The loan was checked when the event arrived; a day-end reads the whole (normally small) table.
CREATE TABLE pending_events (
    seq           bigserial PRIMARY KEY,
    business_date date NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('payment', 'write_off')),
    loan_id       text NOT NULL,
    payment_id    text UNIQUE,
    amount        bigint CHECK (amount > 0),
    CHECK ((kind = 'payment') = (payment_id IS NOT NULL AND amount IS NOT NULL))
);

-- Principal repaid ahead of the schedule by part-prepayments: the instalments still to fall due
-- are recomputed without it, so what is paid into the schedule is what is paid less this.
ALTER TABLE loan_status
    ADD COLUMN prepaid_principal bigint NOT NULL DEFAULT 0 CHECK (prepaid_principal >= 0);

CREATE OR REPLACE VIEW instalments AS
SELECT s.loan_id, x.seq, x.due_on, x.principal, x.interest,
       x.paid - least(x.paid, x.interest) AS paid_principal,
       least(x.paid, x.interest) AS paid_interest,
       st.paid_on AS settled_on
FROM loan_schedules s
JOIN loan_status ls ON ls.loan_id = s.loan_id
CROSS JOIN LATERAL (
    SELECT u.seq::integer AS seq, u.due_on, u.principal, u.interest,
           least(greatest(ls.paid_principal + ls.paid_interest - ls.prepaid_principal
                          - (sum(u.principal + u.interest) OVER (ORDER BY u.seq)
                             - u.principal - u.interest), 0),
                 u.principal + u.interest)::bigint AS paid
    FROM unnest(s.due_on, s.principal, s.interest) WITH ORDINALITY AS u(due_on, principal, interest, seq)
) x
LEFT JOIN (
    SELECT p.loan_id, g.seq, p.paid_on
    FROM payments p CROSS JOIN LATERAL generate_series(p.settled_from, p.settled_to) AS g(seq)
    WHERE p.settled_from IS NOT NULL
) st ON st.loan_id = s.loan_id AND st.seq = x.seq;

-- A payment counts from its own date, or from the day after the last closed day when it
-- arrives after its date's day-end: both dates are kept, and the repayment counters are by the
-- date a payment counts from, so a closed day's figures never change.
ALTER TABLE payments ADD COLUMN counted_on date;
UPDATE payments SET counted_on = paid_on;
ALTER TABLE payments ALTER COLUMN counted_on SET NOT NULL,
    ADD CHECK (counted_on >= paid_on);
ALTER TABLE repayment_daily RENAME COLUMN paid_on TO counted_on;

-- Money received on a written-off loan is a recovery, not a surplus owed to the customer.
ALTER TABLE payments ADD COLUMN recovery bigint NOT NULL DEFAULT 0 CHECK (recovery >= 0);
ALTER TABLE payments DROP CONSTRAINT payments_check;
ALTER TABLE payments ADD CONSTRAINT payments_parts
    CHECK (to_interest + to_principal + surplus + recovery = amount);
ALTER TABLE loan_status ADD COLUMN recovered bigint NOT NULL DEFAULT 0 CHECK (recovered >= 0);
ALTER TABLE repayment_daily ADD COLUMN recovered bigint NOT NULL DEFAULT 0;
