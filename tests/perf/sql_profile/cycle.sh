#!/bin/bash
# cycle.sh SUPPLIER CONNECTION WARM_CYCLES MEASURE_CYCLES PREPARE_FILE -> psql script on stdout
# WARM cycles, then MEAS cycles under EXPLAIN (ANALYZE, BUFFERS). One cycle = the real enqueue
# statement (500 events x the supplier's 5 webhooks), claims of 200 until nothing is due,
# results written 500 at a time (all succeeded), as the service does.
S=$1; C=$2; WARM=$3; MEAS=$4; PREP=$5
# RESOURCE: a file holding one booking JSON, e.g. psql -At -c "SELECT resource FROM events LIMIT 1".
RES=$(sed "s/'/''/g" "${RESOURCE:?set RESOURCE to a booking JSON file}")
cat "$PREP"
cat <<SQL
\\set ON_ERROR_STOP 1
\\pset pager off
PREPARE mkbatch AS
WITH g AS (SELECT g, octo_uuid_v7() AS id FROM generate_series(1, 500) g),
 w AS (SELECT w.id, row_number() OVER (ORDER BY w.id) AS n FROM webhooks w WHERE w.connection_id = '$C'),
 ev AS (SELECT json_agg(json_build_object('id', g.id, 'supplier_id', '$S'::uuid,
   'idempotency_key', 'cs-' || g.g || '-' || (extract(epoch FROM clock_timestamp()) * 1e6)::bigint,
   'connection_id', '$C'::uuid, 'event', 'booking_update', 'resource_kind', 'booking',
   'resource_key', 'bk-' || g.g, 'diff_supplied', false,
   'occurred_at', (extract(epoch FROM now()) * 1e6)::bigint, 'delivery_count', 5)
   ORDER BY g.g) AS j FROM g)
SELECT (SELECT j FROM ev) AS ev,
  (SELECT array_agg(g.id ORDER BY g.g, w.n) FROM g CROSS JOIN w)::text AS eids,
  (SELECT array_agg(w.id ORDER BY g.g, w.n) FROM g CROSS JOIN w)::text AS wids,
  (SELECT array_agg('$RES'::text) FROM g)::text AS res,
  (SELECT array_agg('{}'::text) FROM g)::text AS loc,
  (SELECT array_agg('[]'::text) FROM g)::text AS dif;
PREPARE mkres AS
SELECT COALESCE(json_agg(json_build_object('id', id, 'lease', (extract(epoch FROM lease_expires_at) * 1000000)::bigint,
  'created', (extract(epoch FROM created_at) * 1000000)::bigint, 'num', claimed_attempt, 'act', 'attempt',
  'started', (extract(epoch FROM now()) * 1000000)::bigint, 'duration', 3.5, 'status', 200, 'error', NULL,
  'snippet', '', 'state', 'succeeded', 'delay', 0)), '[]') AS res
FROM (SELECT id, lease_expires_at, created_at, claimed_attempt FROM deliveries
  WHERE state = 'pending' AND lease_expires_at IS NOT NULL AND claimed_attempt IS NOT NULL
    AND webhook_id IN (SELECT id FROM webhooks WHERE connection_id = '$C') LIMIT 500) x;
SQL
cycle() {  # $1 = 1: the measured statements under EXPLAIN (ANALYZE, BUFFERS)
  local X="" G=" \\g /dev/null"
  if [[ $1 == 1 ]]; then X="EXPLAIN (ANALYZE, BUFFERS) "; G=";"; fi
  echo "EXECUTE mkbatch \\gset"
  echo "${X}EXECUTE ins_events(:'ev', :'eids', :'wids', :'res', :'loc', :'dif')$G"
  for i in $(seq 1 13); do echo "${X}EXECUTE claim(200, 15000, 3, true)$G"; done
  for i in $(seq 1 5); do
    echo "EXECUTE mkres \\gset"
    echo "${X}EXECUTE wres(:'res')$G"
  done
}
for c in $(seq 1 "$WARM"); do cycle 0; done
echo "SELECT pg_stat_statements_reset();"
echo "\\echo MEASURE"
for c in $(seq 1 "$MEAS"); do cycle 1; done
