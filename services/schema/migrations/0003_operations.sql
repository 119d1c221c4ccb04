-- 0003: delivery operations: secret rotation, endpoint health,
-- per-endpoint limits, and the attempt log's listing order.

ALTER TABLE webhooks
  -- Secret rotation: the secret replaced by the last rotation, still signed
  -- with beside the current one until previous_secret_expires_at.
  ADD COLUMN previous_secret             text CHECK (previous_secret ~ '^whsec_[A-Za-z0-9+/]{43}=$'),
  ADD COLUMN previous_secret_expires_at  timestamptz,
  -- Per-endpoint limits (NULL: none): requests per second and concurrent
  -- requests, enforced by the dispatcher.
  ADD COLUMN rate_limit_per_second       double precision CHECK (
                                           rate_limit_per_second > 0 AND rate_limit_per_second <= 100000),
  ADD COLUMN max_concurrency             integer CHECK (max_concurrency BETWEEN 1 AND 10000),
  -- Endpoint health: when the current run of failed attempts began (NULL
  -- after a success or before any failure); a run longer than the configured
  -- limit disables the webhook.
  ADD COLUMN failing_since               timestamptz,
  ADD CONSTRAINT webhooks_previous_secret_pair CHECK (
    (previous_secret IS NULL) = (previous_secret_expires_at IS NULL));

-- The attempt log: a webhook's deliveries newest first, with a (created_at,
-- id) cursor. Also serves the cascade on webhook delete (its prefix).
DROP INDEX deliveries_webhook_idx;
CREATE INDEX deliveries_webhook_created_idx ON deliveries (webhook_id, created_at, id);
