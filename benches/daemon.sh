# Sourced by benches/idle_rss.sh and benches/hot_functions.sh: how both start
# the image's daemon with the repository's schedules.toml at a known moment.

# The binary: OPS_WORKER_BIN, else the image's build (.cargo/image.toml) in
# $CARGO_TARGET_DIR/<host triple>/release/.
daemon_bin="${OPS_WORKER_BIN:-${CARGO_TARGET_DIR:-target}/$(rustc --print host-tuple)/release/ops-worker}"

# For `env`: the defaults of schedules.toml, not whatever this shell exports.
daemon_env=(-u HEARTBEAT_EVERY -u HEALTH_CHECK_INTERVAL -u LOG_FORMAT RUST_LOG=info)

# The GLIBC_TUNABLES of the Dockerfile's runtime stage.
image_tunables() { sed -nE 's/^ENV GLIBC_TUNABLES=//p' Dockerfile; }

# Sleeps until the wall clock is `offset` seconds past a :00 or :30 (every
# interval job of schedules.toml is due on one).
until_offset() {
  local offset=$1 now
  while :; do
    now=$(date +%s.%N)
    python3 -c "import sys; t = float(sys.argv[1]); s = (${offset} - t % 30) % 30; sys.exit(0 if s > 29.5 or s < 0.05 else 1)" "$now" && return
    python3 -c "import time, sys; t = float(sys.argv[1]); time.sleep(max(0.0, (${offset} - t % 30) % 30 - 0.01))" "$now"
  done
}
