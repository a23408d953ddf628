#!/usr/bin/env bash
# Tracing overhead at the single-event ingest bench: the release binary on the
# local default, single increments through wrk (2 threads, 32 connections)
# with export off, then again on a fresh data dir with every span exported
# (OTEL_TRACES_SAMPLER=always_on) to a collector that accepts everything (a
# small Python HTTP server answering 200), each request carrying a
# traceparent so the trace runs through Kafka into the processor. Prints both
# rates and their ratio.
# Usage: bash bench/tracing.sh [seconds per run, default 15]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
secs="${1:-15}"

command -v wrk >/dev/null || {
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get install -y -qq wrk >/dev/null
}
cargo build --release -q -p eventide

work="$(mktemp -d)"
cleanup() { kill "${eventide_pid:-}" "${collector_pid:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

python3 - 19318 <<'PY' &
import http.server, sys
class Accept(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200); self.send_header("content-length", "0"); self.end_headers()
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Accept).serve_forever()
PY
collector_pid=$!

cat >"$work/traced.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer dev-producer"
wrk.headers["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
local n = 0
request = function()
  n = n + 1
  local body = string.format('{"key":"00000000-0000-4000-8000-%012d","value":%d}', (n % 1000) + 1, (n % 5) + 1)
  return wrk.format(nil, "/v1/increment", nil, body)
end
LUA

run() { # run <name> <port base> [env...] -> "requests/s p50 p99"
  local name=$1 base=$2
  shift 2
  mkdir -p "$work/$name"
  env "$@" EVENTIDE_RATE_LIMIT=10000000 ./target/release/eventide --data-dir "$work/$name" \
    --local-broker-listen "127.0.0.1:$((base + 12))" --ingest-listen "127.0.0.1:$base" \
    --query-listen "127.0.0.1:$((base + 1))" --processor-listen "127.0.0.1:$((base + 2))" >"$work/$name.log" 2>&1 &
  eventide_pid=$!
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$base/readyz" >/dev/null && break
    sleep 0.1
  done
  curl -sf "http://127.0.0.1:$base/readyz" >/dev/null || { tail -20 "$work/$name.log" >&2; exit 1; }
  wrk -t2 -c32 -d"${secs}s" --latency -s "$work/traced.lua" "http://127.0.0.1:$base" | awk '
    /Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2}
    END {printf "%s %s %s\n", rps, p50, p99}'
  kill "$eventide_pid"
  wait "$eventide_pid" 2>/dev/null || true
}

read -r off_rps off_p50 off_p99 < <(run off 18280)
read -r on_rps on_p50 on_p99 < <(run on 18380 OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:19318 OTEL_TRACES_SAMPLER=always_on)
ratio="$(awk -v a="$on_rps" -v b="$off_rps" 'BEGIN {printf "%.2f", a / b}')"
cat <<TABLE
| run | requests/s | p50 | p99 |
|---|---|---|---|
| single increment, export off | $off_rps | $off_p50 | $off_p99 |
| single increment, every span exported (×$ratio) | $on_rps | $on_p50 | $on_p99 |
TABLE
