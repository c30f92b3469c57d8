#!/usr/bin/env bash
# Run a command with a throwaway PostgreSQL 15 on 127.0.0.1:${DEPUTY_TEST_PG_PORT:-55432}.
# Reuses a server already listening there; otherwise starts one in a temp dir and stops it after.
set -euo pipefail
port="${DEPUTY_TEST_PG_PORT:-55432}"
bin="${DEPUTY_PG_BIN:-/usr/lib/postgresql/15/bin}"
export DEPUTY_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:${port}/postgres"

ready() { "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" 2>/dev/null; }

started=""
if ! ready; then
  if [ ! -x "$bin/initdb" ]; then
    echo "PostgreSQL 15 is needed for the PostgreSQL half of the tests: apt-get install postgresql-15" >&2
    exit 1
  fi
  dir="$(mktemp -d /tmp/deputy-pg.XXXXXX)"
  runas=()
  if [ "$(id -u)" = 0 ]; then
    chown postgres "$dir"
    runas=(runuser -u postgres --)
  fi
  "${runas[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust >/dev/null
  "${runas[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -o \
    "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir -c max_connections=300 -c fsync=off" start >/dev/null
  started="$dir"
  trap '"${runas[@]}" "$bin/pg_ctl" -D "$started/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$started"' EXIT
fi
for _ in $(seq 1 50); do ready && break; sleep 0.2; done
ready || { echo "PostgreSQL did not start on port $port" >&2; exit 1; }
"$@"
