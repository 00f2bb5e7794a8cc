#!/usr/bin/env bash
# A p2psip overlay across NATs in Linux network namespaces (needs root: ip netns, iptables).
#
#   deploy/lab/nat.sh up       build the namespaces, start one node in each host
#   deploy/lab/nat.sh status   one /status line per node
#   deploy/lab/nat.sh exec H CMD...   run CMD in host H's namespace (o1 o2 o3 h1 h2)
#   deploy/lab/nat.sh down     stop the nodes (SIGTERM: graceful Leave), delete the namespaces
#
# Topology ("office LAN" 10.77.0.0/24 on a bridge; two homes behind their own NAT):
#
#   o1 10.77.0.11  o2 10.77.0.12  o3 10.77.0.13   nat1 10.77.0.21     nat2 10.77.0.22
#        \             |             /              |  MASQUERADE        |  MASQUERADE
#         +--------- bridge (sw) --+--------------- +                    +
#                                                 192.168.1.1          192.168.2.1
#                                                   h1 192.168.1.2       h2 192.168.2.2
#
# Every node opens DTLS-UDP-SR links (overlay.link: dtls) and offers host and
# server-reflexive candidates in its Attaches; o1 creates the overlay, the others bootstrap
# through it. h1 and h2 can reach the office but not each other's private address: their
# direct link needs the server-reflexive candidates and checks from both sides.
#
# Environment: P2PSIP (binary; default target/debug/p2psip), LAB_DIR (default
# /tmp/p2psip-nat), PREFIX (namespace name prefix, default p2l), SYMMETRIC=1 (NATs map every
# destination to a new random port, i.e. symmetric NAT: direct links between h1 and h2 then
# fail and their traffic is routed through the overlay), TURN=1 (start Debian's coturn on o3,
# 10.77.0.13:3478, anonymous allocations; o3's node advertises it in the overlay
# (`overlay.turn_service.advertise`, RFC 6940 TURN-SERVICE) and h1 and h2, which see that they
# are behind NATs, find it there: they then offer relayed candidates, and with SYMMETRIC=1
# their direct link runs through the relay), TURN_CONFIGURED=1 (with TURN=1: give h1 and h2
# `overlay.turn_server` by hand instead of the overlay discovery; TURN_CONFIGURED=h1 gives it
# to h1 only, so h2 has no relayed candidate at all; TURN_VERBOSE=1 makes coturn log every
# request in $LAB_DIR/turn.log), TURN=node (no coturn: o1,
# o2 and o3 see from ICE that they are not behind a NAT and run their own TURN servers on
# port 3478 (`overlay.turn_service.serve: auto`), advertising them in the overlay; h1 and h2
# find one there and allocate on it with the overlay's credentials). Without TURN=node the
# nodes do not serve TURN (`serve: "no"`).
# SIP_USERS=1 (SIP users 1000..1003, password pw-<user>, MD5 digest, at every node: for
# calls with SIPp inside the namespaces, `exec H sipp 127.0.0.1:5060 ...`).
set -euo pipefail

LAB_DIR=${LAB_DIR:-/tmp/p2psip-nat}
PREFIX=${PREFIX:-p2l}
here=$(cd "$(dirname "$0")/../.." && pwd)
if [[ -z "${P2PSIP:-}" ]]; then
  for c in "${CARGO_TARGET_DIR:-$here/target}/debug/p2psip" "${CARGO_TARGET_DIR:-$here/target}/release/p2psip"; do
    [[ -x "$c" ]] && P2PSIP=$c && break
  done
  P2PSIP=${P2PSIP:-p2psip}
fi
HOSTS="o1 o2 o3 h1 h2"
ns() { echo "$PREFIX-$1"; }
nsx() { local n=$1; shift; ip netns exec "$(ns "$n")" "$@"; }
ip_of() {
  case $1 in o1) echo 10.77.0.11 ;; o2) echo 10.77.0.12 ;; o3) echo 10.77.0.13 ;;
    h1) echo 192.168.1.2 ;; h2) echo 192.168.2.2 ;; esac
}

