#!/usr/bin/env bash
# shellcheck disable=SC2317  # (cleanup functions run from traps)
# THE run command (README): builds Release and runs the whole system on
# 127.0.0.1, in the foreground, until Ctrl-C or SIGTERM, which stop every
# process and PostgreSQL cleanly.
#
#   - an embedded PostgreSQL 15 cluster it creates on first run and reuses
#     afterwards (data survives restarts) under $OCTO_DATA_DIR/pgdata
#     (default .local/pgdata, ignored by git), database `octo`;
#   - octo-delivery (gRPC; applies the migrations; stores published events
#     and sends them), octo-subscription (gRPC; webhooks, publishing), then
#     octo-gateway (REST);
#   - on first run, a demo supplier, connection and API key, the key written
#     to $OCTO_DATA_DIR/demo-api-key (mode 600), and a dashboard operator of
#     the demo supplier, its name and password in $OCTO_DATA_DIR/demo-operator;
#   - prints ready-to-paste curl commands.
#
# Usage: scripts/run.sh [--gateway-port N] [--subscription-port N]
#                       [--delivery-port N] [--pg-port N]
# Environment (flags win): OCTO_GATEWAY_PORT (8080), OCTO_SUBSCRIPTION_PORT
# (50051), OCTO_DELIVERY_PORT (50052), OCTO_PG_PORT (55432), OCTO_DATA_DIR
# (.local in the checkout).
set -euo pipefail
cd "$(dirname "$0")/.."
CALLER_PWD=$OLDPWD  # read by from_caller (lib.sh)
export CALLER_PWD
source scripts/lib.sh

usage() {
  sed -n '3,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
}

GATEWAY_PORT=${OCTO_GATEWAY_PORT:-8080}
SUBSCRIPTION_PORT=${OCTO_SUBSCRIPTION_PORT:-50051}
DELIVERY_PORT=${OCTO_DELIVERY_PORT:-50052}
PG_PORT=${OCTO_PG_PORT:-55432}
while (($#)); do
  case $1 in
  --gateway-port=*) GATEWAY_PORT=${1#*=} ;;
  --subscription-port=*) SUBSCRIPTION_PORT=${1#*=} ;;
  --delivery-port=*) DELIVERY_PORT=${1#*=} ;;
  --pg-port=*) PG_PORT=${1#*=} ;;
  --gateway-port | --subscription-port | --delivery-port | --pg-port)
    (($# >= 2)) || die "$1 needs a value"
    case $1 in
    --gateway-port) GATEWAY_PORT=$2 ;;
    --subscription-port) SUBSCRIPTION_PORT=$2 ;;
    --delivery-port) DELIVERY_PORT=$2 ;;
    --pg-port) PG_PORT=$2 ;;
    esac
    shift
    ;;
  -h | --help)
    usage
    exit 0
    ;;
  *) die "unknown argument '$1' (try --help)" ;;
  esac
  shift
done
for p in GATEWAY_PORT SUBSCRIPTION_PORT DELIVERY_PORT PG_PORT; do
  if ! [[ ${!p} =~ ^[0-9]+$ ]] || ((${!p} < 1 || ${!p} > 65535)); then
    die "$p must be a TCP port (1-65535), got '${!p}'"
  fi
done
if [[ $(printf '%s\n' "$GATEWAY_PORT" "$SUBSCRIPTION_PORT" "$DELIVERY_PORT" "$PG_PORT" | sort -u | wc -l) != 4 ]]; then
  die "the gateway, subscription, delivery and PostgreSQL ports must differ"
fi

# ---------------------------------------------------------------- layout --
# DATA_DIR, PGDATA_DIR, LOG_DIR, ... and the binaries (scripts/lib.sh); one
# running system per data directory.
use_data_dir "${OCTO_DATA_DIR:-$OCTO_ROOT/.local}"

# ------------------------------------------------------------- processes --
PG_STARTED=0
SUBSCRIPTION_PID=""
DELIVERY_PID=""
GATEWAY_PID=""

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n $GATEWAY_PID || -n $SUBSCRIPTION_PID || -n $DELIVERY_PID ]] || ((PG_STARTED)); then
    log "stopping"
  fi
  # Front to back: nothing publishes to octo-delivery once it stops; it
  # finishes its in-flight deliveries and records them before PostgreSQL goes.
  stop_child octo-gateway "$GATEWAY_PID"
  stop_child octo-subscription "$SUBSCRIPTION_PID"
  stop_child octo-delivery "$DELIVERY_PID"
  stop_embedded_pg
  if [[ -n $GATEWAY_PID || -n $SUBSCRIPTION_PID || -n $DELIVERY_PID ]] || ((PG_STARTED)); then
    log "stopped"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if port_in_use "$GATEWAY_PORT"; then
  die "127.0.0.1:$GATEWAY_PORT is in use; choose another with --gateway-port or OCTO_GATEWAY_PORT"
fi
if port_in_use "$SUBSCRIPTION_PORT"; then
  die "127.0.0.1:$SUBSCRIPTION_PORT is in use; choose another with --subscription-port or OCTO_SUBSCRIPTION_PORT"
fi
if port_in_use "$DELIVERY_PORT"; then
  die "127.0.0.1:$DELIVERY_PORT is in use; choose another with --delivery-port or OCTO_DELIVERY_PORT"
fi

install_deps
# Only what runs: the tests are scripts/test.sh's business.
build_release octo-delivery octo-subscription octo-gateway octo-admin

# ------------------------------------------------------------ PostgreSQL --
start_embedded_pg "$PG_PORT"

