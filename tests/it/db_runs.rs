//! `job_runs` storage on both backends: migrations, slot claims, finishing,
//! abandoning, the scheduler's and the CLI's reads, timestamps, connection
//! failures, and that the two migration trees define the same table.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{Bool, Integer, Text};
use diesel::QueryableByName;
use ops_worker::db::{
    Backend, DatabaseUrl, Db, DbError, Finish, NewRun, RunRecord, RunStatus, RunsQuery, Trigger,
};

use crate::backend_tests;
use crate::helpers::TestDb;

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap_or_else(|e| panic!("{rfc3339}: {e}"))
        .to_utc()
}

const T1: &str = "2026-03-01T10:00:00Z";
const T2: &str = "2026-03-01T10:05:00Z";
const T3: &str = "2026-03-01T10:10:00Z";
const T4: &str = "2026-03-01T10:15:00Z";
const T5: &str = "2026-03-01T10:20:00Z";

/// A scheduled first attempt of `job` at `slot`, by worker "w1".
fn run(job: &str, slot: &str) -> NewRun {
    NewRun {
        job_name: job.to_owned(),
        kind: "http".to_owned(),
        scheduled_for: at(slot),
        trigger: Trigger::Schedule,
        attempt: 1,
        worker_id: "w1".to_owned(),
        started_at: at(slot),
        missed: 0,
        jitter_ms: None,
    }
}

fn finish(status: RunStatus, finished_at: DateTime<Utc>) -> Finish {
    Finish {
        status,
        finished_at,
        error: (status != RunStatus::Success).then(|| format!("{status} for a test")),
        output: Some("out".to_owned()),
        duration_ms: 1234,
    }
}

async fn claim(db: &Db, run: &NewRun) -> i64 {
    db.claim_run(run)
        .await
        .expect("claim_run")
        .unwrap_or_else(|| panic!("slot {} {} already taken", run.job_name, run.scheduled_for))
}

async fn all_runs(db: &Db) -> Vec<RunRecord> {
    db.history(None, 1000).await.expect("history")
}

async fn run_by_id(db: &Db, id: i64) -> RunRecord {
    all_runs(db)
        .await
        .into_iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no run {id}"))
}

/// Display of the error and all its sources, as `main` would print them.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

backend_tests!(
    migrate_is_idempotent_and_serialised,
    claim_has_exactly_one_winner,
    attempts_are_separate_claims,
    finish_succeeds_once,
    finishing_as_running_is_rejected,
    insert_finished_run_conflicts_with_a_claim,
    abandon_running_touches_only_this_workers_running_rows,
    runs_of_workers_without_a_fresh_heartbeat_are_abandoned,
    an_exclusive_claim_tells_taken_from_busy,
    exclusive_claims_made_at_once_have_one_winner,
    last_slots_ignores_manual_and_retry_and_takes_the_latest,
    job_summaries_pick_newest_run_and_last_success,
    history_order_limit_and_filter,
    runs_page_walks_attempts_of_one_slot_by_id,
    timestamps_round_trip,
    check_constraints_reject_bad_values,
);

async fn migrate_is_idempotent_and_serialised(t: &TestDb) {
    // `TestDb::new` has migrated already.
    let again = t.db().migrate().await.expect("second migrate");
    assert!(again.is_empty(), "second migrate applied {again:?}");

    // Several processes starting at once on an empty database: each migrate
    // succeeds and the migration is applied exactly once.
    let empty = TestDb::empty(t.backend()).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let db = empty.connect_again().await;
        tasks.spawn(async move { db.migrate().await });
    }
    let mut applied = Vec::new();
    while let Some(result) = tasks.join_next().await {
        applied.extend(result.expect("task").expect("concurrent migrate"));
    }
    applied.sort();
    assert_eq!(
        applied,
        migration_names(t.backend()),
        "each migration applied exactly once"
    );
    assert!(empty.db().migrate().await.unwrap().is_empty());
}

async fn claim_has_exactly_one_winner(t: &TestDb) {
    let claimers = 16;
    let barrier = Arc::new(tokio::sync::Barrier::new(claimers));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..claimers {
        let db = t.db().clone();
        let barrier = barrier.clone();
        let mut run = run("backup", T1);
        run.worker_id = format!("w{i}");
        tasks.spawn(async move {
            barrier.wait().await;
            db.claim_run(&run).await
        });
    }
    let mut winners = Vec::new();
    while let Some(result) = tasks.join_next().await {
        if let Some(id) = result.expect("task").expect("claim_run") {
            winners.push(id);
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let runs = all_runs(t.db()).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].id, winners[0]);
    assert_eq!(runs[0].status, RunStatus::Running);
    assert_eq!(runs[0].finished_at, None);
}

