-- What the `report` kind writes. The same table exists on SQLite
-- (migrations/sqlite): keep columns, order and constraints in step.

-- One report per name and period: re-running a period (a late run, a
-- catch-up, `ops-worker run-job`) replaces it.
CREATE TABLE reports (
    id           BIGINT    GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         TEXT      NOT NULL,
    -- `2026-11-21` for a day, `2026-W47` for an ISO week.
    period       TEXT      NOT NULL,
    period_start TIMESTAMP NOT NULL,
    period_end   TIMESTAMP NOT NULL,
    generated_at TIMESTAMP NOT NULL,
    -- For machines.
    json         TEXT      NOT NULL,
    -- For people.
    markdown     TEXT      NOT NULL,
    CONSTRAINT reports_name_period_unique UNIQUE (name, period)
);

-- `report show` without --period: the newest.
CREATE INDEX reports_newest ON reports (period_start);
