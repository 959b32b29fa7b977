//! The channels of issue 24 on both backends, against real servers on
//! 127.0.0.1: email (the SMTP server of `smtp.rs`: STARTTLS with a
//! self-signed certificate, AUTH), PagerDuty's Events API v2 (a wiremock
//! receiver), templated webhooks, and acknowledgements told to everyone
//! who was paged.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use ops_worker::config::{Config, NotifyTarget};
use ops_worker::db::{Db, NotificationStatus};
use ops_worker::notify::Sender;
use ops_worker_jobs::store::{AlertSource, AlertStore, NewAlert, Page, Severity};
use ops_worker_jobs::{Clock, ManualClock};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::TestDb;
use crate::smtp::SmtpServer;

const JOB: &str = "[jobs.x]\nkind = \"command\"\nevery = \"1h\"\ncommand = [\"true\"]\n";
const PASSWORD: &str = "s3cret-pa55";

fn env(name: &str) -> Option<String> {
    match name {
        "SMTP_USERNAME" => Some("ops".into()),
        "SMTP_PASSWORD" => Some(PASSWORD.into()),
        "WRONG_PASSWORD" => Some("not-the-pa55word".into()),
        "PAGERDUTY_ROUTING_KEY" => Some("R0UTINGKEY0123456789".into()),
        _ => None,
    }
}

fn parse(notify: &str) -> Result<Vec<NotifyTarget>, String> {
    Config::parse(Path::new("schedules.toml"), &format!("{JOB}{notify}"), &env)
        .map(|c| c.notify)
        .map_err(|e| e.to_string())
}

fn t0() -> DateTime<Utc> {
    crate::fixtures::utc("2026-05-01T10:00:00Z")
}

fn sender(db: &Db, targets: &[NotifyTarget], clock: Arc<dyn Clock>) -> Sender {
    Sender::new(
        db.clone(),
        targets,
        ops_worker::notify::webhook::client(),
        clock,
    )
}

async fn open(db: &Db, subject: &str, notify: &[&str], at: DateTime<Utc>) -> i64 {
    let notify: Vec<String> = notify.iter().map(|s| s.to_string()).collect();
    db.open_alert(
        &NewAlert {
            fingerprint: format!("system:service:{subject}"),
            source: AlertSource::Service,
            subject: subject.into(),
            severity: Severity::Critical,
            message: format!("Service {subject} is unhealthy: cannot connect"),
            opened_at: at,
        },
        &notify,
    )
    .await
    .unwrap()
    .expect("a new alert")
    .id
}

async fn page(db: &Db, id: i64, step: i32, targets: &[&str], at: DateTime<Utc>) {
    let alert = db.get_alert(id).await.unwrap().unwrap();
    let pages: Vec<Page> = targets
        .iter()
        .map(|t| Page {
            step,
            target: t.to_string(),
            payload: alert.payload(ops_worker::db::NotificationEvent::Escalated),
        })
        .collect();
    assert!(db
        .escalate_alert(id, step - 1, step, at, &pages)
        .await
        .unwrap());
}

fn email_target(name: &str, smtp: &SmtpServer, ca: &Path, password_var: &str) -> String {
    format!(
        "[notify.{name}]\ntype = \"email\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"starttls\"\n\
         username = \"${{SMTP_USERNAME}}\"\npassword = \"${{{password_var}}}\"\n\
         from = \"ops-worker <ops-worker@example.com>\"\nto = [\"oncall@example.com\", \"Lead <lead@example.com>\"]\n\
         ca_file = \"{}\"\ntimeout = \"5s\"\n",
        smtp.port,
        ca.display()
    )
}

