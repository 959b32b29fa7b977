DROP INDEX job_runs_job_last_failure;
