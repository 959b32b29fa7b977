//! Acknowledge links on both backends, through real HTTP on 127.0.0.1:
//! the page (`GET /ack/{token}`) changes nothing, its button (`POST`)
//! acknowledges once as the recipient and is audited; tampered, foreign,
//! expired (a test clock moved past the TTL) and resolved links get the
//! same 403 page; the page escapes what it shows; and the links the
//! notification sender puts in the messages a webhook receiver gets
//! (`opened` with `Acknowledge: <link>`, an escalation step with the link
//! instead of the CLI command, which stays without links) work, and email,
//! PagerDuty and templates carry them too. A bad secret or public URL
//! stops the real binary at start.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use ops_worker::ack_link::AckLinks;
use ops_worker::config::Config;
use ops_worker::db::{Db, NotificationEvent};
use ops_worker::http::AppState;
use ops_worker::notify::Sender;
use ops_worker_jobs::store::{AlertSource, AlertStatus, AlertStore, NewAlert, Severity};
use ops_worker_jobs::{reqwest, Clock, JobContext, Store};
use serde_json::Value;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::api::{tokens, Api, CONFIG};
use crate::fixtures::{utc, TestClock};
use crate::helpers::TestDb;

crate::backend_tests!(
    get_shows_the_alert_and_post_acknowledges_once_as_the_recipient,
    bad_links_get_the_same_403_page,
    the_page_escapes_what_it_shows,
    a_webhook_gets_a_working_link_in_opened,
    email_pagerduty_and_templates_carry_the_link,
    escalation_says_the_link_instead_of_the_cli_command,
);

const SECRET: &str = "ack-link-test-secret-0123456789abcdef";
const TTL: Duration = Duration::from_secs(24 * 3600);

fn t0() -> DateTime<Utc> {
    utc("2026-12-05T03:00:00Z")
}

/// The API (`api_router`, as `serve` and `run --http-addr` serve it) with
/// acknowledge links checked by `links`, on 127.0.0.1 until dropped.
struct Site {
    base: String,
    _api: Api,
    http: reqwest::Client,
}

/// Status, content type and body.
#[derive(Debug)]
struct Page {
    status: u16,
    content_type: String,
    body: String,
}

impl Site {
    async fn start(
        db: &TestDb,
        config_text: &str,
        links: Option<AckLinks>,
        clock: Arc<TestClock>,
    ) -> Site {
        let config = Config::parse(Path::new("schedules.toml"), config_text, &|_| None)
            .unwrap_or_else(|e| panic!("test config: {e}"));
        let (_tx, rx) = tokio::sync::watch::channel(Arc::new(config));
        let api = Api::serve(
            AppState::builder(db.db().clone(), rx, clock)
                .ack_links(links.map(Arc::new))
                .build(),
        )
        .await;
        Site {
            base: api.base.clone(),
            _api: api,
            http: ops_worker_jobs::health::http_client(),
        }
    }

    async fn read(resp: reqwest::Response) -> Page {
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        Page {
            status,
            content_type,
            body: resp.text().await.unwrap(),
        }
    }

    /// GET of a path (`/ack/...`) or a whole URL.
    async fn get(&self, path: &str) -> Page {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        Site::read(self.http.get(url).send().await.unwrap()).await
    }

    /// The button: a form POST carrying `form_token`, with extra headers.
    async fn post(&self, path: &str, form_token: &str, headers: &[(&str, &str)]) -> Page {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        let mut req = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={form_token}"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Site::read(req.send().await.unwrap()).await
    }
}

fn links() -> AckLinks {
    AckLinks::new(SECRET, "https://ops.example.com", TTL).unwrap()
}

/// The token of a link.
fn token_of(url: &str) -> String {
    url.rsplit_once("/ack/").expect(url).1.to_string()
}

