//! The `alerts` kind on both backends, driven by recorded health checks and a
//! manual clock: open once, no duplicates under concurrent runs, resolve only
//! after `resolve_after` fresh healthy checks, reminders, acknowledgement.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use ops_worker::db::{Db, Finish, NewRun, RunStatus, Trigger};
use ops_worker_jobs::store::{AlertStatus, HealthCheck, HealthStatus, HealthStore};
use ops_worker_jobs::{Clock, Job, JobContext, ManualClock, Store};

use crate::fixtures::utc;
use crate::helpers::TestDb;

const T0: &str = "2026-08-01T12:00:00Z";

fn alerts_job(settings: &str) -> Arc<dyn Job> {
    let table = format!("{{ {settings} }}");
    ops_worker_jobs::build(
        "alerts",
        "system-alerts",
        toml::de::ValueDeserializer::parse(&table).unwrap(),
    )
    .unwrap()
}

async fn run(job: &Arc<dyn Job>, db: &Db, at: DateTime<Utc>) -> String {
    run_with(job, db, at, Arc::new(ops_worker_jobs::NoJobs)).await
}

async fn run_with(
    job: &Arc<dyn Job>,
    db: &Db,
    at: DateTime<Utc>,
    timeline: Arc<dyn ops_worker_jobs::Timeline>,
) -> String {
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(at));
    let mut ctx = JobContext::standalone("system-alerts", at, clock);
    ctx.store = Arc::new(db.clone()) as Arc<dyn Store>;
    ctx.timeline = timeline;
    job.run(ctx).await.unwrap().output.unwrap()
}

/// The worker's schedules, from a real schedules.toml.
fn timeline(toml: &str) -> Arc<dyn ops_worker_jobs::Timeline> {
    Arc::new(
        ops_worker::config::Config::parse(std::path::Path::new("schedules.toml"), toml, &|_| None)
            .unwrap(),
    )
}

async fn ran(db: &Db, job: &str, slot: DateTime<Utc>, status: RunStatus, error: Option<&str>) {
    let run = NewRun {
        job_name: job.into(),
        kind: "command".into(),
        scheduled_for: slot,
        trigger: Trigger::Schedule,
        attempt: 1,
        worker_id: "w".into(),
        started_at: slot,
        missed: 0,
        jitter_ms: None,
    };
    let finish = Finish {
        status,
        finished_at: slot + TimeDelta::seconds(5),
        error: error.map(str::to_string),
        output: None,
        duration_ms: 5000,
    };
    assert!(db.insert_finished_run(&run, &finish).await.unwrap());
}

async fn checks(db: &Db, service: &str, status: HealthStatus, at: DateTime<Utc>) {
    let check = HealthCheck {
        service: service.into(),
        job_name: "health".into(),
        status,
        http_status: None,
        latency_ms: None,
        error: (status == HealthStatus::Down).then(|| "cannot connect: Connection refused".into()),
        checked_at: at,
    };
    db.record_health(&[check]).await.unwrap();
}

