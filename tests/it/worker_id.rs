//! Two daemons with one worker id: the second refuses to start (exit 2)
//! while the first lives, and leaves it alone; it takes the id over from a
//! process that stopped, was killed, or went quiet for `--dead-after`.

use std::process::{Child, Stdio};
use std::time::Duration;

use chrono::Utc;
use ops_worker::db::{RunStatus, Worker};

use crate::cli::{daemon, exit_within, signal, sigterm, with_db};
use crate::fixtures::eventually;
use crate::helpers::TestDb;

/// A job that is running whenever the test looks.
const CONFIG: &str = "[jobs.long]\nkind = \"command\"\nevery = \"1s\"\ntimeout = \"10m\"\ncommand = [\"sleep\", \"600\"]\n";
/// A job that leaves nothing behind when its daemon is killed.
const QUIET: &str = "[jobs.tick]\nkind = \"command\"\nevery = \"1h\"\ncommand = [\"true\"]\n";

async fn row(db: &TestDb, id: &str) -> Option<Worker> {
    db.db().worker(id).await.unwrap()
}

/// Waits until process `child` holds worker id `id`.
async fn holds(db: &TestDb, id: &str, child: &Child) {
    let pid = child.id() as i32;
    eventually(
        Duration::from_secs(30),
        &format!("pid {pid} registered as {id}"),
        || async { row(db, id).await.is_some_and(|w| w.pid == pid) },
    )
    .await;
}

async fn a_second_daemon_with_the_same_id_refuses_to_start(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let first = daemon(dir.path(), db, CONFIG, "1s", "twin");
    holds(db, "twin", &first).await;
    eventually(Duration::from_secs(30), "a run of the first", || async {
        let runs = db.db().history(Some("long"), 10).await.unwrap();
        runs.iter().any(|r| r.status == RunStatus::Running)
    })
    .await;

    let second = daemon(dir.path(), db, CONFIG, "1s", "twin");
    let (code, err) = exit_within(second, Duration::from_secs(30)).await;
    let refused_at = Utc::now();
    assert_eq!(code, 2, "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    let pid = first.id();
    assert!(
        errors[0].starts_with(&format!(
            "error: worker id \"twin\" is in use by a running worker (pid {pid} on host "
        )) && errors[0].contains("set OPS_WORKER_ID to an id of its own"),
        "{err}"
    );

    // The first is undisturbed: it keeps its row and heartbeats on, and
    // its running run was not marked abandoned by the second.
    eventually(
        Duration::from_secs(30),
        "a heartbeat of the first after the second gave up",
        || async { row(db, "twin").await.unwrap().heartbeat_at > refused_at },
    )
    .await;
    assert_eq!(row(db, "twin").await.unwrap().pid, pid as i32);
    let runs = db.db().history(Some("long"), 100).await.unwrap();
    assert!(
        runs.iter().all(|r| r.status != RunStatus::Abandoned),
        "{runs:#?}"
    );
    sigterm(&first);
    let (code, err) = exit_within(first, Duration::from_secs(30)).await;
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains(": registering again"), "{err}");

    // Once the first stopped cleanly, the id is free.
    let third = daemon(dir.path(), db, CONFIG, "1s", "twin");
    holds(db, "twin", &third).await;
    sigterm(&third);
    let (code, err) = exit_within(third, Duration::from_secs(30)).await;
    assert_eq!(code, 0, "{err}");
}

