//! The runner on both backends: outcomes, timeouts, panics, retries,
//! overlap policies, the slot claim and isolation between jobs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ops_worker::db::{RunRecord, RunStatus, Trigger};
use ops_worker::runner::{Outcome, Slot};
use ops_worker::schedule::Overlap;
use ops_worker_jobs::{Clock, SystemClock};
use tokio::sync::Semaphore;

use crate::fixtures::{
    eventually, fast_retry_spec, runner, spec_from_toml, utc, Behaviour, TestJob,
};
use crate::helpers::TestDb;

fn clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

async fn runs_of(db: &TestDb, job: &str) -> Vec<RunRecord> {
    let mut runs = db.db().history(Some(job), 100).await.unwrap();
    runs.reverse();
    runs
}

fn status(o: &Outcome) -> RunStatus {
    match o {
        Outcome::Ran(r) => r.status,
        other => panic!("expected a run, got {other:?}"),
    }
}

async fn outcomes_are_recorded(db: &TestDb) {
    let r = runner(db.db(), clock(), "w1");
    let slot = utc("2026-05-01T10:00:00Z");
    for (name, b) in [
        ("ok", Behaviour::Succeed),
        ("bad", Behaviour::Fail),
        ("boom", Behaviour::Panic),
    ] {
        let s = fast_retry_spec(name, 60, TestJob::new(b), |_| {});
        r.run(Slot::new(&s, slot, Trigger::Schedule).with_missed(3))
            .await;
    }
    let ok = &runs_of(db, "ok").await[0];
    assert_eq!(
        (ok.status, ok.trigger, ok.attempt, ok.missed),
        (RunStatus::Success, Trigger::Schedule, 1, 3)
    );
    assert_eq!(ok.scheduled_for, slot);
    assert_eq!(
        ok.output.as_deref(),
        Some("ran for 2026-05-01 10:00:00 UTC")
    );
    assert!(ok.finished_at.is_some() && ok.duration_ms.is_some());
    assert_eq!(ok.worker_id, "w1");

    let bad = &runs_of(db, "bad").await[0];
    assert_eq!(bad.status, RunStatus::Failed);
    assert_eq!(bad.error.as_deref(), Some("it broke"));
    assert_eq!(bad.output.as_deref(), Some("some output"));

    let boom = &runs_of(db, "boom").await[0];
    assert_eq!(boom.status, RunStatus::Panicked);
    assert_eq!(boom.error.as_deref(), Some("panicked: boom in boom"));
}

async fn timeout_cancels_the_job_and_records_timeout(db: &TestDb) {
    let r = runner(db.db(), clock(), "w1");
    let gate = Arc::new(Semaphore::new(0));
    let s = fast_retry_spec("slow", 60, TestJob::new(Behaviour::Gate(gate)), |s| {
        s.timeout = Duration::from_millis(300)
    });
    let started = Instant::now();
    let o = r
        .run(Slot::new(
            &s,
            utc("2026-05-01T10:00:00Z"),
            Trigger::Schedule,
        ))
        .await;
    assert_eq!(status(&o), RunStatus::Timeout);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a cooperative job stops at once"
    );
    let run = &runs_of(db, "slow").await[0];
    assert_eq!(run.status, RunStatus::Timeout);
    assert_eq!(run.error.as_deref(), Some("timed out after 300ms"));
    assert_eq!(
        run.output.as_deref(),
        Some("partial"),
        "what the job printed before it stopped is kept"
    );
}

async fn timeout_kills_the_command_process_group(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let toml = format!(
        "[jobs.hang]\nkind = \"command\"\nevery = \"60s\"\ntimeout = \"1s\"\ncommand = [\"sh\", \"-c\", \"sleep 300 & echo $! > {}; wait\"]\n",
        pidfile.display()
    );
    let s = spec_from_toml("hang", &toml);
    let r = runner(db.db(), clock(), "w1");
    let o = r
        .run(Slot::new(
            &s,
            utc("2026-05-01T10:00:00Z"),
            Trigger::Schedule,
        ))
        .await;
    assert_eq!(status(&o), RunStatus::Timeout);
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        process_gone(pid),
        "the grandchild sleep {pid} survived the timeout"
    );
}