# veth between namespace $1 (iface $2, address $3) and the bridge.
to_bridge() {
  ip link add "$2" netns "$(ns "$1")" type veth peer name "$1-$2" netns "$(ns sw)"
  nsx sw ip link set "$1-$2" master br0 up
  nsx "$1" ip addr add "$3" dev "$2"
  nsx "$1" ip link set "$2" up
}

net_up() {
  for n in sw o1 o2 o3 nat1 nat2 h1 h2; do
    ip netns add "$(ns $n)"
    nsx $n ip link set lo up
  done
  nsx sw ip link add br0 type bridge
  nsx sw ip link set br0 up
  to_bridge o1 eth0 10.77.0.11/24
  to_bridge o2 eth0 10.77.0.12/24
  to_bridge o3 eth0 10.77.0.13/24
  local rnd=""
  [[ "${SYMMETRIC:-0}" == 1 ]] && rnd="--random-fully"
  for k in 1 2; do
    to_bridge nat$k wan 10.77.0.2$k/24
    ip link add lan netns "$(ns nat$k)" type veth peer name eth0 netns "$(ns h$k)"
    nsx nat$k ip addr add 192.168.$k.1/24 dev lan
    nsx nat$k ip link set lan up
    nsx h$k ip addr add 192.168.$k.2/24 dev eth0
    nsx h$k ip link set eth0 up
    nsx h$k ip route add default via 192.168.$k.1
    nsx nat$k sysctl -qw net.ipv4.ip_forward=1
    # shellcheck disable=SC2086
    nsx nat$k iptables -t nat -A POSTROUTING -o wan -j MASQUERADE $rnd
    # Like a home router: the NAT itself accepts nothing unsolicited from the WAN (so stray
    # packets leave no conntrack entry that would change its port mappings), and nothing
    # from the office reaches the home network unless the NAT has a mapping for it.
    nsx nat$k iptables -A INPUT -i wan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
    nsx nat$k iptables -A INPUT -i wan -j DROP
    nsx nat$k iptables -A FORWARD -i wan -o lan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
    nsx nat$k iptables -A FORWARD -i wan -o lan -j DROP
  done
}

turn_for() { # the configured TURN server of host $1 (NATed hosts, with TURN_CONFIGURED=1 or =$1)
  local c=${TURN_CONFIGURED:-0}
  if [[ "${TURN:-0}" == 1 && $1 == h* && ($c == 1 || $c == "$1") ]]; then echo "10.77.0.13:3478"; fi
}

advertise_for() { # the TURN server host $1 advertises in the overlay (o3, with TURN=1)
  if [[ "${TURN:-0}" == 1 && "${TURN_CONFIGURED:-0}" == 0 && $1 == o3 ]]; then echo "10.77.0.13:3478"; fi
}

users_yaml() { # with SIP_USERS=1: the SIP users of every node
  [[ "${SIP_USERS:-0}" == 1 ]] || return 0
  echo "registrar: {digest_algorithms: [MD5]}"
  echo "users:"
  for u in 1000 1001 1002 1003; do echo "  - {name: \"$u\", password: pw-$u}"; done
}

serve_for() { # overlay.turn_service.serve of every host
  if [[ "${TURN:-0}" == node ]]; then echo auto; else echo "no"; fi
}

turn_up() {
  command -v turnserver >/dev/null || { echo "coturn is missing (apt-get install coturn)" >&2; exit 1; }
  (exec ip netns exec "$(ns o3)" turnserver -n -z --no-cli --no-tls --no-dtls ${TURN_VERBOSE:+-V} \
    -L 10.77.0.13 -E 10.77.0.13 -p 3478 --min-port 49152 --max-port 49999 \
    --realm nat.p2psip --log-file stdout --simple-log >"$LAB_DIR/turn.log" 2>&1 </dev/null) &
  echo $! >"$LAB_DIR/turn.pid"
  echo "coturn  namespace $(ns o3)  10.77.0.13:3478 (anonymous)"
}

