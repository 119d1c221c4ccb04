#!/usr/bin/env bash
# A maintainer's command (not part of scripts/test.sh): checks that the
# committed capability table, services/delivery/payload/capability_fields.json,
# is exactly what scripts/gen_capabilities.py derives from its two upstream
# sources, and with --write regenerates it:
#   - OCTO's TypeScript types, npm @octocloud/types (pinned below), the
#     authority for the octo/* capabilities they describe;
#   - Ventrata's OCTO OpenAPI document, for its vendor capabilities and the
#     octo/* ones the types do not describe.
#
# Usage: scripts/check_capabilities.sh [--write] <ventrata-octo-openapi.yaml>
# Needs python3 with PyYAML (python3-yaml) and npm (reaches the npm registry).
set -euo pipefail
OCTO_TYPES_VERSION=1.5.44   # the last release with one interface per capability

write=false
if [[ "${1:-}" == "--write" ]]; then write=true; shift; fi
if [[ $# -ne 1 || ! -f "$1" ]]; then
  echo "usage: $0 [--write] <ventrata-octo-openapi.yaml>" >&2
  exit 2
fi
ventrata=$(realpath "$1")
root=$(cd "$(dirname "$0")/.." && pwd)
committed="$root/services/delivery/payload/capability_fields.json"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "@octocloud/types@$OCTO_TYPES_VERSION" >/dev/null && tar xzf ./*.tgz)
python3 "$root/scripts/gen_capabilities.py" --octo-types="$work/package/src/types" "$ventrata" \
  > "$work/capability_fields.json"
if $write; then
  cp "$work/capability_fields.json" "$committed"
  echo "wrote $committed"
elif diff -u "$committed" "$work/capability_fields.json" > "$work/diff"; then
  echo "capability_fields.json matches @octocloud/types@$OCTO_TYPES_VERSION and $ventrata"
else
  head -100 "$work/diff"
  echo "capability_fields.json is out of date: run $0 --write $1" >&2
  exit 1
fi
