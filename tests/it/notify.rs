//! The notification outbox and its sender on both backends, against real
//! HTTP receivers on 127.0.0.1: delivery with the right headers and body,
//! receivers that are down and come back, backoff and the retry horizon
//! (on a manual clock), restarts and crashes, two senders on one database,
//! and secrets kept out of logs and errors. Ends with the real daemon.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use ops_worker::config::{Config, NotifyTarget};
use ops_worker::db::{Db, NewNotification, Notification, NotificationEvent, NotificationStatus};
use ops_worker::notify::{Sender, CLAIM_LEASE, RETRY_HORIZON};
use ops_worker_jobs::{Clock, ManualClock, SystemClock};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::layer::SubscriberExt;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, MockServerBuilder, Request, ResponseTemplate};

use crate::fixtures::{eventually, utc, Capture};
use crate::helpers::TestDb;
use crate::http::unused_port;

// ---------------------------------------------------------------- receiver

/// One request a receiver got, and what it answered (`None`: it never did).
#[derive(Debug, Clone)]
struct Received {
    path: String,
    /// Names lowercased.
    headers: HashMap<String, String>,
    body: Vec<u8>,
    answered: Option<u16>,
}

impl Received {
    fn key(&self) -> &str {
        &self.headers["idempotency-key"]
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Default)]
struct ReceiverState {
    requests: Vec<Received>,
    /// Statuses for the next requests; 200 once it runs out.
    script: VecDeque<u16>,
    /// Never answer the first request (a receiver that hangs).
    hold_first: bool,
    /// Echo the request line and headers in error bodies, as some servers do.
    echo: bool,
}

/// A webhook receiver: a wiremock server on 127.0.0.1 that records every
/// request and answers as its state says.
struct Receiver {
    server: MockServer,
    state: Arc<Mutex<ReceiverState>>,
}

impl Receiver {
    async fn start() -> Receiver {
        Receiver::started(MockServer::builder()).await
    }

    async fn start_on(port: u16) -> Receiver {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        Receiver::started(MockServer::builder().listener(listener)).await
    }

    async fn started(builder: MockServerBuilder) -> Receiver {
        let server = builder.start().await;
        let state = Arc::new(Mutex::new(ReceiverState::default()));
        let shared = state.clone();
        Mock::given(any())
            .respond_with(move |request: &Request| answer(request, &shared))
            .mount(&server)
            .await;
        Receiver { server, state }
    }

    fn script(&self, statuses: &[u16]) -> &Self {
        self.state.lock().unwrap().script.extend(statuses);
        self
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.uri())
    }

    fn requests(&self) -> Vec<Received> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The idempotency keys of the requests it accepted (answered 2xx).
    fn accepted(&self) -> Vec<String> {
        self.requests()
            .iter()
            .filter(|r| r.answered.is_some_and(|s| (200..300).contains(&s)))
            .map(|r| r.key().to_string())
            .collect()
    }
}

/// Records `request` and says how to answer it.
fn answer(request: &Request, state: &Mutex<ReceiverState>) -> ResponseTemplate {
    let url = &request.url;
    let path = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_string(),
    };
    // Names come lowercased.
    let headers: HashMap<String, String> = request
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut s = state.lock().unwrap();
    let hold = s.hold_first && s.requests.is_empty();
    let status = (!hold).then(|| s.script.pop_front().unwrap_or(200));
    let text = match status {
        Some(status) if s.echo && status >= 400 => format!(
            "rejected {} {path} HTTP/1.1 with authorization {}",
            request.method,
            headers.get("authorization").map_or("", String::as_str)
        ),
        _ => String::new(),
    };
    s.requests.push(Received {
        path,
        headers,
        body: request.body.clone(),
        answered: status,
    });
    match status {
        Some(status) => ResponseTemplate::new(status).set_body_string(text),
        // Longer than any test: it never answers.
        None => ResponseTemplate::new(200).set_delay(Duration::from_secs(3600)),
    }
}

// ---------------------------------------------------------------- fixtures

const JOB: &str = "[jobs.x]\nkind = \"command\"\nevery = \"1h\"\ncommand = [\"true\"]\n";

/// Targets from a `[notify.*]` snippet, through the real parser.
fn targets(notify: &str) -> Vec<NotifyTarget> {
    Config::parse(
        Path::new("schedules.toml"),
        &format!("{JOB}{notify}"),
        &|_| None,
    )
    .unwrap()
    .notify
}

/// A `[notify.NAME]` table; `extra` adds keys (timeout 2 s unless it sets one).
fn webhook(name: &str, url: &str, extra: &str) -> String {
    let timeout = if extra.contains("timeout") {
        ""
    } else {
        "timeout = \"2s\"\n"
    };
    format!("[notify.{name}]\ntype = \"webhook\"\nurl = \"{url}\"\n{timeout}{extra}\n")
}

