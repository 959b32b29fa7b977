//! History retention on both backends: which rows of `job_runs` a pass
//! prunes (age, `keep_last`, jobs no longer in the file) and which it never
//! does (a job's newest success and failure, unfinished runs), which
//! `run_requests` go (finished, old, their run gone), batches, several
//! workers pruning at once, and the daemon's background task.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use ops_worker::config::Config;
use ops_worker::db::{Db, RequestStatus, RunStatus, Trigger};
use ops_worker::retention;
use ops_worker_jobs::Clock;
use tokio_util::sync::CancellationToken;

use crate::fixtures::{utc, PastRun, TestClock};
use crate::helpers::TestDb;

const NOW: &str = "2026-11-26T12:00:00Z";

fn days_ago(d: i64) -> DateTime<Utc> {
    utc(NOW) - TimeDelta::days(d)
}

fn hours_ago(h: i64) -> DateTime<Utc> {
    utc(NOW) - TimeDelta::hours(h)
}

/// Records `job`'s run of `slot` with `status` (`Running`: still going).
async fn row(db: &Db, job: &'static str, slot: DateTime<Utc>, status: RunStatus) {
    PastRun {
        job,
        slot,
        trigger: Trigger::Schedule,
        late_ms: 0,
        status,
        duration_ms: 1000,
        missed: 0,
        jitter_ms: None,
    }
    .record(db)
    .await;
}

/// `job`'s rows, oldest first.
async fn rows(db: &Db, job: &str) -> Vec<(DateTime<Utc>, RunStatus)> {
    let mut rows: Vec<_> = db
        .history(Some(job), 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.scheduled_for, r.status))
        .collect();
    rows.reverse();
    rows
}

fn config(toml: &str) -> Config {
    Config::parse(Path::new("schedules.toml"), toml, &|_| None).unwrap()
}

/// One pass as the daemon runs it, at [`NOW`].
async fn prune(db: &Db, config: &Config) -> retention::Pruned {
    retention::prune(
        db,
        &config.jobs,
        config.default_retention,
        utc(NOW),
        retention::BATCH,
        &CancellationToken::new(),
    )
    .await
    .unwrap()
}

/// `job`'s run of `slot`, as recorded.
async fn run_id(db: &Db, job: &str, slot: DateTime<Utc>) -> i64 {
    let runs = db.history(Some(job), 10_000).await.unwrap();
    runs.iter().find(|r| r.scheduled_for == slot).unwrap().id
}

/// A request for `job`, asked and claimed a minute before it finished at
/// `finished`; its run `run` (None: no run came of it).
async fn finished_request(db: &Db, job: &str, finished: DateTime<Utc>, run: Option<i64>) -> i64 {
    let asked = finished - TimeDelta::minutes(1);
    let id = db.insert_run_request(job, "bob", asked).await.unwrap();
    assert!(db.claim_run_request(id, "w", asked).await.unwrap());
    let error = match run {
        Some(run) => {
            assert!(db.run_request_started(id, "w", run).await.unwrap());
            None
        }
        None => Some("job \"x\" is not in schedules.toml"),
    };
    assert!(db
        .finish_run_request(id, "w", finished, error)
        .await
        .unwrap());
    id
}

/// A request for `job` asked 30 days ago and not finished: `pending`, or
/// `claimed` by worker `w`.
async fn open_request(db: &Db, job: &str, claim: bool) -> i64 {
    let id = db
        .insert_run_request(job, "bob", days_ago(30))
        .await
        .unwrap();
    if claim {
        assert!(db.claim_run_request(id, "w", days_ago(30)).await.unwrap());
    }
    id
}

/// Which of `ids` are still stored.
async fn stored(db: &Db, ids: &[i64]) -> Vec<i64> {
    let mut kept = Vec::new();
    for &id in ids {
        if db.run_request(id).await.unwrap().is_some() {
            kept.push(id);
        }
    }
    kept
}

