#!/usr/bin/env bash
# The physical limits of this machine's PostgreSQL and Redis, measured in the same run as the
# rush tool, and each strategy's throughput as a ratio to its matching limit.
#
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379 \
#     scripts/limits.sh [seconds per measurement, default 10] [clients, default 16]
#
# (a) BEGIN; SELECT ... FOR UPDATE; UPDATE; COMMIT on a random seat   - the pessimistic limit
# (b) one conditional UPDATE that writes on every call                 - the single-statement limit
# (c) (a) on one hot seat                                              - the hot-seat limit
# (d) redis-benchmark EVALSHA of a conditional-hold script            - the Redis lock limit
# Then the rush tool on the same seats (PostgreSQL pessimistic and optimistic; the distributed
# lock on one hot seat) and the ratios.
#
# With MYSQL_URL=mysql://root@127.0.0.1:3306/test also MySQL / MariaDB (mysqlslap):
# (e1) BEGIN; SELECT ... FOR UPDATE; UPDATE; COMMIT on a random seat   - the MySQL pessimistic limit
# (e2) one conditional UPDATE of a random seat                          - the MySQL single-statement limit
# and the rush tool on MySQL pessimistic and optimistic with their ratios.
# LIMITS_MYSQL_ONLY=1 measures MySQL alone (DATABASE_URL and Redis then not needed).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
CLIENTS=${2:-16}

