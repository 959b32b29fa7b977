DROP INDEX job_runs_running_job;
