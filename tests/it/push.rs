//! `push` jobs on both backends through real HTTP: the real router served on
//! 127.0.0.1 by `ops_worker::http::serve` with a manual clock, so each
//! signal's slot is exact. Signals for the right slots, the same 404 for a
//! wrong job or token, fail and exit statuses, two servers signalling one
//! slot, the body limit, the flood limit (429, counted in /metrics, also
//! through the real `ops-worker serve`), a start with no finish ending
//! `timeout`, and the missed-slot alert of the `alerts` kind opening and
//! resolving.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use ops_worker::config::Config;
use ops_worker::db::{Db, RunRecord, RunStatus, Trigger};
use ops_worker::http::{api_router, serve, AppState};
use ops_worker::telemetry::Telemetry;
use ops_worker_jobs::{Clock, Job, JobContext, ManualClock, Store};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::backend_tests;
use crate::fixtures::utc;
use crate::helpers::TestDb;

pub const TOKEN: &str = "backup-ping-token-0123456789";

/// An hourly push job with a 5 minute grace, a cron push job in Berlin, a
/// command job, and an alerts job watching them.
pub const CONFIG: &str = r#"
[jobs.backup]
kind = "push"
every = "1h"
grace = "5m"
timeout = "30m"
token = "${PING_TOKEN}"

[jobs.nightly]
kind = "push"
cron = "30 2 * * *"
timezone = "Europe/Berlin"
grace = "10m"
token = "${PING_TOKEN}"

[jobs.tick]
kind = "command"
every = "30s"
command = ["true"]
"#;

pub fn config() -> Arc<Config> {
    let env = |v: &str| (v == "PING_TOKEN").then(|| TOKEN.to_string());
    Arc::new(Config::parse(Path::new("schedules.toml"), CONFIG, &env).unwrap())
}