async fn attempts_are_separate_claims(t: &TestDb) {
    let db = t.db();
    let first = run("report", T1);
    let mut retry = run("report", T1);
    retry.attempt = 2;
    retry.trigger = Trigger::Retry;

    let id1 = claim(db, &first).await;
    let id2 = claim(db, &retry).await;
    assert_ne!(id1, id2);
    assert_eq!(db.claim_run(&first).await.unwrap(), None);
    assert_eq!(db.claim_run(&retry).await.unwrap(), None);
    // The same attempt of another slot or another job is a different claim.
    claim(db, &run("report", T2)).await;
    claim(db, &run("other", T1)).await;
    assert_eq!(all_runs(db).await.len(), 4);
}

async fn finish_succeeds_once(t: &TestDb) {
    let db = t.db();
    let id = claim(db, &run("sync", T1)).await;
    let first = finish(RunStatus::Success, at("2026-03-01T10:00:07Z"));
    assert!(db.finish_run(id, &first).await.unwrap());

    let second = finish(RunStatus::Failed, at("2026-03-01T10:00:09Z"));
    assert!(!db.finish_run(id, &second).await.unwrap());
    assert!(!db.finish_run(id + 1000, &first).await.unwrap());

    let record = run_by_id(db, id).await;
    assert_eq!(record.status, RunStatus::Success);
    assert_eq!(record.finished_at, Some(first.finished_at));
    assert_eq!(record.error, None);
    assert_eq!(record.output.as_deref(), Some("out"));
    assert_eq!(record.duration_ms, Some(1234));
}

async fn finishing_as_running_is_rejected(t: &TestDb) {
    let db = t.db();
    let id = claim(db, &run("sync", T1)).await;
    let err = db
        .finish_run(id, &finish(RunStatus::Running, at(T2)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            DbError::Query(DieselError::DatabaseError(
                DatabaseErrorKind::CheckViolation,
                _
            ))
        ),
        "{err:?}"
    );
    assert!(!err.is_unavailable());
    assert_eq!(run_by_id(db, id).await.finished_at, None);
}

async fn insert_finished_run_conflicts_with_a_claim(t: &TestDb) {
    let db = t.db();
    let claimed = run("cleanup", T1);
    let id = claim(db, &claimed).await;
    let skipped = finish(RunStatus::Skipped, at(T1));
    assert!(!db.insert_finished_run(&claimed, &skipped).await.unwrap());
    let record = run_by_id(db, id).await;
    assert_eq!(
        record.status,
        RunStatus::Running,
        "the claim was not replaced"
    );

    let mut late = run("cleanup", T2);
    late.trigger = Trigger::CatchUp;
    late.missed = 3;
    late.jitter_ms = Some(1500);
    late.started_at = at("2026-03-01T10:06:00Z");
    let outcome = Finish {
        status: RunStatus::Failed,
        finished_at: at("2026-03-01T10:06:02Z"),
        error: Some("exit status 2".to_owned()),
        output: None,
        duration_ms: 2000,
    };
    assert!(db.insert_finished_run(&late, &outcome).await.unwrap());
    assert!(!db.insert_finished_run(&late, &outcome).await.unwrap());
    // A finished slot cannot be claimed either.
    assert_eq!(db.claim_run(&late).await.unwrap(), None);

    let record = db.history(Some("cleanup"), 1).await.unwrap().remove(0);
    let want = RunRecord {
        id: record.id,
        job_name: "cleanup".to_owned(),
        kind: "http".to_owned(),
        scheduled_for: at(T2),
        trigger: Trigger::CatchUp,
        attempt: 1,
        worker_id: "w1".to_owned(),
        started_at: at("2026-03-01T10:06:00Z"),
        finished_at: Some(at("2026-03-01T10:06:02Z")),
        status: RunStatus::Failed,
        error: Some("exit status 2".to_owned()),
        output: None,
        duration_ms: Some(2000),
        missed: 3,
        jitter_ms: Some(1500),
    };
    assert_eq!(record, want);
}

