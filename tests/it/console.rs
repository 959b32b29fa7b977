//! The web console through plain HTTP on both backends: sign-in and
//! sign-out with the cookie's flags, the CSRF token and the cross-site
//! check on every write, a viewer's forged write, and escaping of what
//! jobs and alerts write. The real-browser tests are in `console_browser.rs`.
#![allow(dead_code)]

use chrono::{TimeDelta, Utc};
use ops_worker::db::{Finish, NewRun, RunStatus, Trigger};
use ops_worker_jobs::reqwest::{self, redirect, StatusCode};
use ops_worker_jobs::store::{AlertSource, AlertStatus, AlertStore, NewAlert, Severity};

use crate::api::{hex, tokens, Api, CONFIG, OPERATOR, VIEWER};
use crate::helpers::TestDb;

crate::backend_tests!(
    sign_in_sets_a_hashed_session_and_sign_out_ends_it,
    writes_need_the_csrf_token_and_an_operator,
    output_and_messages_are_escaped,
    without_tokens_every_visitor_is_an_operator,
    pages_and_the_api_are_gzipped_for_a_client_that_accepts_it,
);

/// A browser-like client of the console: no redirects followed, one cookie.
pub struct Client {
    pub base: String,
    http: reqwest::Client,
    pub cookie: Option<String>,
}

/// A response's status, headers and body.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub set_cookie: Option<String>,
    pub fragment: bool,
    pub body: String,
}

