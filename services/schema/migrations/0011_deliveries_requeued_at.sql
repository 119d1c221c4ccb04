-- 0011: a redelivered or replayed delivery records when it was queued again,
-- so the dashboard's 24-hour health finds its new attempts (the delivery
-- keeps its created_at). Requeues are rare: the partial index holds only
-- requeued deliveries, and a delivery that is never requeued writes nothing
-- to it.
ALTER TABLE deliveries ADD COLUMN requeued_at timestamptz;
CREATE INDEX deliveries_webhook_requeued_idx ON deliveries (webhook_id, requeued_at)
  WHERE requeued_at IS NOT NULL;