async fn the_id_of_a_killed_or_quiet_worker_is_taken_over(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    // Killed on this host: its successor need not wait for --dead-after.
    let mut killed = daemon(dir.path(), db, QUIET, "1s", "phoenix");
    holds(db, "phoenix", &killed).await;
    killed.kill().unwrap();
    killed.wait().unwrap();
    let successor = daemon(dir.path(), db, QUIET, "1s", "phoenix");
    holds(db, "phoenix", &successor).await;
    sigterm(&successor);
    let (code, err) = exit_within(successor, Duration::from_secs(30)).await;
    assert_eq!(code, 0, "{err}");

    // Another host: alive while its heartbeat is at most --dead-after old.
    let elsewhere = |heartbeat_secs_ago: i64| Worker {
        id: "roamer".into(),
        host: "another-host".into(),
        pid: 4242,
        version: "0.1.0".into(),
        started_at: Utc::now() - chrono::Duration::hours(1),
        heartbeat_at: Utc::now() - chrono::Duration::seconds(heartbeat_secs_ago),
        config_hash: String::new(),
        stopped_at: None,
        config_error: None,
    };
    db.db().register_worker(&elsewhere(2)).await.unwrap();
    let refused = daemon(dir.path(), db, QUIET, "1s", "roamer");
    let (code, err) = exit_within(refused, Duration::from_secs(30)).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("(pid 4242 on host \"another-host\""), "{err}");
    // 25 s without a heartbeat is more than the default 20 s.
    db.db().register_worker(&elsewhere(25)).await.unwrap();
    let taker = daemon(dir.path(), db, QUIET, "1s", "roamer");
    holds(db, "roamer", &taker).await;
    sigterm(&taker);
    let (code, err) = exit_within(taker, Duration::from_secs(30)).await;
    assert_eq!(code, 0, "{err}");
}

/// A daemon on `dir`'s QUIET schedule as worker `id`, which judges others
/// dead after 10 s.
fn quick_daemon(dir: &std::path::Path, db: &TestDb, id: &str) -> Child {
    std::fs::write(dir.join("schedules.toml"), QUIET).unwrap();
    with_db(dir, db)
        .args(["run", "--grace", "1s", "--dead-after", "10s"])
        .env("OPS_WORKER_ID", id)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A daemon frozen for longer than --dead-after loses its id to a new one;
/// when it wakes it does not take the id back from the live holder (the two
/// would otherwise take it from each other every heartbeat).
async fn a_worker_that_lost_its_id_while_frozen_does_not_take_it_back(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let frozen = quick_daemon(dir.path(), db, "sleeper");
    holds(db, "sleeper", &frozen).await;
    signal(&frozen, libc::SIGSTOP);
    let stale = || async {
        let w = row(db, "sleeper").await.unwrap();
        Utc::now() - w.heartbeat_at > chrono::Duration::seconds(11)
    };
    eventually(
        Duration::from_secs(40),
        "the frozen heartbeat is stale",
        stale,
    )
    .await;
    let new = quick_daemon(dir.path(), db, "sleeper");
    holds(db, "sleeper", &new).await;
    signal(&frozen, libc::SIGCONT);
    let woke = Utc::now();
    // Two heartbeats of the new holder after the frozen one woke: the old
    // one has beaten (and found the row taken) by then.
    eventually(
        Duration::from_secs(30),
        "two heartbeats after the wake",
        || async {
            row(db, "sleeper").await.unwrap().heartbeat_at > woke + chrono::Duration::seconds(6)
        },
    )
    .await;
    assert_eq!(row(db, "sleeper").await.unwrap().pid, new.id() as i32);
    sigterm(&frozen);
    let (code, err) = exit_within(frozen, Duration::from_secs(30)).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        err.matches("another running worker took over this worker id")
            .count(),
        1,
        "{err}"
    );
    assert!(!err.contains(": registering again"), "{err}");
    sigterm(&new);
    let (code, err) = exit_within(new, Duration::from_secs(30)).await;
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains(": registering again"), "{err}");
}

/// A daemon that cannot serve its metrics port exits, and its row says it
/// stopped: it does not look alive to the next start for --dead-after.
async fn a_taken_metrics_port_fails_start_up_with_the_row_stopped(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    std::fs::write(dir.path().join("schedules.toml"), QUIET).unwrap();
    let child = with_db(dir.path(), db)
        .args(["run", "--grace", "1s"])
        .env("OPS_WORKER_ID", "porter")
        .env("METRICS_ADDR", addr.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (code, err) = exit_within(child, Duration::from_secs(30)).await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "error: cannot serve metrics on METRICS_ADDR={addr}"
        )),
        "{err}"
    );
    let w = row(db, "porter").await.expect("registered before the port");
    assert!(w.stopped_at.is_some(), "{w:?}");
}

crate::backend_tests!(
    a_taken_metrics_port_fails_start_up_with_the_row_stopped,
    a_second_daemon_with_the_same_id_refuses_to_start,
    the_id_of_a_killed_or_quiet_worker_is_taken_over,
    a_worker_that_lost_its_id_while_frozen_does_not_take_it_back,
);
