# shellcheck shell=bash
# The smoke test of scripts/containers.sh, against the compose project it
# started. Source it after scripts/containers-lib.sh; do not run it.
# Uses PROJECT, NETWORK, RECEIVER, GATEWAY_URL, PROMETHEUS_URL and the image
# names of containers-lib.sh.

# A compose service's container id.
service_container() {
  local id
  id=$(compose ps -q "$1")
  [[ -n $id ]] || die "compose service $1 has no container"
  echo "$id"
}

# octo-admin inside the subscription container (its environment names the
# service, 127.0.0.1:50051 there, and the admin token).
admin() {
  docker exec "$SUBSCRIPTION_CONTAINER" octo-admin "$@"
}

# A field of a JSON document on stdin: json_field NAME.
json_field() {
  python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

# The receiver's verified deliveries (its stdout: one JSON line a request).
receiver_verified() {
  docker logs "$RECEIVER" 2>/dev/null | grep -F '"verified": true'
}

# True when Prometheus reports each octo job up, once.
prometheus_jobs_up() {
  curl -fsS --max-time 5 "$PROMETHEUS_URL/api/v1/query" --data-urlencode 'query=up{job=~"octo-.*"}' |
    python3 -c '
import json, sys
result = json.load(sys.stdin)["data"]["result"]
up = {r["metric"]["job"]: r["value"][1] for r in result}
print(" ".join(f"{job}={up.get(job)}" for job in ("octo-gateway", "octo-subscription", "octo-delivery")))
sys.exit(0 if len(result) == 3 and set(up.values()) == {"1"} else 1)'
}

# Each octo process: not root, read-only root filesystem, no capabilities,
# as Docker reports it and as seen from inside; PostgreSQL and Prometheus
# not root, read-only (the run's override).
check_hardening() {
  local svc c user ro caps uid
  for svc in gateway subscription delivery; do
    c=$(service_container "$svc")
    user=$(docker inspect -f '{{.Config.User}}' "$c")
    ro=$(docker inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$c")
    caps=$(docker inspect -f '{{.HostConfig.CapDrop}}' "$c")
    uid=$(docker exec "$c" id -u)
    [[ $user == 10001:10001 && $uid == 10001 ]] || die "$svc runs as user '$user' (uid $uid), expected 10001"
    [[ $ro == true ]] || die "$svc: the root filesystem is not read-only"
    [[ $caps == "[ALL]" ]] || die "$svc: capabilities dropped: $caps, expected [ALL]"
    if docker exec "$c" sh -c 'echo x > /usr/local/bin/probe' 2>/dev/null; then
      die "$svc: could write to its root filesystem"
    fi
    printf '    %-13s %s; ReadonlyRootfs=%s CapDrop=%s; writing /usr/local/bin refused\n' \
      "$svc" "$(docker exec "$c" id)" "$ro" "$caps" >&2
  done
  for svc in postgres prometheus; do
    c=$(service_container "$svc")
    ro=$(docker inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$c")
    uid=$(docker exec "$c" id -u)
    [[ $ro == true && $uid != 0 ]] || die "$svc: uid $uid, ReadonlyRootfs=$ro; expected non-root, read-only"
    printf '    %-13s %s; ReadonlyRootfs=%s\n' "$svc" "$(docker exec "$c" id)" "$ro" >&2
  done
}

smoke_test() {
  SUBSCRIPTION_CONTAINER=$(service_container subscription)
  log "smoke test: supplier, connection and API key (octo-admin in the subscription container)"
  local supplier connection key
  supplier=$(admin --output=id supplier create --name="Smoke Tours" \
    --endpoint=https://api.smoke-tours.example/octo --email=ops@smoke-tours.example)
  connection=$(admin --output=id connection create --supplier="$supplier" --name="Smoke reseller")
  key=$(admin --output=key key create --connection="$connection" --name=smoke)
  log "    supplier $supplier, connection $connection"

  log "smoke test: a webhook to the receiver container, through the gateway's REST API"
  local created webhook_id secret
  created=$(curl -fsS --max-time 10 -X POST "$GATEWAY_URL/octo/webhooks" \
    -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
    -d '{"url":"http://receiver:8000/hooks/booking","event":"booking_update"}')
  webhook_id=$(json_field id <<<"$created")
  secret=$(json_field secret <<<"$created")
  log "    webhook $webhook_id -> http://receiver:8000/hooks/booking"
  docker run -d --name "$RECEIVER" --network "$NETWORK" --network-alias receiver \
    --read-only --cap-drop ALL --security-opt no-new-privileges:true \
    -e OCTO_WEBHOOK_SECRET="$secret" "$IMAGE_RECEIVER" >/dev/null
  wait_for "the receiver" 30 sh -c "docker logs '$RECEIVER' 2>&1 | grep -q 'receiver listening'"

  log "smoke test: publishing booking_update over gRPC EventService (octo-admin event publish)"
  local booking published t0
  booking=$(cat /proc/sys/kernel/random/uuid)
  t0=$EPOCHREALTIME
  published=$(admin event publish --token_file=/etc/octo/grpc-callers/publisher \
    --supplier="$supplier" --event=booking_update --idempotency-key="smoke-$booking" \
    --resource="{\"uuid\":\"$booking\",\"status\":\"CONFIRMED\"}")
  log "    $(tr -d '\n ' <<<"$published")"
  wait_for "the signed delivery at the receiver" 60 receiver_verified
  log "    delivered and verified in $(elapsed "$t0") s: $(receiver_verified | head -n 1)"
  if docker logs "$RECEIVER" 2>/dev/null | grep -qF '"verified": false'; then
    die "the receiver got a request whose signature did not verify"
  fi

  log "smoke test: Prometheus scrapes the three jobs"
  wait_for "Prometheus to report the three jobs up" 120 prometheus_jobs_up
  log "    $(prometheus_jobs_up)"

  log "smoke test: non-root, read-only root filesystem, no capabilities"
  check_hardening
}
