#!/usr/bin/env bash
# Soak: a bounded run of REGISTER and call load on a 3-node overlay (deploy/lab/loopback.sh),
# with one node killed (SIGKILL) and restarted half way. It passes when
#   * no REGISTER and no call failed (SIPp counts),
#   * no node's resident memory exceeded MEM_BOUND_MB, and the memory of the nodes that ran
#     throughout grew by less than GROWTH_PCT between the end of the warm-up and the end (the
#     warm-up is the first quarter, at least 90 s: SIP transactions over UDP are kept 32 s after
#     they complete (RFC 3261 timers J and K), so memory first grows with the load for ~40 s),
#   * every registered user is still fetchable from the overlay at every node afterwards
#     (no registration lost).
#
#   deploy/bench/soak.sh                                   # 10 minutes, default rates
#   DURATION=120 REG_RATE=100 CALL_RATE=10 deploy/bench/soak.sh
#
# Load: SIPp registers USERS users (password "bench") at node 1 and node 3 (half each, REG_RATE
# REGISTER+401+REGISTER per second in all, expires 3600: every REGISTER refreshes the overlay
# entry), and SIPp places CALL_RATE calls per second (INVITE/407/INVITE/180/200/ACK/BYE) from
# a phone on node 1 to a phone registered at CALLEE_NODE (1 = same node; 3 = across the
# overlay; the default). Node 2 is killed at DURATION/2 and started again 5 s later. The
# defaults are 80 % of the mixed capacity measured on this machine (docs/BENCHMARKS.md): half
# the REGISTER maximum of the 3-node overlay (1000/s) plus half its call maximum (200/s), each
# at 80 %: 400 REGISTER/s and 80 calls/s. Set them from your own register.sh / calls.sh
# figures. Needs sipp and curl. Builds p2psip in release mode unless P2PSIP_BIN is set.
# Stops by itself after about DURATION + 60 s; loopback only.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

DURATION=${DURATION:-600}
REG_RATE=${REG_RATE:-400}
CALL_RATE=${CALL_RATE:-80}
USERS=${USERS:-200}
CALLEE_NODE=${CALLEE_NODE:-3}
MEM_BOUND_MB=${MEM_BOUND_MB:-256}
GROWTH_PCT=${GROWTH_PCT:-25}

command -v sipp >/dev/null || { echo "soak.sh: sipp is not installed (apt install sip-tester)"; exit 1; }
command -v curl >/dev/null || { echo "soak.sh: curl is not installed"; exit 1; }

# shellcheck source=deploy/bench/lib.sh
source "$ROOT/deploy/bench/lib.sh"

{
  printf 'registrar:\n  digest_algorithms: [MD5]\n  max_expires: 7200\n'
  printf 'log:\n  level: warn\n'
  printf 'users:\n'
  for i in $(seq 0 $((USERS - 1))); do printf '  - {name: "u%s", password: bench}\n' "$i"; done
  printf '  - {name: "caller", password: bench}\n  - {name: "callee", password: bench}\n'
} > "$WORK/extra.yaml"
half=$((USERS / 2))
{ echo SEQUENTIAL; for i in $(seq 0 $((half - 1))); do echo "u$i;[authentication username=u$i password=bench]"; done; } > "$WORK/users-a.csv"
{ echo SEQUENTIAL; for i in $(seq "$half" $((USERS - 1))); do echo "u$i;[authentication username=u$i password=bench]"; done; } > "$WORK/users-b.csv"
printf 'SEQUENTIAL\ncaller;[authentication username=caller password=bench]\n' > "$WORK/caller.csv"
printf 'SEQUENTIAL\ncallee;[authentication username=callee password=bench]\n' > "$WORK/callee.csv"

echo "soak: starting a 3-node overlay"
start_lab 3 "$WORK/extra.yaml"
sip_of() { echo "127.0.0.1:$((LAB_BASE + 10 * $1))"; }
adm_of() { echo "127.0.0.1:$((LAB_BASE + 10 * $1 + 2))"; }
pid_of() { cat "$WORK/lab/node$1/pid"; }
lab() { LAB_DIR="$WORK/lab" BASE_PORT=$LAB_BASE P2PSIP=$P2PSIP_BIN "$ROOT/deploy/lab/loopback.sh" "$@"; }

# The called phone.
CALLEE_PORT=$(free_port)
mkdir -p "$WORK/callee"
(cd "$WORK/callee" && timeout 20 sipp "$(sip_of "$CALLEE_NODE")" -sf "$ROOT/deploy/sipp/register.xml" \
    -inf "$WORK/callee.csv" -set expires 7200 -set domain p2psip.local \
    -i 127.0.0.1 -p "$CALLEE_PORT" -m 1 -nostdin > register.out 2>&1) \
  || { echo "soak: the callee could not register"; exit 1; }
(cd "$WORK/callee" && exec sipp "$(sip_of "$CALLEE_NODE")" -sf "$ROOT/deploy/sipp/uas.xml" -set user callee \
    -i 127.0.0.1 -p "$CALLEE_PORT" -nostdin > uas.out 2>&1) &
PIDS+=($!)

# sipp_load NAME NODE SCENARIO CSV RATE ARGS...: a bounded SIPp load in $WORK/NAME.
sipp_load() {
  local name=$1 node=$2 sf=$3 csv=$4 rate=$5; shift 5
  mkdir -p "$WORK/$name"
  (cd "$WORK/$name" && timeout $((DURATION + 60)) sipp "$(sip_of "$node")" -sf "$ROOT/deploy/sipp/$sf" \
      -inf "$csv" -set domain p2psip.local -i 127.0.0.1 -p "$(free_port)" \
      -r "$rate" -m $((rate * DURATION)) -l $((rate * 4 + 100)) -timeout $((DURATION + 40))s \
      -nostdin -trace_stat -fd 5 "$@" > sipp.out 2>&1; echo $? > rc) &
  PIDS+=($!)
}