fn payload(alert_id: i64, event: NotificationEvent) -> serde_json::Value {
    serde_json::json!({
        "event": event.as_str(),
        "alert_id": alert_id,
        "fingerprint": "system:service:api",
        "source": "service",
        "subject": "api",
        "severity": "critical",
        "status": "open",
        "message": "api is down: cannot connect",
        "opened_at": "2026-05-01T10:00:00Z",
        "text": format!("[critical] api is down (alert {alert_id})"),
    })
}

fn note(alert_id: i64, target: &str, at: DateTime<Utc>) -> NewNotification {
    NewNotification {
        idempotency_key: format!("alert:{alert_id}:opened:{target}"),
        target: target.to_string(),
        alert_id: Some(alert_id),
        event: NotificationEvent::Opened,
        payload: payload(alert_id, NotificationEvent::Opened),
        created_at: at,
    }
}

async fn enqueue(db: &Db, n: &NewNotification) {
    assert!(db.notifications().enqueue(n).await.unwrap(), "{n:?}");
}

async fn all(db: &Db) -> Vec<Notification> {
    let mut rows = db.notifications().list(10_000).await.unwrap();
    rows.reverse();
    rows
}

async fn row(db: &Db, key: &str) -> Notification {
    all(db)
        .await
        .into_iter()
        .find(|n| n.idempotency_key == key)
        .unwrap_or_else(|| panic!("no notification {key}"))
}

fn sender(db: &Db, targets: &[NotifyTarget], clock: Arc<dyn Clock>) -> Sender {
    Sender::new(
        db.clone(),
        targets,
        ops_worker::notify::webhook::client(),
        clock,
    )
}

fn t0() -> DateTime<Utc> {
    utc("2026-05-01T10:00:00.123456Z")
}

fn secs(s: i64) -> TimeDelta {
    TimeDelta::seconds(s)
}

// ---------------------------------------------------------------- storage

async fn enqueue_is_once_per_key_and_claims_have_one_winner(db: &TestDb) {
    let outbox = db.db().notifications();
    let n = note(1, "hook", t0());
    assert!(outbox.enqueue(&n).await.unwrap());
    let mut again = n.clone();
    again.payload = serde_json::json!({ "other": true });
    assert!(!outbox.enqueue(&again).await.unwrap(), "same key: ignored");
    let rows = all(db.db()).await;
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(
        (r.status, r.attempts, r.next_attempt_at, r.created_at),
        (NotificationStatus::Pending, 0, t0(), t0())
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&r.payload).unwrap(),
        n.payload
    );
    assert!(outbox.due(t0() - secs(1), 10).await.unwrap().is_empty());
    let due = outbox.due(t0(), 10).await.unwrap();
    assert_eq!(due, rows);

    // 16 claimers on two pools (two "processes"): exactly one wins.
    let other = db.connect_again().await;
    let claims = futures::future::join_all((0..16).map(|i| {
        let db = if i % 2 == 0 {
            db.db().clone()
        } else {
            other.clone()
        };
        let row = due[0].clone();
        async move {
            db.notifications()
                .claim(&row, t0(), Duration::from_secs(60))
                .await
                .unwrap()
        }
    }))
    .await;
    let won: Vec<_> = claims.into_iter().flatten().collect();
    assert_eq!(won.len(), 1, "{won:?}");
    assert_eq!(won[0].attempt, 1);
    let r = row(db.db(), &n.idempotency_key).await;
    assert_eq!((r.attempts, r.next_attempt_at), (1, t0() + secs(60)));
    assert!(
        outbox.due(t0() + secs(59), 10).await.unwrap().is_empty(),
        "claimed rows are not due during the lease"
    );

    // A claim that ran out and was taken again cannot record anything.
    let stale = won[0];
    let due = outbox.due(t0() + secs(60), 10).await.unwrap();
    let fresh = outbox
        .claim(&due[0], t0() + secs(60), Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fresh.attempt, 2);
    assert!(!outbox.mark_delivered(&stale, t0()).await.unwrap());
    assert!(!outbox.mark_retry(&stale, t0(), "x").await.unwrap());
    assert!(!outbox.mark_failed(&stale, "x").await.unwrap());
    assert!(outbox
        .mark_retry(&fresh, t0() + secs(90), "HTTP status 503")
        .await
        .unwrap());
    let r = row(db.db(), &n.idempotency_key).await;
    assert_eq!(
        (
            r.status,
            r.attempts,
            r.next_attempt_at,
            r.last_error.as_deref()
        ),
        (
            NotificationStatus::Pending,
            2,
            t0() + secs(90),
            Some("HTTP status 503")
        )
    );
    let due = outbox.due(t0() + secs(90), 10).await.unwrap();
    let third = outbox
        .claim(&due[0], t0() + secs(90), Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert!(outbox
        .mark_delivered(&third, t0() + secs(91))
        .await
        .unwrap());
    assert!(
        !outbox
            .mark_delivered(&third, t0() + secs(92))
            .await
            .unwrap(),
        "once"
    );
    let r = row(db.db(), &n.idempotency_key).await;
    assert_eq!(
        (r.status, r.attempts, r.delivered_at, r.last_error),
        (
            NotificationStatus::Delivered,
            3,
            Some(t0() + secs(91)),
            None
        )
    );
    assert!(outbox.due(t0() + secs(3600), 10).await.unwrap().is_empty());
}

