//! The database going away while the worker runs: jobs keep running, their
//! records are held in memory and written once the database is back.

use std::sync::Arc;
use std::time::Duration;

use ops_worker::db::{RunStatus, Trigger};
use ops_worker::runner::{Outcome, Runner, Slot};
use ops_worker_jobs::{Clock, SystemClock};
use tokio::sync::Semaphore;

use crate::fixtures::{eventually, fast_retry_spec, runner, utc, Behaviour, TestJob};
use crate::helpers::TestDb;

fn clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// Flushes `r`'s held records as its background writer does, retrying
/// until the database takes them: the first attempt after an outage may
/// pick a pooled connection the outage killed, which fails once and is
/// discarded.
async fn flushed(r: &Runner) {
    eventually(Duration::from_secs(10), "held records written", || {
        r.recorder().flush()
    })
    .await;
    assert_eq!(r.recorder().pending(), 0);
}

async fn jobs_run_during_an_outage_and_are_recorded_after(db: &TestDb) {
    let r = runner(db.db(), clock(), "w1");
    let job = TestJob::new(Behaviour::Succeed);
    let s = fast_retry_spec("steady", 60, job.clone(), |_| {});
    let outage = db.outage().await;

    let outcome = r
        .run(Slot::new(
            &s,
            utc("2026-07-01T00:00:00Z"),
            Trigger::Schedule,
        ))
        .await;
    let Outcome::Ran(report) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        (report.status, report.run_id),
        (RunStatus::Success, None),
        "ran without a row"
    );
    assert_eq!(job.calls(), 1);
    assert_eq!(r.recorder().pending(), 1);
    assert!(!r.recorder().flush().await, "still down");
    assert_eq!(r.recorder().pending(), 1, "nothing lost by a failed flush");

    outage.end().await;
    flushed(&r).await;
    assert_eq!(r.recorder().pending(), 0);
    let runs = db.db().history(Some("steady"), 10).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(
        (runs[0].status, runs[0].scheduled_for),
        (RunStatus::Success, utc("2026-07-01T00:00:00Z"))
    );
    assert!(runs[0].finished_at.is_some());
}

/// With the database down, workers cannot claim: each slot runs on its
/// first worker in the rendezvous order only, not once per worker.
async fn during_an_outage_each_slot_runs_on_its_first_worker_only(db: &TestDb) {
    let ids = ["w1", "w2", "w3"];
    let workers: Vec<_> = ids.iter().map(|id| runner(db.db(), clock(), id)).collect();
    for w in &workers {
        w.peers().set(ids.iter().map(|id| id.to_string()).collect());
    }
    let job = TestJob::new(Behaviour::Succeed);
    let s = fast_retry_spec("shared", 60, job.clone(), |_| {});
    let outage = db.outage().await;
    for i in 0..6 {
        let slot = utc("2026-07-01T00:00:00Z") + chrono::TimeDelta::minutes(i);
        let outcomes = futures::future::join_all(
            workers
                .iter()
                .map(|w| w.run(Slot::new(&s, slot, Trigger::Schedule))),
        )
        .await;
        let ran: Vec<&str> = outcomes
            .iter()
            .zip(ids)
            .filter(|(o, _)| matches!(o, Outcome::Ran(_)))
            .map(|(_, id)| id)
            .collect();
        let first = workers[0].peers().first("shared", slot).unwrap();
        assert_eq!(ran, [first.as_str()], "slot {i}: {outcomes:?}");
    }
    assert_eq!(job.calls(), 6);
    outage.end().await;
    for w in &workers {
        flushed(w).await;
    }
    let runs = db.db().history(Some("shared"), 100).await.unwrap();
    assert_eq!(runs.len(), 6, "{runs:#?}");
}

async fn a_finish_that_fails_is_written_later(db: &TestDb) {
    let r = runner(db.db(), clock(), "w1");
    let gate = Arc::new(Semaphore::new(0));
    let s = fast_retry_spec(
        "midway",
        60,
        TestJob::new(Behaviour::Gate(gate.clone())),
        |_| {},
    );
    let task = {
        let (r, s) = (r.clone(), s.clone());
        tokio::spawn(async move {
            r.run(Slot::new(
                &s,
                utc("2026-07-01T00:00:00Z"),
                Trigger::Schedule,
            ))
            .await
        })
    };
    eventually(Duration::from_secs(10), "the run is claimed", || async {
        db.db().history(Some("midway"), 1).await.unwrap().len() == 1
    })
    .await;
    let outage = db.outage().await;
    gate.add_permits(1);
    let Outcome::Ran(report) = task.await.unwrap() else {
        panic!()
    };
    assert_eq!(report.status, RunStatus::Success);
    assert!(report.run_id.is_some());
    assert_eq!(r.recorder().pending(), 1);
    outage.end().await;
    flushed(&r).await;
    let runs = db.db().history(Some("midway"), 10).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(
        runs[0].status,
        RunStatus::Success,
        "the claimed row is finished, not duplicated"
    );
}

crate::backend_tests!(
    during_an_outage_each_slot_runs_on_its_first_worker_only,
    jobs_run_during_an_outage_and_are_recorded_after,
    a_finish_that_fails_is_written_later
);
