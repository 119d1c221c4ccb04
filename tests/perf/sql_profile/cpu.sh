#!/bin/bash
# cpu.sh SUPPLIER CONNECTION PREPARE_FILE ROUNDS -> psql script: per round, the backend's CPU
# time (/proc, utime+stime, 10 ms ticks) of 8 enqueues (500 events x 5 webhooks each), then 100
# claims of 200, then 40 result writes of 500; the batches' JSON is built before each mark.
S=$1; C=$2; PREP=$3; ROUNDS=$4
"$(dirname "$0")/cycle.sh" "$S" "$C" 0 0 "$PREP" | sed '/MEASURE/d;/pg_stat_statements_reset/d'
cat <<'SQL'
PREPARE mkres2(int) AS
SELECT COALESCE(json_agg(json_build_object('id', id, 'lease', (extract(epoch FROM lease_expires_at) * 1000000)::bigint,
  'created', (extract(epoch FROM created_at) * 1000000)::bigint, 'num', claimed_attempt, 'act', 'attempt',
  'started', (extract(epoch FROM now()) * 1000000)::bigint, 'duration', 3.5, 'status', 200, 'error', NULL,
  'snippet', '', 'state', 'succeeded', 'delay', 0)), '[]') AS res
FROM (SELECT id, lease_expires_at, created_at, claimed_attempt FROM deliveries
  WHERE state = 'pending' AND lease_expires_at IS NOT NULL AND claimed_attempt IS NOT NULL
  ORDER BY id OFFSET $1 LIMIT 500) x;
SELECT pg_backend_pid() AS pid \gset
\setenv PGPID :pid
SQL
for r in $(seq 1 "$ROUNDS"); do
  for i in $(seq 1 8); do echo "EXECUTE mkbatch \\gset b${i}_"; done
  echo "\\echo round $r"
  echo "\\! echo -n 'enqueue '; awk '{print \$14+\$15}' /proc/\$PGPID/stat"
  for i in $(seq 1 8); do echo "EXECUTE ins_events(:'b${i}_ev', :'b${i}_eids', :'b${i}_wids', :'b${i}_res', :'b${i}_loc', :'b${i}_dif') \\g /dev/null"; done
  echo "\\! echo -n 'claim '; awk '{print \$14+\$15}' /proc/\$PGPID/stat"
  for i in $(seq 1 100); do echo "EXECUTE claim(200, 15000, 3, true) \\g /dev/null"; done
  echo "\\! echo -n 'mkres '; awk '{print \$14+\$15}' /proc/\$PGPID/stat"
  for i in $(seq 0 39); do echo "EXECUTE mkres2($((i*500))) \\gset r${i}_"; done
  echo "\\! echo -n 'write '; awk '{print \$14+\$15}' /proc/\$PGPID/stat"
  for i in $(seq 0 39); do echo "EXECUTE wres(:'r${i}_res') \\g /dev/null"; done
  echo "\\! echo -n 'end '; awk '{print \$14+\$15}' /proc/\$PGPID/stat"
  echo "SELECT count(*) AS pending_left FROM deliveries WHERE state = 'pending';"
done
