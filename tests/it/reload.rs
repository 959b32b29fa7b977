//! Live reload through the real daemon: an edited schedules.toml takes
//! effect without a restart, and `job_runs` shows no slot run twice or
//! missed because of it; an invalid edit keeps the running schedule and is
//! reported by `status` and `/metrics`; SIGHUP reloads too.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use ops_worker::db::{Finish, NewRun, RunRecord, RunStatus, Trigger};

use crate::cli::{exit_within, sigterm, with_db};
use crate::fixtures::eventually;
use crate::helpers::TestDb;

fn start(dir: &Path, db: &TestDb, extra_env: &[(&str, &str)], metrics_port: Option<u16>) -> Child {
    let mut cmd = with_db(dir, db);
    cmd.args(["run", "--grace", "5s"])
        .env("OPS_WORKER_ID", "w1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    if let Some(port) = metrics_port {
        cmd.env("METRICS_ADDR", format!("127.0.0.1:{port}"));
    }
    cmd.spawn().unwrap()
}

/// Writes the file as editors that save safely do: a new file renamed over
/// the old one.
pub(crate) fn replace(dir: &Path, text: &str) {
    let tmp = dir.join(".schedules.toml.swp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join("schedules.toml")).unwrap();
}

async fn runs(db: &TestDb, job: &str) -> Vec<RunRecord> {
    let mut runs = db.db().history(Some(job), 10_000).await.unwrap();
    runs.reverse();
    runs
}

async fn wait_runs(db: &TestDb, job: &str, n: usize) {
    eventually(
        Duration::from_secs(20),
        &format!("{n} successful runs of {job}"),
        || async {
            runs(db, job)
                .await
                .iter()
                .filter(|r| r.status == RunStatus::Success)
                .count()
                >= n
        },
    )
    .await;
}

/// Every slot from the job's first to its last, `every` seconds apart:
/// exactly one row each, all successful first attempts.
fn assert_contiguous(job: &str, runs: &[RunRecord], every: i64) {
    let mut by_slot: BTreeMap<DateTime<Utc>, Vec<&RunRecord>> = BTreeMap::new();
    for r in runs {
        by_slot.entry(r.scheduled_for).or_default().push(r);
    }
    let (first, last) = (
        *by_slot.keys().next().unwrap(),
        *by_slot.keys().last().unwrap(),
    );
    let mut slot = first;
    while slot <= last {
        let rows = by_slot.get(&slot).cloned().unwrap_or_default();
        assert!(
            rows.len() == 1 && rows[0].status == RunStatus::Success && rows[0].attempt == 1,
            "{job} slot {slot}: {rows:?}\nall: {runs:#?}"
        );
        slot += TimeDelta::seconds(every);
    }
}

const V1: &str = r#"
[jobs.keep]
kind = "command"
every = "1s"
command = ["true"]

[jobs.gone]
kind = "command"
every = "1s"
command = ["true"]

[jobs.changed]
kind = "command"
every = "3s"
command = ["true"]
timeout = "10s"
catch_up = "skip"
"#;

/// `keep` moved down and otherwise untouched, `gone` removed, `changed`
/// with a new timeout (same schedule), `added` new.
const V2: &str = r#"
[jobs.changed]
kind = "command"
every = "3s"
command = ["true"]
timeout = "20s"
catch_up = "skip"

[jobs.added]
kind = "command"
every = "1s"
command = ["true"]

[jobs.keep]
kind = "command"
every = "1s"
command = ["true"]
"#;

async fn a_reload_applies_added_removed_and_changed_jobs(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    // `changed` has history on a grid 1 s off the epoch's (slots at 3k+1):
    // re-arming it must keep that phase, not start a fresh grid.
    let now = Utc::now();
    let mut seeded = DateTime::from_timestamp(now.timestamp() - 30, 0).unwrap();
    while seeded.timestamp().rem_euclid(3) != 1 {
        seeded += TimeDelta::seconds(1);
    }
    let run = NewRun {
        job_name: "changed".into(),
        kind: "command".into(),
        scheduled_for: seeded,
        trigger: Trigger::Schedule,
        attempt: 1,
        worker_id: "earlier".into(),
        started_at: seeded,
        missed: 0,
        jitter_ms: None,
    };
    let finish = Finish {
        status: RunStatus::Success,
        finished_at: seeded,
        error: None,
        output: None,
        duration_ms: 0,
    };
    assert!(db.db().insert_finished_run(&run, &finish).await.unwrap());

    std::fs::write(dir.path().join("schedules.toml"), V1).unwrap();
    let daemon = start(dir.path(), db, &[], None);
    wait_runs(db, "keep", 3).await;
    wait_runs(db, "gone", 3).await;
    wait_runs(db, "changed", 3).await;
    let reloaded_at = Utc::now();
    replace(dir.path(), V2);
    wait_runs(db, "added", 3).await;
    // A few more slots of every job after the reload.
    let added_first = runs(db, "added").await[0].scheduled_for;
    eventually(
        Duration::from_secs(20),
        "3 slots of changed after the reload",
        || async {
            runs(db, "changed")
                .await
                .iter()
                .filter(|r| r.scheduled_for > added_first)
                .count()
                >= 2
        },
    )
    .await;
    sigterm(&daemon);
    let (code, log) = exit_within(daemon, Duration::from_secs(15)).await;
    assert_eq!(code, 0, "{log}");

    // Applied once, with each job where it belongs: `keep` moved in the
    // file but is the same job, so it was not touched.
    let reloads: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("schedules.toml reloaded"))
        .collect();
    assert_eq!(reloads.len(), 1, "{log}");
    for part in [
        "added=[\"added\"]",
        "removed=[\"gone\"]",
        "changed=[\"changed\"]",
        "unchanged=1",
    ] {
        assert!(reloads[0].contains(part), "{part} in {}", reloads[0]);
    }

    let keep = runs(db, "keep").await;
    assert_contiguous("keep", &keep, 1);
    assert!(keep.last().unwrap().scheduled_for > added_first);
    let changed: Vec<_> = runs(db, "changed")
        .await
        .into_iter()
        .filter(|r| r.worker_id == "w1")
        .collect();
    assert_contiguous("changed", &changed, 3);
    assert!(
        changed
            .iter()
            .all(|r| r.scheduled_for.timestamp().rem_euclid(3) == 1),
        "changed left its grid: {changed:#?}"
    );
    let gone = runs(db, "gone").await;
    assert_contiguous("gone", &gone, 1);
    assert!(
        gone.last().unwrap().scheduled_for < reloaded_at + TimeDelta::seconds(2),
        "gone ran after the reload: {gone:#?}"
    );
    let added = runs(db, "added").await;
    assert_contiguous("added", &added, 1);
    assert!(added[0].scheduled_for > reloaded_at);
}

