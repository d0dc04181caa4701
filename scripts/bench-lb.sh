#!/usr/bin/env bash
# What a load balancer costs: `sockdemo bench` from a client host through HAProxy
# (send-proxy-v2, health checks) to three `sockdemo serve --proxy-protocol` hosts, side by
# side with the same bench straight to one `sockdemo serve`. The hosts are network namespaces
# on one bridge (scripts/lan.sh), so both paths cross the same veth links; the only
# difference is the balancer's hop. The two targets take turns, case by case, in one run.
# Prints Markdown for BENCHMARKS.md on stdout; progress goes to stderr.
#
#   scripts/bench-lb.sh            # medians of 5 runs, 4 s per bench: about 3 minutes
#   scripts/bench-lb.sh --quick    # 1 run, 2 s per bench: a smoke test of the script
#
# Runs as root on Debian with cargo, python3, iproute2 and haproxy.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=5
DURATION=4s
for arg in "$@"; do
    case "$arg" in
        --quick) RUNS=1 DURATION=2s ;;
        -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench-lb.sh: unknown argument $arg (try --help)" >&2; exit 2 ;;
    esac
done

LAN="sdbench$$"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/sockdemo-bench-lb.XXXXXX")
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
    "$ROOT/scripts/lan.sh" down "$LAN" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { echo "bench-lb.sh: $*" >&2; }
die() { say "$*"; exit 1; }
on() { local host=$1; shift; ip netns exec "$LAN-$host" "$@"; }

command -v haproxy >/dev/null || die "haproxy is not installed (apt-get install haproxy)"
say "building in release"
(cd "$ROOT" && timeout 900 cargo build --release --quiet --bins) >&2
SOCKDEMO="$ROOT/target/release/sockdemo"

"$ROOT/scripts/lan.sh" up "$LAN"
CLIENT_IP=192.0.2.1 LB_IP=192.0.2.2 DIRECT="192.0.2.11:9000"

# serve HOST ADDR ARGS...: a server in the background; waits for its Listening line.
serve() {
    local host=$1 ip=$2 port=$3 log="$TMP/$1-$3.log" i
    shift 3
    # `ip netns exec` execs the program: $! is the server itself.
    ip netns exec "$LAN-$host" "$SOCKDEMO" serve --host "$ip" --port "$port" \
        --max-connections 20000 "$@" >"$log" 2>&1 &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    for i in $(seq 100); do
        grep -qs "Listening on" "$log" && return 0
        sleep 0.1
    done
    cat "$log" >&2
    die "the server on $host did not start"
}

serve b1 192.0.2.11 9000
DIRECT_PID=$SERVER_PID
BACKEND_PIDS=()
for n in 1 2 3; do
    serve "b$n" "192.0.2.1$n" 9999 --proxy-protocol
    BACKEND_PIDS+=("$SERVER_PID")
done

cat >"$TMP/haproxy.cfg" <<EOF
global
    maxconn 8000
defaults
    mode tcp
    timeout connect 1s
    timeout client 1m
    timeout server 1m
frontend hello
    bind $LB_IP:9999
    default_backend servers
backend servers
    balance roundrobin
    option redispatch
    default-server send-proxy-v2 check inter 2s
    server b1 192.0.2.11:9999
    server b2 192.0.2.12:9999
    server b3 192.0.2.13:9999
EOF
ip netns exec "$LAN-lb" haproxy -f "$TMP/haproxy.cfg" -db >"$TMP/haproxy.log" 2>&1 &
HAPROXY_PID=$!
PIDS+=("$HAPROXY_PID")
for i in $(seq 100); do
    on client "$SOCKDEMO" -q client --host "$LB_IP" --port 9999 --timeout 1s ready \
        >/dev/null 2>&1 && break
    kill -0 "$HAPROXY_PID" 2>/dev/null || { cat "$TMP/haproxy.log" >&2; die "haproxy exited"; }
    sleep 0.1
done

# CPU seconds (user + system) the processes $@ have used so far.
cpu_s() {
    local pid total=0
    for pid in "$@"; do
        total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat")))
    done
    awk -v ticks="$total" 'BEGIN { printf "%.2f\n", ticks / 100 }'
}

# bench TARGET CASE ARGS...: one `sockdemo bench --json` from the client host.
bench() {
    local target=$1 case=$2 out="$TMP/bench.json" host port servers lb0 lb1 sv0 sv1 bench_cpu
    shift 2
    case "$target" in
        direct) host=${DIRECT%:*} port=${DIRECT#*:} servers=("$DIRECT_PID") ;;
        haproxy) host=$LB_IP port=9999 servers=("${BACKEND_PIDS[@]}") ;;
    esac
    lb0=$(cpu_s "$HAPROXY_PID") sv0=$(cpu_s "${servers[@]}")
    # bash's `time` gives the bench's own CPU (ip netns exec becomes sockdemo).
    if ! { TIMEFORMAT='%U %S'; time timeout 120 ip netns exec "$LAN-client" "$SOCKDEMO" -q \
        bench --host "$host" --port "$port" --duration "$DURATION" --json "$@" \
        >"$out" 2>"$TMP/bench.err"; } 2>"$TMP/bench.time"; then
        say "  bench $case via $target reported a failure: $(tail -n1 "$TMP/bench.err")"
    fi
    lb1=$(cpu_s "$HAPROXY_PID") sv1=$(cpu_s "${servers[@]}")
    bench_cpu=$(awk '{ print $1 + $2 }' "$TMP/bench.time")
    python3 - "$out" "$target" "$case" "$lb0" "$lb1" "$sv0" "$sv1" "$bench_cpu" \
        >>"$RESULTS" <<'EOF'