// ---------------------------------------------------------------- delivery

async fn delivers_once_with_the_right_headers_and_body(db: &TestDb) {
    let rx = Receiver::start().await;
    let targets = targets(&format!(
        "{}{}",
        webhook(
            "ops-webhook",
            &rx.url("/hooks/ops"),
            "headers = { Authorization = \"Bearer abc\", X-Team = \"ops\" }"
        ),
        webhook("chat", &rx.url("/hooks/chat"), "format = \"slack\""),
    ));
    let clock = Arc::new(ManualClock::new(t0()));
    let s = sender(db.db(), &targets, clock.clone());
    let json = note(1, "ops-webhook", t0());
    let slack = note(1, "chat", t0());
    enqueue(db.db(), &json).await;
    enqueue(db.db(), &slack).await;

    let pass = s.deliver_due().await.unwrap();
    assert_eq!((pass.due, pass.delivered), (2, 2), "{pass:?}");
    let got = rx.requests();
    assert_eq!(got.len(), 2, "{got:#?}");
    let by_path = |p: &str| got.iter().find(|r| r.path == p).unwrap().clone();

    let j = by_path("/hooks/ops");
    assert_eq!(j.headers["content-type"], "application/json");
    assert_eq!(j.headers["idempotency-key"], "alert:1:opened:ops-webhook");
    assert_eq!(j.headers["authorization"], "Bearer abc");
    assert_eq!(j.headers["x-team"], "ops");
    assert_eq!(j.json(), json.payload, "json: the payload as it is");

    let c = by_path("/hooks/chat");
    assert_eq!(c.headers["content-type"], "application/json");
    assert_eq!(c.headers["idempotency-key"], "alert:1:opened:chat");
    assert!(!c.headers.contains_key("authorization"));
    assert_eq!(
        c.json(),
        serde_json::json!({ "text": "[critical] api is down (alert 1)" })
    );

    for r in all(db.db()).await {
        assert_eq!(r.status, NotificationStatus::Delivered, "{r:?}");
        assert_eq!(r.attempts, 1);
        assert_eq!(r.delivered_at, Some(t0()));
        assert_eq!(r.last_error, None);
    }
    // Nothing is sent again, now or later.
    clock.advance(secs(3 * 86_400));
    assert_eq!(s.deliver_due().await.unwrap().due, 0);
    assert_eq!(rx.requests().len(), 2);
}

async fn rows_that_cannot_be_sent_fail_at_once(db: &TestDb) {
    let rx = Receiver::start().await;
    let targets = targets(&webhook("chat", &rx.url("/"), "format = \"slack\""));
    let s = sender(db.db(), &targets, Arc::new(ManualClock::new(t0())));
    let gone = note(1, "removed-target", t0());
    let mut no_text = note(2, "chat", t0());
    no_text.payload = serde_json::json!({ "event": "opened" });
    let fine = note(3, "chat", t0());
    for n in [&gone, &no_text, &fine] {
        enqueue(db.db(), n).await;
    }
    let pass = s.deliver_due().await.unwrap();
    assert_eq!((pass.delivered, pass.failed), (1, 2), "{pass:?}");
    let r = row(db.db(), &gone.idempotency_key).await;
    assert_eq!(r.status, NotificationStatus::Failed);
    assert_eq!(
        r.last_error.as_deref(),
        Some("no target \"removed-target\" in the schedule file (add [notify.removed-target])")
    );
    let r = row(db.db(), &no_text.idempotency_key).await;
    assert_eq!(r.status, NotificationStatus::Failed);
    assert_eq!(
        r.last_error.as_deref(),
        Some("the payload has no \"text\" string for the slack format")
    );
    assert_eq!(
        rx.accepted(),
        std::slice::from_ref(&fine.idempotency_key),
        "a permanent failure does not hold back the next row"
    );
}

