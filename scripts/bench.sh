#!/usr/bin/env bash
# The benchmark suite: `sockdemo serve` side by side with two anchors (the tutorial's Python
# server with its sleep removed, and examples/plain_server.rs, the plain thread-per-connection
# Rust server), then `sockdemo fetch` against curl and wget on a 256 MiB file from a local
# nginx. Prints Markdown tables for BENCHMARKS.md on stdout; progress goes to stderr.
#
#   scripts/bench.sh            # the full run: medians of 3, a few minutes
#   scripts/bench.sh --quick    # 1 run each, shorter: a smoke test of the script
#   scripts/bench.sh --no-fetch # skip the fetch section
#   scripts/bench.sh --fetch-only
#
# Loopback only. Runs as root on a fresh Debian machine with cargo and python3; nginx, curl,
# wget and GNU time are installed with apt-get when missing (only for the fetch section).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=3
DURATION=4s
HOLDS="1000 10000"
FETCH_MIB=256
DO_SERVE=1
DO_FETCH=1
for arg in "$@"; do
    case "$arg" in
        --quick) RUNS=1 DURATION=2s ;;
        --no-fetch) DO_FETCH=0 ;;
        --fetch-only) DO_SERVE=0 ;;
        -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench.sh: unknown argument $arg (try --help)" >&2; exit 2 ;;
    esac
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/sockdemo-bench.XXXXXX")
RESULTS="$TMP/results.tsv"
: >"$RESULTS"
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { echo "bench.sh: $*" >&2; }
die() { say "$*"; exit 1; }
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RESULTS"; }

# 10,000 held connections need descriptors on both sides.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 10100 ]; then
    die "the descriptor limit is $(ulimit -n); 10,000 held connections need 10100 (raise ulimit -Hn)"
fi

say "building in release"
(cd "$ROOT" && timeout 900 cargo build --release --quiet --examples --bins) >&2
SOCKDEMO="$ROOT/target/release/sockdemo"
PLAIN="$ROOT/target/release/examples/plain_server"
PYSERVER="$ROOT/tests/peers/tutorial_server.py"
HOLD="$ROOT/scripts/hold.py"

# Starts server $1 (sockdemo | python | plain) on a free port; sets SERVER_PID and SERVER_PORT.
start_server() {
    local name=$1 log="$TMP/$1.log" i
    case "$name" in
        sockdemo) "$SOCKDEMO" serve --port 0 --max-connections 20000 >"$log" 2>&1 & ;;
        python) python3 "$PYSERVER" 127.0.0.1 0 0 >"$log" 2>&1 & ;;
        plain) "$PLAIN" 0 >"$log" 2>&1 & ;;
    esac
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    SERVER_PORT=
    for i in $(seq 100); do
        SERVER_PORT=$(sed -n 's/.*Listening on [0-9.]*:\([0-9][0-9]*\).*/\1/p' "$log" | head -n1)
        [ -n "$SERVER_PORT" ] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$log" >&2
    die "$name server did not start (attempt $i)"
}

# Stops a process started here and forgets it, so that cleanup never signals a reused PID.
stop() {
    local pid=$1 kept=() p
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in "${PIDS[@]}"; do
        [ "$p" = "$pid" ] || kept+=("$p")
    done
    PIDS=("${kept[@]}")
}