import json, sys
path, target, case, lb0, lb1, sv0, sv1, bench_cpu = sys.argv[1:]
try:
    r = json.load(open(path))
except (OSError, ValueError):
    sys.exit(0)
print("mps\t%s\t%s\t%s" % (case, target, r["messages_per_s"]))
print("cps\t%s\t%s\t%s" % (case, target, r["connections_per_s"]))
if r.get("latency_us"):
    print("p50\t%s\t%s\t%s" % (case, target, r["latency_us"]["p50"]))
    print("p99\t%s\t%s\t%s" % (case, target, r["latency_us"]["p99"]))
print("errors\t%s\t%s\t%s" % (case, target, r["errors"]))
if r["messages"]:
    # Per round trip (with --reconnect, one round trip is one connection).
    lb = (float(lb1) - float(lb0)) * 1e6 / r["messages"]
    servers = (float(sv1) - float(sv0)) * 1e6 / r["messages"]
    bench = float(bench_cpu) * 1e6 / r["messages"]
    if target == "haproxy":
        print("lb_cpu_us\t%s\t%s\t%s" % (case, target, lb))
    print("servers_cpu_us\t%s\t%s\t%s" % (case, target, servers))
    print("all_cpu_us\t%s\t%s\t%s" % (case, target, servers + bench + (lb if target == "haproxy" else 0)))
EOF
}

STARTED=$(date -u '+%Y-%m-%d %H:%M UTC')
for run in $(seq "$RUNS"); do
    for case in 1 10 100 reconnect; do
        for target in direct haproxy; do
            say "run $run/$RUNS: $case via $target"
            case "$case" in
                reconnect) bench "$target" "$case" -c 4 --reconnect ;;
                *) bench "$target" "$case" -c "$case" ;;
            esac
        done
    done
done

python3 - "$RESULTS" "$STARTED" "$(nproc)" "$(uname -r)" "$RUNS" "$DURATION" \
    "$(haproxy -v | head -n1)" <<'EOF'
import statistics, sys
from collections import defaultdict

path, started, nproc, kernel, runs, duration, haproxy = sys.argv[1:]
values = defaultdict(list)
for line in open(path):
    figure, case, target, value = line.rstrip("\n").split("\t")
    values[(figure, case, target)].append(float(value))

def med(figure, case, target):
    v = values.get((figure, case, target))
    return statistics.median(v) if v else None

def num(x, digits=0):
    return "n/a" if x is None else f"{x:,.{digits}f}"

def ratio(a, b):
    return "n/a" if a is None or not b else f"{a / b:.2f}x"

print(f"{started}, {nproc} CPUs, Linux {kernel}, {haproxy.split(' - ')[0]}; medians of {runs} "
      f"runs of `--duration {duration}`, the two targets taking turns case by case.\n")
print("| | straight to one `serve` | through HAProxy to three | HAProxy / straight |")
print("|---|---:|---:|---:|")
for case in ["1", "10", "100"]:
    d, h = med("mps", case, "direct"), med("mps", case, "haproxy")
    print(f"| messages/s, {case} client{'s' if case != '1' else ''} | {num(d)} | {num(h)} | {ratio(h, d)} |")
for case in ["1", "10", "100"]:
    d, h = med("p99", case, "direct"), med("p99", case, "haproxy")
    print(f"| p99 µs, {case} client{'s' if case != '1' else ''} | {num(d)} | {num(h)} | {ratio(h, d)} |")
d, h = med("cps", "reconnect", "direct"), med("cps", "reconnect", "haproxy")
print(f"| connections/s, `--reconnect`, 4 clients | {num(d)} | {num(h)} | {ratio(h, d)} |")
print()
print("CPU time per round trip in µs (user + system; with `--reconnect`, per connection):\n")
print("| | servers, straight | servers, through HAProxy | HAProxy | all, straight | all, through HAProxy |")
print("|---|---:|---:|---:|---:|---:|")
for case, label in [("1", "1 client"), ("10", "10 clients"), ("100", "100 clients"),
                    ("reconnect", "`--reconnect`, 4 clients")]:
    cells = [med("servers_cpu_us", case, "direct"), med("servers_cpu_us", case, "haproxy"),
             med("lb_cpu_us", case, "haproxy"), med("all_cpu_us", case, "direct"),
             med("all_cpu_us", case, "haproxy")]
    print(f"| {label} | " + " | ".join(num(c, 1) for c in cells) + " |")
print("\n(\"all\" adds the bench's own CPU; the kernel's work for a socket is counted in the "
      "process it ran for.)\n")
d, h = med("p50", "1", "direct"), med("p50", "1", "haproxy")
added = None if d is None or h is None else h - d
print(f"p50 at 1 client: {num(d)} µs straight, {num(h)} µs through HAProxy: {num(added)} µs "
      "added per round trip.\n")
errors = {t: sum(sum(v) for (f, c, tt), v in values.items() if f == "errors" and tt == t)
          for t in ["direct", "haproxy"]}
print(f"Bench errors over all runs: straight {errors['direct']:.0f}, through HAProxy "
      f"{errors['haproxy']:.0f}.")
EOF
