#!/usr/bin/env bash
# What streaming `-o -` costs: `sockdemo fetch -o - URL > /dev/null` of a 256 MiB file served
# by `python3 -m http.server` on loopback, timed for two builds run in turn (A B A B ...), so
# that a noisy machine slows both alike. Prints each run's wall time and the CPU time (user +
# system) of the fetch, the medians, and the after/before ratio of each median.
#
#   scripts/bench-stdout.sh BEFORE AFTER [PAIRS [FETCH-ARGS...]]
#
# BEFORE and AFTER are two sockdemo binaries; PAIRS defaults to 15; FETCH-ARGS are passed
# to both fetches (e.g. --recv-size 65536).
#
# Build each in release first (`cargo build --release`, one checkout each). Needs python3, bc
# and GNU time (/usr/bin/time).
set -euo pipefail

[ $# -ge 2 ] || { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
BEFORE=$(realpath "$1")
AFTER=$(realpath "$2")
PAIRS=${3:-15}
EXTRA=("${@:4}")
MIB=256

TMP=$(mktemp -d "${TMPDIR:-/tmp}/sockdemo-stdout.XXXXXX")
SERVER=
cleanup() {
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir "$TMP/www"
head -c "$((MIB << 20))" /dev/urandom >"$TMP/www/big.bin"
python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$TMP/www" \
    >"$TMP/server.out" 2>/dev/null &
SERVER=$!
for _ in $(seq 100); do
    grep -q ' port ' "$TMP/server.out" 2>/dev/null && break
    sleep 0.1
done
PORT=$(sed -n 's/.* port \([0-9]*\) .*/\1/p' "$TMP/server.out" | head -n1)
[ -n "$PORT" ] || { echo "bench-stdout.sh: python3 http.server did not start" >&2; exit 1; }
URL="http://127.0.0.1:$PORT/big.bin"

# One timed run of BIN fetching URL to /dev/null through -o -: "WALL CPU" in seconds. (The
# header goes to stderr; -q is not used, since a build from before -q hid it would differ.)
run() {
    local start end cpu
    start=$(date +%s.%N)
    /usr/bin/time -f '%U %S' -o "$TMP/time" "$1" fetch -o - "${EXTRA[@]}" "$URL" >/dev/null 2>"$TMP/err" ||
        { echo "bench-stdout.sh: $1 failed: $(tail -n1 "$TMP/err")" >&2; exit 1; }
    end=$(date +%s.%N)
    cpu=$(awk '{ print $1 + $2 }' "$TMP/time")
    echo "$(echo "$end - $start" | bc) $cpu"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

run "$BEFORE" >/dev/null # warm the page cache and the server
: >"$TMP/a" && : >"$TMP/b"
for i in $(seq "$PAIRS"); do
    a=$(run "$BEFORE")
    b=$(run "$AFTER")
    echo "$a" >>"$TMP/a"
    echo "$b" >>"$TMP/b"
    printf 'pair %2d: before %s, after %s (wall s, cpu s)\n' "$i" "$a" "$b"
done
for col in 1 2; do
    ma=$(cut -d' ' -f$col "$TMP/a" | median)
    mb=$(cut -d' ' -f$col "$TMP/b" | median)
    what=$([ $col = 1 ] && echo "wall" || echo "cpu ")
    printf 'median %s: before %.3f s, after %.3f s, after/before %.3fx\n' \
        "$what" "$ma" "$mb" "$(echo "$mb / $ma" | bc -l)"
done
