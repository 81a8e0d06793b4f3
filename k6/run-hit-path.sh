#!/usr/bin/env bash
# Cache hit path vs a bare axum handler, measured with wrk.
#
# How fast can jobgraph answer a cached request, compared with the cheapest
# possible axum handler on the same machine? Both servers run pinned to CPU 0
# and wrk runs pinned to CPU 1, so the server and the load generator do not
# fight for the same core. Start the servers yourself, pinned, BEFORE running
# this script (from the repository root):
#
#   # build first, so the compile is not pinned to one core
#   cargo build --release --bin jobgraph --example bare_axum
#
#   # jobgraph (embedded SQLite + in-process cache), seeded in /tmp/k6work:
#   cd /tmp/k6work && taskset -c 0 env BIND_ADDR=127.0.0.1:8000 \
#       /path/to/repo/target/release/jobgraph serve
#
#   # or with Redis as the cache (Redis pinned to the same CPU as jobgraph):
#   taskset -c 0 redis-server --port 6380 --save '' --appendonly no
#   cd /tmp/k6work && taskset -c 0 env BIND_ADDR=127.0.0.1:8000 \
#       REDIS_URL=redis://127.0.0.1:6380 CACHE_KEY_PREFIX=hitpath \
#       /path/to/repo/target/release/jobgraph serve
#
#   # the baseline: a bare axum handler returning a fixed 1 KB JSON body
#   taskset -c 0 /path/to/repo/target/release/examples/bare_axum 127.0.0.1:8002
#   #   (same as: taskset -c 0 cargo run --release --example bare_axum -- 127.0.0.1:8002)
#
# Then:
#
#   TOKENS_FILE=/tmp/k6work/tokens.json HIT_URL=http://127.0.0.1:8000 \
#   BARE_URL=http://127.0.0.1:8002 k6/run-hit-path.sh
#
# which runs, for each server:
#
#   taskset -c 1 wrk -t2 -c64 -d${DURATION:-15}s --latency -s k6/hit_path.lua http://127.0.0.1:8000/graphql
#   taskset -c 1 wrk -t2 -c64 -d${DURATION:-15}s --latency -s k6/bare.lua     http://127.0.0.1:8002/
#
# Env: HIT_URL (http://127.0.0.1:8000), BARE_URL (http://127.0.0.1:8002),
# TOKEN (bearer token; default: the first token in TOKENS_FILE), DURATION
# (seconds, 15), THREADS (2), CONNS (64), WRK_CPU (1), SERVER_CPU (0, only
# checked), OUT_DIR (where the raw wrk outputs go; a temp folder by default).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
HIT_URL="${HIT_URL:-http://127.0.0.1:8000}"
BARE_URL="${BARE_URL:-http://127.0.0.1:8002}"
DURATION="${DURATION:-15}"
DURATION="${DURATION%s}"
THREADS="${THREADS:-2}"
CONNS="${CONNS:-64}"
WRK_CPU="${WRK_CPU:-1}"
SERVER_CPU="${SERVER_CPU:-0}"
OUT_DIR="${OUT_DIR:-$(mktemp -d /tmp/hit-path.XXXXXX)}"
mkdir -p "$OUT_DIR"

die() { echo "run-hit-path: $*" >&2; exit 1; }
for tool in wrk taskset curl awk; do
  command -v "$tool" >/dev/null || die "$tool is not installed (apt-get install -y wrk util-linux curl)"
done

if [[ -z "${TOKEN:-}" ]]; then
  [[ -n "${TOKENS_FILE:-}" ]] || die "set TOKEN, or TOKENS_FILE to the tokens.json written by 'jobgraph seed --tokens-file'"
  [[ -r "$TOKENS_FILE" ]] || die "cannot read $TOKENS_FILE"
  TOKEN="$(grep -o '"token"[[:space:]]*:[[:space:]]*"[^"]*"' "$TOKENS_FILE" | head -n1 | sed 's/.*"\([^"]*\)"$/\1/')"
  [[ -n "$TOKEN" ]] || die "no token found in $TOKENS_FILE"
fi
export TOKEN

