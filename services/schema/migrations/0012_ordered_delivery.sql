-- 0012: ordered delivery per resource, opt-in per webhook (docs/delivery.md,
-- "Ordered delivery"). An ordered webhook's deliveries of one resource are
-- sent one at a time, in the order of their events' occurred_at (ties:
-- publish order), each numbered per (webhook, resource) from 1.
--
-- Existing rows stay valid: webhooks are unordered (false), deliveries carry
-- no order (NULL columns). Unordered deliveries never enter the new index.
ALTER TABLE webhooks ADD COLUMN ordered boolean NOT NULL DEFAULT false;

-- One row per (ordered webhook, resource): the last sequence number handed
-- out. Its row lock serialises an enqueue that adds deliveries of the
-- resource with a result that finishes one (both then look for the next
-- delivery to make due). The resource is the one diffs use
-- (events.resource_kind, events.resource_key; the webhook fixes the supplier).
CREATE TABLE ordered_resources (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  webhook_id    uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
  resource_kind text NOT NULL,
  resource_key  text NOT NULL,
  last_sequence bigint NOT NULL DEFAULT 0 CHECK (last_sequence >= 0),
  -- The lease of the resource's delivery being sent, set by the claim that
  -- took it: no other delivery of the resource is claimed until its result
  -- clears it or the time passes (its process died).
  in_flight_until timestamptz,
  UNIQUE (webhook_id, resource_kind, resource_key)
);

-- Set only for the deliveries of ordered webhooks: the resource, the
-- sequence number (the webhook-sequence header) and the event's occurred_at
-- (the sending order, copied so that the rule reads one index). No foreign
-- key: the rows of both tables go with their webhook, and an unordered
-- insert checks nothing more.
ALTER TABLE deliveries
  ADD COLUMN ordered_resource_id bigint,
  ADD COLUMN sequence bigint,
  ADD COLUMN ordered_at timestamptz;
-- NOT VALID: the existing rows are not scanned (under this migration's
-- exclusive lock on deliveries); they hold NULL in all three columns, which
-- the check accepts. New and updated rows are checked from now on. It is
-- left unvalidated: a VALIDATE in this same transaction would scan the whole
-- table under that lock for nothing.
ALTER TABLE deliveries ADD CONSTRAINT deliveries_ordered_check CHECK (
  (ordered_resource_id IS NULL AND sequence IS NULL AND ordered_at IS NULL)
  OR (ordered_resource_id IS NOT NULL AND sequence >= 1 AND ordered_at IS NOT NULL)) NOT VALID;

-- The claim rule's lookup (is there an earlier unfinished delivery of this
-- resource?) and the search for a resource's next
-- delivery: pending ordered deliveries only.
CREATE INDEX deliveries_ordered_pending_idx
  ON deliveries (ordered_resource_id, ordered_at, sequence)
  WHERE state = 'pending' AND ordered_resource_id IS NOT NULL;