async fn abandon_running_touches_only_this_workers_running_rows(t: &TestDb) {
    let db = t.db();
    let mut a = run("a", T1);
    a.worker_id = "host-1".to_owned();
    let mut b = run("b", T1);
    b.worker_id = "host-1".to_owned();
    b.started_at = at("2026-03-01T10:00:00.5Z");
    let mut done = run("c", T1);
    done.worker_id = "host-1".to_owned();
    let mut other = run("d", T1);
    other.worker_id = "host-2".to_owned();

    let a_id = claim(db, &a).await;
    let b_id = claim(db, &b).await;
    let done_id = claim(db, &done).await;
    let done_finish = finish(RunStatus::Success, at("2026-03-01T10:00:03Z"));
    assert!(db.finish_run(done_id, &done_finish).await.unwrap());
    let other_id = claim(db, &other).await;

    let now = at("2026-03-01T10:00:10.000123456Z");
    assert_eq!(db.abandon_running("host-1", now).await.unwrap(), 2);

    for (id, duration_ms) in [(a_id, 10_000), (b_id, 9_500)] {
        let record = run_by_id(db, id).await;
        assert_eq!(record.status, RunStatus::Abandoned);
        assert_eq!(record.finished_at, Some(at("2026-03-01T10:00:10.000123Z")));
        assert_eq!(
            record.error.as_deref(),
            Some("abandoned: the worker stopped before the run finished")
        );
        assert_eq!(record.duration_ms, Some(duration_ms));
    }
    let done_record = run_by_id(db, done_id).await;
    assert_eq!(done_record.status, RunStatus::Success);
    assert_eq!(done_record.finished_at, Some(done_finish.finished_at));
    let other_record = run_by_id(db, other_id).await;
    assert_eq!(other_record.status, RunStatus::Running);
    assert_eq!(other_record.finished_at, None);

    assert_eq!(db.abandon_running("host-1", now).await.unwrap(), 0);
    // An abandoned run cannot be finished afterwards.
    assert!(!db.finish_run(a_id, &done_finish).await.unwrap());
}

async fn runs_of_workers_without_a_fresh_heartbeat_are_abandoned(t: &TestDb) {
    let db = t.db();
    let now = at("2026-03-01T10:01:00Z");
    let register = |id: &str, heartbeat: &str| {
        let mut w = ops_worker::heartbeat::this_worker(id, "hash", at("2026-03-01T09:00:00Z"));
        w.heartbeat_at = at(heartbeat);
        w
    };
    db.register_worker(&register("dead", "2026-03-01T10:00:30Z"))
        .await
        .unwrap();
    db.register_worker(&register("alive", "2026-03-01T10:00:55Z"))
        .await
        .unwrap();
    let by = |job: &str, worker: &str| {
        let mut r = run(job, T1);
        r.worker_id = worker.to_owned();
        r
    };
    let dead_id = claim(db, &by("a", "dead")).await;
    let alive_id = claim(db, &by("b", "alive")).await;
    // Not registered (an older binary, or a run-job of one): left alone.
    let unknown_id = claim(db, &by("c", "unknown")).await;

    let cutoff = at("2026-03-01T10:00:40Z");
    // What the slots spread over: live daemons only.
    db.register_worker(&register("h/run-job/7", "2026-03-01T10:00:59Z"))
        .await
        .unwrap();
    assert_eq!(db.live_workers(cutoff).await.unwrap(), ["alive"]);
    let marked = db.abandon_dead_runs(cutoff, now, "me").await.unwrap();
    assert_eq!(
        marked
            .iter()
            .map(|r| (r.id, r.job_name.as_str(), r.worker_id.as_str(), r.attempt))
            .collect::<Vec<_>>(),
        [(dead_id, "a", "dead", 1)]
    );
    assert_eq!(marked[0].scheduled_for, at(T1));
    let record = run_by_id(db, dead_id).await;
    assert_eq!(record.status, RunStatus::Abandoned);
    assert_eq!(
        record.error.as_deref(),
        Some("abandoned: its worker stopped heartbeating (none since 2026-03-01 10:00:40 UTC); marked by worker me")
    );
    for id in [alive_id, unknown_id] {
        assert_eq!(run_by_id(db, id).await.status, RunStatus::Running);
    }
    assert!(db
        .abandon_dead_runs(cutoff, now, "me")
        .await
        .unwrap()
        .is_empty());

    // The paused worker comes back and finishes it: noted, not written over.
    let late = finish(RunStatus::Success, at("2026-03-01T10:02:00Z"));
    assert!(!db.finish_run(dead_id, &late).await.unwrap());
    assert!(db.note_late_finish(dead_id, &late).await.unwrap());
    let record = run_by_id(db, dead_id).await;
    assert_eq!(record.status, RunStatus::Abandoned);
    assert!(
        record.error.as_deref().unwrap().ends_with(
            "marked by worker me; its worker finished it late, at 2026-03-01 10:02:00 UTC: success"
        ),
        "{record:?}"
    );
    // Only abandoned rows take such a note.
    assert!(db.finish_run(alive_id, &late).await.unwrap());
    assert!(!db.note_late_finish(alive_id, &late).await.unwrap());
    assert_eq!(run_by_id(db, alive_id).await.error, None);
}