async fn a_receiver_that_is_down_gets_it_when_it_comes_back(db: &TestDb) {
    let port = unused_port();
    let targets = targets(&webhook(
        "hook",
        &format!("http://127.0.0.1:{port}/hook"),
        "",
    ));
    let clock = Arc::new(ManualClock::new(t0()));
    let s = sender(db.db(), &targets, clock.clone());
    let n = note(1, "hook", t0());
    enqueue(db.db(), &n).await;
    let key = n.idempotency_key.as_str();

    // Attempt 1: refused. Retry in 5 s.
    assert_eq!(s.deliver_due().await.unwrap().retrying, 1);
    let r = row(db.db(), key).await;
    assert_eq!((r.status, r.attempts), (NotificationStatus::Pending, 1));
    assert_eq!(r.next_attempt_at, t0() + secs(5));
    let error = r.last_error.unwrap();
    assert!(error.starts_with("cannot connect"), "{error}");
    // The backoff is respected: nothing is due before it ends.
    assert_eq!(s.deliver_due().await.unwrap().due, 0);
    clock.advance(secs(4));
    assert_eq!(s.deliver_due().await.unwrap().due, 0);

    // Attempt 2 (t0+5s): still refused. Retry in 10 s.
    clock.advance(secs(1));
    assert_eq!(s.deliver_due().await.unwrap().retrying, 1);
    let r = row(db.db(), key).await;
    assert_eq!((r.attempts, r.next_attempt_at), (2, t0() + secs(15)));

    // The receiver comes back on that port, first answering 503.
    let rx = Receiver::start_on(port).await;
    rx.script(&[503]);
    clock.advance(secs(9));
    assert_eq!(s.deliver_due().await.unwrap().due, 0);
    assert!(rx.requests().is_empty());
    clock.advance(secs(1));
    assert_eq!(s.deliver_due().await.unwrap().retrying, 1);
    let r = row(db.db(), key).await;
    assert_eq!((r.attempts, r.next_attempt_at), (3, t0() + secs(35)));
    assert_eq!(
        r.last_error.as_deref(),
        Some("HTTP status 503 Service Unavailable")
    );

    // Attempt 4 (t0+35s): delivered.
    clock.advance(secs(19));
    assert_eq!(s.deliver_due().await.unwrap().due, 0);
    clock.advance(secs(1));
    assert_eq!(s.deliver_due().await.unwrap().delivered, 1);
    let r = row(db.db(), key).await;
    assert_eq!(
        (r.status, r.attempts, r.delivered_at, r.last_error),
        (
            NotificationStatus::Delivered,
            4,
            Some(t0() + secs(35)),
            None
        )
    );
    let got = rx.requests();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|r| r.key() == key), "the same key each time");
    assert_eq!(rx.accepted(), [key]);
}

async fn the_retry_horizon_turns_a_row_failed(db: &TestDb) {
    let port = unused_port();
    let targets = targets(&webhook("hook", &format!("http://127.0.0.1:{port}/"), ""));
    let clock = Arc::new(ManualClock::new(t0()));
    let s = sender(db.db(), &targets, clock.clone());
    let n = note(1, "hook", t0());
    enqueue(db.db(), &n).await;
    let horizon = t0() + TimeDelta::from_std(RETRY_HORIZON).unwrap();
    let mut waits = Vec::new();
    let last = loop {
        s.deliver_due().await.unwrap();
        let r = row(db.db(), &n.idempotency_key).await;
        if r.status != NotificationStatus::Pending {
            break r;
        }
        assert!(r.next_attempt_at <= horizon, "{r:?}");
        waits.push((r.next_attempt_at - clock.now()).num_seconds());
        clock.set(r.next_attempt_at);
        assert!(waits.len() < 1000, "never gave up");
    };
    assert_eq!(
        waits[..9],
        [5, 10, 20, 40, 80, 160, 320, 600, 600],
        "5 s doubling, at most 10 min"
    );
    assert!(waits.iter().all(|w| *w <= 600), "{waits:?}");
    // The last retry is at the horizon itself, and fails for good.
    assert_eq!(clock.now(), horizon);
    assert_eq!(last.status, NotificationStatus::Failed);
    // 0, 5, 15, ..., 315, 635, then every 600 s up to 85,835 s, then 86,400 s.
    assert_eq!(last.attempts, 151);
    let error = last.last_error.unwrap();
    assert!(
        error.starts_with("gave up after 151 attempts (24h retry horizon): cannot connect"),
        "{error}"
    );
    clock.advance(secs(86_400));
    assert_eq!(s.deliver_due().await.unwrap().due, 0);
}

// ---------------------------------------------------------------- restarts

