#!/usr/bin/env bash
# The fuzz ctests (label fuzz): runs one libFuzzer target for a few seconds,
# starting from its committed corpus, and fails on any crash, sanitizer
# report, leak or timeout libFuzzer finds.
#
# Usage: run_corpus.sh TARGET SECONDS CORPUS_DIR
# The executable is $OCTO_FUZZ_BIN_DIR/TARGET (scripts/test.sh builds
# build-fuzz/ with clang and sets it); without it the test fails.
# New inputs go to a temporary directory, never into the committed corpus;
# a crashing input is kept and its path printed.
set -euo pipefail

target=$1 seconds=$2 corpus=$3

if [[ -z ${OCTO_FUZZ_BIN_DIR:-} ]]; then
  echo "error: OCTO_FUZZ_BIN_DIR is not set (scripts/test.sh sets it after building build-fuzz/)" >&2
  exit 1
fi
binary="$OCTO_FUZZ_BIN_DIR/$target"
if [[ ! -x $binary ]]; then
  echo "error: $binary is missing: build it with scripts/fuzz.sh --build" >&2
  exit 1
fi
if [[ ! -d $corpus ]] || [[ -z $(ls -A "$corpus") ]]; then
  echo "error: the seed corpus $corpus is missing or empty" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/octo-fuzz-$target.XXXXXX")
mkdir "$work/new" "$work/artifacts"
rc=0
"$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$work/artifacts/" "$work/new" "$corpus" || rc=$?
if ((rc != 0)); then
  echo "FAILED: $target exited with status $rc; the input that broke it:" >&2
  ls -l "$work/artifacts" >&2
  echo "(kept in $work/artifacts; reproduce with: $binary <file>)" >&2
  exit "$rc"
fi
rm -rf "$work"
