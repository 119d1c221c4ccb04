# shellcheck shell=bash disable=SC2034
# Shared helpers of scripts/test.sh and scripts/run.sh. Source it; do not run it.
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
# non-zero (the test fails).
OCTO_SANITIZE_ENV=(
  "ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:print_summary=1"
  "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1"
)

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
