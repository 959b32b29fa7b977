//! Maintenance windows and ad-hoc silences on both backends, through the
//! production runner with the config as the jobs' timeline and a test clock:
//! an outage inside a recurring window on a DST day pages nobody, one that
//! outlasts its window opens (and pages) when the window ends, an alert
//! already open gets no reminder or escalation step inside one; a silence
//! added by the real binary holds for a new pool (a restart) and for a
//! second worker, and `silence remove` lifts it.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use ops_worker::config::Config;
use ops_worker::db::{Db, RunStatus, Trigger};
use ops_worker::runner::{Outcome, Runner, Slot};
use ops_worker_jobs::store::{HealthCheck, HealthStatus, HealthStore};
use ops_worker_jobs::Clock;

use crate::cli::with_db;
use crate::fixtures::{runner, utc, TestClock};
use crate::helpers::TestDb;

/// Sundays 02:00 to 04:00 Berlin time, whatever the clocks do.
const WINDOW: &str = r#"
[maintenance.patch-sunday]
cron = "0 2 * * SUN"
duration = "2h"
timezone = "Europe/Berlin"
match = ["system:service:*"]
"#;

/// The jobs: alerts (with reminders) and a two-level escalation.
const JOBS: &str = r#"
[notify.ops]
type = "webhook"
url = "http://127.0.0.1:9/ops"

[jobs.system-alerts]
kind = "alerts"
every = "1m"
notify = ["ops"]
fail_after = 2
remind_every = "10m"
watch_jobs = false

[jobs.escalate]
kind = "escalation"
every = "1m"
policy = { levels = [{ after = "5m", notify = ["ops"] }, { after = "60m", notify = ["ops"] }] }
"#;

fn config(windows: &str) -> Arc<Config> {
    let text = format!("{windows}{JOBS}");
    Arc::new(Config::parse(Path::new("schedules.toml"), &text, &|_| None).unwrap())
}

/// The production runner with `windows` and `JOBS` as its jobs' timeline.
fn worker(db: &Db, clock: &Arc<TestClock>, id: &str, windows: &str) -> Arc<Runner> {
    let r = runner(db, clock.clone(), id);
    r.set_config(config(windows));
    r
}

async fn down(db: &Db, service: &str, at: DateTime<Utc>) {
    check(db, service, HealthStatus::Down, at).await;
}

async fn check(db: &Db, service: &str, status: HealthStatus, at: DateTime<Utc>) {
    let c = HealthCheck {
        service: service.into(),
        job_name: "health".into(),
        status,
        http_status: None,
        latency_ms: None,
        error: (status == HealthStatus::Down).then(|| "connection refused".into()),
        checked_at: at,
    };
    db.record_health(&[c]).await.unwrap();
}

/// Runs `job` of `JOBS` once at the clock's time; returns its output.
async fn run(r: &Runner, clock: &TestClock, job: &str) -> String {
    let config = config("");
    let spec = config.job(job).unwrap();
    let Outcome::Ran(report) = r.run(Slot::new(spec, clock.now(), Trigger::Manual)).await else {
        panic!("{job} did not run")
    };
    assert_eq!(
        report.status,
        RunStatus::Success,
        "{job}: {:?}",
        report.error
    );
    report.output.unwrap_or_default()
}

/// A minute of the daemon's life at `t`: a check of `service` (down or
/// up), then the alerts and the escalation jobs.
async fn minute(db: &Db, r: &Runner, clock: &TestClock, t: DateTime<Utc>, up: bool) -> String {
    clock.set(t);
    let status = if up {
        HealthStatus::Up
    } else {
        HealthStatus::Down
    };
    check(db, "api", status, t).await;
    let out = run(r, clock, "system-alerts").await;
    run(r, clock, "escalate").await;
    out
}

/// Every notification enqueued so far: (alert id, event).
async fn pages(db: &Db) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    for a in db.list_alerts(true, 100).await.unwrap() {
        for (event, _) in db.alert_notifications(a.id).await.unwrap() {
            out.push((a.id, event));
        }
    }
    out
}