hit_base="${HIT_URL%/}"
hit_base="${hit_base%/graphql}"
hit_url="$hit_base/graphql"
bare_url="$BARE_URL"
[[ "$bare_url" == */ || "$bare_url" =~ ^https?://[^/]+/ ]] || bare_url="$bare_url/"
body='{"query":"{ jobs(first: 20) { nodes { id title company status team { name } createdBy { name } } } }"}'

# Warn when a server is not pinned the documented way.
check_pinning() {
  local url="$1" name="$2" port pid aff
  port="$(sed -E 's#^[a-z]+://[^:/]+:([0-9]+).*#\1#' <<<"$url")"
  [[ "$port" =~ ^[0-9]+$ ]] || return 0
  command -v ss >/dev/null || return 0
  pid="$(ss -ltnpH "sport = :$port" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2 || true)"
  [[ -n "$pid" ]] || { echo "note: cannot see the process on port $port ($name); is it pinned with taskset -c $SERVER_CPU?"; return 0; }
  aff="$(taskset -cp "$pid" 2>/dev/null | awk -F': ' '{print $2}')"
  if [[ "$aff" != "$SERVER_CPU" ]]; then
    echo "WARNING: $name (pid $pid, port $port) may run on CPUs '$aff', not only CPU $SERVER_CPU: start it with taskset -c $SERVER_CPU"
  else
    echo "$name: pid $pid pinned to CPU $aff"
  fi
}

hits_total() {
  curl -fsS "$hit_base/metrics" 2>/dev/null | awk '/^jobgraph_cache_hits_total\{kind="jobs_list"\}/ {print $2; f=1} END {if (!f) print "NA"}'
}

# Warm the cached entry and prove the next request is a hit.
warm() {
  local headers="$OUT_DIR/warm.headers" out="$OUT_DIR/warm.body" code i
  for i in 1 2; do
    code="$(curl -sS -o "$out" -D "$headers" -w '%{http_code}' -X POST "$hit_url" \
      -H 'Content-Type: application/json' -H "Authorization: Bearer $TOKEN" --data "$body")" \
      || die "cannot reach $hit_url"
    [[ "$code" == 200 ]] || die "warm-up request got HTTP $code: $(head -c 300 "$out")"
    grep -q '"errors"' "$out" && die "warm-up request returned errors: $(head -c 300 "$out")"
  done
  local xc
  xc="$(grep -i '^x-cache:' "$headers" | tr -d '\r' | awk '{print toupper($2)}')"
  echo "warm-up: second request X-Cache: ${xc:-none}, $(wc -c <"$out") bytes"
  [[ "$xc" == HIT ]] || echo "WARNING: the warmed request is not a cache hit (X-Cache: ${xc:-none}); is the cache enabled?"
}

# wrk output -> "rps p50_ms p99_ms requests non2xx socket_errors"
parse_wrk() {
  awk '
    function ms(v,   n) {
      n = v + 0
      if (v ~ /us$/) return n / 1000
      if (v ~ /ms$/) return n
      if (v ~ /m$/)  return n * 60000
      if (v ~ /s$/)  return n * 1000
      return n
    }
    /Latency Distribution/ { dist = 1; next }
    dist && $1 == "50%" { p50 = ms($2) }
    dist && $1 == "99%" { p99 = ms($2) }
    / requests in / { reqs = $1 }
    /^Requests\/sec:/ { rps = $2 }
    /Non-2xx or 3xx responses:/ { non2xx = $NF }
    /Socket errors:/ { gsub(",", ""); sock = $4 + $6 + $8 + $10 }
    END { printf "%s %s %s %s %d %d\n", rps, p50, p99, reqs, non2xx, sock }
  ' "$1"
}

run_wrk() {
  local script="$1" url="$2" out="$3"
  echo "+ taskset -c $WRK_CPU wrk -t$THREADS -c$CONNS -d${DURATION}s --latency -s $script $url"
  taskset -c "$WRK_CPU" wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -s "$script" "$url" >"$out" 2>&1 \
    || { cat "$out" >&2; die "wrk failed against $url"; }
}

curl -fsS -o /dev/null "$bare_url" || die "the baseline server does not answer GET $bare_url"
check_pinning "$hit_base" jobgraph
check_pinning "$bare_url" bare_axum
warm

before="$(hits_total)"
run_wrk "$here/hit_path.lua" "$hit_url" "$OUT_DIR/hit.txt"
after="$(hits_total)"
sleep 1
run_wrk "$here/bare.lua" "$bare_url" "$OUT_DIR/bare.txt"

read -r h_rps h_p50 h_p99 h_n h_bad h_sock < <(parse_wrk "$OUT_DIR/hit.txt")
read -r b_rps b_p50 b_p99 b_n b_bad b_sock < <(parse_wrk "$OUT_DIR/bare.txt")

echo
echo "hit path vs bare axum: wrk -t$THREADS -c$CONNS -d${DURATION}s on CPU $WRK_CPU (raw output in $OUT_DIR)"
printf '%-10s %12s %10s %10s %10s %8s %8s\n' server 'req/s' 'p50 ms' 'p99 ms' requests non-2xx 'sock err'
printf '%-10s %12.1f %10.3f %10.3f %10s %8d %8d\n' hit "$h_rps" "$h_p50" "$h_p99" "$h_n" "$h_bad" "$h_sock"
printf '%-10s %12.1f %10.3f %10.3f %10s %8d %8d\n' bare "$b_rps" "$b_p50" "$b_p99" "$b_n" "$b_bad" "$b_sock"
awk -v hr="$h_rps" -v br="$b_rps" -v h5="$h_p50" -v b5="$b_p50" -v h9="$h_p99" -v b9="$b_p99" 'BEGIN {
  printf "ratio hit/bare: req/s %.3f, p50 %.2fx, p99 %.2fx\n", (br > 0 ? hr / br : 0), (b5 > 0 ? h5 / b5 : 0), (b9 > 0 ? h9 / b9 : 0)
}'
if [[ "$before" != NA && "$after" != NA ]]; then
  awk -v a="$after" -v b="$before" -v n="$h_n" 'BEGIN {
    d = a - b; printf "jobs_list cache hits counted by jobgraph during the hit run: %d (wrk completed %d requests; should be about equal)\n", d, n
  }'
fi
if (( h_bad > 0 || b_bad > 0 )); then
  echo "WARNING: non-2xx responses (hit: $h_bad, bare: $b_bad); the numbers are not valid"
  exit 1
fi
