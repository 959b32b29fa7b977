-- What the `metrics` kind records. The same table exists on SQLite
-- (migrations/sqlite): keep columns, order and constraints in step.

-- One sample per series per collection. `labels` is a JSON object with its
-- keys sorted ('{}' for none), so one series always has the same text.
-- Pruned by the metrics job's `retention` (default 7 days).
CREATE TABLE metric_samples (
    id           BIGINT           GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_name     TEXT             NOT NULL,
    name         TEXT             NOT NULL,
    labels       TEXT             NOT NULL DEFAULT '{}',
    value        DOUBLE PRECISION NOT NULL,
    collected_at TIMESTAMP        NOT NULL
);

-- A series over a period (reports, min/avg/max).
CREATE INDEX metric_samples_name_time ON metric_samples (name, collected_at);
-- Retention deletes by age.
CREATE INDEX metric_samples_time ON metric_samples (collected_at);
