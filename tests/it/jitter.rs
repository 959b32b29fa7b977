//! `jitter` on both backends, with a manual clock: a scheduled slot starts
//! at its jittered instant and records the delay, two workers wait for the
//! same instant and run the slot once, manual runs and retries do not wait,
//! and shutdown ends the wait.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use ops_worker::config::JobSpec;
use ops_worker::db::{RunRecord, RunStatus, Trigger};
use ops_worker::runner::{Outcome, Slot};
use ops_worker::schedule::jitter;
use ops_worker::scheduler::{self, Start};
use ops_worker_jobs::{Clock, ManualClock};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::fixtures::{eventually, fast_retry_spec, runner, utc, Behaviour, TestClock, TestJob};
use crate::helpers::TestDb;

const JITTER: Duration = Duration::from_secs(30);

fn jittered(name: &str, job: Arc<TestJob>) -> Arc<JobSpec> {
    fast_retry_spec(name, 60, job, |s| s.jitter = JITTER)
}

/// What the pure function gives `slot` of `job`, as an offset.
fn delay(job: &str, slot: DateTime<Utc>) -> TimeDelta {
    let d = jitter::delay(job, slot, JITTER);
    // The checks "not before its delay" need a delay to check.
    assert!(d >= Duration::from_millis(2), "{job} {slot}: {d:?}");
    TimeDelta::from_std(d).unwrap()
}

async fn runs_of(db: &TestDb, job: &str) -> Vec<RunRecord> {
    let mut runs = db.db().history(Some(job), 100).await.unwrap();
    runs.reverse();
    runs
}

/// `job`'s rows, oldest first, as `f` sees them.
async fn rows_of<T>(db: &TestDb, job: &str, f: impl Fn(&RunRecord) -> T) -> Vec<T> {
    runs_of(db, job).await.iter().map(f).collect()
}

fn ms(d: TimeDelta) -> Option<i64> {
    Some(d.num_milliseconds())
}

async fn a_scheduled_slot_starts_after_its_jitter_and_records_it(db: &TestDb) {
    let t0 = utc("2026-06-01T12:00:00Z");
    let slot = t0 + TimeDelta::seconds(60);
    let d = delay("jittery", slot);
    let clock = TestClock::new(t0);
    let r = runner(db.db(), clock.clone() as Arc<dyn Clock>, "w1");
    let job = TestJob::new(Behaviour::Succeed);
    let (stop, runs) = (CancellationToken::new(), TaskTracker::new());
    scheduler::arm(
        jittered("jittery", job.clone()),
        r.clone(),
        Start {
            last_slot: None,
            armed_at: t0,
        },
        stop.clone(),
        runs.clone(),
    );
    clock.asleep_until(slot, 1).await;
    // The slot is due: its run sleeps until exactly `d` after it, not a
    // millisecond less, and has claimed nothing and run nothing before.
    clock.set(slot);
    clock.asleep_until(slot + d, 1).await;
    assert!(runs_of(db, "jittery").await.is_empty(), "claimed early");
    assert_eq!(job.calls(), 0);
    clock.set(slot + d);
    eventually(Duration::from_secs(10), "the jittered run", || async {
        runs_of(db, "jittery")
            .await
            .first()
            .is_some_and(|r| r.finished_at.is_some())
    })
    .await;
    let run = &runs_of(db, "jittery").await[0];
    assert_eq!(
        (run.status, run.trigger, run.scheduled_for, run.started_at),
        (RunStatus::Success, Trigger::Schedule, slot, slot + d),
        "the slot stays the unjittered one"
    );
    assert_eq!(run.jitter_ms, ms(d));
    // The job itself is told the slot, not the jittered instant.
    assert_eq!(*job.slots.lock().unwrap(), [slot]);
    // Started exactly at its jittered instant: no lateness, though it
    // started `d` after its slot.
    let metrics = r.telemetry().render();
    assert!(
        metrics
            .contains("ops_worker_fire_lateness_seconds_bucket{le=\"0.0005\",job=\"jittery\"} 1"),
        "{metrics}"
    );
    stop.cancel();
    runs.close();
    runs.wait().await;
}

