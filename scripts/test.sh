#!/usr/bin/env bash
# shellcheck disable=SC2317  # (cleanup functions run from traps)
# THE test command (README; .ci/run calls it):
#   installs missing packages, builds Release into build/, starts a throwaway
#   PostgreSQL 15 on a free 127.0.0.1 port with its socket in a temp dir, runs
#   every test with ctest, and stops and removes PostgreSQL on exit, whatever
#   happens (failure, Ctrl-C, SIGTERM). Exits non-zero when anything fails.
#
# Usage: scripts/test.sh [--sanitize | --sanitize-ci] [CTEST ARGS...]
#   e.g. scripts/test.sh -R Validation
#   --sanitize  builds with AddressSanitizer (leaks included) and
#               UndefinedBehaviorSanitizer into build-sanitize/ instead (GCC,
#               -O1; scripts/lib.sh) and runs the tests there: any finding
#               fails its test. Everything else is the same.
#   --sanitize-ci  CI's sanitizer run (.ci/run runs it after the plain run):
#               the same build, but only of the test programs labelled unit,
#               gateway or e2e (OCTO_SANITIZE_CI_PROGRAMS in scripts/lib.sh, the
#               one list of them) and the services they start, and runs
#               `ctest -L '^(unit|gateway|e2e)$' -LE '^(load|unsanitized)$'`
#               (tests/CMakeLists.txt describes the labels). Before the
#               tests, it fails when a test of those labels belongs to a
#               program not in the list (scripts/check_sanitize_ci.py). No
#               fuzz build or run (the plain run has them).
# The fuzz tests (label fuzz) run each libFuzzer target of tests/fuzz for 3 s
# from its committed corpus: this script builds them with clang into
# build-fuzz/ (scripts/fuzz.sh runs them longer) and sets OCTO_FUZZ_BIN_DIR.
# Tests that need PostgreSQL read OCTO_TEST_PG (a libpq conninfo of the
# cluster's superuser) and fail without it; the delivery tests also read
# OCTO_NODE_VERIFIER (tests/node/verify.mjs, after `npm ci` there), the
# gateway's OpenAPI test OCTO_OPENAPI_CHECK (tests/openapi/check.mjs).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

SANITIZE=0
SANITIZE_CI=0
case ${1:-} in
  --sanitize) SANITIZE=1 && shift ;;
  --sanitize-ci) SANITIZE=1 && SANITIZE_CI=1 && shift ;;
esac

PG_TMP=""
CTEST_PID=""

# Stops ctest and everything it started (its own process group).
stop_ctest() {
  stop_process_group "$CTEST_PID" "the tests"
  CTEST_PID=""
}

stop_pg() {
  remove_throwaway_pg "$PG_TMP" 30
  PG_TMP=""
}

