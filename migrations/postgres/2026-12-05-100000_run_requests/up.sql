-- "Run now" requests: stored by whoever asks (the HTTP API, `ops-worker
-- request-run`), claimed by exactly one live worker, which runs the job
-- through its runner (trigger 'manual') and links the run. The same table
-- exists on SQLite (migrations/sqlite): keep columns, order and constraints
-- in step.
CREATE TABLE run_requests (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_name     TEXT      NOT NULL,
    -- Who asked: a token name, a person (`--by`), as the caller records it.
    requested_by TEXT      NOT NULL,
    requested_at TIMESTAMP NOT NULL,
    -- pending: no worker has it; claimed: a worker took it and is starting
    -- its run; running: the run is claimed (`run_id` set); finished: the
    -- runner is done with it, or no run came of it (`error` says why).
    status       TEXT      NOT NULL
        CONSTRAINT run_requests_status_known
        CHECK (status IN ('pending', 'claimed', 'running', 'finished')),
    -- The worker id that claimed it; a claim of a worker that died before
    -- its run started goes back to 'pending'.
    claimed_by   TEXT      NULL,
    claimed_at   TIMESTAMP NULL,
    -- The job_runs row of its (first) attempt. No foreign key: pruning old
    -- runs (`retention`) must not be blocked by the requests that made them.
    run_id       BIGINT    NULL,
    finished_at  TIMESTAMP NULL,
    -- Why no run came of it (an unknown job, a skipped slot), or why its
    -- run was lost (the worker died during it).
    error        TEXT      NULL,
    CONSTRAINT run_requests_claimed_has_worker
        CHECK ((status = 'pending') = (claimed_by IS NULL)),
    CONSTRAINT run_requests_finished_iff_finished_at
        CHECK ((status = 'finished') = (finished_at IS NOT NULL))
);

-- What a worker looks for: the unfinished requests, oldest first.
CREATE INDEX run_requests_open ON run_requests (status, id) WHERE status <> 'finished';

-- A new or released request wakes the workers LISTENing at once (delivered
-- when the inserting transaction commits); they also poll, so a missed
-- notification only delays a request.
CREATE FUNCTION ops_worker_run_request_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('ops_worker_run_requests', NEW.id::text);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER run_requests_notify
    AFTER INSERT OR UPDATE OF status ON run_requests
    FOR EACH ROW WHEN (NEW.status = 'pending')
    EXECUTE FUNCTION ops_worker_run_request_notify();