node_up() { # host, bootstrap ("" for the first node)
  local h=$1 boot=$2 d="$LAB_DIR/$1"
  mkdir -p "$d/data"
  if [[ -n "$boot" && ! -e "$d/data/node.cert.pem" ]]; then
    # Share o1's overlay CA (lab shortcut, as loopback.sh; see docs/DEPLOY.md for enrollment).
    rm -rf "$d/data/ca" && cp -r "$LAB_DIR/o1/data/ca" "$d/data/ca"
  fi
  cat >"$d/config.yaml" <<CFG
overlay:
  instance_name: nat.p2psip
  node_user: $h
  listen: "$(ip_of "$h"):6084"
  link: dtls
  turn_server: "$(turn_for "$h")"
  turn_service: {advertise: "$(advertise_for "$h")", serve: "$(serve_for)"}
  bootstrap: [$boot]
  discovery: {enabled: false}
sip:
  udp: ["127.0.0.1:5060"]
  tcp: ["127.0.0.1:5060"]
admin:
  listen: "127.0.0.1:9060"
  debug: true
$(users_yaml)
CFG
  (cd "$d" && RUST_LOG=${RUST_LOG:-info} exec ip netns exec "$(ns "$h")" "$P2PSIP" >"$d/log" 2>&1 </dev/null) &
  echo $! >"$d/pid"
  for _ in $(seq 1 100); do
    nsx "$h" curl -s --max-time 1 http://127.0.0.1:9060/status >/dev/null 2>&1 && break
    sleep 0.1
  done
  local id
  id=$(nsx "$h" curl -s --max-time 2 http://127.0.0.1:9060/status | sed -n 's/.*"node_id":"\([0-9a-f]*\)".*/\1/p')
  echo "$h  namespace $(ns "$h")  overlay $(ip_of "$h"):6084  admin 127.0.0.1:9060 (in the namespace)  Node-ID ${id:-?}"
}

up() {
  command -v iptables >/dev/null || { echo "iptables is missing (apt-get install iptables)" >&2; exit 1; }
  mkdir -p "$LAB_DIR"
  net_up
  [[ "${TURN:-0}" == 1 ]] && turn_up
  node_up o1 ""
  for h in o2 o3; do node_up "$h" '"10.77.0.11:6084"'; done
  if [[ "${TURN:-0}" == node ]]; then
    # The office nodes run (and advertise their TURN servers) before the homes join, as in a
    # deployment; otherwise h1 and h2 may Attach to each other before they have a relay.
    for h in o1 o2 o3; do
      for _ in $(seq 1 200); do
        grep -q "advertising TURN server" "$LAB_DIR/$h/log" 2>/dev/null && break
        sleep 0.1
      done
    done
  fi
  node_up h1 '"10.77.0.11:6084"'
  if [[ "${TURN:-0}" != 0 ]]; then
    # h1 has its relay before h2 Attaches to it: a node does not re-run the checks of a
    # failed Attach when its relayed candidate arrives later (docs/DEPLOY.md, limits).
    for _ in $(seq 1 200); do
      grep -q "TURN: relayed address" "$LAB_DIR/h1/log" 2>/dev/null && break
      sleep 0.1
    done
  fi
  node_up h2 '"10.77.0.11:6084"'
}

status() {
  for h in $HOSTS; do
    echo "$h $(nsx "$h" curl -s --max-time 2 http://127.0.0.1:9060/status 2>/dev/null || echo down)"
  done
}

down() {
  for h in $HOSTS; do
    local f="$LAB_DIR/$h/pid"
    [[ -f "$f" ]] || continue
    local pid; pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
  done
  if [[ -f "$LAB_DIR/turn.pid" ]]; then
    kill -TERM "$(cat "$LAB_DIR/turn.pid")" 2>/dev/null || true
    rm -f "$LAB_DIR/turn.pid"
  fi
  for n in h1 h2 nat1 nat2 o1 o2 o3 sw; do
    ip netns del "$(ns $n)" 2>/dev/null || true
  done
  echo "NAT lab $PREFIX down (state kept in $LAB_DIR)"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  exec) shift; h=$1; shift; nsx "$h" "$@" ;;
  *) echo "usage: $0 up | status | exec HOST CMD... | down" >&2; exit 2 ;;
esac
