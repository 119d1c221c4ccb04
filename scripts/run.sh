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
CALLER_PWD=$OLDPWD
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
DATA_DIR=${OCTO_DATA_DIR:-$OCTO_ROOT/.local}
mkdir -p "$DATA_DIR"
DATA_DIR=$(cd "$DATA_DIR" && pwd -P)
PGDATA_DIR=$DATA_DIR/pgdata
SOCKET_DIR=$DATA_DIR/run
LOG_DIR=$DATA_DIR/logs
KEY_FILE=$DATA_DIR/demo-api-key
SUBSCRIPTION_BIN=$OCTO_BUILD_DIR/services/subscription/octo-subscription
DELIVERY_BIN=$OCTO_BUILD_DIR/services/delivery/octo-delivery
GATEWAY_BIN=$OCTO_BUILD_DIR/gateway/octo-gateway
ADMIN_BIN=$OCTO_BUILD_DIR/tools/octo-admin

# One run.sh per data directory. Children do not inherit the lock (9>&-).
exec 9>"$DATA_DIR/run.lock"
flock -n 9 || die "another scripts/run.sh is already running with $DATA_DIR"

# ------------------------------------------------------------- processes --
PG_STARTED=0
SUBSCRIPTION_PID=""
DELIVERY_PID=""
GATEWAY_PID=""

