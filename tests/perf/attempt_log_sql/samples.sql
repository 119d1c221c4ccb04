-- 2,000 random deliveries of the stored history (as the probe samples them),
-- numbered 1..2000 for the pgbench scripts beside this file.
DROP TABLE IF EXISTS flat_probe_samples;
CREATE TABLE flat_probe_samples AS
SELECT row_number() OVER () AS n, s.* FROM (
  SELECT w.id::text AS webhook_id, w.connection_id::text AS connection_id, d.id::text AS delivery_id,
         (extract(epoch FROM d.created_at) * 1000000)::bigint AS created_us
  FROM generate_series(1, 2000) g
  CROSS JOIN LATERAL (SELECT id, connection_id FROM webhooks ORDER BY random() + g * 0 LIMIT 1) w
  CROSS JOIN LATERAL (SELECT id, created_at FROM deliveries
                      WHERE webhook_id = w.id AND created_at >= now() - random() * interval '25 days'
                      ORDER BY created_at, id LIMIT 1) d) s;
CREATE UNIQUE INDEX ON flat_probe_samples (n);
ANALYZE flat_probe_samples;
