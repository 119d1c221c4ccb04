#!/usr/bin/env bash
# Installs the Debian 12 (bookworm) packages octo-webhooks needs to build, test
# and run, and only those that are missing: `apt-get update` runs only when
# something is missing. Needs root for that; as another user it checks and
# fails with the list to install.
#
# Usage: scripts/install-deps.sh               (scripts/run.sh and scripts/test.sh call it)
#        scripts/install-deps.sh --containers  (scripts/containers.sh calls it: only what
#                                               building and running the images needs)
set -euo pipefail

MODE=default
case ${1:-} in
"") ;;
--containers) MODE=containers ;;
*)
  echo "install-deps: unknown argument '$1' (usage: $0 [--containers])" >&2
  exit 2
  ;;
esac

PACKAGES=(
  # toolchain
  build-essential cmake pkg-config ccache
  # the libFuzzer targets (tests/fuzz, scripts/fuzz.sh; scripts/test.sh runs
  # each briefly): clang 14 and its runtime libraries (libFuzzer, ASan, UBSan)
  clang-14 libclang-rt-14-dev
  # libraries (docs: /work/shared/TOOLCHAIN.md; versions in README.md)
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libpqxx-dev prometheus-cpp-dev
  libboost1.81-dev libboost-json1.81-dev libcurl4-openssl-dev libssl-dev
  libgtest-dev libgmock-dev
  # the embedded / throwaway PostgreSQL 15 of run.sh and test.sh
  postgresql
  # run.sh waits for the gateway's /healthz with curl; README's examples use it
  curl
  # scripts/check_capabilities.sh (a maintainer's command) runs scripts/gen_capabilities.py;
  # tests/metrics/check_metric_refs.py reads dashboards and rule files
  python3 python3-yaml
  # tests/delivery_e2e/tls_receiver.py makes its CA and certificates with the openssl CLI
  openssl
  # promtool: tests/deploy checks the alert rules and the dashboard's queries,
  # tests/metrics runs `promtool check metrics` and a real Prometheus
  prometheus
  # tests/browser drives Debian's Chromium with npm playwright-core (no browser download)
  chromium
  # docs/receiving/verify.go, the receiver's guide's Go snippet, runs in a
  # test against a real signed delivery (standard library only)
  golang-go
)

# tests/delivery_e2e checks signatures with the public npm package
# `standardwebhooks` (tests/node, `npm ci` in scripts/test.sh): Debian's
# nodejs and npm, unless a node and an npm are already on the PATH (from
# any source).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  PACKAGES+=(nodejs npm)
fi
# tests/deploy renders deploy/kubernetes with `kubectl kustomize`: Debian's
# kubernetes-client (kubectl 1.20), unless a kubectl is already on the PATH
# (from any source; another vendor's package owns the same path).
if ! command -v kubectl >/dev/null 2>&1; then
  PACKAGES+=(kubernetes-client)
fi

# scripts/containers.sh (not part of run.sh or test.sh): a Docker engine,
# compose, mmdebstrap for the base image, curl and python3 for its checks.
# The engine (docker.io) and compose (docker-compose, 1.29) only when none is
# installed (Docker's own packages provide dockerd and `docker compose`).
if [[ $MODE == containers ]]; then
  CONTAINER_PACKAGES=(mmdebstrap curl python3)
  if ! command -v dockerd >/dev/null 2>&1; then
    CONTAINER_PACKAGES+=(docker.io)
  fi
  if ! command -v docker-compose >/dev/null 2>&1 &&
    ! { command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; }; then
    CONTAINER_PACKAGES+=(docker-compose)
  fi
  PACKAGES=("${CONTAINER_PACKAGES[@]}")
fi

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "install-deps: not a Debian system (no dpkg-query); install the equivalents of:" >&2
  echo "  ${PACKAGES[*]}" >&2
  echo "install-deps: continuing; the build fails if something is missing." >&2
  exit 0
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  if [[ $status != installed ]]; then missing+=("$pkg"); fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#PACKAGES[@]} packages present" >&2
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: error: these packages are missing and installing them needs root:" >&2
  echo "  ${missing[*]}" >&2
  echo "Run as root:  sudo $0   (or: sudo apt-get install --no-install-recommends ${missing[*]})" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# Packages must not start their daemons: the prometheus package would start
# a server listening on every interface (we only ever start our own, on
# loopback), and the postgresql one a cluster nothing here uses. A
# policy-rc.d answering 101 ("action forbidden") tells invoke-rc.d and
# deb-systemd-invoke so for the duration of the install.
policy_rc=/usr/sbin/policy-rc.d
if [[ ! -e $policy_rc ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy_rc"
  chmod 755 "$policy_rc"
  trap 'rm -f "$policy_rc"' EXIT
fi
apt-get install -y -q --no-install-recommends "${missing[@]}"

# Where systemd runs, the packaged Prometheus is still enabled for the next
# boot: disable it.
if [[ " ${missing[*]} " == *" prometheus "* && -d /run/systemd/system ]]; then
  systemctl disable --now prometheus.service >/dev/null 2>&1 || true
fi