echo "soak: ${DURATION}s of $REG_RATE REGISTER/s (nodes 1, 3) and $CALL_RATE calls/s (node 1 -> node $CALLEE_NODE)"
sipp_load reg-a 1 register.xml "$WORK/users-a.csv" $((REG_RATE / 2)) -set expires 3600
sipp_load reg-b 3 register.xml "$WORK/users-b.csv" $((REG_RATE - REG_RATE / 2)) -set expires 3600
if [ "$CALL_RATE" -gt 0 ]; then
  sipp_load calls 1 uac.xml "$WORK/caller.csv" "$CALL_RATE" -set callee callee
fi

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
echo "t_s,node1_kb,node2_kb,node3_kb" > "$WORK/rss.csv"
start=$(date +%s)
killed=0
while :; do
  t=$(( $(date +%s) - start ))
  [ "$t" -ge "$DURATION" ] && break
  echo "$t,$(rss_kb "$(pid_of 1)"),$( [ -f "$WORK/lab/node2/pid" ] && rss_kb "$(pid_of 2)" || echo 0),$(rss_kb "$(pid_of 3)")" >> "$WORK/rss.csv"
  if [ "$killed" = 0 ] && [ "$t" -ge $((DURATION / 2)) ]; then
    echo "soak: t=${t}s killing node 2 (SIGKILL)"
    lab kill 2
    sleep 5
    lab start 2 | sed 's/^/soak: restarted /'
    killed=1
  fi
  sleep 5
done

echo "soak: load done, waiting for SIPp to finish"
for n in reg-a reg-b calls; do
  [ -d "$WORK/$n" ] || continue
  for _ in $(seq 1 120); do [ -f "$WORK/$n/rc" ] && break; sleep 0.5; done
done

fail=0
for n in reg-a reg-b calls; do
  [ -d "$WORK/$n" ] || continue
  stat=$(ls "$WORK/$n"/*_.csv 2>/dev/null | head -1 || true)
  ok=- failed=-
  if [ -n "$stat" ]; then
    # Columns of SIPp's -trace_stat: SuccessfulCall(C) and FailedCall(C) (cumulative).
    ok=$(awk -F';' 'NR==1 { for (i=1;i<=NF;i++) { if ($i=="SuccessfulCall(C)") s=i; if ($i=="FailedCall(C)") f=i } } END { print $s }' "$stat")
    failed=$(awk -F';' 'NR==1 { for (i=1;i<=NF;i++) { if ($i=="FailedCall(C)") f=i } } END { print $f }' "$stat")
  fi
  echo "soak: $n: successful $ok, failed $failed, sipp exit $(cat "$WORK/$n/rc" 2>/dev/null || echo '?')"
  [ "$failed" = 0 ] || fail=1
done

# Memory: peak per node, and growth from the end of warm-up to the end for nodes 1 and 3.
peak_mb=$(awk -F, 'NR>1 { for (i=2;i<=4;i++) if ($i>m) m=$i } END { printf "%d", m/1024 }' "$WORK/rss.csv")
warm=$((DURATION / 4)); [ "$warm" -lt 90 ] && warm=90
read -r w1 w3 e1 e3 < <(awk -F, -v w="$warm" 'NR>1 { if ($1 <= w) { a=$2; b=$4 } x=$2; y=$4 } END { print a, b, x, y }' "$WORK/rss.csv")
echo "soak: resident memory: peak ${peak_mb} MB (bound ${MEM_BOUND_MB} MB); node1 $((w1 / 1024)) -> $((e1 / 1024)) MB, node3 $((w3 / 1024)) -> $((e3 / 1024)) MB from the end of the ${warm} s warm-up to the end"
[ "$peak_mb" -le "$MEM_BOUND_MB" ] || { echo "soak: FAIL memory bound exceeded"; fail=1; }
for pair in "$w1 $e1" "$w3 $e3"; do
  set -- $pair
  awk -v a="$1" -v b="$2" -v g="$GROWTH_PCT" 'BEGIN { exit !(a > 0 && b <= a * (1 + g / 100)) }' \
    || { echo "soak: FAIL memory grew more than ${GROWTH_PCT}% after warm-up ($1 -> $2 kB)"; fail=1; }
done

# Registrations: every user must be fetchable at every node.
lost=0
for node in 1 2 3; do
  missing=0
  for i in $(seq 0 $((USERS - 1))); do
    got=""
    for _ in 1 2 3; do
      got=$(curl -s --max-time 5 "http://$(adm_of "$node")/debug/fetch?user=u$i@p2psip.local" || true)
      echo "$got" | grep -q '"values":\[[^]]' && break
      sleep 1
    done
    echo "$got" | grep -q '"values":\[[^]]' || missing=$((missing + 1))
  done
  echo "soak: node $node: $((USERS - missing)) of $USERS registrations fetched from the overlay"
  lost=$((lost + missing))
done
[ "$lost" -eq 0 ] || { echo "soak: FAIL registrations lost"; fail=1; }
cp "$WORK/rss.csv" "${SOAK_RSS_OUT:-/tmp/p2psip-soak-rss.csv}"
echo "soak: memory samples in ${SOAK_RSS_OUT:-/tmp/p2psip-soak-rss.csv}"
if [ "$fail" = 0 ]; then echo "soak: PASS"; else echo "soak: FAIL"; exit 1; fi
