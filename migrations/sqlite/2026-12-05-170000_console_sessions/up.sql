-- The web console's signed-in sessions (src/http/console/session.rs). The
-- cookie holds a random id; only its SHA-256 is stored, so a read of this
-- table cannot be replayed as a cookie. The same table exists on PostgreSQL
-- (migrations/postgres): keep columns, order and constraints in step.
CREATE TABLE console_sessions (
    -- SHA-256 of the cookie's id, hex.
    id_hash    TEXT      NOT NULL PRIMARY KEY,
    -- The [api.tokens.NAME] signed in with; its role is read from the
    -- running configuration at each request.
    token_name TEXT      NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX console_sessions_expires_at ON console_sessions (expires_at);