async fn finished_requests_older_than_the_default_retention_go_once_their_run_has(db: &TestDb) {
    use RunStatus::*;
    let db = db.db();
    let c = config(
        "[defaults]\nhistory_retention = \"10d\"\n\n\
         [jobs.j]\nkind = \"alerts\"\nevery = \"1m\"\nhistory_retention = \"90d\"\n",
    );
    // `j` keeps its runs 90 days; `removed` is gone from the file (10 days).
    row(db, "j", days_ago(20), Success).await;
    row(db, "j", days_ago(2), Success).await;
    row(db, "removed", days_ago(20), Skipped).await;
    row(db, "removed", days_ago(19), Running).await;
    let j_run = run_id(db, "j", days_ago(20)).await;
    let removed_run = run_id(db, "removed", days_ago(20)).await;
    let running_run = run_id(db, "removed", days_ago(19)).await;

    let no_run = finished_request(db, "x", days_ago(20), None).await;
    let run_pruned_now = finished_request(db, "removed", days_ago(20), Some(removed_run)).await;
    let run_kept = finished_request(db, "j", days_ago(20), Some(j_run)).await;
    let recent = finished_request(db, "x", days_ago(9), None).await;
    // Unfinished requests, however old, stay.
    let pending = open_request(db, "j", false).await;
    let claimed = open_request(db, "j", true).await;
    let running = open_request(db, "removed", true).await;
    assert!(db
        .run_request_started(running, "w", running_run)
        .await
        .unwrap());
    let all = [
        no_run,
        run_pruned_now,
        run_kept,
        recent,
        pending,
        claimed,
        running,
    ];

    // The run of `run_pruned_now` goes in this pass, before the requests.
    assert_eq!(
        prune(db, &c).await,
        retention::Pruned {
            runs: 1,
            requests: 2
        }
    );
    assert_eq!(
        stored(db, &all).await,
        [run_kept, recent, pending, claimed, running]
    );
    assert_eq!(prune(db, &c).await, retention::Pruned::default());

    // Its run pruned at last (a shorter retention), `run_kept` goes too.
    let c = config(
        "[defaults]\nhistory_retention = \"10d\"\n\n[jobs.other]\nkind = \"alerts\"\nevery = \"1m\"\n",
    );
    assert_eq!(
        prune(db, &c).await,
        retention::Pruned {
            runs: 1,
            requests: 1
        }
    );
    assert_eq!(stored(db, &all).await, [recent, pending, claimed, running]);
    assert_eq!(
        db.run_request(recent).await.unwrap().unwrap().status,
        RequestStatus::Finished
    );
}

async fn run_requests_go_a_batch_per_call_oldest_first(db: &TestDb) {
    let db = db.db();
    let mut ids = Vec::new();
    for d in (31..=35).rev() {
        ids.push(finished_request(db, "x", days_ago(d), None).await);
    }
    let recent = finished_request(db, "x", days_ago(1), None).await;
    assert_eq!(db.prune_run_requests(days_ago(30), 2).await.unwrap(), 2);
    assert_eq!(stored(db, &ids).await, ids[2..]);
    assert_eq!(db.prune_run_requests(days_ago(30), 2).await.unwrap(), 2);
    assert_eq!(db.prune_run_requests(days_ago(30), 2).await.unwrap(), 1);
    assert_eq!(db.prune_run_requests(days_ago(30), 2).await.unwrap(), 0);
    assert_eq!(stored(db, &ids).await, Vec::<i64>::new());
    assert_eq!(stored(db, &[recent]).await, [recent]);
}

async fn rows_older_than_the_retention_go_but_the_newest_success_and_failure_stay(db: &TestDb) {
    use RunStatus::*;
    let db = db.db();
    let c = config("[jobs.quiet]\nkind = \"alerts\"\nevery = \"1m\"\n\n[jobs.busy]\nkind = \"alerts\"\nevery = \"1m\"\n");
    // `quiet` has not run for a month but for a stuck run and skipped slots.
    for (d, status) in [
        (50, Success),
        (45, Failed),
        (42, Running),
        (40, Success),
        (38, Timeout),
        (35, Abandoned),
        (32, Skipped),
        (20, Skipped),
        (1, Skipped),
    ] {
        row(db, "quiet", days_ago(d), status).await;
    }
    // `busy` ran lately: its newest success and failure are recent.
    for (d, status) in [
        (40, Success),
        (35, Panicked),
        (31, Interrupted),
        (29, Success),
        (2, Failed),
        (1, Success),
    ] {
        row(db, "busy", days_ago(d), status).await;
    }

    assert_eq!(prune(db, &c).await.runs, 7);
    assert_eq!(
        rows(db, "quiet").await,
        [
            (days_ago(42), Running),
            (days_ago(40), Success),
            // `abandoned` counts as a failure: the newest one stays.
            (days_ago(35), Abandoned),
            (days_ago(20), Skipped),
            (days_ago(1), Skipped),
        ]
    );
    assert_eq!(
        rows(db, "busy").await,
        [
            (days_ago(29), Success),
            (days_ago(2), Failed),
            (days_ago(1), Success),
        ]
    );
    assert_eq!(prune(db, &c).await.runs, 0, "nothing left to prune");
}

