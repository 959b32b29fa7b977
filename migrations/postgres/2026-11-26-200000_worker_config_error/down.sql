ALTER TABLE workers DROP COLUMN config_error;