/// Dead, or a zombie waiting for init to reap it.
fn process_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

async fn retries_are_separate_rows_with_doubling_backoff(db: &TestDb) {
    let r = runner(db.db(), clock(), "w1");
    let slot = utc("2026-05-01T10:00:00Z");
    let s = fast_retry_spec("flaky", 60, TestJob::new(Behaviour::FailTimes(2)), |s| {
        s.retries = 3
    });
    let o = r.run(Slot::new(&s, slot, Trigger::Schedule)).await;
    let Outcome::Ran(report) = o else { panic!() };
    assert_eq!((report.status, report.attempts), (RunStatus::Success, 3));
    let runs = runs_of(db, "flaky").await;
    let got: Vec<_> = runs
        .iter()
        .map(|r| (r.attempt, r.trigger, r.status, r.scheduled_for))
        .collect();
    assert_eq!(
        got,
        vec![
            (1, Trigger::Schedule, RunStatus::Failed, slot),
            (2, Trigger::Retry, RunStatus::Failed, slot),
            (3, Trigger::Retry, RunStatus::Success, slot),
        ]
    );
    // 10 ms, then 20 ms between attempts.
    let gap = |a: &RunRecord, b: &RunRecord| b.started_at - a.finished_at.unwrap();
    assert!(gap(&runs[0], &runs[1]) >= chrono::Duration::milliseconds(10));
    assert!(gap(&runs[1], &runs[2]) >= chrono::Duration::milliseconds(20));

    let s = fast_retry_spec("hopeless", 60, TestJob::new(Behaviour::Fail), |s| {
        s.retries = 2
    });
    assert_eq!(
        status(&r.run(Slot::new(&s, slot, Trigger::Schedule)).await),
        RunStatus::Failed
    );
    assert_eq!(runs_of(db, "hopeless").await.len(), 3);
}

async fn exactly_one_claimer_wins_a_slot(db: &TestDb) {
    // 16 runners, as if 16 processes, race for one slot.
    let job = TestJob::new(Behaviour::Succeed);
    let s = fast_retry_spec("race", 60, job.clone(), |s| s.overlap = Overlap::Allow);
    let slot = utc("2026-05-01T10:00:00Z");
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let r = runner(db.db(), clock(), &format!("w{i}"));
            let s = s.clone();
            tokio::spawn(async move { r.run(Slot::new(&s, slot, Trigger::Schedule)).await })
        })
        .collect();
    let mut ran = 0;
    for t in tasks {
        match t.await.unwrap() {
            Outcome::Ran(_) => ran += 1,
            Outcome::Taken => {}
            Outcome::Skipped => panic!("allow never skips"),
            Outcome::Paused => panic!("nothing is paused"),
            Outcome::Elsewhere => panic!("not a push job"),
        }
    }
    assert_eq!(ran, 1);
    assert_eq!(job.calls(), 1);
    assert_eq!(runs_of(db, "race").await.len(), 1);
}

async fn overlap_skip_records_a_skipped_row(db: &TestDb) {
    let r = runner(db.db(), clock(), "w1");
    let gate = Arc::new(Semaphore::new(0));
    let s = fast_retry_spec(
        "long",
        60,
        TestJob::new(Behaviour::Gate(gate.clone())),
        |_| {},
    );
    let first = {
        let (r, s) = (r.clone(), s.clone());
        tokio::spawn(async move {
            r.run(Slot::new(
                &s,
                utc("2026-05-01T10:00:00Z"),
                Trigger::Schedule,
            ))
            .await
        })
    };
    wait_running(db, "long", 1).await;
    let second = r
        .run(Slot::new(
            &s,
            utc("2026-05-01T10:01:00Z"),
            Trigger::Schedule,
        ))
        .await;
    assert_eq!(second, Outcome::Skipped);
    gate.add_permits(1);
    assert_eq!(status(&first.await.unwrap()), RunStatus::Success);
    let runs = runs_of(db, "long").await;
    assert_eq!(runs.len(), 2);
    let skipped = runs
        .iter()
        .find(|r| r.status == RunStatus::Skipped)
        .unwrap();
    assert_eq!(skipped.scheduled_for, utc("2026-05-01T10:01:00Z"));
    assert!(skipped
        .error
        .as_deref()
        .unwrap()
        .contains("previous run is still going"));
}

