#!/usr/bin/env bash
# Overlay benchmark on the 5-process loopback lab (deploy/lab/loopback.sh): each node stores
# one value under its user, then node 1 runs Fetch and Store loads from inside the process
# (admin POST /debug/bench: no HTTP per request) and prints p50/p99 latency and throughput.
#
#   deploy/bench/overlay.sh [N_REQUESTS] [CONCURRENCY]
# Environment: as loopback.sh (P2PSIP, LAB_DIR, BASE_PORT). Build with --release for figures.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export LAB_DIR=${LAB_DIR:-/tmp/p2psip-bench} BASE_PORT=${BASE_PORT:-18000}
N=${1:-2000}
C=${2:-16}
lab="$here/../lab/loopback.sh"
"$lab" down >/dev/null 2>&1 || true
rm -rf "$LAB_DIR"
trap '"$lab" down >/dev/null' EXIT
"$lab" up 5
admin() { echo "127.0.0.1:$((BASE_PORT + 10 * $1 + 2))"; }
# Wait (bounded) until every node is joined with a successor.
for i in 1 2 3 4 5; do
  for _ in $(seq 1 100); do
    curl -s "http://$(admin $i)/status" | grep -q '"joined":true,"links":\[{' && break
    sleep 0.1
  done
done
for i in 1 2 3 4 5; do
  for _ in $(seq 1 50); do
    curl -sf -XPOST --data "v$i" "http://$(admin $i)/debug/store" >/dev/null && break
    sleep 0.1
  done
done
users=node1,node2,node3,node4,node5
run() { curl -s -XPOST "http://$(admin 1)/debug/bench?$1"; echo; }
echo "# fetch, 1 at a time (round trip)"; run "op=fetch&n=$N&concurrency=1&users=$users"
echo "# fetch, $C concurrent (throughput)"; run "op=fetch&n=$N&concurrency=$C&users=$users"
echo "# store, 1 at a time"; run "op=store&n=$((N / 2))&concurrency=1"
echo "# store, $C concurrent"; run "op=store&n=$N&concurrency=$C"
