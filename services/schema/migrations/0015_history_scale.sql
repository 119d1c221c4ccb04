-- 0015: what keeps the cost of a delivery and of an attempt-log page flat
-- as the stored history grows (docs/PERFORMANCE.md, "Storage that stays
-- flat").
--
-- 1. Time-ordered ids for events and deliveries (UUID version 7, RFC 9562:
-- 48 bits of Unix milliseconds, then the version, then random bits).
--
-- Random (version 4) ids put every new row's key on a random leaf of its
-- table's B-tree indexes (the primary keys, deliveries' (event_id,
-- webhook_id, created_at) and delivery_attempts' primary key, which lead
-- with those ids). While the history is small those leaves are all in
-- shared buffers; with millions of rows stored an enqueue, a result write
-- (a state change is not a HOT update: state is in partial indexes'
-- predicates) and a lost-attempt insert each touch a leaf that must be read,
-- and the first change to each leaf after a checkpoint writes a full 8 KB
-- page image to the WAL: the cost of a delivery grew with the history kept
-- (docs/PERFORMANCE.md, "Storage that stays flat"). Ids that grow with time
-- append at the right edge of those indexes, as created_at does: the pages
-- touched are the few newest ones, whatever the size of the tables.
--
-- octo-delivery makes event ids itself (NewUuidV7, services/common/uuid.h);
-- delivery ids, and event ids of rows inserted without one (test pings,
-- scripts), come from these defaults. Existing rows keep their ids: a
-- version-4 id stays valid and unique, it only sorts at random among them.
-- The parent's default applies to rows routed into any partition, and
-- octo_retention_create_partitions copies it into new partitions (LIKE ...
-- INCLUDING DEFAULTS); setting it on the parent also sets it on the
-- partitions that exist.
CREATE FUNCTION octo_uuid_v7() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
  -- gen_random_uuid()'s 16 random bytes (version 4: 0100 in the high
  -- nibble of byte 6, the variant bits set), its first 6 bytes replaced by
  -- the big-endian milliseconds, bits 52 and 53 (in set_bit's numbering)
  -- set: version 0111.
  SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
           PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
           FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
$$;

-- 2. A webhook's failed and cancelled deliveries, newest first: the
-- attempt log's "failed" page (PgOperationsStore::List with that state) and
-- a replay's selection read them here instead of walking every delivery of
-- the webhook along deliveries_webhook_created_idx until a page of them is
-- found (with 2 % failed, ~50 rows read per row answered). Only those rows
-- are in it: a delivery enters it once, when it fails or is cancelled (that
-- update changes state, so it writes index entries anyway). Built on every
-- partition now (time proportional to the tables; writes wait meanwhile).
CREATE INDEX deliveries_unsent_idx ON deliveries (webhook_id, created_at, id)
  WHERE state IN ('failed', 'cancelled');

-- The defaults of 1, set last: ALTER TABLE takes an ACCESS EXCLUSIVE lock on
-- events, deliveries and every partition until the migration commits, which
-- would also block every read (claims, the attempt log) for the whole index
-- build above if it came first; CREATE INDEX alone only makes writes wait.
ALTER TABLE events ALTER COLUMN id SET DEFAULT octo_uuid_v7();
ALTER TABLE deliveries ALTER COLUMN id SET DEFAULT octo_uuid_v7();
