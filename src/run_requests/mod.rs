//! "Run now" through a live worker: [`submit`] stores a request (refused
//! when no daemon is live), [`get`] reads it back, and the daemon's
//! claimer (`claimer.rs`) takes each request on exactly one live worker
//! and runs it through the runner like every other run (trigger `manual`),
//! linking the run to the request.
//!
//! Whether the job exists is the caller's check (the HTTP API and the CLI
//! have the config); a worker that does not have the job finishes the
//! request with a reason. SQL lives in `src/db/run_requests.rs`.

pub mod claimer;

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::db::{Db, DbError};
pub use crate::db::{RequestStatus, RunRequest};
pub use claimer::Claimer;

/// Why a request was not stored.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// No daemon has a fresh heartbeat: nobody would run the request.
    /// (The liveness rule is the daemons' own: a heartbeat at most
    /// `--dead-after` old and no clean stop.)
    #[error("no live worker: no `ops-worker run` daemon has a recent heartbeat, so nobody would run the job")]
    NoLiveWorker,
    #[error("cannot store the run request")]
    Db(#[from] DbError),
}

/// Stores a request to run `job` now on behalf of `requested_by` and
/// returns its id, if some daemon is live by the daemons' own rule: a
/// heartbeat at most `dead_after` old (the process's `--dead-after`,
/// `OPS_WORKER_DEAD_AFTER`) and no clean stop.
pub async fn submit(
    db: &Db,
    job: &str,
    requested_by: &str,
    dead_after: Duration,
) -> Result<i64, SubmitError> {
    submit_at(db, job, requested_by, Utc::now(), dead_after).await
}

/// [`submit`] at `now`, with `dead_after` as the age beyond which a
/// heartbeat does not count (a daemon's `--dead-after`).
pub async fn submit_at(
    db: &Db,
    job: &str,
    requested_by: &str,
    now: DateTime<Utc>,
    dead_after: Duration,
) -> Result<i64, SubmitError> {
    let since = now - chrono::Duration::from_std(dead_after).unwrap_or(chrono::Duration::MAX);
    if db.live_workers(since).await?.is_empty() {
        return Err(SubmitError::NoLiveWorker);
    }
    Ok(db.insert_run_request(job, requested_by, now).await?)
}

/// Request `id` as it stands: pending, claimed by a worker, running (with
/// its run's id) or finished (with an error when no run came of it).
pub async fn get(db: &Db, id: i64) -> Result<Option<RunRequest>, DbError> {
    db.run_request(id).await
}
