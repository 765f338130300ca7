-- Roll rates with month-end cut-offs: each loan's bucket and outstanding principal as of the
-- last day-end that aged it (CLOSED or WRITTEN_OFF once a day-end has seen it so). Events applied
-- after that day-end do not change them, so the first day-end of a month rolls the month just
-- ended from its last day-end's figures, whatever the new day's events did.
ALTER TABLE loan_status
    ADD COLUMN dayend_bucket text,
    ADD COLUMN dayend_balance bigint;

-- A book migrated with days already closed starts from its current figures.
UPDATE loan_status SET dayend_bucket = dpd_bucket(state, dpd),
    dayend_balance = outstanding_principal
WHERE EXISTS (SELECT 1 FROM business_days WHERE closed_at IS NOT NULL);

COMMENT ON COLUMN loan_status.month_start_bucket IS
    'Bucket at the last day-end of the previous month (NULL: not open then)';
