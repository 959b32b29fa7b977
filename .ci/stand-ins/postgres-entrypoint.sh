#!/bin/sh
# Entry point of the postgres:15-bookworm stand-in: as the official image's
# for what the compose file uses. `postgres [ARGS...]` (ARGS such as
# `-c ssl=on`) makes the cluster in PGDATA on first start, with the role
# POSTGRES_USER (default postgres) and password POSTGRES_PASSWORD, the
# database POSTGRES_DB (default the user's name), password authentication
# (scram-sha-256) from every address and trust on the local socket, then
# runs the server in the foreground as the postgres user. Anything else is
# run as given.
set -eu
if [ "${1:-}" != postgres ]; then exec "$@"; fi
if [ "$(id -u)" = 0 ]; then
  install -d -o postgres -g postgres -m 0700 "$PGDATA"
  chown postgres:postgres "$PGDATA"
  chmod 0700 "$PGDATA"
  install -d -o postgres -g postgres -m 2775 /var/run/postgresql
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
shift
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
  user=${POSTGRES_USER:-postgres}
  db=${POSTGRES_DB:-$user}
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb -D "$PGDATA" --username="$user" --pwfile="$pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
  if [ "$db" != postgres ]; then
    echo "CREATE DATABASE \"$db\" OWNER \"$user\"" | postgres --single -D "$PGDATA" postgres >/dev/null
  fi
  echo "stand-in entrypoint: created the cluster in $PGDATA (user $user, database $db)"
fi
exec postgres -D "$PGDATA" "$@"
