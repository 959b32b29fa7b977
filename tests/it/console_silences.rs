//! Silences through the console, over plain HTTP on both backends: an
//! operator adds and removes one (rows in `silences` and `audit_log`), a
//! viewer sees no form and its forged writes are refused, a bad match or
//! duration gives the form back with its one-line error, and the alerts
//! feed and the overview banner say what silences an alert and why.

use chrono::Utc;
use ops_worker_jobs::reqwest::StatusCode;

use crate::api::{tokens, Api, CONFIG, OPERATOR, VIEWER};
use crate::console::{csrf, open_alert, Client};
use crate::helpers::TestDb;

crate::backend_tests!(
    an_operator_adds_and_removes_a_silence,
    a_viewer_cannot_silence,
    a_bad_form_comes_back_with_its_error,
    silenced_alerts_say_why_and_reasons_are_escaped,
);

/// A maintenance window open for the whole test.
const WINDOW: &str = r#"
[maintenance.db-upgrade]
start = "2020-01-01T00:00:00Z"
end = "2099-01-01T00:00:00Z"
match = ["system:service:db"]
"#;

async fn audit(db: &TestDb) -> Vec<String> {
    db.db()
        .audit_log(None, 100)
        .await
        .unwrap()
        .into_iter()
        .rev()
        .map(|e| format!("{} {} {} {}", e.actor, e.action, e.target, e.outcome))
        .collect()
}