async fn a_restart_neither_drops_nor_repeats(db: &TestDb) {
    let rx = Receiver::start().await;
    rx.script(&[503]);
    let targets = targets(&webhook("hook", &rx.url("/hook"), ""));
    let clock = Arc::new(ManualClock::new(t0()));
    let keys: Vec<String> = (1..=6)
        .map(|i| note(i, "hook", t0()).idempotency_key)
        .collect();
    for i in 1..=6 {
        enqueue(db.db(), &note(i, "hook", t0())).await;
    }

    // The first process: the loop delivers what it can; the first row is
    // refused once and waits 5 s.
    let first = Arc::new(sender(db.db(), &targets, clock.clone()));
    let stop = CancellationToken::new();
    let running = {
        let (s, stop) = (first.clone(), stop.clone());
        tokio::spawn(async move { s.run(stop).await })
    };
    eventually(Duration::from_secs(10), "the first row retried", || async {
        row(db.db(), &keys[0]).await.attempts == 1
    })
    .await;
    // The rest of that target's rows go in the next pass. (On a manual
    // clock, tests wake the loop rather than race its next deadline.)
    first.waker().wake();
    eventually(Duration::from_secs(10), "five delivered", || async {
        rx.accepted().len() == 5
    })
    .await;
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the sender stops promptly")
        .unwrap();
    let r = row(db.db(), &keys[0]).await;
    assert_eq!(
        r.status,
        NotificationStatus::Pending,
        "kept for the next start"
    );

    // The next process, on its own pool, picks it up when it is due.
    let db2 = db.connect_again().await;
    let second = Arc::new(sender(&db2, &targets, clock.clone()));
    let stop = CancellationToken::new();
    let running = {
        let (s, stop) = (second.clone(), stop.clone());
        tokio::spawn(async move { s.run(stop).await })
    };
    clock.advance(secs(5));
    second.waker().wake();
    eventually(Duration::from_secs(10), "all six delivered", || async {
        rx.accepted().len() == 6
    })
    .await;
    stop.cancel();
    running.await.unwrap();

    let mut accepted = rx.accepted();
    accepted.sort();
    let mut want = keys.clone();
    want.sort();
    assert_eq!(accepted, want, "each exactly once");
    for r in all(db.db()).await {
        assert_eq!(r.status, NotificationStatus::Delivered, "{r:?}");
    }
    assert_eq!(rx.requests().len(), 7, "six deliveries and one 503");
}

async fn a_crash_mid_send_resends_after_the_lease_with_the_same_key(db: &TestDb) {
    let rx = Receiver::start().await;
    rx.state.lock().unwrap().hold_first = true;
    let targets = targets(&webhook("hook", &rx.url("/hook"), "timeout = \"30s\""));
    let clock = Arc::new(ManualClock::new(t0()));
    for i in 1..=3 {
        enqueue(db.db(), &note(i, "hook", t0())).await;
    }
    // The first process hangs on its first POST and dies there.
    let crashed = {
        let s = sender(db.db(), &targets, clock.clone());
        tokio::spawn(async move { s.deliver_due().await })
    };
    eventually(Duration::from_secs(10), "the first POST", || async {
        rx.requests().len() == 1
    })
    .await;
    crashed.abort();
    let _ = crashed.await;
    let held = rx.requests()[0].key().to_string();

    // The next process delivers the rest at once; the held row is leased.
    let db2 = db.connect_again().await;
    let s = sender(&db2, &targets, clock.clone());
    let pass = s.deliver_due().await.unwrap();
    assert_eq!(pass.delivered, 2, "{pass:?}");
    let r = row(db.db(), &held).await;
    assert_eq!((r.status, r.attempts), (NotificationStatus::Pending, 1));
    let lease = TimeDelta::from_std(CLAIM_LEASE + Duration::from_secs(30)).unwrap();
    assert_eq!(r.next_attempt_at, t0() + lease, "lease: timeout + 60 s");

    // When the lease ends, it is sent again, under the same Idempotency-Key
    // so the receiver can tell it already has it.
    clock.advance(lease - secs(1));
    assert_eq!(s.deliver_due().await.unwrap().due, 0);
    clock.advance(secs(1));
    assert_eq!(s.deliver_due().await.unwrap().delivered, 1);
    let r = row(db.db(), &held).await;
    assert_eq!((r.status, r.attempts), (NotificationStatus::Delivered, 2));
    let got: Vec<_> = rx.requests().iter().map(|r| r.key().to_string()).collect();
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(got.iter().filter(|k| **k == held).count(), 2);
    assert_eq!(rx.accepted().len(), 3);
}

async fn two_senders_never_deliver_the_same_row_twice(db: &TestDb) {
    let rx = Receiver::start().await;
    let names = ["a", "b", "c", "d"];
    let targets = targets(
        &names
            .iter()
            .map(|n| webhook(n, &rx.url(&format!("/{n}")), ""))
            .collect::<String>(),
    );
    let now = Utc::now();
    let mut keys = Vec::new();
    for i in 0..40 {
        let n = note(i, names[i as usize % 4], now);
        keys.push(n.idempotency_key.clone());
        enqueue(db.db(), &n).await;
    }
    let db2 = db.connect_again().await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let senders = [
        Arc::new(sender(db.db(), &targets, clock.clone())),
        Arc::new(sender(&db2, &targets, clock.clone())),
    ];
    let passes = futures::future::join_all(senders.iter().map(|s| {
        let s = s.clone();
        tokio::spawn(async move {
            let mut delivered = 0;
            for _ in 0..20 {
                let p = s.deliver_due().await.unwrap();
                delivered += p.delivered;
                if p.due == 0 {
                    break;
                }
            }
            delivered
        })
    }))
    .await;
    let delivered: Vec<usize> = passes.into_iter().map(Result::unwrap).collect();
    assert_eq!(delivered.iter().sum::<usize>(), 40, "{delivered:?}");
    let mut accepted = rx.accepted();
    assert_eq!(accepted.len(), 40, "no row twice");
    accepted.sort();
    keys.sort();
    assert_eq!(accepted, keys);
    assert!(all(db.db())
        .await
        .iter()
        .all(|r| r.status == NotificationStatus::Delivered && r.attempts == 1));
}