stop_server() { stop "$SERVER_PID"; }

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# bench FIGURE-SUFFIX ARGS...: one `sockdemo bench --json` against the running server.
bench() {
    local suffix=$1 out="$TMP/bench.json"
    shift
    if ! timeout 120 "$SOCKDEMO" -q bench --port "$SERVER_PORT" --duration "$DURATION" --json "$@" \
        >"$out" 2>"$TMP/bench.err"; then
        say "  bench $* against $CURRENT reported a failure: $(tail -n1 "$TMP/bench.err")"
    fi
    python3 - "$out" "$suffix" "$CURRENT" >>"$RESULTS" <<'EOF'
import json, sys
path, suffix, server = sys.argv[1:]
try:
    r = json.load(open(path))
except (OSError, ValueError):
    sys.exit(0)
if suffix == "reconnect4":
    print("cps_4\t%s\t%s" % (server, r["connections_per_s"]))
else:
    print("mps_%s\t%s\t%s" % (suffix, server, r["messages_per_s"]))
    if r.get("latency_us"):
        print("p99_%s\t%s\t%s" % (suffix, server, r["latency_us"]["p99"]))
print("errors\t%s\t%s" % (server, r["errors"]))
EOF
}

round_trips() {
    local run server c
    for run in $(seq "$RUNS"); do
        for server in sockdemo python plain; do
            say "round trips, run $run/$RUNS: $server"
            CURRENT=$server
            start_server "$server"
            for c in 1 10 100; do
                bench "$c" -c "$c"
            done
            bench reconnect4 -c 4 --reconnect
            stop_server
        done
    done
}

# hold SERVER N: a fresh server, N idle connections, its VmRSS, then every one must answer.
hold() {
    local server=$1 n=$2 ready="$TMP/ready" out="$TMP/hold.out" hold_pid i idle rss
    CURRENT=$server
    start_server "$server"
    sleep 0.5
    idle=$(rss_kib "$SERVER_PID")
    rm -f "$ready"
    timeout 300 python3 "$HOLD" "$SERVER_PORT" "$n" --hold 120 --ready-file "$ready" \
        </dev/null >"$out" 2>&1 &
    hold_pid=$!
    PIDS+=("$hold_pid")
    for i in $(seq 1800); do
        [ -f "$ready" ] && break
        kill -0 "$hold_pid" 2>/dev/null || break
        sleep 0.1
    done
    if [ -f "$ready" ]; then
        sleep 1 # let every connection thread settle in its first read
        rss=$(rss_kib "$SERVER_PID")
        # The ready file holds hold.py's own PID: $hold_pid is the `timeout` around it.
        kill -USR1 "$(cat "$ready")" 2>/dev/null || true
    else
        say "  $server: could not hold $n connections after $((i / 10)) s"
        rss=
    fi
    wait "$hold_pid" || true
    stop "$hold_pid"
    local answered
    answered=$(sed -n 's/^answered \([0-9]*\)\/.*/\1/p' "$out")
    say "  $server: $n held, VmRSS ${rss:-?} KiB (idle $idle KiB), answered ${answered:-0}/$n"
    record "rss_idle" "$server" "$idle"
    [ -n "$rss" ] && record "rss_$n" "$server" "$rss"
    record "answered_$n" "$server" "${answered:-0}"
    stop_server
}

memory() {
    local run server n
    for run in $(seq "$RUNS"); do
        for n in $HOLDS; do
            for server in sockdemo python plain; do
                say "memory, run $run/$RUNS: $server with $n idle connections"
                hold "$server" "$n"
            done
        done
    done
}

# --- fetch ---------------------------------------------------------------------------------

fetch_available() {
    local err
    err=$(timeout 10 "$SOCKDEMO" -q fetch http://127.0.0.1:1/ -o "$TMP/probe" 2>&1 || true)
    case "$err" in
        *"not implemented"*) return 1 ;;
        *) return 0 ;;
    esac
}