async fn overlap_queue_runs_one_waiting_slot_afterwards(db: &TestDb) {
    let r = runner(db.db(), clock(), "w1");
    let gate = Arc::new(Semaphore::new(0));
    let job = TestJob::new(Behaviour::Gate(gate.clone()));
    let s = fast_retry_spec("queued", 60, job.clone(), |s| s.overlap = Overlap::Queue);
    let spawn = |slot: &str| {
        let (r, s, slot) = (r.clone(), s.clone(), utc(slot));
        tokio::spawn(async move { r.run(Slot::new(&s, slot, Trigger::Schedule)).await })
    };
    let first = spawn("2026-05-01T10:00:00Z");
    wait_running(db, "queued", 1).await;
    // The row is written before the job is called: wait for the call too.
    crate::fixtures::eventually(Duration::from_secs(5), "the first run called", || {
        let calls = job.calls();
        async move { calls == 1 }
    })
    .await;
    let second = spawn("2026-05-01T10:01:00Z");
    // The second waits; a third finds the queue full.
    crate::fixtures::eventually(Duration::from_secs(5), "second slot queued", || {
        let queued = r.has_queued_slot("queued");
        async move { queued }
    })
    .await;
    let third = r
        .run(Slot::new(
            &s,
            utc("2026-05-01T10:02:00Z"),
            Trigger::Schedule,
        ))
        .await;
    assert_eq!(third, Outcome::Skipped);
    assert_eq!(
        job.calls(),
        1,
        "the queued slot must not start while the first runs"
    );
    gate.add_permits(2);
    assert_eq!(status(&first.await.unwrap()), RunStatus::Success);
    assert_eq!(status(&second.await.unwrap()), RunStatus::Success);
    let runs = runs_of(db, "queued").await;
    let first_run = runs
        .iter()
        .find(|r| r.scheduled_for == utc("2026-05-01T10:00:00Z"))
        .unwrap();
    let second_run = runs
        .iter()
        .find(|r| r.scheduled_for == utc("2026-05-01T10:01:00Z"))
        .unwrap();
    assert!(
        second_run.started_at >= first_run.finished_at.unwrap(),
        "queued runs one after the other"
    );
}

async fn overlap_allow_runs_alongside(db: &TestDb) {
    let r = runner(db.db(), clock(), "w1");
    let gate = Arc::new(Semaphore::new(0));
    let job = TestJob::new(Behaviour::Gate(gate.clone()));
    let s = fast_retry_spec("parallel", 60, job.clone(), |s| s.overlap = Overlap::Allow);
    let tasks: Vec<_> = ["2026-05-01T10:00:00Z", "2026-05-01T10:01:00Z"]
        .into_iter()
        .map(|slot| {
            let (r, s, slot) = (r.clone(), s.clone(), utc(slot));
            tokio::spawn(async move { r.run(Slot::new(&s, slot, Trigger::Schedule)).await })
        })
        .collect();
    wait_running(db, "parallel", 2).await;
    gate.add_permits(2);
    for t in tasks {
        assert_eq!(status(&t.await.unwrap()), RunStatus::Success);
    }
}

