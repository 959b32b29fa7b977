//! The `job_runs` table: the run types every caller shares, here; the
//! writes of a run's lifecycle (claim, finish, abandon) in `lifecycle.rs`,
//! the reads the scheduler and the CLI need (slot anchors, per-job
//! summaries, history) in `reads.rs`, and the pruning of old rows (history
//! retention) in `prune.rs`, and what a `push` job's signals need (its open
//! start, a finish with no start, starts that timed out) in `push.rs`.
//!
//! Every query is written once inside `with_conn!` and so compiled for both
//! backends: Diesel's DSL where it reaches, portable SQL text for the
//! per-job reads that need a recursive CTE (which the DSL cannot express)
//! and for the pruning `DELETE` (whose selection is shared; only the way it
//! hands its ids to the `DELETE` differs per backend), and a hand-written
//! query type for the finishing `UPDATE`, which runs once per run and must
//! stay a cached prepared statement (see `FinishQuery`).
//!
//! Timestamps cross this boundary as `DateTime<Utc>` and are stored as UTC
//! `NaiveDateTime`: `scheduled_for` truncated to whole seconds (it is part of
//! the slot key), the others to microseconds (what PostgreSQL keeps), so a
//! value reads back identically from either backend. Nothing here decides
//! when a run happens or what its outcome means; the runner does.

mod lifecycle;
mod prune;
mod push;
pub use push::OpenPush;
mod reads;
pub use reads::RunsQuery;

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use serde::Serialize;

use super::text_enum::text_enum;

/// What [`Db::claim_run_exclusive`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExclusiveClaim {
    /// Inserted: this caller runs the slot; the row has this id.
    Won(i64),
    /// Someone else already holds the slot.
    Taken,
    /// A run of the job is going on this other worker.
    Busy(String),
}

/// A run marked `abandoned`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbandonedRun {
    pub id: i64,
    pub job_name: String,
    pub scheduled_for: DateTime<Utc>,
    pub attempt: i32,
    /// The worker that had it.
    pub worker_id: String,
}

text_enum! {
    /// Why a run happened.
    Trigger, "trigger" {
        /// Its slot came due.
        Schedule = "schedule",
        /// Its slot passed while the worker was down or busy; run late.
        CatchUp = "catch_up",
        /// An operator asked for it (`ops-worker run-job`).
        Manual = "manual",
        /// An earlier attempt of the same slot failed.
        Retry = "retry",
        /// A signal from a `push` job, which runs elsewhere (`/ping/...`).
        Push = "push",
    }
}

text_enum! {
    /// Where a run stands. Only `Running` is unfinished.
    RunStatus, "run status" {
        Running = "running",
        Success = "success",
        Failed = "failed",
        Timeout = "timeout",
        Panicked = "panicked",
        /// The worker was shutting down and stopped it.
        Interrupted = "interrupted",
        /// The slot was deliberately not run (overlap or catch-up policy).
        Skipped = "skipped",
        /// Found still `running` after its worker had stopped.
        Abandoned = "abandoned",
    }
}

/// A run about to start (or, with a [`Finish`], one already over).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRun {
    pub job_name: String,
    pub kind: String,
    /// Stored truncated to whole seconds.
    pub scheduled_for: DateTime<Utc>,
    pub trigger: Trigger,
    pub attempt: i32,
    pub worker_id: String,
    /// Stored truncated to microseconds.
    pub started_at: DateTime<Utc>,
    /// Slots before this one that were not run.
    pub missed: i32,
    /// The slot's `jitter` delay in ms (scheduled and catch-up runs of a
    /// job with `jitter`), else `None`.
    pub jitter_ms: Option<i64>,
}

/// How a run ended. `status` must not be `Running` (the table rejects it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finish {
    pub status: RunStatus,
    /// Stored truncated to microseconds.
    pub finished_at: DateTime<Utc>,
    pub error: Option<String>,
    pub output: Option<String>,
    pub duration_ms: i64,
}

/// One row of `job_runs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RunRecord {
    pub id: i64,
    pub job_name: String,
    pub kind: String,
    pub scheduled_for: DateTime<Utc>,
    pub trigger: Trigger,
    pub attempt: i32,
    pub worker_id: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub status: RunStatus,
    pub error: Option<String>,
    pub output: Option<String>,
    pub duration_ms: Option<i64>,
    pub missed: i32,
    pub jitter_ms: Option<i64>,
}

/// A job's latest state, for `ops-worker status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobSummary {
    pub job_name: String,
    /// Status of the newest run (by `scheduled_for`, then id); `None` only
    /// for summaries a caller builds for jobs that never ran.
    pub last_status: Option<RunStatus>,
    pub last_scheduled_for: Option<DateTime<Utc>>,
    pub last_finished_at: Option<DateTime<Utc>>,
    /// `finished_at` of the newest successful run.
    pub last_success_at: Option<DateTime<Utc>>,
    /// The newest slot run by the schedule or catch-up (any status): the
    /// anchor of the job's slot grid (see [`Db::last_slots`]).
    pub last_slot: Option<DateTime<Utc>>,
}

fn whole_seconds(t: DateTime<Utc>) -> NaiveDateTime {
    t.naive_utc().trunc_subsecs(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::micros;

    #[test]
    fn text_forms_round_trip() {
        for t in Trigger::ALL {
            assert_eq!(t.as_str().parse::<Trigger>().unwrap(), *t);
            assert_eq!(t.to_string(), t.as_str());
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        for s in RunStatus::ALL {
            assert_eq!(s.as_str().parse::<RunStatus>().unwrap(), *s);
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(Trigger::CatchUp.as_str(), "catch_up");
        assert_eq!(
            "bogus".parse::<RunStatus>().unwrap_err().to_string(),
            "unknown run status \"bogus\""
        );
    }

    #[test]
    fn truncation() {
        let t = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.123456789Z")
            .unwrap()
            .to_utc();
        assert_eq!(whole_seconds(t).to_string(), "2026-01-02 03:04:05");
        assert_eq!(micros(t).to_string(), "2026-01-02 03:04:05.123456");
    }
}