async fn an_exclusive_claim_tells_taken_from_busy(t: &TestDb) {
    use ops_worker::db::ExclusiveClaim;
    let db = t.db();
    let by = |slot: &str, worker: &str| {
        let mut r = run("x", slot);
        r.worker_id = worker.to_owned();
        r
    };
    let mut jittered = by(T1, "w1");
    jittered.jitter_ms = Some(0);
    let first = claim(db, &jittered).await;
    // The same slot, still running on its winner: taken, not busy.
    assert_eq!(
        db.claim_run_exclusive(&by(T1, "w2")).await.unwrap(),
        ExclusiveClaim::Taken
    );
    // Another slot while w1 runs the job: busy.
    assert_eq!(
        db.claim_run_exclusive(&by(T2, "w2")).await.unwrap(),
        ExclusiveClaim::Busy("w1".into())
    );
    // The worker's own run does not block it.
    let mut jittered = by(T2, "w1");
    jittered.jitter_ms = Some(29_999);
    let ExclusiveClaim::Won(second) = db.claim_run_exclusive(&jittered).await.unwrap() else {
        panic!("w1 is not blocked by itself");
    };
    // Both claims record the slot's jitter.
    assert_eq!(run_by_id(db, first).await.jitter_ms, Some(0));
    assert_eq!(run_by_id(db, second).await.jitter_ms, Some(29_999));
    // Once w1's runs have ended, w2 wins the next slot.
    for id in [first, second] {
        let done = finish(RunStatus::Success, at("2026-03-01T10:06:00Z"));
        assert!(db.finish_run(id, &done).await.unwrap());
    }
    assert!(matches!(
        db.claim_run_exclusive(&by("2026-03-01T10:10:00Z", "w2"))
            .await
            .unwrap(),
        ExclusiveClaim::Won(_)
    ));
}

/// Workers whose clocks disagree claim different slots of one job at the
/// same instant; with the overlap check, at most one of them may run it.
/// Repeated, since one round rarely hits the window between the check and
/// the insert (before the unique index it failed within a few rounds on
/// PostgreSQL).
async fn exclusive_claims_made_at_once_have_one_winner(t: &TestDb) {
    use ops_worker::db::ExclusiveClaim;
    let claimers = 8;
    for round in 0..25 {
        let job = format!("exclusive-{round}");
        let barrier = Arc::new(tokio::sync::Barrier::new(claimers));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..claimers {
            let db = t.db().clone();
            let barrier = barrier.clone();
            let mut run = run(&job, [T1, T2, T3, T4, T5][i % 5]);
            run.worker_id = format!("w{i}");
            run.attempt = 1 + i32::try_from(i / 5).unwrap();
            tasks.spawn(async move {
                barrier.wait().await;
                db.claim_run_exclusive(&run).await
            });
        }
        let mut won = 0;
        while let Some(result) = tasks.join_next().await {
            if let ExclusiveClaim::Won(_) = result.expect("task").expect("claim") {
                won += 1;
            }
        }
        assert_eq!(won, 1, "round {round}: {won} workers run {job} at once");
        let running = all_runs(t.db())
            .await
            .into_iter()
            .filter(|r| r.job_name == job && r.finished_at.is_none())
            .count();
        assert_eq!(running, 1, "round {round}");
    }
}

async fn last_slots_ignores_manual_and_retry_and_takes_the_latest(t: &TestDb) {
    let db = t.db();
    assert!(db.last_slots().await.unwrap().is_empty());

    claim(db, &run("a", T1)).await;
    let mut catch_up = run("a", T3);
    catch_up.trigger = Trigger::CatchUp;
    claim(db, &catch_up).await;
    claim(db, &run("a", T2)).await;
    let mut manual = run("a", T4);
    manual.trigger = Trigger::Manual;
    claim(db, &manual).await;
    let mut retry = run("a", T5);
    retry.trigger = Trigger::Retry;
    retry.attempt = 2;
    claim(db, &retry).await;

    let mut only_manual = run("b", T5);
    only_manual.trigger = Trigger::Manual;
    claim(db, &only_manual).await;

    // Any status counts: a skipped slot still anchors the grid.
    let skipped = run("c", T2);
    assert!(db
        .insert_finished_run(&skipped, &finish(RunStatus::Skipped, at(T2)))
        .await
        .unwrap());

    let want = HashMap::from([("a".to_owned(), at(T3)), ("c".to_owned(), at(T2))]);
    assert_eq!(db.last_slots().await.unwrap(), want);
}

