-- 0016: every deliveries partition is vacuumed after a fixed number of dead
-- rows, whatever its size, so that the claim's walk of the due index
-- (deliveries_due_idx) stays as long as the work of the last minutes, not a
-- share of the week's history (docs/PERFORMANCE.md, "The claim's cost and
-- the history").
--
-- A delivery's result (a state change: never a HOT update) leaves its entry
-- in the partial due index until VACUUM removes it; a claim that was not a
-- HOT update leaves a second one. The claim reads that index from its
-- oldest entry in next_attempt_at order, so it walks every finished
-- delivery's entry not yet vacuumed (marked dead by earlier scans, but its
-- page is still read). With PostgreSQL's defaults a partition is vacuumed
-- once its dead rows pass 20 % of its rows: a week's partition holding
-- 5,000,000 deliveries is left with up to 1,000,000 such entries (a
-- thousand or more index pages read by every claim: the entries of one
-- enqueue share a key and pack ~1,100 to a page, single events ~400), so
-- the claim's cost grew with the week's history.
--
-- Each deliveries partition now has:
-- * autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold =
--   10000: vacuumed once 10,000 rows died, at most every
--   autovacuum_naptime (1 min by default), so what a claim walks is bounded
--   by the results of that time (10 to 25 index pages per 10,000);
-- * vacuum_index_cleanup = on: without it VACUUM skips the indexes when
--   dead rows sit on under 2 % of the heap's pages (a large partition after
--   10,000 deaths), and the due index keeps its dead entries.
-- The cost: each pass reads the partition's indexes whole (the three
-- indexes over every row: 17 to 35 pages per 1,000 deliveries stored), at
-- most once a minute, throttled by autovacuum's cost limit, and the heap
-- pages changed since the last pass.
--
-- And fillfactor = 50 instead of 0004's 70, so that a claim's UPDATE is a HOT
-- update (the new version on the row's own page: no index entries). A claim
-- rewrites every row of a page at once (an enqueue fills pages with the
-- deliveries of its batch, a claim takes them in that order), and a new
-- version is about as large as the row: at 70 a page holds 43 rows and room
-- for 17 new versions, so 26 of every 43 claims (measured: 55 %) wrote a
-- version on another page and an entry in each of four indexes (the due
-- index's a second one to be walked until vacuumed). At 50 (30 rows, room
-- for 29) nearly all are HOT: 3,949 -> 2,390 buffers and 90 -> 36 KB of WAL
-- per claim of 200 (docs/PERFORMANCE.md). The cost: room left on pages at
-- insert (30 rows a page instead of 43); after a benchmark run the heap was
-- no larger (the non-HOT claims' versions had taken pages too), history
-- stored without claims is (+16 % for deliveries and its indexes at 1 M
-- attempt rows). Only pages written from now on get it.
--
-- Existing partitions get the settings here (SHARE UPDATE EXCLUSIVE:
-- claims, results and enqueues go on), new ones when
-- octo_retention_create_partitions creates them (the same function as
-- 0013's, only the deliveries partitions' storage options differ).

CREATE OR REPLACE FUNCTION octo_retention_create_partitions(from_t timestamptz, to_t timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  week timestamptz := octo_retention_week(from_t);
  parent text;
  part text;
  created integer := 0;
BEGIN
  WHILE week <= to_t LOOP
    FOREACH parent IN ARRAY ARRAY['events', 'deliveries', 'delivery_attempts'] LOOP
      part := parent || '_w' || to_char(week AT TIME ZONE 'UTC', 'YYYYMMDD');
      IF to_regclass(quote_ident(part)) IS NULL THEN
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)%s',
                       part, parent, CASE WHEN parent = 'deliveries' THEN
                         -- 0016: room on each page for a claim of each row (HOT),
                         -- vacuumed after a fixed number of dead rows.
                         ' WITH (fillfactor = 50, autovacuum_vacuum_scale_factor = 0,'
                         ' autovacuum_vacuum_threshold = 10000, vacuum_index_cleanup = on)'
                         ELSE '' END);
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       parent, part, week, week + interval '7 days');
        created := created + 1;
      END IF;
    END LOOP;
    week := week + interval '7 days';
  END LOOP;
  RETURN created;
END;
$$;

DO $$
DECLARE
  part regclass;
BEGIN
  FOR part IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'deliveries'::regclass LOOP
    EXECUTE format('ALTER TABLE %s SET (fillfactor = 50, autovacuum_vacuum_scale_factor = 0,'
                   ' autovacuum_vacuum_threshold = 10000, vacuum_index_cleanup = on)', part);
  END LOOP;
END;
$$;
