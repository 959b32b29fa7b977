-- Why the worker's schedules.toml on disk is not the one it runs: set when a
-- changed file failed validation (the previous schedule keeps running),
-- cleared when a valid file loads. Shown by `ops-worker status`.
ALTER TABLE workers ADD COLUMN config_error TEXT NULL;