async fn job_summaries_pick_newest_run_and_last_success(t: &TestDb) {
    let db = t.db();
    assert!(db.job_summaries().await.unwrap().is_empty());

    // alpha: a success, then a newer failure.
    let ok = finish(RunStatus::Success, at("2026-03-01T10:00:05Z"));
    assert!(db
        .insert_finished_run(&run("alpha", T1), &ok)
        .await
        .unwrap());
    let failed = finish(RunStatus::Failed, at("2026-03-01T10:05:03Z"));
    assert!(db
        .insert_finished_run(&run("alpha", T2), &failed)
        .await
        .unwrap());

    // beta: two attempts of one slot; the later (higher id) is still running.
    assert!(db
        .insert_finished_run(&run("beta", T3), &failed)
        .await
        .unwrap());
    let mut retry = run("beta", T3);
    retry.attempt = 2;
    retry.trigger = Trigger::Retry;
    claim(db, &retry).await;

    // Gamma: the newest success is the one with the latest slot, even though
    // an older slot's success was recorded later (a catch-up run).
    let newest = finish(RunStatus::Success, at("2026-03-01T10:20:01Z"));
    assert!(db
        .insert_finished_run(&run("Gamma", T5), &newest)
        .await
        .unwrap());
    let mut older = run("Gamma", T4);
    older.trigger = Trigger::CatchUp;
    let older_ok = finish(RunStatus::Success, at("2026-03-01T10:30:00Z"));
    assert!(db.insert_finished_run(&older, &older_ok).await.unwrap());

    let summaries = db.job_summaries().await.unwrap();
    let names: Vec<&str> = summaries.iter().map(|s| s.job_name.as_str()).collect();
    assert_eq!(names, ["Gamma", "alpha", "beta"], "sorted bytewise on both");

    let gamma = &summaries[0];
    assert_eq!(gamma.last_status, Some(RunStatus::Success));
    assert_eq!(gamma.last_scheduled_for, Some(at(T5)));
    assert_eq!(gamma.last_finished_at, Some(newest.finished_at));
    assert_eq!(gamma.last_success_at, Some(newest.finished_at));
    assert_eq!(gamma.last_slot, Some(at(T5)));

    let alpha = &summaries[1];
    assert_eq!(alpha.last_status, Some(RunStatus::Failed));
    assert_eq!(alpha.last_scheduled_for, Some(at(T2)));
    assert_eq!(alpha.last_finished_at, Some(failed.finished_at));
    assert_eq!(alpha.last_success_at, Some(ok.finished_at));
    assert_eq!(alpha.last_slot, Some(at(T2)));

    let beta = &summaries[2];
    assert_eq!(beta.last_status, Some(RunStatus::Running));
    assert_eq!(beta.last_scheduled_for, Some(at(T3)));
    assert_eq!(beta.last_finished_at, None);
    assert_eq!(beta.last_success_at, None);
    // Its newest row is a retry: the slot is the scheduled attempt's.
    assert_eq!(beta.last_slot, Some(at(T3)));
}

/// The runs page's cursor is `(scheduled_for, id)`: attempts of one slot
/// share `scheduled_for` and come by id, newest first, each once, whether
/// a page boundary falls between them or not, with a status filter too.
async fn runs_page_walks_attempts_of_one_slot_by_id(t: &TestDb) {
    let db = t.db();
    for (slot, attempt, status) in [
        (T1, 1, RunStatus::Success),
        (T2, 1, RunStatus::Failed),
        (T2, 2, RunStatus::Failed),
        (T2, 3, RunStatus::Success),
        (T3, 1, RunStatus::Skipped),
    ] {
        let mut r = run("a", slot);
        r.attempt = attempt;
        if attempt > 1 {
            r.trigger = Trigger::Retry;
        }
        assert!(db
            .insert_finished_run(&r, &finish(status, at(slot)))
            .await
            .unwrap());
    }
    claim(db, &run("b", T2)).await;
    let page = |status, after, limit| RunsQuery {
        job: "a",
        status,
        since: None,
        until: None,
        after,
        limit,
    };
    let key = |r: &RunRecord| (r.scheduled_for, r.attempt);
    let want = [(T3, 1), (T2, 3), (T2, 2), (T2, 1), (T1, 1)].map(|(s, a)| (at(s), a));

    for limit in [1, 2, 3] {
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let runs = db.runs_page(&page(None, after, limit)).await.unwrap();
            assert!(runs.len() <= limit as usize);
            let Some(last) = runs.last() else { break };
            after = Some((last.scheduled_for, last.id));
            seen.extend(runs.iter().map(key));
        }
        assert_eq!(seen, want, "pages of {limit}");
    }

    // From the middle of T2's attempts, failures only.
    let all = db.runs_page(&page(None, None, 10)).await.unwrap();
    let failed = db
        .runs_page(&page(
            Some(RunStatus::Failed),
            Some((all[2].scheduled_for, all[2].id)),
            10,
        ))
        .await
        .unwrap();
    assert_eq!(failed.iter().map(key).collect::<Vec<_>>(), [(at(T2), 1)]);
}

