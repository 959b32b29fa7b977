//! Stopping the real binary with SIGINT (Ctrl-C) and SIGTERM: a run that
//! started is finished in `job_runs`, a `command`'s process group does not
//! outlive it, and the exit code says which signal it was.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use ops_worker::db::{RunRecord, RunStatus};

use crate::cli::{daemon, exit_within, with_db};
use crate::fixtures::eventually;
use crate::helpers::TestDb;

/// `polite` stops on SIGTERM; `stubborn` ignores it (so only SIGKILL ends
/// it). Each leaves a second process in its group that would outlive the
/// shell, and writes the group's id to a file once both are started.
const JOBS: &str = r#"
[jobs.polite]
kind = "command"
every = "1h"
timeout = "10m"
command = ["sh", "-c", "sleep 300 & echo $$ > polite.pgid; sleep 300"]

[jobs.stubborn]
kind = "command"
every = "1h"
timeout = "10m"
command = ["sh", "-c", "trap '' TERM; sleep 300 & echo $$ > stubborn.pgid; sleep 300"]
"#;

/// `run-job JOB` in a process group of its own, as a shell runs a
/// foreground command: Ctrl-C at the terminal is SIGINT to that group.
fn run_job(dir: &Path, db: &TestDb, job: &str) -> Child {
    std::fs::write(dir.join("schedules.toml"), JOBS).unwrap();
    with_db(dir, db)
        .args(["run-job", job])
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The process group the job's command runs in, once it has started.
async fn command_group(dir: &Path, job: &str) -> i32 {
    let file = dir.join(format!("{job}.pgid"));
    let mut pgid = 0;
    eventually(Duration::from_secs(20), "the command started", || {
        pgid = std::fs::read_to_string(&file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        async move { pgid > 0 }
    })
    .await;
    assert!(alive_in_group(pgid).len() >= 2, "the shell and its sleeps");
    pgid
}

/// The processes of group `pgid` that are not zombies.
fn alive_in_group(pgid: i32) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp ...; comm may hold spaces and parens.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let fields: Vec<&str> = after.split_whitespace().collect();
        if fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string() {
            pids.push(pid);
        }
    }
    pids
}

async fn no_process_left(pgid: i32) {
    eventually(
        Duration::from_secs(10),
        &format!("no process left in the command's group {pgid}"),
        || async { alive_in_group(pgid).is_empty() },
    )
    .await;
}

fn kill(pid: i32, sig: i32) {
    // SAFETY: kill(2) on a process (or, negative, a process group) this
    // test spawned and has not yet reaped.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
}

async fn the_run(db: &TestDb, job: &str) -> RunRecord {
    let runs = db.db().history(Some(job), 10).await.unwrap();
    assert_eq!(runs.len(), 1, "{runs:#?}");
    runs.into_iter().next().unwrap()
}

/// Waits until `child`'s stderr has shown `line`, and hands back the child
/// with the rest of its stderr.
fn await_log(child: &mut Child, line: &str) -> String {
    let mut seen = String::new();
    let mut reader = BufReader::new(child.stderr.as_mut().unwrap());
    loop {
        let mut next = String::new();
        assert!(
            reader.read_line(&mut next).unwrap() > 0,
            "stderr ended before {line:?}: {seen}"
        );
        seen.push_str(&next);
        if next.contains(line) {
            return seen;
        }
    }
}

