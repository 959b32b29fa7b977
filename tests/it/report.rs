//! The `report` kind on both backends: a report over a seeded day whose every
//! figure is computed by hand here. The day is 2026-10-25 in Europe/Berlin,
//! the 25-hour day DST ends on; one down episode is carried in across the
//! midnight it starts at and one runs past the midnight it ends at.

use std::sync::Arc;

use chrono::TimeDelta;
use ops_worker::db::{NotificationEvent, RunStatus, Trigger};
use ops_worker::runner::{Outcome, Slot};
use ops_worker_jobs::store::{
    AlertSource, AlertStore, HealthCheck, HealthStatus, HealthStore, MetricSample, MetricStore,
    NewAlert, Severity,
};
use ops_worker_jobs::{Clock, ManualClock};
use serde_json::Value;

use crate::fixtures::{runner, spec_from_toml, utc, PastRun};
use crate::helpers::TestDb;

/// Berlin midnight starting 2026-10-25 (CEST, +02:00) and the one ending it
/// (CET, +01:00): 25 hours.
const START: &str = "2026-10-24T22:00:00Z";
const END: &str = "2026-10-25T23:00:00Z";

async fn seed_runs(db: &TestDb) {
    // (slot, trigger, lateness ms, status, duration ms, missed)
    let runs = [
        (
            "2026-10-24T21:59:59Z",
            Trigger::Schedule,
            1,
            RunStatus::Success,
            9,
            0,
        ), // before
        (
            "2026-10-24T22:30:00Z",
            Trigger::Schedule,
            100,
            RunStatus::Success,
            1_000,
            0,
        ),
        (
            "2026-10-25T02:30:00Z",
            Trigger::Schedule,
            300,
            RunStatus::Failed,
            3_000,
            0,
        ),
        (
            "2026-10-25T06:30:00Z",
            Trigger::Schedule,
            50,
            RunStatus::Timeout,
            600_000,
            0,
        ),
        (
            "2026-10-25T10:30:00Z",
            Trigger::Schedule,
            9_999,
            RunStatus::Skipped,
            0,
            0,
        ),
        (
            "2026-10-25T12:00:00Z",
            Trigger::Manual,
            7_000,
            RunStatus::Success,
            2_000,
            0,
        ),
        (
            "2026-10-25T14:30:00Z",
            Trigger::CatchUp,
            5_000,
            RunStatus::Success,
            4_000,
            3,
        ),
        (
            "2026-10-25T23:00:00Z",
            Trigger::Schedule,
            1,
            RunStatus::Success,
            9,
            0,
        ), // the end: after
    ];
    for (slot, trigger, late_ms, status, duration_ms, missed) in runs {
        PastRun {
            job: "backup",
            slot: utc(slot),
            trigger,
            late_ms,
            status,
            duration_ms,
            missed,
            jitter_ms: None,
        }
        .record(db.db())
        .await;
    }
}

async fn seed_checks(db: &TestDb) {
    let check = |at: &str, status: HealthStatus, latency: Option<i64>| HealthCheck {
        service: "api".into(),
        job_name: "health".into(),
        status,
        http_status: None,
        latency_ms: latency,
        error: None,
        checked_at: utc(at),
    };
    use HealthStatus::{Degraded, Down, Up};
    for c in [
        check("2026-10-24T20:00:00Z", Up, Some(5_000)), // long before: not the carry-in
        check("2026-10-24T21:00:00Z", Down, None),      // carried in: the day starts down
        check("2026-10-24T23:00:00Z", Up, Some(120)),   // episode 1: 22:00-23:00
        check("2026-10-25T12:00:00Z", Down, None),
        check("2026-10-25T12:30:00Z", Down, None),
        check("2026-10-25T13:00:00Z", Degraded, Some(900)), // episode 2: 12:00-13:00
        check("2026-10-25T22:30:00Z", Down, None),          // episode 3: 22:30-end
        check("2026-10-25T23:30:00Z", Up, Some(7_000)),     // after
    ] {
        db.db().record_health(&[c]).await.unwrap();
    }
}