async fn open(db: &Db, subject: &str, message: &str, notify: &[&str], at: DateTime<Utc>) -> i64 {
    let notify: Vec<String> = notify.iter().map(|s| s.to_string()).collect();
    db.open_alert(
        &NewAlert {
            fingerprint: format!("system:service:{subject}"),
            source: AlertSource::Service,
            subject: subject.to_string(),
            severity: Severity::Critical,
            message: message.to_string(),
            opened_at: at,
        },
        &notify,
    )
    .await
    .unwrap()
    .expect("a new alert")
    .id
}

async fn events(db: &Db, alert: i64, event: NotificationEvent) -> Vec<String> {
    let mut rows = db.notifications().list(1000).await.unwrap();
    rows.reverse();
    rows.into_iter()
        .filter(|n| n.alert_id == Some(alert) && n.event == event)
        .map(|n| n.target)
        .collect()
}

async fn get_shows_the_alert_and_post_acknowledges_once_as_the_recipient(db: &TestDb) {
    let clock = TestClock::new(t0());
    // Tokens declared: the API needs them, the link does not.
    let site = Site::start(
        db,
        &format!("{CONFIG}{}", tokens()),
        Some(links()),
        clock.clone(),
    )
    .await;
    assert_eq!(site.get("/api/v1/jobs").await.status, 401);
    let id = open(db.db(), "api", "Service api is unhealthy", &["hook"], t0()).await;
    let url = links().url(id, "hook", t0());
    let token = token_of(&url);
    let path = format!("/ack/{token}");

    // Opening the link (what a chat client's preview does) changes nothing.
    for _ in 0..2 {
        let page = site.get(&path).await;
        assert_eq!(page.status, 200, "{page:?}");
        assert_eq!(page.content_type, "text/html; charset=utf-8");
        for shown in [
            "<h1>api</h1>",
            "Service api is unhealthy",
            "critical",
            "2026-12-05 03:00:00 UTC",
            "<td>open</td>",
            &format!("name=\"token\" value=\"{token}\""),
            "Acknowledge as hook",
        ] {
            assert!(page.body.contains(shown), "{shown:?} in {}", page.body);
        }
    }
    let alert = db.db().get_alert(id).await.unwrap().unwrap();
    assert_eq!(alert.status, AlertStatus::Open);

    // From another site's page, or without the token in the form: refused.
    for (form, headers) in [
        (token.as_str(), &[("sec-fetch-site", "cross-site")][..]),
        (token.as_str(), &[("origin", "https://evil.example")][..]),
        ("", &[][..]),
        ("not-the-token", &[][..]),
    ] {
        let page = site.post(&path, form, headers).await;
        assert_eq!(page.status, 403, "{form:?} {headers:?}: {page:?}");
    }
    assert_eq!(
        db.db().get_alert(id).await.unwrap().unwrap().status,
        AlertStatus::Open
    );

    // The button, from the page itself.
    clock.advance(TimeDelta::minutes(3));
    let page = site
        .post(&path, &token, &[("sec-fetch-site", "same-origin")])
        .await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.body.contains("Acknowledged as hook"), "{}", page.body);
    let acked = db.db().get_alert(id).await.unwrap().unwrap();
    assert_eq!(
        (
            acked.status,
            acked.acknowledged_by.as_deref(),
            acked.acknowledged_at
        ),
        (
            AlertStatus::Acknowledged,
            Some("hook"),
            Some(t0() + TimeDelta::minutes(3))
        )
    );
    assert_eq!(
        events(db.db(), id, NotificationEvent::Acknowledged).await,
        ["hook"],
        "the acknowledgement is told as usual"
    );

    // Again: nothing changes, nobody is told twice; the page says so.
    clock.advance(TimeDelta::minutes(1));
    let page = site.post(&path, &token, &[]).await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.body.contains("already acknowledged"), "{}", page.body);
    assert!(
        page.body.contains("by hook at 2026-12-05 03:03:00 UTC"),
        "{}",
        page.body
    );
    assert_eq!(db.db().get_alert(id).await.unwrap().unwrap(), acked);
    assert_eq!(
        events(db.db(), id, NotificationEvent::Acknowledged).await,
        ["hook"]
    );
    let page = site.get(&path).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("already acknowledged"), "{}", page.body);
    assert!(!page.body.contains("<form"), "{}", page.body);

    // Audited as the recipient, with the source address; refusals from
    // nobody known are not.
    let mut audit = db.db().audit_log(None, 100).await.unwrap();
    audit.reverse();
    let seen: Vec<(&str, &str, &str, &str)> = audit
        .iter()
        .map(|e| {
            (
                e.actor.as_str(),
                e.action.as_str(),
                e.target.as_str(),
                e.outcome.as_str(),
            )
        })
        .collect();
    let target = format!("alert:{id}");
    assert_eq!(
        seen,
        [
            ("hook", "ack", target.as_str(), "ok"),
            ("hook", "ack", target.as_str(), "conflict")
        ]
    );
    assert!(audit[0].source.starts_with("127.0.0.1:"), "{audit:?}");
    assert_eq!(audit[0].detail.as_deref(), Some("acknowledge link"));
    assert!(
        !format!("{audit:?}").contains(&token),
        "no token in the log"
    );
}

