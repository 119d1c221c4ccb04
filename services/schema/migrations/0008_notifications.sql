-- 0008: OCTO notification subscriptions (docs/api.md "Notifications") stored
-- as webhooks: one table, one resolution, one delivery path.
--
-- dialect says which REST shape created the row and which body it receives:
-- 'webhook' (octo/webhooks: one event, the full resource) or 'notification'
-- (notifications: several types, a thin body with the ids to fetch again).
-- A notification subscription lists every event it wants in event_types
-- (internal names, e.g. booking_update); its `event` is the first of them, so
-- whatever reads `event` alone still sees a valid event. A webhook keeps
-- event_types empty: its `event` is the one event it wants.
ALTER TABLE webhooks
  ADD COLUMN dialect text NOT NULL DEFAULT 'webhook' CHECK (dialect IN ('webhook', 'notification')),
  ADD COLUMN event_types text[] NOT NULL DEFAULT '{}' CHECK (
    event_types <@ ARRAY['booking_update', 'availability_update', 'product_update']::text[]
    AND cardinality(event_types) <= 3 AND array_position(event_types, NULL) IS NULL),
  ADD CONSTRAINT webhooks_dialect_event_types CHECK (CASE dialect
    WHEN 'webhook' THEN cardinality(event_types) = 0
    ELSE cardinality(event_types) >= 1 AND event = event_types[1] END);

-- Resolving the notification subscriptions that want an event (the webhook
-- rows are found by webhooks_resolve_idx).
CREATE INDEX webhooks_resolve_types_idx ON webhooks USING gin (event_types)
  WHERE status = 'enabled' AND dialect = 'notification';

-- The dates of an availability publish, per product: when one publish holds
-- several availability events of a product, each carries the range of them
-- all, and a notification subscription receives one delivery for the range
-- (the first of those events) instead of one per date.
ALTER TABLE events
  ADD COLUMN notification_date_start date,
  ADD COLUMN notification_date_end date,
  ADD CONSTRAINT events_notification_dates CHECK (
    (notification_date_start IS NULL) = (notification_date_end IS NULL)
    AND notification_date_start <= notification_date_end
    AND (notification_date_start IS NULL OR resource_kind = 'availability'));