async fn keep_last_keeps_the_newest_rows_and_the_protected_ones(db: &TestDb) {
    use RunStatus::*;
    let db = db.db();
    let c = config(
        "[jobs.chatty]\nkind = \"alerts\"\nevery = \"1m\"\nkeep_last = 3\n\n\
         [jobs.other]\nkind = \"alerts\"\nevery = \"1m\"\n",
    );
    // Oldest first: 1 h ago is the newest row.
    for (h, status) in [
        (10, Success),
        (9, Failed),
        (8, Running),
        (7, Success),
        (6, Skipped),
        (5, Success),
        (4, Success),
        (3, Skipped),
        (2, Success),
        (1, Running),
    ] {
        row(db, "chatty", hours_ago(h), status).await;
        row(db, "other", hours_ago(h), status).await;
    }

    assert_eq!(prune(db, &c).await.runs, 5);
    assert_eq!(
        rows(db, "chatty").await,
        [
            (hours_ago(9), Failed),
            (hours_ago(8), Running),
            // The newest three, one of them still running.
            (hours_ago(3), Skipped),
            (hours_ago(2), Success),
            (hours_ago(1), Running),
        ]
    );
    assert_eq!(
        rows(db, "other").await.len(),
        10,
        "no keep_last, all recent"
    );
}

async fn keep_last_and_the_age_limit_apply_each_on_its_own(db: &TestDb) {
    use RunStatus::*;
    let db = db.db();
    for (d, status) in [
        (9, Failed),
        (8, Success),
        (3, Success),
        (2, Success),
        (1, Success),
    ] {
        row(db, "j", days_ago(d), status).await;
    }
    // Within the newest 4, but older than 5 days: pruned all the same.
    let deleted = db.prune_runs("j", days_ago(5), Some(4), 100).await.unwrap();
    assert_eq!(deleted, 1);
    assert_eq!(
        rows(db, "j").await,
        [
            (days_ago(9), Failed),
            (days_ago(3), Success),
            (days_ago(2), Success),
            (days_ago(1), Success),
        ]
    );
    // Younger than the age limit, but beyond the newest 2.
    let deleted = db
        .prune_runs("j", days_ago(30), Some(2), 100)
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    assert_eq!(
        rows(db, "j").await,
        [
            (days_ago(9), Failed),
            (days_ago(2), Success),
            (days_ago(1), Success),
        ]
    );
}

async fn each_call_deletes_at_most_a_batch_oldest_first(db: &TestDb) {
    let db = db.db();
    for d in (31..=40).rev() {
        row(db, "j", days_ago(d), RunStatus::Success).await;
    }
    row(db, "j", days_ago(1), RunStatus::Success).await;
    row(db, "other", days_ago(40), RunStatus::Skipped).await;

    let mut calls = Vec::new();
    loop {
        let deleted = db.prune_runs("j", days_ago(30), None, 3).await.unwrap();
        calls.push(deleted);
        if calls.len() == 1 {
            // The three oldest went first.
            assert_eq!(rows(db, "j").await[0].0, days_ago(37));
        }
        if deleted < 3 {
            break;
        }
    }
    assert_eq!(calls, [3, 3, 3, 1]);
    assert_eq!(rows(db, "j").await, [(days_ago(1), RunStatus::Success)]);
    assert_eq!(rows(db, "other").await.len(), 1, "only the job asked for");
}

async fn runs_of_jobs_no_longer_in_the_file_go_by_the_defaults(db: &TestDb) {
    use RunStatus::*;
    let db = db.db();
    let c = config(
        "[defaults]\nhistory_retention = \"10d\"\n\n\
         [jobs.kept]\nkind = \"alerts\"\nevery = \"1m\"\nhistory_retention = \"90d\"\n",
    );
    for job in ["kept", "removed"] {
        for (d, status) in [
            (20, Success),
            (15, Failed),
            (12, Success),
            (11, Skipped),
            (5, Skipped),
        ] {
            row(db, job, days_ago(d), status).await;
        }
    }

    assert_eq!(prune(db, &c).await.runs, 2);
    assert_eq!(
        rows(db, "removed").await,
        [
            (days_ago(15), Failed),
            (days_ago(12), Success),
            (days_ago(5), Skipped),
        ]
    );
    assert_eq!(rows(db, "kept").await.len(), 5, "its own 90 days");

    // Without [defaults], the 30 days of the built-in default.
    row(db, "removed", days_ago(31), Skipped).await;
    row(db, "removed", days_ago(29), Skipped).await;
    let c = config("[jobs.kept]\nkind = \"alerts\"\nevery = \"1m\"\n");
    assert_eq!(prune(db, &c).await.runs, 1);
    assert!(!rows(db, "removed").await.contains(&(days_ago(31), Skipped)));
    assert!(rows(db, "removed").await.contains(&(days_ago(29), Skipped)));
}

