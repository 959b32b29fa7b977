DROP INDEX job_runs_one_exclusive;
ALTER TABLE job_runs DROP COLUMN exclusive;