async fn bad_links_get_the_same_403_page(db: &TestDb) {
    let clock = TestClock::new(t0());
    let site = Site::start(db, CONFIG, Some(links()), clock.clone()).await;
    let id = open(db.db(), "api", "Service api is unhealthy", &["hook"], t0()).await;
    let good = token_of(&links().url(id, "hook", t0()));
    assert_eq!(site.get(&format!("/ack/{good}")).await.status, 200);

    let mut tampered = good.clone().into_bytes();
    let i = tampered.len() / 3;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let expiry = t0() + TimeDelta::hours(24);
    let other_secret = AckLinks::new(&SECRET.repeat(2), "https://ops.example.com", TTL).unwrap();
    let bad = [
        ("tampered", tampered),
        ("unknown alert", links().token(id + 1000, "hook", expiry)),
        ("another secret", other_secret.token(id, "hook", expiry)),
        ("not a token", "nope".to_string()),
    ];
    let refusal = site.get("/ack/nope").await;
    assert_eq!(refusal.status, 403, "{refusal:?}");
    assert_eq!(refusal.content_type, "text/html; charset=utf-8");
    for word in ["signature", "expired", "resolved", "unknown"] {
        assert!(!refusal.body.contains(word), "no detail: {}", refusal.body);
    }
    let refused = |what: &str, page: Page| {
        assert_eq!(
            (page.status, page.body.as_str()),
            (403, refusal.body.as_str()),
            "{what}"
        );
    };
    for (what, token) in &bad {
        let path = format!("/ack/{token}");
        refused(what, site.get(&path).await);
        refused(what, site.post(&path, token, &[]).await);
    }

    // Expired: the same link a second past its TTL, and fine again before.
    let path = format!("/ack/{good}");
    clock.set(expiry);
    refused("expired", site.get(&path).await);
    refused("expired", site.post(&path, &good, &[]).await);
    clock.set(expiry - TimeDelta::seconds(1));
    assert_eq!(site.get(&path).await.status, 200);

    // Links off (no secret): every link is refused.
    let off = Site::start(db, CONFIG, None, clock.clone()).await;
    refused("links off", off.get(&path).await);
    refused("links off", off.post(&path, &good, &[]).await);

    // Nothing was acknowledged; resolved, the link is dead.
    assert_eq!(
        db.db().get_alert(id).await.unwrap().unwrap().status,
        AlertStatus::Open
    );
    db.db()
        .resolve_alert_by_id(id, "fixed", t0())
        .await
        .unwrap()
        .unwrap();
    refused("resolved", site.get(&path).await);
    refused("resolved", site.post(&path, &good, &[]).await);
    assert!(events(db.db(), id, NotificationEvent::Acknowledged)
        .await
        .is_empty());
}

