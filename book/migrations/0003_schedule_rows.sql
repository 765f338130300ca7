-- A loan's repayment schedule is one row: its due dates, principal and interest parts as arrays
-- (seq k is element k). Payments fill a schedule strictly in order (the oldest instalment
-- first, interest before principal), so what has been paid of each instalment follows from the
-- amount allocated so far (loan_status.paid_principal + paid_interest): instalments before
-- `next_unpaid_seq` are settled, `next_unpaid_paid` of that one is paid, the rest are unpaid.
-- A disbursal writes one row instead of one per instalment, and a payment reads and writes
-- nothing per instalment; the `instalments` view shows the schedule row by row.

CREATE TABLE loan_schedules (
    loan_id   entity_id PRIMARY KEY REFERENCES loans ON DELETE CASCADE,
    due_on    date[] NOT NULL,
    principal bigint[] NOT NULL,
    interest  bigint[] NOT NULL,
    CHECK (array_ndims(due_on) = 1 AND array_lower(due_on, 1) = 1
           AND cardinality(due_on) >= 1
           AND array_lower(principal, 1) = 1 AND cardinality(principal) = cardinality(due_on)
           AND array_lower(interest, 1) = 1 AND cardinality(interest) = cardinality(due_on)),
    CHECK (array_position(due_on, NULL) IS NULL AND array_position(principal, NULL) IS NULL
           AND array_position(interest, NULL) IS NULL),
    CHECK (0 <= ALL (principal) AND 0 <= ALL (interest))
);

INSERT INTO loan_schedules (loan_id, due_on, principal, interest)
SELECT loan_id, array_agg(due_on ORDER BY seq), array_agg(principal ORDER BY seq),
       array_agg(interest ORDER BY seq)
FROM instalments GROUP BY loan_id;

-- Paid so far into the next unpaid instalment (interest first).
ALTER TABLE loan_status
    ADD COLUMN next_unpaid_paid bigint NOT NULL DEFAULT 0 CHECK (next_unpaid_paid >= 0);
UPDATE loan_status s SET next_unpaid_paid = i.paid_principal + i.paid_interest
FROM instalments i
WHERE i.loan_id = s.loan_id AND i.seq = s.next_unpaid_seq
  AND i.paid_principal + i.paid_interest > 0;

-- The instalments a payment settled (by seq), if any: an instalment's settlement date is the
-- value date of the payment whose range holds it.
ALTER TABLE payments
    ADD COLUMN settled_from integer,
    ADD COLUMN settled_to integer,
    ADD CHECK ((settled_from IS NULL) = (settled_to IS NULL)),
    ADD CHECK (settled_from >= 1 AND settled_to >= settled_from);
UPDATE payments p SET settled_from = x.first, settled_to = x.last
FROM (SELECT DISTINCT ON (i.loan_id, i.settled_on) i.loan_id, i.settled_on,
        min(i.seq) OVER w AS first, max(i.seq) OVER w AS last, p.payment_id
      FROM instalments i
      JOIN payments p ON p.loan_id = i.loan_id AND p.paid_on = i.settled_on
      WINDOW w AS (PARTITION BY i.loan_id, i.settled_on)
      ORDER BY i.loan_id, i.settled_on, p.payment_id DESC) x
WHERE p.payment_id = x.payment_id;

DROP TABLE instalments;

CREATE VIEW instalments AS
SELECT s.loan_id, x.seq, x.due_on, x.principal, x.interest,
       x.paid - least(x.paid, x.interest) AS paid_principal,
       least(x.paid, x.interest) AS paid_interest,
       st.paid_on AS settled_on
FROM loan_schedules s
JOIN loan_status ls ON ls.loan_id = s.loan_id
CROSS JOIN LATERAL (
    SELECT u.seq::integer AS seq, u.due_on, u.principal, u.interest,
           least(greatest(ls.paid_principal + ls.paid_interest
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
