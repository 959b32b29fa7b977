//! The `escalation` kind on both backends, from a real schedules.toml (its
//! people, on-call schedules and policy) and a manual clock: every level with
//! the exact notifications, repeat and its cap, ack and resolve stopping it,
//! a re-opened incident starting over, who is on call at a handoff, under an
//! override and on a DST day, nobody on call, concurrent runs.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use ops_worker::config::Config;
use ops_worker::db::Db;
use ops_worker_jobs::store::{AlertSource, AlertStatus, AlertStore, NewAlert, Severity};
use ops_worker_jobs::{Clock, JobContext, JobError, ManualClock, Store};

use crate::fixtures::utc;
use crate::helpers::TestDb;

/// Saturday 1 August 2026, 14:00 in Berlin: alice's first day on primary.
const T0: &str = "2026-08-01T12:00:00Z";

const CONFIG: &str = r#"
[notify.alice-hook]
type = "webhook"
url = "http://127.0.0.1:9/alice"
[notify.bob-hook]
type = "webhook"
url = "http://127.0.0.1:9/bob"
[notify.carol-hook]
type = "webhook"
url = "http://127.0.0.1:9/carol"
[notify.ops]
type = "webhook"
url = "http://127.0.0.1:9/ops"

[people.alice]
notify = ["alice-hook"]
[people.bob]
notify = ["bob-hook"]
[people.carol]
notify = ["carol-hook", "ops"]

# Daily handoff at 09:00 Berlin: alice from 1 August, bob from 2 August, ...
[oncall.primary]
timezone = "Europe/Berlin"
layers = [{ members = ["alice", "bob"], rotation = "daily", handoff = "2026-08-01T09:00" }]
overrides = [{ who = "carol", from = "2026-08-03T09:00", to = "2026-08-03T10:00" }]

# bob, office hours only (UTC).
[oncall.secondary]
timezone = "UTC"
layers = [{ members = ["bob"], rotation = "weekly", handoff = "2026-07-27T00:00", restrict = { from = "09:00", to = "17:00" } }]

[jobs.escalate]
kind = "escalation"
every = "1m"
match = { severity = ["critical"], fingerprint = ["system:service:*"] }
policy = { repeat = 1, repeat_after = "30m", levels = [
  { after = "5m", notify = ["oncall:primary"] },
  { after = "15m", notify = ["oncall:secondary", "person:carol"] },
  { after = "30m", notify = ["ops"] },
] }

[jobs.escalate-backup]
kind = "escalation"
every = "1m"
match = { source = ["job"], fingerprint = ["job:backup"] }
policy = { levels = [
  { after = "1m", notify = ["oncall:secondary"] },
  { after = "10m", notify = ["person:carol"] },
] }

[jobs.escalate-lonely]
kind = "escalation"
every = "1m"
match = { fingerprint = ["job:lonely"] }
policy = { levels = [{ after = "1m", notify = ["oncall:secondary"] }] }
"#;

fn config() -> Arc<Config> {
    Arc::new(Config::parse(Path::new("schedules.toml"), CONFIG, &|_| None).unwrap())
}

/// One run of job `name` at `at`.
async fn run(
    config: &Arc<Config>,
    name: &str,
    db: &Db,
    at: DateTime<Utc>,
) -> Result<String, JobError> {
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(at));
    let mut ctx = JobContext::standalone(name, at, clock);
    ctx.store = Arc::new(db.clone()) as Arc<dyn Store>;
    ctx.directory = config.clone();
    let job = config.job(name).unwrap().job.clone();
    job.run(ctx).await.map(|o| o.output.unwrap_or_default())
}

async fn open(db: &Db, fingerprint: &str, severity: Severity, at: DateTime<Utc>) -> i64 {
    let source = if fingerprint.starts_with("job:") {
        AlertSource::Job
    } else {
        AlertSource::Service
    };
    let alert = NewAlert {
        fingerprint: fingerprint.into(),
        source,
        subject: fingerprint.rsplit(':').next().unwrap().into(),
        severity,
        message: format!("{fingerprint} is down"),
        opened_at: at,
    };
    db.open_alert(&alert, &["ops".to_string()])
        .await
        .unwrap()
        .expect("opened")
        .id
}

