-- Runs of `push` jobs: signals from jobs that run elsewhere (/ping/...),
-- recorded with trigger 'push'. The same change is made on SQLite
-- (migrations/sqlite), which must rebuild the table to change a CHECK.
ALTER TABLE job_runs DROP CONSTRAINT job_runs_trigger_known;
ALTER TABLE job_runs ADD CONSTRAINT job_runs_trigger_known
    CHECK ("trigger" IN ('schedule', 'catch_up', 'manual', 'retry', 'push'));