async fn seed_alerts(db: &TestDb) {
    let open = |fp: &str, at: &str| NewAlert {
        fingerprint: fp.into(),
        source: AlertSource::Service,
        subject: "api".into(),
        severity: Severity::Critical,
        message: format!("alert {fp}"),
        opened_at: utc(at),
    };
    // (opened, acknowledged, resolved)
    let alerts = [
        (
            "a0",
            "2026-10-24T10:00:00Z",
            None,
            Some("2026-10-24T11:00:00Z"),
        ), // before: left out
        (
            "a1",
            "2026-10-24T21:05:00Z",
            Some("2026-10-24T22:10:00Z"),
            Some("2026-10-24T23:05:00Z"),
        ),
        (
            "a2",
            "2026-10-25T12:05:00Z",
            Some("2026-10-25T12:15:00Z"),
            Some("2026-10-25T13:05:00Z"),
        ),
        ("a3", "2026-10-25T22:35:00Z", None, None),
    ];
    for (fp, opened, acked, resolved) in alerts {
        let a = db
            .db()
            .open_alert(&open(fp, opened), &[])
            .await
            .unwrap()
            .unwrap();
        if let Some(at) = acked {
            db.db().ack_alert(a.id, "alice", utc(at)).await.unwrap();
        }
        if let Some(at) = resolved {
            db.db()
                .resolve_alert_by_id(a.id, "fixed", utc(at))
                .await
                .unwrap();
        }
    }
}

async fn seed_samples(db: &TestDb) {
    let sample = |name: &str, at: &str, value: f64| MetricSample {
        job_name: "m".into(),
        name: name.into(),
        labels: vec![],
        value,
        collected_at: utc(at),
    };
    db.db()
        .record_samples(&[
            sample("load", "2026-10-24T21:59:00Z", 50.0), // before
            sample("load", "2026-10-24T22:30:00Z", 1.0),
            sample("load", "2026-10-25T05:00:00Z", 3.0),
            sample("load", "2026-10-25T22:59:00Z", 2.0),
            sample("load", "2026-10-25T23:00:00Z", 100.0), // the end: after
            sample("other", "2026-10-25T05:00:00Z", 7.0),  // not selected
        ])
        .await
        .unwrap();
}