async fn workers_pruning_at_once_delete_each_row_once(db: &TestDb) {
    let (a, b) = (db.db().clone(), db.connect_again().await);
    for m in 0..60 {
        let slot = days_ago(40) + TimeDelta::minutes(m);
        row(&a, "j", slot, RunStatus::Success).await;
    }
    let newest = days_ago(40) + TimeDelta::minutes(59);
    let prune_all = |db: Db| async move {
        let mut total = 0;
        loop {
            let deleted = db.prune_runs("j", days_ago(30), None, 5).await.unwrap();
            total += deleted;
            if deleted == 0 {
                return total;
            }
        }
    };
    let (x, y) = tokio::join!(
        tokio::spawn(prune_all(a.clone())),
        tokio::spawn(prune_all(b))
    );
    assert_eq!(x.unwrap() + y.unwrap(), 59);
    assert_eq!(rows(&a, "j").await, [(newest, RunStatus::Success)]);
}

/// The daemon's background task, driven by a test clock: nothing before
/// its first pass a minute after start, then a pass that prunes by "now" of
/// that clock, the next ten minutes later by the config running then (a
/// reload), and it ends as soon as it is told.
async fn the_task_prunes_a_minute_after_start_then_every_ten_minutes(db: &TestDb) {
    use RunStatus::*;
    let c = config("[jobs.j]\nkind = \"alerts\"\nevery = \"1m\"\nkeep_last = 3\n");
    for h in (1..=5).rev() {
        row(db.db(), "j", hours_ago(h), Success).await;
    }
    // 31 and 25 days before the clock's "now", 30 days kept: the second
    // stays, though it is more than 30 days before the real time.
    row(db.db(), "gone", days_ago(31), Skipped).await;
    row(db.db(), "gone", days_ago(25), Skipped).await;
    assert!(Utc::now() - days_ago(25) > TimeDelta::days(30));
    // Run requests likewise, by the clock's "now".
    let old_request = finished_request(db.db(), "x", days_ago(31), None).await;
    let request = finished_request(db.db(), "x", days_ago(25), None).await;

    let clock = TestClock::new(utc(NOW));
    let minutes = |m: i64| utc(NOW) + TimeDelta::minutes(m);
    let stop = CancellationToken::new();
    let (reload, running) = tokio::sync::watch::channel(Arc::new(c));
    let task = tokio::spawn(retention::run(
        db.db().clone(),
        running,
        clock.clone() as Arc<dyn Clock>,
        stop.clone(),
    ));
    clock.asleep_until(minutes(1), 1).await;
    assert_eq!(
        rows(db.db(), "j").await.len(),
        5,
        "pruned before the first pass"
    );
    assert_eq!(rows(db.db(), "gone").await.len(), 2);
    assert_eq!(stored(db.db(), &[old_request, request]).await.len(), 2);

    // The first pass; it is over when the task sleeps until the next.
    clock.set(minutes(1));
    clock.asleep_until(minutes(11), 1).await;
    assert_eq!(
        rows(db.db(), "j").await,
        [
            (hours_ago(3), Success),
            (hours_ago(2), Success),
            (hours_ago(1), Success)
        ]
    );
    assert_eq!(rows(db.db(), "gone").await, [(days_ago(25), Skipped)]);
    assert_eq!(stored(db.db(), &[old_request, request]).await, [request]);

    // A reload keeps fewer rows: the next pass, ten minutes on, goes by it.
    reload.send_replace(Arc::new(config(
        "[jobs.j]\nkind = \"alerts\"\nevery = \"1m\"\nkeep_last = 1\n",
    )));
    clock.set(minutes(11));
    clock.asleep_until(minutes(21), 1).await;
    assert_eq!(rows(db.db(), "j").await, [(hours_ago(1), Success)]);

    stop.cancel();
    tokio::time::timeout(Duration::from_secs(1), task)
        .await
        .expect("the pruning task stops within a second")
        .unwrap();
}

crate::backend_tests!(
    rows_older_than_the_retention_go_but_the_newest_success_and_failure_stay,
    keep_last_keeps_the_newest_rows_and_the_protected_ones,
    keep_last_and_the_age_limit_apply_each_on_its_own,
    each_call_deletes_at_most_a_batch_oldest_first,
    runs_of_jobs_no_longer_in_the_file_go_by_the_defaults,
    workers_pruning_at_once_delete_each_row_once,
    the_task_prunes_a_minute_after_start_then_every_ten_minutes,
    finished_requests_older_than_the_default_retention_go_once_their_run_has,
    run_requests_go_a_batch_per_call_oldest_first,
);
