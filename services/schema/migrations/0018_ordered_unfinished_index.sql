-- 0018: the index of ordered delivery's resource rule, keyed so that no
-- statistics can send its look-ups to the queue's index (docs/delivery.md,
-- "Ordered delivery"; docs/PERFORMANCE.md, "The ordered stall at scale").
--
-- The rule's look-ups (is there an earlier unfinished delivery of this
-- resource? which is its first?) said `state = 'pending'`, and so did the
-- predicates of two partial indexes: deliveries_ordered_pending_idx, built
-- for them, and deliveries_due_idx, the queue's (next_attempt_at) WHERE
-- state = 'pending'. Both could serve them. A weekly partition vacuumed or
-- analysed while nothing was pending and no ordered delivery was stored
-- (a quiet spell, or a large history of unordered traffic) has both
-- partial indexes at 0 tuples and ordered_resource_id all NULL in its
-- statistics: every path then costs about nothing, and the planner read
-- the queue's index whole for each look-up, filtering on the resource.
-- With 100,000 ordered deliveries pending that made one claim take 322 s
-- (it is cancelled at the statement timeout, 30 s, and tried again) until
-- autovacuum analysed the partition again: at 10,000,000 stored attempt
-- rows the ordered phase of the benchmark sent nothing for 45 s.
--
-- `completed_at IS NULL` is the same set of rows (a CHECK of deliveries:
-- (state = 'pending') = (completed_at IS NULL)), but the planner proves an
-- index's predicate from the query's own conditions, not from CHECKs: the
-- look-ups now say `completed_at IS NULL`, which this index's predicate
-- matches and the queue's index's does not, so they can use only this
-- index (or the resource's own rows, deliveries_ordered_resource_idx),
-- whatever the statistics say.
--
-- Written as the service's writes are: CREATE INDEX on the partitioned
-- table (each partition's index is built in this transaction; writes to
-- deliveries wait for it, reads do not). Only pending ordered rows enter it.
CREATE INDEX deliveries_ordered_unfinished_idx
  ON deliveries (ordered_resource_id, ordered_at, sequence)
  WHERE completed_at IS NULL AND ordered_resource_id IS NOT NULL;

-- Its predecessor, which no statement can use any more for this.
DROP INDEX deliveries_ordered_pending_idx;