// ---------------------------------------------------------------- secrets

async fn urls_and_tokens_never_appear_in_logs_or_errors(db: &TestDb) {
    const SECRET: &str = "s3cr3t-path-t0ken";
    const TOKEN: &str = "h3ader-t0ken";
    let echo = Receiver::start().await;
    {
        let mut s = echo.state.lock().unwrap();
        s.echo = true;
        s.script.extend([500]);
    }
    let hang = Receiver::start().await;
    hang.state.lock().unwrap().hold_first = true;
    let auth = format!("headers = {{ Authorization = \"Bearer {TOKEN}\" }}");
    let text = [
        webhook(
            "refused",
            &format!("http://127.0.0.1:{}/hooks/{SECRET}", unused_port()),
            &auth,
        ),
        webhook(
            "echo",
            &echo.url(&format!("/hooks/{SECRET}?token={SECRET}")),
            &auth,
        ),
        webhook(
            "hang",
            &hang.url(&format!("/hooks/{SECRET}")),
            &format!("timeout = \"300ms\"\n{auth}"),
        ),
        webhook(
            "dns",
            &format!("http://user:{SECRET}@{SECRET}.invalid/hooks/{SECRET}"),
            &auth,
        ),
    ]
    .concat();
    let targets = targets(&text);
    assert_eq!(targets.len(), 4);
    let s = sender(db.db(), &targets, Arc::new(ManualClock::new(t0())));
    for (i, t) in ["refused", "echo", "hang", "dns"].iter().enumerate() {
        enqueue(db.db(), &note(i as i64, t, t0())).await;
    }

    let logs = Arc::new(Mutex::new(Vec::new()));
    let subscriber = {
        let logs = logs.clone();
        // Everything of ours; the HTTP libraries at the daemon's default
        // level (at debug and trace they log target hosts, see
        // docs/notifications.md).
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Capture(logs.clone()))
            .finish()
            .with(
                "info,ops_worker=trace"
                    .parse::<tracing_subscriber::filter::Targets>()
                    .unwrap(),
            )
    };
    let pass = {
        // The pass runs on this thread, so a thread-local subscriber sees it.
        let _guard = tracing::subscriber::set_default(subscriber);
        s.deliver_due().await.unwrap()
    };
    assert_eq!(pass.retrying, 4, "{pass:?}");
    let logs = String::from_utf8(logs.lock().unwrap().clone()).unwrap();

    let errors: Vec<String> = all(db.db())
        .await
        .into_iter()
        .map(|r| format!("{}: {}", r.target, r.last_error.unwrap()))
        .collect();
    let shown = format!("{logs}\n{}\n{targets:?}", errors.join("\n"));
    assert!(
        logs.matches("notification not delivered").count() == 4,
        "one line per failure:\n{logs}"
    );
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(!shown.contains(TOKEN), "{shown}");
    assert!(!shown.contains("/hooks"), "{shown}");
    let reason = |t: &str| errors.iter().find(|e| e.starts_with(t)).unwrap().clone();
    assert!(
        reason("refused").starts_with("refused: cannot connect"),
        "{errors:?}"
    );
    assert_eq!(
        reason("echo"),
        "echo: HTTP status 500 Internal Server Error: rejected POST *** HTTP/1.1 with authorization ***"
    );
    assert_eq!(reason("hang"), "hang: timed out after 300ms");
    // The echoing receiver really did get the secrets: they were scrubbed.
    let got = &echo.requests()[0];
    assert!(got.path.contains(SECRET));
    assert_eq!(got.headers["authorization"], format!("Bearer {TOKEN}"));
}

// ---------------------------------------------------------------- daemon

