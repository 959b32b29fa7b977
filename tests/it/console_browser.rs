//! The web console in a real browser (Debian's `chromium`, driven through
//! `chromedriver` with fantoccini, headless), against the real server and a
//! real worker process, on both backends: what the issue lists, and a
//! silence added through the console's form. Each page
//! is saved as a screenshot under `target/tmp/console-screenshots/BACKEND/`.
//!
//! Needs `chromium` and `chromium-driver` (`.ci/run` installs them).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use ops_worker::db::{RunStatus, Trigger};
use ops_worker_jobs::store::AlertStatus;
use serde_json::json;

use crate::api::{tokens, Api, OPERATOR, VIEWER};
use crate::cli::{exit_within, sigterm, with_db};
use crate::console::{finished_run, open_alert};
use crate::fixtures::eventually;
use crate::helpers::TestDb;

crate::backend_tests!(the_console_in_a_real_browser);

/// Two jobs that never fire on their own during the test (once a year).
const CONFIG: &str = r#"
[jobs.nightly-backup]
kind = "command"
cron = "0 3 1 1 *"
command = ["sh", "-c", "echo backup; exit 1"]

[jobs.report]
kind = "command"
cron = "0 3 1 1 *"
command = ["sh", "-c", "echo report ready"]
"#;

const CHROMEDRIVER: &str = "chromedriver";
/// How long the live updates may take to show something.
const LIVE: Duration = Duration::from_secs(10);

/// chromedriver on a free port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn driver() -> Driver {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("starting {CHROMEDRIVER}: {e} (install it: apt-get install -y chromium chromium-driver)")
        });
    let d = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    eventually(
        Duration::from_secs(20),
        "chromedriver listening",
        || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        },
    )
    .await;
    d
}

async fn browser(d: &Driver, width: u32, height: u32) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_string(),
        json!({"args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            format!("--window-size={width},{height}"),
        ]}),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&d.url)
        .await
        .unwrap_or_else(|e| panic!("a chromium session through chromedriver: {e}"))
}

