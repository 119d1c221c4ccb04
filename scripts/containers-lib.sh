# shellcheck shell=bash disable=SC2034
# The parts of scripts/containers.sh: the engine, the images, compose. Source
# it after scripts/lib.sh; do not run it. The smoke test is in
# scripts/containers-smoke.sh.

IMAGE_BASE=octo-webhooks/base:bookworm
IMAGE_BUILD=octo-webhooks/build:dev
# The tags deploy/compose.yaml names.
IMAGE_GATEWAY=octo-webhooks/gateway:dev
IMAGE_SUBSCRIPTION=octo-webhooks/subscription:dev
IMAGE_DELIVERY=octo-webhooks/delivery:dev
IMAGE_POSTGRES=octo-webhooks/postgres:15
IMAGE_PROMETHEUS=octo-webhooks/prometheus:bookworm
IMAGE_RECEIVER=octo-webhooks/smoke-receiver:dev
# Every image the run makes carries this label, so that the ones a rebuild
# superseded (left untagged) can be removed without touching anyone else's.
IMAGE_LABEL=org.octo-webhooks.image=true
# Children before parents (the build image before the base it comes from).
ALL_IMAGES=("$IMAGE_RECEIVER" "$IMAGE_PROMETHEUS" "$IMAGE_POSTGRES" "$IMAGE_GATEWAY"
  "$IMAGE_SUBSCRIPTION" "$IMAGE_DELIVERY" "$IMAGE_BUILD" "$IMAGE_BASE")

# Polls a command (quietly) until it succeeds, for at most $2 seconds.
#   wait_for WHAT SECONDS COMMAND...
wait_for() {
  local what=$1 seconds=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out after ${seconds} s waiting for $what"
    sleep 1
  done
}

# ------------------------------------------------------------------ engine --

# Chooses the compose command: $OCTO_COMPOSE, else `docker compose` (v2)
# when it works, else Debian's docker-compose (1.29).
pick_compose() {
  if [[ -n ${OCTO_COMPOSE:-} ]]; then
    read -r -a COMPOSE_CMD <<<"$OCTO_COMPOSE"
  elif docker compose version >/dev/null 2>&1; then
    COMPOSE_CMD=(docker compose)
  elif command -v docker-compose >/dev/null 2>&1; then
    COMPOSE_CMD=(docker-compose)
  else
    die "neither 'docker compose' nor docker-compose works (scripts/install-deps.sh --containers)"
  fi
  COMPOSE_DESCRIPTION="${COMPOSE_CMD[*]} ($("${COMPOSE_CMD[@]}" version --short 2>/dev/null || echo '?'))"
}

# compose ARGS...: the project's compose command with compose.yaml and the
# run's override file.
compose() {
  "${COMPOSE_CMD[@]}" -p "$PROJECT" -f "$OCTO_ROOT/deploy/compose.yaml" \
    -f "$WORK/compose.override.yaml" "$@"
}

# Starts dockerd in the background when no engine answers; stop_dockerd
# stops it again (and only then). Published ports default to 127.0.0.1
# (--ip) and there is no default bridge (--bridge=none): the containers here
# use the network the run creates.
start_dockerd_if_needed() {
  local logfile=$1
  if docker info >/dev/null 2>&1; then
    log "using the Docker engine already running"
    return 0
  fi
  command -v dockerd >/dev/null || die "dockerd is missing (scripts/install-deps.sh --containers)"
  log "starting dockerd (log: $logfile)"
  set -m
  dockerd --ip=127.0.0.1 --bridge=none >"$logfile" 2>&1 &
  DOCKERD_PID=$!
  set +m
  local i
  for ((i = 0; i < 60; i++)); do
    docker info >/dev/null 2>&1 && return 0
    kill -0 "$DOCKERD_PID" 2>/dev/null || break
    sleep 1
  done
  tail -n 20 "$logfile" >&2 || true
  die "dockerd did not start"
}

stop_dockerd() {
  [[ -n $DOCKERD_PID ]] || return 0
  log "stopping the dockerd this run started"
  kill -TERM "$DOCKERD_PID" 2>/dev/null || true
  local i
  for ((i = 0; i < 300; i++)); do
    kill -0 "$DOCKERD_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$DOCKERD_PID" 2>/dev/null; then
    warn "dockerd did not stop within 30 s; killing it"
    kill -KILL -- "-$DOCKERD_PID" 2>/dev/null || true
  fi
  wait "$DOCKERD_PID" 2>/dev/null || true
  DOCKERD_PID=""
}

