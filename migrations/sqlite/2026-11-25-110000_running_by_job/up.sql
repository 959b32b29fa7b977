-- The overlap check of a claim: is a run of this job going on another
-- worker? Only unfinished rows are indexed, so it stays small.
CREATE INDEX job_runs_running_job ON job_runs (job_name) WHERE finished_at IS NULL;