async fn the_page_escapes_what_it_shows(db: &TestDb) {
    let clock = TestClock::new(t0());
    let site = Site::start(db, CONFIG, Some(links()), clock).await;
    let id = open(
        db.db(),
        "api",
        "<script>alert(\"x\")</script> & <b>bold</b>",
        &[],
        t0(),
    )
    .await;
    let page = site
        .get(&format!(
            "/ack/{}",
            token_of(&links().url(id, "<i>hook</i>", t0()))
        ))
        .await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(!page.body.contains("<script>"), "{}", page.body);
    assert!(!page.body.contains("<b>bold"), "{}", page.body);
    assert!(!page.body.contains("<i>hook"), "{}", page.body);
    assert!(
        page.body
            .contains("&lt;script&gt;alert(&quot;x&quot;)&lt;&#x2f;script&gt; &amp; &lt;b&gt;"),
        "{}",
        page.body
    );
}

/// A wiremock receiver that answers 200 to everything.
async fn receiver() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    server
}

async fn bodies(server: &MockServer, path: &str) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == path)
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

fn sender(db: &Db, config: &Config, clock: Arc<dyn Clock>, links: Option<AckLinks>) -> Sender {
    Sender::new(
        db.clone(),
        &config.notify,
        ops_worker::notify::webhook::client(),
        clock,
    )
    .with_ack_links(links.map(Arc::new))
}

async fn a_webhook_gets_a_working_link_in_opened(db: &TestDb) {
    let server = receiver().await;
    let clock = TestClock::new(t0());
    let site = Site::start(db, CONFIG, Some(links()), clock.clone()).await;
    let text = format!(
        "[jobs.x]\nkind = \"command\"\nevery = \"1h\"\ncommand = [\"true\"]\n\
         [notify.hook]\ntype = \"webhook\"\nurl = \"{0}/hook\"\n\
         [notify.chat]\ntype = \"webhook\"\nformat = \"slack\"\nurl = \"{0}/chat\"\n",
        server.uri()
    );
    let config = Config::parse(Path::new("schedules.toml"), &text, &|_| None).unwrap();
    // The sender's links point at the site: what public_url is for.
    let public = AckLinks::new(SECRET, &site.base, TTL).unwrap();
    let s = sender(db.db(), &config, clock.clone(), Some(public));
    let id = open(
        db.db(),
        "api",
        "Service api is unhealthy",
        &["hook", "chat"],
        t0(),
    )
    .await;
    assert_eq!(s.deliver_due().await.unwrap().delivered, 2);

    let hook = bodies(&server, "/hook").await;
    assert_eq!(hook.len(), 1);
    let link = hook[0]["ack_url"].as_str().expect("ack_url").to_string();
    assert!(link.starts_with(&format!("{}/ack/", site.base)), "{link}");
    assert_eq!(
        hook[0]["text"],
        format!("[critical] Service api is unhealthy Acknowledge: {link}")
    );
    let chat = bodies(&server, "/chat").await;
    let chat_text = chat[0]["text"].as_str().unwrap();
    let chat_link = chat_text
        .strip_prefix("[critical] Service api is unhealthy Acknowledge: ")
        .expect(chat_text);
    assert_ne!(chat_link, link, "one link per recipient");
    // The outbox keeps the payload without the link.
    for row in db.db().notifications().list(100).await.unwrap() {
        assert!(!row.payload.contains("/ack/"), "{}", row.payload);
    }

    // The link works: the page, then the button, as the chat recipient.
    let page = site.get(&link).await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.body.contains("Acknowledge as hook"), "{}", page.body);
    let page = site.post(chat_link, &token_of(chat_link), &[]).await;
    assert_eq!(page.status, 200, "{page:?}");
    let alert = db.db().get_alert(id).await.unwrap().unwrap();
    assert_eq!(alert.acknowledged_by.as_deref(), Some("chat"));

    // The acknowledgement itself asks nothing of anyone: no link.
    assert_eq!(s.deliver_due().await.unwrap().delivered, 2);
    let hook = bodies(&server, "/hook").await;
    assert_eq!(hook[1]["event"], "acknowledged");
    assert!(hook[1].get("ack_url").is_none(), "{}", hook[1]);
}

