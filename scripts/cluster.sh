#!/usr/bin/env bash
# shellcheck disable=SC2317  # (cleanup functions run from traps)
# Several replicas on one machine (docs/operations.md, "Running several
# replicas on one machine"): builds Release and runs, on 127.0.0.1, in the
# foreground until Ctrl-C or SIGTERM (which stop every process and
# PostgreSQL cleanly):
#
#   - the embedded PostgreSQL of scripts/run.sh (same data directory, same
#     database `octo`, same demo tenant and internal tokens; one of the two
#     scripts at a time);
#   - 3 octo-delivery replicas (they share the queue in PostgreSQL);
#   - 2 octo-subscription replicas, each storing events through all delivery
#     replicas (--delivery_target=ipv4:127.0.0.1:a,127.0.0.1:b,...,
#     round-robin);
#   - 2 gateways, each over both subscription replicas (round-robin);
#   - each process with its own /metrics port.
# It prints every port and the demo operator's dashboard login. A replica
# that exits is reported (its status and log tail) and the rest go on; the
# script stops everything only once a whole tier (every delivery, every
# subscription or every gateway replica) is gone. Replica i of a service
# listens on the first port of its kind + 10 i (gateways: + i); metrics on
# 9100 + 10 i + 1 (subscription), + 2 (delivery), + 3 (gateway).
#
# Usage: scripts/cluster.sh [--deliveries N] [--subscriptions N] [--gateways N]
#                           [--gateway-port N] [--subscription-port N]
#                           [--delivery-port N] [--metrics-port N] [--pg-port N]
# Environment (flags win): OCTO_GATEWAY_PORT (8080), OCTO_SUBSCRIPTION_PORT
# (50051), OCTO_DELIVERY_PORT (50052), OCTO_METRICS_PORT (9100), OCTO_PG_PORT
# (55432), OCTO_DATA_DIR (.local in the checkout).
set -euo pipefail
# wait -n -p (the foreground loop) is bash 5.1 (Debian 12 has 5.2).
if ((BASH_VERSINFO[0] < 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] < 1))); then
  echo "error: scripts/cluster.sh needs bash 5.1 or later (this is $BASH_VERSION)" >&2
  exit 1
fi
cd "$(dirname "$0")/.."
CALLER_PWD=$OLDPWD  # read by from_caller (lib.sh)
export CALLER_PWD
source scripts/lib.sh

usage() {
  sed -n '3,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
}

DELIVERIES=3
SUBSCRIPTIONS=2
GATEWAYS=2
GATEWAY_PORT=${OCTO_GATEWAY_PORT:-8080}
SUBSCRIPTION_PORT=${OCTO_SUBSCRIPTION_PORT:-50051}
DELIVERY_PORT=${OCTO_DELIVERY_PORT:-50052}
METRICS_PORT=${OCTO_METRICS_PORT:-9100}
PG_PORT=${OCTO_PG_PORT:-55432}
while (($#)); do
  case $1 in
  -h | --help)
    usage
    exit 0
    ;;
  --*=*) name=${1%%=*} value=${1#*=} ;;
  --*)
    (($# >= 2)) || die "$1 needs a value"
    name=$1 value=$2
    shift
    ;;
  *) die "unknown argument '$1' (try --help)" ;;
  esac
  case $name in
  --deliveries) DELIVERIES=$value ;;
  --subscriptions) SUBSCRIPTIONS=$value ;;
  --gateways) GATEWAYS=$value ;;
  --gateway-port) GATEWAY_PORT=$value ;;
  --subscription-port) SUBSCRIPTION_PORT=$value ;;
  --delivery-port) DELIVERY_PORT=$value ;;
  --metrics-port) METRICS_PORT=$value ;;
  --pg-port) PG_PORT=$value ;;
  *) die "unknown argument '$name' (try --help)" ;;
  esac
  shift
done
for n in DELIVERIES SUBSCRIPTIONS GATEWAYS; do
  [[ ${!n} =~ ^[1-9]$ ]] || die "--${n,,} must be 1 to 9, got '${!n}'"
