-- Ad-hoc silences: `ops-worker silence add` writes a row, `silence remove`
-- deletes it, and every `alerts` and `escalation` run reads the active
-- ones, so every replica honours them and they survive restarts. The same
-- table exists on PostgreSQL (migrations/postgres): keep columns, order and
-- constraints in step.
CREATE TABLE silences (
    id         INTEGER   PRIMARY KEY AUTOINCREMENT,
    -- A fingerprint glob, `*` the only wildcard: 'system:service:api', 'job:*'.
    pattern    TEXT      NOT NULL,
    -- Silenced over [starts_at, ends_at) (UTC).
    starts_at  TIMESTAMP NOT NULL,
    ends_at    TIMESTAMP NOT NULL,
    -- Why, as the operator gave it (`--reason`).
    reason     TEXT      NOT NULL,
    -- Who (`--by`, default $USER).
    created_by TEXT      NOT NULL,
    CONSTRAINT silences_ends_after_start CHECK (ends_at > starts_at)
);

-- The active ones are read by when they end.
CREATE INDEX silences_ends ON silences (ends_at);