async fn history_order_limit_and_filter(t: &TestDb) {
    let db = t.db();
    let a1 = claim(db, &run("a", T1)).await;
    let a2 = claim(db, &run("a", T2)).await;
    let b2 = claim(db, &run("b", T2)).await; // same slot as a2, higher id
    let a3 = claim(db, &run("a", T3)).await;
    let b1 = claim(db, &run("b", T1)).await; // same slot as a1, higher id

    let ids = |runs: Vec<RunRecord>| runs.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(db.history(None, 100).await.unwrap()),
        [a3, b2, a2, b1, a1]
    );
    assert_eq!(ids(db.history(None, 2).await.unwrap()), [a3, b2]);
    assert_eq!(ids(db.history(Some("a"), 100).await.unwrap()), [a3, a2, a1]);
    assert_eq!(ids(db.history(Some("b"), 1).await.unwrap()), [b2]);
    assert!(db.history(Some("a"), 0).await.unwrap().is_empty());
    assert!(db.history(None, -5).await.unwrap().is_empty());
    assert!(db.history(Some("nope"), 10).await.unwrap().is_empty());
}

async fn timestamps_round_trip(t: &TestDb) {
    let db = t.db();
    let mut r = run("precise", T1);
    r.scheduled_for = at("2026-03-01T10:00:00.987654321Z");
    r.started_at = at("2026-03-01T10:00:01.123456789Z");
    let id = claim(db, &r).await;

    // The same slot once truncated to seconds: already taken.
    let mut same_slot = r.clone();
    same_slot.scheduled_for = at("2026-03-01T10:00:00.2Z");
    assert_eq!(db.claim_run(&same_slot).await.unwrap(), None);

    let f = Finish {
        finished_at: at("2026-03-01T10:00:02.000001999Z"),
        ..finish(RunStatus::Success, at(T1))
    };
    assert!(db.finish_run(id, &f).await.unwrap());

    let record = run_by_id(db, id).await;
    assert_eq!(record.scheduled_for, at("2026-03-01T10:00:00Z"));
    assert_eq!(record.started_at, at("2026-03-01T10:00:01.123456Z"));
    assert_eq!(record.finished_at, Some(at("2026-03-01T10:00:02.000001Z")));

    // Whole-second and sub-second values of other rows sort correctly
    // around it (SQLite compares the stored text).
    let mut before = run("precise", "2026-03-01T09:59:59Z");
    before.started_at = at("2026-03-01T10:00:01.1Z");
    claim(db, &before).await;
    let history = db.history(Some("precise"), 10).await.unwrap();
    assert_eq!(history[0].id, id);

    assert_eq!(
        db.last_slots().await.unwrap()["precise"],
        at("2026-03-01T10:00:00Z")
    );
    let summary = db.job_summaries().await.unwrap().remove(0);
    assert_eq!(summary.last_scheduled_for, Some(at("2026-03-01T10:00:00Z")));
    assert_eq!(summary.last_success_at, record.finished_at);
}

async fn check_constraints_reject_bad_values(t: &TestDb) {
    let insert = |trigger: &str, status: &str, finished_at: &str| {
        format!(
            "INSERT INTO job_runs (job_name, kind, scheduled_for, \"trigger\", attempt, \
             worker_id, started_at, finished_at, status) VALUES ('x', 'http', \
             '2026-03-01 10:00:00', '{trigger}', 1, 'w', '2026-03-01 10:00:00', {finished_at}, \
             '{status}')"
        )
    };
    let bad = [
        insert("schedule", "bogus", "'2026-03-01 10:00:01'"),
        insert("cron", "running", "NULL"),
        insert("schedule", "running", "'2026-03-01 10:00:01'"),
        insert("schedule", "success", "NULL"),
        "INSERT INTO job_runs (job_name, kind, scheduled_for, \"trigger\", attempt, worker_id, \
         started_at, status, jitter_ms) VALUES ('x', 'http', '2026-03-01 10:00:00', 'schedule', \
         1, 'w', '2026-03-01 10:00:00', 'running', -1)"
            .to_string(),
    ];
    for sql in bad {
        let err = t.batch_execute(&sql).await.unwrap_err();
        assert!(
            matches!(
                err,
                DieselError::DatabaseError(DatabaseErrorKind::CheckViolation, _)
            ),
            "{sql}: {err:?}"
        );
    }
    t.batch_execute(&insert("manual", "running", "NULL"))
        .await
        .expect("a valid row");
    // A push job's signal (migration 2026-12-05-180000 on both backends).
    t.batch_execute(&insert("push", "success", "'2026-03-01 10:00:01'").replace("'x'", "'y'"))
        .await
        .expect("trigger push is known");
}

