#!/usr/bin/env bash
# Idle RSS of the daemon: runs the release binary's `ops-worker run` with the
# repository's schedules.toml on a fresh temporary SQLite file and reads
# VmRSS from /proc/PID/status twice, each time 10 s after a :00 or :30 of
# the wall clock, when no job is running:
#
#   after start     10 s after start-up; no job has run yet (every job of
#                   schedules.toml is due on a :00 or :30, and the daemon is
#                   started 1-3 s after one);
#   between runs    after STEADY_SECS (default 120 s) of running, 10 s after
#                   the last :00/:30, so every interval job has run at least
#                   twice and the job runtime, its threads and the database
#                   connections the runs opened are all there.
#
# It measures the release build, the same as the image's (`cargo build
# --release --locked`). Then it stops the daemon with SIGTERM and checks that
# it exits 0. Build first:
#
#   cargo build --release --locked && bash benches/idle_rss.sh
#
# OPS_WORKER_BIN overrides the binary (default
# $CARGO_TARGET_DIR/release/ops-worker). STEADY_SECS=0 measures only after
# start. IDLE_RSS_DATABASE_URL measures against another database (default: a
# fresh SQLite file), e.g. postgres://postgres@127.0.0.1:5432/idle_rss after
# `createdb idle_rss`.
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${OPS_WORKER_BIN:-${CARGO_TARGET_DIR:-target}/release/ops-worker}"
steady_secs="${STEADY_SECS:-120}"
if [ ! -x "$bin" ]; then
  echo "idle_rss: no binary at $bin; run cargo build --release --locked first" >&2
  exit 1
fi

# Sleeps until the wall clock is next `offset` seconds past a :00 or :30
# (every interval job of schedules.toml is due on one). One process, so a
# busy machine's slow start of python cannot make it miss the instant.
until_offset() {
  python3 -c "import time; time.sleep((${1} - time.time()) % 30)"
}

tmp="$(mktemp -d)"
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

field() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$pid/status"; }
measure() {
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "idle_rss: ops-worker exited before the measurement; its stderr:" >&2
    cat "$tmp/stderr" >&2
    exit 1
  fi
  local rss anon file threads runs
  rss="$(field VmRSS)" anon="$(field RssAnon)" file="$(field RssFile)" threads="$(field Threads)"
  runs="$(grep -c 'run succeeded\|run did not succeed' "$tmp/stderr" || true)"
  awk -v what="$1" -v rss="$rss" -v anon="$anon" -v file="$file" -v threads="$threads" \
    -v runs="$runs" 'BEGIN {
    printf "idle RSS %s: %d KiB (%.2f MiB, %.2f MB): anonymous %d KiB, file-backed %d KiB; %d threads; %d runs so far\n",
      what, rss, rss / 1024, rss * 1024 / 1e6, anon, file, threads, runs
  }'
}

until_offset 1
# schedules.toml's own defaults, not whatever this shell exports.
env -u HEARTBEAT_EVERY -u HEALTH_CHECK_INTERVAL -u LOG_FORMAT -u GLIBC_TUNABLES -u MALLOC_ARENA_MAX RUST_LOG=info \
  DATABASE_URL="${IDLE_RSS_DATABASE_URL:-sqlite://$tmp/ops-worker.db}" OPS_WORKER_ID=idle-rss \
  "$bin" --config schedules.toml run 2>"$tmp/stderr" &
pid=$!
until_offset 11
measure "after start"
if [ "$steady_secs" -gt 0 ]; then
  sleep "$(( (steady_secs + 29) / 30 * 30 - 1 ))"
  until_offset 11
  measure "between runs"
fi

kill -TERM "$pid"
set +e
wait "$pid"
code=$?
set -e
pid=""
if [ "$code" -ne 0 ]; then
  echo "idle_rss: ops-worker exited with $code after SIGTERM (expected 0); its stderr:" >&2
  cat "$tmp/stderr" >&2
  exit 1
fi
echo "idle_rss: exit code 0 after SIGTERM"
