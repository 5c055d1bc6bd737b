#!/usr/bin/env bash
# The served OpenAPI document against the server itself: schemathesis (pinned, from PyPI, in a
# venv under target/) runs every check (`--checks all`: status codes, content types, headers,
# response schemas, schema-valid requests accepted, schema-invalid ones rejected, missing
# headers, unsupported methods, auth, use after free) against ticketing-server on the memory
# store with the demo catalog and an admin token. Fails on any failure or error.
#
#   scripts/contract.sh [max-examples per operation, default 100]
#
# Needs the server built (`cargo build -p ticketing-server`; the test command builds it too)
# and python3 with venv.
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
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
admin="contract-check-admin-token-of-32-bytes-or-more"
log="target/contract-server.log"
TICKETING_ADDR="127.0.0.1:$port" TICKETING_ADMIN_TOKEN="$admin" TICKETING_RATE_PER_CLIENT=0 \
  TICKETING_DEMO_SEATS=200 RUST_LOG=warn target/debug/ticketing-server > "$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/health/ready" > /dev/null 2>&1 && break
  sleep 0.1
done
"$venv/bin/schemathesis" --config-file scripts/schemathesis.toml run \
  "http://127.0.0.1:$port/api-docs/openapi.json" --url "http://127.0.0.1:$port" \
  --checks all --max-examples "$examples" --workers 2 \
  --header "Authorization: Bearer $admin" --no-color