async fn an_operator_adds_and_removes_a_silence(db: &TestDb) {
    let api = Api::start(db, &format!("{CONFIG}{}", tokens())).await;
    let mut op = Client::new(&api);
    op.sign_in(OPERATOR).await;
    let page = op.get("/silences").await;
    assert_eq!(page.status, StatusCode::OK, "{page:?}");
    assert!(page.body.contains("No active silence."), "{}", page.body);
    assert!(
        page.body.contains(r#"href="/silences""#),
        "the nav links it"
    );
    let token = csrf(&page.body);

    // Without the form's token, nothing is stored.
    let form = [
        ("match", "system:service:api"),
        ("for", "2h"),
        ("reason", "db upgrade"),
    ];
    let p = op.post("/silences", &form, &[]).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN, "{p:?}");
    assert!(db.db().silences(Utc::now(), true).await.unwrap().is_empty());

    let mut with_csrf = form.to_vec();
    with_csrf.push(("csrf", &token));
    let before = Utc::now();
    let p = op.post("/silences", &with_csrf, &[]).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{p:?}");
    assert_eq!(p.location.as_deref(), Some("/silences"));
    let stored = db.db().silences(Utc::now(), false).await.unwrap();
    assert_eq!(stored.len(), 1, "{stored:?}");
    let s = &stored[0];
    assert_eq!(s.pattern, "system:service:api");
    assert_eq!(s.reason, "db upgrade");
    assert_eq!(s.created_by, "ops");
    let length = s.ends_at - s.starts_at;
    assert_eq!(length, chrono::TimeDelta::hours(2), "{s:?}");
    assert!(s.starts_at >= before - chrono::TimeDelta::seconds(1));

    let page = op.get("/silences").await.body;
    assert!(
        page.contains(&format!(r#"id="silence-{}""#, s.id)),
        "{page}"
    );
    assert!(page.contains("system:service:api") && page.contains("db upgrade"));
    let remove = format!("/silences/{}/remove", s.id);
    assert!(page.contains(&format!(r#"action="{remove}""#)), "{page}");

    let p = op.post(&remove, &[("csrf", &token)], &[]).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{p:?}");
    assert!(db.db().silences(Utc::now(), true).await.unwrap().is_empty());
    // Again: there is no such silence any more.
    let p = op.post(&remove, &[("csrf", &token)], &[]).await;
    assert_eq!(p.status, StatusCode::NOT_FOUND, "{p:?}");
    assert!(
        p.body.contains(&format!("no silence {}", s.id)),
        "{}",
        p.body
    );

    assert_eq!(
        audit(db).await,
        [
            "ops silence match:system:service:api ok".to_string(),
            format!("ops unsilence silence:{} ok", s.id),
            format!("ops unsilence silence:{} not_found", s.id),
        ]
    );
}

async fn a_viewer_cannot_silence(db: &TestDb) {
    let api = Api::start(db, &format!("{CONFIG}{}", tokens())).await;
    let s = db
        .db()
        .add_silence(
            "job:*",
            Utc::now(),
            Utc::now() + chrono::TimeDelta::hours(1),
            "deploy",
            "ops",
        )
        .await
        .unwrap();
    let mut viewer = Client::new(&api);
    viewer.sign_in(VIEWER).await;
    let page = viewer.get("/silences").await;
    assert_eq!(page.status, StatusCode::OK, "{page:?}");
    // It sees the silence, and no form but sign-out's.
    assert!(page.body.contains("deploy"), "{}", page.body);
    assert_eq!(
        page.body.matches(r#"method="post""#).count(),
        1,
        "{}",
        page.body
    );
    assert!(!page.body.contains(">Remove</button>"));
    assert!(!page.body.contains(r#"action="/silences""#));
    let token = csrf(&page.body);
    let forged = [
        viewer
            .post(
                "/silences",
                &[
                    ("csrf", &token),
                    ("match", "*"),
                    ("for", "1h"),
                    ("reason", "quiet"),
                ],
                &[],
            )
            .await,
        viewer
            .post(
                &format!("/silences/{}/remove", s.id),
                &[("csrf", &token)],
                &[],
            )
            .await,
    ];
    for p in &forged {
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{p:?}");
    }
    let stored = db.db().silences(Utc::now(), true).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        audit(db).await,
        [
            "grafana silence match:* forbidden".to_string(),
            format!("grafana unsilence silence:{} forbidden", s.id),
        ]
    );
}

async fn a_bad_form_comes_back_with_its_error(db: &TestDb) {
    let api = Api::start(db, &format!("{CONFIG}{}", tokens())).await;
    let mut op = Client::new(&api);
    op.sign_in(OPERATOR).await;
    let token = csrf(&op.get("/silences").await.body);
    let cases = [
        (
            ("job:back?p", "2h", "restore test"),
            r#"match: invalid glob &quot;job:back?p&quot;: &#x27;?&#x27; is not supported"#,
        ),
        (
            ("job:backup", "soon", "restore test"),
            "for: invalid duration",
        ),
        (
            ("job:backup", "0s", "restore test"),
            "for: must be more than 0s",
        ),
        (("job:backup", "2h", ""), "reason: say why"),
    ];
    for ((pattern, duration, reason), error) in cases {
        let p = op
            .post(
                "/silences",
                &[
                    ("csrf", &token),
                    ("match", pattern),
                    ("for", duration),
                    ("reason", reason),
                ],
                &[],
            )
            .await;
        assert_eq!(
            p.status,
            StatusCode::BAD_REQUEST,
            "{pattern} {duration}: {p:?}"
        );
        assert!(p.body.contains(error), "{error}: {}", p.body);
        // The form again, with what was typed, and not refreshed away.
        assert!(p.body.contains(r#"action="/silences""#), "{}", p.body);
        assert!(
            p.body
                .contains(&format!(r#"name="for" value="{duration}""#)),
            "{}",
            p.body
        );
        assert!(!p.body.contains("data-live"), "{}", p.body);
    }
    assert!(db.db().silences(Utc::now(), true).await.unwrap().is_empty());
    let audit = audit(db).await;
    assert_eq!(audit.len(), 4, "{audit:?}");
    assert!(audit.iter().all(|a| a.ends_with(" invalid")), "{audit:?}");
    // A path that is not an id is a 400 page, not a 500.
    let p = op
        .post("/silences/abc/remove", &[("csrf", &token)], &[])
        .await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST, "{p:?}");
}

async fn silenced_alerts_say_why_and_reasons_are_escaped(db: &TestDb) {
    let api = Api::start(db, &format!("{CONFIG}{WINDOW}")).await;
    let c = Client::new(&api);
    let api_alert = open_alert(db, "api", "Service api is down").await;
    let db_alert = open_alert(db, "db", "Service db is down").await;
    let web_alert = open_alert(db, "web", "Service web is down").await;
    let token = csrf(&c.get("/silences").await.body);
    let xss = "<script>alert('x')</script>";
    let p = c
        .post(
            "/silences",
            &[
                ("csrf", &token),
                ("match", "system:service:api"),
                ("for", "2h"),
                ("reason", &format!("upgrade {xss}")),
            ],
            &[],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{p:?}");
    let id = db.db().silences(Utc::now(), false).await.unwrap()[0].id;

    let silences = c.get("/silences").await.body;
    assert!(
        silences.contains("db-upgrade"),
        "the open window: {silences}"
    );
    assert!(silences.contains("upgrade &lt;script&gt;"), "{silences}");

    for path in ["/", "/alerts"] {
        let p = c.get(path).await;
        assert_eq!(p.status, StatusCode::OK, "{path}: {p:?}");
        assert!(!p.body.contains("<script>alert"), "{path}: {}", p.body);
        let item = |alert: i64| {
            let at = p
                .body
                .find(&format!("#{alert}"))
                .unwrap_or_else(|| panic!("{path}: no alert {alert}: {}", p.body));
            let rest = &p.body[at..];
            // Up to the next alert.
            let end = rest[1..].find("#").map_or(rest.len(), |e| e + 1);
            rest[..end].to_string()
        };
        let a = item(api_alert);
        assert!(
            a.contains(&format!("silence {id} until ")) && a.contains(": upgrade &lt;script&gt;"),
            "{path}: {a}"
        );
        let d = item(db_alert);
        assert!(
            d.contains("maintenance window db-upgrade until 2099-01-01 00:00:00Z"),
            "{path}: {d}"
        );
        let w = item(web_alert);
        assert!(!w.contains("silenced"), "{path}: {w}");
    }
}
