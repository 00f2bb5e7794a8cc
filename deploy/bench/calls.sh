#!/usr/bin/env bash
# Call throughput of one p2psip node as a stateful proxy, of a 3-node p2psip overlay (caller
# at node A, callee registered at node C: Fetch, AppAttach, inter-node SIP over TLS), and of
# Kamailio (tm + registrar, deploy/bench/kamailio-proxy.cfg) as a reference, on loopback.
#
# The callee "1001" registers from a SIPp UAS (deploy/sipp/register.xml, then uas.xml on
# the same port); a SIPp UAC as "1000" runs deploy/sipp/uac.xml (INVITE, 407, ACK, INVITE
# with Proxy-Authorization, 180, 200, ACK, BYE, 200) at increasing call rates, STEP_SECS
# seconds per rate, and stops at the first rate with a failed call or that was not reached
# (below 90 %). For each rate: the rate reached, failed calls and the setup time (first
# INVITE to 200 OK, so both round trips of the 407 exchange) at p50/p99 in whole ms.
#
#   deploy/bench/calls.sh                   # all three targets
#   TARGETS=p2psip deploy/bench/calls.sh    # only p2psip
#   RATES="100 200" STEP_SECS=5 deploy/bench/calls.sh
#
# Needs sipp and, for the reference, kamailio. Builds p2psip in release mode unless
# P2PSIP_BIN points at a binary. Bounded to about 3 minutes; loopback only.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

RATES=${RATES:-"200 400 800 1600"}
STEP_SECS=${STEP_SECS:-8}
TARGETS=${TARGETS:-"p2psip overlay kamailio"}

command -v sipp >/dev/null || { echo "calls.sh: sipp is not installed (apt install sip-tester)"; exit 1; }

# shellcheck source=deploy/bench/lib.sh
source "$ROOT/deploy/bench/lib.sh"

printf 'SEQUENTIAL\n1000;[authentication username=1000 password=bench]\n' > "$WORK/caller.csv"
printf 'SEQUENTIAL\n1001;[authentication username=1001 password=bench]\n' > "$WORK/callee.csv"

start_p2psip() {
  mkdir -p "$WORK/p2psip"
  printf 'sip:\n  udp: ["127.0.0.1:0"]\n  tcp: []\nregistrar:\n  digest_algorithms: [MD5]\nlog:\n  level: warn\nusers:\n  - {name: "1000", password: bench}\n  - {name: "1001", password: bench}\n' \
    > "$WORK/p2psip/config.yaml"
  run_p2psip
}

# A 3-node overlay sharing node A's CA (the lab mode); PORT is A's SIP/UDP port (the
# caller's node), CALLEE_NODE C's (where the callee registers).
start_overlay() {
  local boot="" n port ov
  OV_PIDS=()
  for n in a b c; do
    mkdir -p "$WORK/ov-$n/data"
    [ "$n" = a ] || cp -r "$WORK/ov-a/data/ca" "$WORK/ov-$n/data/"
    cat > "$WORK/ov-$n/config.yaml" <<EOF
sip:
  udp: ["127.0.0.1:0"]
  tcp: []
registrar:
  digest_algorithms: [MD5]
log:
  level: warn
users:
  - {name: "1000", password: bench}
  - {name: "1001", password: bench}
overlay:
  instance_name: bench.p2psip
  node_user: $n
  listen: "127.0.0.1:0"
  discovery: {enabled: false}
$boot
admin:
  listen: "127.0.0.1:0"
EOF
    (cd "$WORK/ov-$n" && RUST_LOG=info exec "$P2PSIP_BIN" > node.log 2>&1) &
    PIDS+=($!); OV_PIDS+=($!)
    port=""; ov=""
    for _ in $(seq 1 100); do
      port=$(grep -o 'SIP listening on udp 127.0.0.1:[0-9]*' "$WORK/ov-$n/node.log" 2>/dev/null | grep -o '[0-9]*$' || true)
      ov=$(grep -o 'listening on tls 127.0.0.1:[0-9]*' "$WORK/ov-$n/node.log" 2>/dev/null | head -1 | grep -o '127.*' || true)
      [ -n "$port" ] && [ -n "$ov" ] && grep -q 'node is up' "$WORK/ov-$n/node.log" && break
      sleep 0.1
    done
    [ -n "$port" ] || { echo "overlay node $n did not start:"; cat "$WORK/ov-$n/node.log"; exit 1; }
    case $n in a) PORT=$port; boot="  bootstrap: [\"$ov\"]" ;; c) CALLEE_NODE=$port ;; esac
  done
  for n in b c; do
    for _ in $(seq 1 100); do grep -q 'joined overlay' "$WORK/ov-$n/node.log" && break; sleep 0.1; done
  done
}

