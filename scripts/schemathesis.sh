#!/usr/bin/env bash
# Schemathesis against both OpenAPI documents, on the local default (the
# in-process broker and SQLite in a temporary data dir, on free ports).
#
#   bash scripts/schemathesis.sh      # what CI runs, after `cargo test`
#
# Every check Schemathesis has runs on every operation of ingest's
# /openapi.json (as `dev-producer`) and the query API's (as `dev-analyst`):
# no 5xx, every status, header, content type and body as documented,
# schema-valid requests accepted, schema-violating ones refused, requests
# without or with bad credentials refused, undocumented methods refused.
# scripts/schemathesis_hooks.py keeps positive cases within the rules that
# tie two query parameters together (which OpenAPI cannot state).
#
# Schemathesis is installed once, pinned, into a venv under target/. The
# binary is EVENTIDE_BIN if set, else the debug build (built if missing).
# Budget: SCHEMATHESIS_MAX_EXAMPLES cases per operation and phase (default
# 50), SCHEMATHESIS_MAX_TIME seconds per document (default 90).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SCHEMATHESIS_VERSION=4.32.5
ROOT=$PWD
VENV=$ROOT/target/schemathesis-venv
MAX_EXAMPLES=${SCHEMATHESIS_MAX_EXAMPLES:-50}
MAX_TIME=${SCHEMATHESIS_MAX_TIME:-90}
READY_DEADLINE_SECS=120
STOP_DEADLINE_SECS=30
PYTHON=${PYTHON:-python3.11}

log() { printf '\n==> %s\n' "$*"; }

# --- schemathesis (idempotent) --------------------------------------------------
if [ "$("$VENV/bin/schemathesis" --version 2>/dev/null)" != "schemathesis, version $SCHEMATHESIS_VERSION" ]; then
  log "installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
fi

# --- the binary -------------------------------------------------------------------
if [ -n "${EVENTIDE_BIN:-}" ]; then
  BIN=$EVENTIDE_BIN
else
  cargo build --bin eventide --locked
  BIN=${CARGO_TARGET_DIR:-$ROOT/target}/debug/eventide
fi

# --- start it on free ports ---------------------------------------------------------
WORK=$(mktemp -d)
PID=""
stop() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID" 2>/dev/null || true
    for _ in $(seq $((STOP_DEADLINE_SECS * 10))); do
      kill -0 "$PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap stop EXIT

read -r BROKER INGEST QUERY PROCESSOR < <("$PYTHON" - <<'EOF'
import socket
sockets = [socket.socket() for _ in range(4)]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in sockets))
EOF
)

log "starting $BIN (data dir $WORK/data)"
# Timestamps up to year 9999 are valid per the documents; the clock-skew
# rule (default 5m ahead of now) is one no schema can state, so it is
# widened beyond the year 9999 here. The machine's free disk is not what
# this tests: no floor.
"$BIN" \
  --data-dir "$WORK/data" \
  --local-broker-listen "127.0.0.1:$BROKER" \
  --ingest-listen "127.0.0.1:$INGEST" \
  --query-listen "127.0.0.1:$QUERY" \
  --processor-listen "127.0.0.1:$PROCESSOR" \
  --max-clock-skew 10000years \
  --min-free-disk 0 \
  >"$WORK/eventide.log" 2>&1 &
PID=$!

ready() {
  "$PYTHON" - "$1" <<'EOF'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as answer:
        sys.exit(0 if answer.status == 200 else 1)
except Exception:
    sys.exit(1)
EOF
}
deadline=$((SECONDS + READY_DEADLINE_SECS))
until ready "http://127.0.0.1:$INGEST/readyz" && ready "http://127.0.0.1:$QUERY/readyz"; do
  if ! kill -0 "$PID" 2>/dev/null; then
    cat "$WORK/eventide.log"
    echo "eventide exited before it was ready" >&2
    exit 1
  fi
  if ((SECONDS >= deadline)); then
    tail -50 "$WORK/eventide.log"
    echo "eventide not ready within ${READY_DEADLINE_SECS}s" >&2
    exit 1
  fi
  sleep 0.2
done

# --- run ------------------------------------------------------------------------------
run() {
  local name=$1 port=$2 key=$3
  log "schemathesis: $name"
  # From the temporary dir, so its cache (.schemathesis/) goes with it.
  (cd "$WORK" && SCHEMATHESIS_HOOKS=schemathesis_hooks PYTHONPATH="$ROOT/scripts" \
    "$VENV/bin/schemathesis" --config-file "$ROOT/scripts/schemathesis.toml" \
      run "http://127.0.0.1:$port/openapi.json" \
    --checks all \
    --max-examples "$MAX_EXAMPLES" \
    --max-time "$MAX_TIME" \
    --header "Authorization: Bearer $key" \
    --generation-database none \
    --no-color)
}

status=0
run ingest "$INGEST" dev-producer || status=1
run "query API" "$QUERY" dev-analyst || status=1
if ((status != 0)); then
  log "eventide log (last 50 lines)"
  tail -50 "$WORK/eventide.log"
fi
exit "$status"
