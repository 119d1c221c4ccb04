-- 0005: deliveries survive crashes, outages and redelivery storms
-- (docs/delivery.md, "Faults").
--
-- claimed_attempt: the attempt number the live (or last) claim reserved,
-- NULL once that claim reported (a result or a release was written). A claim
-- that finds it still set knows the previous claim never reported: the
-- process stopped (kill -9, crash) before the outcome was recorded. It then
-- records that attempt as `interrupted` and counts it in unreported_claims;
-- once that count reaches the dispatcher's --max_unreported_claims the
-- delivery is quarantined (failed, with the reason in its last attempt)
-- instead of being claimed again.
--
-- redeliver_requested: a redeliver (or replay) arrived while a send held a
-- live lease. The lease is left alone, so the delivery is never claimable
-- twice at once; the write of that send's result makes it due again.
--
-- All three columns are outside every index: claims and result writes stay
-- HOT updates (see 0004).
ALTER TABLE deliveries
  ADD COLUMN claimed_attempt      integer CHECK (claimed_attempt >= 1),
  ADD COLUMN unreported_claims    integer NOT NULL DEFAULT 0 CHECK (unreported_claims >= 0),
  ADD COLUMN redeliver_requested  boolean NOT NULL DEFAULT false;

-- `interrupted`: the process stopped before the attempt's outcome was
-- recorded (whether the request left, and what came back, is unknown).
ALTER TABLE deliveries DROP CONSTRAINT deliveries_last_error_class_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_last_error_class_check CHECK (
  last_error_class IN ('dns', 'connect', 'tls', 'timeout', 'http', 'blocked', 'internal', 'interrupted'));
ALTER TABLE delivery_attempts DROP CONSTRAINT delivery_attempts_error_class_check;
ALTER TABLE delivery_attempts ADD CONSTRAINT delivery_attempts_error_class_check CHECK (
  error_class IN ('dns', 'connect', 'tls', 'timeout', 'http', 'blocked', 'internal', 'interrupted'));
