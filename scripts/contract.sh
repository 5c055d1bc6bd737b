#!/usr/bin/env bash
# The served OpenAPI document against the server itself: schemathesis (pinned, from PyPI, in a
# venv under target/) runs every check (`--checks all`: status codes, content types, headers,
# response schemas, schema-valid requests accepted, schema-invalid ones rejected, missing
# headers, unsupported methods, auth, use after free) against ticketing-server on the memory
# store with the demo catalog. Two runs, each on a server of its own: the buyers' API (the admin
# operations left out), then the admin operations with the admin token (they change the catalog
# and close sales, which would starve the first run's holds and payments; their 401 without the
# token is checked by the e2e tests). Fails on any failure or error.
#
#   scripts/contract.sh [max-examples per operation, default 100]
#
# Needs python3 with venv; builds the server if needed. One worker: with two, this machine's
# Python 3.11.7 once raised "AST constructor recursion depth mismatch" from `ast.parse` inside
# hypothesis (threads parsing at once), an error of the tool, not of the API.
set -euo pipefail
cd "$(dirname "$0")/.."
examples="${1:-100}"
version="4.32.5"
venv="target/schemathesis-$version"
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
fi
cargo build --quiet -p ticketing-server
admin="contract-check-admin-token-of-32-bytes-or-more"
servers=()
trap 'for pid in "${servers[@]}"; do kill "$pid" 2>/dev/null || true; done' EXIT

# Start a server with the admin token on a free port (left in $port).
serve() {
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  TICKETING_ADDR="127.0.0.1:$port" TICKETING_ADMIN_TOKEN="$admin" TICKETING_RATE_PER_CLIENT=0 \
    TICKETING_DEMO_SEATS=200 TICKETING_PROVIDER=fake RUST_LOG=warn target/debug/ticketing-server \
    > "target/contract-server-$port.log" 2>&1 &
  servers+=($!)
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/health/ready" > /dev/null 2>&1 && break
    sleep 0.1
  done
}

check() {
  local port=$1; shift
  "$venv/bin/schemathesis" --config-file scripts/schemathesis.toml run \
    "http://127.0.0.1:$port/api-docs/openapi.json" --url "http://127.0.0.1:$port" \
    --checks all --max-examples "$examples" --workers 1 --no-color "$@"
}

serve
echo "== the buyers' API (port $port)"
check "$port" --exclude-path-regex '/admin/'
serve
echo "== the admin API (port $port)"
check "$port" --include-path-regex '/admin/' --header "Authorization: Bearer $admin"
