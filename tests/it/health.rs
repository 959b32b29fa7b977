//! The `health` kind's storage on both backends: service_health counters and
//! `since`, the check history and its pruning, and whole runs through the
//! runner against local HTTP servers.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use ops_worker::db::{RunStatus, Trigger};
use ops_worker::runner::{Outcome, Slot};
use ops_worker_jobs::store::{HealthCheck, HealthStatus, HealthStore};
use ops_worker_jobs::{Clock, SystemClock};
use wiremock::MockServer;

use crate::fixtures::{runner, spec_from_toml, utc};
use crate::helpers::TestDb;
use crate::http::{answering, unused_port};

fn check(service: &str, status: HealthStatus, at: DateTime<Utc>) -> HealthCheck {
    HealthCheck {
        service: service.into(),
        job_name: "health".into(),
        status,
        http_status: (status != HealthStatus::Down).then_some(200),
        latency_ms: Some(12),
        error: (status == HealthStatus::Down).then(|| "cannot connect: refused".into()),
        checked_at: at,
    }
}

/// An HTTP server on 127.0.0.1 answering 200 "ok" to everything.
async fn healthy_server() -> MockServer {
    answering(200, "text/plain", "ok").await
}

async fn counters_and_since_follow_the_checks(db: &TestDb) {
    let t0 = utc("2026-05-01T00:00:00Z");
    let at = |s: i64| t0 + TimeDelta::seconds(s);
    let steps = [
        (HealthStatus::Down, 0, (1, 0), at(0)),
        (HealthStatus::Down, 60, (2, 0), at(0)),
        (HealthStatus::Up, 120, (0, 1), at(120)),
        (HealthStatus::Degraded, 180, (0, 2), at(180)),
        (HealthStatus::Degraded, 240, (0, 3), at(180)),
        (HealthStatus::Down, 300, (1, 0), at(300)),
    ];
    for (i, (status, secs, (fails, oks), since)) in steps.into_iter().enumerate() {
        let changed = db
            .db()
            .record_health(&[
                check("api", status, at(secs)),
                check("db", HealthStatus::Up, at(secs)),
            ])
            .await
            .unwrap();
        // What the kind logs: a status that changed, or a service's first.
        let mut want = Vec::new();
        if since == at(secs) {
            want.push("api");
        }
        if i == 0 {
            want.push("db");
        }
        assert_eq!(changed, want, "after a {status} check at +{secs}s");
        let rows = db.db().service_health().await.unwrap();
        assert_eq!(rows.len(), 2);
        let api = rows.iter().find(|r| r.service == "api").unwrap();
        assert_eq!(
            (
                api.status,
                api.consecutive_failures,
                api.consecutive_successes,
                api.since,
                api.checked_at
            ),
            (status, fails, oks, since, at(secs)),
            "after a {status} check at +{secs}s"
        );
    }
    let api = db
        .db()
        .service_health()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.service == "api")
        .unwrap();
    assert_eq!(api.error.as_deref(), Some("cannot connect: refused"));
    let dbs = db
        .db()
        .service_health()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.service == "db")
        .unwrap();
    assert_eq!((dbs.consecutive_successes, dbs.since), (6, t0));
}

async fn history_is_kept_and_pruned_by_age(db: &TestDb) {
    let t0 = utc("2026-05-01T00:00:00Z");
    for day in 0..5 {
        db.db()
            .record_health(&[check("api", HealthStatus::Up, t0 + TimeDelta::days(day))])
            .await
            .unwrap();
    }
    let deleted = db
        .db()
        .prune_health_checks(t0 + TimeDelta::days(3))
        .await
        .unwrap();
    assert_eq!(deleted, 3);
    assert_eq!(
        db.db()
            .prune_health_checks(t0 + TimeDelta::days(3))
            .await
            .unwrap(),
        0
    );
    // service_health is the latest state, never pruned.
    assert_eq!(db.db().service_health().await.unwrap().len(), 1);
}

async fn a_health_run_records_every_target(db: &TestDb) {
    let server = healthy_server().await;
    let ok = server.address();
    let closed = unused_port();
    let toml = format!(
        "[jobs.health]\nkind = \"health\"\nevery = \"60s\"\ntargets = [\n  {{ name = \"api\", url = \"http://{ok}/health\" }},\n  {{ name = \"gone\", url = \"http://127.0.0.1:{closed}/\", timeout = \"1s\" }},\n]\n"
    );
    let spec = spec_from_toml("health", &toml);
    let r = runner(db.db(), Arc::new(SystemClock) as Arc<dyn Clock>, "w1");
    let Outcome::Ran(report) = r
        .run(Slot::new(&spec, SystemClock.now(), Trigger::Schedule))
        .await
    else {
        panic!()
    };
    assert_eq!(
        report.status,
        RunStatus::Success,
        "a down service is a finding, not a failed run: {report:?}"
    );
    assert!(report
        .output
        .as_deref()
        .unwrap()
        .starts_with("2 targets: 1 up, 0 degraded, 1 down"));
    let rows = db.db().service_health().await.unwrap();
    let status: Vec<_> = rows
        .iter()
        .map(|r| (r.service.as_str(), r.status, r.job_name.as_str()))
        .collect();
    assert_eq!(
        status,
        vec![
            ("api", HealthStatus::Up, "health"),
            ("gone", HealthStatus::Down, "health")
        ]
    );
}

async fn a_health_run_fails_when_it_cannot_record(db: &TestDb) {
    let server = healthy_server().await;
    let ok = server.address();
    let toml = format!("[jobs.health]\nkind = \"health\"\nevery = \"60s\"\ntargets = [{{ name = \"api\", url = \"http://{ok}/\" }}]\n");
    let spec = spec_from_toml("health", &toml);
    let r = runner(db.db(), Arc::new(SystemClock) as Arc<dyn Clock>, "w1");
    let outage = db.outage().await;
    let Outcome::Ran(report) = r
        .run(Slot::new(&spec, SystemClock.now(), Trigger::Schedule))
        .await
    else {
        panic!()
    };
    outage.end().await;
    assert_eq!(report.status, RunStatus::Failed);
    assert!(
        report
            .error
            .as_deref()
            .unwrap()
            .starts_with("cannot record health checks: "),
        "{report:?}"
    );
    assert!(r.recorder().flush().await);
}

crate::backend_tests!(
    counters_and_since_follow_the_checks,
    history_is_kept_and_pruned_by_age,
    a_health_run_records_every_target,
    a_health_run_fails_when_it_cannot_record,
);