async fn a_slot_caught_up_after_its_jittered_start_runs_at_once(db: &TestDb) {
    // A 5-minute job armed an hour after the newest slot it ran, 90 s after
    // a slot: the slots between were missed, and the newest of them is
    // caught up (catch_up = "latest") without waiting, since its jittered
    // start passed.
    let t0 = utc("2026-06-01T12:00:00Z");
    let now = t0 + TimeDelta::minutes(60) + TimeDelta::seconds(90);
    let newest = t0 + TimeDelta::minutes(60);
    let clock = Arc::new(ManualClock::new(now));
    let r = runner(db.db(), clock.clone() as Arc<dyn Clock>, "w1");
    let job = TestJob::new(Behaviour::Succeed);
    let (stop, runs) = (CancellationToken::new(), TaskTracker::new());
    scheduler::arm(
        fast_retry_spec("late", 300, job.clone(), |s| s.jitter = JITTER),
        r,
        Start {
            last_slot: Some(t0),
            armed_at: now,
        },
        stop.clone(),
        runs.clone(),
    );
    eventually(Duration::from_secs(10), "the caught-up run", || async {
        job.calls() == 1
    })
    .await;
    stop.cancel();
    runs.close();
    runs.wait().await;
    let run = &runs_of(db, "late").await[0];
    assert_eq!(
        (run.scheduled_for, run.trigger, run.started_at),
        (newest, Trigger::CatchUp, now)
    );
    assert_eq!(
        run.jitter_ms,
        Some(jitter::delay("late", newest, JITTER).as_millis() as i64)
    );
}

async fn two_workers_wait_for_the_same_instant_and_run_the_slot_once(db: &TestDb) {
    let base = utc("2026-06-01T12:00:00Z");
    let clock = TestClock::new(base);
    let workers = ["w1", "w2"].map(|w| runner(db.db(), clock.clone() as Arc<dyn Clock>, w));
    for w in &workers {
        w.peers().set(vec!["w1".into(), "w2".into()]);
    }
    let job = TestJob::new(Behaviour::Succeed);
    let s = jittered("shared", job.clone());
    for i in 1..=4 {
        let slot = base + TimeDelta::minutes(i);
        let d = delay("shared", slot);
        clock.set(slot);
        let tasks = workers.clone().map(|w| {
            let s = s.clone();
            tokio::spawn(async move { w.run(Slot::new(&s, slot, Trigger::Schedule)).await })
        });
        // Both wait until exactly `d` after the slot (both computed `d`),
        // and neither claimed before.
        clock.asleep_until(slot + d, 2).await;
        assert!(
            runs_of(db, "shared")
                .await
                .iter()
                .all(|r| r.scheduled_for != slot),
            "slot {i} claimed before its jitter"
        );
        assert!(tasks.iter().all(|t| !t.is_finished()), "slot {i}");
        // At `d` both go (neither computed more), and one runs the slot.
        clock.set(slot + d);
        let [a, b] = tasks;
        let (a, b) = tokio::time::timeout(Duration::from_secs(10), async {
            (a.await.unwrap(), b.await.unwrap())
        })
        .await
        .unwrap_or_else(|_| panic!("slot {i}: a worker still waits after the slot's jitter"));
        let winner = match (&a, &b) {
            (Outcome::Ran(_), Outcome::Taken) => "w1",
            (Outcome::Taken, Outcome::Ran(_)) => "w2",
            other => panic!("slot {i}: {other:?}"),
        };
        // The spread over workers applies after the jitter, as without it.
        assert_eq!(
            Some(winner.to_string()),
            workers[0].peers().first("shared", slot)
        );
        let rows: Vec<RunRecord> = runs_of(db, "shared")
            .await
            .into_iter()
            .filter(|r| r.scheduled_for == slot)
            .collect();
        assert_eq!(rows.len(), 1, "slot {i}: {rows:?}");
        assert_eq!(
            (
                rows[0].worker_id.as_str(),
                rows[0].jitter_ms,
                rows[0].started_at
            ),
            (winner, ms(d), slot + d)
        );
    }
    assert_eq!(job.calls(), 4);
}

