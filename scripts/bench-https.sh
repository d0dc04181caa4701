#!/usr/bin/env bash
# fetch over https against curl and wget, side by side in one run: a 256 MiB file from a
# local nginx with TLS (wall time and peak RSS), then the handshake alone (a 0-byte body,
# wall time). Clients run interleaved (A B C D, A B C D, ...) so that a noisy machine
# weighs on all of them alike; medians and ratios to curl are printed as Markdown tables.
#
#   scripts/bench-https.sh [ROUNDS] [HANDSHAKES]     # defaults: 5 rounds, 30 handshakes each
#   MIB=16 scripts/bench-https.sh 1 3                 # a smoke test; KEEP=1 keeps the files
#
# Needs python3, openssl, nginx, curl, wget and GNU time (/usr/bin/time); builds the release
# binary. The certificates are made here (a CA and a leaf for localhost), nginx gets its
# listening socket from a launcher that binds port 0 (the NGINX variable), every step is
# bounded by `timeout`, and everything is removed on exit.
set -euo pipefail

ROUNDS=${1:-5}
HANDSHAKES=${2:-30}
MIB=${MIB:-256}
cd "$(dirname "$0")/.."

say() { echo "$*" >&2; }
die() { say "error: $*"; exit 1; }

for tool in python3 openssl nginx curl wget /usr/bin/time; do
    command -v "$tool" >/dev/null || die "$tool is missing (apt-get install nginx curl wget time)"
done

timeout 900 cargo build --release --quiet
BIN="$PWD/target/release/sockdemo"

TMP=$(mktemp -d)
chmod 755 "$TMP" # nginx's worker (nobody) reads www/ below it
NGINX_PID=""
cleanup() {
    if [ -n "$NGINX_PID" ]; then
        kill -TERM "$NGINX_PID" 2>/dev/null || true
        timeout 10 tail --pid="$NGINX_PID" -f /dev/null 2>/dev/null || true
    fi
    if [ -n "${KEEP:-}" ]; then say "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

# --- certificates ----------------------------------------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=bench-ca -keyout "$TMP/ca.key" -out "$TMP/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
    -keyout "$TMP/leaf.key" -out "$TMP/leaf.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n' \
    >"$TMP/leaf.ext"
openssl x509 -req -in "$TMP/leaf.csr" -CA "$TMP/ca.pem" -CAkey "$TMP/ca.key" \
    -CAcreateserial -days 1 -extfile "$TMP/leaf.ext" -out "$TMP/leaf.pem" 2>/dev/null

# --- nginx -----------------------------------------------------------------------------------
mkdir -p "$TMP/www" "$TMP/certs"
say "writing a $MIB MiB file"
timeout 120 head -c "$((MIB << 20))" /dev/urandom >"$TMP/www/big.bin"
: >"$TMP/www/empty.bin"
cat >"$TMP/nginx.conf.in" <<EOF
daemon off;
worker_processes 1;
error_log stderr notice;
pid $TMP/nginx.pid;
events { worker_connections 64; }
http {
    access_log off;
    default_type application/octet-stream;
    client_body_temp_path $TMP/body;
    proxy_temp_path $TMP/proxy;
    fastcgi_temp_path $TMP/fastcgi;
    uwsgi_temp_path $TMP/uwsgi;
    scgi_temp_path $TMP/scgi;
    server {
        listen \${LISTEN} ssl;
        ssl_certificate $TMP/leaf.pem;
        ssl_certificate_key $TMP/leaf.key;
        root $TMP/www;
    }
}
EOF
# Binds 127.0.0.1:0, writes the address into the configuration, becomes nginx with the
# socket inherited: no port can be taken in between, and clients can connect at once.
timeout 3600 python3 - "$TMP" >"$TMP/nginx.log" 2>&1 <<'EOF' &
import os, socket, sys
tmp = sys.argv[1]
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(1024)
s.set_inheritable(True)
port = s.getsockname()[1]
text = open(tmp + "/nginx.conf.in").read().replace("${LISTEN}", "127.0.0.1:%d" % port)
open(tmp + "/nginx.conf", "w").write(text)
open(tmp + "/port", "w").write(str(port))
os.environ["NGINX"] = "%d;" % s.fileno()
os.execvp("nginx", ["nginx", "-p", tmp, "-c", tmp + "/nginx.conf", "-e", "stderr"])
EOF
NGINX_PID=$!
for _ in $(seq 200); do
    grep -q "start worker process" "$TMP/nginx.log" 2>/dev/null && break
    kill -0 "$NGINX_PID" 2>/dev/null || { cat "$TMP/nginx.log" >&2; die "nginx exited"; }
    sleep 0.05
done
grep -q "start worker process" "$TMP/nginx.log" || die "nginx did not start"
PORT=$(cat "$TMP/port")
BASE="https://localhost:$PORT"

# --- clients ---------------------------------------------------------------------------------
CLIENTS=(sockdemo-1k sockdemo-64k curl wget)
label() {
    case "$1" in
        sockdemo-1k) echo "sockdemo fetch --cacert (1 KiB receives)" ;;
        sockdemo-64k) echo "sockdemo fetch --cacert --recv-size 65536" ;;
        sockdemo-own) echo "sockdemo fetch, SSL_CERT_FILE=ca.pem (no system store)" ;;
        curl) echo "curl -s --cacert" ;;
        wget) echo "wget -q --ca-certificate" ;;
    esac
}
# command CLIENT URL OUT: the command line that downloads URL into OUT.
command_for() {
    local out=$3
    case "$1" in
        sockdemo-1k) echo "$BIN -q fetch $2 --cacert $TMP/ca.pem -o $out" ;;
        sockdemo-64k) echo "$BIN -q fetch $2 --cacert $TMP/ca.pem --recv-size 65536 -o $out" ;;
        sockdemo-own) echo "env SSL_CERT_FILE=$TMP/ca.pem SSL_CERT_DIR=$TMP/certs $BIN -q fetch $2 -o $out" ;;
        curl) echo "curl -s --cacert $TMP/ca.pem -o $out $2" ;;
        wget) echo "wget -q --ca-certificate=$TMP/ca.pem -O $out $2" ;;
    esac
}