# --------------------------------------------------------------- services --
# SSRF guard: the services refuse loopback and private destinations unless
# allowed. Everything here runs on one machine, so webhooks to a receiver on
# this machine are allowed; set OCTO_DELIVERY_ALLOW_DESTINATION_CIDRS to
# change it ("" = public addresses only, as in production).
ALLOW_DESTINATION_CIDRS=${OCTO_DELIVERY_ALLOW_DESTINATION_CIDRS-127.0.0.0/8,::1/128}
# Internal credentials (docs/operations.md, "Internal credentials"): one
# random token per caller identity, made on the first run and kept; the
# services refuse gRPC calls without a known caller's token.
make_grpc_callers "$CALLERS_DIR"
# octo-delivery first: it applies the migrations, and octo-subscription hands
# it every published event.
log "starting octo-delivery on 127.0.0.1:$DELIVERY_PORT"
"$DELIVERY_BIN" --grpc_listen="127.0.0.1:$DELIVERY_PORT" --database_url="$DATABASE_URL" \
  --allow_destination_cidrs="$ALLOW_DESTINATION_CIDRS" --grpc_callers_dir="$CALLERS_DIR" \
  9>&- </dev/null >>"$LOG_DIR/delivery.log" 2>&1 &
DELIVERY_PID=$!
wait_grpc_health octo-delivery "$DELIVERY_PID" "$LOG_DIR/delivery.log" "127.0.0.1:$DELIVERY_PORT"

log "starting octo-subscription on 127.0.0.1:$SUBSCRIPTION_PORT"
"$SUBSCRIPTION_BIN" --grpc_listen="127.0.0.1:$SUBSCRIPTION_PORT" --database_url="$DATABASE_URL" \
  --delivery_target="127.0.0.1:$DELIVERY_PORT" \
  --allow_destination_cidrs="$ALLOW_DESTINATION_CIDRS" \
  --grpc_callers_dir="$CALLERS_DIR" --delivery_token_file="$CALLERS_DIR/subscription" \
  9>&- </dev/null >>"$LOG_DIR/subscription.log" 2>&1 &
SUBSCRIPTION_PID=$!
wait_grpc_health octo-subscription "$SUBSCRIPTION_PID" "$LOG_DIR/subscription.log" "127.0.0.1:$SUBSCRIPTION_PORT"

log "starting octo-gateway on 127.0.0.1:$GATEWAY_PORT"
"$GATEWAY_BIN" --listen="127.0.0.1:$GATEWAY_PORT" --subscription_target="127.0.0.1:$SUBSCRIPTION_PORT" \
  --subscription_token_file="$CALLERS_DIR/gateway" \
  9>&- </dev/null >>"$LOG_DIR/gateway.log" 2>&1 &
GATEWAY_PID=$!
GATEWAY_URL="http://127.0.0.1:$GATEWAY_PORT"
wait_http_health octo-gateway "$GATEWAY_PID" "$LOG_DIR/gateway.log" "$GATEWAY_URL"

# ------------------------------------------------------------------ demo --
ensure_demo_data "127.0.0.1:$SUBSCRIPTION_PORT"
check_demo_key "$GATEWAY_URL"

# Shown as the user can paste them from where they started us.
key_path=$(from_caller "$KEY_FILE")
op_path=$(from_caller "$OPERATOR_FILE")
log_path=$(from_caller "$LOG_DIR")
callers_path=$(from_caller "$CALLERS_DIR")

cat <<EOF

octo-webhooks is running. Ctrl-C stops everything.
  dashboard            $GATEWAY_URL/dashboard/
                       log in as: $operator_name
                       password:  $operator_password   (also in $op_path; docs/dashboard.md)
  gateway (REST)       $GATEWAY_URL/octo/webhooks   (GET /healthz, /readyz)
  subscription (gRPC)  127.0.0.1:$SUBSCRIPTION_PORT   ($ADMIN_BIN --target=127.0.0.1:$SUBSCRIPTION_PORT --token_file=$callers_path/admin --help;
                       internal services publish events here: octo.webhooks.v1.EventService,
                       with the token of $callers_path/publisher, e.g.
                       T=\$(cat $callers_path/publisher) grpcurl -plaintext -expand-headers -H 'authorization: Bearer \${T}' ...)
  delivery (gRPC)      127.0.0.1:$DELIVERY_PORT   (stores published events and delivers them)
  PostgreSQL 15        psql "$DATABASE_URL"
  metrics (Prometheus) http://${OCTO_GATEWAY_METRICS_LISTEN:-127.0.0.1:9103}/metrics, http://${OCTO_SUBSCRIPTION_METRICS_LISTEN:-127.0.0.1:9101}/metrics, http://${OCTO_DELIVERY_METRICS_LISTEN:-127.0.0.1:9102}/metrics   (docs/observability.md)
  logs                 $log_path/{delivery,subscription,gateway,postgresql}.log

Create a webhook:

curl -sS -X POST $GATEWAY_URL/octo/webhooks \\
  -H "Authorization: Bearer \$(cat $key_path)" \\
  -H 'Content-Type: application/json' \\
  -H 'Octo-Capabilities: octo/pricing' \\
  -d '{"url":"https://example.com/webhooks/booking_update","event":"booking_update"}'

List webhooks:

curl -sS $GATEWAY_URL/octo/webhooks -H "Authorization: Bearer \$(cat $key_path)"

EOF

# ------------------------------------------------------------- foreground --
# Returns when a service exits (or a signal runs the trap).
status=0
wait -n "$DELIVERY_PID" "$SUBSCRIPTION_PID" "$GATEWAY_PID" || status=$?
for svc in delivery subscription gateway; do
  pid_var=${svc^^}_PID
  if ! kill -0 "${!pid_var}" 2>/dev/null; then
    tail -n 20 "$LOG_DIR/$svc.log" >&2 || true
    warn "octo-$svc exited unexpectedly (status $status); log: $LOG_DIR/$svc.log"
  fi
done
exit 1
