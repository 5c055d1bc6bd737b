#!/usr/bin/env bash
# Memory under a rush of 1,000,000 distinct buyers against the memory server (issue #12.6):
# two rushes of 1,000,000 new buyers each (holds only: 100,000 seats, 900,000 refused per rush),
# each followed by the retention window (short here: 60 s holds and idempotency retention;
# admissions last ACTIVE seconds, longer than admitting a million buyers over HTTP takes, and
# are forgotten ACTIVE seconds after they lapse). Resident memory after a rush and its window
# must come back down, and a second rush must not add to it: what is kept follows the live
# load, not every buyer ever seen.
#   scripts/million.sh [buyers=1000000] [window-secs=60] [active-secs=600] [rounds=2]
# Needs release builds: cargo build --release -p ticketing-server && cargo build --release --example rush
set -euo pipefail
cd "$(dirname "$0")/.."
BUYERS=${1:-1000000}
WINDOW=${2:-60}
ACTIVE=${3:-600}
ROUNDS=${4:-2}
PORT=18081
BIN=target/release/examples
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
TICKETING_ADDR=127.0.0.1:$PORT TICKETING_RATE_PER_CLIENT=0 TICKETING_QUEUE_ADMIT_PER_SEC=1000000 \
  TICKETING_QUEUE_MAX_ACTIVE=2000000 TICKETING_DEMO_CONCERTS=1 TICKETING_DEMO_SEATS=100000 \
  TICKETING_HOLD_TTL_SECS=$WINDOW TICKETING_QUEUE_ACTIVE_TTL_SECS=$ACTIVE \
  TICKETING_RETENTION_SECS=$WINDOW RUST_LOG=warn target/release/ticketing-server &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
echo "server RSS at start: $(rss $SERVER) KiB"
for round in $(seq 1 "$ROUNDS"); do
  first=$(( (round - 1) * BUYERS + 1 ))
  start=$(date +%s)
  "$BIN/rush" --http "http://127.0.0.1:$PORT" --buyers "$BUYERS" --first-user "$first" \
    --seats 100000 --concurrency 64 --holds-only --max-seconds 600 --quiet --json \
    | jq -c '.runs[0] | {buyers, holds, conflicts, errors, oversold_seats, elapsed_s: (.elapsed_s|floor)}'
  echo "round $round: rush took $(( $(date +%s) - start )) s; server RSS right after: $(rss $SERVER) KiB"
  curl -s "http://127.0.0.1:$PORT/metrics" | grep -E '^ticketing_memory_records' || true
  # Admissions lapse after ACTIVE and are forgotten ACTIVE later; holds expire after WINDOW.
  for minute in $(seq 1 $(( (2 * ACTIVE + WINDOW + 59) / 60 ))); do
    sleep 60
    echo "  +${minute} min: server RSS $(rss $SERVER) KiB"
  done
  echo "round $round: server RSS after the window: $(rss $SERVER) KiB"
  curl -s "http://127.0.0.1:$PORT/metrics" | grep -E '^ticketing_(memory_records|expiries_total)' || true
done