async fn opens_once_after_fail_after_down_checks(db: &TestDb) {
    let (db, t0) = (db.db(), utc(T0));
    let job = alerts_job(r#"notify = ["ops"], fail_after = 2"#);
    checks(db, "api", HealthStatus::Down, t0).await;
    run(&job, db, t0).await;
    assert!(
        db.list_alerts(true, 10).await.unwrap().is_empty(),
        "one down check is not enough"
    );

    checks(db, "api", HealthStatus::Down, t0 + TimeDelta::seconds(60)).await;
    let out = run(&job, db, t0 + TimeDelta::seconds(61)).await;
    assert!(out.contains("opened 1 (api)"), "{out}");
    let alerts = db.list_alerts(true, 10).await.unwrap();
    assert_eq!(alerts.len(), 1);
    let a = &alerts[0];
    assert_eq!(
        (a.fingerprint.as_str(), a.status, a.subject.as_str()),
        ("system:service:api", AlertStatus::Open, "api")
    );
    assert_eq!(
        a.message,
        "Service api is unhealthy: cannot connect: Connection refused"
    );
    assert_eq!(
        db.alert_notifications(a.id).await.unwrap(),
        vec![("opened".to_string(), "ops".to_string())]
    );

    // Still down: no second alert, no second notification.
    checks(db, "api", HealthStatus::Down, t0 + TimeDelta::seconds(120)).await;
    run(&job, db, t0 + TimeDelta::seconds(121)).await;
    run(&job, db, t0 + TimeDelta::seconds(122)).await;
    assert_eq!(db.list_alerts(true, 10).await.unwrap().len(), 1);
    assert_eq!(db.alert_notifications(a.id).await.unwrap().len(), 1);
}

async fn concurrent_runs_open_one_alert(db: &TestDb) {
    let t0 = utc(T0);
    let job = alerts_job(r#"notify = ["ops"], fail_after = 1"#);
    for i in 0..5 {
        checks(db.db(), &format!("svc{i}"), HealthStatus::Down, t0).await;
    }
    // Four "processes" with pools of their own run the same alerts job at once.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (db, job) = (db.connect_again().await, job.clone());
        tasks.spawn(async move { run(&job, &db, t0).await });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let alerts = db.db().list_alerts(true, 100).await.unwrap();
    assert_eq!(alerts.len(), 5, "{alerts:#?}");
    for a in alerts {
        assert_eq!(
            db.db().alert_notifications(a.id).await.unwrap().len(),
            1,
            "notified once: {a:?}"
        );
    }
}

async fn resolves_after_resolve_after_fresh_healthy_checks(db: &TestDb) {
    let (db, t0) = (db.db(), utc(T0));
    let job = alerts_job(r#"notify = ["ops", "pager"], fail_after = 1, resolve_after = 2"#);
    checks(db, "api", HealthStatus::Down, t0).await;
    run(&job, db, t0).await;
    checks(db, "api", HealthStatus::Up, t0 + TimeDelta::seconds(60)).await;
    run(&job, db, t0 + TimeDelta::seconds(61)).await;
    assert_eq!(
        db.list_alerts(false, 10).await.unwrap().len(),
        1,
        "one good check is not enough"
    );
    checks(
        db,
        "api",
        HealthStatus::Degraded,
        t0 + TimeDelta::seconds(120),
    )
    .await;
    let out = run(&job, db, t0 + TimeDelta::seconds(121)).await;
    assert!(out.contains("resolved 1 (api)"), "{out}");
    let a = &db.list_alerts(true, 10).await.unwrap()[0];
    assert_eq!(a.status, AlertStatus::Resolved);
    assert_eq!(a.resolved_at, Some(t0 + TimeDelta::seconds(121)));
    assert!(
        a.resolution_note
            .as_deref()
            .unwrap()
            .starts_with("Service api is healthy again: 2 good checks"),
        "{a:?}"
    );
    let sent = db.alert_notifications(a.id).await.unwrap();
    let events: Vec<_> = sent.iter().map(|(e, t)| format!("{e}:{t}")).collect();
    assert_eq!(
        events,
        [
            "opened:ops",
            "opened:pager",
            "resolved:ops",
            "resolved:pager"
        ]
    );
    // Healthy to healthy: nothing more.
    run(&job, db, t0 + TimeDelta::seconds(122)).await;
    assert_eq!(db.alert_notifications(a.id).await.unwrap().len(), 4);
}

async fn stale_checks_neither_open_nor_resolve(db: &TestDb) {
    let (db, t0) = (db.db(), utc(T0));
    let job = alerts_job(r#"fail_after = 1, resolve_after = 1, stale_after = "5m""#);
    checks(db, "api", HealthStatus::Down, t0).await;
    let out = run(&job, db, t0 + TimeDelta::minutes(10)).await;
    assert!(out.contains("no fresh checks for api"), "{out}");
    assert!(db.list_alerts(true, 10).await.unwrap().is_empty());

    checks(db, "api", HealthStatus::Down, t0 + TimeDelta::minutes(10)).await;
    run(&job, db, t0 + TimeDelta::minutes(10)).await;
    assert_eq!(db.list_alerts(false, 10).await.unwrap().len(), 1);
    // The health job stops; its last (good) check grows old: the alert stays open.
    checks(db, "api", HealthStatus::Up, t0 + TimeDelta::minutes(11)).await;
    run(&job, db, t0 + TimeDelta::minutes(30)).await;
    assert_eq!(
        db.list_alerts(false, 10).await.unwrap()[0].status,
        AlertStatus::Open
    );
}

async fn watches_only_its_services(db: &TestDb) {
    let (db, t0) = (db.db(), utc(T0));
    let job = alerts_job(r#"services = ["api"], fail_after = 1"#);
    checks(db, "api", HealthStatus::Down, t0).await;
    checks(db, "other", HealthStatus::Down, t0).await;
    run(&job, db, t0).await;
    let subjects: Vec<_> = db
        .list_alerts(true, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.subject)
        .collect();
    assert_eq!(subjects, ["api"]);
}

async fn reminds_open_alerts_once_per_interval_until_acknowledged(db: &TestDb) {
    let (db, t0) = (db.db(), utc(T0));
    let job =
        alerts_job(r#"notify = ["ops"], fail_after = 1, remind_every = "1h", stale_after = "1d""#);
    checks(db, "api", HealthStatus::Down, t0).await;
    run(&job, db, t0).await;
    let id = db.list_alerts(false, 10).await.unwrap()[0].id;
    for (minutes, expected) in [(30, 1), (60, 2), (70, 2), (125, 3)] {
        run(&job, db, t0 + TimeDelta::minutes(minutes)).await;
        assert_eq!(
            db.alert_notifications(id).await.unwrap().len(),
            expected,
            "at +{minutes}m"
        );
    }
    let acked = db
        .ack_alert(id, "alice", t0 + TimeDelta::minutes(130))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (acked.status, acked.acknowledged_by.as_deref()),
        (AlertStatus::Acknowledged, Some("alice"))
    );
    assert!(
        db.ack_alert(id, "bob", t0).await.unwrap().is_none(),
        "ack is for open alerts"
    );
    run(&job, db, t0 + TimeDelta::minutes(190)).await;
    let told = db.alert_notifications(id).await.unwrap();
    assert_eq!(told.len(), 4, "no reminders once acknowledged: {told:?}");
    assert_eq!(
        told.last().unwrap(),
        &("acknowledged".to_string(), "ops".to_string()),
        "ops, who heard it open, heard it acknowledged"
    );
    // Still down while acknowledged: no second alert either.
    assert_eq!(db.list_alerts(true, 10).await.unwrap().len(), 1);
}

async fn resolving_by_id_notifies_whoever_heard_it_open(db: &TestDb) {
    let (db, t0) = (db.db(), utc(T0));
    let job = alerts_job(r#"notify = ["ops"], fail_after = 1"#);
    checks(db, "api", HealthStatus::Down, t0).await;
    run(&job, db, t0).await;
    let id = db.list_alerts(false, 10).await.unwrap()[0].id;
    let a = db
        .resolve_alert_by_id(id, "fixed by hand", t0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (a.status, a.resolution_note.as_deref()),
        (AlertStatus::Resolved, Some("fixed by hand"))
    );
    assert!(db
        .resolve_alert_by_id(id, "again", t0)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        db.alert_notifications(id).await.unwrap().last().unwrap(),
        &("resolved".to_string(), "ops".to_string())
    );
    // Still down: a new incident opens (a re-opened incident starts afresh).
    checks(db, "api", HealthStatus::Down, t0 + TimeDelta::seconds(60)).await;
    run(&job, db, t0 + TimeDelta::seconds(61)).await;
    assert_eq!(db.list_alerts(false, 10).await.unwrap().len(), 1);
    assert_eq!(db.list_alerts(true, 10).await.unwrap().len(), 2);
}

const JOBS: &str = r#"
[jobs.backup]
kind = "command"
every = "1h"
timeout = "10m"
command = ["true"]

[jobs.nightly]
kind = "command"
cron = "0 0 2 * * *"
timezone = "Europe/Berlin"
command = ["true"]

[jobs.new]
kind = "command"
every = "1m"
command = ["true"]

[jobs.system-alerts]
kind = "alerts"
every = "1m"
"#;

async fn a_job_failing_fail_after_times_opens_and_a_success_resolves(db: &TestDb) {
    let (db, t0) = (db.db(), utc(T0));
    let job = alerts_job(r#"notify = ["ops"], fail_after = 2"#);
    let tl = timeline(JOBS);
    ran(
        db,
        "backup",
        t0,
        RunStatus::Failed,
        Some("exit status 1: disk full"),
    )
    .await;
    run_with(&job, db, t0 + TimeDelta::minutes(1), tl.clone()).await;
    assert!(
        db.list_alerts(true, 10).await.unwrap().is_empty(),
        "one failure is not enough"
    );
    ran(
        db,
        "backup",
        t0 + TimeDelta::hours(1),
        RunStatus::Timeout,
        Some("timed out after 10m"),
    )
    .await;
    let out = run_with(&job, db, t0 + TimeDelta::minutes(71), tl.clone()).await;
    assert!(out.contains("jobs: opened backup"), "{out}");
    let a = &db.list_alerts(false, 10).await.unwrap()[0];
    assert_eq!(
        (a.fingerprint.as_str(), a.subject.as_str()),
        ("job:backup", "backup")
    );
    assert_eq!(
        a.message,
        "Job backup failed 2 times in a row: timed out after 10m"
    );
    ran(
        db,
        "backup",
        t0 + TimeDelta::hours(2),
        RunStatus::Success,
        None,
    )
    .await;
    let out = run_with(&job, db, t0 + TimeDelta::minutes(121), tl.clone()).await;
    assert!(out.contains("resolved backup"), "{out}");
    assert!(db.list_alerts(false, 10).await.unwrap().is_empty());
}

async fn a_missed_slot_opens_on_the_jobs_own_timeline(db: &TestDb) {
    let db = db.db();
    let job = alerts_job(r#"fail_after = 2"#);
    let tl = timeline(JOBS);
    // 02:00 in Berlin is 00:00 UTC in summer. The last run was on 1 August.
    ran(
        db,
        "nightly",
        utc("2026-08-01T00:00:00Z"),
        RunStatus::Success,
        None,
    )
    .await;
    // 2 August 00:10 UTC: the slot passed 10 minutes ago, within the default grace (10m timeout + 1m).
    run_with(&job, db, utc("2026-08-02T00:10:00Z"), tl.clone()).await;
    assert!(db.list_alerts(true, 10).await.unwrap().is_empty());
    let out = run_with(&job, db, utc("2026-08-02T00:12:00Z"), tl.clone()).await;
    assert!(out.contains("jobs: opened nightly"), "{out}");
    let a = &db.list_alerts(false, 10).await.unwrap()[0];
    assert_eq!(
        a.message,
        "Job nightly missed its slot at 2026-08-02 00:00:00 UTC: nothing ran for it within 11m"
    );
    // The job without any run yet is not expected to have run.
    assert!(db
        .list_alerts(true, 10)
        .await
        .unwrap()
        .iter()
        .all(|a| a.subject != "new"));
    // Nor does the alerts job judge itself.
    assert!(db
        .list_alerts(true, 10)
        .await
        .unwrap()
        .iter()
        .all(|a| a.subject != "system-alerts"));
    ran(
        db,
        "nightly",
        utc("2026-08-02T00:00:00Z"),
        RunStatus::Success,
        None,
    )
    .await;
    run_with(&job, db, utc("2026-08-02T00:20:00Z"), tl.clone()).await;
    assert!(
        db.list_alerts(false, 10).await.unwrap().is_empty(),
        "resolved by the late run"
    );
    // watch_jobs = false ignores jobs altogether.
    let quiet = alerts_job(r#"watch_jobs = false"#);
    run_with(&quiet, db, utc("2026-08-09T00:00:00Z"), tl).await;
    assert!(db.list_alerts(false, 10).await.unwrap().is_empty());
}

/// A jittered slot is claimed, and so recorded, only at its jittered start:
/// the grace counts from there, or every long jitter would look missed.
async fn a_jittered_slot_is_overdue_only_after_its_jitter_and_the_grace(db: &TestDb) {
    let db = db.db();
    let job = alerts_job(r#"fail_after = 2"#);
    let tl = timeline(
        "[jobs.spread]\nkind = \"command\"\ncron = \"0 0 0 * * *\"\ntimeout = \"10m\"\n\
         jitter = \"2h\"\ncommand = [\"true\"]\n",
    );
    ran(
        db,
        "spread",
        utc("2026-08-01T00:00:00Z"),
        RunStatus::Success,
        None,
    )
    .await;
    let slot = utc("2026-08-02T00:00:00Z");
    let jitter = ops_worker::schedule::jitter::delay("spread", slot, Duration::from_secs(7200));
    assert_eq!(tl.slot_jitter("spread", slot), jitter);
    let start = slot + TimeDelta::from_std(jitter).unwrap();
    // More than the grace (10m timeout + 1m) after the slot, but not after
    // its jittered start: not missed.
    let grace = TimeDelta::minutes(11);
    assert!(jitter > Duration::from_secs(2), "{jitter:?}");
    run_with(&job, db, start + grace - TimeDelta::seconds(1), tl.clone()).await;
    assert!(db.list_alerts(true, 10).await.unwrap().is_empty());
    let out = run_with(&job, db, start + grace + TimeDelta::seconds(1), tl.clone()).await;
    assert!(out.contains("jobs: opened spread"), "{out}");
    let a = &db.list_alerts(false, 10).await.unwrap()[0];
    assert_eq!(
        a.message,
        format!(
            "Job spread missed its slot at 2026-08-02 00:00:00 UTC (jittered to {}): nothing ran for it within 11m",
            start.format("%H:%M:%S%.3f")
        )
    );
}

crate::backend_tests!(
    a_jittered_slot_is_overdue_only_after_its_jitter_and_the_grace,
    a_job_failing_fail_after_times_opens_and_a_success_resolves,
    a_missed_slot_opens_on_the_jobs_own_timeline,
    opens_once_after_fail_after_down_checks,
    concurrent_runs_open_one_alert,
    resolves_after_resolve_after_fresh_healthy_checks,
    stale_checks_neither_open_nor_resolve,
    watches_only_its_services,
    reminds_open_alerts_once_per_interval_until_acknowledged,
    resolving_by_id_notifies_whoever_heard_it_open,
);
