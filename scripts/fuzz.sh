#!/usr/bin/env bash
# Runs the libFuzzer targets of tests/fuzz (README.md, "Fuzzing").
#
# Usage: scripts/fuzz.sh TARGET SECONDS [LIBFUZZER ARGS...]   one target
#        scripts/fuzz.sh --all SECONDS [LIBFUZZER ARGS...]    each target in turn
#        scripts/fuzz.sh --build                              only build them
#        scripts/fuzz.sh --list                               the target names
#
# Builds the targets with clang 14 (ASan + UBSan + libFuzzer) into
# build-fuzz/ (ccache keeps rebuilds cheap), then fuzzes from the committed
# seeds (tests/fuzz/corpus/TARGET/, read only) and a working corpus kept
# between runs in build-fuzz/corpus/TARGET/, where new inputs go. A crash,
# sanitizer report, leak or slow input is written to
# build-fuzz/artifacts/TARGET/ and the run fails: make it a unit test with
# the fix, and add the input to the seeds. To grow the seeds by hand:
#   build-fuzz/tests/fuzz/TARGET -merge=1 tests/fuzz/corpus/TARGET build-fuzz/corpus/TARGET
# Ends with a line per target: executions, coverage (cov) and features (ft).
# The machine is shared: run long sessions under `nice -n 19`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

usage() {
  sed -n '3,7p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

all_targets() {
  local f
  for f in "$OCTO_ROOT"/tests/fuzz/fuzz_*.cc; do basename "$f" .cc; done
}

(($# >= 1)) || usage
case $1 in
  --list)
    all_targets
    exit 0
    ;;
  --build)
    build_fuzz octo_fuzz_targets
    exit 0
    ;;
  --all)
    (($# >= 2)) || usage
    mapfile -t targets < <(all_targets)
    ;;
  -*) usage ;;
  *)
    (($# >= 2)) || usage
    [[ -f $OCTO_ROOT/tests/fuzz/$1.cc ]] || die "no fuzz target $1 (scripts/fuzz.sh --list)"
    targets=("$1")
    ;;
esac
seconds=$2
shift 2
if [[ ! $seconds =~ ^[0-9]+$ ]] || ((seconds == 0)); then
  die "SECONDS must be a positive integer: $seconds"
fi

build_fuzz "${targets[@]}"

# One target: fuzz, then print "TARGET: N executions, cov C, ft F".
fuzz_one() {
  local target=$1
  shift
  local corpus="$OCTO_FUZZ_BUILD_DIR/corpus/$target"
  local artifacts="$OCTO_FUZZ_BUILD_DIR/artifacts/$target"
  local logfile="$OCTO_FUZZ_BUILD_DIR/logs/$target.log"
  mkdir -p "$corpus" "$artifacts" "$(dirname "$logfile")"
  log "fuzzing $target for $seconds s (log: ${logfile#"$OCTO_ROOT"/})"
  local rc=0
  "$OCTO_FUZZ_BUILD_DIR/tests/fuzz/$target" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/" "$@" \
    "$corpus" "$OCTO_ROOT/tests/fuzz/corpus/$target" >"$logfile" 2>&1 || rc=$?
  local execs cov ft
  execs=$(awk '/^stat::number_of_executed_units:/ { print $2 }' "$logfile" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$logfile" | tail -n 1 | cut -d' ' -f2)
  ft=$(grep -o 'ft: [0-9]*' "$logfile" | tail -n 1 | cut -d' ' -f2)
  SUMMARY+=("$target: ${execs:-?} executions, cov ${cov:-?}, ft ${ft:-?}, corpus $(find "$corpus" -type f | wc -l) files")
  if ((rc != 0)); then
    tail -n 60 "$logfile" >&2
    SUMMARY[-1]+=" -- FAILED (exit $rc; inputs in ${artifacts#"$OCTO_ROOT"/}/)"
    return 1
  fi
}

SUMMARY=()
failed=0
for target in "${targets[@]}"; do
  fuzz_one "$target" "$@" || failed=1
done
printf '%s\n' "${SUMMARY[@]}"
exit "$failed"