#[tokio::test(flavor = "multi_thread")]
async fn connecting_to_unreachable_postgres_fails_fast_and_redacted() {
    let url = DatabaseUrl::parse(Some("postgres://ops:hunter2@127.0.0.1:1/ops")).unwrap();
    let started = Instant::now();
    let err = Db::connect(&url, 4).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert!(matches!(err, DbError::Unavailable { .. }), "{err:?}");
    assert!(err.is_unavailable());
    let message = chain(&err);
    assert!(
        message.starts_with("database postgres://ops:***@127.0.0.1:1/ops is unavailable: "),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
    assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_creates_the_file_and_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/nested/ops.db");
    let url = DatabaseUrl::parse(Some(&format!("sqlite://{}", path.display()))).unwrap();
    let db = Db::connect(&url, 2).await.expect("connect");
    assert_eq!(db.backend(), Backend::Sqlite);
    assert!(path.is_file());
    assert_eq!(
        db.migrate().await.unwrap(),
        migration_names(Backend::Sqlite)
    );
}

/// The migration folders of a backend's tree, in the order they apply.
fn migration_names(backend: Backend) -> Vec<String> {
    let tree = match backend {
        Backend::Postgres => "postgres",
        Backend::Sqlite => "sqlite",
    };
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(tree);
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_in_an_unusable_place_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "").unwrap();
    let url = DatabaseUrl::Sqlite(blocker.join("ops.db"));
    let err = Db::connect(&url, 2).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert!(chain(&err).contains("not-a-dir/ops.db"), "{}", chain(&err));
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_connections_closed_by_the_server_are_replaced() {
    let t = TestDb::new(Backend::Postgres).await;
    // Open a few pooled connections, then have the server end them all.
    let (r1, r2, r3) = tokio::join!(
        t.db().history(None, 1),
        t.db().history(None, 1),
        t.db().history(None, 1)
    );
    for result in [r1, r2, r3] {
        result.expect("warming the pool");
    }
    let mut admin = t.pg_conn().await;
    diesel_async::SimpleAsyncConnection::batch_execute(
        &mut admin,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .await
    .unwrap();
    // pg_terminate_backend only signals: wait until the backends are gone,
    // or the pool could hand out connections that are still alive.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let others: Vec<Count> = diesel_async::RunQueryDsl::load(
            diesel::sql_query(
                "SELECT count(*) AS n FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
            ),
            &mut admin,
        )
        .await
        .unwrap();
        if others[0].n == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the pool's backends never ended");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The pool does not test a connection at checkout (see `pool_builder`):
    // one whose client has not yet seen the server close it may fail its
    // next query, once, as unavailable, and is then discarded. So each of
    // the three dead connections fails at most once, and then every query
    // succeeds on a new one.
    let (mut failures, mut successes) = (0, 0);
    while successes < 4 {
        match t.db().history(None, 1).await {
            Ok(_) => successes += 1,
            Err(e) => {
                assert!(e.is_unavailable(), "not a closed connection: {e}");
                failures += 1;
                assert!(failures <= 3, "a dead connection was handed out twice");
                successes = 0;
            }
        }
    }
}

#[derive(QueryableByName, Debug)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[derive(QueryableByName, Debug)]
struct PgColumn {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Bool)]
    nullable: bool,
    #[diesel(sql_type = Text)]
    data_type: String,
}

#[derive(QueryableByName, Debug)]
struct SqliteColumn {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Integer)]
    not_null: i32,
    #[diesel(sql_type = Text)]
    data_type: String,
    #[diesel(sql_type = Integer)]
    pk: i32,
}

#[derive(QueryableByName, Debug)]
struct IndexName {
    #[diesel(sql_type = Text)]
    name: String,
}

