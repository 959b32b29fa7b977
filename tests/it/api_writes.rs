//! The API's writes through real HTTP on both backends: the auth matrix
//! (no token, wrong token, viewer, operator) for every write, what each
//! write does, and the audit row every attempt leaves.

use chrono::Utc;
use ops_worker_jobs::store::{AlertSource, AlertStore, NewAlert, Severity};
use serde_json::Value;

use crate::api::{error_code, tokens, Api, CONFIG, OPERATOR, VIEWER};
use crate::helpers::TestDb;

crate::backend_tests!(
    every_write_needs_an_operator_token_and_is_audited,
    without_tokens_every_request_is_a_local_operator,
    cross_site_writes_are_refused,
);

async fn open_alert(db: &TestDb, subject: &str) -> i64 {
    db.db()
        .open_alert(
            &NewAlert {
                fingerprint: format!("system:service:{subject}"),
                source: AlertSource::Service,
                subject: subject.to_string(),
                severity: Severity::Warning,
                message: format!("Service {subject} is unhealthy"),
                opened_at: Utc::now(),
            },
            &[],
        )
        .await
        .unwrap()
        .expect("opened")
        .id
}

async fn audit(api: &Api) -> Vec<Value> {
    let r = api.get("/api/v1/audit?limit=500", Some(VIEWER)).await;
    assert_eq!(r.status, 200, "{r:?}");
    let mut items = r.json["items"].as_array().unwrap().clone();
    items.reverse();
    items
}

