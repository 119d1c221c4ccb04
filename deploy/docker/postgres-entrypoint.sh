#!/bin/sh
# Entrypoint of deploy/docker/postgres.Dockerfile: on the first start (an
# empty $PGDATA) initdb with POSTGRES_USER as superuser and POSTGRES_PASSWORD
# (password authentication for every TCP client), then POSTGRES_DB; then
# runs postgres in the foreground, listening on every interface of the
# container. Arguments are passed to postgres (-c name=value).
set -eu
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
case $user$db in
*[!a-z0-9_]*) echo "postgres-entrypoint: POSTGRES_USER and POSTGRES_DB must be [a-z0-9_]" >&2; exit 1 ;;
esac
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "postgres-entrypoint: POSTGRES_PASSWORD is required" >&2
    exit 1
  fi
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" --auth-local=trust \
    --auth-host=scram-sha-256 -E UTF8 --no-locale >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  if [ "$db" != postgres ]; then
    echo "CREATE DATABASE $db" | postgres --single -D "$PGDATA" -j postgres >/dev/null
  fi
  echo "postgres-entrypoint: created the cluster, superuser $user, database $db" >&2
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
