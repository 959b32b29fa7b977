//! Pausing jobs, on both backends: `job_pauses` round trips, the runner and
//! the scheduler leaving paused slots alone (not run, not recorded, not
//! missed), and the real daemon honouring `ops-worker pause` and `resume`
//! across a restart and on two replicas.

use std::path::Path;
use std::process::{Child, Output};
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use ops_worker::db::{RunRecord, RunStatus, Trigger};
use ops_worker::runner::{Outcome, Slot};
use ops_worker::scheduler::{self, Start};
use ops_worker_jobs::{Clock, SystemClock};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cli::{daemon, exit_within, sigterm, with_db};
use crate::fixtures::{eventually, fast_retry_spec, runner, utc, Behaviour, TestClock, TestJob};
use crate::helpers::TestDb;
use crate::scheduler::history_at;

async fn runs(db: &TestDb, job: &str) -> Vec<RunRecord> {
    let mut runs = db.db().history(Some(job), 10_000).await.unwrap();
    runs.reverse();
    runs
}

async fn pause_resume_and_upsert_round_trip(t: &TestDb) {
    let db = t.db();
    let t0 = utc("2026-11-26T10:00:00Z");
    assert!(db.pauses().await.unwrap().is_empty());
    assert!(!db.resume("tick", t0).await.unwrap(), "nothing to resume");

    db.pause("tick", t0, None, Some("maintenance"), "ops")
        .await
        .unwrap();
    db.pause("tock", t0, Some(t0 + TimeDelta::hours(2)), None, "alice")
        .await
        .unwrap();
    let pauses = db.pauses().await.unwrap();
    assert_eq!(pauses.len(), 2);
    let tick = &pauses[0];
    assert_eq!(
        (
            tick.job_name.as_str(),
            tick.paused_at,
            tick.until,
            tick.reason.as_deref(),
            tick.paused_by.as_str()
        ),
        ("tick", t0, None, Some("maintenance"), "ops")
    );
    assert!(tick.active(t0 + TimeDelta::days(100)));
    assert_eq!(pauses[1].until, Some(t0 + TimeDelta::hours(2)));
    assert_eq!(pauses[1].reason, None);

    // Pausing a paused job replaces its end, reason and author; it stays
    // paused since it was first paused.
    let t1 = t0 + TimeDelta::minutes(5);
    db.pause("tick", t1, Some(t1 + TimeDelta::hours(1)), None, "bob")
        .await
        .unwrap();
    let tick = db.pauses().await.unwrap().remove(0);
    assert_eq!(
        (tick.paused_at, tick.until, tick.reason, tick.paused_by),
        (t0, Some(t1 + TimeDelta::hours(1)), None, "bob".to_string())
    );
    // A pause that already ended is replaced whole.
    let t3 = t1 + TimeDelta::hours(2);
    db.pause("tick", t3, None, Some("again"), "carol")
        .await
        .unwrap();
    let tick = db.pauses().await.unwrap().remove(0);
    assert_eq!(
        (tick.paused_at, tick.until, tick.reason.as_deref()),
        (t3, None, Some("again"))
    );

    // A resume ends the pause and keeps its span.
    let t2 = t3 + TimeDelta::minutes(10);
    assert!(db.resume("tick", t2).await.unwrap());
    assert!(!db.resume("tick", t2).await.unwrap(), "already ended");
    let tick = db.pauses().await.unwrap().remove(0);
    assert_eq!(tick.until, Some(t2));
    assert!(!tick.active(t2));
    assert!(tick.covers(t2 - TimeDelta::seconds(1)));
    // A pause whose `until` passed cannot be resumed either.
    assert!(!db.resume("tock", t0 + TimeDelta::hours(3)).await.unwrap());
}

async fn a_paused_slot_is_not_run_or_recorded_but_a_manual_run_is(t: &TestDb) {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let r = runner(t.db(), clock.clone(), "w1");
    let job = TestJob::new(Behaviour::Succeed);
    let s = fast_retry_spec("tick", 1, job.clone(), |_| {});
    let now = clock.now();
    let slot = ops_worker::schedule::whole_second(now) + TimeDelta::seconds(1);

    // A pause whose `until` already passed changes nothing.
    t.db()
        .pause(
            "tick",
            now - TimeDelta::hours(1),
            Some(now - TimeDelta::minutes(1)),
            None,
            "ops",
        )
        .await
        .unwrap();
    r.pauses().set(t.db().pauses().await.unwrap(), now);
    let o = r.run(Slot::new(&s, slot, Trigger::Schedule)).await;
    assert!(matches!(o, Outcome::Ran(_)), "{o:?}");
    assert_eq!(runs(t, "tick").await.len(), 1);

    t.db()
        .pause("tick", now, None, Some("maintenance"), "ops")
        .await
        .unwrap();
    r.pauses().set(t.db().pauses().await.unwrap(), now);
    let later = slot + TimeDelta::seconds(1);
    for trigger in [Trigger::Schedule, Trigger::CatchUp] {
        assert_eq!(
            r.run(Slot::new(&s, later, trigger).with_missed(3)).await,
            Outcome::Paused
        );
    }
    assert_eq!(
        r.run(Slot::after_abandoned(&s, later, 1)).await,
        Outcome::Paused,
        "an abandoned slot is not retried while paused"
    );
    assert_eq!(job.calls(), 1);
    assert_eq!(
        runs(t, "tick").await.len(),
        1,
        "a paused slot writes no row"
    );

    // A manual run is the operator's own decision: it runs.
    let o = r.run(Slot::new(&s, later, Trigger::Manual)).await;
    assert!(
        matches!(&o, Outcome::Ran(rep) if rep.status == RunStatus::Success),
        "{o:?}"
    );
    assert_eq!(job.calls(), 2);
    let rows = runs(t, "tick").await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].trigger, Trigger::Manual);
}

