-- A slot's `jitter` delay, in milliseconds: a scheduled or caught-up run of a
-- job with `jitter` waits until scheduled_for + jitter_ms before it claims
-- its slot, and every worker computes the same delay for a slot. NULL for
-- manual runs, retries and jobs without jitter. `scheduled_for` stays the
-- unjittered slot. The same column exists on SQLite
-- (migrations/sqlite): keep them in step.
ALTER TABLE job_runs ADD COLUMN jitter_ms BIGINT NULL
    CONSTRAINT job_runs_jitter_not_negative CHECK (jitter_ms >= 0);