/// A server of the signals, as `serve` or `run --http-addr` has it.
struct Server {
    base: String,
    stop: CancellationToken,
    telemetry: Arc<Telemetry>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn server(db: &Db, clock: Arc<ManualClock>) -> Server {
    let (_tx, rx) = tokio::sync::watch::channel(config());
    let telemetry = Arc::new(Telemetry::new());
    let state = AppState::builder(db.clone(), rx, clock)
        .telemetry(telemetry.clone())
        .build();
    let stop = CancellationToken::new();
    let (addr, _task) = serve(
        "127.0.0.1:0".parse().unwrap(),
        api_router(state),
        stop.clone(),
    )
    .await
    .unwrap();
    Server {
        base: format!("http://{addr}"),
        stop,
        telemetry,
    }
}

/// Status and body (JSON when it parses).
async fn send(method: &str, url: &str, body: Option<Vec<u8>>) -> (u16, Value) {
    let http = ops_worker_jobs::health::http_client();
    let method = ops_worker_jobs::reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = http.request(method, url);
    if let Some(b) = body {
        req = req.body(b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

impl Server {
    async fn ping(&self, job: &str, suffix: &str) -> (u16, Value) {
        send(
            "GET",
            &format!("{}/ping/{job}/{TOKEN}{suffix}", self.base),
            None,
        )
        .await
    }

    async fn post(&self, job: &str, suffix: &str, body: &[u8]) -> (u16, Value) {
        let url = format!("{}/ping/{job}/{TOKEN}{suffix}", self.base);
        send("POST", &url, Some(body.to_vec())).await
    }
}

async fn runs(db: &Db, job: &str) -> Vec<RunRecord> {
    let mut r = db.history(Some(job), 100).await.unwrap();
    r.reverse();
    r
}

fn clock(at: &str) -> Arc<ManualClock> {
    Arc::new(ManualClock::new(utc(at)))
}

async fn on_time_early_and_late_signals_make_runs_for_the_right_slots(t: &TestDb) {
    let db = t.db();
    let clock = clock("2026-06-01T02:03:00Z");
    let s = server(db, clock.clone()).await;
    // Late within grace: the 02:00 slot; a finish with no start, no duration.
    let (status, body) = s.ping("backup", "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["slot"], "2026-06-01T02:00:00Z");
    assert_eq!(body["status"], "success");
    assert_eq!(body["recorded"], true);
    // Early within grace: a start at 02:56 opens the 03:00 slot; its finish
    // (an exit status, by POST with output) closes it 14 minutes later.
    clock.set(utc("2026-06-01T02:56:00Z"));
    let (status, body) = s.post("backup", "/start", b"").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("running")));
    assert_eq!(body["slot"], "2026-06-01T03:00:00Z");
    clock.set(utc("2026-06-01T03:10:00Z"));
    let (status, body) = s.post("backup", "/0", b"backed up 3 GB\n").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["slot"], "2026-06-01T03:00:00Z");
    // One second before 04:00 minus the grace: still the 03:00 slot, which
    // has its run, so nothing changes.
    clock.set(utc("2026-06-01T03:54:59Z"));
    let (status, body) = s.ping("backup", "").await;
    assert_eq!((status, &body["recorded"]), (200, &Value::Bool(false)));
    // On the edge of the grace: 04:00.
    clock.set(utc("2026-06-01T03:55:00Z"));
    let (_, body) = s.ping("backup", "").await;
    assert_eq!(body["slot"], "2026-06-01T04:00:00Z");

    let r = runs(db, "backup").await;
    let view: Vec<_> = r
        .iter()
        .map(|r| {
            (
                r.scheduled_for.to_rfc3339(),
                r.status,
                r.trigger,
                r.duration_ms,
                r.output.clone(),
            )
        })
        .collect();
    assert_eq!(
        view,
        [
            (
                "2026-06-01T02:00:00+00:00".to_string(),
                RunStatus::Success,
                Trigger::Push,
                None,
                None
            ),
            (
                "2026-06-01T03:00:00+00:00".to_string(),
                RunStatus::Success,
                Trigger::Push,
                Some(14 * 60 * 1000),
                Some("backed up 3 GB".to_string())
            ),
            (
                "2026-06-01T04:00:00+00:00".to_string(),
                RunStatus::Success,
                Trigger::Push,
                None,
                None
            ),
        ]
    );
    assert!(r.iter().all(|r| r.kind == "push" && r.worker_id == "push"));

    // Cron in a zone: 02:30 Berlin in summer is 00:30 UTC.
    clock.set(utc("2026-06-02T00:21:00Z"));
    let (_, body) = s.ping("nightly", "").await;
    assert_eq!(body["slot"], "2026-06-02T00:30:00Z");
}

async fn a_wrong_job_or_token_gets_the_same_404_and_changes_nothing(t: &TestDb) {
    let db = t.db();
    let s = server(db, clock("2026-06-01T02:00:00Z")).await;
    let base = &s.base;
    let wrong = "wrong-token-0123456789abcdef";
    let mut bodies = Vec::new();
    for url in [
        format!("{base}/ping/backup/{wrong}"),
        format!("{base}/ping/backup/{wrong}/start"),
        format!("{base}/ping/backup/{wrong}/x"),
        format!("{base}/ping/nosuch/{TOKEN}"),
        format!("{base}/ping/nosuch/{TOKEN}/fail"),
        // A job that is not a push job has no token to match.
        format!("{base}/ping/tick/{TOKEN}"),
    ] {
        for method in ["GET", "POST"] {
            let (status, body) = send(method, &url, Some(b"x".to_vec())).await;
            assert_eq!(status, 404, "{method} {url}: {body}");
            bodies.push(body);
        }
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
    assert!(!bodies[0].to_string().contains(TOKEN));
    assert!(db.history(None, 10).await.unwrap().is_empty());
}

async fn fail_and_exit_statuses_fail_the_run_and_bad_ones_are_400(t: &TestDb) {
    let db = t.db();
    let clock = clock("2026-06-01T02:00:10Z");
    let s = server(db, clock.clone()).await;
    let (status, _) = s.ping("backup", "/fail").await;
    assert_eq!(status, 200);
    clock.set(utc("2026-06-01T03:00:10Z"));
    let (status, body) = s.post("backup", "/3", b"disk full").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("failed")));
    for bad in ["/256", "/-1", "/abc", "/1.0", "/start/x"] {
        let (status, body) = s.ping("backup", bad).await;
        let expected = if bad == "/start/x" { 404 } else { 400 };
        assert_eq!(status, expected, "{bad}: {body}");
    }
    let r = runs(db, "backup").await;
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].status, RunStatus::Failed);
    assert_eq!(r[0].error.as_deref(), Some("the job signalled fail"));
    assert_eq!(r[1].error.as_deref(), Some("exit status 3"));
    assert_eq!(r[1].output.as_deref(), Some("disk full"));
}

