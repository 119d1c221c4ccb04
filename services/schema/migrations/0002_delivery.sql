-- 0002: the delivery engine (docs/delivery.md): events, the last state of each
-- resource (for computed diffs), deliveries (the durable queue) and every
-- attempt. Written by octo-delivery; octo-subscription only reads webhooks.
--
-- As in 0001, the constraints are the last line of defence: the services
-- validate first, but a row that breaks a rule cannot be stored whoever
-- writes it.

-- An event's connection must belong to the event's supplier: the composite
-- foreign key events (supplier_id, connection_id) needs this key.
ALTER TABLE connections ADD CONSTRAINT connections_supplier_id_id_key UNIQUE (supplier_id, id);

-- Resolving the webhooks that want an event: the enabled webhooks of a
-- connection for one event type.
CREATE INDEX webhooks_resolve_idx ON webhooks (connection_id, event) WHERE status = 'enabled';

-- A BCP 47 language tag as the publisher may send one ("en", "de-AT",
-- "zh-Hant-TW", "es-419"): letters, then subtags of letters and digits.
CREATE FUNCTION octo_is_language_tag(tag text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT octet_length(tag) <= 35 AND tag ~ '^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$'
$$;

-- events.localized: an object of at most 50 language tag -> resource object.
CREATE FUNCTION octo_is_localized(localized json) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT CASE WHEN json_typeof(localized) <> 'object' THEN false ELSE (
    SELECT count(*) <= 50
           AND coalesce(bool_and(octo_is_language_tag(key) AND json_typeof(value) = 'object'), true)
    FROM json_each(localized)) END
$$;

-- events.diff: an array of op objects, each with an "op" of add, remove or
-- replace and a string "path" (a JSON pointer).
CREATE FUNCTION octo_is_diff(diff json) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT CASE WHEN json_typeof(diff) <> 'array' THEN false ELSE (
    SELECT coalesce(bool_and(
             CASE WHEN json_typeof(op) <> 'object' THEN false
                  ELSE coalesce(op ->> 'op' IN ('add', 'remove', 'replace'), false)
                       AND coalesce(json_typeof(op -> 'path') = 'string', false) END), true)
    FROM json_array_elements(diff) AS op) END
$$;

-- One published event. `json`, not `jsonb`: the publisher's text (key order,
-- number spelling) is kept byte for byte and sent as it is.
CREATE TABLE events (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  supplier_id      uuid NOT NULL REFERENCES suppliers (id) ON DELETE CASCADE,
  -- Publishing the same key again (per supplier) creates nothing.
  idempotency_key  text NOT NULL CHECK (
                     octet_length(idempotency_key) BETWEEN 1 AND 200
                     AND idempotency_key !~ '[[:cntrl:]]'),
  -- NULL: every connection of the supplier with a webhook for the event.
  connection_id    uuid,
  event            text NOT NULL CHECK (event IN ('booking_update', 'order_update',
                     'availability_update', 'product_update', 'webhook_test')),
  resource_kind    text NOT NULL CHECK (resource_kind IN ('booking', 'order', 'availability', 'product')),
  -- The resource's identity (octo::payload::ResourceKey, or the publisher's).
  resource_key     text NOT NULL CHECK (
                     octet_length(resource_key) BETWEEN 1 AND 1000 AND resource_key !~ '[[:cntrl:]]'),
  resource         json NOT NULL CHECK (json_typeof(resource) = 'object'),
  -- Language tag -> the resource rendered in that language.
  localized        json NOT NULL DEFAULT '{}' CHECK (octo_is_localized(localized)),
  -- The publisher's diff (diff_supplied) or the one computed against the
  -- previous snapshot of the resource ([] for its first event).
  diff             json NOT NULL DEFAULT '[]' CHECK (octo_is_diff(diff)),
  diff_supplied    boolean NOT NULL DEFAULT false,
  -- Sent beside "availability" in the body: availability events only.
  product_id       text CHECK (octet_length(product_id) BETWEEN 1 AND 200 AND product_id !~ '[[:cntrl:]]'),
  option_id        text CHECK (octet_length(option_id) BETWEEN 1 AND 200 AND option_id !~ '[[:cntrl:]]'),
  occurred_at      timestamptz NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  -- How many deliveries the event created (the answer to a duplicate publish).
  delivery_count   integer NOT NULL DEFAULT 0 CHECK (delivery_count >= 0),
  UNIQUE (supplier_id, idempotency_key),
  FOREIGN KEY (supplier_id, connection_id) REFERENCES connections (supplier_id, id) ON DELETE CASCADE,
  CHECK (event = 'webhook_test' OR event = resource_kind || '_update'),
  CHECK (event <> 'availability_update' OR (product_id IS NOT NULL AND option_id IS NOT NULL)),
  CHECK (resource_kind = 'availability' OR (product_id IS NULL AND option_id IS NULL))
);
-- The composite foreign key's lookups when a connection is deleted.
CREATE INDEX events_connection_idx ON events (connection_id) WHERE connection_id IS NOT NULL;

