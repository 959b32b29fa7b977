CREATE INDEX job_runs_job_last_success ON job_runs (job_name, scheduled_for DESC, id DESC)
    WHERE status = 'success';
DROP INDEX job_runs_job_status;
