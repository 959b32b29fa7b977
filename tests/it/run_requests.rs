//! "Run now" through a live worker (`ops_worker::run_requests`), on both
//! backends: no live worker refuses the request; the guarded claim lets one
//! of many claimers win; two real `ops-worker run` processes turn one
//! request into exactly one manual run linked to it; PostgreSQL wakes a
//! worker by NOTIFY long before its fallback poll; a request for a job the
//! worker does not have finishes with a reason; a claim of a dead worker
//! goes back to pending and is run by a live one; `request-run` and
//! `serve` count a worker live by `OPS_WORKER_DEAD_AFTER`, as the daemons do.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use chrono::Utc;
use ops_worker::db::{Backend, Holder, RequestStatus, RunStatus, Trigger, Worker};
use ops_worker::heartbeat::DEFAULT_DEAD_AFTER;
use ops_worker::run_requests::{self, SubmitError};

use crate::fixtures::eventually;
use crate::helpers::TestDb;

crate::backend_tests!(
    no_live_worker_refuses_the_request,
    one_claimer_wins_and_a_dead_workers_claim_goes_back,
    two_workers_one_request_one_manual_run,
    a_request_for_an_unknown_job_finishes_with_a_reason,
    a_request_claimed_by_a_dead_worker_runs_on_a_live_one,
    request_run_and_serve_judge_liveness_by_the_configured_dead_after,
);

/// A daemon's row with a heartbeat at `at` (no process behind it).
fn worker_row(id: &str, at: chrono::DateTime<Utc>) -> Worker {
    Worker {
        id: id.into(),
        host: "elsewhere".into(),
        pid: 1,
        version: "0".into(),
        started_at: at,
        heartbeat_at: at,
        config_hash: String::new(),
        stopped_at: None,
        config_error: None,
    }
}

async fn no_live_worker_refuses_the_request(db: &TestDb) {
    let db = db.db();
    let err = run_requests::submit(db, "backup", "alice", DEFAULT_DEAD_AFTER)
        .await
        .unwrap_err();
    assert!(matches!(err, SubmitError::NoLiveWorker), "{err:?}");
    assert!(err.to_string().starts_with("no live worker"), "{err}");

    // A stale heartbeat, a cleanly stopped daemon and a `run-job` process
    // are no live worker either.
    let now = Utc::now();
    db.register_worker(&worker_row("stale", now - chrono::Duration::seconds(60)))
        .await
        .unwrap();
    db.register_worker(&worker_row("host/run-job/42", now))
        .await
        .unwrap();
    db.register_worker(&worker_row("stopped", now))
        .await
        .unwrap();
    db.worker_stopped("stopped", 1, now).await.unwrap();
    let err = run_requests::submit(db, "backup", "alice", DEFAULT_DEAD_AFTER)
        .await
        .unwrap_err();
    assert!(matches!(err, SubmitError::NoLiveWorker), "{err:?}");

    db.register_worker(&worker_row("live", now)).await.unwrap();
    let id = run_requests::submit(db, "backup", "alice", DEFAULT_DEAD_AFTER)
        .await
        .unwrap();
    let request = run_requests::get(db, id).await.unwrap().unwrap();
    assert_eq!(
        (
            request.job_name.as_str(),
            request.requested_by.as_str(),
            request.status
        ),
        ("backup", "alice", RequestStatus::Pending)
    );
    assert_eq!((request.claimed_by, request.run_id), (None, None));
    assert!(run_requests::get(db, id + 1).await.unwrap().is_none());
}