async fn the_daemon_delivers_and_keeps_secrets_out_of_its_logs(db: &TestDb) {
    const SECRET: &str = "d43mon-s3cr3t";
    let rx = Receiver::start().await;
    let down = unused_port();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "{JOB}{}{}",
        webhook(
            "chat",
            &rx.url(&format!("/hooks/{SECRET}")),
            "format = \"slack\""
        ),
        webhook(
            "down",
            &format!("http://127.0.0.1:{down}/hooks/{SECRET}"),
            ""
        ),
    );
    let now = Utc::now();
    let chat = note(1, "chat", now);
    let to_down = note(1, "down", now);
    let gone = note(1, "gone", now);
    for n in [&chat, &to_down, &gone] {
        enqueue(db.db(), n).await;
    }
    let child = crate::cli::daemon(dir.path(), db, &config, "5s", "notify-test");
    eventually(
        Duration::from_secs(20),
        "the daemon's first pass",
        || async {
            let rows = all(db.db()).await;
            rows.iter().all(|r| r.attempts >= 1)
                && rows
                    .iter()
                    .all(|r| r.status != NotificationStatus::Pending || r.last_error.is_some())
        },
    )
    .await;
    // Enqueued while it runs: picked up within a second or so.
    let later = note(2, "chat", Utc::now());
    enqueue(db.db(), &later).await;
    eventually(
        Duration::from_secs(10),
        "the later one delivered",
        || async { rx.accepted().len() == 2 },
    )
    .await;
    crate::cli::sigterm(&child);
    let (code, err) = crate::cli::exit_within(child, Duration::from_secs(20)).await;
    assert_eq!(code, 0, "{err}");

    assert_eq!(
        rx.accepted(),
        [chat.idempotency_key.clone(), later.idempotency_key.clone()]
    );
    assert_eq!(
        rx.requests()[0].json(),
        serde_json::json!({ "text": "[critical] api is down (alert 1)" })
    );
    let r = row(db.db(), &to_down.idempotency_key).await;
    // Kept for the next start (a second attempt is fine if this took > 5 s).
    assert_eq!(r.status, NotificationStatus::Pending);
    assert!(r.attempts >= 1, "{r:?}");
    let r = row(db.db(), &gone.idempotency_key).await;
    assert_eq!(r.status, NotificationStatus::Failed);
    assert!(err.contains("notification not delivered"), "{err}");
    assert!(err.contains("notification failed for good"), "{err}");
    assert!(err.contains("worker stopped"), "{err}");
    assert!(!err.contains(SECRET), "{err}");
}

/// The whole path through the real daemon: a service goes down, `health`
/// records it, `alerts` opens one alert, the webhook gets one `opened`
/// notification, and no duplicate follows while the service stays down.
async fn a_service_going_down_reaches_the_webhook_once(db: &TestDb) {
    let rx = Receiver::start().await;
    let down = unused_port();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[jobs.health]\nkind = \"health\"\nevery = \"1s\"\ntargets = [{{ name = \"api\", url = \"http://127.0.0.1:{down}/health\", timeout = \"1s\" }}]\n\n\
         [jobs.alerts]\nkind = \"alerts\"\nevery = \"1s\"\nfail_after = 2\nnotify = [\"ops\"]\n\n{}",
        webhook("ops", &rx.url("/hook"), "")
    );
    let child = crate::cli::daemon(dir.path(), db, &config, "5s", "e2e-test");
    eventually(
        Duration::from_secs(30),
        "the opened notification",
        || async { !rx.accepted().is_empty() },
    )
    .await;
    // Several more health and alerts runs while the service stays down.
    let runs_then = db.db().history(Some("alerts"), 1000).await.unwrap().len();
    eventually(
        Duration::from_secs(30),
        "three more alerts runs",
        || async { db.db().history(Some("alerts"), 1000).await.unwrap().len() >= runs_then + 3 },
    )
    .await;
    crate::cli::sigterm(&child);
    let (code, err) = crate::cli::exit_within(child, Duration::from_secs(20)).await;
    assert_eq!(code, 0, "{err}");

    let got = rx.requests();
    assert_eq!(got.len(), 1, "one notification, no duplicates: {got:#?}");
    let body = got[0].json();
    assert_eq!(body["event"], "opened");
    assert_eq!(body["fingerprint"], "system:service:api");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Service api is unhealthy: cannot connect"),
        "{body}"
    );
    let alerts = db.db().list_alerts(true, 10).await.unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(got[0].key(), format!("alert:{}:opened:ops", alerts[0].id));
}

