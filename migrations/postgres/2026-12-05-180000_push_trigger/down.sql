DELETE FROM job_runs WHERE "trigger" = 'push';
ALTER TABLE job_runs DROP CONSTRAINT job_runs_trigger_known;
ALTER TABLE job_runs ADD CONSTRAINT job_runs_trigger_known
    CHECK ("trigger" IN ('schedule', 'catch_up', 'manual', 'retry'));
