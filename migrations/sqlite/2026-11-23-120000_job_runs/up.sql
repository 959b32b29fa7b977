-- One row per run of a job. The same table exists on PostgreSQL
-- (migrations/postgres): keep the columns, their order and the constraints in
-- step, so one src/db/schema.rs serves both.
--
-- Timestamps are UTC, declared TIMESTAMP like on PostgreSQL. Diesel stores
-- them as text 'YYYY-MM-DD HH:MM:SS[.ffffff]', which sorts and compares
-- chronologically, so the same ORDER BY and equality work on both backends.
-- Statuses and triggers are TEXT with CHECKs, as on PostgreSQL.
CREATE TABLE job_runs (
    -- The rowid. AUTOINCREMENT so an id is never reused after the newest row
    -- is deleted: ids order runs that share a slot. Diesel reads it as BigInt
    -- (`sqlite_integer_primary_key_is_bigint` in diesel.toml).
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    job_name      TEXT      NOT NULL,
    kind          TEXT      NOT NULL,
    -- The slot this run belongs to, whole seconds: part of the claim key, so
    -- sub-second noise would let two workers claim "the same" slot.
    scheduled_for TIMESTAMP NOT NULL,
    "trigger"     TEXT      NOT NULL
        CONSTRAINT job_runs_trigger_known
        CHECK ("trigger" IN ('schedule', 'catch_up', 'manual', 'retry')),
    attempt       INTEGER   NOT NULL,
    -- Which process ran it: at start-up a worker abandons only its own
    -- leftover 'running' rows, never another live worker's.
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
    -- Slots before this one that were not run (coalesced or skipped by the
    -- catch-up policy), so a missed slot is never lost silently.
    missed        INTEGER   NOT NULL DEFAULT 0
        CONSTRAINT job_runs_missed_not_negative CHECK (missed >= 0),
    -- A row is finished exactly when it has left 'running': finishing twice
    -- is prevented by `WHERE finished_at IS NULL`, and this keeps a finished
    -- row from claiming to be still running (or the reverse).
    CONSTRAINT job_runs_finished_iff_not_running
        CHECK ((status = 'running') = (finished_at IS NULL)),
    -- The slot claim: inserting with ON CONFLICT DO NOTHING lets exactly one
    -- worker win a slot (a retry is a new attempt, hence a new claim).
    CONSTRAINT job_runs_slot_claim UNIQUE (job_name, scheduled_for, attempt)
);

-- "History of job X, newest first" and "latest run of each job" both read
-- one job's rows in ORDER BY scheduled_for DESC, id DESC: this index returns
-- them in that order, so LIMIT stops early and nothing is sorted. (The claim
-- index above cannot: it breaks ties by attempt, not id.)
CREATE INDEX job_runs_job_newest ON job_runs (job_name, scheduled_for DESC, id DESC);

-- `ops-worker history` without a job: newest runs of all jobs, read in
-- index order instead of sorting the whole table for a LIMIT.
CREATE INDEX job_runs_newest ON job_runs (scheduled_for DESC, id DESC);

-- "Last success of each job" without walking back through a long run of
-- failures: only successes are in this index.
CREATE INDEX job_runs_job_last_success ON job_runs (job_name, scheduled_for DESC, id DESC)
    WHERE status = 'success';

-- At start-up a worker looks for its runs left in 'running'. Such rows are
-- few at any time, so a partial index stays tiny however long the history.
-- The predicate is `finished_at IS NULL` (the same rows, by the CHECK
-- above) because it has no value to bind: PostgreSQL cannot match a partial
-- index against `status = $1` in a cached generic plan.
CREATE INDEX job_runs_running ON job_runs (worker_id) WHERE finished_at IS NULL;