done
for p in GATEWAY_PORT SUBSCRIPTION_PORT DELIVERY_PORT METRICS_PORT PG_PORT; do
  if ! [[ ${!p} =~ ^[0-9]+$ ]] || ((${!p} < 1 || ${!p} + 99 > 65535)); then
    die "$p must be a TCP port (1-65436), got '${!p}'"
  fi
done

# Every port: each process's listener and metrics listener.
declare -a D_PORT D_METRICS S_PORT S_METRICS G_PORT G_METRICS
for ((i = 0; i < DELIVERIES; i++)); do
  D_PORT[i]=$((DELIVERY_PORT + 10 * i)) D_METRICS[i]=$((METRICS_PORT + 10 * i + 2))
done
for ((i = 0; i < SUBSCRIPTIONS; i++)); do
  S_PORT[i]=$((SUBSCRIPTION_PORT + 10 * i)) S_METRICS[i]=$((METRICS_PORT + 10 * i + 1))
done
for ((i = 0; i < GATEWAYS; i++)); do
  G_PORT[i]=$((GATEWAY_PORT + i)) G_METRICS[i]=$((METRICS_PORT + 10 * i + 3))
done
ALL_PORTS=("${D_PORT[@]}" "${D_METRICS[@]}" "${S_PORT[@]}" "${S_METRICS[@]}" "${G_PORT[@]}" "${G_METRICS[@]}" "$PG_PORT")
if [[ $(printf '%s\n' "${ALL_PORTS[@]}" | sort -u | wc -l) != "${#ALL_PORTS[@]}" ]]; then
  die "the ports overlap (${ALL_PORTS[*]}); move one range with --gateway-port, --subscription-port, --delivery-port, --metrics-port or --pg-port"
fi

use_data_dir "${OCTO_DATA_DIR:-$OCTO_ROOT/.local}"

# ------------------------------------------------------------- processes --
PG_STARTED=0
declare -a D_PID=() S_PID=() G_PID=()

