# shellcheck shell=bash disable=SC2034
# Shared helpers of scripts/test.sh, scripts/run.sh and scripts/cluster.sh.
# Source it; do not run it.
# Expects `set -euo pipefail` and the checkout root as the current directory.

OCTO_ROOT=$(pwd -P)
OCTO_BUILD_DIR="$OCTO_ROOT/build"
PG_BIN=/usr/lib/postgresql/15/bin

log() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

is_root() { [[ $(id -u) -eq 0 ]]; }

# Seconds since an $EPOCHREALTIME reading, with one decimal: elapsed "$t0".
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# Runs a PostgreSQL program as the user that owns the cluster: `postgres` when
# we are root (PostgreSQL refuses to run as root), else the current user. From
# / so that a cwd the postgres user cannot read causes no warning.
as_pg() {
  if is_root; then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

# Gives a directory to the user that will own the cluster.
give_to_pg() {
  if is_root; then chown postgres: "$@"; fi
}

# True when something accepts TCP connections on 127.0.0.1:$1.
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# A port in 20000..59999 where nothing listens right now (someone may still
# take it before we bind: callers retry).
pick_free_port() {
  local port i
  for ((i = 0; i < 100; i++)); do
    port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    if ! port_in_use "$port"; then
      echo "$port"
      return 0
    fi
  done
  die "found no free TCP port on 127.0.0.1"
}

# Quotes a value for a libpq conninfo string: 'value' with \ and ' escaped.
conninfo_quote() {
  local v=${1//\\/\\\\}
  printf "'%s'" "${v//\'/\\\'}"
}

# Installs the missing Debian packages (scripts/install-deps.sh).
install_deps() {
  "$OCTO_ROOT/scripts/install-deps.sh"
}

# The sanitizer build (scripts/test.sh --sanitize): GCC with AddressSanitizer
# (and LeakSanitizer) and UndefinedBehaviorSanitizer, every UBSan finding
# fatal; -O1 -g1 for stacks with lines at a bearable build time. GCC 12
# with ASan reports -Wmaybe-uninitialized inside libstdc++'s <regex>
# (dashboard_test.cc) that the Release build does not: visible, not fatal.
OCTO_SANITIZE_BUILD_DIR="$OCTO_ROOT/build-sanitize"
OCTO_SANITIZE_CMAKE_ARGS=(
  -DCMAKE_BUILD_TYPE=Release
  "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -g1 -DNDEBUG"
  "-DCMAKE_CXX_FLAGS=-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -Wno-error=maybe-uninitialized"
)
# What the sanitized programs do on a finding: report with a stack and exit
# non-zero (the test fails). tests/sanitize/lsan.supp lists the leaks inside
# third-party libraries that LeakSanitizer ignores (each with why); never
# one of our own frames.
OCTO_SANITIZE_ENV=(
  "ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:print_summary=1"
  "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1"
  "LSAN_OPTIONS=suppressions=$OCTO_ROOT/tests/sanitize/lsan.supp:print_suppressions=0"
)

# CI's sanitizer run (scripts/test.sh --sanitize-ci; docs/decisions.md): the
# tests labelled unit, gateway or e2e, less the excluded labels, with only their
# programs built. THE list of those programs: scripts/check_sanitize_ci.py
# fails the run when a test of those labels belongs to a program not listed
# here (or a listed one has none), so a new test program cannot escape it.
OCTO_SANITIZE_CI_LABELS="unit|gateway|e2e"
# load: the two 100,000-delivery tests; unsanitized: a known, unfixed cause
# (tests/CMakeLists.txt; no test carries it at present).
OCTO_SANITIZE_CI_EXCLUDED_LABELS="load|unsanitized"
OCTO_SANITIZE_CI_PROGRAMS=(
  # unit
  common_unit_tests enqueue_unit_tests payload_unit_tests metrics_unit_tests
  dispatch_unit_tests dispatch_sender_tests octo_admin_test
  # gateway
  gateway_unit_test gateway_server_test gateway_main_test
  # e2e
  octo_e2e_tests octo_delivery_e2e_tests octo_fault_tests metrics_e2e_tests
  dashboard_browser_test
)
# The programs those tests start (each test program's add_dependencies builds
# them too; listed so that the build says what it builds).
OCTO_SANITIZE_CI_SERVICES=(octo-gateway octo-subscription octo-delivery octo-admin)

# The libFuzzer build (scripts/fuzz.sh; scripts/test.sh runs each target
# briefly): clang 14, OCTO_FUZZ=ON, only the fuzz targets and the libraries
# they link.
OCTO_FUZZ_BUILD_DIR="$OCTO_ROOT/build-fuzz"
OCTO_FUZZ_CXX=clang++-14
OCTO_FUZZ_CMAKE_ARGS=(
  -DCMAKE_BUILD_TYPE=Release
  "-DCMAKE_CXX_COMPILER=$OCTO_FUZZ_CXX"
  "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -DNDEBUG"
  -DOCTO_FUZZ=ON
)

# Configures DIR with the given CMake arguments and builds the targets after
# "--" (none: everything). Sets OCTO_BUILD_SECONDS.
#   cmake_build DIR WHAT [CMAKE ARGS...] -- [TARGETS...]
cmake_build() {
  local dir=$1 what=$2
  shift 2
  local cmake_args=()
  while (($#)) && [[ $1 != -- ]]; do
    cmake_args+=("$1")
    shift
  done
  if (($#)); then shift; fi
  local target_args=()
  if (($#)); then target_args=(--target "$@"); fi
  local t0=$EPOCHREALTIME
  log "building ($what) into ${dir#"$OCTO_ROOT"/}/ with -j$(nproc): ${*:-everything}"
  cmake -S "$OCTO_ROOT" -B "$dir" "${cmake_args[@]}" >/dev/null
  cmake --build "$dir" -j"$(nproc)" "${target_args[@]}"
  OCTO_BUILD_SECONDS=$(elapsed "$t0")
  log "build: ${OCTO_BUILD_SECONDS} s"
}

# Configures and builds, Release, into build/: the given targets, or all.
build_release() {
  cmake_build "$OCTO_BUILD_DIR" Release -DCMAKE_BUILD_TYPE=Release -- "$@"
}

# Builds the fuzz targets (tests/fuzz) into build-fuzz/.
build_fuzz() {
  command -v "$OCTO_FUZZ_CXX" >/dev/null ||
    die "$OCTO_FUZZ_CXX is missing (scripts/install-deps.sh installs clang-14 and libclang-rt-14-dev)"
  cmake_build "$OCTO_FUZZ_BUILD_DIR" "libFuzzer, clang" "${OCTO_FUZZ_CMAKE_ARGS[@]}" -- "$@"
}

# Checks that the data directory's socket path fits in a Unix socket address
# (107 bytes), which PostgreSQL needs: "$dir/.s.PGSQL.$port".
check_socket_path() {
  local dir=$1 port=$2
  local path="$dir/.s.PGSQL.$port"
  if ((${#path} > 107)); then
    die "the PostgreSQL socket path $path is longer than 107 bytes; use a shorter directory (OCTO_DATA_DIR=/var/tmp/octo)"
  fi
}

# Stops a process group started with `set -m` (its leader's pid, "" = none)
# and everything in it: TERM, up to 10 s, then KILL. $2 says what for the log.
stop_process_group() {
  local pid=$1 what=$2
  [[ -n $pid ]] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping $what"
    kill -TERM -- "-$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
  fi
  kill -KILL -- "-$pid" 2>/dev/null || true
}

# Stops a throwaway cluster under $1 (data in $1/data) within $2 seconds
# and deletes the directory.
remove_throwaway_pg() {
  local dir=$1 timeout=$2
  [[ -n $dir && -d $dir ]] || return 0
  if [[ -f $dir/data/postmaster.pid ]]; then
    as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t "$timeout" stop >/dev/null 2>&1 ||
      warn "pg_ctl stop failed; see $dir/postgresql.log"
  fi
  rm -rf "$dir"
}

# make_grpc_callers DIR: one random token per internal caller identity
# (gateway, admin, publisher, subscription) in DIR, made when missing and kept
# otherwise (docs/operations.md, "Internal credentials").
make_grpc_callers() {
  local dir=$1 identity
  mkdir -p "$dir"
  chmod 700 "$dir"
  for identity in gateway admin publisher subscription; do
    [[ -s $dir/$identity ]] && continue
    log "creating the internal caller token $dir/$identity"
    (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$dir/$identity.tmp" &&
      echo >>"$dir/$identity.tmp" && mv "$dir/$identity.tmp" "$dir/$identity")
  done
}

# ------------------------------------------------- the running system (run.sh, cluster.sh) --
# What scripts/run.sh and scripts/cluster.sh share: the embedded PostgreSQL
# under $DATA_DIR, starting a service and waiting for it, the demo tenant,
# stopping children.

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

# Stops several children at once (the replicas of one tier): SIGTERM to
# all, then up to 10 s for all together, then SIGKILL to any left.
# Arguments: a name for the warning, then the pids.
stop_children() {
  local name=$1 pid i left
  shift
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for ((i = 0; i < 100; i++)); do
    left=0
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && left=1; done
    ((left)) || break
    sleep 0.1
  done
  for pid in "$@"; do
    if kill -0 "$pid" 2>/dev/null; then
      warn "$name (pid $pid) did not stop within 10 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
}

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

# Waits (60 s) for a gRPC service's health check: NAME PID LOG TARGET.
# Needs $ADMIN_BIN and $CALLERS_DIR.
wait_grpc_health() {
  local name=$1 pid=$2 logfile=$3 target=$4 i
  for ((i = 0; ; i++)); do
    check_alive "$name" "$pid" "$logfile"
    "$ADMIN_BIN" --target="$target" --token_file="$CALLERS_DIR/admin" --timeout=1s health >/dev/null 2>&1 && return 0
    ((i < 300)) || die "$name did not answer its gRPC health check within 60 s; log: $logfile"
    sleep 0.2
  done
}

# Waits (60 s) for a gateway's GET /healthz: NAME PID LOG URL.
wait_http_health() {
  local name=$1 pid=$2 logfile=$3 url=$4 i
  for ((i = 0; ; i++)); do
    check_alive "$name" "$pid" "$logfile"
    curl -fsS -o /dev/null --max-time 1 "$url/healthz" 2>/dev/null && return 0
    ((i < 300)) || die "$name did not answer GET /healthz within 60 s; log: $logfile"
    sleep 0.2
  done
}

# Sets the layout of a data directory ($1): DATA_DIR (absolute), PGDATA_DIR,
# SOCKET_DIR, LOG_DIR, KEY_FILE, OPERATOR_FILE, CALLERS_DIR, and the binaries.
# Takes the directory's lock (fd 9): one running system per data directory.
use_data_dir() {
  mkdir -p "$1"
  DATA_DIR=$(cd "$1" && pwd -P)
  PGDATA_DIR=$DATA_DIR/pgdata
  SOCKET_DIR=$DATA_DIR/run
  LOG_DIR=$DATA_DIR/logs
  KEY_FILE=$DATA_DIR/demo-api-key
  OPERATOR_FILE=$DATA_DIR/demo-operator
  CALLERS_DIR=$DATA_DIR/grpc-callers
  SUBSCRIPTION_BIN=$OCTO_BUILD_DIR/services/subscription/octo-subscription
  DELIVERY_BIN=$OCTO_BUILD_DIR/services/delivery/octo-delivery
  GATEWAY_BIN=$OCTO_BUILD_DIR/gateway/octo-gateway
  ADMIN_BIN=$OCTO_BUILD_DIR/tools/octo-admin
  # Children do not inherit the lock (9>&-).
  exec 9>"$DATA_DIR/run.lock"
  flock -n 9 || die "another scripts/run.sh or scripts/cluster.sh is already running with $DATA_DIR"
}

# Creates (first run) and starts the PostgreSQL 15 cluster of the data
# directory on 127.0.0.1:$1, and the database `octo`. Sets PG_STARTED=1,
# FRESH_CLUSTER (1 when just created), PSQL and DATABASE_URL (over the
# socket). stop_embedded_pg stops it.
start_embedded_pg() {
  local pg_port=$1
  mkdir -p "$PGDATA_DIR" "$SOCKET_DIR" "$LOG_DIR"
  chmod 700 "$PGDATA_DIR" "$SOCKET_DIR"
  give_to_pg "$PGDATA_DIR" "$SOCKET_DIR" "$LOG_DIR"
  if is_root && ! runuser -u postgres -- test -w "$PGDATA_DIR"; then
    die "the postgres user cannot reach $PGDATA_DIR (PostgreSQL refuses to run as root, and a parent directory of $DATA_DIR is not searchable by other users, e.g. /root). Put the data elsewhere, e.g.: OCTO_DATA_DIR=/var/lib/octo-webhooks $0"
  fi
  check_socket_path "$SOCKET_DIR" "$pg_port"

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
    die "the PostgreSQL cluster in $PGDATA_DIR is already running (left over from a killed run?); stop it with: $(is_root && echo 'runuser -u postgres -- ')$PG_BIN/pg_ctl -D $PGDATA_DIR -m fast stop"
  fi
  port_in_use "$pg_port" &&
    die "127.0.0.1:$pg_port is in use; choose another PostgreSQL port with --pg-port or OCTO_PG_PORT"
  # Written on every start, so a changed port or data directory takes effect.
  cat >"$PGDATA_DIR/octo-run.conf" <<CONF
# Written by scripts/run.sh (or scripts/cluster.sh) on every start.
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = '${SOCKET_DIR//\'/\'\'}'
CONF
  give_to_pg "$PGDATA_DIR/octo-run.conf"
  log "starting PostgreSQL 15 on 127.0.0.1:$pg_port"
  PG_STARTED=1
  as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -l "$LOG_DIR/postgresql.log" -w -t 60 start 9>&- >/dev/null || {
    PG_STARTED=0
    tail -n 20 "$LOG_DIR/postgresql.log" >&2 || true
    die "PostgreSQL did not start; log: $LOG_DIR/postgresql.log"
  }

  PSQL=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCKET_DIR" -p "$pg_port" -U postgres)
  if [[ -z $("${PSQL[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'octo'") ]]; then
    log "creating database octo"
    "${PSQL[@]}" -d postgres -c "CREATE DATABASE octo"
  fi
  DATABASE_URL="host=$(conninfo_quote "$SOCKET_DIR") port=$pg_port user=postgres dbname=octo"
}

stop_embedded_pg() {
  ((${PG_STARTED:-0})) || return 0
  as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w -t 60 stop >/dev/null ||
    warn "PostgreSQL did not stop; see $LOG_DIR/postgresql.log"
}

# The demo supplier, connection and API key ($KEY_FILE) and dashboard
# operator ($OPERATOR_FILE), made on the first run (or when their file is
# lost) through octo-subscription at $1. Sets operator_name and
# operator_password.
ensure_demo_data() {
  local admin=("$ADMIN_BIN" --target="$1" --token_file="$CALLERS_DIR/admin")
  local supplier_id="" connection_id api_key demo_supplier
  # A new cluster has none of the old demo data: forget the files left over.
  if ((FRESH_CLUSTER)); then rm -f "$KEY_FILE" "$OPERATOR_FILE"; fi
  if [[ ! -s $KEY_FILE ]]; then
    log "first run: creating the demo supplier, connection and API key"
    supplier_id=$("${admin[@]}" --output=id supplier create --name="Demo Tours" \
      --endpoint="https://api.demo-tours.example.com/octo" --website="https://demo-tours.example.com" \
      --email="support@demo-tours.example.com" --telephone="+44 20 7946 0000" \
      --address="1 Example Street, London")
    connection_id=$("${admin[@]}" --output=id connection create --supplier="$supplier_id" \
      --name="Demo reseller")
    api_key=$("${admin[@]}" --output=key key create --connection="$connection_id" --name="demo")
    (umask 077 && printf '%s\n' "$api_key" >"$KEY_FILE.tmp" && mv "$KEY_FILE.tmp" "$KEY_FILE")
    log "demo supplier $supplier_id, connection $connection_id; API key in $KEY_FILE"
  fi
  # The dashboard's demo operator (a login of the demo supplier's staff).
  if [[ ! -s $OPERATOR_FILE ]]; then
    demo_supplier=${supplier_id:-$("${admin[@]}" --output=id supplier list | head -n 1)}
    operator_name=demo-operator
    if ! operator_password=$("${admin[@]}" operator create --supplier="$demo_supplier" \
      --name="$operator_name" --output=password 2>/dev/null); then
      operator_name=demo-operator-$RANDOM$RANDOM  # the file was lost: a new login
      operator_password=$("${admin[@]}" operator create --supplier="$demo_supplier" \
        --name="$operator_name" --output=password)
    fi
    (umask 077 && printf '%s\n%s\n' "$operator_name" "$operator_password" >"$OPERATOR_FILE.tmp" &&
      mv "$OPERATOR_FILE.tmp" "$OPERATOR_FILE")
    log "demo dashboard operator $operator_name; login in $OPERATOR_FILE"
  fi
  { read -r operator_name && read -r operator_password; } <"$OPERATOR_FILE"
}

# Warns when the demo key is refused by the gateway at $1 (revoked?).
check_demo_key() {
  local status
  status=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 \
    -H "Authorization: Bearer $(<"$KEY_FILE")" "$1/octo/webhooks" || true)
  if [[ $status == 401 ]]; then
    warn "the demo API key in $KEY_FILE is not accepted (revoked?); delete the file and restart to get a new one"
  fi
}

# $1 relative to the directory the user started us from, when inside it.
from_caller() {
  local path=$1
  [[ -n ${CALLER_PWD:-} && $path == "$CALLER_PWD"/* ]] && path=${path#"$CALLER_PWD"/}
  printf '%s' "$path"
}