# MySQL / MariaDB: mysqlslap runs the statements of (e1) and (e2) on a 10k-seat table; a random
# seat is drawn in SQL (a derived table of one RAND() row, joined on the primary key: a const
# lookup that locks one row) and the transactions done are counted by the seats' versions.
mysql_limits() {
  local url=$MYSQL_URL rest user host port pass
  rest=${url#mysql://}; rest=${rest%%/*}; rest=${rest%%\?*}
  if [[ $rest == *@* ]]; then user=${rest%%@*}; host=${rest#*@}; else user=root; host=$rest; fi
  pass=""; if [[ $user == *:* ]]; then pass=${user#*:}; user=${user%%:*}; fi
  port=3306; if [[ $host == *:* ]]; then port=${host##*:}; host=${host%%:*}; fi
  # The password goes to the clients through MYSQL_PWD, never on a command line (ps shows those).
  local my=(-h "$host" -P "$port" -u "$user")
  if [ -n "$pass" ]; then export MYSQL_PWD=$pass; fi
  # A database of this run's own (two runs at once do not drop each other's).
  local schema=ticketing_limits_my_$$
  mysql "${my[@]}" -e "DROP DATABASE IF EXISTS $schema; CREATE DATABASE $schema;
    CREATE TABLE $schema.seats (id BIGINT PRIMARY KEY, status VARCHAR(16) NOT NULL DEFAULT 'available',
      reservation_id BINARY(16), held_until BIGINT, version BIGINT NOT NULL DEFAULT 0) ENGINE = InnoDB;
    INSERT INTO $schema.seats (id) SELECT seq FROM $schema.seq_1_to_10000;" 2>/dev/null \
  || mysql "${my[@]}" -e "DROP DATABASE IF EXISTS $schema; CREATE DATABASE $schema;
    CREATE TABLE $schema.seats (id BIGINT PRIMARY KEY, status VARCHAR(16) NOT NULL DEFAULT 'available',
      reservation_id BINARY(16), held_until BIGINT, version BIGINT NOT NULL DEFAULT 0) ENGINE = InnoDB;
    SET SESSION cte_max_recursion_depth = 20000;
    INSERT INTO $schema.seats (id) WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g
      WHERE n < 10000) SELECT n FROM g;"
  local pick="SELECT FLOOR(1 + RAND() * 10000) AS id"
  local e1="BEGIN;SELECT s.status, s.version, @id := s.id FROM seats s JOIN ($pick) r ON s.id = r.id FOR UPDATE;UPDATE seats SET status = 'held', reservation_id = UNHEX(REPLACE(UUID(), '-', '')), held_until = 1, version = version + 1 WHERE id = @id;COMMIT"
  local e2="UPDATE seats s JOIN ($pick) r ON s.id = r.id SET s.status = 'held', s.reservation_id = UNHEX(REPLACE(UUID(), '-', '')), s.held_until = 1, s.version = s.version + 1 WHERE s.status IN ('available', 'held')"
  # Transactions per second of one statement list: $1 statements per transaction, $2 the list.
  slap() {
    local before after secs out
    before=$(mysql "${my[@]}" -N -e "SELECT SUM(version) FROM $schema.seats")
    if ! out=$(mysqlslap "${my[@]}" --create-schema="$schema" --concurrency="$CLIENTS" \
                 --iterations=1 --number-of-queries=$((SECS * 3000 * $1)) --delimiter=";" \
                 --query="$2" 2>&1); then
      echo "mysqlslap failed on: $2" >&2
      printf '%s\n' "$out" | tail -n 5 >&2
      return 1
    fi
    secs=$(printf '%s\n' "$out" | awk '/Average number of seconds/ {print $(NF-1); exit}')
    if [ -z "$secs" ]; then
      echo "mysqlslap printed no average time for: $2" >&2
      printf '%s\n' "$out" | tail -n 5 >&2
      return 1
    fi
    after=$(mysql "${my[@]}" -N -e "SELECT SUM(version) FROM $schema.seats")
    python3 -c "import sys; n, s = int(sys.argv[1]), float(sys.argv[2] or 0); print(round(n / s) if s else 0)" \
      "$((after - before))" "$secs"
  }
  echo "measuring MySQL limits (mysqlslap, ${CLIENTS} clients) ..." >&2
  local E1 E2 MY HOT_MY
  if ! E1=$(slap 4 "$e1") || ! E2=$(slap 1 "$e2"); then
    mysql "${my[@]}" -e "DROP DATABASE IF EXISTS $schema"
    echo "MySQL limits not measured (mysqlslap failed, see above)" >&2
    return 1
  fi
  mysql "${my[@]}" -e "DROP DATABASE IF EXISTS $schema"
  echo "running the rush tool on MySQL ..." >&2
  cargo build --release --quiet --example rush
  MY=$(target/release/examples/rush --store mysql --strategy pessimistic,optimistic --buyers 20000 \
         --seats 10000 --concurrency "$CLIENTS" --holds-only --max-seconds "$SECS" --json --quiet)
  HOT_MY=$(target/release/examples/rush --store mysql --strategy pessimistic --buyers 2000 --seats 1 \
         --concurrency "$CLIENTS" --holds-only --max-seconds "$SECS" --json --quiet)
  python3 - "$E1" "$E2" "$MY" "$HOT_MY" <<'PY'
import json, sys
e1, e2 = (float(x or 0) for x in sys.argv[1:3])
my, hot = (json.loads(x)["runs"] for x in sys.argv[3:5])
rate = lambda r: r["hold_attempts_per_s"]
print(f"{'limit (MySQL / MariaDB)':<52}{'per second':>12}")
for name, v in [("(e1) SELECT FOR UPDATE + UPDATE, random seat", e1),
                ("(e2) single conditional UPDATE", e2)]:
    print(f"{name:<52}{v:>12.0f}")
print()
print(f"{'strategy (hold attempts/s)':<52}{'per second':>12}{'limit':>8}{'ratio':>8}")
for name, v, lim, lv in [("mysql pessimistic (NOWAIT), 10k seats", rate(my[0]), "e1", e1),
                         ("mysql optimistic, 10k seats", rate(my[1]), "e2", e2),
                         ("mysql pessimistic NOWAIT, one hot seat", rate(hot[0]), "e1", e1)]:
    print(f"{name:<52}{v:>12.0f}{lim:>8}{(v / lv if lv else 0):>8.2f}")
for r in my + hot:
    assert r["oversold_seats"] == 0 and r["books_balanced"], r
PY
}
if [ "${LIMITS_MYSQL_ONLY:-}" = 1 ]; then
  mysql_limits || exit 1
  exit 0
fi

DB=${DATABASE_URL:?DATABASE_URL is needed}
REDIS=${REDIS_URL:-redis://127.0.0.1:6379}
work=$(mktemp -d)
trap 'rm -rf "$work"; psql "$DB" -qc "DROP SCHEMA IF EXISTS ticketing_limits CASCADE" >/dev/null 2>&1 || true' EXIT

psql "$DB" -q <<'SQL' >/dev/null
DROP SCHEMA IF EXISTS ticketing_limits CASCADE;
CREATE SCHEMA ticketing_limits;
CREATE TABLE ticketing_limits.seats (
  id BIGINT PRIMARY KEY, status TEXT NOT NULL DEFAULT 'available', reservation_id UUID,
  held_until TIMESTAMPTZ, version BIGINT NOT NULL DEFAULT 0);
INSERT INTO ticketing_limits.seats (id) SELECT g FROM generate_series(1, 10000) g;
SQL

cat > "$work/a.sql" <<'SQL'
\set id random(1, 10000)
BEGIN;
SELECT status, version FROM ticketing_limits.seats WHERE id = :id FOR UPDATE;
UPDATE ticketing_limits.seats SET status = 'held', reservation_id = gen_random_uuid(), held_until = now() + interval '5 minutes', version = version + 1 WHERE id = :id;
COMMIT;
SQL
cat > "$work/b.sql" <<'SQL'
\set id random(1, 10000)
UPDATE ticketing_limits.seats SET status = 'held', reservation_id = gen_random_uuid(), held_until = now() + interval '5 minutes', version = version + 1 WHERE id = :id AND (status = 'available' OR status = 'held') RETURNING id;
SQL
sed 's/random(1, 10000)/1/' "$work/a.sql" > "$work/c.sql"

# What PostgreSQL logs for one write (wal_pos, wal_bytes, wal_records).
. scripts/wal.sh
# Transactions per second of one script; then its WAL per transaction, in records and bytes.
tps() {
  local from to out
  from=$(wal_pos)
  out=$(pgbench -n -M prepared -c "$CLIENTS" -j 2 -T "$SECS" -f "$1" "$DB" 2>/dev/null)
  to=$(wal_pos)
  printf '%s\n' "$out" | awk -v r="$(wal_records "$from" "$to")" -v b="$(wal_bytes "$from" "$to")" '
    /^number of transactions actually processed/ {n = $NF}
    /^tps/ {t = $3}
    END {printf "%.0f %s %.0f\n", t, (n && r != "-" ? sprintf("%.2f", r / n) : "-"), (n ? b / n : 0)}'
}
# The WAL of a rush run (its JSON has the range of its timed part): "records bytes".
rush_wal() {
  local from to
  read -r from to < <(python3 -c 'import json,sys; w=json.load(sys.stdin)["runs"][0]["wal"]; print(w["from"], w["to"])' <<<"$1")
  echo "$(wal_records "$from" "$to") $(wal_bytes "$from" "$to")"
}
echo "measuring PostgreSQL limits (${SECS}s each, ${CLIENTS} clients) ..." >&2
read -r A A_REC A_BYTES < <(tps "$work/a.sql"); read -r B B_REC B_BYTES < <(tps "$work/b.sql")
read -r C _ _ < <(tps "$work/c.sql")

HOST=$(echo "$REDIS" | sed -E 's#redis://([^:/]+).*#\1#'); PORT=$(echo "$REDIS" | sed -E 's#.*:([0-9]+).*#\1#')
SCRIPT="if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end redis.call('SET', KEYS[1], ARGV[1], 'PX', 5000) return 1"
SHA=$(redis-cli -h "$HOST" -p "$PORT" SCRIPT LOAD "$SCRIPT")
echo "measuring the Redis limit ..." >&2
D=$(redis-benchmark -h "$HOST" -p "$PORT" -c "$CLIENTS" -n $((SECS * 20000)) -r 10000 -q \
      EVALSHA "$SHA" 1 "ticketing:limits:seat:__rand_int__" owner 2>/dev/null \
    | tr '\r' '\n' | sed -nE 's/.*: ([0-9.]+) requests per second.*/\1/p' | tail -1)

echo "running the rush tool on the same machine ..." >&2
cargo build --release --quiet --example rush
RUSH=target/release/examples/rush
PG=$($RUSH --store postgres --strategy pessimistic,optimistic --buyers 20000 --seats 10000 \
       --concurrency "$CLIENTS" --holds-only --max-seconds "$SECS" --json --quiet)
PG_BATCH=$($RUSH --store postgres --strategy pessimistic,optimistic --buyers 40000 --seats 10000 \
       --concurrency 64 --holds-only --max-seconds "$SECS" --json --quiet --pg-batch 2)
# The same, with seats to spare: nearly every attempt writes a new hold, as (b) writes on every
# call (holds_per_s counts the holds made, not the refusals).
PG_BATCH_W=$($RUSH --store postgres --strategy pessimistic --buyers 100000 --seats 200000 \
       --concurrency 64 --holds-only --max-seconds "$SECS" --json --quiet --pg-batch 2)
# Throughput against concurrency, per-command and batched (pessimistic NOWAIT, holds only).
SWEEP=""
for c in 1 8 64 256; do
  for b in 0 2; do
    SWEEP="$SWEEP $c:$b:$($RUSH --store postgres --strategy pessimistic --buyers 60000 --seats 10000 \
       --concurrency "$c" --holds-only --max-seconds "$SECS" --json --quiet --pg-batch "$b" \
       | python3 -c 'import json,sys; r=json.load(sys.stdin)["runs"][0]; assert r["oversold_seats"] == 0 and r["books_balanced"], r; print(round(r["hold_attempts_per_s"]), r["latency"]["hold"]["p99_ms"], sep=",")')"
  done
done
PG_WAL=$(rush_wal "$PG"); PG_BATCH_W_WAL=$(rush_wal "$PG_BATCH_W")
HOT_PG=$($RUSH --store postgres --strategy pessimistic --buyers 2000 --seats 1 \
       --concurrency "$CLIENTS" --holds-only --max-seconds "$SECS" --json --quiet)
HOT_DL=$($RUSH --store postgres --strategy distributed-lock --buyers 2000 --seats 1 \
       --concurrency "$CLIENTS" --holds-only --max-seconds "$SECS" --json --quiet)

python3 - "$A" "$B" "$C" "$D" "$PG" "$HOT_PG" "$HOT_DL" "$PG_BATCH" "$SWEEP" "$PG_BATCH_W" "$A_REC $A_BYTES" "$B_REC $B_BYTES" "$PG_WAL" "$PG_BATCH_W_WAL" <<'PY'
import json, sys
a, b, c, d = (float(x or 0) for x in sys.argv[1:5])
a_wal, b_wal, pg_wal, batch_wal = (x.split() for x in sys.argv[11:15])
pg, hot_pg, hot_dl, pg_batch = (json.loads(x)["runs"] for x in sys.argv[5:9])
sweep = [w.split(":") for w in sys.argv[9].split()]
pg_batch_w = json.loads(sys.argv[10])["runs"]
rate = lambda r: r["hold_attempts_per_s"]
print(f"{'limit':<52}{'per second':>12}")
for name, v in [("(a) SELECT FOR UPDATE + UPDATE, random seat", a), ("(b) single conditional UPDATE", b),
                ("(c) SELECT FOR UPDATE + UPDATE, one hot seat", c), ("(d) Redis EVALSHA conditional hold", d)]:
    print(f"{name:<52}{v:>12.0f}")
print()
print(f"{'strategy (hold attempts/s)':<52}{'per second':>12}{'limit':>8}{'ratio':>8}")
rows = [("postgres pessimistic, 10k seats", rate(pg[0]), "a", a),
        ("postgres optimistic, 10k seats", rate(pg[1]), "b", b),
        ("postgres batched (NOWAIT), 10k seats, 64 in flight", rate(pg_batch[0]), "b", b),
        ("postgres batched (optimistic), 10k seats, 64 in flight", rate(pg_batch[1]), "b", b),
        ("postgres batched (NOWAIT), holds made/s, 200k seats, 64", pg_batch_w[0]["holds_per_s"], "b", b),
        ("postgres pessimistic NOWAIT, one hot seat", rate(hot_pg[0]), "c", c),
        ("distributed lock (Redis) + postgres, one hot seat", rate(hot_dl[0]), "c", c)]
for name, v, lim, lv in rows:
    print(f"{name:<52}{v:>12.0f}{lim:>8}{(v / lv if lv else 0):>8.2f}")
# What PostgreSQL logs per write: the limits write one row per transaction; a hold writes the
# seat, the reservation and its outbox event, and the index entries of each.
def per(wal, n):
    rec, byts = wal
    return ("-" if rec == "-" or not n else f"{float(rec) / n:.2f}",
            f"{float(byts) / n:.0f}" if n else "-")
print(f"\n{'WAL per write':<52}{'records':>12}{'bytes':>10}")
for name, (rec, byts) in [("(a) per transaction", a_wal), ("(b) per call", b_wal)]:
    print(f"{name:<52}{rec:>12}{byts:>10}")
for name, wal, r in [("postgres pessimistic, per hold made", pg_wal, pg[0]),
                     ("postgres batched (NOWAIT), per hold made, 200k seats", batch_wal, pg_batch_w[0])]:
    rec, byts = per(wal, r["holds"])
    print(f"{name:<52}{rec:>12}{byts:>10}")
hot = rate(hot_dl[0]) / rate(hot_pg[0]) if rate(hot_pg[0]) else 0
print(f"\ndistributed lock vs pessimistic on one hot seat: {hot:.2f}x")
print("\nholds/s (p99 ms) against buyers in flight, pessimistic NOWAIT, 10k seats")
print(f"{'in flight':>10}{'per-command':>22}{'batched (2 workers)':>24}{'batched/(b)':>14}")
by = {(c, bt): v.split(",") for c, bt, v in sweep}
for c in ("1", "8", "64", "256"):
    one, bat = by.get((c, "0"), ["0", "0"]), by.get((c, "2"), ["0", "0"])
    print(f"{c:>10}{one[0] + ' (' + one[1] + ')':>22}{bat[0] + ' (' + bat[1] + ')':>24}{(float(bat[0]) / b if b else 0):>14.2f}")
# The same sweep as a chart: holds/s against buyers in flight (log scale), both modes.
import math
W, H, L, B = 640, 360, 70, 50
xs = ["1", "8", "64", "256"]
series = [("per-command", "0", "#c0392b"), ("batched (2 workers)", "2", "#2471a3")]
top = max([float(by.get((c, m), ["0"])[0]) for c in xs for _, m, _ in series] + [b, 1.0]) * 1.1
px = lambda i: L + i * (W - L - 20) / (len(xs) - 1)
py = lambda v: H - B - v / top * (H - B - 20)
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<line x1="{L}" y1="{H-B}" x2="{W-20}" y2="{H-B}" stroke="black"/><line x1="{L}" y1="20" x2="{L}" y2="{H-B}" stroke="black"/>',
       f'<text x="{W/2}" y="{H-10}" text-anchor="middle">buyers in flight</text>',
       f'<text x="15" y="{H/2}" transform="rotate(-90 15 {H/2})" text-anchor="middle">holds/s</text>',
       f'<line x1="{L}" y1="{py(b):.1f}" x2="{W-20}" y2="{py(b):.1f}" stroke="gray" stroke-dasharray="4"/>',
       f'<text x="{W-22}" y="{py(b)-4:.1f}" text-anchor="end" fill="gray">limit (b) {b:.0f}/s</text>']
for i, c in enumerate(xs):
    svg.append(f'<text x="{px(i):.1f}" y="{H-B+16}" text-anchor="middle">{c}</text>')
for k in range(5):
    v = top * k / 4
    svg.append(f'<text x="{L-6}" y="{py(v)+4:.1f}" text-anchor="end">{v:.0f}</text>')
for n, (name, m, colour) in enumerate(series):
    pts = " ".join(f"{px(i):.1f},{py(float(by.get((c, m), ['0'])[0])):.1f}" for i, c in enumerate(xs))
    svg.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>')
    svg.append(f'<text x="{L+10}" y="{30 + 16*n}" fill="{colour}">{name}</text>')
svg.append("</svg>")
open("docs/postgres-batching.svg", "w").write("\n".join(svg))
print("\nchart: docs/postgres-batching.svg")
for r in pg + hot_pg + hot_dl + pg_batch + pg_batch_w:
    assert r["oversold_seats"] == 0 and r["books_balanced"], r
PY

if [ -n "${MYSQL_URL:-}" ]; then
  echo
  mysql_limits
fi