/// The escalation notifications of an alert, oldest first: (step, target).
async fn pages(db: &Db, alert: i64) -> Vec<(String, String)> {
    let mut rows = db.notifications().list(1000).await.unwrap();
    rows.reverse();
    rows.into_iter()
        .filter(|n| n.alert_id == Some(alert) && n.event.as_str() == "escalated")
        .map(|n| {
            let step = n.idempotency_key.split(':').nth(3).unwrap().to_string();
            (step, n.target)
        })
        .collect()
}

fn steps(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(s, t)| (s.to_string(), t.to_string()))
        .collect()
}

async fn level(db: &Db, alert: i64) -> i32 {
    db.get_alert(alert).await.unwrap().unwrap().escalation_level
}

async fn escalates_through_every_level_then_repeats_once(db: &TestDb) {
    let (db, t0, c) = (db.db(), utc(T0), config());
    let at = |m: i64| t0 + TimeDelta::minutes(m);
    let id = open(db, "system:service:api", Severity::Critical, t0).await;
    let info = open(db, "system:service:docs", Severity::Info, t0).await;

    let level_1 = [("1", "alice-hook")];
    let level_2 = [("2", "bob-hook"), ("2", "carol-hook"), ("2", "ops")];
    let level_3 = [("3", "ops")];
    let mut want: Vec<(&str, &str)> = Vec::new();
    for (minute, new) in [
        (4, &[][..]),
        (5, &level_1[..]),
        (5, &[][..]),
        (14, &[][..]),
        (15, &level_2[..]),
        (29, &[][..]),
        (30, &level_3[..]),
        // The second round: 30m after the last level.
        (64, &[][..]),
        (65, &[("4", "alice-hook")][..]),
        (
            75,
            &[("5", "bob-hook"), ("5", "carol-hook"), ("5", "ops")][..],
        ),
        (90, &[("6", "ops")][..]),
        // repeat = 1: no third round.
        (125, &[][..]),
        (600, &[][..]),
    ] {
        let out = run(&c, "escalate", db, at(minute)).await.unwrap();
        want.extend_from_slice(new);
        assert_eq!(pages(db, id).await, steps(&want), "at +{minute}m: {out}");
    }
    assert_eq!(level(db, id).await, 6);
    assert!(pages(db, info).await.is_empty(), "info is not matched");

    // What the on-call person reads.
    let rows = db.notifications().list(1000).await.unwrap();
    let bob = rows
        .iter()
        .find(|n| n.idempotency_key == format!("alert:{id}:escalated:2:bob-hook"))
        .unwrap();
    let p: serde_json::Value = serde_json::from_str(&bob.payload).unwrap();
    assert_eq!(
        p["text"],
        format!(
            "[critical] Escalation level 2 of 3 (round 1 of 2): system:service:api is down. \
             Open for 15m, not acknowledged. Paging bob. Acknowledge: ops-worker alerts ack {id}"
        )
    );
    assert_eq!(
        (
            &p["event"],
            &p["level"],
            &p["cycle"],
            &p["paging"],
            &p["alert_id"]
        ),
        (
            &serde_json::json!("escalated"),
            &serde_json::json!(2),
            &serde_json::json!(1),
            &serde_json::json!(["bob"]),
            &serde_json::json!(id)
        )
    );
    let carol = rows
        .iter()
        .find(|n| n.idempotency_key == format!("alert:{id}:escalated:5:ops"))
        .unwrap();
    let p: serde_json::Value = serde_json::from_str(&carol.payload).unwrap();
    assert!(
        p["text"]
            .as_str()
            .unwrap()
            .contains("level 2 of 3 (round 2 of 2): system:service:api is down. Open for 1h 15m, not acknowledged. Paging carol."),
        "{p}"
    );
}

