#!/usr/bin/env bash
# 1,000 VUs on the realistic mix (k6/mix.js) for 60 s against a running
# jobgraph, then the server's peak resident memory (VmHWM).
#
#   JG_PID=$(pgrep -f 'jobgraph serve') TOKENS_FILE=/tmp/k6pg/tokens.json \
#   BASE_URL=http://127.0.0.1:8000 k6/run-1000-vus.sh
#
# Env: VUS (1000), DURATION (60s), SLEEP (1: one second of think time per
# iteration, as people using a frontend), and mix.js's own variables.
set -euo pipefail
: "${JG_PID:?set JG_PID to the pid of the jobgraph server}"
: "${TOKENS_FILE:?set TOKENS_FILE to the tokens.json of jobgraph seed}"
export BASE_URL="${BASE_URL:-http://127.0.0.1:8000}"
export VUS="${VUS:-1000}" DURATION="${DURATION:-60s}" SLEEP="${SLEEP:-1}"
# A connection per VU, on each side of loopback.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
here="$(cd "$(dirname "$0")" && pwd)"
rss_before=$(awk '/VmRSS/ {print $2}' "/proc/$JG_PID/status")
status=0
k6 run -q "$here/mix.js" || status=$?
awk -v before="$rss_before" '
  /VmHWM/ { peak = $2 } /VmRSS/ { now = $2 }
  END { printf "jobgraph memory: %.1f MB before, %.1f MB at the end, %.1f MB peak (VmHWM)\n", before / 1024, now / 1024, peak / 1024 }
' "/proc/$JG_PID/status"
exit "$status"
