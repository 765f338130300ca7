-- Every day-end rewrites the figures of each open loan. With room left on each page the new
-- row version stays on the page of the old one and no index is touched (a HOT update: the
-- columns a day-end writes are in no index), which halves the cost of aging a large book.
ALTER TABLE loan_status SET (fillfactor = 50);

-- Instalments are found from the loan's next unpaid instalment (loan_status.next_unpaid_seq)
-- along the primary key, so the index of unpaid instalments is not needed; without it a
-- payment's update of an instalment touches no index either, given room on the page.
DROP INDEX instalments_unpaid;
ALTER TABLE instalments SET (fillfactor = 85);

-- A loan id on an instalment or a payment is checked by its foreign key to `loans` (whose own
-- id is an `entity_id`); checking its format again on each of a schedule's rows is redundant.
ALTER TABLE instalments ALTER COLUMN loan_id TYPE text;
ALTER TABLE payments ALTER COLUMN loan_id TYPE text;
