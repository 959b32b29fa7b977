DROP TABLE job_pauses;
