# Shared by the deploy/bench scripts (sourced, not run): builds p2psip, keeps a work directory
# and the child processes, and starts p2psip and Kamailio on loopback.
# Expects ROOT (the repository) to be set by the caller.

if [ -z "${P2PSIP_BIN:-}" ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/p2psip-target}"
  cargo build --release --bin p2psip -q
  P2PSIP_BIN="$CARGO_TARGET_DIR/release/p2psip"
fi

WORK=$(mktemp -d)
PIDS=()
LABS=()
cleanup() {
  for l in "${LABS[@]}"; do LAB_DIR=$l "$ROOT/deploy/lab/loopback.sh" down >/dev/null 2>&1 || true; done
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Runs p2psip on $WORK/p2psip/config.yaml and waits until it is up; sets PORT (SIP/UDP).
run_p2psip() {
  (cd "$WORK/p2psip" && RUST_LOG=info exec "$P2PSIP_BIN" > node.log 2>&1) &
  PIDS+=($!)
  for _ in $(seq 1 100); do
    PORT=$(grep -o 'SIP listening on udp 127.0.0.1:[0-9]*' "$WORK/p2psip/node.log" 2>/dev/null | grep -o '[0-9]*$' || true)
    [ -n "$PORT" ] && grep -q 'node is up' "$WORK/p2psip/node.log" && return 0
    sleep 0.1
  done
  echo "p2psip did not start:"; cat "$WORK/p2psip/node.log"; exit 1
}

# start_kamailio_with CFG: Kamailio on a free loopback UDP port; sets PORT.
start_kamailio_with() {
  command -v kamailio >/dev/null || { echo "kamailio is not installed; skipping it"; return 1; }
  PORT=$(free_port)
  kamailio -DD -E -f "$1" -l "udp:127.0.0.1:$PORT" \
    -m 128 -M 16 > "$WORK/kamailio.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 100); do
    grep -q "Listening on" "$WORK/kamailio.log" 2>/dev/null && { sleep 0.5; return 0; }
    sleep 0.1
  done
  echo "kamailio did not start:"; cat "$WORK/kamailio.log"; return 1
}

# start_lab N [EXTRA_CONFIG]: N nodes with deploy/lab/loopback.sh under $WORK/lab (stopped on
# exit); sets LAB_BASE (node i: SIP BASE+10i, overlay +1, admin +2) and PORT (node 1's SIP/UDP).
start_lab() {
  local n=$1 extra=${2:-}
  LAB_BASE=$(( (RANDOM % 200) * 100 + 20000 ))
  LABS+=("$WORK/lab")
  LAB_DIR="$WORK/lab" BASE_PORT=$LAB_BASE P2PSIP=$P2PSIP_BIN LAB_EXTRA_CONFIG=$extra \
    "$ROOT/deploy/lab/loopback.sh" up "$n"
  PORT=$((LAB_BASE + 10))
  # Wait until every node sees a successor (the ring is formed), bounded.
  for _ in $(seq 1 100); do
    local ok=1
    for i in $(seq 1 "$n"); do
      curl -s --max-time 1 "http://127.0.0.1:$((LAB_BASE + 10 * i + 2))/status" | grep -q '"successors":\["' || ok=0
    done
    [ "$ok" = 1 ] && return 0
    sleep 0.2
  done
  echo "the $n-node lab did not form a ring"; return 1
}

# stop_lab: stops the lab started by start_lab.
stop_lab() {
  LAB_DIR="$WORK/lab" "$ROOT/deploy/lab/loopback.sh" down >/dev/null 2>&1 || true
  rm -rf "$WORK/lab"
}
