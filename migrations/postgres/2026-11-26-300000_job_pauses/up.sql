-- Paused jobs: `ops-worker pause` writes a row, `ops-worker resume` ends it
-- (sets `until` to the time of the resume), and every daemon re-reads the
-- table with each heartbeat. The same table exists on SQLite (migrations/sqlite):
-- keep columns, order and constraints in step.

-- At most one pause per job; a new pause replaces the job's old one.
CREATE TABLE job_pauses (
    job_name  TEXT      PRIMARY KEY,
    -- From when the job's slots are not run (UTC).
    paused_at TIMESTAMP NOT NULL,
    -- Until when (UTC, exclusive); NULL: until `ops-worker resume`. A row
    -- whose `until` passed is kept: its slots still do not count as missed.
    until     TIMESTAMP NULL,
    -- Why, as the operator gave it (`--reason`).
    reason    TEXT      NULL,
    -- Who (`--by`, default $USER).
    paused_by TEXT      NOT NULL
);