/// The walkthrough of docs/oncall.md through the real daemon: two services
/// go down, `health` records it, `alerts` opens an alert for each,
/// `escalation` pages the on-call person (alice) at level 1 and bob at level
/// 2, except for the alert someone acknowledged with `ops-worker alerts ack`
/// after level 1.
async fn escalation_pages_level_by_level_until_acknowledged(db: &TestDb) {
    let rx = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let target = |name: &str| {
        format!(
            "{{ name = \"{name}\", url = \"http://127.0.0.1:{}/health\", timeout = \"1s\" }}",
            unused_port()
        )
    };
    let config = format!(
        r#"[jobs.health]
kind = "health"
every = "1s"
targets = [{api}, {db}]

[jobs.alerts]
kind = "alerts"
every = "1s"
fail_after = 1
notify = ["ops"]

[jobs.escalate]
kind = "escalation"
every = "1s"

[jobs.escalate.policy]
levels = [
  {{ after = "2s", notify = ["oncall:primary"] }},
  {{ after = "10s", notify = ["person:bob"] }},
]

[people.alice]
notify = ["alice"]
[people.bob]
notify = ["bob"]

[oncall.primary]
timezone = "UTC"
layers = [{{ members = ["alice"], rotation = "weekly", handoff = "2026-01-05T00:00" }}]

{}{}{}"#,
        webhook("ops", &rx.url("/ops"), ""),
        webhook("alice", &rx.url("/alice"), ""),
        webhook("bob", &rx.url("/bob"), ""),
        api = target("api"),
        db = target("db"),
    );
    let child = crate::cli::daemon(dir.path(), db, &config, "5s", "walkthrough");
    let paths = |rx: &Receiver, path: &str| -> Vec<serde_json::Value> {
        rx.requests()
            .iter()
            .filter(|r| r.path == path)
            .map(|r| r.json())
            .collect()
    };
    eventually(
        Duration::from_secs(30),
        "alice paged about both alerts",
        || async { paths(&rx, "/alice").len() == 2 },
    )
    .await;
    let alerts = db.db().list_alerts(false, 10).await.unwrap();
    let id_of = |subject: &str| alerts.iter().find(|a| a.subject == subject).unwrap().id;
    let (api, dbs) = (id_of("api"), id_of("db"));
    let out = crate::cli::with_db(dir.path(), db)
        .args(["alerts", "ack", &dbs.to_string(), "--by", "alice"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    eventually(
        Duration::from_secs(30),
        "bob paged about api at level 2",
        || async { !paths(&rx, "/bob").is_empty() },
    )
    .await;
    // Three more escalation runs after db's level 2 fell due.
    let runs_then = db.db().history(Some("escalate"), 1000).await.unwrap().len();
    eventually(
        Duration::from_secs(30),
        "three more escalation runs",
        || async { db.db().history(Some("escalate"), 1000).await.unwrap().len() >= runs_then + 3 },
    )
    .await;
    crate::cli::sigterm(&child);
    let (code, err) = crate::cli::exit_within(child, Duration::from_secs(20)).await;
    assert_eq!(code, 0, "{err}");

    // Alice was paged about both and hears that db was acknowledged.
    let alice = paths(&rx, "/alice");
    let (acks, pages): (Vec<_>, Vec<_>) = alice
        .into_iter()
        .partition(|b| b["event"] == "acknowledged");
    let mut about: Vec<i64> = pages
        .iter()
        .map(|b| b["alert_id"].as_i64().unwrap())
        .collect();
    about.sort();
    assert_eq!(about, [api.min(dbs), api.max(dbs)]);
    assert!(pages
        .iter()
        .all(|b| b["event"] == "escalated" && b["level"] == 1));
    assert_eq!(acks.len(), 1, "{acks:#?}");
    assert_eq!(
        (acks[0]["alert_id"].as_i64(), &acks[0]["acknowledged_by"]),
        (Some(dbs), &serde_json::json!("alice"))
    );
    let bob = paths(&rx, "/bob");
    assert_eq!(bob.len(), 1, "only api, once: {bob:#?}");
    assert_eq!(
        (bob[0]["alert_id"].as_i64(), &bob[0]["level"]),
        (Some(api), &serde_json::json!(2))
    );
    let text = bob[0]["text"].as_str().unwrap();
    assert!(
        text.contains("Escalation level 2 of 2: Service api is unhealthy"),
        "{text}"
    );
    assert!(
        text.ends_with(&format!(
            "Paging bob. Acknowledge: ops-worker alerts ack {api}"
        )),
        "{text}"
    );
    let ops: Vec<_> = paths(&rx, "/ops")
        .iter()
        .map(|b| {
            (
                b["event"].as_str().unwrap().to_string(),
                b["alert_id"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ops.len(),
        3,
        "ops heard both open and db acknowledged: {ops:?}"
    );
    assert!(ops.contains(&("acknowledged".to_string(), dbs)), "{ops:?}");
    let history = db.db().history(Some("escalate"), 1000).await.unwrap();
    assert!(
        history
            .iter()
            .all(|r| r.status == ops_worker::db::RunStatus::Success
                || r.status == ops_worker::db::RunStatus::Skipped),
        "{history:#?}"
    );
}

crate::backend_tests!(
    escalation_pages_level_by_level_until_acknowledged,
    a_service_going_down_reaches_the_webhook_once,
    enqueue_is_once_per_key_and_claims_have_one_winner,
    delivers_once_with_the_right_headers_and_body,
    rows_that_cannot_be_sent_fail_at_once,
    a_receiver_that_is_down_gets_it_when_it_comes_back,
    the_retry_horizon_turns_a_row_failed,
    a_restart_neither_drops_nor_repeats,
    a_crash_mid_send_resends_after_the_lease_with_the_same_key,
    two_senders_never_deliver_the_same_row_twice,
    urls_and_tokens_never_appear_in_logs_or_errors,
    the_daemon_delivers_and_keeps_secrets_out_of_its_logs,
);
