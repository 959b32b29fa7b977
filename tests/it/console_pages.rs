//! The console's services, workers, reports and job-detail pages through
//! plain HTTP on both backends, from rows written by the app's own
//! functions (the health store, the worker heartbeat, the report store,
//! the run store), with a clock the test sets; and escaping of hostile
//! names and Markdown.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use ops_worker::config::Config;
use ops_worker::db::{Finish, NewRun, RunStatus, Trigger};
use ops_worker::http::AppState;
use ops_worker_jobs::reqwest::StatusCode;
use ops_worker_jobs::store::{HealthCheck, HealthStatus, HealthStore};
use ops_worker_jobs::{Clock, ManualClock};

use crate::api::{tokens, Api, CONFIG, VIEWER};
use crate::console::Client;
use crate::helpers::TestDb;

crate::backend_tests!(
    service_checks_read_one_service_with_its_carry_in,
    services_page_shows_uptime_episodes_and_latency,
    workers_page_shows_state_version_config_and_its_error,
    reports_are_listed_and_rendered_with_raw_html_as_text,
    job_page_lists_the_next_ten_fire_times_with_their_dst_marks,
    job_page_charts_the_durations_of_finished_runs,
);

/// The pages' now.
fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-05T09:00:00Z")
        .unwrap()
        .to_utc()
}

/// The console over `db` with `CONFIG`, tokens, and the clock at [`t0`];
/// a viewer signed in.
async fn console(db: &TestDb) -> (Api, Client) {
    console_with(db, t0(), "").await
}

/// The console over `db` with `CONFIG`, then `jobs`, tokens, and the clock
/// at `now`; a viewer signed in.
async fn console_with(db: &TestDb, now: DateTime<Utc>, jobs: &str) -> (Api, Client) {
    let text = format!("{CONFIG}{jobs}{}", tokens());
    let config = Config::parse(Path::new("schedules.toml"), &text, &|_| None).unwrap();
    let (_tx, rx) = tokio::sync::watch::channel(Arc::new(config));
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(now));
    let api = Api::serve(AppState::new(db.db().clone(), rx, clock)).await;
    let mut c = Client::new(&api);
    c.sign_in(VIEWER).await;
    (api, c)
}

/// `CONFIG` with tokens, as the console's server loads it.
fn config() -> Config {
    let text = format!("{CONFIG}{}", tokens());
    Config::parse(Path::new("schedules.toml"), &text, &|_| None).unwrap()
}

fn check(service: &str, ago: TimeDelta, status: HealthStatus, latency: Option<i64>) -> HealthCheck {
    HealthCheck {
        service: service.into(),
        job_name: "health".into(),
        status,
        http_status: Some(if status == HealthStatus::Down {
            503
        } else {
            200
        }),
        latency_ms: latency,
        error: (status == HealthStatus::Down).then(|| "status 503".to_string()),
        checked_at: t0() - ago,
    }
}

/// `api`: up 8 d ago, down 30 h to 29 h ago and 2 h to 1.5 h ago, degraded
/// at the end; `db`: one check. Recorded one at a time, as the health job does.
async fn record(db: &TestDb, extra: &[HealthCheck]) {
    use HealthStatus::{Degraded, Down, Up};
    let h = TimeDelta::hours;
    let m = TimeDelta::minutes;
    let checks = [
        check("api", TimeDelta::days(8), Up, Some(10)),
        check("db", h(3), Up, Some(5)),
        check("api", h(30), Down, None),
        check("api", h(29), Up, Some(30)),
        check("api", h(2), Down, None),
        check("api", m(90), Up, Some(40)),
        check("api", h(1), Up, Some(60)),
        check("api", m(10), Degraded, Some(120)),
    ];
    for c in checks.iter().chain(extra) {
        db.db()
            .record_health(std::slice::from_ref(c))
            .await
            .unwrap();
    }
}

