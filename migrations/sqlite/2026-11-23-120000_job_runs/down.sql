-- Drops the run history with its indexes; only for development databases.
DROP TABLE job_runs;
