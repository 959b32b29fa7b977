# ops-worker container image: a release build on the official Rust image
# (bookworm, like the runtime stage, so the binary finds the glibc it was
# linked against), run as a non-root user on debian:bookworm-slim. The build
# is the host's: `cargo build --release --locked`.
#
#   docker build -t ops-worker .
#   docker run --init -e DATABASE_URL=postgres://... ops-worker      # the daemon
#   docker run --init --rm ops-worker run-job heartbeat              # one job once
# (--init, as compose's `init: true`: a PID 1 that reaps the command kind's
# orphaned grandchildren. Without DATABASE_URL it uses SQLite in the WORKDIR.)

# ---------------------------------------------------------------- build ----
FROM rust:1.95-bookworm AS build
WORKDIR /src

# 1. Dependencies only, cached until a manifest, the lock file or the build
#    settings change: the manifests with stub sources. The `[[bench]]` files
#    Cargo.toml names must exist for the manifest to load, even though a
#    plain build never compiles them, so benches/ comes in whole.
COPY Cargo.toml Cargo.lock ./
COPY .cargo/config.toml .cargo/
COPY jobs/Cargo.toml jobs/Cargo.toml
COPY benches benches
RUN mkdir -p src jobs/src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs jobs/src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src jobs/src

# 2. The real sources. COPY keeps the files' modification times, which can be
#    older than the stub build's outputs, so touch them: cargo then rebuilds
#    both workspace crates instead of keeping the stubs. build.rs reruns when
#    migrations/ changes; the migrations are embedded at compile time.
COPY build.rs ./
COPY migrations migrations
COPY jobs/src jobs/src
COPY src src
RUN find src jobs/src migrations build.rs -exec touch {} + \
    && cargo build --release --locked

# -------------------------------------------------------------- runtime ----
FROM debian:bookworm-slim AS runtime

# ca-certificates for the webhook and health kinds' HTTPS (rustls reads the
# system store). Not version-pinned: Debian replaces a package version on the
# mirrors with each security update, so a pinned version stops installing;
# the base image tag pins the release (bookworm) instead.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# A fixed uid/gid, so volumes and host files can be owned to match. The
# working directory is writable: the SQLite default (./ops-worker.db, when
# DATABASE_URL is unset) and the report kind's reports/ are written there.
RUN groupadd --system --gid 10001 ops-worker \
    && useradd --system --uid 10001 --gid ops-worker \
        --home-dir /var/lib/ops-worker --shell /usr/sbin/nologin ops-worker \
    && install -d -o ops-worker -g ops-worker -m 0750 /var/lib/ops-worker

COPY --from=build /src/target/release/ops-worker /usr/local/bin/ops-worker
COPY schedules.toml /etc/ops-worker/schedules.toml
ENV OPS_WORKER_CONFIG=/etc/ops-worker/schedules.toml

WORKDIR /var/lib/ops-worker
# By name, as created above with the fixed uid 10001 (inside this image the
# name always resolves). Kubernetes' runAsNonRoot cannot check a name: set
# runAsUser: 10001 there, or write `USER 10001:10001` here and drop the ignore.
# hadolint ignore=DL3066
USER ops-worker

# `run` drains on SIGTERM: no new runs, running jobs get 30s (--grace), then
# they are interrupted and every record is written.
STOPSIGNAL SIGTERM
# Exit 0 while this worker's scheduler heartbeat in the database is fresh.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["ops-worker", "health"]
ENTRYPOINT ["ops-worker"]
CMD ["run"]
