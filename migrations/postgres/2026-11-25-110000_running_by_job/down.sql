DROP INDEX job_runs_running;
CREATE INDEX job_runs_running ON job_runs (worker_id) WHERE finished_at IS NULL;
