-- GetDelivery's transaction before: the webhook locked FOR KEY SHARE, the delivery, its attempts.
-- The statements of services/delivery/operations_store.cc, expanded; a random row of
-- flat_probe_samples (samples.sql) per transaction. See docs/PERFORMANCE.md,
-- "The attempt log's page", for the pgbench command.
\set i random(1, :nsamples)
SELECT webhook_id AS w, connection_id AS c, delivery_id AS d, created_us AS t FROM flat_probe_samples WHERE n = :i \gset
BEGIN;
SELECT w.status, w.event, c.supplier_id::text FROM webhooks w JOIN connections c ON c.id = w.connection_id WHERE w.id = :w::uuid AND w.connection_id = :c::uuid FOR KEY SHARE OF w;
SELECT d.id::text, d.webhook_id::text, d.event_id::text, e.event, d.state, d.attempt_count, (extract(epoch FROM d.created_at) * 1000000)::bigint, (extract(epoch FROM NULLIF(d.next_attempt_at, 'infinity')) * 1000000)::bigint, (extract(epoch FROM d.completed_at) * 1000000)::bigint, d.last_http_status, d.last_error_class FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.id = :d::uuid AND d.webhook_id = :w::uuid;
SELECT attempt_number, (extract(epoch FROM started_at) * 1000000)::bigint, duration_ms, COALESCE(http_status, 0), COALESCE(error_class, ''), response_snippet FROM delivery_attempts WHERE delivery_id = :d::uuid AND delivery_created_at = ('epoch'::timestamptz + :t::bigint * interval '1 microsecond') ORDER BY attempt_number;
COMMIT;
