//! What the daemon's log says at its default level: each transition once
//! (a health target down and up again, an alert opened, escalated and
//! resolved, a notification delivered or given up, a run that started
//! late), not on every poll, and no job output.

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use ops_worker::db::{NewNotification, NotificationEvent, NotificationStatus, Trigger};
use ops_worker::runner::Slot;
use ops_worker_jobs::store::{HealthStatus, ReportStore};
use tracing_subscriber::layer::SubscriberExt;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::cli::{daemon, sigterm};
use crate::fixtures::{
    eventually, fast_retry_spec, runner, utc, Behaviour, Capture, TestClock, TestJob,
};
use crate::helpers::TestDb;

/// A child's stderr, read line by line as it comes.
struct Log(Arc<Mutex<String>>);

impl Log {
    fn follow(child: &mut Child) -> Log {
        let text = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let lines = text.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut text = lines.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        Log(text)
    }

    fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }

    fn count(&self, what: &str) -> usize {
        self.text().matches(what).count()
    }

    async fn shows(&self, what: &str) {
        eventually(
            Duration::from_secs(30),
            &format!("the log shows {what:?}"),
            || async { self.text().contains(what) },
        )
        .await;
    }
}

/// A health endpoint whose status the test sets.
async fn switchable(status: Arc<AtomicU16>) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(move |_: &wiremock::Request| {
            ResponseTemplate::new(status.load(Ordering::SeqCst))
        })
        .mount(&server)
        .await;
    server
}

/// How many checks of `api` with `status` are recorded.
async fn checks(db: &TestDb, status: HealthStatus) -> usize {
    let (from, to) = (
        Utc::now() - TimeDelta::hours(1),
        Utc::now() + TimeDelta::hours(1),
    );
    let all = db.db().checks_between(from, to).await.unwrap();
    all.iter().filter(|c| c.status == status).count()
}

async fn the_daemon_logs_each_transition_once(db: &TestDb) {
    let status = Arc::new(AtomicU16::new(200));
    let api = switchable(status.clone()).await;
    let chat = crate::http::answering(200, "text/plain", "ok").await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
[jobs.api-health]
kind = "health"
every = "1s"
targets = [{{ name = "api", url = "{}/health", timeout = "2s" }}]

[jobs.watch]
kind = "alerts"
every = "1s"
services = ["api"]
fail_after = 1
resolve_after = 1
watch_jobs = false
notify = ["chat"]

[jobs.escalate]
kind = "escalation"
every = "1s"
[jobs.escalate.policy]
levels = [{{ after = "1s", notify = ["chat"] }}]

[notify.chat]
type = "webhook"
url = "{}/hook"
"#,
        api.uri(),
        chat.uri()
    );
    // A notification for a target the file does not have: given up at once.
    let gone = NewNotification {
        idempotency_key: "test:gone".into(),
        target: "gone".into(),
        alert_id: None,
        event: NotificationEvent::Report,
        payload: serde_json::json!({ "text": "weekly report" }),
        created_at: Utc::now(),
    };
    assert!(db.db().notifications().enqueue(&gone).await.unwrap());

    let mut child = daemon(dir.path(), db, &config, "5s", "log-test");
    let log = Log::follow(&mut child);
    log.shows("worker started").await;
    log.shows("health target up").await;

    status.store(500, Ordering::SeqCst);
    log.shows("alert opened").await;
    log.shows("alert escalated").await;
    // Several polls of a target that stays down.
    let down = checks(db, HealthStatus::Down).await;
    eventually(
        Duration::from_secs(30),
        "three more down checks",
        || async { checks(db, HealthStatus::Down).await >= down + 3 },
    )
    .await;

    status.store(200, Ordering::SeqCst);
    log.shows("alert resolved").await;
    let up = checks(db, HealthStatus::Up).await;
    eventually(Duration::from_secs(30), "three more up checks", || async {
        checks(db, HealthStatus::Up).await >= up + 3
    })
    .await;
    eventually(
        Duration::from_secs(30),
        "every notification delivered or given up",
        || async {
            let rows = db.db().notifications().list(100).await.unwrap();
            rows.iter().all(|n| n.status != NotificationStatus::Pending)
        },
    )
    .await;
    sigterm(&child);
    assert!(child.wait().unwrap().success());
    log.shows("worker stopped").await;
    let text = log.text();

    let rows = db.db().notifications().list(100).await.unwrap();
    let delivered = rows
        .iter()
        .filter(|n| n.status == NotificationStatus::Delivered)
        .count();
    // Opened, escalated and resolved, to chat.
    assert_eq!(delivered, 3, "{rows:#?}");
    for (line, times) in [
        ("health target up", 2),
        ("health target down", 1),
        (
            "alert opened: Service api is unhealthy: unexpected HTTP status 500",
            1,
        ),
        ("alert escalated", 1),
        ("alert resolved: Service api is healthy again", 1),
        ("notification delivered", delivered),
        ("notification failed for good", 1),
    ] {
        assert_eq!(log.count(line), times, "{line:?} in:\n{text}");
    }
    let started = text.lines().find(|l| l.contains("worker started")).unwrap();
    assert!(
        started.contains("config=schedules.toml")
            && started.contains(&format!("database={}", db.db().url())),
        "{started}"
    );
    // What the jobs return stays in job_runs.
    assert!(!text.contains("1 target:"), "{text}");
    assert!(!text.contains("service watched"), "{text}");
}

/// An on-time slot whose run starts more than a minute after it (here: the
/// clock says so) is logged once, at warn; one that starts in time, and a
/// catch-up run (which the scheduler reports when it wakes), are not.
async fn a_run_that_starts_late_is_logged_once(db: &TestDb) {
    let slot = utc("2026-05-01T10:00:00Z");
    let clock = TestClock::new(slot + TimeDelta::seconds(90));
    let r = runner(db.db(), clock, "w1");
    let spec = fast_retry_spec("late", 60, TestJob::new(Behaviour::Succeed), |_| {});
    let logs = Arc::new(Mutex::new(Vec::new()));
    let subscriber = {
        let logs = logs.clone();
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || Capture(logs.clone()))
            .finish()
            .with(
                "info"
                    .parse::<tracing_subscriber::filter::Targets>()
                    .unwrap(),
            )
    };
    {
        // The runs' claims and records happen on this thread.
        let _guard = tracing::subscriber::set_default(subscriber);
        for (at, trigger) in [
            (slot, Trigger::Schedule),
            (slot + TimeDelta::seconds(60), Trigger::Schedule),
            (slot - TimeDelta::seconds(60), Trigger::CatchUp),
        ] {
            r.run(Slot::new(&spec, at, trigger)).await;
        }
    }
    let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert_eq!(text.matches("run succeeded").count(), 3, "{text}");
    assert_eq!(text.matches("run started late").count(), 1, "{text}");
    assert!(
        text.contains("run started late, more than 60s after its slot late_by=1m 30s"),
        "{text}"
    );
}

crate::backend_tests!(
    the_daemon_logs_each_transition_once,
    a_run_that_starts_late_is_logged_once,
);