async fn two_servers_signalling_one_slot_make_one_run(t: &TestDb) {
    let db = t.db();
    let clock = clock("2026-06-01T02:00:05Z");
    let a = server(db, clock.clone()).await;
    // The other process has a database connection of its own.
    let other = t.connect_again().await;
    let b = server(&other, clock.clone()).await;
    let (ra, rb) = tokio::join!(a.ping("backup", "/start"), b.ping("backup", "/start"));
    assert_eq!((ra.0, rb.0), (200, 200));
    assert_eq!(
        [&ra.1["recorded"], &rb.1["recorded"]]
            .iter()
            .filter(|v| ***v == Value::Bool(true))
            .count(),
        1,
        "{ra:?} {rb:?}"
    );
    clock.set(utc("2026-06-01T02:01:00Z"));
    let (ra, rb) = tokio::join!(a.ping("backup", ""), b.ping("backup", ""));
    assert_eq!((ra.0, rb.0), (200, 200));
    let r = runs(db, "backup").await;
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].status, RunStatus::Success);
    assert_eq!(r[0].duration_ms, Some(55_000));
}

async fn a_flood_gets_429_counted_in_metrics(t: &TestDb) {
    let db = t.db();
    // A frozen clock: every signal falls in the same second.
    let s = server(db, clock("2026-06-01T02:00:00Z")).await;
    let limit = ops_worker::http::PINGS_PER_SECOND;
    let mut statuses = Vec::new();
    for _ in 0..limit + 3 {
        statuses.push(s.ping("backup", "/start").await.0);
    }
    assert!(
        statuses[..limit as usize].iter().all(|s| *s == 200),
        "{statuses:?}"
    );
    assert!(
        statuses[limit as usize..].iter().all(|s| *s == 429),
        "{statuses:?}"
    );
    // Other jobs have their own count.
    assert_eq!(s.ping("nightly", "").await.0, 200);
    let metrics = s.telemetry.render();
    assert!(
        metrics.contains("ops_worker_ping_rate_limited_total{job=\"backup\"} 3"),
        "{metrics}"
    );
    assert_eq!(runs(db, "backup").await.len(), 1);
}

async fn a_body_is_kept_to_its_last_100_kb_and_a_huge_one_is_refused(t: &TestDb) {
    let db = t.db();
    let clock = clock("2026-06-01T02:00:00Z");
    let s = server(db, clock.clone()).await;
    let kept = ops_worker::http::PING_BODY_KEPT;
    let mut body = vec![b'a'; 150 * 1024];
    body.extend_from_slice(b"\nthe end");
    let (status, _) = s.post("backup", "/fail", &body).await;
    assert_eq!(status, 200);
    let r = runs(db, "backup").await;
    let output = r[0].output.as_deref().unwrap();
    let (note, text) = output.split_once('\n').unwrap();
    assert_eq!(
        note,
        format!("[... {} earlier bytes not kept]", body.len() - kept)
    );
    assert_eq!(text.len(), kept);
    assert!(text.ends_with("\nthe end"));
    // Over the read limit: 413, nothing recorded.
    clock.set(utc("2026-06-01T03:00:00Z"));
    assert_eq!(
        raw_post(&s.base, ops_worker::http::PING_BODY_LIMIT + 1).await,
        413
    );
    assert_eq!(runs(db, "backup").await.len(), 1);
}

/// The status of a POST of `len` bytes to the backup job's success URL by
/// a client that waits for `100 Continue` before it sends the body (as curl
/// does for large ones): a body too large is refused before it is sent.
async fn raw_post(base: &str, len: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /ping/backup/{TOKEN} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {len}\r\nExpect: 100-continue\r\n\r\n"
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    let mut rd = sock;
    let mut response = Vec::new();
    let mut buf = [0u8; 1024];
    while !response.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout(std::time::Duration::from_secs(10), rd.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => response.extend_from_slice(&buf[..n]),
            Err(_) => panic!("no response within 10s"),
        }
    }
    let text = String::from_utf8_lossy(&response);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"))
}

