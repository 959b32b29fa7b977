#!/usr/bin/env bash
# Idle RSS of the daemon: runs the release binary's `ops-worker run` with the
# repository's schedules.toml on a fresh temporary SQLite file, waits
# (IDLE_SECS, default 10 s; no job of schedules.toml is due that early),
# reads VmRSS from /proc/PID/status, stops it with SIGTERM and checks that it
# exits 0. Build first:
#
#   CARGO_TARGET_DIR=/work/target-bench cargo build --release
#   CARGO_TARGET_DIR=/work/target-bench bash benches/idle_rss.sh
#
# OPS_WORKER_BIN overrides the binary (default $CARGO_TARGET_DIR/release/ops-worker).
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${OPS_WORKER_BIN:-${CARGO_TARGET_DIR:-target}/release/ops-worker}"
idle_secs="${IDLE_SECS:-10}"
if [ ! -x "$bin" ]; then
  echo "idle_rss: no binary at $bin; run cargo build --release first" >&2
  exit 1
fi

tmp="$(mktemp -d)"
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# The defaults of schedules.toml, not whatever this shell exports.
env -u HEARTBEAT_EVERY -u RUST_LOG -u LOG_FORMAT \
  DATABASE_URL="sqlite://$tmp/ops-worker.db" OPS_WORKER_ID=idle-rss \
  "$bin" --config schedules.toml run 2>"$tmp/stderr" &
pid=$!

sleep "$idle_secs"
if ! kill -0 "$pid" 2>/dev/null; then
  echo "idle_rss: ops-worker exited before the measurement; its stderr:" >&2
  cat "$tmp/stderr" >&2
  exit 1
fi
field() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$pid/status"; }
rss_kib="$(field VmRSS)"
anon_kib="$(field RssAnon)"
file_kib="$(field RssFile)"
hwm_kib="$(field VmHWM)"
threads="$(field Threads)"

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

awk -v rss="$rss_kib" -v anon="$anon_kib" -v file="$file_kib" -v hwm="$hwm_kib" \
  -v threads="$threads" -v secs="$idle_secs" 'BEGIN {
  printf "idle RSS after %s s: %d KiB (%.2f MiB, %.2f MB): anonymous %d KiB, file-backed %d KiB; peak %d KiB; %d threads; exit code 0 after SIGTERM\n",
    secs, rss, rss / 1024, rss * 1024 / 1e6, anon, file, hwm, threads
}'
