#!/usr/bin/env bash
# Seat maps under a rush (issue 13 item 7), every figure from one run on this machine:
#  1. wrk, 64 connections, GET .../seats of a 1,000-seat option with the catalog cache off
#     (TICKETING_CATALOG_CACHE_MS=0: every request reads the store) and on (250 ms), on the
#     memory store and on PostgreSQL;
#  2. a hold rush (rush --http --holds-only, 64 in flight) on a 100,000-seat option of the same
#     server, alone and then while `flood --get` asks at $RATE/s for the 1,000-seat map (plain,
#     gzip) or its compact availability form.
# Usage: DATABASE_URL=postgres://... scripts/seatmaps.sh   (SECS, RATE, BUYERS to change)
# Needs wrk and release builds:
#   cargo build --release -p ticketing-server && cargo build --release --example rush --example flood
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-10}
RATE=${RATE:-2000}
BUYERS=${BUYERS:-30000}
REPEAT=${REPEAT:-1}   # rounds of the hold-rush comparison (interleaved, to see the noise)
ONLY=${ONLY:-all}     # all | rush
DB=${DATABASE_URL:?set DATABASE_URL}
export PGOPTIONS="-c client_min_messages=warning"
PORT=${PORT:-18090}
SCHEMA=ticketing_seatmaps
SERVER=target/release/ticketing-server
RUSH=target/release/examples/rush
FLOOD=target/release/examples/flood
work=$(mktemp -d)
pid=
stop() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; pid=; }
cleanup() { stop || true; rm -rf "$work"; psql "$DB" -qc "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 || true; }
trap cleanup EXIT

# Option 1: 100,000 seats (ids 1..100000) for the rush; option 2: 1,000 seats, the map asked for.
python3 - "$work/catalog.json" <<'PY'
import json, sys
seats = [{"id": i, "option_id": 1, "seat_no": f"F-{i}", "grade": "S", "price": 30000}
         for i in range(1, 100001)]
seats += [{"id": 100000 + i, "option_id": 2, "seat_no": f"{chr(65 + (i - 1) // 50)}-{(i - 1) % 50 + 1}",
           "grade": "R" if i <= 300 else "S", "price": 50000 if i <= 300 else 30000}
          for i in range(1, 1001)]
json.dump({"concerts": [{"id": 1, "title": "Rush", "venue": "Arena"}],
           "options": [{"id": 1, "concert_id": 1, "starts_at": "2031-01-01T19:00:00Z"},
                       {"id": 2, "concert_id": 1, "starts_at": "2031-01-02T19:00:00Z"}],
           "seats": seats}, open(sys.argv[1], "w"))
PY

# start STORE CACHE_MS: a server on a fresh schema (PostgreSQL) or the memory store.
start() {
  local store=$1 cache=$2 url=
  if [ "$store" = postgres ]; then
    psql "$DB" -qc "DROP SCHEMA IF EXISTS $SCHEMA CASCADE; CREATE SCHEMA $SCHEMA" >/dev/null
    url="$DB?options=-csearch_path%3D$SCHEMA"
  fi
  TICKETING_ADDR=127.0.0.1:$PORT TICKETING_STORE=$store DATABASE_URL=$url \
    TICKETING_CATALOG=$work/catalog.json TICKETING_CATALOG_CACHE_MS=$cache \
    TICKETING_RATE_PER_CLIENT=0 TICKETING_QUEUE_ADMIT_PER_SEC=1000000 TICKETING_QUEUE_MAX_ACTIVE=1000000 \
    RUST_LOG=error "$SERVER" &
  pid=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && return; sleep 0.2; done
  echo "server did not start" >&2; exit 1
}

seats_url="http://127.0.0.1:$PORT/api/ticketing/concerts/options/2/seats"
if [ "$ONLY" = all ]; then
echo "== wrk -t1 -c64 -d${SECS}s GET /concerts/options/2/seats (1,000 seats)"
for store in memory postgres; do
  for cache in 0 250; do
    start "$store" "$cache"
    bytes=$(curl -s "$seats_url" | wc -c)
    wrk -t1 -c64 -d"${SECS}s" --latency "$seats_url" > "$work/wrk" 2>&1
    printf '%-8s cache %3s ms: %8s req/s  p50 %8s  p99 %8s  (%s bytes)\n' "$store" "$cache" \
      "$(awk '/Requests\/sec/ {print $2}' "$work/wrk")" \
      "$(awk '$1 == "50%" {print $2}' "$work/wrk")" "$(awk '$1 == "99%" {print $2}' "$work/wrk")" "$bytes"
    stop
  done
done

echo "== wrk, as above, with Accept-Encoding: gzip (the bodies browsers get)"
for store in postgres; do
  start "$store" 250
  bytes=$(curl -s -H 'accept-encoding: gzip' "$seats_url" | wc -c)
  wrk -t1 -c64 -d"${SECS}s" --latency -H 'Accept-Encoding: gzip' "$seats_url" > "$work/wrk" 2>&1
  printf '%-8s cache 250 ms, gzip: %8s req/s  p50 %8s  p99 %8s  (%s bytes)\n' "$store" \
    "$(awk '/Requests\/sec/ {print $2}' "$work/wrk")" \
    "$(awk '$1 == "50%" {print $2}' "$work/wrk")" "$(awk '$1 == "99%" {print $2}' "$work/wrk")" "$bytes"
  stop
done

fi

echo "== hold rush on PostgreSQL (rush --http --holds-only, $BUYERS buyers, 64 in flight), cache 250 ms"
ticks=$(getconf CLK_TCK)
first=1
for round in $(seq "$REPEAT"); do
for reads in none map map-gzip availability; do
  start postgres 250
  fpid=
  case $reads in
    map) flood_args=(--get /api/ticketing/concerts/options/2/seats) ;;
    map-gzip) flood_args=(--get /api/ticketing/concerts/options/2/seats --gzip) ;;
    availability) flood_args=(--get /api/ticketing/concerts/options/2/availability) ;;
  esac
  if [ "$reads" != none ]; then
    "$FLOOD" --url "http://127.0.0.1:$PORT" "${flood_args[@]}" --rate "$RATE" --seconds 600 \
      > "$work/flood" 2>&1 &
    fpid=$!
  fi
  t0=$(date +%s.%N)
  "$RUSH" --http "http://127.0.0.1:$PORT" --buyers "$BUYERS" --first-user "$first" --seats 100000 \
    --concurrency 64 --holds-only --quiet --json > "$work/rush" 2>&1 || { cat "$work/rush"; exit 1; }
  t1=$(date +%s.%N)
  cpu=
  if [ -n "$fpid" ]; then
    # CPU the reading client itself took (it shares the 2 cores with everything it measures).
    cpu=$(awk -v t="$ticks" -v s="$(echo "$t1 - $t0" | bc)" '{printf "%.2f", ($14 + $15) / t / s}' "/proc/$fpid/stat")
    kill "$fpid" 2>/dev/null || true; wait "$fpid" 2>/dev/null || true
  fi
  python3 - "$work/rush" "$reads" "$RATE" "$cpu" <<'PY'
import json, sys
run = json.load(open(sys.argv[1]))["runs"][0]
reads, rate, cpu = sys.argv[2], sys.argv[3], sys.argv[4]
extra = " alone" if reads == "none" else f" while {rate}/s GET {reads} (the reader used {cpu} cores)"
h = run["latency"]["hold"] or {}
print(f"holds{extra}: {run['hold_attempts_per_s']:.0f} attempts/s, {run['holds_per_s']:.0f} holds/s, "
      f"hold p50 {h.get('p50_ms')} ms p99 {h.get('p99_ms')} ms, oversold {run['oversold_seats']}, "
      f"books balanced {run['books_balanced']}")
PY
  stop
  first=$((first + BUYERS))
done
done