fn num(v: &Value, path: &str) -> f64 {
    v.pointer(path)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{path} in {v:#}"))
}

async fn a_day_report_matches_hand_computed_figures(db: &TestDb) {
    seed_runs(db).await;
    seed_checks(db).await;
    seed_alerts(db).await;
    seed_samples(db).await;
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[notify.ops]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\nformat = \"slack\"\n\n\
         [jobs.daily]\nkind = \"report\"\ncron = \"0 5 0 * * *\"\ntimezone = \"Europe/Berlin\"\n\
         metrics = [\"load\"]\nnotify = [\"ops\"]\ndir = \"{}\"\n",
        dir.path().join("reports").display()
    );
    let spec = spec_from_toml("daily", &toml);
    // 00:05 Berlin on the 26th; the run is a day late, still about the 25th.
    let slot = utc("2026-10-25T23:05:00Z");
    let clock = Arc::new(ManualClock::new(slot + TimeDelta::days(1)));
    let r = runner(db.db(), clock.clone() as Arc<dyn Clock>, "w1");
    let Outcome::Ran(report) = r.run(Slot::new(&spec, slot, Trigger::CatchUp)).await else {
        panic!()
    };
    assert_eq!(report.status, RunStatus::Success, "{report:?}");
    assert!(
        report.output.as_deref().unwrap().starts_with(
            "Report daily 2026-10-25 (Europe/Berlin): 5 runs, 60.00 % success, 1 failure, \
             1 timeout; 1 service, worst uptime 90.00 % (api); 2 alerts opened, 1 still open; \
             written to "
        ),
        "{report:?}"
    );

    let stored = db
        .db()
        .report(Some("daily"), Some("2026-10-25"))
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(
        (stored.period_start, stored.period_end),
        (utc(START), utc(END))
    );
    assert_eq!(
        stored.period_end - stored.period_start,
        TimeDelta::hours(25)
    );
    let v: Value = serde_json::from_str(&stored.json).unwrap();

    // Jobs: 5 runs (the skipped slot is not one), durations sorted
    // [1000, 2000, 3000, 4000, 600000]; lateness of schedule and catch-up
    // runs only: max(100, 300, 50, 5000).
    let jobs = v["jobs"].as_array().unwrap();
    // The report's own run (slot 23:05 UTC) is after the period.
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let backup = &jobs[0];
    assert!(backup.to_string().contains("\"backup\""), "{backup}");
    for (key, want) in [
        ("runs", 5.0),
        ("successes", 3.0),
        ("failures", 1.0),
        ("timeouts", 1.0),
        ("skipped", 1.0),
        ("missed", 3.0),
        ("success_rate_pct", 60.0),
        ("duration_ms_p50", 3_000.0),
        ("duration_ms_p95", 600_000.0),
        ("duration_ms_max", 600_000.0),
        ("lateness_ms_max", 5_000.0),
    ] {
        assert_eq!(num(backup, &format!("/{key}")), want, "{key}");
    }

    // Services: 25 h observed (a check before the start is carried in),
    // down 22:00-23:00, 12:00-13:00 and 22:30-23:00: 2.5 h, 90 % up.
    let api = &v["services"][0];
    for (key, want) in [
        ("observed_ms", 90_000_000.0),
        ("down_ms", 9_000_000.0),
        ("uptime_pct", 90.0),
        ("down_episodes", 3.0),
        ("latency_ms_max", 900.0),
        ("checks", 5.0),
    ] {
        assert_eq!(num(api, &format!("/{key}")), want, "{key}");
    }

    // Alerts: a2 and a3 opened, a1 and a2 resolved, a3 still open;
    // acknowledged after 65 and 10 minutes, resolved after 2 h and 1 h.
    for (key, want) in [
        ("opened", 2.0),
        ("resolved", 2.0),
        ("still_open", 1.0),
        ("mean_ack_secs", 2_250.0),
        ("mean_resolve_secs", 5_400.0),
    ] {
        assert_eq!(num(&v["alerts"], &format!("/{key}")), want, "{key}");
    }

    // Metrics: "load" only, three samples inside.
    let metrics = v["metrics"].as_array().unwrap();
    assert_eq!(metrics.len(), 1, "{metrics:?}");
    for (key, want) in [("samples", 3.0), ("min", 1.0), ("avg", 2.0), ("max", 3.0)] {
        assert_eq!(num(&metrics[0], &format!("/{key}")), want, "{key}");
    }

    // The Markdown, in the database and in the directory.
    assert!(stored.markdown.contains("90.00"), "{}", stored.markdown);
    let file = dir.path().join("reports/daily-2026-10-25.md");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), stored.markdown);

    // Re-running the period (as `run-job` would, later on the 26th) replaces
    // its report.
    let later = slot + TimeDelta::hours(3);
    let Outcome::Ran(again) = r.run(Slot::new(&spec, later, Trigger::Manual)).await else {
        panic!()
    };
    assert_eq!(again.status, RunStatus::Success, "{again:?}");
    assert_eq!(db.db().report_count("daily").await.unwrap(), 1);

    // Announced once, on the first run, with the summary as the text.
    let notes = db.db().notifications().list(100).await.unwrap();
    assert_eq!(notes.len(), 1, "{notes:?}");
    let note = &notes[0];
    assert_eq!(
        (
            note.idempotency_key.as_str(),
            note.target.as_str(),
            note.event
        ),
        (
            "report:daily:2026-10-25:ops",
            "ops",
            NotificationEvent::Report
        )
    );
    let payload: Value = serde_json::from_str(&note.payload).unwrap();
    assert_eq!(payload["period"], "2026-10-25");
    assert_eq!(
        payload["text"],
        "Report daily 2026-10-25 (Europe/Berlin): 5 runs, 60.00 % success, 1 failure, \
         1 timeout; 1 service, worst uptime 90.00 % (api); 2 alerts opened, 1 still open"
    );

    // And the CLI prints it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ops-worker"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DATABASE_URL", db.url_string())
        .current_dir(dir.path())
        .args([
            "report",
            "show",
            "--name",
            "daily",
            "--period",
            "2026-10-25",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), stored.markdown);
    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_ops-worker"))
        .env_clear()
        .env("DATABASE_URL", db.url_string())
        .current_dir(dir.path())
        .args(["report", "show", "--period", "1999-01-01"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2), "{missing:?}");
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no report for 1999-01-01"));
}

crate::backend_tests!(a_day_report_matches_hand_computed_figures);
