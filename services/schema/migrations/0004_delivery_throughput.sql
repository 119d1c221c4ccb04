-- 0004: delivery throughput.
--
-- A claim sets only deliveries.lease_expires_at, which no index covers: with
-- free room on the row's page PostgreSQL writes the new version there as a
-- HOT update (no index entries, no new page). The default fillfactor 100
-- packs pages full at insert, so every claim would move the row to another
-- page and add entries to all four indexes. 70 leaves room for a claim and
-- a result per row on its page. Only pages written from now on get it.
ALTER TABLE deliveries SET (fillfactor = 70);
