-- History retention keeps each job's newest run that ended without success
-- (src/db/runs.rs, `prune_runs`) and asks for it with every batch it deletes.
-- Without this index that lookup walks back through all of a job's
-- successes; failures are few, so the index stays small. The status list
-- must match the query's word for word for the planner to use the index.
CREATE INDEX job_runs_job_last_failure ON job_runs (job_name, scheduled_for DESC, id DESC)
    WHERE status IN ('failed', 'timeout', 'panicked', 'interrupted', 'abandoned');