/// A worker restarted after a pause ended does not catch up the slots that
/// lay in it, nor count them as missed; slots outside it still count.
async fn slots_in_an_ended_pause_are_neither_caught_up_nor_missed(t: &TestDb) {
    use ops_worker::schedule::CatchUp;
    let t0 = utc("2026-06-01T12:00:00Z");
    let now = t0 + TimeDelta::seconds(5);
    let clock = TestClock::new(now);
    let r = runner(t.db(), clock.clone() as Arc<dyn Clock>, "w1");
    // Each job's last run was at -60 s; it was paused from -55 s to -15 s.
    for job in ["latest", "all"] {
        history_at(t, job, t0 - TimeDelta::seconds(60)).await;
        t.db()
            .pause(job, t0 - TimeDelta::seconds(55), None, None, "ops")
            .await
            .unwrap();
        assert!(t
            .db()
            .resume(job, t0 - TimeDelta::seconds(15))
            .await
            .unwrap());
    }
    // As the daemon does before it arms the jobs.
    ops_worker::heartbeat::refresh_pauses(t.db(), r.pauses(), now)
        .await
        .unwrap();
    let (stop, tracker) = (CancellationToken::new(), TaskTracker::new());
    for (job, policy) in [("latest", CatchUp::Latest), ("all", CatchUp::All)] {
        let s = fast_retry_spec(job, 10, TestJob::new(Behaviour::Succeed), |s| {
            s.catch_up = policy;
        });
        scheduler::arm(
            s,
            r.clone(),
            Start {
                last_slot: Some(t0 - TimeDelta::seconds(60)),
                armed_at: now,
            },
            stop.clone(),
            tracker.clone(),
        );
    }
    let finished = |job: &'static str| async move {
        runs(t, job)
            .await
            .iter()
            .filter(|r| r.finished_at.is_some())
            .map(|r| (r.scheduled_for, r.trigger, r.missed))
            .skip(1)
            .collect::<Vec<_>>()
    };
    // Both loops have handed the wake's runs over once they sleep until
    // the next slot; the tracker then holds every run the wake planned.
    clock.asleep_until(t0 + TimeDelta::seconds(10), 2).await;
    stop.cancel();
    tracker.close();
    tokio::time::timeout(Duration::from_secs(10), tracker.wait())
        .await
        .expect("the wake's runs end");
    // -50 .. -20 lay in the pause: not run, not missed; -10 is missed.
    assert_eq!(finished("latest").await, vec![(t0, Trigger::Schedule, 1)]);
    assert_eq!(
        finished("all").await,
        vec![
            (t0 - TimeDelta::seconds(10), Trigger::CatchUp, 0),
            (t0, Trigger::Schedule, 0),
        ]
    );
}

