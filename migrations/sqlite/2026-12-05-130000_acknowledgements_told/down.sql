DELETE FROM notifications WHERE event = 'acknowledged';
CREATE TABLE notifications_new (
    id              INTEGER   PRIMARY KEY AUTOINCREMENT,
    -- e.g. 'alert:42:opened:ops-webhook': the same event for the same target
    -- is enqueued once however often the enqueuing step runs. Sent to
    -- receivers as the Idempotency-Key header.
    idempotency_key TEXT      NOT NULL,
    -- The name of a [notify.NAME] table in schedules.toml.
    target          TEXT      NOT NULL,
    alert_id        BIGINT    NULL,
    event           TEXT      NOT NULL
        CONSTRAINT notifications_event_known CHECK (event IN ('opened', 'resolved', 'reminder', 'escalated', 'report')),
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

INSERT INTO notifications_new SELECT * FROM notifications;
DROP TABLE notifications;
ALTER TABLE notifications_new RENAME TO notifications;

CREATE UNIQUE INDEX notifications_once ON notifications (idempotency_key);
CREATE INDEX notifications_due ON notifications (status, next_attempt_at);