async fn a_start_with_no_finish_ends_timeout(t: &TestDb) {
    let db = t.db();
    let clock = clock("2026-06-01T02:00:00Z");
    let s = server(db, clock.clone()).await;
    assert_eq!(s.ping("backup", "/start").await.0, 200);
    let runner = crate::fixtures::runner(db, clock.clone(), "w1");
    runner.set_config(config());
    // The timeout is 30m: not yet.
    runner
        .time_out_push_starts(utc("2026-06-01T02:29:59Z"))
        .await;
    assert_eq!(runs(db, "backup").await[0].status, RunStatus::Running);
    // A worker's start-up does not abandon it: it is no worker's run.
    runner
        .abandon_leftovers(utc("2026-06-01T02:30:00Z"))
        .await
        .unwrap();
    assert_eq!(runs(db, "backup").await[0].status, RunStatus::Running);
    runner
        .time_out_push_starts(utc("2026-06-01T02:30:01Z"))
        .await;
    let r = runs(db, "backup").await;
    assert_eq!(r[0].status, RunStatus::Timeout);
    assert_eq!(r[0].duration_ms, Some(1_801_000));
    // A finish that comes after it changes nothing.
    clock.set(utc("2026-06-01T02:31:00Z"));
    let (status, body) = s.ping("backup", "").await;
    assert_eq!((status, &body["recorded"]), (200, &Value::Bool(false)));
    assert_eq!(runs(db, "backup").await[0].status, RunStatus::Timeout);
}

async fn alerts_run(db: &Db, at: DateTime<Utc>) -> String {
    let job: Arc<dyn Job> = ops_worker_jobs::build(
        "alerts",
        "system-alerts",
        toml::de::ValueDeserializer::parse("{ fail_after = 2 }").unwrap(),
    )
    .unwrap();
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(at));
    let mut ctx = JobContext::standalone("system-alerts", at, clock);
    ctx.store = Arc::new(db.clone()) as Arc<dyn Store>;
    ctx.timeline = config();
    job.run(ctx).await.unwrap().output.unwrap()
}

async fn a_silent_push_job_raises_the_missed_slot_alert_until_it_signals_again(t: &TestDb) {
    let db = t.db();
    let clock = clock("2026-06-01T02:01:00Z");
    let s = server(db, clock.clone()).await;
    assert_eq!(s.ping("backup", "").await.0, 200);
    // 03:00 passed with no signal: missed once its grace (5m) is over.
    let out = alerts_run(db, utc("2026-06-01T03:05:00Z")).await;
    assert!(!out.contains("opened backup"), "{out}");
    let out = alerts_run(db, utc("2026-06-01T03:05:01Z")).await;
    assert!(out.contains("jobs: opened backup"), "{out}");
    let open = db.list_alerts(false, 10).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].fingerprint, "job:backup");
    assert!(
        open[0]
            .message
            .starts_with("Job backup missed its slot at 2026-06-01 03:00:00 UTC"),
        "{}",
        open[0].message
    );
    // Signals come again: the 04:00 run succeeds and the alert resolves.
    clock.set(utc("2026-06-01T04:00:30Z"));
    assert_eq!(s.ping("backup", "").await.0, 200);
    let out = alerts_run(db, utc("2026-06-01T04:01:00Z")).await;
    assert!(out.contains("resolved backup"), "{out}");
    assert!(db.list_alerts(false, 10).await.unwrap().is_empty());
    // Two fail signals in a row: `fail_after = 2` opens it again.
    clock.set(utc("2026-06-01T05:00:00Z"));
    assert_eq!(s.ping("backup", "/fail").await.0, 200);
    clock.set(utc("2026-06-01T06:00:00Z"));
    assert_eq!(s.ping("backup", "/1").await.0, 200);
    let out = alerts_run(db, utc("2026-06-01T06:01:00Z")).await;
    assert!(out.contains("jobs: opened backup"), "{out}");
    let open = db.list_alerts(false, 10).await.unwrap();
    assert!(
        open[0].message.contains("failed 2 times in a row"),
        "{}",
        open[0].message
    );
}