async fn a_blocking_job_does_not_delay_others(db: &TestDb) {
    let r = runner(db.db(), clock(), "w1");
    let blockers: Vec<_> = (0..2)
        .map(|i| {
            let s = fast_retry_spec(
                &format!("blocker{i}"),
                60,
                TestJob::new(Behaviour::Block(Duration::from_secs(3))),
                |_| {},
            );
            let r = r.clone();
            tokio::spawn(async move {
                r.run(Slot::new(
                    &s,
                    utc("2026-05-01T10:00:00Z"),
                    Trigger::Schedule,
                ))
                .await
            })
        })
        .collect();
    wait_running(db, "blocker0", 1).await;
    wait_running(db, "blocker1", 1).await;
    // While two job threads are blocked, quick jobs still run promptly.
    let quick = fast_retry_spec("quick", 60, TestJob::new(Behaviour::Succeed), |_| {});
    for minute in 0..5 {
        let started = Instant::now();
        let slot = utc("2026-05-01T10:00:00Z") + chrono::Duration::minutes(minute);
        assert_eq!(
            status(&r.run(Slot::new(&quick, slot, Trigger::Schedule)).await),
            RunStatus::Success
        );
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "a quick run took {:?} behind blocked jobs",
            started.elapsed()
        );
    }
    for b in blockers {
        assert_eq!(status(&b.await.unwrap()), RunStatus::Success);
    }
}

async fn a_panic_does_not_affect_other_runs(db: &TestDb) {
    let r = runner(db.db(), clock(), "w1");
    let boom = fast_retry_spec("boom", 60, TestJob::new(Behaviour::Panic), |_| {});
    let ok = fast_retry_spec("fine", 60, TestJob::new(Behaviour::Succeed), |_| {});
    let slot = utc("2026-05-01T10:00:00Z");
    let (a, b) = tokio::join!(
        r.run(Slot::new(&boom, slot, Trigger::Schedule)),
        r.run(Slot::new(&ok, slot, Trigger::Schedule))
    );
    assert_eq!(
        (status(&a), status(&b)),
        (RunStatus::Panicked, RunStatus::Success)
    );
    // The same job keeps working after panicking.
    let again = r
        .run(Slot::new(
            &ok,
            slot + chrono::Duration::minutes(1),
            Trigger::Schedule,
        ))
        .await;
    assert_eq!(status(&again), RunStatus::Success);
}

async fn interrupt_records_interrupted(db: &TestDb) {
    let r = runner(db.db(), clock(), "w1");
    let s = fast_retry_spec(
        "endless",
        60,
        TestJob::new(Behaviour::Gate(Arc::new(Semaphore::new(0)))),
        |_| {},
    );
    let task = {
        let (r, s) = (r.clone(), s.clone());
        tokio::spawn(async move {
            r.run(Slot::new(
                &s,
                utc("2026-05-01T10:00:00Z"),
                Trigger::Schedule,
            ))
            .await
        })
    };
    wait_running(db, "endless", 1).await;
    r.interrupt();
    assert_eq!(status(&task.await.unwrap()), RunStatus::Interrupted);
    let run = &runs_of(db, "endless").await[0];
    assert_eq!(run.status, RunStatus::Interrupted);
    assert!(run.finished_at.is_some());
}

async fn wait_running(db: &TestDb, job: &str, n: usize) {
    crate::fixtures::eventually(
        Duration::from_secs(10),
        &format!("{n} running run(s) of {job}"),
        || async {
            runs_of(db, job)
                .await
                .iter()
                .filter(|r| r.status == RunStatus::Running)
                .count()
                >= n
        },
    )
    .await;
}

/// Two workers wake for the same slots: each slot runs once, on the worker
/// first in its rendezvous order, and the slots split about evenly.
async fn slots_spread_over_the_live_workers(db: &TestDb) {
    let (w1, w2) = (
        runner(db.db(), clock(), "w1"),
        runner(db.db(), clock(), "w2"),
    );
    for r in [&w1, &w2] {
        r.peers().set(vec!["w1".into(), "w2".into()]);
    }
    let job = TestJob::new(Behaviour::Succeed);
    let s = fast_retry_spec("spread", 60, job.clone(), |_| {});
    let mut ran = [0, 0];
    for i in 0..40 {
        let slot = utc("2026-05-01T10:00:00Z") + chrono::TimeDelta::minutes(i);
        let (a, b) = tokio::join!(
            w1.run(Slot::new(&s, slot, Trigger::Schedule)),
            w2.run(Slot::new(&s, slot, Trigger::Schedule))
        );
        let winner = match (&a, &b) {
            (Outcome::Ran(_), Outcome::Taken) => 0,
            (Outcome::Taken, Outcome::Ran(_)) => 1,
            other => panic!("slot {i}: {other:?}"),
        };
        let first = w1.peers().first("spread", slot).unwrap();
        assert_eq!(["w1", "w2"][winner], first, "slot {i}");
        ran[winner] += 1;
    }
    assert_eq!(job.calls(), 40);
    // Deterministic for these names and slots; a fair split is 20/20.
    assert!(ran.iter().all(|&n| n >= 12), "{ran:?}");
}