start_kamailio() {
  start_kamailio_with "$ROOT/deploy/bench/kamailio-proxy.cfg"
}

# The called phone: register from a port, then answer every call on it.
start_callee() {
  local dir="$WORK/$1-callee"
  mkdir -p "$dir"
  CALLEE_PORT=$(free_port)
  local node=${CALLEE_NODE:-$PORT}
  (cd "$dir" && timeout 20 sipp "127.0.0.1:$node" -sf "$ROOT/deploy/sipp/register.xml" \
      -inf "$WORK/callee.csv" -set expires 3600 -set domain p2psip.local \
      -i 127.0.0.1 -p "$CALLEE_PORT" -m 1 -nostdin > register.out 2>&1) \
    || { echo "$1: the callee could not register"; return 1; }
  if [ -n "${CALLEE_NODE:-}" ]; then
    # Wait until the registration is in the overlay (and a replica).
    for _ in $(seq 1 100); do
      grep -q 'stored registration of 1001' "$WORK/ov-c/node.log" && break
      sleep 0.1
    done
  fi
  (cd "$dir" && exec sipp "127.0.0.1:$node" -sf "$ROOT/deploy/sipp/uas.xml" -set user 1001 \
      -i 127.0.0.1 -p "$CALLEE_PORT" -nostdin > uas.out 2>&1) &
  UAS_PID=$!
  PIDS+=("$UAS_PID")
}

run_step() {
  local target=$1 rate=$2 dir="$WORK/$1-$2"
  mkdir -p "$dir"
  local calls=$((rate * STEP_SECS)) code=0
  (cd "$dir" && timeout $((STEP_SECS * 4 + 20)) sipp "127.0.0.1:$PORT" \
      -sf "$ROOT/deploy/sipp/uac.xml" -inf "$WORK/caller.csv" \
      -set callee 1001 -set domain p2psip.local \
      -i 127.0.0.1 -p "$(free_port)" -r "$rate" -m "$calls" -l $((rate * 2 + 100)) \
      -timeout $((STEP_SECS * 3 + 10))s -nostdin -trace_rtt -rtt_freq 1 > sipp.out 2>&1) || code=$?
  local rtt ok failed reached p50 p99
  rtt=$(ls "$dir"/*_rtt.csv 2>/dev/null | head -1 || true)
  ok=0
  [ -n "$rtt" ] && ok=$(grep -c '^[0-9]' "$rtt" || true)
  failed=$((calls - ok))
  [ "$code" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1
  reached=0
  [ -n "$rtt" ] && reached=$(awk -F';' '/^[0-9]/ { if (!f) f = $1; l = $1; n++ }
    END { if (n > 1 && l > f) printf "%.1f", (n - 1) * 1000 / (l - f); else print 0 }' "$rtt")
  if [ -n "$rtt" ] && [ "$ok" -gt 0 ]; then
    p50=$(cut -d';' -f2 "$rtt" | grep '^[0-9]' | sort -n | awk '{a[NR]=$1} END {print a[int((NR-1)*0.50)+1]}')
    p99=$(cut -d';' -f2 "$rtt" | grep '^[0-9]' | sort -n | awk '{a[NR]=$1} END {print a[int((NR-1)*0.99)+1]}')
  else
    p50=-; p99=-
  fi
  printf '%-9s rate %5d/s  reached %7s/s  calls %6d  failed %5d  setup p50 %6s ms  p99 %6s ms\n' \
    "$target" "$rate" "$reached" "$calls" "$failed" "$p50" "$p99"
  [ "$failed" -eq 0 ] && awk -v r="$reached" -v t="$rate" 'BEGIN { exit !(r >= 0.9 * t) }'
}

for target in $TARGETS; do
  case $target in
    p2psip) CALLEE_NODE=""; start_p2psip; NODE_PID=${PIDS[-1]} ;;
    overlay) start_overlay; NODE_PID="${OV_PIDS[*]}" ;;
    kamailio) CALLEE_NODE=""; start_kamailio || continue; NODE_PID=${PIDS[-1]} ;;
    *) echo "unknown target $target"; continue ;;
  esac
  start_callee "$target" || continue
  best=0
  for rate in $RATES; do
    if run_step "$target" "$rate"; then best=$rate; else break; fi
  done
  echo "$target: highest rate sustained with no failed call: $best calls (INVITE/407/INVITE/180/200/ACK/BYE) per second"
  kill "$UAS_PID" 2>/dev/null || true
  wait "$UAS_PID" 2>/dev/null || true
  for p in $NODE_PID; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
done
