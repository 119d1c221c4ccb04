-- The queue gauge's data at the benchmark's ordered-phase size, for EXPLAIN
-- (docs/PERFORMANCE.md, "The queue gauge"): on a database migrated to the
-- current schema, 4,000,000 succeeded deliveries (2,000,000 spread over the
-- nine past weeks, 2,000,000 in this week's partition), 1,000 ordered
-- resources with 100 pending deliveries each (the first due, or in flight for
-- 100 resources; the other 99 waiting, 'infinity'), and 4,500 unordered
-- pending ones (3,000 due, 1,000 retrying later, 500 in flight). Leases and
-- resource locks run for 6 hours. Not used by any test or build step.
--   psql -v ON_ERROR_STOP=1 -d <db> -f tests/perf/queue_gauge_fill.sql
SELECT octo_retention_create_partitions(now() - interval '63 days', now() + interval '7 days');
INSERT INTO suppliers (name, endpoint, contact) VALUES ('S', 'https://s.example/octo', '{}');
INSERT INTO connections (supplier_id, name, max_webhooks) SELECT id, 'c', 100 FROM suppliers;
INSERT INTO webhooks (connection_id, event, url, secret, ordered)
  SELECT id, 'booking_update', 'http://127.0.0.1:9/o', 'whsec_' || repeat('A', 43) || '=', true FROM connections;
INSERT INTO webhooks (connection_id, event, url, secret, ordered)
  SELECT id, 'booking_update', 'http://127.0.0.1:9/u', 'whsec_' || repeat('A', 43) || '=', false FROM connections;
INSERT INTO ordered_resources (webhook_id, resource_kind, resource_key, last_sequence, in_flight_until)
  SELECT w.id, 'booking', 'b' || g, 2100, CASE WHEN g <= 100 THEN now() + interval '6 hours' END
  FROM webhooks w, generate_series(1, 1000) g WHERE w.ordered;
-- History: half ordered (sequences 1..1000 per resource), one every 2.6 s over
-- 62 days, then one every 0.1 s from this Monday 01:00 until an hour ago.
INSERT INTO deliveries (event_id, webhook_id, state, attempt_count, next_attempt_at, created_at, completed_at,
                        last_http_status, ordered_resource_id, sequence, ordered_at)
  SELECT gen_random_uuid(), w.id, 'succeeded', 1, t, t, t + interval '1 second', 200,
         CASE WHEN w.ordered THEN 1 + g % 1000 END, CASE WHEN w.ordered THEN 1 + g / 1000 END,
         CASE WHEN w.ordered THEN t END
  FROM generate_series(0, 1999999) g
  CROSS JOIN LATERAL (SELECT now() - interval '62 days' + g * interval '2.6 seconds' AS t) tt
  JOIN webhooks w ON w.ordered = (g % 2 = 0);
INSERT INTO deliveries (event_id, webhook_id, state, attempt_count, next_attempt_at, created_at, completed_at,
                        last_http_status, ordered_resource_id, sequence, ordered_at)
  SELECT gen_random_uuid(), w.id, 'succeeded', 1, t, t, t + interval '1 second', 200,
         CASE WHEN w.ordered THEN 1 + g % 1000 END, CASE WHEN w.ordered THEN 1 + g / 1000 END,
         CASE WHEN w.ordered THEN t END
  FROM generate_series(0, 1999999) g
  CROSS JOIN LATERAL (SELECT date_trunc('week', now()) + interval '1 hour' + g * interval '0.1 second' AS t) tt
  JOIN webhooks w ON w.ordered = (g % 2 = 0)
  WHERE t < now() - interval '1 hour';
-- Pending ordered: sequences 2001..2100 of each resource.
INSERT INTO deliveries (event_id, webhook_id, next_attempt_at, lease_expires_at, created_at,
                        ordered_resource_id, sequence, ordered_at)
  SELECT gen_random_uuid(), w.id,
         CASE WHEN s = 2001 THEN now() - interval '2 seconds' ELSE 'infinity' END,
         CASE WHEN s = 2001 AND r <= 100 THEN now() + interval '6 hours' END,
         now() - interval '30 minutes' + s * interval '1 second',
         r, s, now() - interval '30 minutes' + s * interval '1 second'
  FROM generate_series(1, 1000) r, generate_series(2001, 2100) s, webhooks w WHERE w.ordered;
INSERT INTO deliveries (event_id, webhook_id, next_attempt_at, lease_expires_at, created_at)
  SELECT gen_random_uuid(), w.id,
         CASE WHEN g <= 3000 THEN now() - g * interval '10 ms' WHEN g <= 4000 THEN now() + interval '1 minute'
              ELSE now() - interval '1 second' END,
         CASE WHEN g > 4000 THEN now() + interval '6 hours' END, now() - interval '5 minutes'
  FROM generate_series(1, 4500) g, webhooks w WHERE NOT w.ordered;
VACUUM ANALYZE;