# Sends SIGTERM to a child and waits for it (10 s, then SIGKILL).
stop_child() {
  local name=$1 pid=$2 i
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    warn "$name did not stop within 10 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

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
  if ((PG_STARTED)); then
    as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w -t 60 stop >/dev/null ||
      warn "PostgreSQL did not stop; see $LOG_DIR/postgresql.log"
  fi
  if [[ -n $GATEWAY_PID || -n $SUBSCRIPTION_PID || -n $DELIVERY_PID ]] || ((PG_STARTED)); then
    log "stopped"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Fails with the end of a child's log when it has exited.
check_alive() {
  local name=$1 pid=$2 logfile=$3
  if ! kill -0 "$pid" 2>/dev/null; then
    local status=0
    wait "$pid" 2>/dev/null || status=$?
    tail -n 20 "$logfile" >&2 || true
    die "$name exited (status $status) during start-up; log: $logfile"
  fi
}

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
mkdir -p "$PGDATA_DIR" "$SOCKET_DIR" "$LOG_DIR"
chmod 700 "$PGDATA_DIR" "$SOCKET_DIR"
give_to_pg "$PGDATA_DIR" "$SOCKET_DIR" "$LOG_DIR"
if is_root && ! runuser -u postgres -- test -w "$PGDATA_DIR"; then
  die "the postgres user cannot reach $PGDATA_DIR (PostgreSQL refuses to run as root, and a parent directory of $DATA_DIR is not searchable by other users, e.g. /root). Put the data elsewhere, e.g.: OCTO_DATA_DIR=/var/lib/octo-webhooks scripts/run.sh"
fi
check_socket_path "$SOCKET_DIR" "$PG_PORT"

FRESH_CLUSTER=0
if [[ ! -f $PGDATA_DIR/PG_VERSION ]]; then
  [[ -z $(ls -A "$PGDATA_DIR") ]] || die "$PGDATA_DIR is not empty but holds no PostgreSQL cluster; move it away"
  log "creating the PostgreSQL cluster in $PGDATA_DIR"
  # Local (socket) connections are trusted: the socket directory is mode 700,
  # so only its owner and root can connect. TCP needs a password (none is set).
  as_pg "$PG_BIN/initdb" -D "$PGDATA_DIR" -U postgres --auth-local=trust \
    --auth-host=scram-sha-256 -E UTF8 --no-locale >"$LOG_DIR/initdb.log" 2>&1 || {
    cat "$LOG_DIR/initdb.log" >&2
    die "initdb failed"
  }
  echo "include_if_exists = 'octo-run.conf'" >>"$PGDATA_DIR/postgresql.conf"
  FRESH_CLUSTER=1
fi
[[ $(<"$PGDATA_DIR/PG_VERSION") == 15 ]] ||
  die "$PGDATA_DIR holds a PostgreSQL $(<"$PGDATA_DIR/PG_VERSION") cluster; this needs 15"
if as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1; then
  die "the PostgreSQL cluster in $PGDATA_DIR is already running (left over from a killed run?); stop it with: $( is_root && echo 'runuser -u postgres -- ')$PG_BIN/pg_ctl -D $PGDATA_DIR -m fast stop"
fi
port_in_use "$PG_PORT" &&
  die "127.0.0.1:$PG_PORT is in use; choose another PostgreSQL port with --pg-port or OCTO_PG_PORT"
# Written on every start, so a changed port or data directory takes effect.
cat >"$PGDATA_DIR/octo-run.conf" <<EOF
# Written by scripts/run.sh on every start.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '${SOCKET_DIR//\'/\'\'}'
EOF
give_to_pg "$PGDATA_DIR/octo-run.conf"
log "starting PostgreSQL 15 on 127.0.0.1:$PG_PORT"
PG_STARTED=1
as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -l "$LOG_DIR/postgresql.log" -w -t 60 start 9>&- >/dev/null || {
  PG_STARTED=0
  tail -n 20 "$LOG_DIR/postgresql.log" >&2 || true
  die "PostgreSQL did not start; log: $LOG_DIR/postgresql.log"
}

PSQL=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCKET_DIR" -p "$PG_PORT" -U postgres)
if [[ -z $("${PSQL[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'octo'") ]]; then
  log "creating database octo"
  "${PSQL[@]}" -d postgres -c "CREATE DATABASE octo"
fi
DATABASE_URL="host=$(conninfo_quote "$SOCKET_DIR") port=$PG_PORT user=postgres dbname=octo"

# --------------------------------------------------------------- services --
# SSRF guard: the services refuse loopback and private destinations unless
# allowed. Everything here runs on one machine, so webhooks to a receiver on
# this machine are allowed; set OCTO_DELIVERY_ALLOW_DESTINATION_CIDRS to
# change it ("" = public addresses only, as in production).
ALLOW_DESTINATION_CIDRS=${OCTO_DELIVERY_ALLOW_DESTINATION_CIDRS-127.0.0.0/8,::1/128}
# Internal credentials (docs/operations.md, "Internal credentials"): one
# random token per caller identity, made on the first run and kept; the
# services refuse gRPC calls without a known caller's token.
CALLERS_DIR=$DATA_DIR/grpc-callers
make_grpc_callers "$CALLERS_DIR"
# octo-delivery first: it applies the migrations, and octo-subscription hands
# it every published event.
log "starting octo-delivery on 127.0.0.1:$DELIVERY_PORT"
"$DELIVERY_BIN" --grpc_listen="127.0.0.1:$DELIVERY_PORT" --database_url="$DATABASE_URL" \
  --allow_destination_cidrs="$ALLOW_DESTINATION_CIDRS" --grpc_callers_dir="$CALLERS_DIR" \
  9>&- </dev/null >>"$LOG_DIR/delivery.log" 2>&1 &
DELIVERY_PID=$!
for ((i = 0; ; i++)); do
  check_alive octo-delivery "$DELIVERY_PID" "$LOG_DIR/delivery.log"
  "$ADMIN_BIN" --target="127.0.0.1:$DELIVERY_PORT" --token_file="$CALLERS_DIR/admin" --timeout=1s health >/dev/null 2>&1 && break
  ((i < 300)) || die "octo-delivery did not answer its gRPC health check within 60 s; log: $LOG_DIR/delivery.log"
  sleep 0.2
done

log "starting octo-subscription on 127.0.0.1:$SUBSCRIPTION_PORT"
"$SUBSCRIPTION_BIN" --grpc_listen="127.0.0.1:$SUBSCRIPTION_PORT" --database_url="$DATABASE_URL" \
  --delivery_target="127.0.0.1:$DELIVERY_PORT" \
  --allow_destination_cidrs="$ALLOW_DESTINATION_CIDRS" \
  --grpc_callers_dir="$CALLERS_DIR" --delivery_token_file="$CALLERS_DIR/subscription" \
  9>&- </dev/null >>"$LOG_DIR/subscription.log" 2>&1 &
SUBSCRIPTION_PID=$!
ADMIN=("$ADMIN_BIN" --target="127.0.0.1:$SUBSCRIPTION_PORT" --token_file="$CALLERS_DIR/admin")
for ((i = 0; ; i++)); do
  check_alive octo-subscription "$SUBSCRIPTION_PID" "$LOG_DIR/subscription.log"
  "${ADMIN[@]}" --timeout=1s health >/dev/null 2>&1 && break
  ((i < 300)) || die "octo-subscription did not answer its gRPC health check within 60 s; log: $LOG_DIR/subscription.log"
  sleep 0.2
done

log "starting octo-gateway on 127.0.0.1:$GATEWAY_PORT"
"$GATEWAY_BIN" --listen="127.0.0.1:$GATEWAY_PORT" --subscription_target="127.0.0.1:$SUBSCRIPTION_PORT" \
  --subscription_token_file="$CALLERS_DIR/gateway" \
  9>&- </dev/null >>"$LOG_DIR/gateway.log" 2>&1 &
GATEWAY_PID=$!
GATEWAY_URL="http://127.0.0.1:$GATEWAY_PORT"
for ((i = 0; ; i++)); do
  check_alive octo-gateway "$GATEWAY_PID" "$LOG_DIR/gateway.log"
  curl -fsS -o /dev/null --max-time 1 "$GATEWAY_URL/healthz" 2>/dev/null && break
  ((i < 300)) || die "octo-gateway did not answer GET /healthz within 60 s; log: $LOG_DIR/gateway.log"
  sleep 0.2
done

# ------------------------------------------------------------------ demo --
# A new cluster has none of the old demo data: forget a key file left over.
if ((FRESH_CLUSTER)) && [[ -e $KEY_FILE ]]; then
  rm -f "$KEY_FILE"
fi
if [[ ! -s $KEY_FILE ]]; then
  log "first run: creating the demo supplier, connection and API key"
  supplier_id=$("${ADMIN[@]}" --output=id supplier create --name="Demo Tours" \
    --endpoint="https://api.demo-tours.example.com/octo" --website="https://demo-tours.example.com" \
    --email="support@demo-tours.example.com" --telephone="+44 20 7946 0000" \
    --address="1 Example Street, London")
  connection_id=$("${ADMIN[@]}" --output=id connection create --supplier="$supplier_id" \
    --name="Demo reseller")
  api_key=$("${ADMIN[@]}" --output=key key create --connection="$connection_id" --name="demo")
  (umask 077 && printf '%s\n' "$api_key" >"$KEY_FILE.tmp" && mv "$KEY_FILE.tmp" "$KEY_FILE")
  log "demo supplier $supplier_id, connection $connection_id; API key in $KEY_FILE"
fi
# The dashboard's demo operator (a login of the demo supplier's staff).
OPERATOR_FILE=$DATA_DIR/demo-operator
if ((FRESH_CLUSTER)) && [[ -e $OPERATOR_FILE ]]; then
  rm -f "$OPERATOR_FILE"
fi
if [[ ! -s $OPERATOR_FILE ]]; then
  demo_supplier=${supplier_id:-$("${ADMIN[@]}" --output=id supplier list | head -n 1)}
  operator_name=demo-operator
  if ! operator_password=$("${ADMIN[@]}" operator create --supplier="$demo_supplier" \
    --name="$operator_name" --output=password 2>/dev/null); then
    operator_name=demo-operator-$RANDOM$RANDOM  # the file was lost: a new login
    operator_password=$("${ADMIN[@]}" operator create --supplier="$demo_supplier" \
      --name="$operator_name" --output=password)
  fi
  (umask 077 && printf '%s\n%s\n' "$operator_name" "$operator_password" >"$OPERATOR_FILE.tmp" &&
    mv "$OPERATOR_FILE.tmp" "$OPERATOR_FILE")
  log "demo dashboard operator $operator_name; login in $OPERATOR_FILE"
fi
{ read -r operator_name && read -r operator_password; } <"$OPERATOR_FILE"
status=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 \
  -H "Authorization: Bearer $(<"$KEY_FILE")" "$GATEWAY_URL/octo/webhooks" || true)
if [[ $status == 401 ]]; then
  warn "the demo API key in $KEY_FILE is not accepted (revoked?); delete the file and restart to get a new one"
fi

# Show the key file as the user can paste it from where they started us.
key_path=$KEY_FILE
[[ $key_path == "$CALLER_PWD"/* ]] && key_path=${key_path#"$CALLER_PWD"/}
op_path=$OPERATOR_FILE
[[ $op_path == "$CALLER_PWD"/* ]] && op_path=${op_path#"$CALLER_PWD"/}
log_path=$LOG_DIR
callers_path=$CALLERS_DIR
[[ $callers_path == "$CALLER_PWD"/* ]] && callers_path=${callers_path#"$CALLER_PWD"/}
[[ $log_path == "$CALLER_PWD"/* ]] && log_path=${log_path#"$CALLER_PWD"/}

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
