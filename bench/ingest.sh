#!/usr/bin/env bash
# Ingest benchmark on the local default: single increments (without and
# with an Idempotency-Key of their own each) and 100-item batches through wrk (2 threads, 32 connections, loopback), beside three
# ceilings measured in the same run: a bare axum handler answering 202, and
# raw rdkafka producing into the same in-process broker (on a topic of its
# own that nothing reads) with 32 records in flight, each sender waiting for
# its acknowledgement as a wrk connection waits for its 202 (the single-event
# ceiling), and with records queued 10,000 at a time (the batch ceiling);
# then valid increments queued into the pipeline's own topic, so the
# processor consumes and stores them while they are produced, as it does
# ingest's batches.
# Between runs it waits until the processor has caught up. Prints a Markdown
# table.
# Usage: bash bench/ingest.sh [seconds per run, default 15]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
secs="${1:-15}"

command -v wrk >/dev/null || {
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get install -y -qq wrk >/dev/null
}
cargo build --release -q -p eventide -p testcontainers-tests --bins

data="$(mktemp -d)"
cleanup() { kill "${eventide_pid:-}" "${bare_pid:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT

EVENTIDE_RATE_LIMIT=10000000 ./target/release/eventide --data-dir "$data" \
  --local-broker-listen 127.0.0.1:19192 --ingest-listen 127.0.0.1:18180 \
  --query-listen 127.0.0.1:18181 --processor-listen 127.0.0.1:18182 >"$data/eventide.log" 2>&1 &
eventide_pid=$!
./target/release/bare-axum 127.0.0.1:18190 &
bare_pid=$!
for _ in $(seq 1 200); do
  curl -sf http://127.0.0.1:18180/readyz >/dev/null && curl -sf -o /dev/null -X POST http://127.0.0.1:18190/v1/increment && break
  sleep 0.1
done

run_wrk() { # url script -> "requests/s p50 p99"
  wrk -t2 -c32 -d"${secs}s" --latency -s "$2" "$1" | awk '
    /Requests\/sec/ {rps=$2}
    /^ +50%/ {p50=$2} /^ +99%/ {p99=$2}
    /Non-2xx/ {bad=$NF}
    END {printf "%s %s %s %s\n", rps, p50, p99, (bad == "" ? 0 : bad)}'
}

# Waits (at most 3 minutes) until the processor has consumed everything
# produced so far, so each run meets a broker that serves it alone.
settle() {
  for _ in $(seq 1 360); do
    lag="$(curl -sf http://127.0.0.1:18182/metrics | awk '/^eventide_processor_consumer_lag/ {sum += $NF} END {print sum + 0}')"
    [ "${lag:-1}" = "0" ] && return 0
    sleep 0.5
  done
  echo "processor still lagging by $lag records; measuring anyway" >&2
}

settle
read -r single_rps single_p50 single_p99 single_bad < <(run_wrk http://127.0.0.1:18180 bench/increment.lua)
settle
read -r keyed_rps keyed_p50 keyed_p99 keyed_bad < <(run_wrk http://127.0.0.1:18180 bench/increment-keyed.lua)
settle
read -r batch_rps batch_p50 batch_p99 batch_bad < <(run_wrk http://127.0.0.1:18180 bench/batch.lua)
settle
read -r bare_rps bare_p50 bare_p99 _ < <(run_wrk http://127.0.0.1:18190 bench/increment.lua)
rate_of() { awk '{print $(NF-1)}'; }
settle
raw_single="$(./target/release/raw-produce 127.0.0.1:19192 bench-raw 50000 90 32 | rate_of)"
settle
raw_rate="$(./target/release/raw-produce 127.0.0.1:19192 bench-raw 200000 90 | rate_of)"
settle
raw_pipeline="$(./target/release/raw-produce 127.0.0.1:19192 increments 200000 90 | rate_of)"
batch_items="$(awk -v r="$batch_rps" 'BEGIN {printf "%.0f", r * 100}')"
keyed_ratio="$(awk -v k="$keyed_rps" -v s="$single_rps" 'BEGIN {printf "%.2f", k / s}')"

cat <<TABLE
| run | requests/s | events/s | p50 | p99 | non-2xx |
|---|---|---|---|---|---|
| ingest, single increment | $single_rps | $single_rps | $single_p50 | $single_p99 | $single_bad |
| ingest, single increment with Idempotency-Key (×$keyed_ratio of the above) | $keyed_rps | $keyed_rps | $keyed_p50 | $keyed_p99 | $keyed_bad |
| ingest, batch of 100 | $batch_rps | $batch_items | $batch_p50 | $batch_p99 | $batch_bad |
| ceiling: bare axum 202 | $bare_rps | — | $bare_p50 | $bare_p99 | — |
| ceiling: raw rdkafka, 32 records in flight (acks=all) | — | $raw_single | — | — | — |
| ceiling: raw rdkafka, queued (acks=all) | — | $raw_rate | — | — | — |
| ceiling: raw rdkafka, queued Avro increments the processor consumes too | — | $raw_pipeline | — | — | — |
TABLE