/// The two migration trees must define the same table: same columns in the
/// same order, same nullability, corresponding types, same indexes.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_and_sqlite_schemas_agree() {
    use diesel_async::RunQueryDsl;

    let pg = TestDb::new(Backend::Postgres).await;
    let sqlite = TestDb::new(Backend::Sqlite).await;
    let mut pg_conn = pg.pg_conn().await;
    let mut sqlite_conn = sqlite.sqlite_conn().await;

    // (table, columns, indexes created by the migrations)
    for (table, columns, indexes) in [
        // 2026-12-05-160000 added job_runs_job_status and dropped
        // job_runs_job_last_success.
        ("job_runs", 16, 6),
        ("service_health", 10, 0),
        ("health_checks", 8, 2),
        ("metric_samples", 6, 2),
        ("reports", 8, 1),
        ("notifications", 12, 2),
        ("workers", 9, 0),
        ("job_pauses", 5, 0),
        ("run_requests", 10, 1),
        ("silences", 6, 1),
        ("audit_log", 8, 1),
        ("console_sessions", 4, 1),
    ] {
        let pg_columns: Vec<PgColumn> = diesel::sql_query(format!(
            "SELECT column_name::text AS name, is_nullable = 'YES' AS nullable, \
                    data_type::text AS data_type \
             FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = '{table}' \
             ORDER BY ordinal_position"
        ))
        .load(&mut pg_conn)
        .await
        .unwrap();
        let sqlite_columns: Vec<SqliteColumn> = diesel::sql_query(format!(
            "SELECT name, \"notnull\" AS not_null, type AS data_type, pk \
             FROM pragma_table_info('{table}') ORDER BY cid"
        ))
        .load(&mut sqlite_conn)
        .await
        .unwrap();

        let pg_view: Vec<(String, bool, &str)> = pg_columns
            .iter()
            .map(|c| {
                let ty = match c.data_type.as_str() {
                    "bigint" => "bigint",
                    "integer" => "integer",
                    "text" => "text",
                    "timestamp without time zone" => "timestamp",
                    "double precision" => "double",
                    "boolean" => "boolean",
                    other => panic!("unmapped PostgreSQL type {other} of {}", c.name),
                };
                (c.name.clone(), c.nullable, ty)
            })
            .collect();
        let sqlite_view: Vec<(String, bool, &str)> = sqlite_columns
            .iter()
            .map(|c| {
                let ty = match (c.data_type.to_ascii_uppercase().as_str(), c.pk) {
                    // `INTEGER PRIMARY KEY` is the 64-bit rowid.
                    ("INTEGER", 1) | ("BIGINT", _) => "bigint",
                    ("INTEGER", _) => "integer",
                    ("TEXT", _) => "text",
                    ("TIMESTAMP", _) => "timestamp",
                    ("REAL", _) => "double",
                    ("BOOLEAN", _) => "boolean",
                    (other, _) => panic!("unmapped SQLite type {other} of {}", c.name),
                };
                // The rowid cannot be NULL though pragma reports notnull = 0.
                (c.name.clone(), c.not_null == 0 && c.pk == 0, ty)
            })
            .collect();
        assert_eq!(pg_view, sqlite_view, "{table}");
        assert_eq!(pg_view.len(), columns, "{table}");

        let pg_indexes: BTreeSet<String> = diesel::sql_query(format!(
            "SELECT indexname::text AS name FROM pg_indexes \
             WHERE schemaname = current_schema() AND tablename = '{table}'"
        ))
        .load::<IndexName>(&mut pg_conn)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.name)
        // Constraint-backed indexes: SQLite names them sqlite_autoindex_*.
        .filter(|name| {
            *name != format!("{table}_pkey")
                && name != "job_runs_slot_claim"
                && name != "reports_name_period_unique"
        })
        .collect();
        let sqlite_indexes: BTreeSet<String> = diesel::sql_query(format!(
            "SELECT name FROM pragma_index_list('{table}') WHERE origin = 'c'"
        ))
        .load::<IndexName>(&mut sqlite_conn)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.name)
        .collect();
        assert_eq!(pg_indexes, sqlite_indexes);
        assert_eq!(pg_indexes.len(), indexes, "{table}");
    }

    // The known triggers, a CHECK (SQLite changes one by rebuilding the
    // table, as 2026-12-05-180000 does): the same values on both.
    let quoted = |s: &str| -> Vec<String> {
        s.split('\'')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    };
    let pg_check: Vec<IndexName> = diesel::sql_query(
        "SELECT pg_get_constraintdef(oid) AS name FROM pg_constraint \
         WHERE conname = 'job_runs_trigger_known'",
    )
    .load(&mut pg_conn)
    .await
    .unwrap();
    let sqlite_table: Vec<IndexName> =
        diesel::sql_query("SELECT sql AS name FROM sqlite_master WHERE name = 'job_runs'")
            .load(&mut sqlite_conn)
            .await
            .unwrap();
    let sqlite_check = sqlite_table[0]
        .name
        .split("job_runs_trigger_known")
        .nth(1)
        .and_then(|rest| rest.split("attempt").next())
        .unwrap()
        .to_string();
    let expected = ["schedule", "catch_up", "manual", "retry", "push"];
    assert_eq!(quoted(&pg_check[0].name), expected, "{}", pg_check[0].name);
    assert_eq!(quoted(&sqlite_check), expected, "{sqlite_check}");
}