async fn status_json(dir: &Path, db: &TestDb) -> serde_json::Value {
    let out = with_db(dir, db)
        .args(["status", "--json"])
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .find(|w| w["id"] == "w1")
        .cloned()
        .unwrap()
}

async fn metric(port: u16, name: &str) -> Option<f64> {
    let text = ops_worker_jobs::health::http_client()
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} "))?.parse().ok())
}

const TICK: &str = "[jobs.tick]\nkind = \"command\"\nevery = \"1s\"\ncommand = [\"true\"]\n";

async fn an_invalid_edit_keeps_the_schedule_and_is_reported(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::http::unused_port();
    std::fs::write(dir.path().join("schedules.toml"), TICK).unwrap();
    let daemon = start(dir.path(), db, &[], Some(port));
    wait_runs(db, "tick", 2).await;
    let hash = status_json(dir.path(), db).await["config_hash"].clone();
    assert_eq!(
        metric(port, "ops_worker_config_last_reload_successful").await,
        Some(1.0)
    );

    // A typo, and a new job that must not start while the file is invalid.
    let broken = format!(
        "{}\n[jobs.more]\nkind = \"command\"\nevery = \"3x\"\ncommand = [\"true\"]\n",
        TICK
    );
    replace(dir.path(), &broken);
    eventually(
        Duration::from_secs(20),
        "status shows the rejected edit",
        || async { status_json(dir.path(), db).await["config_error"].is_string() },
    )
    .await;
    let w = status_json(dir.path(), db).await;
    let error = w["config_error"].as_str().unwrap();
    assert!(
        error.contains("schedules.toml:8:9: job \"more\": every: invalid duration \"3x\""),
        "{error}"
    );
    assert_eq!(w["config_hash"], hash, "still the running file's hash");
    assert_eq!(
        metric(port, "ops_worker_config_last_reload_successful").await,
        Some(0.0)
    );
    let out = with_db(dir.path(), db).arg("status").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("(edit rejected)"), "{text}");
    assert!(
        text.contains("schedules.toml on disk was rejected"),
        "{text}"
    );
    // The old schedule runs on.
    let before = runs(db, "tick").await.len();
    wait_runs(db, "tick", before + 2).await;
    assert!(runs(db, "more").await.is_empty());

    // Fixed: loaded, and the error is gone everywhere.
    let fixed = broken.replace("3x", "1s");
    replace(dir.path(), &fixed);
    wait_runs(db, "more", 2).await;
    eventually(
        Duration::from_secs(20),
        "status clears the error",
        || async { status_json(dir.path(), db).await["config_error"].is_null() },
    )
    .await;
    assert_ne!(status_json(dir.path(), db).await["config_hash"], hash);
    assert_eq!(
        metric(port, "ops_worker_config_last_reload_successful").await,
        Some(1.0)
    );
    sigterm(&daemon);
    let (code, log) = exit_within(daemon, Duration::from_secs(15)).await;
    assert_eq!(code, 0, "{log}");
    // Logged once, although the file was looked at again meanwhile.
    assert_eq!(
        log.matches("schedules.toml changed but is invalid").count(),
        1,
        "{log}"
    );
    assert_contiguous("tick", &runs(db, "tick").await, 1);
}

