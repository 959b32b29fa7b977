-- The overlap check of a claim asks: is a run of this job going on another
-- worker? The index of unfinished rows now leads with the job (it led with
-- the worker): one index to maintain per run, as before. Finding a worker's
-- unfinished rows (start-up, dead workers) reads this small index whole.
DROP INDEX job_runs_running;
CREATE INDEX job_runs_running ON job_runs (job_name, worker_id) WHERE finished_at IS NULL;
