-- 0010: the dashboard's 24-hour health of a webhook reads the webhook's
-- recent deliveries (deliveries_webhook_created_idx) and then their attempts
-- (the attempts' primary key), so delivery_attempts, written by every
-- delivery, keeps only its primary key.
DROP INDEX IF EXISTS delivery_attempts_started_idx;
