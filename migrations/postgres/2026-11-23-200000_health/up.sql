-- What the `health` kind records. The same tables exist on SQLite
-- (migrations/sqlite): keep columns, order and constraints in step.

-- The latest state of each service: what a dashboard reads. One row per
-- service, upserted by every check; the counters and `since` are computed by
-- the database in the upsert, so two writers cannot lose an update.
CREATE TABLE service_health (
    service               TEXT      NOT NULL PRIMARY KEY,
    job_name              TEXT      NOT NULL,
    status                TEXT      NOT NULL
        CONSTRAINT service_health_status_known CHECK (status IN ('up', 'degraded', 'down')),
    http_status           INTEGER   NULL,
    latency_ms            BIGINT    NULL,
    error                 TEXT      NULL,
    checked_at            TIMESTAMP NOT NULL,
    -- Down checks in a row, and healthy (up or degraded) checks in a row:
    -- what the `alerts` kind's fail_after / resolve_after count.
    consecutive_failures  INTEGER   NOT NULL DEFAULT 0
        CONSTRAINT service_health_failures_not_negative CHECK (consecutive_failures >= 0),
    consecutive_successes INTEGER   NOT NULL DEFAULT 0
        CONSTRAINT service_health_successes_not_negative CHECK (consecutive_successes >= 0),
    -- When the service entered its current status.
    since                 TIMESTAMP NOT NULL
);

-- Every check, for reports and uptime. Pruned by the health job's
-- `retention` (default 30 days).
CREATE TABLE health_checks (
    id          BIGINT    GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service     TEXT      NOT NULL,
    job_name    TEXT      NOT NULL,
    status      TEXT      NOT NULL
        CONSTRAINT health_checks_status_known CHECK (status IN ('up', 'degraded', 'down')),
    http_status INTEGER   NULL,
    latency_ms  BIGINT    NULL,
    error       TEXT      NULL,
    checked_at  TIMESTAMP NOT NULL
);

-- A service's history over a period (reports, uptime).
CREATE INDEX health_checks_service_time ON health_checks (service, checked_at);
-- Retention deletes by age.
CREATE INDEX health_checks_time ON health_checks (checked_at);
