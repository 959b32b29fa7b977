//! What a new operator meets in the first hour: `--help` that explains
//! every option and the exit codes, and the shipped schedules.toml, which
//! runs clean on a machine with nothing else installed.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use clap::CommandFactory;
use ops_worker::cli::Cli;
use serde_json::Value;

use crate::cli::{bin, exit_within, sigterm, with_db};
use crate::fixtures::eventually;
use crate::helpers::TestDb;

/// Every command and subcommand, as the words that name it (`["alerts",
/// "list"]`), with its definition.
fn commands(cmd: &clap::Command, path: Vec<String>, out: &mut Vec<(Vec<String>, clap::Command)>) {
    out.push((path.clone(), cmd.clone()));
    for sub in cmd.get_subcommands() {
        let mut p = path.clone();
        p.push(sub.get_name().to_string());
        commands(sub, p, out);
    }
}

/// `--help` of every command (walking clap's tree, so a new command or
/// option is checked without a change here) describes each argument and
/// states the command's exit codes; the real binary prints both.
#[test]
fn every_commands_help_describes_its_arguments_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let mut all = Vec::new();
    commands(&Cli::command(), Vec::new(), &mut all);
    assert!(all.len() >= 20, "only {} commands found", all.len());
    let mut failures = Vec::new();
    for (path, cmd) in &all {
        let name = if path.is_empty() {
            "ops-worker".to_string()
        } else {
            path.join(" ")
        };
        let out = bin(dir.path()).args(path).arg("--help").output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        if out.status.code() != Some(0) {
            failures.push(format!("{name} --help exited {:?}", out.status.code()));
            continue;
        }
        if !help.contains("\nExit codes:\n  0  ") {
            failures.push(format!(
                "{name} --help does not list its exit codes:\n{help}"
            ));
        }
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "help" | "version") || arg.is_hide_set() {
                continue;
            }
            let text = arg
                .get_long_help()
                .or(arg.get_help())
                .map(ToString::to_string)
                .unwrap_or_default();
            if text.trim().is_empty() {
                failures.push(format!("{name}: argument {id} has no description"));
            } else if !help.contains(text.lines().next().unwrap()) {
                failures.push(format!(
                    "{name} --help does not show the description of {id}: {text:?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// The repository's schedules.toml, as a newcomer starts it.
fn shipped() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("schedules.toml")).unwrap()
}

fn json(out: &Output) -> Value {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The shipped schedules.toml on a machine with nothing else installed:
/// the daemon starts and stops with nothing to warn about, every enabled
/// job succeeds, and no alert opens. (An enabled health check of a service
/// that is not there paged within two minutes.)
async fn the_shipped_schedule_runs_clean_on_a_bare_machine(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("schedules.toml"), shipped()).unwrap();
    let cli = |args: &[&str]| with_db(dir.path(), db).args(args).output().unwrap();

    // The daemon, the heartbeat every second instead of 30 (HEARTBEAT_EVERY,
    // as .env may set it).
    let child = with_db(dir.path(), db)
        .args(["run", "--grace", "5s"])
        .env("HEARTBEAT_EVERY", "1s")
        .env("OPS_WORKER_ID", "first-run")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    eventually(Duration::from_secs(30), "three heartbeats", || async {
        let runs = json(&cli(&["history", "heartbeat", "--json"]));
        runs.as_array().unwrap().len() >= 3
    })
    .await;
    sigterm(&child);
    let (code, log) = exit_within(child, Duration::from_secs(20)).await;
    assert_eq!(code, 0, "{log}");
    let noisy: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect();
    assert!(noisy.is_empty(), "the daemon's log:\n{log}");

    // The other jobs' next slots are minutes to a day away: each enabled
    // job runs now, through the same runner, twice (the alerts job opens an
    // alert after two failures in a row), the alerts job last in each round
    // so that it judges the others' runs.
    let list = json(&cli(&["list", "--json"]));
    let mut enabled: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["enabled"] == true)
        .map(|j| j["name"].as_str().unwrap().to_string())
        .collect();
    enabled.sort_by_key(|name| name == "system-alerts");
    assert!(enabled.len() >= 6, "{enabled:?}");
    assert_eq!(enabled.last().map(String::as_str), Some("system-alerts"));
    for name in enabled.iter().chain(&enabled) {
        let out = cli(&["run-job", name]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "run-job {name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let runs = json(&cli(&["history", "--limit", "1000", "--json"]));
    let runs = runs.as_array().unwrap();
    for job in &enabled {
        assert!(
            runs.iter().any(|r| r["job_name"] == job.as_str()),
            "no run of {job}"
        );
    }
    for r in runs {
        assert!(
            r["status"] == "success" || r["status"] == "skipped",
            "a run that did not succeed: {r}"
        );
    }
    let alerts = json(&cli(&["alerts", "list", "--all", "--json"]));
    assert_eq!(alerts, serde_json::json!([]), "an alert opened");
}

crate::backend_tests!(the_shipped_schedule_runs_clean_on_a_bare_machine);

/// A health job whose `timeout` leaves no room for its target: `validate`
/// warns at the value and exits 0, and `run` logs the same warning when it
/// loads the file, at start and on a reload.
#[tokio::test(flavor = "multi_thread")]
async fn a_health_timeout_without_room_for_its_targets_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let config = |timeout: &str| {
        format!(
            "[jobs.api-health]\nkind = \"health\"\nevery = \"1h\"\ntimeout = \"{timeout}\"\n\
             targets = [{{ name = \"api\", url = \"http://127.0.0.1:9/health\", timeout = \"5s\" }}]\n"
        )
    };
    let warning = |timeout: &str, needed: &str| {
        format!(
            "schedules.toml:4:11: job \"api-health\": timeout {timeout} leaves no room: target \"api\" \
             may take up to 5s (its timeout), and when a target hangs the whole run times out: no check \
             is recorded, and the job counts as failing instead of the service as down; set it to at least {needed}"
        )
    };
    std::fs::write(dir.path().join("schedules.toml"), config("5s")).unwrap();
    let out = bin(dir.path()).arg("validate").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("warning: {}\n", warning("5s", "7s"))
    );
    // Enough room: nothing to say.
    std::fs::write(dir.path().join("schedules.toml"), config("7s")).unwrap();
    let out = bin(dir.path()).arg("validate").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");

    std::fs::write(dir.path().join("schedules.toml"), config("5s")).unwrap();
    let log_path = dir.path().join("run.log");
    let child = bin(dir.path())
        .args(["run", "--grace", "1s"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    eventually(Duration::from_secs(20), "the start-up warning", || async {
        log().contains(&warning("5s", "7s"))
    })
    .await;
    std::fs::write(dir.path().join("schedules.toml"), config("6s")).unwrap();
    eventually(
        Duration::from_secs(30),
        "the warning after a reload",
        || async { log().contains(&warning("6s", "7s")) },
    )
    .await;
    sigterm(&child);
    let mut child = child;
    let mut status = None;
    eventually(Duration::from_secs(20), "the worker's exit", || {
        status = child.try_wait().unwrap();
        std::future::ready(status.is_some())
    })
    .await;
    assert_eq!(status.unwrap().code(), Some(0), "{}", log());
    let warnings: Vec<String> = log()
        .lines()
        .filter(|l| l.contains(" WARN "))
        .map(String::from)
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
}