/// 25 October 2026, the last Sunday of October: 02:00 CEST happens first at
/// 00:00 UTC, so the window is 00:00 to 02:00 UTC (not 01:00 to 03:00, as
/// 02:00 CET would be). An outage from 00:10 to 01:50 UTC pages nobody.
async fn an_outage_inside_a_window_on_the_autumn_dst_day_pages_nobody(db: &TestDb) {
    let (db, clock) = (db.db(), TestClock::new(utc("2026-10-25T00:10:00Z")));
    let r = worker(db, &clock, "w1", WINDOW);
    let start = utc("2026-10-25T00:10:00Z");
    for m in 0..100 {
        let out = minute(db, &r, &clock, start + TimeDelta::minutes(m), false).await;
        if m >= 1 {
            assert!(
                out.contains("silenced, not opened: system:service:api"),
                "{out}"
            );
        }
    }
    // Back up before the window closes: nothing opens after it either.
    for m in 100..130 {
        minute(db, &r, &clock, start + TimeDelta::minutes(m), true).await;
    }
    assert!(db.list_alerts(true, 10).await.unwrap().is_empty());
    assert!(pages(db).await.is_empty());
}

/// 29 March 2026, the last Sunday of March: 02:00 does not exist in Berlin,
/// the window opens at 03:00 CEST (01:00 UTC) and closes two hours later.
/// `db` went down before it (its alert is open and has been escalated once),
/// `api` inside it; both stay down past its end.
async fn an_outage_that_outlasts_a_window_pages_when_it_ends(db: &TestDb) {
    let (db, clock) = (db.db(), TestClock::new(utc("2026-03-29T00:40:00Z")));
    let r = worker(db, &clock, "w1", WINDOW);
    // `db`: down from 00:40, opened at 00:41, level 1 paged at 00:46.
    let mut t = utc("2026-03-29T00:40:00Z");
    while t < utc("2026-03-29T01:00:00Z") {
        down(db, "db", t).await;
        minute(db, &r, &clock, t, true).await;
        t += TimeDelta::minutes(1);
    }
    let before = pages(db).await;
    let events: Vec<&str> = before.iter().map(|(_, e)| e.as_str()).collect();
    assert_eq!(events, ["opened", "escalated", "reminder"], "{before:?}");

    // Inside the window: `api` goes down at 01:30; `db` stays down. No
    // alert opens, no reminder, no escalation step (level 2 of `db` is due
    // at 01:41).
    while t < utc("2026-03-29T03:00:00Z") {
        down(db, "db", t).await;
        let out = minute(db, &r, &clock, t, t < utc("2026-03-29T01:30:00Z")).await;
        if t >= utc("2026-03-29T01:31:00Z") {
            assert!(
                out.contains("silenced, not opened: system:service:api"),
                "{out}"
            );
        }
        t += TimeDelta::minutes(1);
    }
    assert_eq!(pages(db).await, before, "nobody is paged inside the window");
    let alerts = db.list_alerts(false, 10).await.unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].escalation_level, 1);

    // 03:00 UTC: the window is over. `api` opens now, `db` escalates.
    down(db, "db", t).await;
    let out = minute(db, &r, &clock, t, false).await;
    assert!(out.contains("opened 1 (api)"), "{out}");
    let alerts = db.list_alerts(false, 10).await.unwrap();
    let api = alerts.iter().find(|a| a.subject == "api").unwrap();
    assert_eq!(api.opened_at, utc("2026-03-29T03:00:00Z"));
    let db_alert = alerts.iter().find(|a| a.subject == "db").unwrap();
    assert_eq!(db_alert.escalation_level, 2);
    let after = pages(db).await;
    assert!(after.contains(&(api.id, "opened".into())), "{after:?}");
    assert!(
        after.contains(&(db_alert.id, "escalated".into())),
        "{after:?}"
    );
}

