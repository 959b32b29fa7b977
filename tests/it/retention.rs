//! History retention on both backends: which rows of `job_runs` a pass
//! prunes (age, `keep_last`, jobs no longer in the file) and which it never
//! does (a job's newest success and failure, unfinished runs), batches,
//! several workers pruning at once, and the daemon's background task.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use ops_worker::config::Config;
use ops_worker::db::{Db, RunStatus, Trigger};
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
async fn prune(db: &Db, config: &Config) -> u64 {
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

    assert_eq!(prune(db, &c).await, 7);
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
    assert_eq!(prune(db, &c).await, 0, "nothing left to prune");
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

    assert_eq!(prune(db, &c).await, 5);
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

    assert_eq!(prune(db, &c).await, 2);
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
    assert_eq!(prune(db, &c).await, 1);
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
);