fn cli(dir: &Path, db: &TestDb, args: &[&str]) -> Output {
    with_db(dir, db)
        .args(args)
        .env("USER", "tester")
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const TICK: &str = "[jobs.tick]\nkind = \"command\"\nevery = \"1s\"\ncommand = [\"true\"]\n";

/// `tick`, and `witness` beside it on the same 1 s grid, never paused: its
/// runs show the daemons were up and scheduling while `tick` was not run.
const TICK_AND_WITNESS: &str = concat!(
    "[jobs.tick]\nkind = \"command\"\nevery = \"1s\"\ncommand = [\"true\"]\n",
    "\n[jobs.witness]\nkind = \"command\"\nevery = \"1s\"\ncommand = [\"true\"]\n"
);

/// How long a pause takes to reach a running daemon: one heartbeat, plus a
/// margin for a slot under way.
const PROPAGATION: Duration = Duration::from_millis(6_500);

async fn row_count(db: &TestDb) -> usize {
    runs(db, "tick").await.len()
}

async fn wait_more_rows(db: &TestDb, than: usize) {
    eventually(
        Duration::from_secs(15),
        &format!("more than {than} runs of tick"),
        || async { row_count(db).await > than },
    )
    .await;
}

/// No new row of `tick` while `witness` runs three more times (after the
/// pause has had time to propagate). Returns `tick`'s row count.
async fn assert_no_new_rows(db: &TestDb, why: &str) -> usize {
    let before = row_count(db).await;
    let witnessed = runs(db, "witness").await.len();
    eventually(
        Duration::from_secs(15),
        &format!("three more runs of the witness ({why})"),
        || async { runs(db, "witness").await.len() >= witnessed + 3 },
    )
    .await;
    let after = runs(db, "tick").await;
    assert_eq!(after.len(), before, "{why}: {:#?}", &after[before..]);
    before
}

async fn stop(child: Child) {
    sigterm(&child);
    let (code, err) = exit_within(child, Duration::from_secs(15)).await;
    assert_eq!(code, 0, "{err}");
}

async fn the_daemon_honours_pause_across_a_restart_and_resume(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let child = daemon(dir.path(), db, TICK_AND_WITNESS, "5s", "w1");
    wait_more_rows(db, 1).await;

    let out = cli(
        dir.path(),
        db,
        &["pause", "tick", "--reason", "maintenance"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).starts_with("tick: paused by tester until resumed (maintenance)"),
        "{}",
        text(&out)
    );
    tokio::time::sleep(PROPAGATION).await;
    assert_no_new_rows(db, "paused").await;

    let out = cli(dir.path(), db, &["list"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let line = text(&out)
        .lines()
        .find(|l| l.starts_with("tick "))
        .unwrap_or_default()
        .to_string();
    assert!(
        text(&out).lines().next().unwrap().contains("PAUSED")
            && line.ends_with("until resumed (maintenance)"),
        "{}",
        text(&out)
    );
    let out = cli(dir.path(), db, &["list", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["paused"]["reason"], "maintenance", "{json}");
    assert_eq!(json[0]["paused"]["paused_by"], "tester", "{json}");
    assert!(json[0]["paused"]["until"].is_null(), "{json}");

    // A restart reads the pause before arming: still nothing runs.
    stop(child).await;
    let child = daemon(dir.path(), db, TICK_AND_WITNESS, "5s", "w1");
    let paused_rows = assert_no_new_rows(db, "paused after a restart").await;

    let out = cli(dir.path(), db, &["resume", "tick"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).starts_with("tick: resumed"), "{}", text(&out));
    wait_more_rows(db, paused_rows + 1).await;
    stop(child).await;

    let all = runs(db, "tick").await;
    let resumed = &all[paused_rows..];
    assert!(
        resumed
            .iter()
            .all(|r| r.missed == 0 && r.trigger == Trigger::Schedule),
        "the paused slots are neither missed nor caught up: {resumed:#?}"
    );
    let out = cli(dir.path(), db, &["list"]);
    assert!(
        text(&out)
            .lines()
            .find(|l| l.starts_with("tick "))
            .is_some_and(|l| l.trim_end().ends_with(" -")),
        "{}",
        text(&out)
    );
}

async fn a_pause_holds_on_every_replica(db: &TestDb) {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let w1 = daemon(d1.path(), db, TICK_AND_WITNESS, "5s", "w1");
    let w2 = daemon(d2.path(), db, TICK_AND_WITNESS, "5s", "w2");
    wait_more_rows(db, 3).await;
    let out = cli(d1.path(), db, &["pause", "tick", "--until", "1h"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    tokio::time::sleep(PROPAGATION).await;
    assert_no_new_rows(db, "paused on both replicas").await;
    stop(w1).await;
    stop(w2).await;
}

async fn unknown_jobs_and_bad_times_are_usage_errors(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("schedules.toml"), TICK).unwrap();
    for args in [
        &["pause", "nope"][..],
        &["resume", "nope"],
        &["pause", "tick", "--until", "soon"],
        &["pause", "tick", "--until", "2020-01-01T00:00:00Z"],
    ] {
        let out = cli(dir.path(), db, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(
            text(&out).starts_with("error: "),
            "{args:?}: {}",
            text(&out)
        );
    }
    let out = cli(dir.path(), db, &["pause", "nope"]);
    assert!(
        text(&out).contains("unknown job \"nope\""),
        "{}",
        text(&out)
    );
    let out = cli(dir.path(), db, &["resume", "tick"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(text(&out), "tick: was not paused\n");
    let out = cli(
        dir.path(),
        db,
        &[
            "pause",
            "tick",
            "--until",
            "2099-01-01T10:00:00+01:00",
            "--by",
            "carol",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).starts_with("tick: paused by carol until 2099-01-01 09:00:00Z;"),
        "{}",
        text(&out)
    );
    assert!(db.db().pauses().await.unwrap()[0].active(Utc::now()));
}

crate::backend_tests!(
    pause_resume_and_upsert_round_trip,
    a_paused_slot_is_not_run_or_recorded_but_a_manual_run_is,
    slots_in_an_ended_pause_are_neither_caught_up_nor_missed,
    the_daemon_honours_pause_across_a_restart_and_resume,
    a_pause_holds_on_every_replica,
    unknown_jobs_and_bad_times_are_usage_errors,
);
