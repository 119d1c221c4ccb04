#!/usr/bin/env bash
# shellcheck disable=SC2317  # (cleanup functions run from traps)
# The gateway benchmark: authenticated GET <base>/webhooks against GET
# /healthz (the HTTP ceiling of the same process) in the same run.
# Started by `scripts/bench.sh --gateway`, which builds the binaries and
# provides a throwaway PostgreSQL (DATABASE_URL); runnable alone with the
# same environment:
#   DATABASE_URL=... OCTO_BUILD_DIR=build tests/perf/gateway_bench.sh
#
# It starts octo-subscription and octo-gateway on 127.0.0.1 (free ports,
# metrics too), creates a supplier, a connection and an API key with
# octo-admin, creates 10 webhooks over REST, then runs wrk (Debian package)
# for GATEWAY_BENCH_SECONDS (default 10) each on:
#   1. GET /octo/webhooks with the key, caches off (the round trips per
#      request the gateway made before it had caches: a reference),
#   2. GET /octo/webhooks with the key, default caches,
#   3. GET /healthz (no authentication, no backend call: the ceiling),
# and prints requests/s, latency, non-2xx counts, the ratios and the cache
# counters. Every wrk run: GATEWAY_BENCH_THREADS (2) threads,
# GATEWAY_BENCH_CONNECTIONS (64) connections. The rate limits are set far
# above the offered load (the limiters still run on every request).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
OCTO_BUILD_DIR=${OCTO_BUILD_DIR:-build}
[[ $OCTO_BUILD_DIR == /* ]] || OCTO_BUILD_DIR=$OCTO_ROOT/$OCTO_BUILD_DIR
: "${DATABASE_URL:?DATABASE_URL (a libpq conninfo of an empty database) is required}"
SECONDS_EACH=${GATEWAY_BENCH_SECONDS:-10}
THREADS=${GATEWAY_BENCH_THREADS:-2}
CONNECTIONS=${GATEWAY_BENCH_CONNECTIONS:-64}
((SECONDS_EACH >= 1 && SECONDS_EACH <= 600)) || die "GATEWAY_BENCH_SECONDS must be 1..600"

SUBSCRIPTION_BIN=$OCTO_BUILD_DIR/services/subscription/octo-subscription
GATEWAY_BIN=$OCTO_BUILD_DIR/gateway/octo-gateway
ADMIN_BIN=$OCTO_BUILD_DIR/tools/octo-admin
for bin in "$SUBSCRIPTION_BIN" "$GATEWAY_BIN" "$ADMIN_BIN"; do
  [[ -x $bin ]] || die "$bin was not built"
done
WRK=$(command -v wrk) || die "wrk is missing: apt-get install wrk"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/octo-gateway-bench.XXXXXX")
SUBSCRIPTION_PID=""
GATEWAY_PID=""
stop_pid() {
  local pid=$1
  [[ -n $pid ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  local i
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}
on_exit() {
  local rc=$?
  stop_pid "$GATEWAY_PID"
  stop_pid "$SUBSCRIPTION_PID"
  if ((rc != 0)); then log "logs kept in $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap on_exit EXIT

wait_for_file() {
  local file=$1 pid=$2 process=$3 i
  for ((i = 0; i < 300; i++)); do
    [[ -s $file ]] && return 0
    kill -0 "$pid" 2>/dev/null || die "$process exited; log: $WORK/$process.log"
    sleep 0.1
  done
  die "$process did not start within 30 s; log: $WORK/$process.log"
}

CALLERS=$WORK/grpc-callers
make_grpc_callers "$CALLERS"
"$SUBSCRIPTION_BIN" --grpc_listen=127.0.0.1:0 --port_file="$WORK/subscription.port" \
  --metrics_listen=127.0.0.1:0 --database_url="$DATABASE_URL" --delivery_target=127.0.0.1:9 \
  --grpc_callers_dir="$CALLERS" --delivery_token_file="$CALLERS/subscription" \
  </dev/null >"$WORK/subscription.log" 2>&1 &
SUBSCRIPTION_PID=$!
wait_for_file "$WORK/subscription.port" "$SUBSCRIPTION_PID" subscription
SUBSCRIPTION_PORT=$(<"$WORK/subscription.port")
ADMIN=("$ADMIN_BIN" --target="127.0.0.1:$SUBSCRIPTION_PORT" --token_file="$CALLERS/admin")

# Starts the gateway with extra flags "$@"; sets GATEWAY_PID, URL, METRICS_URL.
start_gateway() {
  rm -f "$WORK/gateway.port" "$WORK/gateway-metrics.port"
  "$GATEWAY_BIN" --listen=127.0.0.1:0 --port_file="$WORK/gateway.port" \
    --metrics_listen=127.0.0.1:0 --metrics_port_file="$WORK/gateway-metrics.port" \
    --subscription_target="127.0.0.1:$SUBSCRIPTION_PORT" --subscription_token_file="$CALLERS/gateway" \
    --key_rate_limit=10000000 --key_rate_burst=10000000 \
    --address_rate_limit=10000000 --address_rate_burst=10000000 "$@" \
    </dev/null >>"$WORK/gateway.log" 2>&1 &
  GATEWAY_PID=$!
  wait_for_file "$WORK/gateway.port" "$GATEWAY_PID" gateway
  wait_for_file "$WORK/gateway-metrics.port" "$GATEWAY_PID" gateway
  URL="http://127.0.0.1:$(<"$WORK/gateway.port")"
  METRICS_URL="http://127.0.0.1:$(<"$WORK/gateway-metrics.port")/metrics"
}

start_gateway
supplier=$("${ADMIN[@]}" --output=id supplier create --name="Bench Tours" \
  --endpoint="https://api.bench-tours.example.com/octo")
connection=$("${ADMIN[@]}" --output=id connection create --supplier="$supplier" --name="bench")
KEY=$("${ADMIN[@]}" --output=key key create --connection="$connection" --name="bench")
for ((i = 0; i < 10; i++)); do
  code=$(curl -sS -o /dev/null -w '%{http_code}' -X POST "$URL/octo/webhooks" \
    -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
    -d "{\"event\":\"booking_update\",\"url\":\"https://hooks.partner.example/octo/$i\"}")
  [[ $code == 200 ]] || die "creating webhook $i answered $code"
done
count=$(curl -sS -H "Authorization: Bearer $KEY" "$URL/octo/webhooks" | grep -o '"id"' | wc -l)
((count == 10)) || die "the list holds $count webhooks, not 10"

# run_wrk NAME PATH [wrk args...]: prints wrk's output to $WORK/NAME.txt.
run_wrk() {
  local name=$1 path=$2
  shift 2
  "$WRK" -t"$THREADS" -c"$CONNECTIONS" -d"${SECONDS_EACH}s" --latency "$@" "$URL$path" \
    >"$WORK/$name.txt" 2>&1 || die "wrk failed: $(cat "$WORK/$name.txt")"
}
rps() { awk '/^Requests\/sec:/ { print $2 }' "$WORK/$1.txt"; }
summary() {
  local f=$WORK/$1.txt non2xx
  non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $5 }' "$f")
  printf '  %-28s %10.0f req/s   p50 %-8s p99 %-8s non-2xx %s\n' "$1" "$(rps "$1")" \
    "$(awk '$1 == "50%" { print $2 }' "$f")" "$(awk '$1 == "99%" { print $2 }' "$f")" "${non2xx:-0}"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
AUTH=(-H "Authorization: Bearer $KEY")

stop_pid "$GATEWAY_PID"
start_gateway --auth_cache_ttl_ms=0 --auth_negative_ttl_ms=0 --list_cache_ttl_ms=0
run_wrk webhooks_uncached /octo/webhooks "${AUTH[@]}"
stop_pid "$GATEWAY_PID"
start_gateway
run_wrk webhooks /octo/webhooks "${AUTH[@]}"
run_wrk healthz /healthz
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
cache_counters=$(curl -sS "$METRICS_URL" | grep -E '^octo_gateway_(auth|list)_cache_lookups_total' || true)

echo
echo "== gateway: wrk -t$THREADS -c$CONNECTIONS -d${SECONDS_EACH}s, 10 webhooks, one key"
echo "   machine: $(nproc) cores, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
echo "   load average before: $load_before   after: $load_after"
summary webhooks_uncached
summary webhooks
summary healthz
awk -v w="$(rps webhooks)" -v u="$(rps webhooks_uncached)" -v h="$(rps healthz)" 'BEGIN {
  printf "  ratio webhooks / healthz: %.3f   webhooks / uncached: %.1fx   goal >= 20000 req/s: %s\n",
    w / h, w / u, (w >= 20000 ? "met" : "NOT met")
}'
echo "  cache counters (cached gateway):"
while IFS= read -r line; do echo "    $line"; done <<<"$cache_counters"
