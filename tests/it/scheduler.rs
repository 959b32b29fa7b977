//! The timing engine driven by a manual clock, on both backends: on-time
//! slots, a long pause, restarts that keep the phase, and catch-up policies.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use ops_worker::db::{NewRun, RunRecord, RunStatus, Trigger};
use ops_worker::schedule::CatchUp;
use ops_worker::schedule::Schedule;
use ops_worker::scheduler::{self, Start};
use ops_worker_jobs::{Clock, ManualClock};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::fixtures::{eventually, fast_retry_spec, runner, utc, Behaviour, TestJob};
use crate::helpers::TestDb;

const T0: &str = "2026-06-01T12:00:00Z";

struct Armed {
    clock: Arc<ManualClock>,
    stop: CancellationToken,
    runs: TaskTracker,
}

impl Armed {
    async fn stop(self) {
        self.stop.cancel();
        self.runs.close();
        self.runs.wait().await;
    }
}

fn arm(
    db: &TestDb,
    spec: Arc<ops_worker::config::JobSpec>,
    now: DateTime<Utc>,
    last_slot: Option<DateTime<Utc>>,
) -> Armed {
    let clock = Arc::new(ManualClock::new(now));
    let r = runner(db.db(), clock.clone() as Arc<dyn Clock>, "w1");
    let (stop, runs) = (CancellationToken::new(), TaskTracker::new());
    scheduler::arm(
        spec,
        r,
        Start {
            last_slot,
            armed_at: now,
        },
        stop.clone(),
        runs.clone(),
    );
    Armed { clock, stop, runs }
}

async fn finished_runs(db: &TestDb, job: &str) -> Vec<RunRecord> {
    let mut runs: Vec<_> = db
        .db()
        .history(Some(job), 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.finished_at.is_some())
        .collect();
    runs.reverse();
    runs
}

async fn wait_runs(db: &TestDb, job: &str, n: usize) -> Vec<RunRecord> {
    eventually(
        Duration::from_secs(10),
        &format!("{n} finished runs of {job}"),
        || async { finished_runs(db, job).await.len() >= n },
    )
    .await;
    finished_runs(db, job).await
}

/// Records a slot as if an earlier process had run it.
pub(crate) async fn history_at(db: &TestDb, job: &str, slot: DateTime<Utc>) {
    let run = NewRun {
        job_name: job.into(),
        kind: "test".into(),
        scheduled_for: slot,
        trigger: Trigger::Schedule,
        attempt: 1,
        worker_id: "earlier".into(),
        started_at: slot,
        missed: 0,
        jitter_ms: None,
    };
    let finish = ops_worker::db::Finish {
        status: RunStatus::Success,
        finished_at: slot,
        error: None,
        output: None,
        duration_ms: 0,
    };
    assert!(db.db().insert_finished_run(&run, &finish).await.unwrap());
}

fn slots(runs: &[RunRecord]) -> Vec<(DateTime<Utc>, Trigger, i32)> {
    runs.iter()
        .map(|r| (r.scheduled_for, r.trigger, r.missed))
        .collect()
}

async fn interval_slots_fire_on_the_grid(db: &TestDb) {
    let t0 = utc(T0);
    let job = TestJob::new(Behaviour::Succeed);
    let armed = arm(
        db,
        fast_retry_spec("tick", 10, job.clone(), |_| {}),
        t0,
        None,
    );
    for i in 1..=3 {
        // Advance in uneven steps: the slots still lie on the grid.
        armed
            .clock
            .set(t0 + TimeDelta::seconds(10 * i) + TimeDelta::milliseconds(3));
        wait_runs(db, "tick", i as usize).await;
    }
    let runs = finished_runs(db, "tick").await;
    assert_eq!(
        slots(&runs),
        (1..=3)
            .map(|i| (t0 + TimeDelta::seconds(10 * i), Trigger::Schedule, 0))
            .collect::<Vec<_>>()
    );
    armed.stop().await;
}