const ESCALATION: &str = r#"
[jobs.escalate]
kind = "escalation"
every = "1m"
policy = { levels = [{ after = "1m", notify = ["person:alice"] }] }

[people.alice]
notify = ["alice"]
"#;

/// One run of the escalation job at `at`.
async fn escalate(config: &Arc<Config>, db: &Db, at: DateTime<Utc>) {
    let clock: Arc<dyn Clock> = Arc::new(ops_worker_jobs::ManualClock::new(at));
    let mut ctx = JobContext::standalone("escalate", at, clock);
    ctx.store = Arc::new(db.clone()) as Arc<dyn Store>;
    ctx.directory = config.clone();
    let job = config.job("escalate").unwrap().job.clone();
    job.run(ctx).await.unwrap();
}

async fn escalation_says_the_link_instead_of_the_cli_command(db: &TestDb) {
    let server = receiver().await;
    let clock = TestClock::new(t0());
    let text = format!(
        "{ESCALATION}[notify.alice]\ntype = \"webhook\"\nformat = \"slack\"\nurl = \"{}/alice\"\n",
        server.uri()
    );
    let config = Arc::new(Config::parse(Path::new("schedules.toml"), &text, &|_| None).unwrap());

    // Without public_url and secret: the CLI command, as before.
    let plain = open(db.db(), "api", "Service api is unhealthy", &[], t0()).await;
    escalate(&config, db.db(), t0() + TimeDelta::minutes(1)).await;
    clock.set(t0() + TimeDelta::minutes(1));
    let s = sender(db.db(), &config, clock.clone(), None);
    assert_eq!(s.deliver_due().await.unwrap().delivered, 1);
    let said = bodies(&server, "/alice").await;
    assert!(
        said[0]["text"].as_str().unwrap().ends_with(&format!(
            "Paging alice. Acknowledge: ops-worker alerts ack {plain}"
        )),
        "{}",
        said[0]
    );

    // With them: the link instead, and no CLI command.
    let linked = open(db.db(), "db", "Service db is unhealthy", &[], t0()).await;
    escalate(&config, db.db(), t0() + TimeDelta::minutes(2)).await;
    clock.set(t0() + TimeDelta::minutes(2));
    let s = sender(db.db(), &config, clock.clone(), Some(links()));
    assert_eq!(s.deliver_due().await.unwrap().delivered, 1);
    let said = bodies(&server, "/alice").await;
    assert_eq!(said.len(), 2, "{said:?}");
    let text = said[1]["text"].as_str().unwrap();
    let (before, link) = text.split_once("Acknowledge: ").expect(text);
    assert!(before.ends_with("Paging alice. "), "{text}");
    assert!(!text.contains("ops-worker alerts ack"), "{text}");
    let claim = links().verify(&token_of(link), t0()).expect("a valid link");
    assert_eq!(
        (claim.alert_id, claim.recipient.as_str()),
        (linked, "alice")
    );
}

