# Stand-in for postgres:15-bookworm when no registry is reachable: the
# debian:bookworm-slim stand-in with Debian's PostgreSQL 15 and the snakeoil
# certificate (ssl-cert), at the official image's paths (PGDATA, the socket in
# /var/run/postgresql, the binaries on PATH), started by a small entry point
# that honours POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB.
FROM debian:bookworm-slim
# No cluster at install time: the entry point makes one in PGDATA.
# hadolint ignore=DL3008
RUN mkdir -p /etc/postgresql-common/createcluster.d \
    && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/stand-in.conf \
    && apt-get update \
    && apt-get install -y --no-install-recommends ssl-cert postgresql-15 \
    && rm -rf /var/lib/apt/lists/* \
    && usermod -aG ssl-cert postgres \
    && install -d -o postgres -g postgres -m 2775 /var/run/postgresql \
    && install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/data
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/postgresql/15/bin \
    PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
VOLUME /var/lib/postgresql/data
ENTRYPOINT ["docker-entrypoint.sh"]
STOPSIGNAL SIGINT
EXPOSE 5432
CMD ["postgres"]