/// A silence added with the real binary is honoured by a worker on a pool
/// opened after it (a restart) and by a second worker on the same database;
/// `silence remove` lifts it and the alert opens at the next run.
async fn an_ad_hoc_silence_holds_across_a_restart_and_on_a_second_replica(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let out = with_db(dir.path(), db)
        .args([
            "silence",
            "add",
            "--match",
            "system:service:*",
            "--for",
            "2h",
        ])
        .args(["--reason", "db upgrade", "--by", "alice"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        said.starts_with("silence 1: system:service:* silenced by alice until "),
        "{said}"
    );

    // Two workers, each with a pool of its own opened after the silence was
    // stored, as a restarted daemon and a second replica would be.
    let clock = TestClock::new(Utc::now());
    let (db1, db2) = (db.connect_again().await, db.connect_again().await);
    let (w1, w2) = (
        worker(&db1, &clock, "w1", ""),
        worker(&db2, &clock, "w2", ""),
    );
    // `api` is down, and has been for a check already: without the silence
    // every run below would open its alert.
    down(&db1, "api", clock.now()).await;
    for _ in 0..3 {
        clock.advance(TimeDelta::minutes(1));
        down(&db1, "api", clock.now()).await;
        for w in [&w1, &w2] {
            // A second apart: each run is a slot of its own.
            clock.advance(TimeDelta::seconds(1));
            let out = run(w, &clock, "system-alerts").await;
            assert!(
                out.contains("silenced, not opened: system:service:api"),
                "{out}"
            );
        }
    }
    assert!(db.db().list_alerts(true, 10).await.unwrap().is_empty());

    let list = with_db(dir.path(), db)
        .args(["silence", "list"])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(
        table.contains("system:service:*") && table.contains("db upgrade"),
        "{table}"
    );

    let out = with_db(dir.path(), db)
        .args(["silence", "remove", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    clock.advance(TimeDelta::seconds(1));
    let out = run(&w2, &clock, "system-alerts").await;
    assert!(out.contains("opened 1 (api)"), "{out}");
    assert_eq!(
        pages(db.db())
            .await
            .iter()
            .map(|(_, e)| e.as_str())
            .collect::<Vec<_>>(),
        ["opened"]
    );
}

/// `alerts list` says which active alert is silenced and why: the window's
/// name, or the silence's id and reason.
async fn alerts_list_shows_what_is_silenced_and_why(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    // The file `alerts list` reads: a window open all the time for `web`.
    std::fs::write(
        dir.path().join("schedules.toml"),
        r#"
[maintenance.always]
cron = "* * * * *"
duration = "2m"
match = ["system:service:web"]

[jobs.ok]
kind = "command"
every = "1h"
command = ["true"]
"#,
    )
    .unwrap();
    let clock = TestClock::new(Utc::now());
    let r = worker(db.db(), &clock, "w1", "");
    for _ in 0..2 {
        clock.advance(TimeDelta::minutes(1));
        down(db.db(), "api", clock.now()).await;
        down(db.db(), "web", clock.now()).await;
        run(&r, &clock, "system-alerts").await;
    }
    let out = with_db(dir.path(), db)
        .args([
            "silence",
            "add",
            "--match",
            "system:service:api",
            "--for",
            "1h",
        ])
        .args(["--reason", "rolling restart"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = with_db(dir.path(), db).arg("validate").output().unwrap();
    let summary = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        summary.contains("  maintenance always: cron * * * * * for 2m (UTC), open until ")
            && summary.contains("; match system:service:web\n"),
        "{summary}"
    );
    let out = with_db(dir.path(), db)
        .args(["alerts", "list"])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        table.lines().next().unwrap().contains("SILENCED"),
        "{table}"
    );
    let api = table.lines().find(|l| l.contains(" api ")).unwrap();
    assert!(
        api.contains("silence 1 until ") && api.contains(": rolling restart"),
        "{table}"
    );
    let web = table.lines().find(|l| l.contains(" web ")).unwrap();
    assert!(web.contains("maintenance window always until "), "{table}");

    let out = with_db(dir.path(), db)
        .args(["alerts", "list", "--json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let silenced: Vec<_> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["subject"].as_str().unwrap().to_string(),
                a["silenced"].is_string(),
            )
        })
        .collect();
    assert_eq!(
        silenced,
        [("api".to_string(), true), ("web".to_string(), true)]
    );
    let out = with_db(dir.path(), db)
        .args(["alerts", "list", "--json"])
        .env("OPS_WORKER_CONFIG", "elsewhere.toml")
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        json[1]["silenced"].is_null(),
        "without the file, no windows: {json}"
    );
}

/// The real binary: add, list (table and JSON), remove; a bad glob, a bad
/// or zero `--for`, an empty reason and an unknown id are one line on
/// stderr and exit 2, and store nothing.
async fn silence_commands_add_list_remove_and_reject_bad_input(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let ops = |args: &[&str]| with_db(dir.path(), db).args(args).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();

    for (args, error) in [
        (
            vec!["--match", "job:back?p", "--for", "2h", "--reason", "x"],
            "error: --match: invalid glob \"job:back?p\": '?' is not supported, the only wildcard is * (e.g. \"system:service:*\")",
        ),
        (
            vec!["--match", "", "--for", "2h", "--reason", "x"],
            "error: --match: invalid glob \"\": name a fingerprint such as \"system:service:api\", \"job:backup\" or \"*\"",
        ),
        (
            vec!["--match", "job:*", "--for", "2 fortnights", "--reason", "x"],
            "error: --for: invalid duration \"2 fortnights\": unknown time unit \"fortnights\", supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations) (examples: 30m, 2h, 1h 30m)",
        ),
        (
            vec!["--match", "job:*", "--for", "0s", "--reason", "x"],
            "error: --for: must be more than 0s",
        ),
        (
            vec!["--match", "job:*", "--for", "1h", "--reason", " "],
            "error: --reason: say why, such as \"db upgrade\"",
        ),
    ] {
        let out = ops(&[&["silence", "add"], &args[..]].concat());
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert_eq!(text(&out.stderr).trim_end(), error, "{args:?}");
    }
    let out = ops(&["silence", "list"]);
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), "no silences\n".into())
    );

    let out = ops(&[
        "silence",
        "add",
        "--match",
        "job:backup",
        "--for",
        "90m",
        "--reason",
        "restore test",
        "--by",
        "bob",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let now = Utc::now();
    let out = ops(&["silence", "list", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &json[0];
    assert_eq!(
        (
            s["id"].as_i64(),
            s["pattern"].as_str(),
            s["reason"].as_str(),
            s["created_by"].as_str()
        ),
        (
            Some(1),
            Some("job:backup"),
            Some("restore test"),
            Some("bob")
        )
    );
    let ends: DateTime<Utc> = s["ends_at"].as_str().unwrap().parse().unwrap();
    let left = ends - now;
    assert!(
        left > TimeDelta::minutes(89) && left <= TimeDelta::minutes(90),
        "{left}"
    );
    let table = text(&ops(&["silence", "list"]).stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("REASON"),
        "{table}"
    );
    assert!(
        lines[1].contains("job:backup")
            && lines[1].contains("active")
            && lines[1].ends_with("restore test"),
        "{table}"
    );

    let out = ops(&["silence", "remove", "1"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        text(&out.stdout),
        "silence 1: removed; its alerts open, remind and escalate again\n"
    );
    let out = ops(&["silence", "remove", "1"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(
        text(&out.stderr).trim_end(),
        "error: no silence 1 (see `ops-worker silence list --all`)"
    );
    assert!(db.db().silences(Utc::now(), true).await.unwrap().is_empty());
}

crate::backend_tests!(
    silence_commands_add_list_remove_and_reject_bad_input,
    an_outage_inside_a_window_on_the_autumn_dst_day_pages_nobody,
    an_outage_that_outlasts_a_window_pages_when_it_ends,
    an_ad_hoc_silence_holds_across_a_restart_and_on_a_second_replica,
    alerts_list_shows_what_is_silenced_and_why,
);
