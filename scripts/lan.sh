#!/usr/bin/env bash
# Five "machines" on one LAN, made of network namespaces, for running sockdemo behind a load
# balancer without five machines (see README, "Beyond one machine"):
#
#   NAME-client  192.0.2.1    where clients and bench run
#   NAME-lb      192.0.2.2    HAProxy or nginx
#   NAME-b1      192.0.2.11   sockdemo serve
#   NAME-b2      192.0.2.12   sockdemo serve
#   NAME-b3      192.0.2.13   sockdemo serve
#
# each with an eth0 on one bridge (in NAME-hub). 192.0.2.0/24 is TEST-NET-1, reserved for
# documentation: inside these namespaces it meets nothing else.
#
#   scripts/lan.sh up [NAME]      # NAME defaults to sockdemo
#   scripts/lan.sh down [NAME]
#   ip netns exec sockdemo-b1 sockdemo serve --host 192.0.2.11 --proxy-protocol
#
# Needs root (or CAP_NET_ADMIN) and iproute2.
set -euo pipefail

HOSTS=(client:192.0.2.1 lb:192.0.2.2 b1:192.0.2.11 b2:192.0.2.12 b3:192.0.2.13)

up() {
    local name=$1 hub="$1-hub" i=0 entry host addr
    ip netns add "$hub"
    ip -n "$hub" link add br0 type bridge
    ip -n "$hub" link set br0 up
    for entry in "${HOSTS[@]}"; do
        host="$name-${entry%%:*}" addr=${entry#*:}
        ip netns add "$host"
        ip -n "$host" link set lo up
        ip -n "$hub" link add "v$i" type veth peer name eth0 netns "$host"
        ip -n "$hub" link set "v$i" master br0 up
        ip -n "$host" addr add "$addr/24" dev eth0
        ip -n "$host" link set eth0 up
        i=$((i + 1))
    done
}

down() {
    local name=$1 entry
    for entry in "${HOSTS[@]}"; do
        ip netns del "$name-${entry%%:*}" 2>/dev/null || true
    done
    ip netns del "$name-hub" 2>/dev/null || true
}

case "${1:-}" in
    up) up "${2:-sockdemo}" ;;
    down) down "${2:-sockdemo}" ;;
    *) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
