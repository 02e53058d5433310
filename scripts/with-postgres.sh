#!/usr/bin/env bash
# Runs a command beside a throwaway PostgreSQL server: initdb and pg_ctl on a
# temporary folder and a free port, TRANCHE_TEST_POSTGRES set to its URL, the
# server stopped and the folder removed afterwards, whatever the outcome.
# The role services' tests run on it as well as on SQLite.
#
# Needs the PostgreSQL server programs (initdb, pg_ctl). On Debian or Ubuntu:
#   sudo apt-get install -y postgresql
# Usage: scripts/with-postgres.sh cargo test --workspace
set -euo pipefail

bin=""
for dir in "$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent)")" /usr/lib/postgresql/*/bin; do
  if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then bin=$dir; fi
done
if [ -z "$bin" ]; then
  echo "with-postgres: PostgreSQL's server programs (initdb, pg_ctl) are not installed." >&2
  echo "  Debian/Ubuntu: sudo apt-get install -y postgresql" >&2
  echo "  macOS:         brew install postgresql" >&2
  exit 1
fi

root=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# PostgreSQL refuses to run as root: as root, run it as the postgres user.
as=()
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  chown postgres "$root"
  as=(runuser -u postgres --)
fi
stop() {
  "${as[@]}" "$bin/pg_ctl" -D "$root/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$root"
}
trap stop EXIT
"${as[@]}" "$bin/initdb" -D "$root/data" -U postgres --auth=trust --no-sync >"$root/initdb.log" 2>&1 \
  || { cat "$root/initdb.log" >&2; exit 1; }
"${as[@]}" "$bin/pg_ctl" -D "$root/data" -l "$root/server.log" -w \
  -o "-p $port -k $root -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null \
  || { cat "$root/server.log" >&2; exit 1; }
export TRANCHE_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port"
echo "with-postgres: a throwaway server at $TRANCHE_TEST_POSTGRES"
"$@"