/// `skip` and `queue` hold across workers: while w1 runs the job, w2 skips
/// its next slot (`skip`) or waits for w1's run to end (`queue`).
async fn overlap_holds_across_workers(db: &TestDb) {
    let (w1, w2) = (
        runner(db.db(), clock(), "w1"),
        runner(db.db(), clock(), "w2"),
    );
    // Both see each other live: only then is the check made.
    for r in [&w1, &w2] {
        r.peers().set(vec!["w1".into(), "w2".into()]);
    }
    for (name, overlap) in [("x-skip", Overlap::Skip), ("x-queue", Overlap::Queue)] {
        let gate = Arc::new(Semaphore::new(0));
        let job = TestJob::new(Behaviour::Gate(gate.clone()));
        let s = fast_retry_spec(name, 60, job.clone(), |s| s.overlap = overlap);
        let first = {
            let (w1, s) = (w1.clone(), s.clone());
            tokio::spawn(async move {
                w1.run(Slot::new(
                    &s,
                    utc("2026-05-01T10:00:00Z"),
                    Trigger::Schedule,
                ))
                .await
            })
        };
        wait_running(db, name, 1).await;
        let second = {
            let (w2, s) = (w2.clone(), s.clone());
            tokio::spawn(async move {
                w2.run(Slot::new(
                    &s,
                    utc("2026-05-01T10:01:00Z"),
                    Trigger::Schedule,
                ))
                .await
            })
        };
        if overlap == Overlap::Skip {
            assert_eq!(second.await.unwrap(), Outcome::Skipped);
            gate.add_permits(1);
            assert_eq!(status(&first.await.unwrap()), RunStatus::Success);
            let skipped = runs_of(db, name)
                .await
                .into_iter()
                .find(|r| r.status == RunStatus::Skipped)
                .unwrap();
            assert_eq!(skipped.worker_id, "w2");
            assert_eq!(
                skipped.error.as_deref(),
                Some("skipped: a run is going on worker w1 (overlap = \"skip\")")
            );
        } else {
            // Several polls of w2 while w1 runs: it must neither claim nor
            // start meanwhile.
            tokio::time::sleep(Duration::from_millis(800)).await;
            assert_eq!(job.calls(), 1, "the queued slot waits for w1's run");
            assert_eq!(runs_of(db, name).await.len(), 1, "w2 claims nothing yet");
            gate.add_permits(1);
            assert_eq!(status(&first.await.unwrap()), RunStatus::Success);
            // w1's row is finished: now w2 claims and starts.
            eventually(
                Duration::from_secs(10),
                "the queued slot starts",
                || async { job.calls() == 2 },
            )
            .await;
            gate.add_permits(1);
            assert_eq!(status(&second.await.unwrap()), RunStatus::Success);
            let runs = runs_of(db, name).await;
            let workers: Vec<&str> = runs.iter().map(|r| r.worker_id.as_str()).collect();
            assert_eq!(workers.len(), 2, "{runs:#?}");
            assert!(
                workers.contains(&"w1") && workers.contains(&"w2"),
                "{runs:#?}"
            );
        }
    }
}

crate::backend_tests!(
    overlap_holds_across_workers,
    slots_spread_over_the_live_workers,
    outcomes_are_recorded,
    timeout_cancels_the_job_and_records_timeout,
    timeout_kills_the_command_process_group,
    retries_are_separate_rows_with_doubling_backoff,
    exactly_one_claimer_wins_a_slot,
    overlap_skip_records_a_skipped_row,
    overlap_queue_runs_one_waiting_slot_afterwards,
    overlap_allow_runs_alongside,
    a_blocking_job_does_not_delay_others,
    a_panic_does_not_affect_other_runs,
    interrupt_records_interrupted,
);
