//! The console's services, workers, reports and job-detail pages through
//! plain HTTP on both backends, from rows written by the app's own
//! functions (the health store, the worker heartbeat, the report store),
//! with a clock the test sets; and escaping of hostile names and Markdown.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use ops_worker::config::Config;
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
    let (_tx, rx) = tokio::sync::watch::channel(Arc::new(config()));
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(t0()));
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
