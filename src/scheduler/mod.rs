//! The timing engine: one task per job that sleeps until the job's next slot
//! and hands it to the runner. Which instants are slots, and what catch-up
//! makes of those that passed, is `crate::schedule`'s; this loop only keeps
//! time and hands over.
//!
//! Each loop keeps a cursor (the newest slot it has dealt with) and asks the
//! schedule for the first slot after it, so it never computes "now +
//! interval" and does not drift. When it wakes it looks at every slot that
//! passed since the cursor: one is the normal case; more means the process
//! was stopped, paused or starved, and the catch-up policy decides what runs.
//!
//! Slots that lie in a pause of the job (`ops-worker pause`) are taken out
//! before that: they are handled (the cursor moves past them), not run, and
//! not missed, so no catch-up runs them when the pause ends.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::JobSpec;
use crate::db::Trigger;
use crate::runner::{Runner, Slot};
use crate::schedule::catch_up::{self, Due, FireKind, MAX_CATCH_UP_RUNS};

/// Where a job's loop starts.
#[derive(Debug, Clone, Copy)]
pub struct Start {
    /// The newest slot `job_runs` knows for the job (scheduled or caught up).
    /// Slots after it that already passed are missed slots.
    pub last_slot: Option<DateTime<Utc>>,
    /// When the loop was armed.
    pub armed_at: DateTime<Utc>,
}

impl Start {
    /// The interval grid's anchor: the last recorded slot, so a restart keeps
    /// the phase. A job with no history is anchored at the Unix epoch, not
    /// at the arming time: replicas started (or with clocks) a little apart
    /// must agree on its slots, or each would run its own grid.
    pub fn anchor(&self) -> DateTime<Utc> {
        self.last_slot.unwrap_or(DateTime::UNIX_EPOCH)
    }
}

/// Arms one job: spawns its timer loop, which stops when `stop` fires. Runs
/// it starts are tracked by `runs`, so shutdown can wait for them. The loop
/// ends with the newest slot it handled (or `start.last_slot` if none): where
/// a loop re-armed by a reload goes on from.
pub fn arm(
    spec: Arc<JobSpec>,
    runner: Arc<Runner>,
    start: Start,
    stop: CancellationToken,
    runs: TaskTracker,
) -> tokio::task::JoinHandle<Option<DateTime<Utc>>> {
    tokio::spawn(job_loop(spec, runner, start, stop, runs))
}

async fn job_loop(
    spec: Arc<JobSpec>,
    runner: Arc<Runner>,
    start: Start,
    stop: CancellationToken,
    runs: TaskTracker,
) -> Option<DateTime<Utc>> {
    if spec.push.is_some() {
        // A push job runs elsewhere: its slots are filled by the signals it
        // sends (src/http/ping.rs), and the `alerts` kind watches them.
        // Nothing fires here; the loop only keeps its place for a reload.
        stop.cancelled().await;
        return start.last_slot;
    }
    let clock = runner.clock().clone();
    let anchor = start.anchor();
    let mut cursor = start.last_slot.unwrap_or(start.armed_at);
    let mut handled = start.last_slot;
    let mut carried = 0u64;
    loop {
        let Some(next) = spec.schedule.next_after(cursor, anchor) else {
            tracing::info!(job = %spec.name, "the schedule has no further slots; the job will not fire again");
            stop.cancelled().await;
            return handled;
        };
        runner.telemetry().next_fire(&spec.name, next);
        tokio::select! {
            _ = clock.sleep_until(next) => {}
            _ = stop.cancelled() => return handled,
        }
        let now = clock.now();
        let (mut slots, mut total) =
            spec.schedule
                .slots_between(cursor, now, anchor, MAX_CATCH_UP_RUNS);
        let Some(&newest) = slots.last() else {
            // Woken early (a wall clock stepped back): sleep again.
            continue;
        };
        let after = cursor;
        cursor = newest;
        handled = Some(newest);
        let pauses = runner.pauses();
        // Slots older than those kept (beyond the cap) count as paused when
        // the job's one pause spans from the cursor to the oldest kept.
        if total > slots.len() as u64
            && pauses.covers_span(&spec.name, after + chrono::TimeDelta::seconds(1), slots[0])
        {
            total = slots.len() as u64;
        }
        let before = slots.len();
        slots.retain(|s| !pauses.covers(&spec.name, *s));
        let paused = before - slots.len();
        if paused > 0 {
            total -= paused as u64;
            tracing::debug!(job = %spec.name, slots = paused, newest = %newest, "slots not run: the job is paused");
        }
        if slots.is_empty() {
            continue;
        }
        let (fires, unreported) = catch_up::plan(
            Due {
                slots: &slots,
                total,
            },
            now,
            spec.catch_up,
            spec.catch_up_window,
            carried,
        );
        carried = unreported;
        if total > 1 || fires.iter().any(|f| f.kind == FireKind::CatchUp) {
            tracing::warn!(
                job = %spec.name,
                passed = total,
                running = fires.len(),
                oldest = %slots[0],
                newest = %slots[slots.len() - 1],
                catch_up = ?spec.catch_up,
                "slots passed while the worker could not fire them"
            );
        }
        if fires.is_empty() {
            continue;
        }
        let (runner, spec_for_runs) = (runner.clone(), spec.clone());
        // Catch-up runs of one wake go one after the other, oldest first.
        runs.spawn(async move {
            let spec = spec_for_runs;
            for fire in fires {
                let trigger = match fire.kind {
                    FireKind::OnTime => Trigger::Schedule,
                    FireKind::CatchUp => Trigger::CatchUp,
                };
                runner
                    .run(Slot::new(&spec, fire.slot, trigger).with_missed(fire.missed))
                    .await;
            }
        });
    }
}