fn screenshots(db: &TestDb) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("console-screenshots")
        .join(db.backend().to_string());
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(c: &Client, dir: &Path, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

async fn sign_in(c: &Client, base: &str, token: &str) {
    c.goto(&format!("{base}/login")).await.unwrap();
    c.find(Locator::Css("#token"))
        .await
        .unwrap()
        .send_keys(token)
        .await
        .unwrap();
    click(c, "form[action='/login'] button").await;
    c.wait()
        .for_element(Locator::Css("main[data-live]"))
        .await
        .unwrap();
}

/// `f` again while the page's live update swaps the element out from under
/// it (a stale element reference), up to a few times.
async fn retry<T, F, Fut>(mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, fantoccini::error::CmdError>>,
{
    let mut tries = 0;
    loop {
        match f().await {
            Ok(t) => return t,
            Err(_) if tries < 10 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("webdriver: {e}"),
        }
    }
}

/// The text of the first element matching `css`.
async fn text(c: &Client, css: &str) -> String {
    retry(|| async { c.find(Locator::Css(css)).await?.text().await }).await
}

/// Clicks the first element matching `css`.
async fn click(c: &Client, css: &str) {
    retry(|| async { c.find(Locator::Css(css)).await?.click().await }).await
}

async fn js(c: &Client, script: &str) -> serde_json::Value {
    c.execute(script, vec![]).await.unwrap()
}

/// Marks the page, so a later check can tell it was not reloaded.
async fn mark(c: &Client) {
    js(c, "window.__same_page = true; return null").await;
}

async fn same_page(c: &Client) -> bool {
    js(c, "return window.__same_page === true").await == json!(true)
}

async fn has(c: &Client, css: &str) -> bool {
    !c.find_all(Locator::Css(css)).await.unwrap().is_empty()
}

async fn the_console_in_a_real_browser(db: &TestDb) {
    let config = format!("{CONFIG}{}", tokens());
    let api = Api::start(db, &config).await;
    let base = api.base.clone();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("schedules.toml"), &config).unwrap();
    let worker = with_db(dir.path(), db)
        .args(["run", "--grace", "5s"])
        .env("OPS_WORKER_ID", "browser-w1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    eventually(Duration::from_secs(30), "a running worker", || async {
        db.db()
            .workers()
            .await
            .unwrap()
            .iter()
            .any(|w| w.id == "browser-w1")
    })
    .await;
    let xss = "<script>window.__xss = 1</script>";
    let failed = finished_run(
        db,
        "nightly-backup",
        RunStatus::Failed,
        &format!("dumping\n{xss}\nexit 1"),
    )
    .await;
    let alert = open_alert(
        db,
        "billing-api",
        "Service billing-api is down: connection refused",
    )
    .await;
    let shots = screenshots(db);
    let d = driver().await;
    let c = browser(&d, 1280, 900).await;

    // The overview: the failing job as failing, the alert in the banner.
    sign_in(&c, &base, OPERATOR).await;
    assert!(has(&c, "tr#job-nightly-backup .badge.s-failed").await);
    let banner = text(&c, ".banner").await;
    assert!(
        banner.contains("billing-api") && banner.contains("critical"),
        "{banner}"
    );
    // Times are shown in the browser's zone, UTC on hover.
    let title = retry(|| async {
        c.find(Locator::Css("tr#job-nightly-backup time"))
            .await?
            .attr("title")
            .await
    })
    .await
    .expect("a title");
    assert!(title.ends_with("UTC"), "{title}");
    shot(&c, &shots, "overview").await;

    // An acknowledgement made elsewhere shows in the banner without a reload.
    mark(&c).await;
    db.db()
        .ack_alert(alert, "someone-else", chrono::Utc::now())
        .await
        .unwrap()
        .expect("acknowledged");
    eventually(LIVE, "the banner shows the acknowledgement", || async {
        let text = text(&c, ".banner").await;
        text.contains("acknowledged")
    })
    .await;
    assert!(same_page(&c).await, "the page was reloaded");

    // Acknowledging from the alerts feed changes the row and the banner.
    let second = open_alert(db, "search", "Service search is degraded").await;
    c.goto(&format!("{base}/alerts")).await.unwrap();
    shot(&c, &shots, "alerts").await;
    click(&c, &format!("form[action='/alerts/{second}/ack'] button")).await;
    eventually(LIVE, "the alert acknowledged in the database", || async {
        db.db().get_alert(second).await.unwrap().unwrap().status == AlertStatus::Acknowledged
    })
    .await;
    let a = db.db().get_alert(second).await.unwrap().unwrap();
    assert_eq!(a.acknowledged_by.as_deref(), Some("ops"));
    c.goto(&base).await.unwrap();
    let banner = text(&c, ".banner").await;
    assert!(!banner.contains(" open,"), "{banner}");

    // Silencing through the form: the silence listed, the alert says why.
    c.goto(&format!("{base}/silences")).await.unwrap();
    for (field, value) in [
        ("#match", "system:service:billing-api"),
        ("#for", "2h"),
        ("#reason", "vendor outage"),
    ] {
        retry(|| async { c.find(Locator::Css(field)).await?.send_keys(value).await }).await;
    }
    click(&c, "form[action='/silences'] button").await;
    eventually(LIVE, "the silence stored", || async {
        !db.db()
            .silences(chrono::Utc::now(), false)
            .await
            .unwrap()
            .is_empty()
    })
    .await;
    let silence = db
        .db()
        .silences(chrono::Utc::now(), false)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(silence.created_by, "ops");
    assert_eq!(silence.reason, "vendor outage");
    c.wait()
        .for_element(Locator::Css(&format!("tr#silence-{}", silence.id)))
        .await
        .unwrap();
    shot(&c, &shots, "silences").await;
    c.goto(&format!("{base}/alerts")).await.unwrap();
    let why = text(&c, &format!("#alert-{alert} .silenced")).await;
    assert!(
        why.contains(&format!("silence {} until", silence.id)) && why.contains("vendor outage"),
        "{why}"
    );

    // Output holding <script> is shown as text and does not run.
    c.goto(&format!("{base}/runs/{failed}")).await.unwrap();
    let out = text(&c, "pre.output:not(.error)").await;
    assert!(out.contains(xss), "{out}");
    assert_eq!(
        js(&c, "return window.__xss === undefined").await,
        json!(true)
    );
    shot(&c, &shots, "run").await;

    // Run now on the job's page: the new run appears there, run by the worker.
    c.goto(&format!("{base}/jobs/report")).await.unwrap();
    assert!(!has(&c, "table.runs a[href^='/runs/']").await);
    click(&c, "form[action='/jobs/report/run'] button").await;
    c.wait().for_element(Locator::Css(".notice")).await.unwrap();
    mark(&c).await;
    eventually(
        Duration::from_secs(20),
        "the new run on the job's page",
        || async { has(&c, "table.runs .badge.s-success").await },
    )
    .await;
    assert!(same_page(&c).await, "the page was reloaded");
    let runs = db.db().history(Some("report"), 10).await.unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].trigger, Trigger::Manual);
    assert_eq!(runs[0].worker_id, "browser-w1");
    shot(&c, &shots, "job").await;

    // A viewer sees no write buttons, and a forged write gets 403.
    c.delete_all_cookies().await.unwrap();
    sign_in(&c, &base, VIEWER).await;
    for path in [
        "/",
        "/alerts?status=acknowledged",
        "/jobs/report",
        "/silences",
    ] {
        c.goto(&format!("{base}{path}")).await.unwrap();
        let forms = c.find_all(Locator::Css("main form")).await.unwrap();
        assert!(
            forms.is_empty(),
            "{path}: {} forms for a viewer",
            forms.len()
        );
    }
    let status = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const csrf = document.querySelector('input[name=csrf]').value;
             fetch('/jobs/report/run', {method: 'POST', credentials: 'same-origin',
                    body: new URLSearchParams({csrf})})
               .then(r => done(r.status), e => done(String(e)));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(status, json!(403));
    assert_eq!(db.db().history(Some("report"), 10).await.unwrap().len(), 1);
    c.close().await.unwrap();

    // A phone: the overview fits the screen and acknowledging works.
    let phone = browser(&d, 390, 844).await;
    let third = open_alert(db, "payments", "Service payments is down").await;
    sign_in(&phone, &base, OPERATOR).await;
    assert!(has(&phone, ".banner").await);
    let fits = js(
        &phone,
        "return document.documentElement.scrollWidth <= window.innerWidth + 1",
    )
    .await;
    assert_eq!(
        fits,
        json!(true),
        "the overview scrolls sideways on a phone"
    );
    shot(&phone, &shots, "overview-phone").await;
    phone.goto(&format!("{base}/alerts")).await.unwrap();
    let ack = format!("form[action='/alerts/{third}/ack'] button");
    let (shown, (_, _, w, h)) = retry(|| async {
        let button = phone.find(Locator::Css(&ack)).await?;
        Ok((button.is_displayed().await?, button.rectangle().await?))
    })
    .await;
    assert!(shown);
    assert!(w >= 40.0 && h >= 40.0, "a {w}x{h} button is hard to tap");
    shot(&phone, &shots, "alerts-phone").await;
    click(&phone, &ack).await;
    eventually(LIVE, "acknowledged from the phone", || async {
        db.db().get_alert(third).await.unwrap().unwrap().status == AlertStatus::Acknowledged
    })
    .await;
    phone.close().await.unwrap();

    sigterm(&worker);
    let (code, err) = exit_within(worker, Duration::from_secs(20)).await;
    assert_eq!(code, 0, "{err}");
}