async fn ack_and_resolve_stop_it_and_a_reopened_alert_starts_over(db: &TestDb) {
    let (db, t0, c) = (db.db(), utc(T0), config());
    let at = |m: i64| t0 + TimeDelta::minutes(m);
    let acked = open(db, "system:service:api", Severity::Critical, t0).await;
    let resolved = open(db, "system:service:db", Severity::Critical, t0).await;
    run(&c, "escalate", db, at(5)).await.unwrap();
    db.ack_alert(acked, "alice", at(6)).await.unwrap().unwrap();
    run(&c, "escalate", db, at(15)).await.unwrap();
    db.resolve_alert_by_id(resolved, "fixed", at(20))
        .await
        .unwrap()
        .unwrap();
    for minute in [30, 65, 200] {
        run(&c, "escalate", db, at(minute)).await.unwrap();
    }
    assert_eq!(pages(db, acked).await, steps(&[("1", "alice-hook")]));
    assert_eq!(level(db, acked).await, 1);
    assert_eq!(
        pages(db, resolved).await,
        steps(&[
            ("1", "alice-hook"),
            ("2", "bob-hook"),
            ("2", "carol-hook"),
            ("2", "ops")
        ])
    );
    // Everyone who heard it open or was paged hears it resolve, once.
    let told: BTreeSet<(String, String)> = db
        .alert_notifications(resolved)
        .await
        .unwrap()
        .into_iter()
        .filter(|(event, _)| event == "resolved")
        .collect();
    let want: BTreeSet<(String, String)> = ["alice-hook", "bob-hook", "carol-hook", "ops"]
        .iter()
        .map(|t| ("resolved".to_string(), t.to_string()))
        .collect();
    assert_eq!(told, want);

    // The service goes down again: a new incident, from level 0.
    let again = open(db, "system:service:db", Severity::Critical, at(300)).await;
    assert_ne!(again, resolved);
    run(&c, "escalate", db, at(304)).await.unwrap();
    assert_eq!(level(db, again).await, 0);
    run(&c, "escalate", db, at(305)).await.unwrap();
    assert_eq!(pages(db, again).await, steps(&[("1", "alice-hook")]));
}

async fn the_on_call_person_is_whoever_is_on_call_when_paged(db: &TestDb) {
    let (db, c) = (db.db(), config());
    // 2 August: primary hands over from alice to bob at 09:00 Berlin (07:00Z).
    let before = open(
        db,
        "system:service:a",
        Severity::Critical,
        utc("2026-08-02T06:50:00Z"),
    )
    .await;
    let after = open(
        db,
        "system:service:b",
        Severity::Critical,
        utc("2026-08-02T06:55:59Z"),
    )
    .await;
    run(&c, "escalate", db, utc("2026-08-02T06:59:59Z"))
        .await
        .unwrap();
    run(&c, "escalate", db, utc("2026-08-02T07:01:00Z"))
        .await
        .unwrap();
    assert_eq!(pages(db, before).await, steps(&[("1", "alice-hook")]));
    assert_eq!(pages(db, after).await, steps(&[("1", "bob-hook")]));
    // A late run pages whoever is on call at the run, not at the due time.
    let late = open(
        db,
        "system:service:c",
        Severity::Critical,
        utc("2026-08-02T06:50:30Z"),
    )
    .await;
    run(&c, "escalate", db, utc("2026-08-02T07:04:00Z"))
        .await
        .unwrap();
    assert_eq!(pages(db, late).await, steps(&[("1", "bob-hook")]));

    // An override beats the rotation: carol, 09:00-10:00 Berlin on 3 August.
    let overridden = open(
        db,
        "system:service:d",
        Severity::Critical,
        utc("2026-08-03T07:20:00Z"),
    )
    .await;
    run(&c, "escalate", db, utc("2026-08-03T07:25:00Z"))
        .await
        .unwrap();
    assert_eq!(
        pages(db, overridden).await,
        steps(&[("1", "carol-hook"), ("1", "ops")])
    );

    // 25 October, the day DST ends: the 09:00 handoff is 08:00 UTC, not 07:00.
    // Day 85 of the rotation is bob's, so alice is on until then.
    let dst = open(
        db,
        "system:service:e",
        Severity::Critical,
        utc("2026-10-25T07:25:00Z"),
    )
    .await;
    run(&c, "escalate", db, utc("2026-10-25T07:30:00Z"))
        .await
        .unwrap();
    assert_eq!(pages(db, dst).await, steps(&[("1", "alice-hook")]));
    db.ack_alert(dst, "alice", utc("2026-10-25T07:31:00Z"))
        .await
        .unwrap();
    let dst2 = open(
        db,
        "system:service:f",
        Severity::Critical,
        utc("2026-10-25T07:56:00Z"),
    )
    .await;
    run(&c, "escalate", db, utc("2026-10-25T08:01:00Z"))
        .await
        .unwrap();
    assert_eq!(pages(db, dst2).await, steps(&[("1", "bob-hook")]));
}