# ------------------------------------------------------------------ images --

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# The base of every image: Debian bookworm, minbase, merged /usr, without
# documentation, man pages and translations (as debian:bookworm-slim), made
# with mmdebstrap from Debian's mirror and imported. Kept between runs.
make_base_image() {
  local dir=$1
  if image_exists "$IMAGE_BASE"; then
    log "base image $IMAGE_BASE: already there"
    return 0
  fi
  command -v mmdebstrap >/dev/null || die "mmdebstrap is missing (scripts/install-deps.sh --containers)"
  log "making the base image $IMAGE_BASE with mmdebstrap"
  local t0=$EPOCHREALTIME
  mmdebstrap --quiet --variant=minbase --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    bookworm "$dir/base.tar" >"$dir/mmdebstrap.log" 2>&1 || {
    tail -n 20 "$dir/mmdebstrap.log" >&2
    die "mmdebstrap failed"
  }
  docker import --change 'CMD ["bash"]' --change "LABEL $IMAGE_LABEL" "$dir/base.tar" "$IMAGE_BASE" >/dev/null
  rm -f "$dir/base.tar"
  log "base image: $(elapsed "$t0") s"
}

# build_image TAG DOCKERFILE [BUILD ARGS...]: the classic builder
# (DOCKER_BUILDKIT=0: BuildKit would fetch its Dockerfile frontend from a
# registry), apt-get inside on the host's network.
build_image() {
  local tag=$1 dockerfile=$2
  shift 2
  local t0=$EPOCHREALTIME logfile
  logfile="$WORK/build-$(basename "$dockerfile" .Dockerfile).log"
  local extra=()
  if ((FRESH)); then extra+=(--no-cache); fi
  log "building $tag ($dockerfile)"
  DOCKER_BUILDKIT=0 docker build --network host "${extra[@]}" -f "$dockerfile" --label "$IMAGE_LABEL" \
    --build-arg "BASE_IMAGE=$IMAGE_BASE" "$@" -t "$tag" "$OCTO_ROOT" >"$logfile" 2>&1 || {
    tail -n 40 "$logfile" >&2
    die "building $tag failed; log above"
  }
  log "built $tag in $(elapsed "$t0") s"
}

# The C++ is compiled once, in the build image; the runtime images copy
# their binaries from it.
build_images() {
  local jobs=$1
  build_image "$IMAGE_BUILD" deploy/docker/build.Dockerfile --build-arg "JOBS=$jobs"
  build_image "$IMAGE_GATEWAY" deploy/docker/gateway.Dockerfile --build-arg "BUILD_IMAGE=$IMAGE_BUILD"
  build_image "$IMAGE_SUBSCRIPTION" deploy/docker/subscription.Dockerfile --build-arg "BUILD_IMAGE=$IMAGE_BUILD"
  build_image "$IMAGE_DELIVERY" deploy/docker/delivery.Dockerfile --build-arg "BUILD_IMAGE=$IMAGE_BUILD"
  build_image "$IMAGE_POSTGRES" deploy/docker/postgres.Dockerfile
  build_image "$IMAGE_PROMETHEUS" deploy/docker/prometheus.Dockerfile
  build_image "$IMAGE_RECEIVER" tests/containers/receiver.Dockerfile
  remove_superseded_images
}

# The images of earlier runs that this one's rebuilt (untagged now), and
# with --remove-images those it untagged at the end.
remove_superseded_images() {
  docker image prune --force --filter "label=$IMAGE_LABEL" >/dev/null
}

report_image_sizes() {
  local image size
  log "image sizes (uncompressed):"
  for image in "$IMAGE_GATEWAY" "$IMAGE_SUBSCRIPTION" "$IMAGE_DELIVERY" "$IMAGE_POSTGRES" \
    "$IMAGE_PROMETHEUS" "$IMAGE_RECEIVER" "$IMAGE_BUILD" "$IMAGE_BASE"; do
    size=$(docker image inspect -f '{{.Size}}' "$image")
    printf '    %-36s %6d MB\n' "$image" $((size / 1000000)) >&2
  done
}

# ----------------------------------------------------------------- compose --

# The run's additions to compose.yaml: its own network (made beforehand);
# the SSRF guard's allow-list opened to that network only, so that the
# delivery may reach the receiver container; the Debian-built PostgreSQL
# and Prometheus on a read-only root filesystem too (compose.yaml cannot
# assume it of the official images).
write_compose_override() {
  local file=$1 network=$2 subnet=$3
  cat >"$file" <<EOF
# Written by scripts/containers.sh for one run.
services:
  postgres:
    read_only: true
    tmpfs: ["/run/postgresql:uid=999,gid=999,mode=0700", "/tmp"]
  prometheus:
    read_only: true
  delivery:
    environment:
      OCTO_DELIVERY_ALLOW_DESTINATION_CIDRS: "$subnet"
  subscription:
    environment:
      OCTO_DELIVERY_ALLOW_DESTINATION_CIDRS: "$subnet"
networks:
  default:
    external: true
    name: $network
EOF
}