/// Opened, acknowledged and resolved reach the SMTP server as one message
/// each, over STARTTLS and logged in, in one thread.
async fn email_is_one_threaded_message_per_notification(db: &TestDb) {
    let smtp = SmtpServer::start("ops", PASSWORD).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("smtp-ca.pem");
    std::fs::write(&ca, &smtp.cert_pem).unwrap();
    let targets = parse(&email_target("mail", &smtp, &ca, "SMTP_PASSWORD")).unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let s = sender(db.db(), &targets, clock.clone());

    let id = open(db.db(), "api", &["mail"], t0()).await;
    assert_eq!(s.deliver_due().await.unwrap().delivered, 1);
    db.db().ack_alert(id, "alice", t0()).await.unwrap().unwrap();
    assert_eq!(s.deliver_due().await.unwrap().delivered, 1);
    db.db()
        .resolve_alert_by_id(id, "fixed the pool", t0())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.deliver_due().await.unwrap().delivered, 1);
    assert_eq!(s.deliver_due().await.unwrap().due, 0);

    let mails = smtp.mails();
    assert_eq!(mails.len(), 3, "{mails:#?}");
    let root = format!("<ops-worker.alert.{id}@example.com>");
    for (m, subject) in mails.iter().zip([
        "[critical] api opened: Service api is unhealthy: cannot connect",
        "[critical] api acknowledged by alice: Service api is unhealthy: cannot connect",
        "[critical] api resolved: Service api is unhealthy: cannot connect",
    ]) {
        assert!(m.tls, "sent after STARTTLS");
        assert_eq!(m.user.as_deref(), Some("ops"));
        assert_eq!(m.from, "<ops-worker@example.com>");
        assert_eq!(m.to, ["oncall@example.com", "lead@example.com"]);
        assert_eq!(m.header("Subject").as_deref(), Some(subject), "{}", m.data);
        assert!(m.data.contains("Content-Type: text/plain"), "{}", m.data);
        assert!(m.data.contains("Content-Type: text/html"), "{}", m.data);
    }
    assert_eq!(mails[0].header("Message-ID"), Some(root.clone()));
    assert_eq!(mails[0].header("In-Reply-To"), None);
    for m in &mails[1..] {
        assert_eq!(m.header("In-Reply-To"), Some(root.clone()));
        assert_eq!(m.header("References"), Some(root.clone()));
        assert_ne!(m.header("Message-ID"), Some(root.clone()));
    }
    assert!(mails[1].data.contains("acknowledged by alice"));
}

/// Bad credentials and a rejected recipient end as a clear `last_error`
/// (without the password) and are retried per the outbox's rules.
async fn email_failures_are_clear_and_retried(db: &TestDb) {
    let smtp = SmtpServer::start("ops", PASSWORD).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("smtp-ca.pem");
    std::fs::write(&ca, &smtp.cert_pem).unwrap();
    let wrong = parse(&email_target("mail", &smtp, &ca, "WRONG_PASSWORD")).unwrap();
    let right = parse(&email_target("mail", &smtp, &ca, "SMTP_PASSWORD")).unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let s = sender(db.db(), &wrong, clock.clone());
    open(db.db(), "api", &["mail"], t0()).await;

    let pass = s.deliver_due().await.unwrap();
    assert_eq!((pass.delivered, pass.retrying), (0, 1));
    let row = &db.db().notifications().list(1).await.unwrap()[0];
    assert_eq!(row.status, NotificationStatus::Pending);
    let error = row.last_error.clone().unwrap();
    assert!(error.contains("535"), "{error}");
    assert!(!error.contains("pa55"), "{error}");
    assert_eq!(smtp.state.lock().unwrap().refused_logins, ["ops"]);

    // The password is fixed; the recipient is refused now.
    s.set_targets(&right);
    smtp.state.lock().unwrap().reject = vec!["lead@example.com".into()];
    clock.advance(TimeDelta::seconds(5));
    assert_eq!(s.deliver_due().await.unwrap().retrying, 1);
    let row = &db.db().notifications().list(1).await.unwrap()[0];
    let error = row.last_error.clone().unwrap();
    assert!(
        error.contains("550") && error.contains("lead@example.com"),
        "{error}"
    );
    assert_eq!(row.attempts, 2);

    smtp.state.lock().unwrap().reject.clear();
    clock.advance(TimeDelta::seconds(10));
    assert_eq!(s.deliver_due().await.unwrap().delivered, 1);
    assert_eq!(smtp.mails().len(), 1, "exactly one message");
}