/// The classes of the job page's timeline marks, oldest first, as served.
async fn timeline_marks(s: &Server, job: &str) -> Vec<String> {
    let (status, body) = send("GET", &format!("{}/jobs/{job}", s.base), None).await;
    let Value::String(html) = body else {
        panic!("not a page: {body}")
    };
    assert_eq!(status, 200, "{html}");
    let at = html
        .find(r#"<figure class="timeline">"#)
        .unwrap_or_else(|| panic!("no timeline in {html}"));
    let svg = &html[at..at + html[at..].find("</svg>").unwrap()];
    svg.split(r#"class="m-"#)
        .skip(1)
        .map(|m| m[..m.find('"').unwrap()].to_string())
        .collect()
}

/// The overview's row of `job`, as served.
async fn overview_row(s: &Server, job: &str) -> String {
    let (status, body) = send("GET", &format!("{}/", s.base), None).await;
    let Value::String(html) = body else {
        panic!("not a page: {body}")
    };
    assert_eq!(status, 200, "{html}");
    let at = html
        .find(&format!(r#"<tr id="job-{job}""#))
        .unwrap_or_else(|| panic!("no {job} in {html}"));
    html[at..at + html[at..].find("</tr>").unwrap()].to_string()
}

async fn the_console_shows_a_push_jobs_slots_gaps_and_silence(t: &TestDb) {
    let db = t.db();
    let clock = clock("2026-06-01T02:00:10Z");
    let s = server(db, clock.clone()).await;
    // Signals for 02:00 and 03:00, none for 04:00 and 05:00, one for 06:00.
    for at in [
        "2026-06-01T02:00:10Z",
        "2026-06-01T03:00:10Z",
        "2026-06-01T06:00:10Z",
    ] {
        clock.set(utc(at));
        let (status, body) = s.ping("backup", "").await;
        assert_eq!((status, &body["recorded"]), (200, &Value::Bool(true)));
    }
    assert_eq!(
        timeline_marks(&s, "backup").await,
        ["success", "success", "missed", "missed", "success"]
    );
    // Silence after 06:00: 07:00 is missed once 07:00 + grace (5m) < now,
    // on the page exactly when the alerts kind opens its missed-slot alert.
    clock.set(utc("2026-06-01T07:05:00Z"));
    assert_eq!(timeline_marks(&s, "backup").await.len(), 5);
    let out = alerts_run(db, utc("2026-06-01T07:05:00Z")).await;
    assert!(!out.contains("opened backup"), "{out}");
    clock.set(utc("2026-06-01T07:05:01Z"));
    assert_eq!(
        timeline_marks(&s, "backup").await,
        ["success", "success", "missed", "missed", "success", "missed"]
    );
    let out = alerts_run(db, utc("2026-06-01T07:05:01Z")).await;
    assert!(out.contains("jobs: opened backup"), "{out}");
    // A late fail signal stands for 07:00: failed, and no gap left.
    clock.set(utc("2026-06-01T07:10:00Z"));
    let (status, body) = s.ping("backup", "/fail").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["slot"], "2026-06-01T07:00:00Z");
    assert_eq!(
        timeline_marks(&s, "backup").await,
        ["success", "success", "missed", "missed", "success", "failed"]
    );
    // The overview lists it like any job: kind, schedule in words, the
    // last run's badge, last success, the next slot a signal is expected for.
    let row = overview_row(&s, "backup").await;
    assert!(row.contains(r#"<span class="kind">push</span>"#), "{row}");
    assert!(row.contains("<td>every 1h</td>"), "{row}");
    assert!(
        row.contains(r#"<span class="badge s-failed">failed</span>"#),
        "{row}"
    );
    for (what, at) in [
        ("last run", "2026-06-01 07:00:00 UTC"),
        ("last success", "2026-06-01 06:00:10 UTC"),
        ("next", "2026-06-01 08:00:00 UTC"),
    ] {
        assert!(row.contains(&format!(r#"title="{at}""#)), "{what}: {row}");
    }
    // The open alert is flagged on its row.
    assert!(row.contains("alerting"), "{row}");
}

/// The real binary, with nothing of this environment but PATH, `env`.
async fn ops_worker(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = crate::cli::bin(dir.path());
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    tokio::task::spawn_blocking(move || {
        let out = cmd.output().unwrap();
        drop(dir);
        out
    })
    .await
    .unwrap()
}

async fn the_ping_and_wrap_binaries_signal_a_real_server(t: &TestDb) {
    let db = t.db();
    let clock = clock("2026-06-01T02:00:10Z");
    let s = server(db, clock.clone()).await;
    let env = [
        ("OPS_WORKER_PING_TOKEN", TOKEN),
        ("OPS_WORKER_PING_URL", s.base.as_str()),
    ];
    let out = ops_worker(&["ping", "backup"], &env).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(runs(db, "backup").await[0].status, RunStatus::Success);

    // wrap: start, the command (its output passed through), its status.
    clock.set(utc("2026-06-01T03:00:05Z"));
    let out = ops_worker(
        &[
            "wrap",
            "backup",
            "--url",
            &s.base,
            "--",
            "sh",
            "-c",
            "echo hello; echo oops >&2; exit 3",
        ],
        &env[..1],
    )
    .await;
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("oops"),
        "{out:?}"
    );
    let r = runs(db, "backup").await;
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!(r[1].scheduled_for, utc("2026-06-01T03:00:00Z"));
    assert_eq!(r[1].status, RunStatus::Failed);
    assert_eq!(r[1].error.as_deref(), Some("exit status 3"));
    // Started, so it has a duration (the server's clock stood still).
    assert_eq!(r[1].duration_ms, Some(0));
    let output = r[1].output.as_deref().unwrap();
    assert!(
        output.contains("hello") && output.contains("oops"),
        "{output}"
    );

    // A wrong token: exit 2, and the token is not printed.
    let out = ops_worker(
        &["ping", "backup", "--fail"],
        &[
            ("OPS_WORKER_PING_TOKEN", "not-the-token-0123456789"),
            ("OPS_WORKER_PING_URL", &s.base),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no push job \"backup\""), "{err}");
    assert!(!err.contains("not-the-token"), "{err}");
    // No token at all: exit 2, naming the variable.
    let out = ops_worker(&["ping", "backup", "--url", &s.base], &[]).await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("OPS_WORKER_PING_TOKEN"));
    assert_eq!(runs(db, "backup").await.len(), 2);
}

/// `ops-worker serve` itself: a flood through it is refused and counted in
/// the `/metrics` it serves beside the API.
async fn a_flood_through_serve_is_counted_in_its_metrics(t: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("schedules.toml"), CONFIG).unwrap();
    let port = crate::http::unused_port();
    let child = crate::cli::with_db(dir.path(), t)
        .env("PING_TOKEN", TOKEN)
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = ops_worker_jobs::health::http_client();
    crate::fixtures::eventually(
        std::time::Duration::from_secs(20),
        "serve answers",
        || async { http.get(format!("{base}/healthz")).send().await.is_ok() },
    )
    .await;
    // All at once: whichever seconds they fall in, more than the limit
    // of one second are refused.
    let url = format!("{base}/ping/backup/{TOKEN}/start");
    let sends = (0..3 * ops_worker::http::PINGS_PER_SECOND)
        .map(|_| async { http.get(&url).send().await.unwrap().status().as_u16() });
    let statuses = futures::future::join_all(sends).await;
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert!(refused > 0, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );
    let resp = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let metrics = resp.text().await.unwrap();
    let line = format!("ops_worker_ping_rate_limited_total{{job=\"backup\"}} {refused}");
    assert!(
        metrics.lines().any(|l| l == line),
        "no {line:?} in:\n{metrics}"
    );
    // Not a worker that is down or a rejected reload.
    assert!(metrics.lines().any(|l| l == "ops_worker_up 1"), "{metrics}");
    assert!(
        metrics.contains("ops_worker_config_last_reload_successful 1"),
        "{metrics}"
    );
    // Only the accepted signals reached job_runs: one run for the slot.
    assert_eq!(runs(t.db(), "backup").await.len(), 1);
    crate::cli::sigterm(&child);
    let (code, err) = crate::cli::exit_within(child, std::time::Duration::from_secs(15)).await;
    assert_eq!(code, 0, "{err}");
}

/// `wrap` under a supervisor: SIGTERM or SIGINT sent to wrap alone (as
/// Kubernetes and Docker signal PID 1) reaches the command, and wrap exits
/// with the command's status. No server: the signals are not delivered.
#[tokio::test(flavor = "multi_thread")]
async fn wrap_passes_sigterm_and_sigint_on_to_its_command() {
    use std::io::BufRead as _;
    let trap = "trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 0.1; done";
    // `sleep` ends at once on SIGINT: 128 + 2.
    let plain = "echo ready; exec sleep 60";
    for (script, signal, status) in [(trap, libc::SIGTERM, 7), (plain, libc::SIGINT, 130)] {
        let dir = tempfile::tempdir().unwrap();
        let mut child = crate::cli::bin(dir.path())
            .env("OPS_WORKER_PING_TOKEN", TOKEN)
            .env("OPS_WORKER_PING_URL", "http://127.0.0.1:1")
            .args(["wrap", "backup", "--", "sh", "-c", script])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let first = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            stdout.read_line(&mut line).unwrap();
            (line, stdout)
        });
        let (line, mut stdout) = tokio::time::timeout(std::time::Duration::from_secs(20), first)
            .await
            .expect("the command started")
            .unwrap();
        assert_eq!(line, "ready\n");
        // SAFETY: kill(2) on the wrap process this test spawned, not reaped.
        assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
        let (code, err) = crate::cli::exit_within(child, std::time::Duration::from_secs(20)).await;
        assert_eq!(code, status, "{script}: {err}");
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
        if signal == libc::SIGTERM {
            assert_eq!(rest, "got TERM\n", "{err}");
        }
        assert!(err.contains("not delivered after 3 tries"), "{err}");
    }
}

/// No database involved: the server is absent.
#[tokio::test(flavor = "multi_thread")]
async fn an_undeliverable_signal_never_changes_wraps_exit_status() {
    // Nothing listens on port 1.
    let env = [
        ("OPS_WORKER_PING_TOKEN", TOKEN),
        ("OPS_WORKER_PING_URL", "http://127.0.0.1:1"),
    ];
    for (script, status) in [("exit 0", 0), ("exit 5", 5)] {
        let out = ops_worker(&["wrap", "backup", "--", "sh", "-c", script], &env).await;
        assert_eq!(out.status.code(), Some(status), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("not delivered after 3 tries"), "{err}");
        assert!(!err.contains(TOKEN), "{err}");
    }
    // `ping` itself reports it: exit 1.
    let out = ops_worker(&["ping", "backup"], &env).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    // Without a token, wrap still runs the command.
    let out = ops_worker(&["wrap", "backup", "--", "sh", "-c", "exit 4"], &[]).await;
    assert_eq!(out.status.code(), Some(4), "{out:?}");
}

/// A push job runs elsewhere: run now and pause are refused with 409
/// `push_job` (the API, the CLI's request-run and pause) and change
/// nothing, and its console page offers neither button.
async fn a_push_job_is_not_run_or_paused_here(t: &TestDb) {
    let db = t.db();
    let s = server(db, clock("2026-06-01T02:00:10Z")).await;
    for action in ["run", "pause"] {
        let url = format!("{}/api/v1/jobs/backup/{action}", s.base);
        let (status, body) = send("POST", &url, None).await;
        assert_eq!(status, 409, "{action}: {body}");
        assert_eq!(body["error"], "push_job", "{action}: {body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains(r#"job "backup" is a push job"#),
            "{action}: {body}"
        );
    }
    assert!(db.pauses().await.unwrap().is_empty());
    assert!(db.run_request(1).await.unwrap().is_none());
    // A job this worker runs still gets the buttons; the push job none.
    let base = &s.base;
    let page = |job: &'static str| async move {
        let (status, body) = send("GET", &format!("{base}/jobs/{job}"), None).await;
        assert_eq!(status, 200, "{body}");
        body.as_str().unwrap().to_string()
    };
    let tick = page("tick").await;
    for form in ["tick/run\"", "tick/pause\""] {
        assert!(tick.contains(form), "{form}: {tick}");
    }
    let backup = page("backup").await;
    for form in ["backup/run\"", "backup/pause\"", "Run now", ">Pause<"] {
        assert!(!backup.contains(form), "{form}: {backup}");
    }
    // The CLI refuses before it opens a database: exit 2, one line.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("schedules.toml");
    std::fs::write(&file, CONFIG).unwrap();
    let file = file.to_str().unwrap();
    for args in [
        ["request-run", "backup", "--config", file],
        ["pause", "backup", "--config", file],
    ] {
        let out = ops_worker(&args, &[("PING_TOKEN", TOKEN)]).await;
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(r#"job "backup" is a push job"#), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}

backend_tests!(
    the_ping_and_wrap_binaries_signal_a_real_server,
    on_time_early_and_late_signals_make_runs_for_the_right_slots,
    a_wrong_job_or_token_gets_the_same_404_and_changes_nothing,
    fail_and_exit_statuses_fail_the_run_and_bad_ones_are_400,
    two_servers_signalling_one_slot_make_one_run,
    a_flood_gets_429_counted_in_metrics,
    a_flood_through_serve_is_counted_in_its_metrics,
    a_body_is_kept_to_its_last_100_kb_and_a_huge_one_is_refused,
    a_start_with_no_finish_ends_timeout,
    a_silent_push_job_raises_the_missed_slot_alert_until_it_signals_again,
    the_console_shows_a_push_jobs_slots_gaps_and_silence,
    a_push_job_is_not_run_or_paused_here,
);
