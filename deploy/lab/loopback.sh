#!/usr/bin/env bash
# A p2psip overlay of N processes on 127.0.0.1 (one host lab).
#
#   deploy/lab/loopback.sh up N     start N nodes (node 1 creates the overlay, the others join)
#   deploy/lab/loopback.sh status   one line per node
#   deploy/lab/loopback.sh down     stop them (SIGTERM: graceful Leave), keep the state dir
#   deploy/lab/loopback.sh kill I   SIGKILL node I (a crash: no Leave)
#   deploy/lab/loopback.sh start I  start node I again on its kept config and data
#
# Environment: P2PSIP (binary, default: target/debug/p2psip or `p2psip` on PATH),
# LAB_DIR (state dir, default /tmp/p2psip-lab), BASE_PORT (default 16000): node i uses
# SIP BASE+10i (udp+tcp), overlay BASE+10i+1, admin BASE+10i+2; node 1's enrollment server
# BASE+5. LAB_PASSWORD: the enrollment password (default lab-enrollment-password). Admin /debug
# paths are on.
# LAB_EXTRA_CONFIG: a YAML file appended to every node's config.yaml (e.g. `users:` and
# `log:` for benchmarks; it must not repeat the keys written here: overlay, sip, admin).
set -euo pipefail

LAB_DIR=${LAB_DIR:-/tmp/p2psip-lab}
BASE_PORT=${BASE_PORT:-16000}
LAB_PASSWORD=${LAB_PASSWORD:-lab-enrollment-password}
ENROLL_PORT=$((BASE_PORT + 5))
here=$(cd "$(dirname "$0")/../.." && pwd)
if [[ -z "${P2PSIP:-}" ]]; then
  for c in "${CARGO_TARGET_DIR:-$here/target}/debug/p2psip" "${CARGO_TARGET_DIR:-$here/target}/release/p2psip"; do
    [[ -x "$c" ]] && P2PSIP=$c && break
  done
  P2PSIP=${P2PSIP:-p2psip}
fi

node_id() { # admin address -> Node-ID (from /status)
  curl -s --max-time 2 "http://$1/status" | sed -n 's/.*"node_id":"\([0-9a-f]*\)".*/\1/p'
}

wait_admin() { # addr: wait until /status answers (bounded)
  for _ in $(seq 1 100); do
    curl -s --max-time 1 "http://$1/status" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "node with admin $1 did not come up; see its log" >&2
  return 1
}

up() {
  local n=${1:?usage: up N}
  mkdir -p "$LAB_DIR"
  local boot=""
  for i in $(seq 1 "$n"); do
    local d="$LAB_DIR/node$i" sip=$((BASE_PORT + 10 * i)) ov=$((BASE_PORT + 10 * i + 1)) adm=$((BASE_PORT + 10 * i + 2))
    mkdir -p "$d"
    # Node 1 holds the overlay CA and serves enrollment; the others join with its address
    # and the enrollment password (docs/SECURITY.md "Joining with a password").
    local enroll="  enrollment: {listen: \"127.0.0.1:$ENROLL_PORT\", password: \"$LAB_PASSWORD\"}"
    [[ $i -gt 1 ]] && enroll="  enrollment: {password: \"$LAB_PASSWORD\", server: \"https://127.0.0.1:$ENROLL_PORT/enroll\"}"
    cat >"$d/config.yaml" <<CFG
overlay:
  instance_name: lab.p2psip
  node_user: node$i
  listen: "127.0.0.1:$ov"
  bootstrap: [$boot]
  discovery: {enabled: false}
$enroll
sip:
  udp: ["127.0.0.1:$sip"]
  tcp: ["127.0.0.1:$sip"]
admin:
  listen: "127.0.0.1:$adm"
  debug: true
CFG
    if [[ -n "${LAB_EXTRA_CONFIG:-}" ]]; then cat "$LAB_EXTRA_CONFIG" >>"$d/config.yaml"; fi
    # $! must be the node itself (not a subshell around it), so that `down` signals the node.
    (cd "$d" && { nohup "$P2PSIP" >"$d/log" 2>&1 & echo $! >"$d/pid"; })
    wait_admin "127.0.0.1:$adm"
    [[ $i -eq 1 ]] && boot="\"127.0.0.1:$ov\""
    echo "node$i  sip 127.0.0.1:$sip  admin 127.0.0.1:$adm  overlay 127.0.0.1:$ov  Node-ID $(node_id 127.0.0.1:$adm)"
  done
}

status() {
  for d in "$LAB_DIR"/node*; do
    [[ -f "$d/pid" ]] || continue
    local i=${d##*node} adm=$((BASE_PORT + 10 * ${d##*node} + 2))
    if kill -0 "$(cat "$d/pid")" 2>/dev/null; then
      echo "node$i pid $(cat "$d/pid") $(curl -s --max-time 2 "http://127.0.0.1:$adm/status")"
    else
      echo "node$i not running"
    fi
  done
}

down() {
  for d in "$LAB_DIR"/node*; do
    [[ -f "$d/pid" ]] || continue
    local pid; pid=$(cat "$d/pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$d/pid"
    echo "stopped ${d##*/}"
  done
}

kill_node() {
  local d="$LAB_DIR/node$1"
  [[ -f "$d/pid" ]] || { echo "node$1 is not running" >&2; return 1; }
  kill -KILL "$(cat "$d/pid")" 2>/dev/null || true
  rm -f "$d/pid"
  echo "killed node$1 (SIGKILL)"
}

start_node() {
  local i=$1 d="$LAB_DIR/node$1" adm=$((BASE_PORT + 10 * $1 + 2))
  [[ -f "$d/config.yaml" ]] || { echo "node$i was never set up (run up first)" >&2; return 1; }
  (cd "$d" && { nohup "$P2PSIP" >>"$d/log" 2>&1 & echo $! >"$d/pid"; })
  wait_admin "127.0.0.1:$adm"
  echo "node$i  admin 127.0.0.1:$adm  Node-ID $(node_id 127.0.0.1:$adm)"
}

case "${1:-}" in
  up) up "${2:-3}" ;;
  kill) kill_node "${2:?usage: kill I}" ;;
  start) start_node "${2:?usage: start I}" ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up N | status | down | kill I | start I" >&2; exit 2 ;;
esac
