DELETE FROM job_runs WHERE "trigger" = 'push';
CREATE TABLE job_runs_new (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    job_name      TEXT      NOT NULL,
    kind          TEXT      NOT NULL,
    scheduled_for TIMESTAMP NOT NULL,
    "trigger"     TEXT      NOT NULL
        CONSTRAINT job_runs_trigger_known
        CHECK ("trigger" IN ('schedule', 'catch_up', 'manual', 'retry')),
    attempt       INTEGER   NOT NULL,
    worker_id     TEXT      NOT NULL,
    started_at    TIMESTAMP NOT NULL,
    finished_at   TIMESTAMP NULL,
    status        TEXT      NOT NULL
        CONSTRAINT job_runs_status_known
        CHECK (status IN ('running', 'success', 'failed', 'timeout', 'panicked',
                          'interrupted', 'skipped', 'abandoned')),
    error         TEXT      NULL,
    output        TEXT      NULL,
    duration_ms   BIGINT    NULL,
    missed        INTEGER   NOT NULL DEFAULT 0
        CONSTRAINT job_runs_missed_not_negative CHECK (missed >= 0),
    jitter_ms     BIGINT    NULL
        CONSTRAINT job_runs_jitter_not_negative CHECK (jitter_ms >= 0),
    exclusive     BOOLEAN   NOT NULL DEFAULT FALSE,
    CONSTRAINT job_runs_finished_iff_not_running
        CHECK ((status = 'running') = (finished_at IS NULL)),
    CONSTRAINT job_runs_slot_claim UNIQUE (job_name, scheduled_for, attempt)
);

INSERT INTO job_runs_new SELECT * FROM job_runs;
-- Ids are never reused (AUTOINCREMENT): the new table goes on from the old
-- one's counter, which can be above the largest id left after pruning.
DELETE FROM sqlite_sequence WHERE name = 'job_runs_new';
INSERT INTO sqlite_sequence (name, seq) SELECT 'job_runs_new', seq FROM sqlite_sequence WHERE name = 'job_runs';
DROP TABLE job_runs;
ALTER TABLE job_runs_new RENAME TO job_runs;

CREATE INDEX job_runs_job_newest ON job_runs (job_name, scheduled_for DESC, id DESC);
CREATE INDEX job_runs_newest ON job_runs (scheduled_for DESC, id DESC);
CREATE INDEX job_runs_job_status ON job_runs (job_name, status, scheduled_for DESC, id DESC);
CREATE INDEX job_runs_running ON job_runs (job_name, worker_id) WHERE finished_at IS NULL;
CREATE INDEX job_runs_job_last_failure ON job_runs (job_name, scheduled_for DESC, id DESC)
    WHERE status IN ('failed', 'timeout', 'panicked', 'interrupted', 'abandoned');
CREATE UNIQUE INDEX job_runs_one_exclusive ON job_runs (job_name) WHERE finished_at IS NULL AND exclusive;