async fn nobody_on_call_goes_to_the_next_level_at_once(db: &TestDb) {
    let (db, c) = (db.db(), config());
    // 19:45 UTC: secondary (office hours) has nobody, so carol is paged at
    // once rather than at +10m.
    let t = utc("2026-08-01T19:45:00Z");
    let backup = open(db, "job:backup", Severity::Warning, t).await;
    run(&c, "escalate-backup", db, t + TimeDelta::minutes(2))
        .await
        .unwrap();
    assert_eq!(
        pages(db, backup).await,
        steps(&[("2", "carol-hook"), ("2", "ops")])
    );
    assert_eq!(level(db, backup).await, 2);
    // A policy whose only level has nobody: recorded, and the run fails.
    let lonely = open(db, "job:lonely", Severity::Warning, t).await;
    let err = run(&c, "escalate-lonely", db, t + TimeDelta::minutes(2))
        .await
        .unwrap_err();
    assert_eq!(
        err.message,
        format!("nobody could be paged for alert #{lonely}: no level due had anyone on call")
    );
    assert_eq!(level(db, lonely).await, 1);
    assert!(pages(db, lonely).await.is_empty());
    // Recorded as done: the next run neither pages nor fails again.
    run(&c, "escalate-lonely", db, t + TimeDelta::minutes(3))
        .await
        .unwrap();
}

async fn concurrent_and_repeated_runs_page_each_step_once(db: &TestDb) {
    let (db, t0, c) = (db.db(), utc(T0), config());
    let id = open(db, "system:service:api", Severity::Critical, t0).await;
    for minute in [31, 31, 70] {
        // Eight replicas (or catch-up runs) at once: one of them escalates.
        let runs: Vec<_> = (0..8)
            .map(|_| {
                let (c, db) = (c.clone(), db.clone());
                tokio::spawn(async move {
                    run(&c, "escalate", &db, t0 + TimeDelta::minutes(minute)).await
                })
            })
            .collect();
        for r in runs {
            r.await.unwrap().unwrap();
        }
    }
    // Late at +31m: every due level once; at +70m the second round's first.
    assert_eq!(
        pages(db, id).await,
        steps(&[
            ("1", "alice-hook"),
            ("2", "bob-hook"),
            ("2", "carol-hook"),
            ("2", "ops"),
            ("3", "ops"),
            ("4", "alice-hook"),
        ])
    );
    let alert = db.get_alert(id).await.unwrap().unwrap();
    assert_eq!(
        (
            alert.status,
            alert.escalation_level,
            alert.last_escalated_at
        ),
        (AlertStatus::Open, 4, Some(t0 + TimeDelta::minutes(70)))
    );
}

crate::backend_tests!(
    escalates_through_every_level_then_repeats_once,
    ack_and_resolve_stop_it_and_a_reopened_alert_starts_over,
    the_on_call_person_is_whoever_is_on_call_when_paged,
    nobody_on_call_goes_to_the_next_level_at_once,
    concurrent_and_repeated_runs_page_each_step_once,
);
