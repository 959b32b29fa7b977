ALTER TABLE job_runs DROP COLUMN jitter_ms;
