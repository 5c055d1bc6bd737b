#!/usr/bin/env bash
# The whole buyer flow through the example server on PostgreSQL (issue 11's figure), beside the
# single-statement limit (b) measured in the same run:
#
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
#     scripts/flow.sh [buyers in flight, default 64] [seconds, default 12] [batch workers, default 2]
#
# The server runs on a fresh schema (dropped after), optimistic, pool 16, the memory queue with
# admission wide open, 100,000 seats; the rush tool admits its buyers through the waiting room
# (not timed), then each buyer charges, holds, pays (90 %) and cancels (10 % of the paid). Server,
# database and rush tool share this machine's cores. Prints paid buyers/s, the hold and pay
# latencies, the books, the limit (b) and the WAL the database wrote per paid buyer.
set -euo pipefail
cd "$(dirname "$0")/.."
DB=${DATABASE_URL:?DATABASE_URL is needed}
INFLIGHT=${1:-64}
SECS=${2:-12}
BATCH=${3:-2}
BUYERS=${FLOW_BUYERS:-20000}
PORT=${FLOW_PORT:-8097}
schema=ticketing_flow_$$
work=$(mktemp -d)
srv=""
cleanup() {
  if [ -n "$srv" ]; then kill "$srv" 2>/dev/null || true; wait "$srv" 2>/dev/null || true; fi
  psql "$DB" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
  psql "$DB" -qc "DROP SCHEMA IF EXISTS ticketing_flow_limit_$$ CASCADE" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

cargo build --release --quiet -p ticketing-server
cargo build --release --quiet --example rush

# (b) of scripts/limits.sh: one conditional UPDATE per call, 16 clients, 5 s.
psql "$DB" -q -v ON_ERROR_STOP=1 >/dev/null <<SQL
CREATE SCHEMA ticketing_flow_limit_$$;
CREATE TABLE ticketing_flow_limit_$$.seats (
  id BIGINT PRIMARY KEY, status TEXT NOT NULL DEFAULT 'available', reservation_id UUID,
  held_until TIMESTAMPTZ, version BIGINT NOT NULL DEFAULT 0);
INSERT INTO ticketing_flow_limit_$$.seats (id) SELECT g FROM generate_series(1, 10000) g;
SQL
cat > "$work/b.sql" <<SQL
\set id random(1, 10000)
UPDATE ticketing_flow_limit_$$.seats SET status = 'held', reservation_id = gen_random_uuid(), held_until = now() + interval '5 minutes', version = version + 1 WHERE id = :id AND (status = 'available' OR status = 'held') RETURNING id;
SQL
B=$(pgbench -n -M prepared -c 16 -j 2 -T 5 -f "$work/b.sql" "$DB" 2>/dev/null \
      | awk '/^tps/ {printf "%.0f\n", $3; exit}')

psql "$DB" -qc "CREATE SCHEMA $schema" >/dev/null
sep='?'; case $DB in *\?*) sep='&';; esac
DATABASE_URL="$DB${sep}options[search_path]=$schema" TICKETING_STORE=postgres \
  TICKETING_STRATEGY=optimistic TICKETING_PG_POOL=16 TICKETING_PG_BATCH="$BATCH" \
  TICKETING_ADDR="127.0.0.1:$PORT" TICKETING_RATE_PER_CLIENT=0 \
  TICKETING_QUEUE_ADMIT_PER_SEC=1000000 TICKETING_QUEUE_MAX_ACTIVE=1000000 \
  TICKETING_DEMO_CONCERTS=1 TICKETING_DEMO_SEATS=100000 RUST_LOG=warn \
  target/release/ticketing-server >"$work/server.log" 2>&1 &
srv=$!
ready=""
for _ in $(seq 1 300); do
  kill -0 "$srv" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
  if curl -fsS "http://127.0.0.1:$PORT/health/ready" >/dev/null 2>&1; then ready=1; break; fi
  sleep 0.2
done
# Ready, and it is this run's server (not another one on the port).
if [ -z "$ready" ] || ! kill -0 "$srv" 2>/dev/null; then
  echo "the server did not become ready on port $PORT" >&2; cat "$work/server.log" >&2; exit 1
fi
# The WAL around the whole rush (admission included: the memory queue writes none).
. scripts/wal.sh
from=$(wal_pos)
target/release/examples/rush --http "http://127.0.0.1:$PORT" --buyers "$BUYERS" --seats 100000 \
  --concurrency "$INFLIGHT" --max-seconds "$SECS" --json --quiet >"$work/rush.json"
to=$(wal_pos)
bytes=$(wal_bytes "$from" "$to")
records=$(wal_records "$from" "$to")
python3 - "$work/rush.json" "$B" "$records" "$bytes" "$INFLIGHT" "$BATCH" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["runs"][0]
b, records, byts = float(sys.argv[2] or 0), sys.argv[3], float(sys.argv[4] or 0)
inflight, batch = sys.argv[5], sys.argv[6]
paid = r["confirms"]
lat = lambda op: r["latency"][op] or {"p50_ms": 0, "p99_ms": 0}
mode = "per-command" if batch == "0" else f"batched ({batch} workers)"
print(f"PostgreSQL, {mode}, {inflight} in flight, {r['buyers']} buyers in {r['elapsed_s']:.1f} s")
print(f"  paid buyers/s           {r['confirms_per_s']:>10.0f}")
print(f"  hold p50 / p99 (ms)     {lat('hold')['p50_ms']:>10.1f} / {lat('hold')['p99_ms']:.1f}")
print(f"  pay p50 / p99 (ms)      {lat('pay')['p50_ms']:>10.1f} / {lat('pay')['p99_ms']:.1f}")
print(f"  limit (b), same run     {b:>10.0f}   paid/s per (b): {r['confirms_per_s'] / b if b else 0:.2f}")
per_paid = lambda v: f"{v / paid:.1f}" if paid else "-"
print(f"  WAL per paid buyer      {per_paid(float(records)) if records != '-' else '-':>10} records, {per_paid(byts)} bytes")
print(f"  oversold {r['oversold_seats']}, books balanced {r['books_balanced']}, errors {r['errors']}")
assert r["oversold_seats"] == 0 and r["books_balanced"], r
PY
