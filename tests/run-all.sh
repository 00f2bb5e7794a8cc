#!/usr/bin/env bash
# Runs the whole p2psip test suite.
#
# First it installs what the tests need from Debian (tshark for the Wireshark checks, SIPp,
# baresip, Kamailio, coturn, iproute2/iptables for the network-namespace lab, chromium and a font
# for the status page test, dnsmasq for the RFC 3263 trunk test) when any of it is missing; it
# is safe to run again. Then it runs every Rust test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(tshark sip-tester baresip kamailio coturn iproute2 iptables chromium fonts-dejavu-core dnsmasq-base)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "run-all: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# A build cache outside the checkout lets repeated runs (and CI) reuse earlier builds.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/p2psip-target}"
# `reload/fuzzing` also runs tests/fuzz_seeds.rs: the fuzz seed corpus and every hostile input
# ever found, replayed through the fuzz checks. One feature set, so nothing is built twice.
cargo build --workspace --all-targets --locked --features reload/fuzzing
cargo test --workspace --locked --features reload/fuzzing