/// A secret too short to sign with, or a public URL that is not one,
/// stops `serve` and `run` at start: one line naming the variable (never
/// the secret), exit 2, before any database is opened.
#[test]
fn a_short_secret_or_a_bad_public_url_stops_serve_and_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("schedules.toml"), CONFIG).unwrap();
    for (var, value, said) in [
        (
            "OPS_WORKER_SECRET",
            "short-s3cret",
            "error: OPS_WORKER_SECRET: must be at least 32 bytes of randomness (e.g. `openssl rand -hex 32`), found 12",
        ),
        (
            "OPS_WORKER_PUBLIC_URL",
            "ftp://ops.example.com",
            "error: OPS_WORKER_PUBLIC_URL: must be an http:// or https:// URL",
        ),
    ] {
        for args in [
            ["serve", "--addr", "127.0.0.1:0"],
            ["run", "--http-addr", "127.0.0.1:0"],
        ] {
            let out = crate::cli::bin(dir.path())
                .env(var, value)
                .args(args)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?} {var}: {err}");
            assert_eq!(err.trim_end(), said, "{args:?}");
            if var == "OPS_WORKER_SECRET" {
                assert!(!err.contains(value), "{err}");
            }
        }
    }
    assert!(!dir.path().join("ops-worker.db").exists());
}

/// Issue 24: every channel's message carries the link: both parts of an
/// email (over the test SMTP server), PagerDuty's `links`, a template's
/// `ack_url`.
async fn email_pagerduty_and_templates_carry_the_link(db: &TestDb) {
    let server = receiver().await;
    let smtp = crate::smtp::SmtpServer::start("ops", "s3cret-pa55").await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("smtp-ca.pem");
    std::fs::write(&ca, &smtp.cert_pem).unwrap();
    let text = format!(
        "[jobs.x]\nkind = \"command\"\nevery = \"1h\"\ncommand = [\"true\"]\n\
         [notify.mail]\ntype = \"email\"\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"starttls\"\n\
         username = \"ops\"\npassword = \"s3cret-pa55\"\nfrom = \"ops-worker@example.com\"\n\
         to = [\"oncall@example.com\"]\nca_file = \"{ca}\"\ntimeout = \"5s\"\n\
         [notify.pd]\ntype = \"pagerduty\"\nrouting_key = \"R0UTINGKEY0123456789\"\nurl = \"{uri}/pd\"\n\
         [notify.t]\ntype = \"webhook\"\nurl = \"{uri}/t\"\nformat = \"template\"\n\
         content_type = \"text/plain\"\ntemplate = \"{{{{ ack_url }}}}|{{{{ text }}}}\"\n",
        port = smtp.port,
        ca = ca.display(),
        uri = server.uri(),
    );
    let config = Config::parse(Path::new("schedules.toml"), &text, &|_| None).unwrap();
    let clock = TestClock::new(t0());
    let s = sender(db.db(), &config, clock, Some(links()));
    let id = open(
        db.db(),
        "api",
        "Service api is unhealthy",
        &["mail", "pd", "t"],
        t0(),
    )
    .await;
    assert_eq!(s.deliver_due().await.unwrap().delivered, 3);
    let link = |target: &str| links().url(id, target, t0());

    let mails = smtp.mails();
    assert_eq!(mails.len(), 1);
    // Quoted-printable wraps long lines with a soft break ("=" at the end).
    let data = mails[0].data.replace("=\r\n", "").replace("=3D", "=");
    assert!(
        data.contains(&format!("Acknowledge: {}", link("mail"))),
        "{data}"
    );
    // The HTML part escapes "/" as an entity, which browsers decode.
    assert!(
        data.replace("&#x2f;", "/")
            .contains(&format!("<a href=\"{}\">Acknowledge</a>", link("mail"))),
        "{data}"
    );
    assert!(!data.contains("ops-worker alerts ack"), "{data}");

    let pd = bodies(&server, "/pd").await;
    assert_eq!(
        pd[0]["links"],
        serde_json::json!([{ "href": link("pd"), "text": "Acknowledge in ops-worker" }])
    );
    let t: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/t")
        .map(|r| String::from_utf8(r.body.clone()).unwrap())
        .collect();
    assert_eq!(
        t,
        [format!(
            "{0}|[critical] Service api is unhealthy Acknowledge: {0}",
            link("t")
        )]
    );
}
