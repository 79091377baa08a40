#!/usr/bin/env bash
# Runs schemathesis (PyPI) against the OpenAPI document of a running `hookrelay serve`:
# every operation with generated requests and every check (no server error, responses that
# conform to the documented schema, schema-valid requests accepted, …; the exceptions and
# why are in scripts/schemathesis.toml).
#
#   scripts/schemathesis.sh                 # builds the binary (feature cli) and runs
#   ST_MAX_EXAMPLES=100 scripts/schemathesis.sh
#
# Environment:
#   HOOKRELAY_SERVE   the command that starts the server, given `--bind ADDR --database URL
#                     --token TOKEN` after it (default: target/debug/hookrelay serve, built here)
#   ST_MAX_EXAMPLES   examples per operation and phase (default 25; bounds the run to minutes)
#   ST_SEED           the generation seed (default 1, for repeatable runs)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v schemathesis >/dev/null 2>&1; then
  echo "schemathesis: installing it from PyPI" >&2
  python3 -m pip install --quiet schemathesis 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages schemathesis
fi

token="schemathesis-$RANDOM$RANDOM"
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
addr="127.0.0.1:$port"

if [ -z "${HOOKRELAY_SERVE:-}" ]; then
  cargo build --quiet --features cli --bin hookrelay
  HOOKRELAY_SERVE="${CARGO_TARGET_DIR:-target}/debug/hookrelay serve"
fi

# A test send (`POST /webhooks/{id}/test`) waits for its first attempt up to the endpoint's
# request timeout (up to 30 s, by profile) before it answers 202, so requests may take that
# long: `--request-timeout 40` below.
# shellcheck disable=SC2086 # HOOKRELAY_SERVE is a command line
# Limits high enough that generated requests reach the handlers (429 and its headers are
# checked against the document by tests/openapi.rs).
$HOOKRELAY_SERVE --bind "$addr" --database "sqlite://$work/hookrelay.db" --token "$token" \
  --config-rate-limit 1000000/min --test-rate-limit 1000000/min \
  >"$work/serve.log" 2>&1 &
serve_pid=$!
stop() {
  kill "$serve_pid" 2>/dev/null || true
  wait "$serve_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap stop EXIT

up=no
for _ in $(seq 1 120); do
  if curl -fsS "http://$addr/api/health" >/dev/null 2>&1; then up=yes; break; fi
  kill -0 "$serve_pid" 2>/dev/null || break
  sleep 0.5
done
if [ "$up" != yes ]; then
  echo "schemathesis: the server did not answer /api/health:" >&2
  cat "$work/serve.log" >&2
  exit 1
fi

schemathesis --config-file "$PWD/scripts/schemathesis.toml" run "http://$addr/api/openapi.json" \
  --header "Authorization: Bearer $token" \
  --max-examples "${ST_MAX_EXAMPLES:-25}" \
  --seed "${ST_SEED:-1}" \
  --request-timeout 40 \
  --report-dir "$work/report"
