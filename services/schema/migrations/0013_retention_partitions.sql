-- 0013: retention by time partitions (docs/delivery.md, "Retention").
--
-- events, deliveries and delivery_attempts become tables partitioned by
-- range of creation time, one partition per UTC week (Monday 00:00), the
-- three tables' partitions of a week forming one "slice". octo-delivery
-- creates slices ahead of time and drops whole slices once they are older
-- than --retention and hold no pending delivery: never row-by-row deletes.
--
-- Partition keys: events.created_at, deliveries.created_at (always the
-- created_at of the delivery's event: both rows are written in one
-- transaction, at its now()), delivery_attempts.delivery_created_at (a copy
-- of its delivery's created_at, new here). Every unique key includes its
-- table's key, so:
-- * the primary keys are (id, created_at) and (delivery_id,
--   attempt_number, delivery_created_at); a lookup by id alone probes one
--   index per partition (a week each: a handful);
-- * (supplier_id, idempotency_key) of events is no longer a unique
--   constraint: the enqueue transaction's advisory lock on each key and its
--   look-up before the insert are what keep a key stored once, and a key
--   is remembered for as long as its event is kept;
-- * the foreign keys between the three tables (which would need the
--   referenced table's key in the referencing table) are replaced: their
--   ON DELETE CASCADE by statement triggers below (deleting events deletes
--   their deliveries, deleting deliveries deletes their attempts), their
--   existence check by what the code guarantees (deliveries are inserted
--   with their event, attempts from the delivery row they belong to). The
--   keys to suppliers, connections and webhooks stay foreign keys.
--
-- The existing rows are copied into weekly partitions covering their
-- creation times (time proportional to the three tables' size, under this
-- migration's exclusive locks), so retention applies to them at once.

-- The UTC week (Monday 00:00) that holds `t`.
CREATE FUNCTION octo_retention_week(t timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT date_trunc('week', t AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
$$;

ALTER TABLE events RENAME TO events_old;
ALTER INDEX events_pkey RENAME TO events_old_pkey;
ALTER INDEX events_supplier_id_idempotency_key_key RENAME TO events_old_key;
ALTER INDEX events_connection_idx RENAME TO events_old_connection_idx;
ALTER TABLE deliveries RENAME TO deliveries_old;
ALTER INDEX deliveries_pkey RENAME TO deliveries_old_pkey;
ALTER INDEX deliveries_event_id_webhook_id_key RENAME TO deliveries_old_key;
ALTER INDEX deliveries_due_idx RENAME TO deliveries_old_due_idx;
ALTER INDEX deliveries_webhook_created_idx RENAME TO deliveries_old_webhook_created_idx;
ALTER INDEX deliveries_webhook_requeued_idx RENAME TO deliveries_old_webhook_requeued_idx;
ALTER INDEX deliveries_ordered_pending_idx RENAME TO deliveries_old_ordered_pending_idx;
ALTER TABLE delivery_attempts RENAME TO delivery_attempts_old;
ALTER INDEX delivery_attempts_pkey RENAME TO delivery_attempts_old_pkey;

-- The columns and constraints of 0002 and the migrations since (0005,
-- 0008, 0011, 0012), in the same order.
CREATE TABLE events (
  id               uuid NOT NULL DEFAULT gen_random_uuid(),
  supplier_id      uuid NOT NULL REFERENCES suppliers (id) ON DELETE CASCADE,
  idempotency_key  text NOT NULL CHECK (
                     octet_length(idempotency_key) BETWEEN 1 AND 200
                     AND idempotency_key !~ '[[:cntrl:]]'),
  connection_id    uuid,
  event            text NOT NULL CHECK (event IN ('booking_update', 'order_update',
                     'availability_update', 'product_update', 'webhook_test')),
  resource_kind    text NOT NULL CHECK (resource_kind IN ('booking', 'order', 'availability', 'product')),
  resource_key     text NOT NULL CHECK (
                     octet_length(resource_key) BETWEEN 1 AND 1000 AND resource_key !~ '[[:cntrl:]]'),
  resource         json NOT NULL CHECK (json_typeof(resource) = 'object'),
  localized        json NOT NULL DEFAULT '{}' CHECK (octo_is_localized(localized)),
  diff             json NOT NULL DEFAULT '[]' CHECK (octo_is_diff(diff)),
  diff_supplied    boolean NOT NULL DEFAULT false,
  product_id       text CHECK (octet_length(product_id) BETWEEN 1 AND 200 AND product_id !~ '[[:cntrl:]]'),
  option_id        text CHECK (octet_length(option_id) BETWEEN 1 AND 200 AND option_id !~ '[[:cntrl:]]'),
  occurred_at      timestamptz NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  delivery_count   integer NOT NULL DEFAULT 0 CHECK (delivery_count >= 0),
  notification_date_start date,
  notification_date_end date,
  PRIMARY KEY (id, created_at),
  FOREIGN KEY (supplier_id, connection_id) REFERENCES connections (supplier_id, id) ON DELETE CASCADE,
  CHECK (event = 'webhook_test' OR event = resource_kind || '_update'),
  CHECK (event <> 'availability_update' OR (product_id IS NOT NULL AND option_id IS NOT NULL)),
  CHECK (resource_kind = 'availability' OR (product_id IS NULL AND option_id IS NULL)),
  CONSTRAINT events_notification_dates CHECK (
    (notification_date_start IS NULL) = (notification_date_end IS NULL)
    AND notification_date_start <= notification_date_end
    AND (notification_date_start IS NULL OR resource_kind = 'availability'))
) PARTITION BY RANGE (created_at);
-- Idempotency (the enqueue's look-up of stored keys) and the supplier's
-- foreign key when a supplier is deleted.
CREATE INDEX events_idempotency_idx ON events (supplier_id, idempotency_key);
CREATE INDEX events_connection_idx ON events (connection_id) WHERE connection_id IS NOT NULL;

CREATE TABLE deliveries (
  id                uuid NOT NULL DEFAULT gen_random_uuid(),
  event_id          uuid NOT NULL,
  webhook_id        uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
  state             text NOT NULL DEFAULT 'pending' CHECK (
                      state IN ('pending', 'succeeded', 'failed', 'cancelled')),
  attempt_count     integer NOT NULL DEFAULT 0 CHECK (attempt_count >= 0),
  next_attempt_at   timestamptz NOT NULL DEFAULT now(),
  lease_expires_at  timestamptz,
  created_at        timestamptz NOT NULL DEFAULT now(),
  completed_at      timestamptz,
  last_http_status  integer CHECK (last_http_status BETWEEN 100 AND 599),
  last_error_class  text CONSTRAINT deliveries_last_error_class_check CHECK (
                      last_error_class IN ('dns', 'connect', 'tls', 'timeout', 'http', 'blocked', 'internal',
                                           'interrupted')),
  claimed_attempt      integer CHECK (claimed_attempt >= 1),
  unreported_claims    integer NOT NULL DEFAULT 0 CHECK (unreported_claims >= 0),
  redeliver_requested  boolean NOT NULL DEFAULT false,
  requeued_at          timestamptz,
  ordered_resource_id  bigint,
  sequence             bigint,
  ordered_at           timestamptz,
  PRIMARY KEY (id, created_at),
  UNIQUE (event_id, webhook_id, created_at),
  CHECK ((state = 'pending') = (completed_at IS NULL)),
  CHECK (state <> 'succeeded' OR attempt_count >= 1),
  CHECK (CASE WHEN attempt_count = 0 THEN last_http_status IS NULL AND last_error_class IS NULL
              ELSE (last_http_status IS NULL) <> (last_error_class IS NULL) END),
  CONSTRAINT deliveries_ordered_check CHECK (
    (ordered_resource_id IS NULL AND sequence IS NULL AND ordered_at IS NULL)
    OR (ordered_resource_id IS NOT NULL AND sequence >= 1 AND ordered_at IS NOT NULL))
) PARTITION BY RANGE (created_at);
CREATE INDEX deliveries_due_idx ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_webhook_created_idx ON deliveries (webhook_id, created_at, id);
CREATE INDEX deliveries_webhook_requeued_idx ON deliveries (webhook_id, requeued_at)
  WHERE requeued_at IS NOT NULL;
CREATE INDEX deliveries_ordered_pending_idx
  ON deliveries (ordered_resource_id, ordered_at, sequence)
  WHERE state = 'pending' AND ordered_resource_id IS NOT NULL;
-- Pruning ordered_resources: whether any delivery (in any state) of a
-- resource is still stored. Ordered deliveries only; the column never
-- changes, so claims and results stay HOT updates.
CREATE INDEX deliveries_ordered_resource_idx ON deliveries (ordered_resource_id)
  WHERE ordered_resource_id IS NOT NULL;

CREATE TABLE delivery_attempts (
  delivery_id       uuid NOT NULL,
  attempt_number    integer NOT NULL CHECK (attempt_number >= 1),
  started_at        timestamptz NOT NULL,
  duration_ms       double precision NOT NULL CHECK (duration_ms >= 0 AND duration_ms < 'Infinity'),
  http_status       integer CHECK (http_status BETWEEN 100 AND 599),
  error_class       text CONSTRAINT delivery_attempts_error_class_check CHECK (
                      error_class IN ('dns', 'connect', 'tls', 'timeout', 'http', 'blocked', 'internal',
                                      'interrupted')),
  response_snippet  text NOT NULL DEFAULT '' CHECK (char_length(response_snippet) <= 4096),
  -- The created_at of the delivery: its attempts live in its week's slice.
  delivery_created_at timestamptz NOT NULL,
  PRIMARY KEY (delivery_id, attempt_number, delivery_created_at),
  CHECK ((http_status IS NULL) <> (error_class IS NULL))
) PARTITION BY RANGE (delivery_created_at);

-- ON DELETE CASCADE between the three tables (a supplier, connection or
-- webhook deleted takes its events, their deliveries and attempts). The
-- rows of a dropped partition go without them: a slice is dropped whole.
CREATE FUNCTION octo_events_delete_deliveries() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM deliveries WHERE event_id IN (SELECT id FROM gone);
  RETURN NULL;
END;
$$;
CREATE TRIGGER events_delete_deliveries AFTER DELETE ON events
  REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION octo_events_delete_deliveries();
CREATE FUNCTION octo_deliveries_delete_attempts() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM delivery_attempts WHERE delivery_id IN (SELECT id FROM gone);
  RETURN NULL;
END;
$$;
CREATE TRIGGER deliveries_delete_attempts AFTER DELETE ON deliveries
  REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION octo_deliveries_delete_attempts();

-- Creates the missing partitions of every week from the week of `from_t`
-- to the week of `to_t`; returns how many were created. Each partition is
-- made as a table of its own and attached: ATTACH locks the parent only in
-- SHARE UPDATE EXCLUSIVE mode (CREATE TABLE ... PARTITION OF would take
-- ACCESS EXCLUSIVE), so claims, results and enqueues go on meanwhile.
-- Partition names: <table>_wYYYYMMDD, the Monday the week starts on (UTC).
CREATE FUNCTION octo_retention_create_partitions(from_t timestamptz, to_t timestamptz) RETURNS integer
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
                         -- 0004: room on each page for a claim and a result (HOT).
                         ' WITH (fillfactor = 70)' ELSE '' END);
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

-- The week of every slice (the deliveries partitions), oldest first.
CREATE FUNCTION octo_retention_slices() RETURNS SETOF timestamptz
LANGUAGE sql STABLE AS $$
  SELECT to_date(right(c.relname, 8), 'YYYYMMDD')::timestamp AT TIME ZONE 'UTC'
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
  WHERE i.inhparent = 'deliveries'::regclass AND c.relname ~ '^deliveries_w[0-9]{8}$'
  ORDER BY 1
$$;

-- Drops the slice of the week starting `week` if it holds no pending
-- delivery (a delivery still retrying keeps its slice: its event and
-- attempts with it); returns whether it was dropped. The parents are
-- locked first (DROP of a partition locks its parent ACCESS EXCLUSIVE), in
-- the order the enqueue takes them; the caller sets a short lock_timeout,
-- so claims and results queued behind this wait at most that long. Under
-- the lock no delivery of the slice can become pending (redeliver, replay)
-- before it is gone.
CREATE FUNCTION octo_retention_drop_slice(week timestamptz) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  sfx text := to_char(week AT TIME ZONE 'UTC', 'YYYYMMDD');
  held boolean;
BEGIN
  IF to_regclass(quote_ident('deliveries_w' || sfx)) IS NOT NULL THEN
    -- Unlocked first: a slice held by a pending delivery is not locked for
    -- nothing. Also a pending delivery of another week whose event is in
    -- this one: the service never writes one (a delivery's created_at is its
    -- event's), but rows from before this migration or written by hand may
    -- differ.
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE state = ''pending'')'
                   ' OR EXISTS (SELECT 1 FROM deliveries d JOIN %I e ON e.id = d.event_id'
                   '   WHERE d.state = ''pending'')', 'deliveries_w' || sfx, 'events_w' || sfx)
      INTO held;
    IF held THEN
      RETURN false;
    END IF;
  END IF;
  LOCK TABLE ONLY events, deliveries, delivery_attempts IN ACCESS EXCLUSIVE MODE;
  IF to_regclass(quote_ident('deliveries_w' || sfx)) IS NOT NULL THEN
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE state = ''pending'')', 'deliveries_w' || sfx)
      INTO held;
    IF held THEN
      RETURN false;
    END IF;
  END IF;
  EXECUTE format('DROP TABLE IF EXISTS %I, %I, %I',
                 'delivery_attempts_w' || sfx, 'deliveries_w' || sfx, 'events_w' || sfx);
  RETURN true;
END;
$$;

-- The existing rows, into the partitions of the weeks that hold them, and
-- the weeks from last week to a week from now (octo-delivery keeps creating
-- them ahead; last week's takes a row written with a recent past time, e.g.
-- by an operator's script, on a Monday).
SELECT count(octo_retention_create_partitions(week, week)) FROM (
  SELECT DISTINCT octo_retention_week(created_at) AS week FROM events_old
  UNION SELECT DISTINCT octo_retention_week(created_at) FROM deliveries_old) AS weeks;
SELECT octo_retention_create_partitions(now() - interval '7 days', now() + interval '7 days');

INSERT INTO events SELECT id, supplier_id, idempotency_key, connection_id, event, resource_kind,
  resource_key, resource, localized, diff, diff_supplied, product_id, option_id, occurred_at,
  created_at, delivery_count, notification_date_start, notification_date_end FROM events_old;
INSERT INTO deliveries SELECT id, event_id, webhook_id, state, attempt_count, next_attempt_at,
  lease_expires_at, created_at, completed_at, last_http_status, last_error_class, claimed_attempt,
  unreported_claims, redeliver_requested, requeued_at, ordered_resource_id, sequence, ordered_at
  FROM deliveries_old;
INSERT INTO delivery_attempts SELECT a.delivery_id, a.attempt_number, a.started_at, a.duration_ms,
  a.http_status, a.error_class, a.response_snippet, d.created_at
  FROM delivery_attempts_old a JOIN deliveries_old d ON d.id = a.delivery_id;

DROP TABLE delivery_attempts_old;
DROP TABLE deliveries_old;
DROP TABLE events_old;

-- ordered_resources: when the resource last received a delivery (the
-- enqueue's upsert sets it). A row idle for longer than the retention
-- period whose deliveries are all gone is deleted by octo-delivery; the
-- resource's next event starts its numbering at 1 again. Existing rows
-- count from now.
ALTER TABLE ordered_resources ADD COLUMN last_enqueued_at timestamptz NOT NULL DEFAULT now();