async fn service_checks_read_one_service_with_its_carry_in(db: &TestDb) {
    record(db, &[]).await;
    let ago = |c: &HealthCheck| (t0() - c.checked_at).num_minutes();
    let week = db
        .db()
        .service_checks("api", t0() - TimeDelta::days(7), t0())
        .await
        .unwrap();
    assert!(week.iter().all(|c| c.service == "api"));
    assert_eq!(
        week.iter().map(ago).collect::<Vec<_>>(),
        [8 * 1440, 30 * 60, 29 * 60, 120, 90, 60, 10]
    );
    assert_eq!(week[1].status, HealthStatus::Down);
    assert_eq!(week[1].error.as_deref(), Some("status 503"));
    // The end is excluded, and the carry-in is the newest before the start.
    let window = db
        .db()
        .service_checks(
            "api",
            t0() - TimeDelta::hours(24),
            t0() - TimeDelta::hours(1),
        )
        .await
        .unwrap();
    assert_eq!(
        window.iter().map(ago).collect::<Vec<_>>(),
        [29 * 60, 120, 90]
    );
    assert!(db
        .db()
        .service_checks("nope", t0() - TimeDelta::days(7), t0())
        .await
        .unwrap()
        .is_empty());
}

async fn services_page_shows_uptime_episodes_and_latency(db: &TestDb) {
    let xss = "<script>alert('svc')</script>";
    record(
        db,
        &[check(xss, TimeDelta::minutes(5), HealthStatus::Down, None)],
    )
    .await;
    let (_api, c) = console(db).await;
    let p = c.get("/services").await;
    assert_eq!(p.status, StatusCode::OK, "{p:?}");
    let body = &p.body;
    let api = section(body, "service-api");
    assert!(
        api.contains(r#"<span class="badge s-degraded">degraded</span>"#),
        "{api}"
    );
    // 7 d: 1.5 h down of 168 h; 24 h: 0.5 h down of 24 h.
    assert!(
        api.contains(r#"<dd class="uptime-7d">99.11 %</dd>"#),
        "{api}"
    );
    assert!(
        api.contains(r#"<dd class="uptime-24h">97.92 %</dd>"#),
        "{api}"
    );
    assert!(api.contains(r#"<dd class="episodes-7d">2</dd>"#), "{api}");
    // The episodes, newest first, with their lengths.
    let rows: Vec<&str> = api.split("<tr><td>").skip(1).collect();
    assert_eq!(rows.len(), 2, "{api}");
    assert!(
        rows[0].contains("2026-12-05 07:00:00 UTC") && rows[0].contains("30 min"),
        "{}",
        rows[0]
    );
    assert!(
        rows[1].contains("2026-12-04 03:00:00 UTC") && rows[1].contains("60 min"),
        "{}",
        rows[1]
    );
    // The latency line: the three measured checks of the last 24 h, the
    // largest (120 ms, 10 min ago) at the top, right of the others.
    let points = attr(api, "points");
    let pts: Vec<(f64, f64)> = points
        .split(' ')
        .map(|p| {
            let (x, y) = p.split_once(',').unwrap();
            (x.parse().unwrap(), y.parse().unwrap())
        })
        .collect();
    assert_eq!(pts.len(), 3, "{points}");
    assert!(pts.windows(2).all(|w| w[0].0 < w[1].0), "{points}");
    assert_eq!(pts[2].1, 2.0, "{points}");
    assert!(pts[0].1 > pts[1].1, "{points}");
    assert!(api.contains("top of the chart 120 ms"), "{api}");

    let dbs = section(body, "service-db");
    assert!(
        dbs.contains(r#"<dd class="uptime-24h">100.00 %</dd>"#),
        "{dbs}"
    );
    assert!(dbs.contains("No down episode"), "{dbs}");
    // A hostile service name is text, and still down.
    assert!(!body.contains("<script>alert"), "{body}");
    assert!(body.contains("&lt;script&gt;alert("), "{body}");
    assert!(body.contains("still down"), "{body}");
    // The overview links to the page.
    assert!(c.get("/").await.body.contains(r#"href="/services""#));
    assert_eq!(c.get("/services?x=1").await.status, StatusCode::BAD_REQUEST);
}

async fn workers_page_shows_state_version_config_and_its_error(db: &TestDb) {
    use ops_worker::heartbeat::this_worker;
    let ours = config().hash;
    let started = t0() - TimeDelta::hours(1);
    let live = this_worker("w-live", &ours, started);
    db.db().register_worker(&live).await.unwrap();
    assert!(db
        .db()
        .heartbeat(&live, t0() - TimeDelta::seconds(5))
        .await
        .unwrap());
    let mut stale = this_worker("<b>w-stale</b>", &"ab".repeat(32), started);
    stale.pid += 1;
    db.db().register_worker(&stale).await.unwrap();
    stale.config_error = Some("schedules.toml:3:1: <script>alert('w')</script>".into());
    assert!(db
        .db()
        .heartbeat(&stale, t0() - TimeDelta::minutes(10))
        .await
        .unwrap());
    let mut stopped = this_worker("w-stopped", &ours, started);
    stopped.pid += 2;
    db.db().register_worker(&stopped).await.unwrap();
    db.db()
        .worker_stopped("w-stopped", stopped.pid, t0() - TimeDelta::minutes(30))
        .await
        .unwrap();

    let (_api, c) = console(db).await;
    let p = c.get("/workers").await;
    assert_eq!(p.status, StatusCode::OK, "{p:?}");
    let row = |id: &str| {
        let at = p
            .body
            .find(&format!(r#"<tr id="worker-{id}""#))
            .unwrap_or_else(|| panic!("no worker {id}: {}", p.body));
        let rest = &p.body[at..];
        rest[..rest.find("</tr>").unwrap()].to_string()
    };
    let version = env!("CARGO_PKG_VERSION");
    let l = row("w-live");
    assert!(
        l.contains(r#"<span class="badge w-running">running</span>"#),
        "{l}"
    );
    assert!(l.contains(&format!("<td>{version}</td>")), "{l}");
    assert!(
        l.contains(&format!(r#"<code title="{ours}">{}</code>"#, &ours[..12])),
        "{l}"
    );
    assert!(
        l.contains("(this server&#x27;s)") || l.contains("(this server's)"),
        "{l}"
    );
    assert!(l.contains(r#"<span class="none">none</span>"#), "{l}");
    let s = row("&lt;b&gt;w-stale&lt;&#x2f;b&gt;");
    assert!(
        s.contains(r#"<span class="badge w-stale">stale</span>"#),
        "{s}"
    );
    assert!(s.contains(">abababababab</code>"), "{s}");
    assert!(s.contains("differs from this server"), "{s}");
    assert!(
        s.contains("schedules.toml:3:1: &lt;script&gt;alert("),
        "{s}"
    );
    let st = row("w-stopped");
    assert!(
        st.contains(r#"<span class="badge w-stopped">stopped</span>"#),
        "{st}"
    );
    assert!(
        !p.body.contains("<script>alert") && !p.body.contains("<b>w-stale"),
        "{}",
        p.body
    );
    assert!(p.body.contains(r#"<a href="/workers">Workers</a>"#));
}

async fn reports_are_listed_and_rendered_with_raw_html_as_text(db: &TestDb) {
    use ops_worker_jobs::store::{ReportStore, StoredReport};
    let day = |d: u32, md: &str| StoredReport {
        name: "daily".into(),
        period: format!("2026-12-0{d}"),
        period_start: t0() - TimeDelta::days(i64::from(6 - d)),
        period_end: t0() - TimeDelta::days(i64::from(5 - d)),
        generated_at: t0() - TimeDelta::days(i64::from(5 - d)),
        json: "{}".into(),
        markdown: md.into(),
    };
    let hostile = "# Daily 2026-12-04\n\n<script>alert('r')</script>\n\n| job | runs |\n|---|---|\n| tick | 2880 |\n\n[bad](javascript:alert(1))\n";
    for r in [day(3, "# Daily 2026-12-03\n"), day(4, hostile)] {
        db.db()
            .save_report(&r, &[], &serde_json::json!({}))
            .await
            .unwrap();
    }
    let (_api, c) = console(db).await;
    let p = c.get("/reports").await;
    assert_eq!(p.status, StatusCode::OK, "{p:?}");
    let newer = p
        .body
        .find(r#"<a href="&#x2f;reports&#x2f;daily&#x2f;2026%2D12%2D04">2026-12-04</a>"#);
    let older = p
        .body
        .find(r#"<a href="&#x2f;reports&#x2f;daily&#x2f;2026%2D12%2D03">2026-12-03</a>"#);
    assert!(
        newer.is_some() && older.is_some() && newer < older,
        "{}",
        p.body
    );

    let p = c.get("/reports/daily/2026-12-04").await;
    assert_eq!(p.status, StatusCode::OK, "{p:?}");
    assert!(p.body.contains("<h1>Daily 2026-12-04</h1>"), "{}", p.body);
    assert!(p.body.contains("<td>2880</td>"), "{}", p.body);
    assert!(p.body.contains("&lt;script&gt;alert("), "{}", p.body);
    assert!(!p.body.contains("<script>alert"), "{}", p.body);
    assert!(!p.body.contains("javascript:"), "{}", p.body);
    assert_eq!(
        c.get("/reports/daily/2026-12-09").await.status,
        StatusCode::NOT_FOUND
    );
    assert!(c.get("/").await.body.contains(r#"href="/reports""#));
}

/// A disabled job and a push job at 02:30 in Berlin, beside `CONFIG`'s.
const MORE_JOBS: &str = r#"
[jobs.off]
kind = "command"
cron = "0 30 2 * * *"
timezone = "Europe/Berlin"
enabled = false
command = ["true"]

[jobs.ping]
kind = "push"
cron = "0 30 2 * * *"
timezone = "Europe/Berlin"
token = "push-token-0123456789abcdef"
"#;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

/// The run of `job` for `slot`, finished with `status` after `ms` by
/// `worker`, as the runner records it.
async fn record_run(
    db: &TestDb,
    job: &str,
    slot: DateTime<Utc>,
    status: RunStatus,
    ms: i64,
    worker: &str,
) {
    let run = new_run(job, slot, worker);
    let finish = Finish {
        status,
        finished_at: slot + TimeDelta::milliseconds(ms),
        error: None,
        output: None,
        duration_ms: ms,
    };
    assert!(db.db().insert_finished_run(&run, &finish).await.unwrap());
}

/// A scheduled first attempt of `job` at `slot` on `worker`.
fn new_run(job: &str, slot: DateTime<Utc>, worker: &str) -> NewRun {
    NewRun {
        job_name: job.into(),
        kind: "command".into(),
        scheduled_for: slot,
        trigger: Trigger::Schedule,
        attempt: 1,
        worker_id: worker.into(),
        started_at: slot,
        missed: 0,
        jitter_ms: None,
    }
}

/// The element with `id` up to its `</section>`.
fn own_section<'a>(body: &'a str, id: &str) -> &'a str {
    let s = section(body, id);
    &s[..s.find("</section>").unwrap_or(s.len())]
}

/// Per row of the fire-time table: its UTC time (the `<time>`'s title),
/// local time and DST marks.
fn fire_rows(body: &str) -> Vec<(String, String, Vec<String>)> {
    let table = own_section(body, "fires");
    let tbody = &table[table.find("<tbody>").expect("a table body")..];
    tbody
        .split("<tr>")
        .skip(1)
        .filter(|row| row.contains("<time"))
        .map(|row| {
            let cells: Vec<&str> = row.split("<td>").skip(1).collect();
            let local = &cells[1][..cells[1].find("</td>").unwrap()];
            let marks = row
                .split(r#"<span class="dst">"#)
                .skip(1)
                .map(|m| m[..m.find("</span>").unwrap()].to_string())
                .collect();
            (attr(row, "title").to_string(), local.to_string(), marks)
        })
        .collect()
}

/// What the page should list for `job` at `now`: `ops-worker next`'s
/// fire times (the same function), as the page writes them.
fn expected_fires(
    jobs: &str,
    job: &str,
    now: DateTime<Utc>,
    last_slot: Option<DateTime<Utc>>,
) -> Vec<(String, String, Vec<String>)> {
    let text = format!("{CONFIG}{jobs}");
    let config = Config::parse(Path::new("schedules.toml"), &text, &|_| None).unwrap();
    let spec = config.job(job).unwrap();
    let anchor = ops_worker::scheduler::Start {
        last_slot,
        armed_at: now,
    }
    .anchor();
    ops_worker::schedule::dst::fire_times(&spec.schedule, now, anchor, 10)
        .into_iter()
        .map(|f| {
            (
                f.at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                f.at.with_timezone(&spec.timezone)
                    .format("%Y-%m-%d %H:%M:%S %Z")
                    .to_string(),
                f.marks.iter().map(ToString::to_string).collect(),
            )
        })
        .collect()
}

async fn job_page_lists_the_next_ten_fire_times_with_their_dst_marks(db: &TestDb) {
    // Four days before the spring-forward of 2027-03-28 in Berlin, where
    // 02:00 (`backup`'s time) does not exist.
    let now = utc("2027-03-24T12:00:00Z");
    // The interval grid of `tick` is anchored at its last slot (:10 and :40).
    let last_tick = utc("2027-03-24T11:58:10Z");
    record_run(db, "tick", last_tick, RunStatus::Success, 20, "w").await;
    ops_worker::ops::pause(
        &config(),
        db.db(),
        "backup",
        now,
        Some(utc("2027-03-26T00:00:00Z")),
        None,
        "test",
    )
    .await
    .unwrap();
    let (_api, c) = console_with(db, now, MORE_JOBS).await;

    let p = c.get("/jobs/backup").await;
    assert_eq!(p.status, StatusCode::OK, "{p:?}");
    let rows = fire_rows(&p.body);
    assert_eq!(rows.len(), 10, "{}", own_section(&p.body, "fires"));
    assert_eq!(rows, expected_fires(MORE_JOBS, "backup", now, None));
    // Only the fourth, on the day of the change, is marked.
    let marked: Vec<usize> = (0..10).filter(|&i| !rows[i].2.is_empty()).collect();
    assert_eq!(marked, [3], "{rows:?}");
    assert_eq!(
        rows[3],
        (
            "2027-03-28 01:00:00 UTC".to_string(),
            "2027-03-28 03:00:00 CEST".to_string(),
            vec!["DST: 02:00 does not exist on 2027-03-28, runs at 03:00 CEST instead".to_string()]
        )
    );
    assert_eq!(rows[0].0, "2027-03-25 01:00:00 UTC");
    assert_eq!(rows[9].1, "2027-04-03 02:00:00 CEST");
    // The pause holds back the one fire time before its end.
    let fires = own_section(&p.body, "fires");
    assert!(fires.contains("Paused until"), "{fires}");
    assert_eq!(
        fires
            .matches(r#"<span class="badge s-paused">paused</span>"#)
            .count(),
        1,
        "{fires}"
    );
    assert!(fires.contains("Next fire times"), "{fires}");

    let p = c.get("/jobs/tick").await;
    let rows = fire_rows(&p.body);
    assert_eq!(
        rows,
        expected_fires(MORE_JOBS, "tick", now, Some(last_tick))
    );
    assert_eq!(rows[0].0, "2027-03-24 12:00:10 UTC", "{rows:?}");
    assert!(rows.iter().all(|r| r.2.is_empty()), "{rows:?}");

    let p = c.get("/jobs/off").await;
    let fires = own_section(&p.body, "fires");
    assert!(
        fires.contains("Disabled: it will not fire until enabled."),
        "{fires}"
    );
    assert_eq!(fire_rows(&p.body).len(), 10, "{fires}");

    let p = c.get("/jobs/ping").await;
    let fires = own_section(&p.body, "fires");
    assert!(fires.contains("Next expected signals"), "{fires}");
    let rows = fire_rows(&p.body);
    assert_eq!(rows, expected_fires(MORE_JOBS, "ping", now, None));
    assert_eq!(
        rows[3].2,
        ["DST: 02:30 does not exist on 2027-03-28, runs at 03:00 CEST instead"]
    );
}

async fn job_page_charts_the_durations_of_finished_runs(db: &TestDb) {
    let (_api, c) = console(db).await;
    let p = c.get("/jobs/tick").await;
    assert!(
        own_section(&p.body, "durations").contains("No finished runs yet."),
        "{}",
        p.body
    );
    assert!(!own_section(&p.body, "durations").contains("<svg"));

    let xss = "<script>alert('w')</script>";
    let m = TimeDelta::minutes;
    record_run(db, "tick", t0() - m(40), RunStatus::Success, 1000, "w1").await;
    record_run(db, "tick", t0() - m(30), RunStatus::Failed, 3000, xss).await;
    record_run(db, "tick", t0() - m(20), RunStatus::Timeout, 2000, "w1").await;
    record_run(db, "tick", t0() - m(10), RunStatus::Skipped, 0, "w1").await;
    let running = new_run("tick", t0() - m(1), "w1");
    db.db().claim_run(&running).await.unwrap().expect("claimed");

    let p = c.get("/jobs/tick").await;
    assert_eq!(p.status, StatusCode::OK, "{p:?}");
    let chart = own_section(&p.body, "durations");
    assert!(chart.contains(r#"role="img""#), "{chart}");
    assert!(
        chart.contains("aria-label=\"Duration of the last 3 finished runs"),
        "{chart}"
    );
    let titles: Vec<&str> = chart
        .split("<circle ")
        .skip(1)
        .map(|c| &c[c.find("<title>").unwrap() + 7..c.find("</title>").unwrap()])
        .collect();
    assert_eq!(
        titles,
        [
            "2026-12-05 08:20:00 UTC: 1.0 s (success, attempt 1, worker w1)",
            "2026-12-05 08:30:00 UTC: 3.0 s (failed, attempt 1, worker &lt;script&gt;alert(&#x27;w&#x27;)&lt;&#x2f;script&gt;)",
            "2026-12-05 08:40:00 UTC: 2.0 s (timeout, attempt 1, worker w1)",
        ],
        "{chart}"
    );
    let classes: Vec<&str> = chart
        .split("<circle ")
        .skip(1)
        .map(|c| attr(c, "class"))
        .collect();
    assert_eq!(classes, ["m-success", "m-failed", "m-timeout"]);
    // The y axis is labelled with the longest, at the top.
    assert!(chart.contains(r#"class="ymax">3.0 s</text>"#), "{chart}");
    let ys: Vec<f64> = chart
        .split("<circle ")
        .skip(1)
        .map(|c| attr(c, "cy").parse().unwrap())
        .collect();
    assert!(ys[1] < ys[2] && ys[2] < ys[0], "{ys:?}");
    assert!(!p.body.contains("<script>alert"), "{}", p.body);
}

/// The part of `body` from the element with `id` to the next `<section`.
pub fn section<'a>(body: &'a str, id: &str) -> &'a str {
    let at = body
        .find(&format!(r#"id="{id}""#))
        .unwrap_or_else(|| panic!("no {id} in the page: {body}"));
    let rest = &body[at..];
    &rest[..rest.find("<section").unwrap_or(rest.len())]
}

/// The value of the first `name="..."` attribute in `html`.
pub fn attr<'a>(html: &'a str, name: &str) -> &'a str {
    let key = format!(r#"{name}=""#);
    let at = html
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + key.len();
    &html[at..at + html[at..].find('"').unwrap()]
}
