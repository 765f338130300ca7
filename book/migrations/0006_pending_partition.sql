-- The events partition a waiting payment or write-off arrived on (its loan's partition). Once
-- that partition has delivered the tick of a day, nothing more of its loans is applied until
-- the day closes, so the transaction that records the tick applies the partition's waiting
-- events dated up to that day; the partitions' transactions run side by side. NULL for events
-- that waited before this column existed: the day-end applies those.
ALTER TABLE pending_events ADD COLUMN partition integer;
