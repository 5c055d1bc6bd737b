# Sourced by limits.sh and flow.sh (DB must be set): what PostgreSQL logs between two WAL insert
# positions (exact at once, unlike pg_stat_wal), in bytes, and in records when pg_waldump can
# read this server's pg_wal (else "-").
wal_pos() { psql "$DB" -qAtc "SELECT pg_current_wal_insert_lsn()"; }
wal_bytes() { psql "$DB" -qAtc "SELECT pg_wal_lsn_diff('$2', '$1')::BIGINT"; }
WALDUMP=$(command -v pg_waldump || ls /usr/lib/postgresql/*/bin/pg_waldump 2>/dev/null | tail -n 1 || true)
PGWAL="$(psql "$DB" -qAtc "SHOW data_directory" 2>/dev/null || true)/pg_wal"
wal_records() {
  local n=""
  if [ -n "$WALDUMP" ] && [ -r "$PGWAL" ]; then
    n=$("$WALDUMP" -p "$PGWAL" --stats -s "$1" -e "$2" 2>/dev/null | awk '$1 == "Total" {print $2; exit}')
  fi
  echo "${n:--}"
}