async fn one_claimer_wins_and_a_dead_workers_claim_goes_back(db: &TestDb) {
    let db = db.db();
    let now = Utc::now();
    let id = db.insert_run_request("backup", "bob", now).await.unwrap();
    // Sixteen concurrent claimers: exactly one wins.
    let claims = futures::future::join_all((0..16).map(|i| {
        let db = db.clone();
        async move {
            db.claim_run_request(id, &format!("w{i}"), now)
                .await
                .unwrap()
        }
    }))
    .await;
    assert_eq!(claims.iter().filter(|won| **won).count(), 1, "{claims:?}");
    let winner = format!("w{}", claims.iter().position(|won| *won).unwrap());
    let request = db.run_request(id).await.unwrap().unwrap();
    assert_eq!(request.status, RequestStatus::Claimed);
    assert_eq!(request.claimed_by.as_deref(), Some(winner.as_str()));

    // The winner's heartbeat is stale: its claim (not started) goes back.
    db.register_worker(&worker_row(&winner, now - chrono::Duration::seconds(60)))
        .await
        .unwrap();
    // A request running on a dead worker is finished with the reason.
    let running = db.insert_run_request("report", "bob", now).await.unwrap();
    assert!(db.claim_run_request(running, &winner, now).await.unwrap());
    assert!(db.run_request_started(running, &winner, 7).await.unwrap());
    let released = db
        .release_run_requests(
            Holder::DeadSince(now - chrono::Duration::seconds(20)),
            now,
            "its worker died",
        )
        .await
        .unwrap();
    assert_eq!(
        (released.pending_again, released.lost),
        (vec![id], vec![running])
    );
    let request = db.run_request(id).await.unwrap().unwrap();
    assert_eq!(
        (request.status, request.claimed_by),
        (RequestStatus::Pending, None)
    );
    let lost = db.run_request(running).await.unwrap().unwrap();
    assert_eq!(
        (lost.status, lost.run_id, lost.error.as_deref()),
        (RequestStatus::Finished, Some(7), Some("its worker died"))
    );
    // Only the claimer's own transitions apply.
    assert!(db.claim_run_request(id, "w-live", now).await.unwrap());
    assert!(!db.run_request_started(id, "w-other", 8).await.unwrap());
    assert!(!db
        .finish_run_request(id, "w-other", now, None)
        .await
        .unwrap());
    assert!(db
        .finish_run_request(id, "w-live", now, None)
        .await
        .unwrap());
    assert!(!db
        .finish_run_request(id, "w-live", now, None)
        .await
        .unwrap());
}

/// An `ops-worker run` daemon with `config`, polling for requests every
/// `poll`, logging to `dir/ID.log`.
fn worker(dir: &Path, db: &TestDb, config: &str, id: &str, poll: &str) -> Child {
    std::fs::write(dir.join("schedules.toml"), config).unwrap();
    crate::cli::with_db(dir, db)
        .args([
            "run",
            "--grace",
            "5s",
            "--dead-after",
            "10s",
            "--request-poll",
            poll,
        ])
        .env("OPS_WORKER_ID", id)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("{id}.log"))).unwrap())
        .spawn()
        .unwrap()
}

