# Stand-in for rust:1.95-bookworm when no registry is reachable: the
# debian:bookworm-slim stand-in, the C toolchain the build needs, and the
# host's Rust toolchain (rustup proxies plus one toolchain) at the official
# image's paths, with its environment. Built by .ci/container-e2e from a
# context it assembles (rustup/, cargo-bin/); never used outside the test.
FROM debian:bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
ENV RUSTUP_HOME=/usr/local/rustup \
    CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
COPY rustup /usr/local/rustup
COPY cargo-bin /usr/local/cargo/bin
RUN cargo --version && rustc --version
