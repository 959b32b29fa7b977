//! The API's reads through real HTTP on both backends: every read route
//! with data in the database, run pagination and filters, 404s.

use chrono::{TimeDelta, Utc};
use ops_worker::db::{RunStatus, Trigger};
use ops_worker_jobs::store::{
    AlertSource, AlertStore, HealthCheck, HealthStatus, HealthStore, NewAlert, Severity,
};

use crate::api::{error_code, Api, CONFIG};
use crate::fixtures::{utc, PastRun};
use crate::helpers::TestDb;

crate::backend_tests!(
    jobs_show_schedule_last_run_next_fire_and_open_alert,
    runs_are_paged_newest_first_and_filtered,
    one_run_services_alerts_workers_oncall_and_reports,
);

fn past(job: &'static str, slot: &str, status: RunStatus) -> PastRun {
    PastRun {
        job,
        slot: utc(slot),
        trigger: Trigger::Schedule,
        late_ms: 5,
        status,
        duration_ms: 20,
        missed: 0,
        jitter_ms: None,
    }
}

async fn open_job_alert(db: &TestDb, job: &str) -> i64 {
    db.db()
        .open_alert(
            &NewAlert {
                fingerprint: format!("job:{job}"),
                source: AlertSource::Job,
                subject: job.to_string(),
                severity: Severity::Critical,
                message: format!("job {job} failed"),
                opened_at: Utc::now(),
            },
            &["hook".to_string()],
        )
        .await
        .unwrap()
        .expect("opened")
        .id
}

async fn jobs_show_schedule_last_run_next_fire_and_open_alert(db: &TestDb) {
    past("backup", "2026-11-20T01:00:00Z", RunStatus::Success)
        .record(db.db())
        .await;
    past("backup", "2026-11-21T01:00:00Z", RunStatus::Failed)
        .record(db.db())
        .await;
    let alert = open_job_alert(db, "backup").await;
    let api = Api::start(db, CONFIG).await;

    let r = api.get("/api/v1/jobs", None).await;
    assert_eq!(r.status, 200, "{r:?}");
    let jobs = r.json.as_array().unwrap();
    assert_eq!(jobs.len(), 2);
    let backup = &jobs[0];
    assert_eq!(backup["name"], "backup");
    assert_eq!(backup["kind"], "command");
    assert_eq!(backup["schedule_written"], "0 2 * * *");
    assert_eq!(backup["timezone"], "Europe/Berlin");
    assert!(
        backup["schedule_words"]
            .as_str()
            .unwrap()
            .contains("Europe/Berlin"),
        "{backup}"
    );
    assert_eq!(backup["last_status"], "failed");
    assert_eq!(backup["last_run"], "2026-11-21T01:00:00Z");
    assert_eq!(backup["last_success"], "2026-11-20T01:00:00.025Z");
    assert!(backup["next_fire"].is_string());
    assert_eq!(backup["paused"], serde_json::Value::Null);
    assert_eq!(backup["open_alert"], alert);
    assert_eq!(jobs[1]["name"], "tick");
    assert_eq!(jobs[1]["schedule_words"], "every 30s");
    assert_eq!(jobs[1]["open_alert"], serde_json::Value::Null);

    let one = api.get("/api/v1/jobs/tick", None).await;
    assert_eq!(one.status, 200);
    assert_eq!(one.json["name"], "tick");
    let missing = api.get("/api/v1/jobs/nope", None).await;
    assert_eq!(missing.status, 404);
    assert_eq!(error_code(&missing), "not_found");
}