# run CLIENT URL: one download under GNU time; appends "wall_seconds peak_kib" to $TMP/CLIENT.
run() {
    local out="$TMP/fetched" start end
    rm -f "$out"
    start=$EPOCHREALTIME
    # shellcheck disable=SC2046
    timeout 300 /usr/bin/time -f '%M' -o "$TMP/time" $(command_for "$1" "$2" "$out") \
        >/dev/null 2>"$TMP/err" || { cat "$TMP/err" >&2; die "$1 failed"; }
    end=$EPOCHREALTIME
    if [ -s "$TMP/www/${2##*/}" ]; then
        cmp -s "$out" "$TMP/www/${2##*/}" || die "$1 saved a wrong copy"
    fi
    echo "$(python3 -c "print($end - $start)") $(tail -n1 "$TMP/time")" >>"$TMP/$1.$3"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

say "$MIB MiB: $ROUNDS rounds of ${CLIENTS[*]}"
for round in $(seq "$ROUNDS"); do
    say "  round $round"
    for client in "${CLIENTS[@]}"; do run "$client" "$BASE/big.bin" big; done
done

HS_CLIENTS=(sockdemo-1k sockdemo-own curl)
say "handshake alone (0-byte body): $HANDSHAKES rounds of ${HS_CLIENTS[*]}"
for _ in $(seq "$HANDSHAKES"); do
    for client in "${HS_CLIENTS[@]}"; do run "$client" "$BASE/empty.bin" empty; done
done

# --- report ----------------------------------------------------------------------------------
curl_wall=$(cut -d' ' -f1 "$TMP/curl.big" | median)
echo "### $MIB MiB over https from a local nginx ($ROUNDS rounds, interleaved; medians)"
echo
echo "| client | wall s | peak RSS MiB | wall / curl |"
echo "|---|---:|---:|---:|"
for client in "${CLIENTS[@]}"; do
    wall=$(cut -d' ' -f1 "$TMP/$client.big" | median)
    rss=$(cut -d' ' -f2 "$TMP/$client.big" | median)
    printf '| %s | %.2f | %.1f | %.2fx |\n' "$(label "$client")" "$wall" \
        "$(python3 -c "print($rss / 1024)")" "$(python3 -c "print($wall / $curl_wall)")"
done
echo
curl_hs=$(cut -d' ' -f1 "$TMP/curl.empty" | median)
echo "### The handshake alone: a 0-byte body ($HANDSHAKES rounds, interleaved; medians)"
echo
echo "| client | wall ms | wall / curl |"
echo "|---|---:|---:|"
for client in "${HS_CLIENTS[@]}"; do
    wall=$(cut -d' ' -f1 "$TMP/$client.empty" | median)
    printf '| %s | %.1f | %.2fx |\n' "$(label "$client")" "$(python3 -c "print($wall * 1000)")" \
        "$(python3 -c "print($wall / $curl_hs)")"
done
echo
echo "nginx: $(nginx -v 2>&1 | sed 's/.*: //'); $(curl --version | head -n1 | cut -d' ' -f1-2,5);" \
    "$(wget --version | head -n1 | cut -d' ' -f1-3); $(nproc) CPUs; $(date -u '+%Y-%m-%d %H:%M UTC')"
