-- A claim made with the overlap check (`skip` and `queue` across workers)
-- is marked exclusive, and at most one exclusive run of a job is unfinished
-- at a time: the database, not the claim's NOT EXISTS, decides between two
-- workers that claim different slots of one job at the same instant (under
-- READ COMMITTED both could see no running row and both insert).
ALTER TABLE job_runs ADD COLUMN exclusive BOOLEAN NOT NULL DEFAULT FALSE;
CREATE UNIQUE INDEX job_runs_one_exclusive ON job_runs (job_name) WHERE finished_at IS NULL AND exclusive;
