-- A job's runs page filtered by status (`GET /api/v1/jobs/{name}/runs?status=`,
-- src/db/runs/reads.rs `runs_page`): without this index a status that is
-- rare for the job (`running`, `skipped`) walks back through all of its
-- rows, or PostgreSQL scans the whole table (180 ms at 1,000,000 rows,
-- docs/performance.md). Led by (job_name, status), it returns one status of
-- one job newest first, so LIMIT stops early.
CREATE INDEX job_runs_job_status ON job_runs (job_name, status, scheduled_for DESC, id DESC);

-- It also answers "newest success of a job" (the overview's last success,
-- retention's kept success) as the partial index below did, which it
-- replaces: one index more to maintain per run would be the cost otherwise.
DROP INDEX job_runs_job_last_success;
