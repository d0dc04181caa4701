#!/usr/bin/env bash
# The soak of the hardening issue: `sockdemo bench` at 50 clients for 60 s against
# `sockdemo serve`; zero errors, and afterwards the server's thread count and open descriptors
# back to the idle baseline and its VmRSS within 1 MiB of the figure after warm-up.
#
#   scripts/soak.sh         # 60 s
#   scripts/soak.sh 10s     # a quick check (any duration `sockdemo bench --duration` takes)
#
# Prints PASS/FAIL lines; exits 1 when any check fails. Loopback only.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${1:-60s}
CLIENTS=50
# The server keeps a finished connection's thread parked for up to 5 s; wait that out.
SETTLE=7
RSS_SLACK_KIB=1024

TMP=$(mktemp -d "${TMPDIR:-/tmp}/sockdemo-soak.XXXXXX")
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { echo "soak.sh: $*" >&2; }

(cd "$ROOT" && timeout 900 cargo build --release --quiet --bins) >&2
SOCKDEMO="$ROOT/target/release/sockdemo"

"$SOCKDEMO" serve --port 0 2>"$TMP/serve.log" &
SERVER_PID=$!
PORT=
for _ in $(seq 100); do
    PORT=$(sed -n 's/.*Listening on [0-9.]*:\([0-9][0-9]*\).*/\1/p' "$TMP/serve.log" | head -n1)
    [ -n "$PORT" ] && break
    sleep 0.1
done
[ -n "$PORT" ] || { cat "$TMP/serve.log" >&2; say "the server did not start"; exit 1; }

threads() { awk '/^Threads:/ {print $2}' "/proc/$SERVER_PID/status"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status"; }
fds() { find "/proc/$SERVER_PID/fd" -mindepth 1 -maxdepth 1 | wc -l; }
snapshot() { echo "threads $(threads), descriptors $(fds), VmRSS $(rss_kib) KiB"; }

say "server on port $PORT, idle: $(snapshot)"
say "warming up: $CLIENTS clients for 5 s"
timeout 60 "$SOCKDEMO" -q bench --port "$PORT" -c "$CLIENTS" --duration 5s >/dev/null
say "waiting ${SETTLE} s for parked threads to expire"
sleep "$SETTLE"
BASE_THREADS=$(threads)
BASE_FDS=$(fds)
BASE_RSS=$(rss_kib)
say "baseline after warm-up: $(snapshot)"

say "soak: $CLIENTS clients for $DURATION"
FAILED=0
if ! timeout 900 "$SOCKDEMO" -q bench --port "$PORT" -c "$CLIENTS" --duration "$DURATION" --json \
    >"$TMP/soak.json" 2>"$TMP/soak.err"; then
    say "the bench failed: $(tail -n1 "$TMP/soak.err")"
fi
read -r ERRORS MESSAGES MPS < <(python3 -c '
import json, sys
try:
    r = json.load(open(sys.argv[1]))
    print(r["errors"], r["messages"], r["messages_per_s"])
except (OSError, ValueError, KeyError):
    print("unknown 0 0")' "$TMP/soak.json")
say "waiting ${SETTLE} s for parked threads to expire"
sleep "$SETTLE"
THREADS=$(threads || echo gone)
FDS=$(fds 2>/dev/null || echo gone)
RSS=$(rss_kib || echo 0)

check() {
    local name=$1 ok=$2 detail=$3
    if [ "$ok" = 1 ]; then
        echo "PASS $name: $detail"
    else
        echo "FAIL $name: $detail"
        FAILED=1
    fi
}
check "zero errors" "$([ "$ERRORS" = 0 ] && echo 1)" \
    "$ERRORS errors in $MESSAGES round trips ($MPS messages/s, $CLIENTS clients, $DURATION)"
check "threads back to baseline" "$([ "$THREADS" -le "$BASE_THREADS" ] && echo 1)" \
    "$THREADS after, $BASE_THREADS before"
check "descriptors back to baseline" "$([ "$FDS" -le "$BASE_FDS" ] && echo 1)" \
    "$FDS after, $BASE_FDS before"
DELTA=$((RSS - BASE_RSS))
check "VmRSS within ${RSS_SLACK_KIB} KiB of the warm-up figure" \
    "$([ "${DELTA#-}" -le "$RSS_SLACK_KIB" ] && echo 1)" \
    "$RSS KiB after, $BASE_RSS KiB after warm-up (${DELTA} KiB)"
if kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "PASS server alive"
else
    echo "FAIL server alive: it exited"
    FAILED=1
fi
exit "$FAILED"
