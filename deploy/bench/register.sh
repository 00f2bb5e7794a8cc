#!/usr/bin/env bash
# REGISTER throughput of one p2psip node, and of Kamailio as a reference, on loopback.
#
# SIPp runs deploy/sipp/register.xml (REGISTER, 401, REGISTER with MD5 digest, 200) for
# 1000 users at increasing call rates, STEP_SECS seconds per rate, and stops at the first
# rate with a failed call or that was not reached (below 90 %). For each rate it prints the
# rate SIPp reached, failed calls and the response time of the whole registration (both
# round trips) at p50/p99 (SIPp measures whole milliseconds), from -trace_rtt.
#
#   deploy/bench/register.sh                 # both targets
#   TARGETS=p2psip deploy/bench/register.sh  # only p2psip
#   TARGETS=overlay3 deploy/bench/register.sh # 3-node overlay (deploy/lab/loopback.sh):
#                                             # SIPp registers at node 1, each REGISTER is
#                                             # stored in the overlay (signed Store, replicas)
#   RATES="500 1000" STEP_SECS=5 deploy/bench/register.sh
#
# Needs sipp (Debian sip-tester) and, for the reference, kamailio. Builds p2psip in release
# mode unless P2PSIP_BIN points at a binary. Runs at most a few minutes; loopback only.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

RATES=${RATES:-"500 1000 2000 4000 8000"}
STEP_SECS=${STEP_SECS:-8}
USERS=${USERS:-1000}
TARGETS=${TARGETS:-"p2psip overlay3 kamailio"}

command -v sipp >/dev/null || { echo "register.sh: sipp is not installed (apt install sip-tester)"; exit 1; }

# shellcheck source=deploy/bench/lib.sh
source "$ROOT/deploy/bench/lib.sh"

# Users u0..u(N-1), all with password "bench".
{
  echo SEQUENTIAL
  for i in $(seq 0 $((USERS - 1))); do echo "u$i;[authentication username=u$i password=bench]"; done
} > "$WORK/users.csv"

start_p2psip() {
  mkdir -p "$WORK/p2psip"
  {
    printf 'sip:\n  udp: ["127.0.0.1:0"]\n  tcp: []\n'
    printf 'registrar:\n  digest_algorithms: [MD5]\n'
    printf 'log:\n  level: warn\n'
    printf 'users:\n'
    for i in $(seq 0 $((USERS - 1))); do printf '  - {name: "u%s", password: bench}\n' "$i"; done
  } > "$WORK/p2psip/config.yaml"
  run_p2psip
}

bench_users_yaml() {
  printf 'registrar:\n  digest_algorithms: [MD5]\n'
  printf 'log:\n  level: warn\n'
  printf 'users:\n'
  for i in $(seq 0 $((USERS - 1))); do printf '  - {name: "u%s", password: bench}\n' "$i"; done
}

start_overlay3() {
  bench_users_yaml > "$WORK/lab-extra.yaml"
  start_lab 3 "$WORK/lab-extra.yaml" > "$WORK/lab-up.txt"
}

start_kamailio() {
  start_kamailio_with "$ROOT/deploy/bench/kamailio-registrar.cfg"
}

# run_step TARGET RATE: one SIPp run; prints a result line; returns 1 on failed calls.
run_step() {
  local target=$1 rate=$2 dir="$WORK/$1-$2"
  mkdir -p "$dir"
  local calls=$((rate * STEP_SECS)) lport
  lport=$(free_port)
  local code=0
  (cd "$dir" && timeout $((STEP_SECS * 4 + 20)) sipp "127.0.0.1:$PORT" \
      -sf "$ROOT/deploy/sipp/register.xml" -inf "$WORK/users.csv" \
      -set expires 3600 -set domain p2psip.local \
      -i 127.0.0.1 -p "$lport" -r "$rate" -m "$calls" -l $((rate * 2 + 100)) \
      -timeout $((STEP_SECS * 3 + 10))s -nostdin -trace_rtt -rtt_freq 1 > sipp.out 2>&1) || code=$?
  local rtt ok failed reached p50 p99
  rtt=$(ls "$dir"/*_rtt.csv 2>/dev/null | head -1 || true)
  ok=0
  [ -n "$rtt" ] && ok=$(grep -c '^[0-9]' "$rtt" || true)
  failed=$((calls - ok))
  # Rate reached: completed registrations over the span between the first and last one.
  reached=0
  [ -n "$rtt" ] && reached=$(awk -F';' '/^[0-9]/ { if (!f) f = $1; l = $1; n++ }
    END { if (n > 1 && l > f) printf "%.1f", (n - 1) * 1000 / (l - f); else print 0 }' "$rtt")
  if [ -n "$rtt" ] && [ "$ok" -gt 0 ]; then
    p50=$(cut -d';' -f2 "$rtt" | grep '^[0-9]' | sort -n | awk '{a[NR]=$1} END {print a[int((NR-1)*0.50)+1]}')
    p99=$(cut -d';' -f2 "$rtt" | grep '^[0-9]' | sort -n | awk '{a[NR]=$1} END {print a[int((NR-1)*0.99)+1]}')
  else
    p50=-; p99=-
  fi
  printf '%-9s rate %5d/s  reached %7s/s  calls %6d  failed %5d  p50 %6s ms  p99 %6s ms\n' \
    "$target" "$rate" "$reached" "$calls" "$failed" "$p50" "$p99"
  # Passed: no failed call, and SIPp reached at least 90 % of the asked rate.
  [ "$failed" -eq 0 ] && [ "$code" -eq 0 ] && awk -v r="$reached" -v t="$rate" 'BEGIN { exit !(r >= 0.9 * t) }'
}

for target in $TARGETS; do
  case $target in
    p2psip) start_p2psip ;;
    overlay3) start_overlay3 ;;
    kamailio) start_kamailio || continue ;;
    *) echo "unknown target $target"; continue ;;
  esac
  best=0
  for rate in $RATES; do
    if run_step "$target" "$rate"; then best=$rate; else break; fi
  done
  echo "$target: highest rate sustained with no failed call: $best registrations (REGISTER, 401, REGISTER, 200) per second"
  if [ "$target" = overlay3 ]; then
    stop_lab
  else
    kill "${PIDS[-1]}" 2>/dev/null || true
    wait "${PIDS[-1]}" 2>/dev/null || true
  fi
done