async fn sighup_reloads_when_watching_is_off(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("schedules.toml"), TICK).unwrap();
    let daemon = start(
        dir.path(),
        db,
        &[("OPS_WORKER_WATCH_CONFIG", "false")],
        None,
    );
    wait_runs(db, "tick", 2).await;
    // Written in place (as a bind mount sees an edit), then SIGHUP.
    let more =
        format!("{TICK}\n[jobs.hup]\nkind = \"command\"\nevery = \"1s\"\ncommand = [\"true\"]\n");
    std::fs::write(dir.path().join("schedules.toml"), more).unwrap();
    // SAFETY: kill(2) on a pid this test spawned and has not yet reaped.
    assert_eq!(unsafe { libc::kill(daemon.id() as i32, libc::SIGHUP) }, 0);
    wait_runs(db, "hup", 2).await;
    sigterm(&daemon);
    let (code, log) = exit_within(daemon, Duration::from_secs(15)).await;
    assert_eq!(code, 0, "{log}");
    let reload = log
        .lines()
        .find(|l| l.contains("schedules.toml reloaded"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(reload.contains("trigger=\"SIGHUP\""), "{reload}");
    assert_contiguous("tick", &runs(db, "tick").await, 1);
}

crate::backend_tests!(
    a_reload_applies_added_removed_and_changed_jobs,
    an_invalid_edit_keeps_the_schedule_and_is_reported,
    sighup_reloads_when_watching_is_off,
);

/// A Kubernetes ConfigMap volume: `schedules.toml` is a symlink through
/// `..data`, itself a symlink to a timestamped directory, and an update
/// swaps `..data` atomically (the file itself is never written). The
/// directory watch sees the swap; it reloads at once, not at the 10 s check.
#[tokio::test(flavor = "multi_thread")]
async fn a_configmap_symlink_swap_is_seen_at_once() {
    use std::os::unix::fs::symlink;
    let db = TestDb::new(ops_worker::db::Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let volume = dir.path().join("config");
    std::fs::create_dir_all(volume.join("..2026_11_24_v1")).unwrap();
    std::fs::write(volume.join("..2026_11_24_v1/schedules.toml"), TICK).unwrap();
    symlink("..2026_11_24_v1", volume.join("..data")).unwrap();
    symlink("..data/schedules.toml", volume.join("schedules.toml")).unwrap();
    let config = volume.join("schedules.toml");
    let config = config.to_str().unwrap();
    let daemon = start(dir.path(), &db, &[("OPS_WORKER_CONFIG", config)], None);
    wait_runs(&db, "tick", 2).await;

    std::fs::create_dir_all(volume.join("..2026_11_24_v2")).unwrap();
    let more =
        format!("{TICK}\n[jobs.cm]\nkind = \"command\"\nevery = \"1s\"\ncommand = [\"true\"]\n");
    std::fs::write(volume.join("..2026_11_24_v2/schedules.toml"), more).unwrap();
    symlink("..2026_11_24_v2", volume.join("..data_tmp")).unwrap();
    let swapped = Utc::now();
    std::fs::rename(volume.join("..data_tmp"), volume.join("..data")).unwrap();
    wait_runs(&db, "cm", 1).await;
    let first = runs(&db, "cm").await[0].scheduled_for;
    assert!(
        first <= swapped + TimeDelta::seconds(3),
        "picked up at {first}, swapped at {swapped}: not by the watch"
    );
    sigterm(&daemon);
    let (code, log) = exit_within(daemon, Duration::from_secs(15)).await;
    assert_eq!(code, 0, "{log}");
    let reload = log
        .lines()
        .find(|l| l.contains("schedules.toml reloaded"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(reload.contains("trigger=\"file change\""), "{reload}");
}