/// PagerDuty gets trigger, acknowledge and resolve on one `dedup_key`; an
/// escalation step naming the same target sends no second trigger.
async fn pagerduty_triggers_acknowledges_and_resolves_one_incident(db: &TestDb) {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(
            ResponseTemplate::new(202).set_body_string(
                r#"{"status":"success","message":"Event processed","dedup_key":"x"}"#,
            ),
        )
        .mount(&server)
        .await;
    let targets = parse(&format!(
        "[notify.pd]\ntype = \"pagerduty\"\nrouting_key = \"${{PAGERDUTY_ROUTING_KEY}}\"\nurl = \"{}/v2/enqueue\"\n",
        server.uri()
    ))
    .unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let s = sender(db.db(), &targets, clock.clone());
    let id = open(db.db(), "api", &["pd"], t0()).await;
    page(db.db(), id, 1, &["pd"], t0()).await;
    assert_eq!(s.deliver_due().await.unwrap().delivered, 2);
    db.db().ack_alert(id, "alice", t0()).await.unwrap().unwrap();
    db.db()
        .resolve_alert_by_id(id, "fixed", t0())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.deliver_due().await.unwrap().delivered, 2);

    let got: Vec<serde_json::Value> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r.url.path(), "/v2/enqueue");
            serde_json::from_slice(&r.body).unwrap()
        })
        .collect();
    let actions: Vec<&str> = got
        .iter()
        .map(|b| b["event_action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["trigger", "acknowledge", "resolve"], "{got:#?}");
    let key = format!("ops-worker:system:service:api:{id}");
    for b in &got {
        assert_eq!(b["routing_key"], "R0UTINGKEY0123456789");
        assert_eq!(b["dedup_key"], key);
    }
    let trigger = &got[0]["payload"];
    assert_eq!(trigger["severity"], "critical");
    assert_eq!(trigger["source"], "api");
    assert_eq!(
        trigger["summary"],
        "[critical] api opened: Service api is unhealthy: cannot connect"
    );
    assert_eq!(
        got[1].get("payload"),
        None,
        "acknowledge carries no payload"
    );
    let rows = db.db().notifications().list(10).await.unwrap();
    assert_eq!(rows.len(), 4);
    assert!(rows
        .iter()
        .all(|r| r.status == NotificationStatus::Delivered));
}

/// A template renders to the exact body, escaped for its content type.
async fn a_template_renders_the_exact_body(db: &TestDb) {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let notify = format!(
        r#"[notify.discord]
type = "webhook"
url = "{uri}/discord"
format = "template"
template = '{{"content": {{{{ text }}}}, "username": "ops-worker"}}'

[notify.ntfy]
type = "webhook"
url = "{uri}/ntfy"
format = "template"
content_type = "text/plain"
template = '''
{{{{ severity | upper }}}} {{{{ subject }}}} {{{{ event }}}}{{% if acknowledged_by %}} by {{{{ acknowledged_by }}}}{{% endif %}}: {{{{ message }}}}'''
"#,
        uri = server.uri()
    );
    let targets = parse(&notify).unwrap();
    let s = sender(db.db(), &targets, Arc::new(ManualClock::new(t0())));
    let id = open(db.db(), "api \"v2\"", &["discord", "ntfy"], t0()).await;
    db.db().ack_alert(id, "alice", t0()).await.unwrap().unwrap();
    assert_eq!(s.deliver_due().await.unwrap().delivered, 4);
    let mut got: Vec<(String, String, String)> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.url.path().to_string(),
                r.headers["content-type"].to_str().unwrap().to_string(),
                String::from_utf8(r.body.clone()).unwrap(),
            )
        })
        .collect();
    got.sort();
    let msg = r#"Service api "v2" is unhealthy: cannot connect"#;
    assert_eq!(
        got,
        [
            (
                "/discord".to_string(),
                "application/json".to_string(),
                r#"{"content": "[acknowledged] Service api \"v2\" is unhealthy: cannot connect: acknowledged by alice", "username": "ops-worker"}"#.to_string()
            ),
            (
                "/discord".to_string(),
                "application/json".to_string(),
                r#"{"content": "[critical] Service api \"v2\" is unhealthy: cannot connect", "username": "ops-worker"}"#.to_string()
            ),
            (
                "/ntfy".to_string(),
                "text/plain".to_string(),
                format!(r#"CRITICAL api "v2" acknowledged by alice: {msg}"#)
            ),
            (
                "/ntfy".to_string(),
                "text/plain".to_string(),
                format!(r#"CRITICAL api "v2" opened: {msg}"#)
            ),
        ]
    );
}

/// Acknowledging tells every target that heard the alert open or was
/// paged about it, once each, and a second acknowledgement tells nobody.
async fn an_acknowledgement_is_told_to_each_paged_target_once(db: &TestDb) {
    let id = open(db.db(), "api", &["ops", "alice"], t0()).await;
    page(db.db(), id, 1, &["alice", "bob"], t0()).await;
    let other = open(db.db(), "db", &["carol"], t0()).await;
    let acked = db.db().ack_alert(id, "alice", t0()).await.unwrap().unwrap();
    assert_eq!(acked.acknowledged_by.as_deref(), Some("alice"));
    assert!(db.db().ack_alert(id, "bob", t0()).await.unwrap().is_none());
    let told: Vec<String> = db
        .db()
        .alert_notifications(id)
        .await
        .unwrap()
        .into_iter()
        .filter(|(event, _)| event == "acknowledged")
        .map(|(_, target)| target)
        .collect();
    assert_eq!(told, ["alice", "bob", "ops"]);
    assert_eq!(db.db().alert_notifications(other).await.unwrap().len(), 1);
    let row = db
        .db()
        .notifications()
        .list(100)
        .await
        .unwrap()
        .into_iter()
        .find(|n| n.idempotency_key == format!("alert:{id}:acknowledged:bob"))
        .unwrap();
    let payload: serde_json::Value = serde_json::from_str(&row.payload).unwrap();
    assert_eq!(payload["event"], "acknowledged");
    assert_eq!(payload["acknowledged_by"], "alice");
    assert_eq!(
        payload["text"],
        "[acknowledged] Service api is unhealthy: cannot connect: acknowledged by alice"
    );
}

crate::backend_tests!(
    email_is_one_threaded_message_per_notification,
    email_failures_are_clear_and_retried,
    pagerduty_triggers_acknowledges_and_resolves_one_incident,
    a_template_renders_the_exact_body,
    an_acknowledgement_is_told_to_each_paged_target_once,
);

#[test]
fn a_broken_template_is_rejected_at_load_with_its_line() {
    let head =
        "[notify.t]\ntype = \"webhook\"\nurl = \"http://127.0.0.1/\"\nformat = \"template\"\n";
    // Lines 1-4 are the job, 5-8 the head above; the template starts on 10.
    let e = parse(&format!(
        "{head}template = '''\n{{\"a\": {{{{ text }}}},\n \"b\": {{{{ text }}\n}}'''\n"
    ))
    .unwrap_err();
    assert!(
        e.starts_with("schedules.toml:11:") && e.contains("notify \"t\": template: syntax error"),
        "{e}"
    );
    let e = parse(&format!(
        "{head}template = '''\n{{\"a\": {{{{ text }}}},\n \"b\": {{{{ sevrity }}}}}}'''\n"
    ))
    .unwrap_err();
    assert_eq!(
        e.lines().next().unwrap().split(" (known").next().unwrap(),
        "schedules.toml:11:10: notify \"t\": template: unknown variable \"sevrity\""
    );
    let e = parse(&format!(
        "{head}content_type = \"nope\"\ntemplate = \"x\"\n"
    ))
    .unwrap_err();
    assert!(
        e.contains("content_type: invalid content type \"nope\""),
        "{e}"
    );
    let e = parse(head).unwrap_err();
    assert!(e.contains("missing key \"template\""), "{e}");
}

#[test]
fn email_and_pagerduty_settings_are_checked_at_load() {
    let cases = [
        (
            "[notify.m]\ntype = \"email\"\nhost = \"smtp.example.com\"\nfrom = \"nope\"\nto = [\"a@example.com\"]\n",
            "schedules.toml:8:8: notify \"m\": from: invalid address \"nope\"",
        ),
        (
            "[notify.m]\ntype = \"email\"\nhost = \"smtp.example.com\"\nfrom = \"a@example.com\"\nto = []\n",
            "schedules.toml:9:6: notify \"m\": to: needs at least one address",
        ),
        (
            "[notify.m]\ntype = \"email\"\nhost = \"smtp.example.com\"\ntls = \"none\"\nusername = \"u\"\npassword = \"${SMTP_PASSWORD}\"\nfrom = \"a@example.com\"\nto = [\"b@example.com\"]\n",
            "schedules.toml:10:12: notify \"m\": password: credentials are never sent unencrypted",
        ),
        (
            "[notify.m]\ntype = \"email\"\nhost = \"smtp.example.com\"\nusername = \"u\"\nfrom = \"a@example.com\"\nto = [\"b@example.com\"]\n",
            "schedules.toml:8:12: notify \"m\": username: needs password too",
        ),
        (
            "[notify.p]\ntype = \"pagerduty\"\n",
            "schedules.toml:5:9: notify \"p\": missing key \"routing_key\"",
        ),
        (
            "[notify.p]\ntype = \"pagerduty\"\nrouting_key = \"k\"\nurl = \"ftp://x\"\n",
            "schedules.toml:8:7: notify \"p\": url: must be an http:// or https:// URL",
        ),
    ];
    for (notify, want) in cases {
        let e = parse(notify).unwrap_err();
        assert!(e.starts_with(want), "{e}\nwanted: {want}");
        assert!(!e.contains(PASSWORD), "{e}");
    }
    let ok = parse(
        "[notify.m]\ntype = \"email\"\nhost = \"smtp.example.com\"\nusername = \"${SMTP_USERNAME}\"\npassword = \"${SMTP_PASSWORD}\"\nfrom = \"a@example.com\"\nto = [\"b@example.com\"]\n\n[notify.p]\ntype = \"pagerduty\"\nrouting_key = \"${PAGERDUTY_ROUTING_KEY}\"\n",
    )
    .unwrap();
    let shown = format!("{ok:?}");
    assert!(
        !shown.contains(PASSWORD) && !shown.contains("R0UTINGKEY"),
        "{shown}"
    );
    match &ok[0].channel {
        ops_worker::config::Channel::Email(m) => {
            assert_eq!(
                (m.port, m.tls),
                (587, ops_worker::config::SmtpTls::StartTls)
            )
        }
        other => panic!("{other:?}"),
    }
}
