#!/usr/bin/env bash
# What made-up queue tokens cost the memory server (issue #12.5): resident memory and the hold
# latency of admitted buyers, without and with an attacker sending random 8 KB tokens.
#   scripts/hostile.sh [attack-rate=2000] [attack-seconds=60]
# Needs release builds: cargo build --release -p ticketing-server && cargo build --release --example rush --example flood
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-2000}
SECS=${2:-60}
PORT=18080
BIN=target/release/examples
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
TICKETING_ADDR=127.0.0.1:$PORT TICKETING_RATE_PER_CLIENT=0 TICKETING_QUEUE_ADMIT_PER_SEC=1000000 \
  TICKETING_QUEUE_MAX_ACTIVE=1000000 TICKETING_DEMO_CONCERTS=1 TICKETING_DEMO_SEATS=100000 \
  RUST_LOG=warn target/release/ticketing-server &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
rush() { "$BIN/rush" --http "http://127.0.0.1:$PORT" --buyers "$1" --first-user "$3" --seats 100000 --concurrency 64 \
  --max-seconds "$2" --quiet --json | jq -c '.runs[0] | {buyers, paid_per_s: (.confirms_per_s|floor), errors, hold_p50_ms: .latency.hold.p50_ms, hold_p99_ms: .latency.hold.p99_ms, pay_p99_ms: .latency.pay.p99_ms}'; }
echo "server RSS at start: $(rss $SERVER) KiB"
base=$(rush 20000 20 1)
echo "baseline (no attack): $base"
echo "server RSS after the baseline rush: $(rss $SERVER) KiB"
# The attack alone: what it costs in memory.
before=$(rss $SERVER)
"$BIN/flood" --url "http://127.0.0.1:$PORT" --rate "$RATE" --seconds "$SECS" &
FLOOD=$!
peak=$before
while kill -0 $FLOOD 2>/dev/null; do
  r=$(rss $SERVER); [ "$r" -gt "$peak" ] && peak=$r; sleep 1
done
wait $FLOOD || true
after=$(rss $SERVER)
echo "attack alone: server RSS before ${before} KiB, peak ${peak} KiB (+$((peak - before)) KiB), after ${after} KiB"
# The attack beside admitted buyers: what it costs them in latency.
"$BIN/flood" --url "http://127.0.0.1:$PORT" --rate "$RATE" --seconds 30 >/dev/null &
FLOOD=$!
sleep 3
under=$(rush 20000 20 1000001)
echo "admitted buyers during the attack: $under"
wait $FLOOD || true
