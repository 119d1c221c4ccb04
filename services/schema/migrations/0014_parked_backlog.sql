-- 0014: a delivery released unsent because its destination was backlogged
-- ("parked" into a later slot, docs/delivery.md "Sending") is marked, so
-- that once the destination has spare capacity again its parked
-- deliveries can be made due at once (PgDispatchStore::PullForward)
-- without touching deliveries that wait for a retry backoff, a receiver's
-- Retry-After or a webhook's rate limit. Set by the result write of such a
-- release, cleared by the write of any other result of the delivery's
-- claim; NULL otherwise. Adding a nullable column without a default to the
-- partitioned parent rewrites nothing. The partial index holds only parked
-- pending deliveries: the pull-forward finds a webhook's earliest ones in
-- it, and a delivery that is never parked writes nothing to it.
ALTER TABLE deliveries ADD COLUMN parked_backlog boolean;
CREATE INDEX deliveries_parked_idx ON deliveries (webhook_id, next_attempt_at)
  WHERE state = 'pending' AND parked_backlog;
