-- ListDeliveries' transaction before: the webhook locked FOR KEY SHARE, the page (custom plans).
-- The statements of services/delivery/operations_store.cc, expanded; a random row of
-- flat_probe_samples (samples.sql) per transaction. See docs/PERFORMANCE.md,
-- "The attempt log's page", for the pgbench command.
\set i random(1, :nsamples)
SELECT webhook_id AS w, connection_id AS c, delivery_id AS d, created_us AS t FROM flat_probe_samples WHERE n = :i \gset
BEGIN;
SELECT w.status, w.event, c.supplier_id::text FROM webhooks w JOIN connections c ON c.id = w.connection_id WHERE w.id = :w::uuid AND w.connection_id = :c::uuid FOR KEY SHARE OF w;
SELECT d.id::text, d.webhook_id::text, d.event_id::text, e.event, d.state, d.attempt_count, (extract(epoch FROM d.created_at) * 1000000)::bigint, (extract(epoch FROM NULLIF(d.next_attempt_at, 'infinity')) * 1000000)::bigint, (extract(epoch FROM d.completed_at) * 1000000)::bigint, d.last_http_status, d.last_error_class FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.webhook_id = :w::uuid AND (NULLIF(:z, 'z')::text IS NULL OR d.state = NULLIF(:z, 'z')) AND (NULLIF(:z, 'z')::text IS NULL OR e.event = NULLIF(:z, 'z')) AND (d.created_at, d.id) < (COALESCE(('epoch'::timestamptz + NULLIF(:z, 'z')::bigint * interval '1 microsecond'), 'infinity'), COALESCE(NULLIF(:z, 'z')::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff')) ORDER BY d.created_at DESC, d.id DESC LIMIT 21;
COMMIT;
