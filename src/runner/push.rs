//! The runs of `push` jobs, which run elsewhere and send signals: a start
//! opens the slot's row `running`, a finish (success, fail, an exit status)
//! closes the job's open start or, with none, records the slot's run with no
//! duration, and a start left open past the job's `timeout` ends `timeout`.
//! These are the runner's writes because a run's lifecycle is written
//! nowhere else; the HTTP handler (`src/http/ping.rs`) only parses and
//! checks the request. Which slot a signal stands for is
//! `schedule::signal`'s rule; the slot claim in `job_runs` makes two signals
//! for one slot one run, whichever process receives them.

use chrono::{DateTime, Utc};

use crate::config::JobSpec;
use crate::db::{Db, DbError, Finish, NewRun, RunStatus, Trigger};
use crate::schedule::signal::signal_slot;

/// The `worker_id` of push rows: not a worker, so neither a worker's
/// start-up nor the dead-worker check marks them abandoned; a start with no
/// finish ends by [`time_out_push_starts`].
pub const PUSH_WORKER: &str = "push";

/// What a push job said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// It started.
    Start,
    /// It ended well.
    Success,
    /// It ended badly.
    Fail,
    /// It ended with this exit status (0 is a success).
    Exit(u8),
}

impl Signal {
    /// How a finish ends the run, and why it failed.
    fn finish(self) -> Option<(RunStatus, Option<String>)> {
        match self {
            Signal::Start => None,
            Signal::Success | Signal::Exit(0) => Some((RunStatus::Success, None)),
            Signal::Fail => Some((
                RunStatus::Failed,
                Some("the job signalled fail".to_string()),
            )),
            Signal::Exit(n) => Some((RunStatus::Failed, Some(format!("exit status {n}")))),
        }
    }
}

/// What became of a signal.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Recorded {
    /// The slot it was counted for.
    pub slot: DateTime<Utc>,
    /// The status of the slot's run after it.
    pub status: RunStatus,
    /// The run's row.
    pub run_id: Option<i64>,
    /// `false`: the slot's run was already recorded (or started), by an
    /// earlier signal from this or another host; nothing changed.
    pub recorded: bool,
}

/// Why a signal was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    /// The schedule has no slot this signal could stand for (a cron that
    /// has not fired yet, and none due within `grace`).
    #[error("no slot of the job's schedule is within its grace of now")]
    NoSlot,
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Records `signal` of push job `spec`, received at `now`, with `output`
/// (a POST body, already cut to size) for a finish.
pub async fn record_signal(
    db: &Db,
    spec: &JobSpec,
    signal: Signal,
    output: Option<String>,
    now: DateTime<Utc>,
) -> Result<Recorded, SignalError> {
    let grace = spec.push.as_ref().map(|p| p.grace).unwrap_or_default();
    let run = |slot: DateTime<Utc>| NewRun {
        job_name: spec.name.clone(),
        kind: spec.kind.clone(),
        scheduled_for: slot,
        trigger: Trigger::Push,
        attempt: 1,
        worker_id: PUSH_WORKER.to_string(),
        started_at: now,
        missed: 0,
        jitter_ms: None,
    };
    let Some((status, error)) = signal.finish() else {
        let slot = signal_slot(&spec.schedule, now, grace).ok_or(SignalError::NoSlot)?;
        return match db.claim_run(&run(slot)).await? {
            Some(id) => Ok(Recorded {
                slot,
                status: RunStatus::Running,
                run_id: Some(id),
                recorded: true,
            }),
            None => already(db, &spec.name, slot).await,
        };
    };
    // A finish closes the job's open start, if any: a run that started
    // near one slot and ended later still stands for that slot.
    if let Some(open) = db.open_push_runs(&spec.name, None, 1).await?.pop() {
        let finish = Finish {
            status,
            finished_at: now,
            error,
            output,
            duration_ms: (now - open.started_at).num_milliseconds().max(0),
        };
        if db.finish_run(open.id, &finish).await? {
            return Ok(Recorded {
                slot: open.scheduled_for,
                status,
                run_id: Some(open.id),
                recorded: true,
            });
        }
        // Finished meanwhile by another signal or the timeout.
        return already(db, &spec.name, open.scheduled_for).await;
    }
    let slot = signal_slot(&spec.schedule, now, grace).ok_or(SignalError::NoSlot)?;
    let finish = Finish {
        status,
        finished_at: now,
        error,
        output,
        duration_ms: 0,
    };
    if db.insert_unstarted_push_run(&run(slot), &finish).await? {
        let run_id = db.run_of_slot(&spec.name, slot).await?.map(|(id, _)| id);
        return Ok(Recorded {
            slot,
            status,
            run_id,
            recorded: true,
        });
    }
    already(db, &spec.name, slot).await
}

/// The slot's run as an earlier signal left it.
async fn already(db: &Db, job: &str, slot: DateTime<Utc>) -> Result<Recorded, SignalError> {
    let row = db.run_of_slot(job, slot).await?;
    Ok(Recorded {
        slot,
        status: row.as_ref().map_or(RunStatus::Running, |(_, s)| *s),
        run_id: row.map(|(id, _)| id),
        recorded: false,
    })
}

/// Why a push run ended `timeout`.
const TIMED_OUT: &str = "timeout: the job signalled start and no finish within its timeout";

/// Ends `timeout` every start of the push jobs `jobs` (name, `timeout`)
/// left open longer than the job's `timeout`. Called by every live daemon's
/// heartbeat ([`super::Runner::time_out_push_starts`]); the finish's `WHERE
/// finished_at IS NULL` lets one of them (or a late finish signal) win.
/// Returns how many it ended.
pub async fn time_out_push_starts(
    db: &Db,
    jobs: &[(String, std::time::Duration)],
    now: DateTime<Utc>,
) -> Result<u64, DbError> {
    let mut ended = 0;
    for (job, timeout) in jobs {
        let timeout = chrono::Duration::from_std(*timeout).unwrap_or(chrono::Duration::MAX);
        for open in db.open_push_runs(job, Some(now - timeout), 100).await? {
            let finish = Finish {
                status: RunStatus::Timeout,
                finished_at: now,
                error: Some(TIMED_OUT.to_string()),
                output: None,
                duration_ms: (now - open.started_at).num_milliseconds().max(0),
            };
            if db.finish_run(open.id, &finish).await? {
                tracing::warn!(job = %job, run_id = open.id, scheduled_for = %open.scheduled_for, "{TIMED_OUT}");
                ended += 1;
            }
        }
    }
    Ok(ended)
}
