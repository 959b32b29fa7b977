-- Alerts and the notification outbox. The same tables exist on SQLite
-- (migrations/sqlite): keep columns, order and constraints in step.

-- One row per incident. An alert is active while open or acknowledged.
CREATE TABLE alerts (
    id                BIGINT    GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- What the alert is about, e.g. 'system:service:api' or 'job:nightly-backup'.
    fingerprint       TEXT      NOT NULL,
    source            TEXT      NOT NULL
        CONSTRAINT alerts_source_known CHECK (source IN ('service', 'job')),
    -- The service or job name.
    subject           TEXT      NOT NULL,
    severity          TEXT      NOT NULL
        CONSTRAINT alerts_severity_known CHECK (severity IN ('critical', 'warning', 'info')),
    status            TEXT      NOT NULL
        CONSTRAINT alerts_status_known CHECK (status IN ('open', 'acknowledged', 'resolved')),
    message           TEXT      NOT NULL,
    opened_at         TIMESTAMP NOT NULL,
    acknowledged_at   TIMESTAMP NULL,
    acknowledged_by   TEXT      NULL,
    resolved_at       TIMESTAMP NULL,
    resolution_note   TEXT      NULL,
    -- For escalation: the last level notified (0 = none yet) and when.
    escalation_level  INTEGER   NOT NULL DEFAULT 0,
    last_escalated_at TIMESTAMP NULL,
    -- The last time anyone was notified about it (opening, reminder, escalation).
    last_notified_at  TIMESTAMP NULL,
    CONSTRAINT alerts_resolved_has_time CHECK ((status = 'resolved') = (resolved_at IS NOT NULL))
);

-- Deduplication by the database: at most one active alert per fingerprint.
-- Two `alerts` runs racing to open the same alert cannot both succeed.
CREATE UNIQUE INDEX alerts_one_active ON alerts (fingerprint) WHERE status <> 'resolved';
CREATE INDEX alerts_opened ON alerts (opened_at);

-- The notification outbox. A row is written in the same transaction as the
-- state change it announces, so a crash can neither lose nor duplicate it;
-- the sender delivers pending rows and records every attempt's outcome.
CREATE TABLE notifications (
    id              BIGINT    GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- e.g. 'alert:42:opened:ops-webhook': the same event for the same target
    -- is enqueued once however often the enqueuing step runs. Sent to
    -- receivers as the Idempotency-Key header.
    idempotency_key TEXT      NOT NULL,
    -- The name of a [notify.NAME] table in schedules.toml.
    target          TEXT      NOT NULL,
    alert_id        BIGINT    NULL,
    event           TEXT      NOT NULL
        CONSTRAINT notifications_event_known CHECK (event IN ('opened', 'resolved', 'reminder', 'escalated')),
    -- The event as JSON; the sender renders it in the target's format.
    payload         TEXT      NOT NULL,
    status          TEXT      NOT NULL
        CONSTRAINT notifications_status_known CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER   NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    delivered_at    TIMESTAMP NULL,
    last_error      TEXT      NULL
);

CREATE UNIQUE INDEX notifications_once ON notifications (idempotency_key);
-- The sender's queue: pending rows by when they are next due.
CREATE INDEX notifications_due ON notifications (status, next_attempt_at);