on_exit() {
  local rc=$?
  trap - EXIT INT TERM
  stop_ctest
  stop_pg
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Starts a throwaway cluster; sets PG_PORT. Retries on another port when the
# one picked was taken in between.
start_pg() {
  PG_TMP=$(mktemp -d "${TMPDIR:-/tmp}/octo-test-pg.XXXXXX")
  give_to_pg "$PG_TMP"
  as_pg "$PG_BIN/initdb" -D "$PG_TMP/data" -U postgres -A trust -E UTF8 --no-locale --no-sync \
    >"$PG_TMP/initdb.log" 2>&1 || {
    cat "$PG_TMP/initdb.log" >&2
    die "initdb failed"
  }
  # Settings for a throwaway cluster: durability off (it is deleted anyway).
  cat >>"$PG_TMP/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PG_TMP'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF
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

# The npm packages the tests use, each folder pinned by its package-lock.json:
#   tests/node     standardwebhooks (the delivery tests' signature verifier)
#   tests/openapi  @apidevtools/swagger-parser (the gateway's OpenAPI check)
#   tests/browser  playwright-core (drives Debian's chromium; no browser download)
# `npm ci` runs only when node_modules is missing or the lockfile changed since
# the last install (a stamp of its SHA-256 in node_modules). Tests that need a
# package fail, never skip, without the variable that points at it.
npm_ci_pinned() {
  local dir="$OCTO_ROOT/tests/$1"
  local stamp="$dir/node_modules/.octo-package-lock.sha256"
  local want
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [[ ! -d $dir/node_modules || ! -f $stamp || $(<"$stamp") != "$want" ]]; then
    log "npm ci in tests/$1 (pinned by package-lock.json)"
    local t0=$EPOCHREALTIME
    (cd "$dir" && npm ci --no-audit --no-fund) || die "npm ci failed in tests/$1"
    printf '%s\n' "$want" >"$stamp"
    log "npm ci: $(elapsed "$t0") s"
  fi
}

# Every octo-subscription / octo-delivery a test starts serves its metrics on
# a free port unless the test says otherwise: the defaults (9101, 9102) would
# collide between tests running in parallel (docs/observability.md).
export OCTO_SUBSCRIPTION_METRICS_LISTEN=127.0.0.1:0
export OCTO_DELIVERY_METRICS_LISTEN=127.0.0.1:0
export OCTO_GATEWAY_METRICS_LISTEN=127.0.0.1:0

install_deps
npm_ci_pinned node
npm_ci_pinned browser
npm_ci_pinned openapi
export OCTO_NODE_VERIFIER="$OCTO_ROOT/tests/node/verify.mjs"
export OCTO_OPENAPI_CHECK="$OCTO_ROOT/tests/openapi/check.mjs"
export OCTO_BROWSER_TESTS="$OCTO_ROOT/tests/browser"
CTEST_LABEL_ARGS=()
if ((SANITIZE_CI)); then
  # Before the build: it runs the test programs to list their tests.
  export "${OCTO_SANITIZE_ENV[@]}"
  cmake_build "$OCTO_SANITIZE_BUILD_DIR" "ASan+UBSan" "${OCTO_SANITIZE_CMAKE_ARGS[@]}" -- \
    "${OCTO_SANITIZE_CI_PROGRAMS[@]}" "${OCTO_SANITIZE_CI_SERVICES[@]}"
  # After the build: a test of those labels whose executable is then missing
  # belongs to a program not in the list.
  "$OCTO_ROOT/scripts/check_sanitize_ci.py" "$OCTO_SANITIZE_BUILD_DIR" "$OCTO_SANITIZE_CI_LABELS" \
    "${OCTO_SANITIZE_CI_PROGRAMS[@]}"
  TEST_BUILD_DIR=$OCTO_SANITIZE_BUILD_DIR
  CTEST_LABEL_ARGS=(-L "^($OCTO_SANITIZE_CI_LABELS)\$" -LE "^($OCTO_SANITIZE_CI_EXCLUDED_LABELS)\$")
elif ((SANITIZE)); then
  # Before the build: it runs the test programs to list their tests.
  export "${OCTO_SANITIZE_ENV[@]}"
  cmake_build "$OCTO_SANITIZE_BUILD_DIR" "ASan+UBSan" "${OCTO_SANITIZE_CMAKE_ARGS[@]}" --
  TEST_BUILD_DIR=$OCTO_SANITIZE_BUILD_DIR
else
  # shellcheck disable=SC2119  # no targets: build everything
  build_release
  TEST_BUILD_DIR=$OCTO_BUILD_DIR
fi
build_seconds=$OCTO_BUILD_SECONDS
if ((!SANITIZE_CI)); then
  build_fuzz octo_fuzz_targets
  build_seconds=$(awk -v a="$build_seconds" -v b="$OCTO_BUILD_SECONDS" 'BEGIN { printf "%.1f", a + b }')
  export OCTO_FUZZ_BIN_DIR="$OCTO_FUZZ_BUILD_DIR/tests/fuzz"
fi

t0=$EPOCHREALTIME
start_pg
export OCTO_TEST_PG="host=$PG_TMP port=$PG_PORT user=postgres dbname=postgres"
log "throwaway PostgreSQL 15 on 127.0.0.1:$PG_PORT, socket in $PG_TMP (started in $(elapsed "$t0") s)"

log "running the tests"
t0=$EPOCHREALTIME
rc=0
# In the background, in its own process group, so that a signal to this script
# runs the trap at once and the trap can stop the tests' whole group.
set -m
ctest --test-dir "$TEST_BUILD_DIR" --output-on-failure -j2 --timeout 300 "${CTEST_LABEL_ARGS[@]}" "$@" &
CTEST_PID=$!
set +m
wait "$CTEST_PID" || rc=$?
CTEST_PID=""
log "build: ${build_seconds} s; tests: $(elapsed "$t0") s"
if ((rc != 0)); then
  log "TESTS FAILED (ctest exit status $rc)"
else
  log "all tests passed"
fi
exit "$rc"
