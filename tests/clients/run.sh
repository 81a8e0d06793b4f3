#!/usr/bin/env bash
# jobgraph from its clients' side: starts the real binary on a spare
# loopback port (in a fresh folder: the embedded default, or the
# PostgreSQL and Redis of DATABASE_URL and REDIS_URL), then runs against it the GraphQL-over-HTTP audit (audit.mjs),
# Apollo Client, graphql-ws, graphql-sse and introspection (apollo.mjs),
# and GraphiQL in headless Chromium (graphiql.mjs, needs /usr/bin/chromium).
# The Rust suite runs it (tests/api/clients.rs); it runs alone too.
#
#   JOBGRAPH_BIN=target/debug/jobgraph tests/clients/run.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${JOBGRAPH_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/jobgraph}"
[ -x "$bin" ] || { echo "no jobgraph binary at $bin (cargo build first)" >&2; exit 1; }

cd "$here"
# The lockfile pins every package; install only when it changed.
if [ ! -f node_modules/.package-lock.json ] || ! cmp -s package-lock.json node_modules/.lock-copy 2>/dev/null; then
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.lock-copy
fi

work="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
(
  cd "$work"
  # DATABASE_URL and REDIS_URL pass through (the suite's second pass runs
  # these against PostgreSQL and Redis), under a key prefix of its own.
  exec env BIND_ADDR="127.0.0.1:$port" CACHE_KEY_PREFIX="clients$port" AUTO_MIGRATE=true \
    JWT_SECRET="$(head -c 48 /dev/urandom | base64)" \
    "$bin" serve >"$work/server.log" 2>&1
) &
server=$!
cleanup() { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "http://127.0.0.1:$port/health" >/dev/null || { cat "$work/server.log"; exit 1; }

export JOBGRAPH_URL="http://127.0.0.1:$port/graphql"
export SCHEMA_FILE="$root/schema.graphql"
status=0
for test in audit.mjs apollo.mjs graphiql.mjs; do
  echo "--- $test"
  node "$test" "$JOBGRAPH_URL" || { status=1; echo "FAILED: $test"; }
done
[ "$status" -eq 0 ] || tail -50 "$work/server.log"
exit "$status"
