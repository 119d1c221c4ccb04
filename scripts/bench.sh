#!/usr/bin/env bash
# shellcheck disable=SC2317  # (cleanup functions run from traps)
# THE benchmark command:
#   installs missing packages (and wrk), builds Release into build/ (target
#   `bench`: octo-bench, octo-bench-sink, octo-subscription, octo-delivery),
#   starts a throwaway PostgreSQL 15 with durable settings (fsync on,
#   synchronous_commit on, full_page_writes on) on a free 127.0.0.1 port,
#   runs build/tests/perf/octo-bench, which starts octo-delivery,
#   octo-subscription and the sink on 127.0.0.1 (every process on free
#   ports, metrics included, so it also runs beside scripts/run.sh), runs the
#   throughput phase (N=20000 events x W=5 webhooks), the latency phase (200
#   and 2,000 events/s for 10 s each), single-event publishing (64 clients,
#   one PublishEvent each in flight, 1 webhook) and wrk against the same
#   sink, and prints the figures (CPU microseconds per delivery per process
#   included). Everything it started is stopped and removed on exit,
#   whatever happens.
#
# Usage: scripts/bench.sh [--profile] [OCTO-BENCH FLAGS...]
#   scripts/bench.sh                               the default run (~1-2 min)
#   scripts/bench.sh --events=5000 --rate_seconds=5
#   scripts/bench.sh --profile                     a smaller throughput run with
#       octo-delivery under valgrind --tool=callgrind; prints the functions
#       with the most instructions (inclusive and self)
#   build/tests/perf/octo-bench --help             every flag
#   scripts/bench.sh --single                      single-event publishing only
#   scripts/bench.sh --long                        the latency phase for 10 minutes
#       at 300 events/s (1,500 deliveries/s; ~12 min in all)
#   scripts/bench.sh --backlog[=DELIVERIES]        a backlog of DELIVERIES
#       (default 1,000,000) stored with the dispatcher off, then drained
#   scripts/bench.sh --gateway                     the REST gateway instead:
#       authenticated GET /octo/webhooks (10 webhooks, one key) against GET
#       /healthz in the same run, wrk -t2 -c64 (tests/perf/gateway_bench.sh;
#       GATEWAY_BENCH_SECONDS, default 10 s per wrk run)
#   scripts/bench.sh --flat                        storage that stays flat: throughput
#       and the latency phase (200 events/s) on the empty database, then with
#       10,000,000 attempt rows stored (set-based SQL; 30-60 min on 2 cores and
#       ~7 GB of disk plus WAL), their ratios, the attempt log's p99 at that size and
#       the ordered / unordered ratio (1,000 bookings); a quick run:
#       scripts/bench.sh --flat --flat_attempt_rows=200000
#   scripts/bench.sh --fanout                      one event to 10,000 webhooks
#       of one connection, 5 times: the time to accept it
#   scripts/bench.sh --offer                       1,000 events/s offered in
#       10-event batches for 10 s: events/s accepted, p99
#   scripts/bench.sh --all                         every phase of the performance
#       table in one run: throughput, latency (200 and 2,000 events/s),
#       offer, single, fanout, wrk, long (10 min at 300 events/s) and backlog
#       (1,000,000 deliveries); ~25-30 min on 2 cores, every phase bounded by
#       its time limit (drain 600 s, backlog 3,600 s)
#   scripts/bench.sh --isolation [FLAGS...]        the slow-endpoint isolation
#       benchmark instead: fast deliveries/s with and without a slow
#       endpoint beside them; build/tests/perf/octo-bench-isolation --help
# Environment: OCTO_BENCH_BUILD_DIR (default build/) is where it builds;
# OCTO_BENCH_KEEP=1 keeps the work directory (logs, results.json,
# callgrind output) instead of deleting it; it is always kept on failure.
# OCTO_BENCH_KEEP_PG=1 stops the throwaway PostgreSQL cleanly at the end and
# keeps its directory (data, postgresql.log) instead of deleting it: a large
# database (e.g. after --flat) to study with EXPLAIN or to copy for the next
# experiment (start it with pg_ctl -D DIR/data -o "-p PORT" as user postgres).
# OCTO_BENCH_PG_EXTRA: lines appended to the throwaway cluster's
# postgresql.conf, e.g. auto_explain to study a phase:
#   OCTO_BENCH_PG_EXTRA=$'session_preload_libraries = auto_explain\nauto_explain.log_min_duration = 2s'
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
OCTO_BUILD_DIR=${OCTO_BENCH_BUILD_DIR:-$OCTO_BUILD_DIR}
[[ $OCTO_BUILD_DIR == /* ]] || OCTO_BUILD_DIR=$OCTO_ROOT/$OCTO_BUILD_DIR

PROFILE=0
ISOLATION=0
GATEWAY=0
BENCH_ARGS=()
for arg in "$@"; do
  case $arg in
  --profile) PROFILE=1 ;;
  --isolation) ISOLATION=1 ;;
  --gateway) GATEWAY=1 ;;
  --single) BENCH_ARGS+=(--phases=single) ;;
  --fanout) BENCH_ARGS+=(--phases=fanout) ;;
  --offer) BENCH_ARGS+=(--phases=offer) ;;
  --flat) BENCH_ARGS+=(--phases=flat --throughput_timeout_s=900 --drain_timeout_s=300) ;;
  --all)
    BENCH_ARGS+=(--phases=throughput,latency,offer,single,fanout,wrk,long,backlog
      --latency_rates=200,2000 --backlog_deliveries=1000000 --throughput_timeout_s=3600
      --drain_timeout_s=600)
    ;;
  --long) BENCH_ARGS+=(--phases=latency --long_run --drain_timeout_s=600) ;;
  --backlog) BENCH_ARGS+=(--phases=backlog --backlog_deliveries=1000000 --throughput_timeout_s=3600) ;;
  --backlog=*) BENCH_ARGS+=(--phases=backlog "--backlog_deliveries=${arg#--backlog=}" --throughput_timeout_s=3600) ;;
  -h | --help)
    sed -n '3,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
  *) BENCH_ARGS+=("$arg") ;;
  esac
done

PG_TMP=""
WORK=""
BENCH_PID=""
KEEP=${OCTO_BENCH_KEEP:-0}

stop_bench() {
  stop_process_group "$BENCH_PID" "the benchmark"
  BENCH_PID=""
}

stop_pg() {
  if [[ ${OCTO_BENCH_KEEP_PG:-0} != 0 && -n $PG_TMP && -d $PG_TMP ]]; then
    if [[ -f $PG_TMP/data/postmaster.pid ]]; then
      as_pg "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m fast -w -t 120 stop >/dev/null 2>&1 ||
        warn "pg_ctl stop failed; see $PG_TMP/postgresql.log"
    fi
    log "PostgreSQL data directory kept (stopped): $PG_TMP/data"
  else
    remove_throwaway_pg "$PG_TMP" 60
  fi
  PG_TMP=""
}

on_exit() {
  local rc=$?
  trap - EXIT INT TERM
  stop_bench
  stop_pg
  if [[ -n $WORK && -d $WORK ]]; then
    if ((rc != 0)) || [[ $KEEP != 0 ]]; then
      log "work directory kept: $WORK"
    else
      rm -rf "$WORK"
    fi
  fi
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A throwaway cluster with production-like durability; sets PG_PORT.
start_pg() {
  PG_TMP=$(mktemp -d "${TMPDIR:-/tmp}/octo-bench-pg.XXXXXX")
  give_to_pg "$PG_TMP"
  as_pg "$PG_BIN/initdb" -D "$PG_TMP/data" -U postgres -A trust -E UTF8 --no-locale \
    >"$PG_TMP/initdb.log" 2>&1 || {
    cat "$PG_TMP/initdb.log" >&2
    die "initdb failed"
  }
  # Durable, like a real deployment: fsync, synchronous commit and full-page
  # writes on (the defaults, stated). A little tuning any deployment has:
  # more shared buffers and WAL between checkpoints than the tiny defaults.
  # pg_stat_statements (a few % overhead) lets octo-bench show where
  # PostgreSQL spends its time.
  cat >>"$PG_TMP/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PG_TMP'
fsync = on
synchronous_commit = on
full_page_writes = on
shared_buffers = 512MB
max_wal_size = 4GB
max_connections = 200
shared_preload_libraries = 'pg_stat_statements'
EOF
  [[ -z ${OCTO_BENCH_PG_EXTRA:-} ]] || printf '%s\n' "$OCTO_BENCH_PG_EXTRA" >>"$PG_TMP/data/postgresql.conf"
  local attempt
  for attempt in 1 2 3 4 5; do
    PG_PORT=$(pick_free_port)
    check_socket_path "$PG_TMP" "$PG_PORT"
    if as_pg "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/postgresql.log" -w -t 60 \
      -o "-p $PG_PORT" start >/dev/null; then
      return 0
    fi
    warn "PostgreSQL did not start on port $PG_PORT (attempt $attempt)"
  done
  tail -n 20 "$PG_TMP/postgresql.log" >&2 || true
  die "could not start the throwaway PostgreSQL"
}

install_deps
extra=()
command -v wrk >/dev/null 2>&1 || extra+=(wrk)
((PROFILE)) && ! command -v valgrind >/dev/null 2>&1 && extra+=(valgrind)
if ((${#extra[@]})); then
  is_root || die "missing ${extra[*]}; install with: sudo apt-get install --no-install-recommends ${extra[*]}"
  log "installing ${extra[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${extra[@]}" >/dev/null ||
    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${extra[@]}" >/dev/null; } ||
    die "could not install ${extra[*]}"
fi

if ((GATEWAY)); then
  build_release octo-subscription octo-gateway octo-admin
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/octo-bench.XXXXXX")
  start_pg
  as_pg "$PG_BIN/psql" -X -q -h "$PG_TMP" -p "$PG_PORT" -U postgres -d postgres \
    -c "CREATE DATABASE octo_bench" >/dev/null
  log "throwaway PostgreSQL 15 on 127.0.0.1:$PG_PORT (fsync on), data in $PG_TMP"
  set -m
  DATABASE_URL="host=$PG_TMP port=$PG_PORT user=postgres dbname=octo_bench" \
    OCTO_BUILD_DIR=$OCTO_BUILD_DIR tests/perf/gateway_bench.sh &
  BENCH_PID=$!
  set +m
  rc=0
  wait "$BENCH_PID" || rc=$?
  BENCH_PID=""
  exit "$rc"
fi

build_release bench
BENCH_BIN=$OCTO_BUILD_DIR/tests/perf/octo-bench
DELIVERY_BIN=$OCTO_BUILD_DIR/services/delivery/octo-delivery
[[ -x $DELIVERY_BIN ]] || die "$DELIVERY_BIN was not built"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/octo-bench.XXXXXX")
start_pg
DATABASE_URL="host=$PG_TMP port=$PG_PORT user=postgres dbname=octo_bench"
as_pg "$PG_BIN/psql" -X -q -h "$PG_TMP" -p "$PG_PORT" -U postgres -d postgres \
  -c "CREATE DATABASE octo_bench" >/dev/null
log "throwaway PostgreSQL 15 on 127.0.0.1:$PG_PORT (fsync on), data in $PG_TMP"

args=(--database_url="$DATABASE_URL" --work_dir="$WORK" --json_out="$WORK/results.json"
  --delivery_bin="$DELIVERY_BIN")
if ((ISOLATION)); then
  BENCH_BIN=$OCTO_BUILD_DIR/tests/perf/octo-bench-isolation
  args=(--database_url="$DATABASE_URL" --work_dir="$WORK" --delivery_bin="$DELIVERY_BIN")
fi
if ((PROFILE)); then
  # Callgrind slows the service ~50x: a smaller run, throughput only.
  args+=(--events=2000 --phases=throughput --throughput_timeout_s=900 --drain_timeout_s=600
    --delivery_wrapper="valgrind --tool=callgrind --callgrind-out-file=$WORK/callgrind.out")
fi
args+=("${BENCH_ARGS[@]}")

log "running: $BENCH_BIN ${args[*]}"
rc=0
# Own process group, so that a signal to this script stops it and its children.
set -m
"$BENCH_BIN" "${args[@]}" &
BENCH_PID=$!
set +m
wait "$BENCH_PID" || rc=$?
BENCH_PID=""

if ((PROFILE)) && [[ -s $WORK/callgrind.out ]]; then
  {
    echo "== callgrind: octo-delivery, inclusive (functions and their callees)"
    callgrind_annotate --inclusive=yes "$WORK/callgrind.out" 2>/dev/null | sed -n '1,60p'
    echo
    echo "== callgrind: octo-delivery, self"
    callgrind_annotate "$WORK/callgrind.out" 2>/dev/null | sed -n '1,60p'
  } >"$WORK/callgrind.txt"
  cat "$WORK/callgrind.txt"
  KEEP=1
fi
exit "$rc"
