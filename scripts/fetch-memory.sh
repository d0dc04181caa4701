#!/usr/bin/env bash
# Peak memory of `sockdemo fetch` saving a 64 MiB body (and, for comparison, a 1 KiB one)
# from `python3 -m http.server` on loopback. Builds the release binary, serves random files
# from a temporary directory, fetches each under `/usr/bin/time -v`, checks the copy byte
# for byte, prints "Maximum resident set size", and cleans up. Every step is bounded.
set -euo pipefail

cd "$(dirname "$0")/.."
timeout 600 cargo build --release --quiet
bin="$PWD/target/release/sockdemo"

work="$(mktemp -d)"
server=""
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

mkdir "$work/srv" "$work/out"
head -c $((64 << 20)) /dev/urandom >"$work/srv/body-64MiB.bin"
head -c 1024 /dev/urandom >"$work/srv/body-1KiB.bin"

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
timeout 300 python3 -m http.server "$port" --bind 127.0.0.1 --directory "$work/srv" >/dev/null 2>&1 &
server=$!
for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.1
done

cd "$work/out"
for name in body-1KiB.bin body-64MiB.bin; do
    timeout 120 /usr/bin/time -v "$bin" -q fetch "http://127.0.0.1:$port/$name" -o "$name" \
        >/dev/null 2>"$work/time.txt"
    cmp "$name" "$work/srv/$name"
    peak="$(sed -n 's/^\s*Maximum resident set size (kbytes): //p' "$work/time.txt")"
    echo "$name: saved byte-exact, peak RSS $peak KiB"
done
