#!/usr/bin/env bash
# Every p2psip benchmark in one command, bounded in time (about 15 minutes), loopback only:
#   1. REGISTER with digest: one p2psip node, a 3-node overlay, Kamailio (register.sh)
#   2. calls through the stateful proxy: p2psip vs Kamailio (calls.sh)
#   3. overlay Fetch/Store latency and throughput on 5 processes (overlay.sh)
#   4. the simulator at 1,000 and 10,000 nodes (p2psip sim)
# Output goes to the terminal and to $OUT (default /tmp/p2psip-bench-<date>.txt), with the
# machine it ran on. Copy the figures into docs/BENCHMARKS.md. Builds p2psip in release mode
# once unless P2PSIP_BIN is set. Needs sipp, kamailio, curl.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/p2psip-bench-$(date -u +%Y%m%dT%H%M%SZ).txt}
if [ -z "${P2PSIP_BIN:-}" ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/p2psip-target}"
  cargo build --release --bin p2psip -q
  export P2PSIP_BIN="$CARGO_TARGET_DIR/release/p2psip"
fi
export P2PSIP=$P2PSIP_BIN
{
  echo "# p2psip benchmarks, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "# machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr), load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo; echo "## REGISTER (deploy/bench/register.sh)"
  timeout 900 deploy/bench/register.sh || echo "register.sh failed: $?"
  echo; echo "## Calls (deploy/bench/calls.sh)"
  timeout 600 deploy/bench/calls.sh || echo "calls.sh failed: $?"
  echo; echo "## Overlay Fetch/Store (deploy/bench/overlay.sh 2000 16)"
  timeout 300 deploy/bench/overlay.sh 2000 16 || echo "overlay.sh failed: $?"
  echo; echo "## Simulator (p2psip sim)"
  timer=()
  [ -x /usr/bin/time ] && timer=(/usr/bin/time -f "peak RSS %M kB, wall %e s")
  for n in 1000 10000; do
    "${timer[@]}" timeout 600 "$P2PSIP_BIN" sim --nodes "$n" --seed 1 --lookups 100000 --json 2>&1 \
      || echo "sim $n failed: $?"
  done
} 2>&1 | tee "$OUT"
echo "results in $OUT"