impl Client {
    pub fn new(api: &Api) -> Client {
        Client {
            base: api.base.clone(),
            http: ops_worker_jobs::health::http_client_builder()
                .redirect(redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Page {
        let req = match &self.cookie {
            Some(c) => req.header("cookie", format!("ops_console={c}")),
            None => req,
        };
        let resp = req.send().await.expect("request");
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Page {
            status: resp.status(),
            location: header("location"),
            set_cookie: header("set-cookie"),
            fragment: header("x-console-fragment").is_some(),
            body: resp.text().await.unwrap(),
        }
    }

    pub async fn get(&self, path: &str) -> Page {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    pub async fn get_with(&self, path: &str, header: (&str, &str)) -> Page {
        self.send(
            self.http
                .get(format!("{}{path}", self.base))
                .header(header.0, header.1),
        )
        .await
    }

    /// A form POST as a page of the console sends it (`Sec-Fetch-Site:
    /// same-origin` unless `extra` says otherwise), with `extra` headers.
    pub async fn post(&self, path: &str, form: &[(&str, &str)], extra: &[(&str, &str)]) -> Page {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(form)
                    .finish(),
            );
        if !extra.iter().any(|(k, _)| *k == "sec-fetch-site") {
            req = req.header("sec-fetch-site", "same-origin");
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        self.send(req).await
    }

    /// Signs in with `token`; panics unless that works.
    pub async fn sign_in(&mut self, token: &str) -> Page {
        let p = self.post("/login", &[("token", token)], &[]).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{p:?}");
        let cookie = p.set_cookie.clone().expect("a session cookie");
        let value = cookie
            .split(';')
            .next()
            .and_then(|kv| kv.strip_prefix("ops_console="))
            .expect("the ops_console cookie");
        self.cookie = Some(value.to_string());
        p
    }
}

/// The CSRF token in a page's forms.
pub fn csrf(body: &str) -> String {
    let at = body
        .find(r#"name="csrf" value=""#)
        .unwrap_or_else(|| panic!("no CSRF token in the page: {body}"));
    let rest = &body[at + r#"name="csrf" value=""#.len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

pub async fn open_alert(db: &TestDb, subject: &str, message: &str) -> i64 {
    db.db()
        .open_alert(
            &NewAlert {
                fingerprint: format!("system:service:{subject}"),
                source: AlertSource::Service,
                subject: subject.to_string(),
                severity: Severity::Critical,
                message: message.to_string(),
                opened_at: Utc::now() - TimeDelta::minutes(3),
            },
            &[],
        )
        .await
        .unwrap()
        .expect("opened")
        .id
}

pub async fn finished_run(db: &TestDb, job: &str, status: RunStatus, output: &str) -> i64 {
    let slot = Utc::now() - TimeDelta::minutes(1);
    let run = NewRun {
        job_name: job.into(),
        kind: "command".into(),
        scheduled_for: slot,
        trigger: Trigger::Schedule,
        attempt: 1,
        worker_id: "w".into(),
        started_at: slot,
        missed: 2,
        jitter_ms: None,
    };
    let finish = Finish {
        status,
        finished_at: slot + TimeDelta::seconds(5),
        error: (status != RunStatus::Success).then(|| "exit status 1".to_string()),
        output: Some(output.to_string()),
        duration_ms: 5000,
    };
    assert!(db.db().insert_finished_run(&run, &finish).await.unwrap());
    db.db().history(Some(job), 1).await.unwrap()[0].id
}

fn sha256_hex(s: &str) -> String {
    hex(&ops_worker::config::sha256(s.as_bytes()))
}

async fn sign_in_sets_a_hashed_session_and_sign_out_ends_it(db: &TestDb) {
    let api = Api::start(db, &format!("{CONFIG}{}", tokens())).await;
    let mut c = Client::new(&api);
    let p = c.get("/").await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{p:?}");
    assert_eq!(p.location.as_deref(), Some("/login"));
    let p = c.get("/login").await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains(r#"name="token""#), "{}", p.body);

    let p = c
        .post("/login", &[("token", "not-a-token-0123456789")], &[])
        .await;
    assert_eq!(p.status, StatusCode::UNAUTHORIZED);
    assert!(p.set_cookie.is_none());
    assert!(!p.body.contains("not-a-token"), "the token is echoed");
    // A sign-in from another site's page is refused.
    let p = c
        .post(
            "/login",
            &[("token", OPERATOR)],
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(p.set_cookie.is_none());

    let p = c.sign_in(OPERATOR).await;
    let cookie = p.set_cookie.unwrap();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    let id = c.cookie.clone().unwrap();
    assert!(id.len() >= 64, "{id}");
    // Stored hashed: the id itself finds nothing.
    let now = Utc::now();
    assert_eq!(
        db.db()
            .session_token(&sha256_hex(&id), now)
            .await
            .unwrap()
            .as_deref(),
        Some("ops")
    );
    assert_eq!(db.db().session_token(&id, now).await.unwrap(), None);

    let p = c.get("/").await;
    assert_eq!(p.status, StatusCode::OK, "{p:?}");
    assert!(p.body.contains("ops · operator"), "{}", p.body);
    assert!(p.body.contains("backup") && p.body.contains("tick"));

    // Behind an https proxy the cookie is Secure.
    let p = Client::new(&api)
        .post(
            "/login",
            &[("token", VIEWER)],
            &[("x-forwarded-proto", "https")],
        )
        .await;
    assert!(p.set_cookie.unwrap().contains("; Secure"));

    // Sign-out needs the form's token, then ends the session.
    let page = c.get("/").await.body;
    let p = c.post("/logout", &[], &[]).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let p = c.post("/logout", &[("csrf", &csrf(&page))], &[]).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{p:?}");
    assert!(p.set_cookie.unwrap().contains("Max-Age=0"));
    assert_eq!(
        db.db().session_token(&sha256_hex(&id), now).await.unwrap(),
        None
    );
    let p = c.get("/").await;
    assert_eq!(p.location.as_deref(), Some("/login"), "{p:?}");
}

async fn writes_need_the_csrf_token_and_an_operator(db: &TestDb) {
    let api = Api::start(db, &format!("{CONFIG}{}", tokens())).await;
    let first = open_alert(db, "api", "Service api is down").await;
    let second = open_alert(db, "db", "Service db is down").await;
    let mut op = Client::new(&api);
    op.sign_in(OPERATOR).await;
    let page = op.get("/alerts").await;
    assert!(page
        .body
        .contains(&format!(r#"action="/alerts/{first}/ack""#)));
    let token = csrf(&page.body);
    let ack = format!("/alerts/{first}/ack");

    let refused = [
        op.post(&ack, &[], &[]).await,
        op.post(&ack, &[("csrf", "0123")], &[]).await,
        op.post(&ack, &[("csrf", &csrf_of_another_session(&api).await)], &[])
            .await,
        op.post(
            &ack,
            &[("csrf", &token)],
            &[("sec-fetch-site", "cross-site")],
        )
        .await,
        op.post(
            &ack,
            &[("csrf", &token)],
            &[
                ("sec-fetch-site", "cross-site"),
                ("origin", "https://evil.example"),
            ],
        )
        .await,
    ];
    for p in &refused {
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{p:?}");
    }
    let a = db.db().get_alert(first).await.unwrap().unwrap();
    assert_eq!(a.status, AlertStatus::Open);

    let p = op.post(&ack, &[("csrf", &token)], &[]).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{p:?}");
    let a = db.db().get_alert(first).await.unwrap().unwrap();
    assert_eq!(a.status, AlertStatus::Acknowledged);
    assert_eq!(a.acknowledged_by.as_deref(), Some("ops"));

    // A viewer sees no write buttons; its forged write is refused and audited.
    let mut viewer = Client::new(&api);
    viewer.sign_in(VIEWER).await;
    for path in ["/", "/alerts", "/jobs/tick"] {
        let p = viewer.get(path).await;
        assert_eq!(p.status, StatusCode::OK, "{path}: {p:?}");
        for button in ["Acknowledge", "Resolve", "Run now", "Pause", "Resume"] {
            let b = format!(">{button}</button>");
            assert!(!p.body.contains(&b), "{path} shows {button} to a viewer");
        }
        // The sign-out form only.
        assert_eq!(p.body.matches(r#"method="post""#).count(), 1, "{path}");
    }
    let vtoken = csrf(&viewer.get("/alerts").await.body);
    let forged = [
        viewer
            .post(&format!("/alerts/{second}/ack"), &[("csrf", &vtoken)], &[])
            .await,
        viewer
            .post("/jobs/tick/run", &[("csrf", &vtoken)], &[])
            .await,
        viewer
            .post(
                "/jobs/tick/pause",
                &[("csrf", &vtoken), ("until", "1h")],
                &[],
            )
            .await,
    ];
    for p in &forged {
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{p:?}");
    }
    let a = db.db().get_alert(second).await.unwrap().unwrap();
    assert_eq!(a.status, AlertStatus::Open);
    assert!(db.db().pauses().await.unwrap().is_empty());

    // Pause through the console, with until and reason; then resume.
    let jtoken = csrf(&op.get("/jobs/tick").await.body);
    let p = op
        .post(
            "/jobs/tick/pause",
            &[
                ("csrf", &jtoken),
                ("until", "2h"),
                ("reason", "maintenance"),
            ],
            &[],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{p:?}");
    let pauses = db.db().pauses().await.unwrap();
    assert_eq!(pauses.len(), 1);
    assert_eq!(pauses[0].reason.as_deref(), Some("maintenance"));
    assert_eq!(pauses[0].paused_by, "ops");
    let page = op.get("/jobs/tick").await.body;
    assert!(page.contains("Resume") && page.contains("maintenance"));
    let bad = op
        .post(
            "/jobs/tick/pause",
            &[("csrf", &jtoken), ("until", "soon")],
            &[],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{bad:?}");
    assert!(bad.body.contains("until"), "{}", bad.body);
    let p = op
        .post("/jobs/tick/resume", &[("csrf", &jtoken)], &[])
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{p:?}");

    let audit: Vec<_> = db
        .db()
        .audit_log(None, 100)
        .await
        .unwrap()
        .into_iter()
        .rev()
        .map(|e| format!("{} {} {} {}", e.actor, e.action, e.target, e.outcome))
        .collect();
    assert_eq!(
        audit,
        [
            format!("ops ack alert:{first} ok"),
            format!("grafana ack alert:{second} forbidden"),
            "grafana run job:tick forbidden".to_string(),
            "grafana pause job:tick forbidden".to_string(),
            "ops pause job:tick ok".to_string(),
            "ops pause job:tick invalid".to_string(),
            "ops resume job:tick ok".to_string(),
        ]
    );
}

/// The CSRF token of a fresh operator session of `api`.
async fn csrf_of_another_session(api: &Api) -> String {
    let mut other = Client::new(api);
    other.sign_in(OPERATOR).await;
    csrf(&other.get("/alerts").await.body)
}

async fn output_and_messages_are_escaped(db: &TestDb) {
    let api = Api::start(db, &format!("{CONFIG}{}", tokens())).await;
    let xss = "<script>alert('x')</script>";
    let run = finished_run(
        db,
        "tick",
        RunStatus::Failed,
        &format!("before {xss} after"),
    )
    .await;
    open_alert(db, "web", &format!("Service web: {xss}")).await;
    let mut c = Client::new(&api);
    c.sign_in(VIEWER).await;
    for path in [
        "/".to_string(),
        "/alerts".to_string(),
        format!("/runs/{run}"),
        "/jobs/tick".to_string(),
    ] {
        let p = c.get(&path).await;
        assert_eq!(p.status, StatusCode::OK, "{path}: {p:?}");
        assert!(!p.body.contains("<script>alert"), "{path}: {}", p.body);
    }
    let p = c.get(&format!("/runs/{run}")).await;
    assert!(p.body.contains("&lt;script&gt;alert("), "{}", p.body);
    assert!(
        p.body
            .contains("<pre class=\"output\">before &lt;script&gt;"),
        "{}",
        p.body
    );
    let p = c.get("/").await;
    assert!(p.body.contains("Service web: &lt;script&gt;"), "{}", p.body);
    // The job's page shows the failed run and the missed slots before it.
    let p = c.get("/jobs/tick").await;
    assert!(
        p.body.contains(&format!(r#"href="/runs/{run}""#)),
        "{}",
        p.body
    );
    let at = p.body.find(r#"<figure class="timeline">"#).unwrap();
    let timeline = &p.body[at..at + p.body[at..].find("</svg>").unwrap()];
    assert_eq!(
        timeline.matches(r#"class="m-missed""#).count(),
        2,
        "{timeline}"
    );
    assert_eq!(
        timeline.matches(r#"class="m-failed""#).count(),
        1,
        "{timeline}"
    );

    // The script's polling gets the live part alone.
    let p = c.get_with("/", ("x-console-fragment", "1")).await;
    assert!(p.fragment);
    assert!(!p.body.contains("<html"), "{}", p.body);
    assert!(p.body.contains("Service web"));
    // Who is on call now (the one member of the test's schedule).
    let p = c.get("/oncall").await;
    assert_eq!(p.status, StatusCode::OK, "{p:?}");
    assert!(p.body.contains("Now: <strong>alice</strong>"), "{}", p.body);
    // Unknown things are pages with the right status, not 500s.
    assert_eq!(c.get("/runs/999999").await.status, StatusCode::NOT_FOUND);
    assert_eq!(c.get("/runs/abc").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(c.get("/jobs/nope").await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        c.get("/jobs/tick?status=bogus").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        c.get("/alerts?status=bogus").await.status,
        StatusCode::BAD_REQUEST
    );
}

async fn without_tokens_every_visitor_is_an_operator(db: &TestDb) {
    let api = Api::start(db, CONFIG).await;
    let c = Client::new(&api);
    let p = c.get("/login").await;
    assert_eq!(p.location.as_deref(), Some("/"));
    let p = c.get("/").await;
    assert_eq!(p.status, StatusCode::OK, "{p:?}");
    assert!(!p.body.contains("Sign out"));
    let a = open_alert(db, "api", "Service api is down").await;
    let page = c.get("/alerts").await.body;
    let p = c
        .post(&format!("/alerts/{a}/ack"), &[("csrf", &csrf(&page))], &[])
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{p:?}");
    let a = db.db().get_alert(a).await.unwrap().unwrap();
    assert_eq!(a.acknowledged_by.as_deref(), Some("local"));
    // Still guarded: no token, no write.
    let b = open_alert(db, "db", "Service db is down").await;
    let p = c.post(&format!("/alerts/{b}/ack"), &[], &[]).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    // The static files are served from the binary.
    let js = c.get("/console/console.js").await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js.body.contains("X-Console-Fragment"));
    assert_eq!(c.get("/console/console.css").await.status, StatusCode::OK);
}

/// A browser offering gzip gets the overview (and the API's JSON)
/// compressed, the same page; a client that offers nothing gets it plain.
async fn pages_and_the_api_are_gzipped_for_a_client_that_accepts_it(db: &TestDb) {
    use std::io::Read;
    let api = Api::start(db, CONFIG).await;
    let c = Client::new(&api);
    for path in ["/", "/api/v1/jobs"] {
        let fetch = |encoding: Option<&'static str>| {
            let mut req = c.http.get(format!("{}{path}", c.base));
            if path.starts_with("/api") {
                req = req.bearer_auth(OPERATOR);
            }
            if let Some(e) = encoding {
                req = req.header("accept-encoding", e);
            }
            async move {
                let resp = req.send().await.unwrap();
                assert_eq!(resp.status(), StatusCode::OK, "{path}");
                let encoding = resp
                    .headers()
                    .get("content-encoding")
                    .map(|v| v.to_str().unwrap().to_string());
                (encoding, resp.bytes().await.unwrap().to_vec())
            }
        };
        let (plain_encoding, plain) = fetch(None).await;
        assert_eq!(plain_encoding, None, "{path}");
        let (encoding, gz) = fetch(Some("br;q=1.0, gzip;q=0.8")).await;
        assert_eq!(encoding.as_deref(), Some("gzip"), "{path}");
        let mut unzipped = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut unzipped)
            .unwrap();
        let plain = String::from_utf8(plain).unwrap();
        // The same page (up to its relative times and tokens): the same
        // jobs, and much smaller on the wire.
        for job in ["tick", "backup"] {
            assert_eq!(unzipped.contains(job), plain.contains(job), "{path}: {job}");
        }
        assert!(plain.contains("tick"), "{path}: {plain}");
        assert!(
            gz.len() * 2 < plain.len(),
            "{path}: {} of {}",
            gz.len(),
            plain.len()
        );
    }
}
