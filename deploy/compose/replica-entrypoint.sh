#!/bin/bash
# A streaming replica of the `postgres` service: on first start, copies the
# primary with pg_basebackup -R (which also writes the standby settings),
# then runs PostgreSQL as a hot standby.
set -euo pipefail
export PGDATA=/var/lib/postgresql/data
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  until pg_isready -h postgres -U jobgraph; do sleep 1; done
  rm -rf "$PGDATA"/*
  gosu postgres pg_basebackup -h postgres -U jobgraph -D "$PGDATA" -R -X stream
  chmod 700 "$PGDATA"
fi
exec gosu postgres postgres -c hot_standby=on