async fn a_long_pause_neither_stops_the_job_nor_fires_a_burst(db: &TestDb) {
    let t0 = utc(T0);
    let job = TestJob::new(Behaviour::Succeed);
    let armed = arm(
        db,
        fast_retry_spec("pausy", 10, job.clone(), |_| {}),
        t0,
        None,
    );
    // The process was stopped for ten intervals and wakes 2 s after a slot.
    armed.clock.set(t0 + TimeDelta::seconds(102));
    let runs = wait_runs(db, "pausy", 1).await;
    assert_eq!(
        slots(&runs),
        vec![(t0 + TimeDelta::seconds(100), Trigger::Schedule, 9)]
    );
    // ... and keeps firing on the same grid afterwards.
    armed.clock.set(t0 + TimeDelta::seconds(110));
    let runs = wait_runs(db, "pausy", 2).await;
    assert_eq!(runs[1].scheduled_for, t0 + TimeDelta::seconds(110));
    assert_eq!(job.calls(), 2, "one coalesced run, not a burst");
    armed.stop().await;
}

async fn a_restart_keeps_the_interval_phase(db: &TestDb) {
    let t0 = utc(T0);
    // The previous process ran the 12:00:05 slot of a 10 s job.
    history_at(db, "phased", t0 - TimeDelta::seconds(5)).await;
    let armed = arm(
        db,
        fast_retry_spec("phased", 10, TestJob::new(Behaviour::Succeed), |_| {}),
        t0,
        Some(t0 - TimeDelta::seconds(5)),
    );
    armed.clock.set(t0 + TimeDelta::seconds(5));
    let runs = wait_runs(db, "phased", 2).await;
    assert_eq!(
        runs[1].scheduled_for,
        t0 + TimeDelta::seconds(5),
        "the grid is the old one, not restart + 10 s"
    );
    assert_eq!(runs[1].missed, 0);
    armed.stop().await;
}

async fn catch_up_latest_runs_once_for_the_newest_missed_slot(db: &TestDb) {
    // A daily 02:00 cron job; the worker was down from before yesterday's slot until 05:00.
    let now = utc("2026-06-03T05:00:00Z");
    let last = utc("2026-06-01T02:00:00Z");
    history_at(db, "daily", last).await;
    let s = fast_retry_spec("daily", 60, TestJob::new(Behaviour::Succeed), |s| {
        s.schedule = Schedule::cron("0 0 2 * * *", ops_worker_jobs::tz::Tz::UTC).unwrap();
    });
    let armed = arm(db, s, now, Some(last));
    let runs = wait_runs(db, "daily", 2).await;
    assert_eq!(
        slots(&runs[1..]),
        vec![(utc("2026-06-03T02:00:00Z"), Trigger::CatchUp, 1)]
    );
    armed.stop().await;
}

async fn catch_up_all_runs_each_slot_in_the_window(db: &TestDb) {
    let t0 = utc(T0);
    history_at(db, "every", t0 - TimeDelta::seconds(60)).await;
    let s = fast_retry_spec("every", 10, TestJob::new(Behaviour::Succeed), |s| {
        s.catch_up = CatchUp::All;
        s.catch_up_window = Duration::from_secs(35);
    });
    // Woken 5 s after the slot at t0: slots -50..-10 are missed, t0 is on time.
    let armed = arm(
        db,
        s,
        t0 + TimeDelta::seconds(5),
        Some(t0 - TimeDelta::seconds(60)),
    );
    let runs = wait_runs(db, "every", 5).await;
    assert_eq!(
        slots(&runs[1..]),
        vec![
            (t0 - TimeDelta::seconds(30), Trigger::CatchUp, 2),
            (t0 - TimeDelta::seconds(20), Trigger::CatchUp, 0),
            (t0 - TimeDelta::seconds(10), Trigger::CatchUp, 0),
            (t0, Trigger::Schedule, 0),
        ]
    );
    armed.stop().await;
}

async fn catch_up_skip_runs_only_the_current_slot(db: &TestDb) {
    let t0 = utc(T0);
    history_at(db, "skipper", t0 - TimeDelta::seconds(40)).await;
    let s = fast_retry_spec("skipper", 10, TestJob::new(Behaviour::Succeed), |s| {
        s.catch_up = CatchUp::Skip
    });
    let armed = arm(db, s, t0, Some(t0 - TimeDelta::seconds(40)));
    let runs = wait_runs(db, "skipper", 2).await;
    assert_eq!(slots(&runs[1..]), vec![(t0, Trigger::Schedule, 3)]);
    armed.stop().await;
}

crate::backend_tests!(
    interval_slots_fire_on_the_grid,
    a_long_pause_neither_stops_the_job_nor_fires_a_burst,
    a_restart_keeps_the_interval_phase,
    catch_up_latest_runs_once_for_the_newest_missed_slot,
    catch_up_all_runs_each_slot_in_the_window,
    catch_up_skip_runs_only_the_current_slot,
);