async fn ctrl_c_or_sigterm_finishes_a_run_job_and_its_process_group(db: &TestDb) {
    // Ctrl-C: SIGINT to run-job's whole group (the command's is its own).
    let dir = tempfile::tempdir().unwrap();
    let child = run_job(dir.path(), db, "polite");
    let pgid = command_group(dir.path(), "polite").await;
    kill(-(child.id() as i32), libc::SIGINT);
    let (code, err) = exit_within(child, Duration::from_secs(20)).await;
    assert_eq!(code, 130, "{err}");
    no_process_left(pgid).await;
    let run = the_run(db, "polite").await;
    assert_eq!(run.status, RunStatus::Interrupted, "{run:#?}");
    assert!(run.finished_at.is_some(), "{run:#?}");
    assert_eq!(
        run.error.as_deref(),
        Some("interrupted: run-job received SIGINT")
    );

    // SIGTERM to run-job alone, as a supervisor sends it.
    let db2 = TestDb::new(db.backend()).await;
    let dir = tempfile::tempdir().unwrap();
    let child = run_job(dir.path(), &db2, "polite");
    let pgid = command_group(dir.path(), "polite").await;
    kill(child.id() as i32, libc::SIGTERM);
    let (code, err) = exit_within(child, Duration::from_secs(20)).await;
    assert_eq!(code, 143, "{err}");
    no_process_left(pgid).await;
    let run = the_run(&db2, "polite").await;
    assert_eq!(run.status, RunStatus::Interrupted, "{run:#?}");
    assert!(run.finished_at.is_some(), "{run:#?}");
    assert_eq!(
        run.error.as_deref(),
        Some("interrupted: run-job received SIGTERM")
    );
}

async fn a_second_ctrl_c_stops_a_run_job_at_once_and_still_records_it(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = run_job(dir.path(), db, "stubborn");
    let pgid = command_group(dir.path(), "stubborn").await;
    let group = -(child.id() as i32);
    kill(group, libc::SIGINT);
    // The command ignores the SIGTERM it got: without a second Ctrl-C it
    // would be killed only after the 5 s grace.
    await_log(&mut child, "SIGINT received");
    assert!(alive_in_group(pgid).len() >= 2, "SIGTERM is ignored");
    kill(group, libc::SIGINT);
    let (code, err) = exit_within(child, Duration::from_secs(20)).await;
    assert_eq!(code, 130, "{err}");
    no_process_left(pgid).await;
    let run = the_run(db, "stubborn").await;
    assert_eq!(run.status, RunStatus::Interrupted, "{run:#?}");
    assert!(run.finished_at.is_some(), "{run:#?}");
    assert_eq!(
        run.error.as_deref(),
        Some("interrupted: run-job received SIGINT; stopped at once on another signal"),
        "{run:#?}"
    );
}

/// The daemon: a second signal ends the grace, a third stops the
/// interrupted jobs without waiting for them.
async fn more_signals_shorten_the_daemons_drain(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let config = r#"
[jobs.stubborn]
kind = "command"
every = "1s"
timeout = "10m"
command = ["sh", "-c", "trap '' TERM; sleep 60 & echo $$ > stubborn.pgid; sleep 60"]
"#;
    let mut child = daemon(dir.path(), db, config, "10m", "drain-signals");
    let pgid = command_group(dir.path(), "stubborn").await;
    kill(child.id() as i32, libc::SIGTERM);
    await_log(&mut child, "shutting down");
    kill(child.id() as i32, libc::SIGINT);
    await_log(&mut child, "interrupting running jobs now");
    kill(child.id() as i32, libc::SIGINT);
    let (code, err) = exit_within(child, Duration::from_secs(20)).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("stopping interrupted jobs without waiting"),
        "{err}"
    );
    no_process_left(pgid).await;
    let runs = db.db().history(Some("stubborn"), 100).await.unwrap();
    let started: Vec<_> = runs
        .iter()
        .filter(|r| r.status != RunStatus::Skipped)
        .collect();
    assert_eq!(started.len(), 1, "{runs:#?}");
    assert_eq!(started[0].status, RunStatus::Interrupted);
    assert_eq!(
        started[0].error.as_deref(),
        Some("interrupted: the worker shut down before the run finished; stopped at once on another signal")
    );
}

crate::backend_tests!(
    ctrl_c_or_sigterm_finishes_a_run_job_and_its_process_group,
    a_second_ctrl_c_stops_a_run_job_at_once_and_still_records_it,
    more_signals_shorten_the_daemons_drain,
);