cleanup() {
  local rc=$? i started=$((${#D_PID[@]} + PG_STARTED))
  trap - EXIT INT TERM
  ((started == 0)) || log "stopping"
  # Front to back, as scripts/run.sh: gateways, subscriptions, deliveries
  # (each finishes its in-flight deliveries), then PostgreSQL; the replicas
  # of a tier all at once.
  stop_children octo-gateway "${G_PID[@]}"
  stop_children octo-subscription "${S_PID[@]}"
  stop_children octo-delivery "${D_PID[@]}"
  stop_embedded_pg
  ((started == 0)) || log "stopped"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for port in "${ALL_PORTS[@]}"; do
  [[ $port == "$PG_PORT" ]] && continue
  port_in_use "$port" && die "127.0.0.1:$port is in use (scripts/run.sh running? another cluster?); move the ranges with the port flags (--help)"
done

install_deps
build_release octo-delivery octo-subscription octo-gateway octo-admin
start_embedded_pg "$PG_PORT"
ALLOW_DESTINATION_CIDRS=${OCTO_DELIVERY_ALLOW_DESTINATION_CIDRS-127.0.0.0/8,::1/128}
make_grpc_callers "$CALLERS_DIR"

# octo-delivery replica 0 first, alone: it applies the migrations.
for ((i = 0; i < DELIVERIES; i++)); do
  log "starting octo-delivery $i on 127.0.0.1:${D_PORT[i]} (metrics ${D_METRICS[i]})"
  "$DELIVERY_BIN" --grpc_listen="127.0.0.1:${D_PORT[i]}" --database_url="$DATABASE_URL" \
    --metrics_listen="127.0.0.1:${D_METRICS[i]}" \
    --allow_destination_cidrs="$ALLOW_DESTINATION_CIDRS" --grpc_callers_dir="$CALLERS_DIR" \
    9>&- </dev/null >>"$LOG_DIR/delivery-$i.log" 2>&1 &
  D_PID[i]=$!
  if ((i == 0)); then
    wait_grpc_health "octo-delivery 0" "${D_PID[0]}" "$LOG_DIR/delivery-0.log" "127.0.0.1:${D_PORT[0]}"
  fi
done
for ((i = 1; i < DELIVERIES; i++)); do
  wait_grpc_health "octo-delivery $i" "${D_PID[i]}" "$LOG_DIR/delivery-$i.log" "127.0.0.1:${D_PORT[i]}"
done

# gRPC's ipv4: resolver takes a list; the services' channels balance
# round-robin over it and skip a replica that is down.
address_list() {
  local out="ipv4:" port
  for port in "$@"; do out+="127.0.0.1:$port,"; done
  printf '%s' "${out%,}"
}
DELIVERY_TARGET=$(address_list "${D_PORT[@]}")
SUBSCRIPTION_TARGET=$(address_list "${S_PORT[@]}")

for ((i = 0; i < SUBSCRIPTIONS; i++)); do
  log "starting octo-subscription $i on 127.0.0.1:${S_PORT[i]} (metrics ${S_METRICS[i]})"
  "$SUBSCRIPTION_BIN" --grpc_listen="127.0.0.1:${S_PORT[i]}" --database_url="$DATABASE_URL" \
    --metrics_listen="127.0.0.1:${S_METRICS[i]}" --delivery_target="$DELIVERY_TARGET" \
    --allow_destination_cidrs="$ALLOW_DESTINATION_CIDRS" \
    --grpc_callers_dir="$CALLERS_DIR" --delivery_token_file="$CALLERS_DIR/subscription" \
    9>&- </dev/null >>"$LOG_DIR/subscription-$i.log" 2>&1 &
  S_PID[i]=$!
done
for ((i = 0; i < SUBSCRIPTIONS; i++)); do
  wait_grpc_health "octo-subscription $i" "${S_PID[i]}" "$LOG_DIR/subscription-$i.log" "127.0.0.1:${S_PORT[i]}"
done

for ((i = 0; i < GATEWAYS; i++)); do
  log "starting octo-gateway $i on 127.0.0.1:${G_PORT[i]} (metrics ${G_METRICS[i]})"
  "$GATEWAY_BIN" --listen="127.0.0.1:${G_PORT[i]}" --subscription_target="$SUBSCRIPTION_TARGET" \
    --metrics_listen="127.0.0.1:${G_METRICS[i]}" --subscription_token_file="$CALLERS_DIR/gateway" \
    9>&- </dev/null >>"$LOG_DIR/gateway-$i.log" 2>&1 &
  G_PID[i]=$!
done
for ((i = 0; i < GATEWAYS; i++)); do
  wait_http_health "octo-gateway $i" "${G_PID[i]}" "$LOG_DIR/gateway-$i.log" "http://127.0.0.1:${G_PORT[i]}"
done

ensure_demo_data "127.0.0.1:${S_PORT[0]}"
check_demo_key "http://127.0.0.1:${G_PORT[0]}"

# ----------------------------------------------------------------- ports --
key_path=$(from_caller "$KEY_FILE")
op_path=$(from_caller "$OPERATOR_FILE")
callers_path=$(from_caller "$CALLERS_DIR")
{
  echo
  echo "octo-webhooks is running: $DELIVERIES delivery, $SUBSCRIPTIONS subscription and $GATEWAYS gateway replicas. Ctrl-C stops everything."
  printf '  %-20s %-18s %-8s %s\n' process listens metrics log
  for ((i = 0; i < GATEWAYS; i++)); do
    printf '  %-20s %-18s %-8s %s\n' "octo-gateway $i" "127.0.0.1:${G_PORT[i]}" "${G_METRICS[i]}" "$(from_caller "$LOG_DIR/gateway-$i.log")"
  done
  for ((i = 0; i < SUBSCRIPTIONS; i++)); do
    printf '  %-20s %-18s %-8s %s\n' "octo-subscription $i" "127.0.0.1:${S_PORT[i]}" "${S_METRICS[i]}" "$(from_caller "$LOG_DIR/subscription-$i.log")"
  done
  for ((i = 0; i < DELIVERIES; i++)); do
    printf '  %-20s %-18s %-8s %s\n' "octo-delivery $i" "127.0.0.1:${D_PORT[i]}" "${D_METRICS[i]}" "$(from_caller "$LOG_DIR/delivery-$i.log")"
  done
  printf '  %-20s %-18s %-8s %s\n' "PostgreSQL 15" "127.0.0.1:$PG_PORT" "-" "$(from_caller "$LOG_DIR/postgresql.log")"
  echo
  echo "  gateways' --subscription_target      $SUBSCRIPTION_TARGET"
  echo "  subscriptions' --delivery_target     $DELIVERY_TARGET"
  echo "  internal caller tokens               $callers_path (as scripts/run.sh)"
  echo "  metrics                              http://127.0.0.1:<metrics>/metrics"
  echo "  dashboard                            http://127.0.0.1:${G_PORT[0]}/dashboard/ (any gateway)"
  echo "                                       log in as: $operator_name"
  echo "                                       password:  $operator_password   (also in $op_path; docs/dashboard.md)"
  echo
  echo "List webhooks through either gateway:"
  echo
  for ((i = 0; i < GATEWAYS; i++)); do
    echo "curl -sS http://127.0.0.1:${G_PORT[i]}/octo/webhooks -H \"Authorization: Bearer \$(cat $key_path)\""
  done
  echo
  echo "Per-webhook limits (rateLimitPerSecond, maxConcurrency) hold per delivery replica: up to $DELIVERIES x the setting here."
  echo
}

# ------------------------------------------------------------- foreground --
# Each exit is reported and the rest go on, until a whole tier is gone (or
# a signal runs the trap).
declare -A NAME_OF=() LOG_OF=()
for i in "${!D_PID[@]}"; do NAME_OF[${D_PID[i]}]="octo-delivery $i" LOG_OF[${D_PID[i]}]=$LOG_DIR/delivery-$i.log; done
for i in "${!S_PID[@]}"; do NAME_OF[${S_PID[i]}]="octo-subscription $i" LOG_OF[${S_PID[i]}]=$LOG_DIR/subscription-$i.log; done
for i in "${!G_PID[@]}"; do NAME_OF[${G_PID[i]}]="octo-gateway $i" LOG_OF[${G_PID[i]}]=$LOG_DIR/gateway-$i.log; done

# Drops pid $1 from D_PID, S_PID and G_PID.
forget_pid() {
  local i
  for i in "${!D_PID[@]}"; do [[ ${D_PID[i]} != "$1" ]] || unset 'D_PID[i]'; done
  for i in "${!S_PID[@]}"; do [[ ${S_PID[i]} != "$1" ]] || unset 'S_PID[i]'; done
  for i in "${!G_PID[@]}"; do [[ ${G_PID[i]} != "$1" ]] || unset 'G_PID[i]'; done
}

while true; do
  status=0 exited=
  wait -n -p exited "${D_PID[@]}" "${S_PID[@]}" "${G_PID[@]}" || status=$?
  [[ -n $exited ]] || continue
  # A Ctrl-C reaches the children too; one may exit before our trap runs:
  # give the trap a moment, so that a Ctrl-C is not reported as a crash.
  sleep 0.5
  forget_pid "$exited"
  warn "${NAME_OF[$exited]} (pid $exited) exited (status $status); the end of its log ($(from_caller "${LOG_OF[$exited]}")):"
  tail -n 15 "${LOG_OF[$exited]}" >&2 || true
  gone=
  ((${#D_PID[@]})) || gone=octo-delivery
  ((${#S_PID[@]})) || gone=octo-subscription
  ((${#G_PID[@]})) || gone=octo-gateway
  if [[ -n $gone ]]; then
    warn "no $gone replica is left; stopping everything"
    exit 1
  fi
  log "the other replicas go on (Ctrl-C stops everything)"
done