async fn every_write_needs_an_operator_token_and_is_audited(db: &TestDb) {
    let config = format!("{CONFIG}{}", tokens());
    let api = Api::start(db, &config).await;
    let a1 = open_alert(db, "api").await;
    let a2 = open_alert(db, "db").await;
    let writes: Vec<(String, Option<&str>, &str, String)> = vec![
        (
            "/api/v1/jobs/tick/pause".to_string(),
            Some(r#"{"until": "2h", "reason": "maintenance"}"#),
            "pause",
            "job:tick".to_string(),
        ),
        (
            "/api/v1/jobs/tick/resume".to_string(),
            None,
            "resume",
            "job:tick".to_string(),
        ),
        (
            format!("/api/v1/alerts/{a1}/ack"),
            None,
            "ack",
            format!("alert:{a1}"),
        ),
        (
            format!("/api/v1/alerts/{a2}/resolve"),
            Some(r#"{"note": "fixed the disk"}"#),
            "resolve",
            format!("alert:{a2}"),
        ),
    ];
    for (path, body, action, target) in &writes {
        // No token and a wrong one: 401 without detail, nothing recorded
        // (there is nobody to record).
        for token in [None, Some("not-a-token-of-this-api")] {
            let r = api.post(path, token, *body).await;
            assert_eq!(r.status, 401, "{path} {token:?}: {r:?}");
            assert_eq!(error_code(&r), "unauthorized");
        }
        // The viewer: 403, recorded as forbidden, nothing done.
        let r = api.post(path, Some(VIEWER), *body).await;
        assert_eq!(r.status, 403, "{path}: {r:?}");
        assert_eq!(error_code(&r), "forbidden");
        let last = audit(&api).await.pop().unwrap();
        assert_eq!(
            (
                &last["actor"],
                &last["action"],
                &last["target"],
                &last["outcome"]
            ),
            (
                &Value::from("grafana"),
                &Value::from(*action),
                &Value::from(target.as_str()),
                &Value::from("forbidden")
            )
        );
        assert!(last["source"].as_str().unwrap().starts_with("127.0.0.1:"));
        // The operator: done and recorded.
        let r = api.post(path, Some(OPERATOR), *body).await;
        assert_eq!(r.status, 200, "{path}: {r:?}");
        let last = audit(&api).await.pop().unwrap();
        assert_eq!(last["actor"], "ops");
        assert_eq!(last["action"], *action);
        assert_eq!(last["outcome"], "ok");
    }
    // What the writes did.
    let pauses = db.db().pauses().await.unwrap();
    assert_eq!(pauses[0].paused_by, "ops");
    assert_eq!(pauses[0].reason.as_deref(), Some("maintenance"));
    assert!(pauses[0].until.unwrap() <= Utc::now());
    let acked = db.db().get_alert(a1).await.unwrap().unwrap();
    assert_eq!(acked.acknowledged_by.as_deref(), Some("ops"));
    let resolved = db.db().get_alert(a2).await.unwrap().unwrap();
    assert_eq!(resolved.resolution_note.as_deref(), Some("fixed the disk"));
    // A second ack: 409, recorded as a conflict; an unknown job: 404.
    let again = api
        .post(&format!("/api/v1/alerts/{a1}/ack"), Some(OPERATOR), None)
        .await;
    assert_eq!(again.status, 409, "{again:?}");
    assert_eq!(audit(&api).await.pop().unwrap()["outcome"], "conflict");
    let unknown = api
        .post("/api/v1/jobs/nope/pause", Some(OPERATOR), None)
        .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(audit(&api).await.pop().unwrap()["outcome"], "not_found");
    // Every attempt with a valid token is in the log: 4 x (forbidden, ok) + 2.
    assert_eq!(audit(&api).await.len(), 10);
    // Reads need a token too; any role reads.
    assert_eq!(api.get("/api/v1/jobs", None).await.status, 401);
    assert_eq!(api.get("/api/v1/jobs", Some(VIEWER)).await.status, 200);
    assert_eq!(api.get("/api/v1/jobs", Some(OPERATOR)).await.status, 200);
}

async fn without_tokens_every_request_is_a_local_operator(db: &TestDb) {
    let api = Api::start(db, CONFIG).await;
    let r = api
        .post(
            "/api/v1/jobs/backup/pause",
            None,
            Some(r#"{"reason": "x"}"#),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["paused_by"], "local");
    assert_eq!(r.json["until"], Value::Null);
    let listed = api.get("/api/v1/jobs/backup", None).await;
    assert_eq!(listed.json["paused"]["reason"], "x");
    let r = api.post("/api/v1/jobs/backup/resume", None, None).await;
    assert_eq!(r.json["resumed"], true);
    let log = audit(&api).await;
    assert_eq!(log.len(), 2);
    assert_eq!(log[0]["actor"], "local");
}

/// A page of another site may make the operator's browser POST to the
/// loopback API, which has no token to withhold: such writes get 403 and
/// are not carried out; the same request from the API's own origin, or from a
/// client that sends no Origin, goes through.
async fn cross_site_writes_are_refused(db: &TestDb) {
    let api = Api::start(db, CONFIG).await;
    let http = ops_worker_jobs::health::http_client();
    let post = |headers: &[(&str, &str)]| {
        let mut req = http.post(format!("{}/api/v1/jobs/backup/resume", api.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send()
    };
    for headers in [
        vec![("origin", "https://evil.example")],
        vec![("origin", "null")],
        vec![("sec-fetch-site", "cross-site")],
        vec![
            ("sec-fetch-site", "same-site"),
            ("origin", api.base.as_str()),
        ],
    ] {
        let r = post(&headers).await.unwrap();
        assert_eq!(r.status().as_u16(), 403, "{headers:?}");
        let body: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        assert_eq!(body["error"], "cross_site", "{headers:?}");
    }
    assert!(audit(&api).await.is_empty(), "refused before any write");
    // Reads stay open to any page's GET (they change nothing).
    let r = http
        .get(format!("{}/api/v1/jobs", api.base))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    for headers in [
        vec![("origin", api.base.as_str())],
        vec![("sec-fetch-site", "same-origin")],
        vec![],
    ] {
        let r = post(&headers).await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{headers:?}");
    }
    assert_eq!(audit(&api).await.len(), 3);
}