async fn runs_are_paged_newest_first_and_filtered(db: &TestDb) {
    let start = utc("2026-11-01T00:00:00Z");
    for i in 0..7 {
        let slot = start + TimeDelta::hours(i);
        let status = if i % 2 == 0 {
            RunStatus::Success
        } else {
            RunStatus::Failed
        };
        PastRun {
            slot,
            ..past("tick", "2026-11-01T00:00:00Z", status)
        }
        .record(db.db())
        .await;
    }
    let api = Api::start(db, CONFIG).await;

    // Pages of 3: 3 + 3 + 1, newest first, no run twice.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for expected in [3, 3, 1] {
        let path = match &cursor {
            Some(c) => format!("/api/v1/jobs/tick/runs?limit=3&cursor={c}"),
            None => "/api/v1/jobs/tick/runs?limit=3".to_string(),
        };
        let r = api.get(&path, None).await;
        assert_eq!(r.status, 200, "{r:?}");
        let items = r.json["items"].as_array().unwrap();
        assert_eq!(items.len(), expected);
        seen.extend(
            items
                .iter()
                .map(|i| i["scheduled_for"].as_str().unwrap().to_string()),
        );
        cursor = r.json["next_cursor"].as_str().map(str::to_string);
    }
    assert_eq!(cursor, None);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(seen, sorted);
    assert_eq!(seen.len(), 7);
    assert_eq!(seen[0], "2026-11-01T06:00:00Z");

    let failed = api.get("/api/v1/jobs/tick/runs?status=failed", None).await;
    let items = failed.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert!(items.iter().all(|i| i["status"] == "failed"));

    let window = api
        .get(
            "/api/v1/jobs/tick/runs?since=2026-11-01T02:00:00Z&until=2026-11-01T04:00:00Z",
            None,
        )
        .await;
    let items = window.json["items"].as_array().unwrap();
    assert_eq!(
        items
            .iter()
            .map(|i| i["scheduled_for"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["2026-11-01T03:00:00Z", "2026-11-01T02:00:00Z"]
    );
    // A job with neither runs nor a table.
    assert_eq!(api.get("/api/v1/jobs/nope/runs", None).await.status, 404);
}

async fn one_run_services_alerts_workers_oncall_and_reports(db: &TestDb) {
    past("tick", "2026-11-01T00:00:00Z", RunStatus::Success)
        .record(db.db())
        .await;
    let run_id = db.db().history(Some("tick"), 1).await.unwrap()[0].id;
    let now = Utc::now();
    db.db()
        .record_health(&[HealthCheck {
            service: "api".into(),
            job_name: "health".into(),
            status: HealthStatus::Down,
            http_status: Some(503),
            latency_ms: Some(12),
            error: Some("HTTP 503".into()),
            checked_at: now,
        }])
        .await
        .unwrap();
    let alert = open_job_alert(db, "tick").await;
    let api = Api::start(db, CONFIG).await;

    let run = api.get(&format!("/api/v1/runs/{run_id}"), None).await;
    assert_eq!(run.status, 200);
    assert_eq!(run.json["job_name"], "tick");
    assert_eq!(api.get("/api/v1/runs/999999", None).await.status, 404);

    let services = api.get("/api/v1/services", None).await;
    assert_eq!(services.status, 200, "{services:?}");
    assert_eq!(services.json[0]["service"], "api");
    assert_eq!(services.json[0]["status"], "down");
    assert_eq!(services.json[0]["recent_checks"][0]["http_status"], 503);

    let alerts = api.get("/api/v1/alerts", None).await;
    assert_eq!(alerts.status, 200);
    assert_eq!(alerts.json["items"][0]["id"], alert);
    assert_eq!(
        alerts.json["items"][0]["notifications"][0]["event"],
        "opened"
    );
    assert_eq!(
        alerts.json["items"][0]["notifications"][0]["target"],
        "hook"
    );
    let resolved = api.get("/api/v1/alerts?status=resolved", None).await;
    assert_eq!(resolved.json["items"].as_array().unwrap().len(), 0);
    let one = api.get(&format!("/api/v1/alerts/{alert}"), None).await;
    assert_eq!(one.json["status"], "open");
    assert_eq!(api.get("/api/v1/alerts/424242", None).await.status, 404);

    let workers = api.get("/api/v1/workers", None).await;
    assert_eq!(workers.status, 200);
    assert!(workers.json.is_array());

    let who = api
        .get("/api/v1/oncall/primary?at=2026-11-24T10:00:00Z", None)
        .await;
    assert_eq!(who.status, 200, "{who:?}");
    assert_eq!(who.json["who"], "alice");
    assert_eq!(api.get("/api/v1/oncall/nobody", None).await.status, 404);

    let reports = api.get("/api/v1/reports", None).await;
    assert_eq!(reports.status, 200);
    assert_eq!(reports.json, serde_json::json!([]));
    assert_eq!(
        api.get("/api/v1/reports/weekly/2026-W47", None)
            .await
            .status,
        404
    );

    let audit = api.get("/api/v1/audit", None).await;
    assert_eq!(audit.status, 200);
    assert_eq!(audit.json["items"], serde_json::json!([]));
}