async fn manual_runs_and_retries_do_not_wait(db: &TestDb) {
    let now = utc("2026-06-01T12:00:00.250Z");
    let clock = Arc::new(ManualClock::new(now));
    let r = runner(db.db(), clock.clone() as Arc<dyn Clock>, "w1");
    // Each fails once, then succeeds on its retry.
    let failing_once = |name: &str| {
        fast_retry_spec(name, 60, TestJob::new(Behaviour::FailTimes(1)), |s| {
            s.jitter = JITTER;
            s.retries = 1;
        })
    };
    // The clock moves only when the test says, so a wait would hang.
    let ran = |s: Arc<JobSpec>, trigger, slot| {
        let r = r.clone();
        async move {
            tokio::time::timeout(Duration::from_secs(10), r.run(Slot::new(&s, slot, trigger)))
                .await
                .expect("the run waited")
        }
    };
    // run-job:
    let outcome = ran(failing_once("manual"), Trigger::Manual, now).await;
    assert!(matches!(outcome, Outcome::Ran(_)), "{outcome:?}");
    // A retry (the manual run's second attempt) does not wait either.
    assert_eq!(
        rows_of(db, "manual", |r| (r.trigger, r.attempt, r.jitter_ms)).await,
        [(Trigger::Manual, 1, None), (Trigger::Retry, 2, None)],
        "manual runs and retries record no jitter (NULL)"
    );
    // A scheduled slot fails once too: its first attempt waited for and
    // records its jitter, its retry does not.
    let slot = utc("2026-06-01T12:01:00Z");
    let d = delay("retried", slot);
    clock.set(slot + d);
    let outcome = ran(failing_once("retried"), Trigger::Schedule, slot).await;
    assert!(matches!(outcome, Outcome::Ran(_)), "{outcome:?}");
    assert_eq!(
        rows_of(db, "retried", |r| (
            r.trigger,
            r.attempt,
            r.jitter_ms,
            r.status
        ))
        .await,
        [
            (Trigger::Schedule, 1, ms(d), RunStatus::Failed),
            (Trigger::Retry, 2, None, RunStatus::Success)
        ]
    );
}

async fn a_skipped_slot_records_its_jitter(db: &TestDb) {
    let first = utc("2026-06-01T12:01:00Z");
    let second = first + TimeDelta::minutes(1);
    let (d1, d2) = (delay("busy", first), delay("busy", second));
    let clock = Arc::new(ManualClock::new(first + d1));
    let r = runner(db.db(), clock.clone() as Arc<dyn Clock>, "w1");
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let s = jittered("busy", TestJob::new(Behaviour::Gate(gate.clone())));
    let running = {
        let (r, s) = (r.clone(), s.clone());
        tokio::spawn(async move { r.run(Slot::new(&s, first, Trigger::Schedule)).await })
    };
    eventually(Duration::from_secs(10), "the first run", || async {
        !runs_of(db, "busy").await.is_empty()
    })
    .await;
    // The next slot comes while it still runs (overlap = "skip").
    clock.set(second + d2);
    let skipped = tokio::time::timeout(
        Duration::from_secs(10),
        r.run(Slot::new(&s, second, Trigger::Schedule)),
    )
    .await
    .unwrap();
    assert_eq!(skipped, Outcome::Skipped);
    gate.add_permits(1);
    running.await.unwrap();
    let runs = rows_of(db, "busy", |r| {
        (r.scheduled_for, r.status, r.jitter_ms, r.started_at)
    });
    assert_eq!(
        runs.await,
        [
            (first, RunStatus::Success, ms(d1), first + d1),
            (second, RunStatus::Skipped, ms(d2), second + d2)
        ]
    );
}

async fn shutdown_ends_the_wait_and_leaves_the_slot_unclaimed(db: &TestDb) {
    let slot = utc("2026-06-01T12:00:00Z");
    let d = delay("stopping", slot);
    let clock = TestClock::new(slot);
    let r = runner(db.db(), clock.clone() as Arc<dyn Clock>, "w1");
    let job = TestJob::new(Behaviour::Succeed);
    let s = jittered("stopping", job.clone());
    let task = {
        let (r, s) = (r.clone(), s.clone());
        tokio::spawn(async move { r.run(Slot::new(&s, slot, Trigger::Schedule)).await })
    };
    clock.asleep_until(slot + d, 1).await;
    assert!(!task.is_finished(), "it waits for the slot's jitter");
    r.stop();
    let outcome = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("shutdown ends the wait")
        .unwrap();
    assert_eq!(outcome, Outcome::Taken);
    assert!(runs_of(db, "stopping").await.is_empty());
    assert_eq!(job.calls(), 0);
}

crate::backend_tests!(
    a_scheduled_slot_starts_after_its_jitter_and_records_it,
    a_slot_caught_up_after_its_jittered_start_runs_at_once,
    two_workers_wait_for_the_same_instant_and_run_the_slot_once,
    manual_runs_and_retries_do_not_wait,
    a_skipped_slot_records_its_jitter,
    shutdown_ends_the_wait_and_leaves_the_slot_unclaimed,
);