/// Stops `child` with SIGTERM and waits for it.
async fn stop(mut child: Child) {
    crate::cli::sigterm(&child);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the worker did not stop");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `n` daemons have registered a heartbeat.
async fn live_workers(db: &TestDb, n: usize) {
    eventually(
        Duration::from_secs(20),
        "the workers to register",
        || async {
            let since = Utc::now() - chrono::Duration::seconds(20);
            db.db().live_workers(since).await.unwrap().len() == n
        },
    )
    .await;
}

/// Waits for request `id` to reach `status`.
async fn request_reaches(db: &TestDb, id: i64, status: RequestStatus, limit: Duration) {
    eventually(limit, &format!("request {id} to be {status}"), || async {
        run_requests::get(db.db(), id)
            .await
            .unwrap()
            .unwrap()
            .status
            == status
    })
    .await;
}

const JOBS: &str = "[jobs.backup]\nkind = \"command\"\nevery = \"1h\"\nenabled = false\ncommand = [\"sh\", \"-c\", \"sleep 1; echo saved\"]\n";

/// PostgreSQL: waits until `n` connections `LISTEN` for run requests.
async fn listeners(db: &TestDb, n: i64) {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    use diesel_async::RunQueryDsl;
    let mut conn = db.pg_conn().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let count: Count = diesel::sql_query(
            "SELECT count(*) AS n FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN %'",
        )
        .get_result(&mut conn)
        .await
        .unwrap();
        if count.n == n {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {n} workers LISTEN",
            count.n
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn two_workers_one_request_one_manual_run(db: &TestDb) {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // PostgreSQL: a fallback poll of an hour, so once both workers have
    // made their first look, a claim can only come from the NOTIFY. SQLite
    // polls every second.
    let poll = match db.backend() {
        Backend::Postgres => "1h",
        Backend::Sqlite => "1s",
    };
    let workers = [
        worker(a.path(), db, JOBS, "rr-a", poll),
        worker(b.path(), db, JOBS, "rr-b", poll),
    ];
    live_workers(db, 2).await;
    if db.backend() == Backend::Postgres {
        listeners(db, 2).await;
    }
    // Two requests one after the other: the second finds both workers
    // long past their start-up look, waiting.
    let mut linked = Vec::new();
    for who in ["carol", "erin"] {
        let id = run_requests::submit(db.db(), "backup", who, DEFAULT_DEAD_AFTER)
            .await
            .unwrap();
        request_reaches(db, id, RequestStatus::Running, Duration::from_secs(20)).await;
        let running = run_requests::get(db.db(), id).await.unwrap().unwrap();
        let run_id = running.run_id.expect("a running request shows its run");
        request_reaches(db, id, RequestStatus::Finished, Duration::from_secs(20)).await;
        let done = run_requests::get(db.db(), id).await.unwrap().unwrap();
        assert_eq!((done.run_id, done.error.as_deref()), (Some(run_id), None));
        assert_eq!(done.requested_by, who);
        let claimer = done.claimed_by.clone().unwrap();
        assert!(claimer == "rr-a" || claimer == "rr-b", "{claimer}");
        linked.push((run_id, claimer));
    }

    // Give the other worker every chance to run them too, then count.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut runs = db.db().history(Some("backup"), 10).await.unwrap();
    runs.reverse();
    assert_eq!(runs.len(), 2, "{runs:?}");
    for (run, (run_id, claimer)) in runs.iter().zip(&linked) {
        assert_eq!(
            (run.id, run.trigger, run.status, run.worker_id.as_str()),
            (
                *run_id,
                Trigger::Manual,
                RunStatus::Success,
                claimer.as_str()
            )
        );
        assert_eq!(run.output.as_deref().map(str::trim), Some("saved"));
    }
    for w in workers {
        stop(w).await;
    }
}

/// `ops-worker request-run` in `dir` (whose schedules.toml has `backup`).
fn request_run(dir: &Path, db: &TestDb, args: &[&str]) -> (i32, String, String) {
    request_run_with(dir, db, args, &[])
}

/// [`request_run`] with `env` set as well.
fn request_run_with(
    dir: &Path,
    db: &TestDb,
    args: &[&str],
    env: &[(&str, &str)],
) -> (i32, String, String) {
    let out = crate::cli::with_db(dir, db)
        .arg("request-run")
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn a_request_for_an_unknown_job_finishes_with_a_reason(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("schedules.toml"), JOBS).unwrap();
    // The CLI: no daemon yet, so nothing is stored (exit 1); a job not in
    // schedules.toml is bad usage (exit 2).
    let (code, _, err) = request_run(dir.path(), db, &["backup", "--by", "gina"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.starts_with("error: no live worker"), "{err}");
    let (code, _, err) = request_run(dir.path(), db, &["nope"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown job \"nope\""), "{err}");
    assert!(db.db().pending_run_requests(10).await.unwrap().is_empty());

    let w = worker(dir.path(), db, JOBS, "rr-unknown", "1s");
    live_workers(db, 1).await;
    let (code, out, err) = request_run(dir.path(), db, &["backup", "--by", "gina"]);
    assert_eq!(code, 0, "{err}");
    let id: i64 = out
        .strip_prefix("backup: run request ")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    request_reaches(db, id, RequestStatus::Finished, Duration::from_secs(20)).await;
    let by_cli = run_requests::get(db.db(), id).await.unwrap().unwrap();
    assert_eq!((by_cli.requested_by.as_str(), by_cli.error), ("gina", None));
    assert!(by_cli.run_id.is_some());
    // The API checks the job against its config; this worker's lacks it
    // (say a reload removed it meanwhile).
    let id = run_requests::submit(db.db(), "gone", "dave", DEFAULT_DEAD_AFTER)
        .await
        .unwrap();
    request_reaches(db, id, RequestStatus::Finished, Duration::from_secs(20)).await;
    let request = run_requests::get(db.db(), id).await.unwrap().unwrap();
    let error = request.error.unwrap();
    assert!(
        error.contains("job \"gone\" is not in the schedules.toml"),
        "{error}"
    );
    assert_eq!(request.run_id, None);
    assert!(db.db().history(Some("gone"), 10).await.unwrap().is_empty());
    assert_eq!(db.db().history(Some("backup"), 10).await.unwrap().len(), 1);
    // Finished once, not picked up again.
    let again = run_requests::get(db.db(), id).await.unwrap().unwrap();
    assert_eq!(again.finished_at, request.finished_at);
    stop(w).await;
}

async fn a_request_claimed_by_a_dead_worker_runs_on_a_live_one(db: &TestDb) {
    // A worker claimed the request and died before its run started: its
    // heartbeat is a minute old.
    let now = Utc::now();
    db.db()
        .register_worker(&worker_row("rr-died", now - chrono::Duration::seconds(60)))
        .await
        .unwrap();
    let id = db
        .db()
        .insert_run_request("backup", "frank", now)
        .await
        .unwrap();
    assert!(db.db().claim_run_request(id, "rr-died", now).await.unwrap());
    // PostgreSQL: with an hour's poll, only the NOTIFY of the release wakes
    // the worker that claims it again.
    let poll = match db.backend() {
        Backend::Postgres => "1h",
        Backend::Sqlite => "1s",
    };
    let dir = tempfile::tempdir().unwrap();
    let w = worker(dir.path(), db, JOBS, "rr-live", poll);
    // After --dead-after (10s) of its own healthy looks, the live worker
    // hands the claim back and runs it.
    request_reaches(db, id, RequestStatus::Finished, Duration::from_secs(30)).await;
    let request = run_requests::get(db.db(), id).await.unwrap().unwrap();
    assert_eq!(
        (request.claimed_by.as_deref(), request.error.as_deref()),
        (Some("rr-live"), None)
    );
    let runs = db.db().history(Some("backup"), 10).await.unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(
        (
            Some(runs[0].id),
            runs[0].trigger,
            runs[0].worker_id.as_str()
        ),
        (request.run_id, Trigger::Manual, "rr-live")
    );
    stop(w).await;
    let log = std::fs::read_to_string(dir.path().join("rr-live.log")).unwrap();
    assert!(
        log.contains("are pending again"),
        "the release is logged: {log}"
    );
}

/// `ops-worker serve` in `dir` with `env`: the status of one run now of
/// `backup` through its API (no tokens: loopback is the operator).
async fn serve_run_now(dir: &Path, db: &TestDb, env: &[(&str, &str)]) -> u16 {
    let port = crate::http::unused_port();
    let child = crate::cli::with_db(dir, db)
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let http = ops_worker_jobs::health::http_client();
    let base = format!("http://127.0.0.1:{port}");
    eventually(Duration::from_secs(20), "serve answers", || async {
        http.get(format!("{base}/healthz")).send().await.is_ok()
    })
    .await;
    let status = http
        .post(format!("{base}/api/v1/jobs/backup/run"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    crate::cli::sigterm(&child);
    let (code, err) = crate::cli::exit_within(child, Duration::from_secs(15)).await;
    assert_eq!(code, 0, "{err}");
    status
}

/// `request-run` and `serve` (run now) count a daemon live by
/// `OPS_WORKER_DEAD_AFTER`, as the daemons judge each other, not by the
/// default 20 s: a longer setting keeps a quiet daemon live, a shorter one
/// makes a recent one dead.
async fn request_run_and_serve_judge_liveness_by_the_configured_dead_after(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("schedules.toml"), JOBS).unwrap();
    let stored = || async { db.db().pending_run_requests(10).await.unwrap().len() };
    // A heartbeat 40 s old: dead by the default, live within 60 s.
    let quiet = Utc::now() - chrono::Duration::seconds(40);
    db.db()
        .register_worker(&worker_row("rr-quiet", quiet))
        .await
        .unwrap();
    let long = [("OPS_WORKER_DEAD_AFTER", "60s")];
    let (code, _, err) = request_run(dir.path(), db, &["backup"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.starts_with("error: no live worker"), "{err}");
    let (code, out, err) = request_run_with(dir.path(), db, &["backup"], &long);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(stored().await, 1);
    assert_eq!(serve_run_now(dir.path(), db, &[]).await, 409);
    assert_eq!(serve_run_now(dir.path(), db, &long).await, 202);
    assert_eq!(stored().await, 2);

    // A heartbeat 15 s old: live by the default, dead within 10 s.
    let recent = Utc::now() - chrono::Duration::seconds(15);
    db.db()
        .register_worker(&worker_row("rr-recent", recent))
        .await
        .unwrap();
    let (code, out, err) = request_run(dir.path(), db, &["backup"]);
    assert_eq!(code, 0, "{out}{err}");
    let short = [("OPS_WORKER_DEAD_AFTER", "10s")];
    let (code, _, err) = request_run_with(dir.path(), db, &["backup"], &short);
    assert_eq!(code, 1, "{err}");
    assert_eq!(serve_run_now(dir.path(), db, &short).await, 409);
    assert_eq!(stored().await, 3);
}
