-- Every write made through the HTTP API (pause, resume, acknowledge,
-- resolve, run now), allowed or not, as `GET /api/v1/audit` shows it. The
-- same table exists on PostgreSQL (migrations/postgres): keep columns, order and
-- constraints in step.
CREATE TABLE audit_log (
    id      INTEGER   PRIMARY KEY AUTOINCREMENT,
    -- When (UTC).
    at      TIMESTAMP NOT NULL,
    -- The token's name, the person of an acknowledge link, or "local"
    -- (loopback without tokens).
    actor   TEXT      NOT NULL,
    -- pause, resume, ack, resolve, run.
    action  TEXT      NOT NULL,
    -- What it acted on: "job:NAME", "alert:ID".
    target  TEXT      NOT NULL,
    -- The client's address (IP:port as the server saw it).
    source  TEXT      NOT NULL,
    -- ok, forbidden, not_found, conflict, invalid.
    outcome TEXT      NOT NULL
        CHECK (outcome IN ('ok', 'forbidden', 'not_found', 'conflict', 'invalid')),
    -- What the outcome means in words, or NULL.
    detail  TEXT      NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
