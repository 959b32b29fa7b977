-- Worker processes and their heartbeats: `ops-worker health` (the container
-- healthcheck) and `ops-worker status` read it. The same table exists on
-- PostgreSQL (migrations/postgres): keep columns, order and constraints in step.

-- One row per worker id (OPS_WORKER_ID, default the host name): a restart of
-- the same worker takes its row over.
CREATE TABLE workers (
    id           TEXT      PRIMARY KEY,
    host         TEXT      NOT NULL,
    pid          INTEGER   NOT NULL,
    -- The ops-worker version, e.g. 0.1.0.
    version      TEXT      NOT NULL,
    started_at   TIMESTAMP NOT NULL,
    -- Refreshed every few seconds by the running scheduler.
    heartbeat_at TIMESTAMP NOT NULL,
    -- SHA-256 of the schedules.toml it loaded (hex), to spot replicas
    -- running different files.
    config_hash  TEXT      NOT NULL,
    -- Set by a clean shutdown; NULL while it runs (or after a crash).
    stopped_at   TIMESTAMP NULL
);