-- The last published state of each resource, which the next event's diff is
-- computed against. Replaced only by an event not older than it.
CREATE TABLE resource_snapshots (
  supplier_id    uuid NOT NULL REFERENCES suppliers (id) ON DELETE CASCADE,
  resource_kind  text NOT NULL CHECK (resource_kind IN ('booking', 'order', 'availability', 'product')),
  resource_key   text NOT NULL CHECK (
                   octet_length(resource_key) BETWEEN 1 AND 1000 AND resource_key !~ '[[:cntrl:]]'),
  resource       json NOT NULL CHECK (json_typeof(resource) = 'object'),
  occurred_at    timestamptz NOT NULL,
  updated_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (supplier_id, resource_kind, resource_key)
);

-- One event to one webhook: the durable queue. Due when pending,
-- next_attempt_at has passed and no unexpired lease is held. Deleting a
-- webhook deletes (cancels) its deliveries through the foreign key.
CREATE TABLE deliveries (
  id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  event_id          uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
  webhook_id        uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
  state             text NOT NULL DEFAULT 'pending' CHECK (
                      state IN ('pending', 'succeeded', 'failed', 'cancelled')),
  attempt_count     integer NOT NULL DEFAULT 0 CHECK (attempt_count >= 0),
  next_attempt_at   timestamptz NOT NULL DEFAULT now(),
  lease_expires_at  timestamptz,
  created_at        timestamptz NOT NULL DEFAULT now(),
  completed_at      timestamptz,
  -- The outcome of the last attempt: exactly one of the two once attempted.
  last_http_status  integer CHECK (last_http_status BETWEEN 100 AND 599),
  last_error_class  text CHECK (
                      last_error_class IN ('dns', 'connect', 'tls', 'timeout', 'http', 'blocked', 'internal')),
  UNIQUE (event_id, webhook_id),
  -- Finished deliveries (succeeded, failed, cancelled) carry their end time.
  CHECK ((state = 'pending') = (completed_at IS NULL)),
  CHECK (state <> 'succeeded' OR attempt_count >= 1),
  CHECK (CASE WHEN attempt_count = 0 THEN last_http_status IS NULL AND last_error_class IS NULL
              ELSE (last_http_status IS NULL) <> (last_error_class IS NULL) END)
);
-- The claim: due pending deliveries, oldest due first.
CREATE INDEX deliveries_due_idx ON deliveries (next_attempt_at) WHERE state = 'pending';
-- Deleting a webhook (the cascade) and cancelling its pending deliveries.
CREATE INDEX deliveries_webhook_idx ON deliveries (webhook_id);

-- Every attempt of a delivery, in order.
CREATE TABLE delivery_attempts (
  delivery_id       uuid NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
  attempt_number    integer NOT NULL CHECK (attempt_number >= 1),
  started_at        timestamptz NOT NULL,
  -- 'Infinity' and 'NaN' sort above every number.
  duration_ms       double precision NOT NULL CHECK (duration_ms >= 0 AND duration_ms < 'Infinity'),
  http_status       integer CHECK (http_status BETWEEN 100 AND 599),
  -- http: a response was received but is unusable (malformed, reset).
  error_class       text CHECK (
                      error_class IN ('dns', 'connect', 'tls', 'timeout', 'http', 'blocked', 'internal')),
  -- The first 4 KB of the response body, invalid UTF-8 replaced: at most
  -- one character per byte.
  response_snippet  text NOT NULL DEFAULT '' CHECK (char_length(response_snippet) <= 4096),
  PRIMARY KEY (delivery_id, attempt_number),
  CHECK ((http_status IS NULL) <> (error_class IS NULL))
);
