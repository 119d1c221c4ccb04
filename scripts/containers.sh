#!/usr/bin/env bash
# shellcheck disable=SC2317  # (cleanup functions run from traps)
# Builds the container images and runs deploy/compose.yaml for real, with a
# smoke test through the gateway; then removes what it started. Not part of
# scripts/test.sh: it needs a Docker engine and a while (README, "Containers").
#
#   1. installs what it needs (scripts/install-deps.sh --containers: docker.io,
#      docker-compose, mmdebstrap) and starts dockerd when none runs (stopped
#      again at the end);
#   2. makes a Debian bookworm base image with mmdebstrap (no image registry
#      needed) and builds deploy/docker/: the build image, which compiles the
#      C++ once, the gateway, subscription and delivery images, PostgreSQL 15
#      and Prometheus from Debian's packages, and the test receiver;
#   3. starts compose.yaml (all but Grafana) on a network of its own, ports
#      published on 127.0.0.1 only;
#   4. smoke test: supplier, connection and API key with octo-admin; a webhook
#      created through the gateway's REST API to the receiver container; an
#      event published over gRPC EventService (octo-admin event publish);
#      the signed delivery verified by the receiver; Prometheus scraping the
#      three jobs (up == 1); every octo process non-root on a read-only root
#      filesystem; the images' sizes;
#   5. removes the containers, volumes and network it made (images too with
#      --remove-images).
#
# Usage: scripts/containers.sh [--remove-images] [--fresh] [--jobs N]
#   --remove-images  also remove the images it built (the base image included)
#   --fresh          rebuild every image from scratch (no layer cache)
#   --jobs N         parallel compile jobs in the build image (default 2)
# Environment: OCTO_COMPOSE (the compose command, default `docker compose`
# when it works, else docker-compose).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
source scripts/containers-lib.sh
source scripts/containers-smoke.sh

usage() {
  sed -n '3,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
}

REMOVE_IMAGES=0
FRESH=0
JOBS=2
while (($#)); do
  case $1 in
  --remove-images) REMOVE_IMAGES=1 ;;
  --fresh) FRESH=1 ;;
  --jobs=*) JOBS=${1#*=} ;;
  --jobs)
    (($# >= 2)) || die "--jobs needs a value"
    JOBS=$2
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
[[ $JOBS =~ ^[1-9][0-9]*$ ]] || die "--jobs must be a positive number, got '$JOBS'"
is_root || die "scripts/containers.sh needs root (it installs packages, runs dockerd and mmdebstrap)"

T_START=$EPOCHREALTIME
WORK=$(mktemp -d /tmp/octo-containers.XXXXXX)
PROJECT=octo-webhooks-smoke
NETWORK=octo-webhooks-smoke
RECEIVER=$PROJECT-receiver
DOCKERD_PID=""
COMPOSE_STARTED=0
NETWORK_CREATED=0

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if ((rc != 0 && COMPOSE_STARTED)); then
    log "logs of the failed run (last 30 lines per service):"
    compose logs --no-color --tail=30 >&2 || true
    docker logs --tail=30 "$RECEIVER" >&2 || true
  fi
  docker rm -f "$RECEIVER" >/dev/null 2>&1 || true
  if ((COMPOSE_STARTED)); then
    log "removing the compose project $PROJECT (containers, volumes)"
    compose down --volumes --remove-orphans --timeout 30 >/dev/null 2>&1 || warn "compose down failed"
  fi
  if ((NETWORK_CREATED)); then
    docker network rm "$NETWORK" >/dev/null 2>&1 || warn "could not remove the network $NETWORK"
  fi
  if ((REMOVE_IMAGES)); then
    log "removing the images"
    docker image rm "${ALL_IMAGES[@]}" >/dev/null 2>&1 || true
    remove_superseded_images || true
  fi
  stop_dockerd
  rm -rf "$WORK"
  log "total: $(elapsed "$T_START") s"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------ engine --
scripts/install-deps.sh --containers
pick_compose
start_dockerd_if_needed "$WORK/dockerd.log"

# ------------------------------------------------------------------ images --
if ((FRESH)); then
  docker image rm "${ALL_IMAGES[@]}" >/dev/null 2>&1 || true
fi
make_base_image "$WORK"
build_images "$JOBS"
report_image_sizes

# ----------------------------------------------------------------- compose --
docker network rm "$NETWORK" >/dev/null 2>&1 || true
# No masquerading: the containers reach each other and the host's published
# ports, nothing beyond the machine.
docker network create --driver bridge \
  --opt com.docker.network.bridge.enable_ip_masquerade=false \
  --label org.octo-webhooks.smoke=true "$NETWORK" >/dev/null
NETWORK_CREATED=1
SUBNET=$(docker network inspect -f '{{(index .IPAM.Config 0).Subnet}}' "$NETWORK")
log "network $NETWORK ($SUBNET)"
write_compose_override "$WORK/compose.override.yaml" "$NETWORK" "$SUBNET"

export POSTGRES_PASSWORD
POSTGRES_PASSWORD=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')
export OCTO_POSTGRES_IMAGE=$IMAGE_POSTGRES OCTO_PROMETHEUS_IMAGE=$IMAGE_PROMETHEUS
export OCTO_GATEWAY_HOST_PORT OCTO_PROMETHEUS_HOST_PORT
OCTO_GATEWAY_HOST_PORT=$(pick_free_port)
OCTO_PROMETHEUS_HOST_PORT=$(pick_free_port)
GATEWAY_URL=http://127.0.0.1:$OCTO_GATEWAY_HOST_PORT
PROMETHEUS_URL=http://127.0.0.1:$OCTO_PROMETHEUS_HOST_PORT

log "starting compose.yaml with $COMPOSE_DESCRIPTION (Grafana left out: no Debian package)"
t0=$EPOCHREALTIME
COMPOSE_STARTED=1
compose up -d --no-build postgres grpc-callers delivery subscription gateway prometheus
wait_for "the gateway's /readyz" 120 curl -fsS -o /dev/null --max-time 2 "$GATEWAY_URL/readyz"
log "stack up in $(elapsed "$t0") s: gateway $GATEWAY_URL, Prometheus $PROMETHEUS_URL"

# -------------------------------------------------------------- smoke test --
smoke_test
log "smoke test passed"