install_fetch_tools() {
    local missing=()
    command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
    command -v curl >/dev/null || missing+=(curl)
    command -v wget >/dev/null || missing+=(wget)
    [ -x /usr/bin/time ] || missing+=(time)
    [ ${#missing[@]} -eq 0 ] && return 0
    say "installing ${missing[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    timeout 300 apt-get update -qq >&2
    timeout 600 apt-get install -y -qq nginx curl wget time >&2
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_nginx() {
    local dir="$TMP/nginx" nginx i
    nginx=$(command -v nginx || echo /usr/sbin/nginx)
    mkdir -p "$dir/www" "$dir/tmp"
    say "writing a $FETCH_MIB MiB file"
    timeout 120 head -c "$((FETCH_MIB * 1024 * 1024))" /dev/urandom >"$dir/www/big.bin"
    NGINX_PORT=$(free_port)
    cat >"$dir/nginx.conf" <<EOF
user root;
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 64; }
http {
    access_log off;
    sendfile on;
    default_type application/octet-stream;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $dir/www;
    }
}
EOF
    "$nginx" -c "$dir/nginx.conf" -p "$dir" >"$dir/stdout.log" 2>&1 &
    PIDS+=("$!")
    for i in $(seq 50); do
        if timeout 5 curl -sf -o /dev/null -r 0-0 "http://127.0.0.1:$NGINX_PORT/big.bin"; then
            return 0
        fi
        sleep 0.1
    done
    cat "$dir/error.log" "$dir/stdout.log" >&2 || true
    die "nginx did not start (tried $i times)"
}

# fetch_one NAME COMMAND...: wall time and peak RSS of one download into $TMP/fetched.
fetch_one() {
    local name=$1 timing="$TMP/time.txt" size
    shift
    rm -f "$TMP/fetched"
    if ! timeout 300 /usr/bin/time -f '%e %M' -o "$timing" "$@" >/dev/null 2>"$TMP/fetch.err"; then
        say "  $name failed: $(tail -n1 "$TMP/fetch.err")"
        return 0
    fi
    size=$(stat -c %s "$TMP/fetched" 2>/dev/null || echo 0)
    if [ "$size" -ne $((FETCH_MIB * 1024 * 1024)) ]; then
        say "  $name saved $size bytes, not $((FETCH_MIB * 1024 * 1024))"
        return 0
    fi
    if ! cmp -s "$TMP/fetched" "$TMP/nginx/www/big.bin"; then
        say "  $name saved a file that differs from the original"
        return 0
    fi
    read -r wall maxrss <"$timing"
    say "  $name: ${wall} s, peak RSS ${maxrss} KiB"
    record fetch_wall "$name" "$wall"
    record fetch_rss "$name" "$maxrss"
}

fetch_section() {
    if ! fetch_available; then
        say "sockdemo fetch is not implemented on this build: skipping the fetch section"
        echo "skipped, sockdemo fetch is not implemented on this build" >"$TMP/fetch_skipped"
        return 0
    fi
    install_fetch_tools
    start_nginx
    local url="http://127.0.0.1:$NGINX_PORT/big.bin" run
    for run in $(seq "$RUNS"); do
        say "fetch, run $run/$RUNS"
        fetch_one "sockdemo fetch (1 KiB receives)" "$SOCKDEMO" -q fetch "$url" -o "$TMP/fetched"
        fetch_one "sockdemo fetch --recv-size 65536" \
            "$SOCKDEMO" -q fetch "$url" -o "$TMP/fetched" --recv-size 65536
        fetch_one "curl -s -o FILE" curl -s -o "$TMP/fetched" "$url"
        fetch_one "wget -q -O FILE" wget -q -O "$TMP/fetched" "$url"
    done
    rm -f "$TMP/fetched" "$TMP/nginx/www/big.bin"
}

# --- run -------------------------------------------------------------------------------------

STARTED=$(date -u '+%Y-%m-%d %H:%M UTC')
if [ "$DO_SERVE" = 1 ]; then
    round_trips
    memory
fi
if [ "$DO_FETCH" = 1 ]; then
    fetch_section
fi

MEM_KIB=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
python3 "$ROOT/scripts/bench_report.py" "$RESULTS" \
    --date "$STARTED" --nproc "$(nproc)" --mem-kib "$MEM_KIB" --kernel "$(uname -r)" \
    --runs "$RUNS" --duration "$DURATION" \
    --fetch-note "$(cat "$TMP/fetch_skipped" 2>/dev/null || true)"
