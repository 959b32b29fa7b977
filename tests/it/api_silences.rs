//! Silences through the API, real HTTP on both backends: the auth matrix
//! (no token, wrong token, viewer, operator) for adding and removing, the
//! audit row of every attempt, the CLI's validation and messages, 422 for
//! unknown fields, 404 for an unknown id, and cross-site refusal.

use chrono::{Duration, Utc};
use serde_json::Value;

use crate::api::{error_code, tokens, Api, CONFIG, OPERATOR, VIEWER};
use crate::helpers::TestDb;

crate::backend_tests!(
    silence_writes_need_an_operator_and_are_audited,
    a_bad_silence_is_refused_naming_its_field,
    listing_silences,
    cross_site_silence_writes_are_refused,
);

async fn last_audit(api: &Api) -> Value {
    let r = api.get("/api/v1/audit?limit=1", Some(VIEWER)).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.json["items"][0].clone()
}

fn audit_row(v: &Value) -> (String, String, String, String) {
    let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
    (s("actor"), s("action"), s("target"), s("outcome"))
}

async fn silence_writes_need_an_operator_and_are_audited(db: &TestDb) {
    let api = Api::start(db, &format!("{CONFIG}{}", tokens())).await;
    let body = r#"{"match": "system:service:*", "for": "2h", "reason": "db upgrade"}"#;
    // Adding: no token and a wrong one get 401 and leave nothing.
    for token in [None, Some("not-a-token-of-this-api")] {
        let r = api.post("/api/v1/silences", token, Some(body)).await;
        assert_eq!(r.status, 401, "{token:?}: {r:?}");
        assert_eq!(error_code(&r), "unauthorized");
    }
    // The viewer: 403, audited as forbidden.
    let r = api.post("/api/v1/silences", Some(VIEWER), Some(body)).await;
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(error_code(&r), "forbidden");
    assert_eq!(
        audit_row(&last_audit(&api).await),
        (
            "grafana".into(),
            "silence".into(),
            "match:system:service:*".into(),
            "forbidden".into()
        )
    );
    assert!(db.db().silences(Utc::now(), true).await.unwrap().is_empty());
    // The operator: 201 with the silence, as stored, by the token's name.
    let before = Utc::now();
    let r = api
        .post("/api/v1/silences", Some(OPERATOR), Some(body))
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let stored = db.db().silences(Utc::now(), false).await.unwrap();
    assert_eq!(stored.len(), 1);
    let s = &stored[0];
    assert_eq!(r.json["id"], s.id);
    assert_eq!(
        (s.pattern.as_str(), s.reason.as_str(), s.created_by.as_str()),
        ("system:service:*", "db upgrade", "ops")
    );
    let length = s.ends_at - s.starts_at;
    assert_eq!(length, Duration::hours(2));
    assert!(s.starts_at >= before - Duration::seconds(1));
    assert_eq!(
        audit_row(&last_audit(&api).await),
        (
            "ops".into(),
            "silence".into(),
            "match:system:service:*".into(),
            "ok".into()
        )
    );

    // Removing: the same matrix.
    let path = format!("/api/v1/silences/{}", s.id);
    for token in [None, Some("not-a-token-of-this-api")] {
        let r = api.send("DELETE", &path, token, None).await;
        assert_eq!(r.status, 401, "{token:?}: {r:?}");
    }
    let r = api.send("DELETE", &path, Some(VIEWER), None).await;
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(
        audit_row(&last_audit(&api).await),
        (
            "grafana".into(),
            "unsilence".into(),
            format!("silence:{}", s.id),
            "forbidden".into()
        )
    );
    assert_eq!(db.db().silences(Utc::now(), false).await.unwrap().len(), 1);
    let r = api.send("DELETE", &path, Some(OPERATOR), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["removed"], true);
    assert!(db.db().silences(Utc::now(), true).await.unwrap().is_empty());
    assert_eq!(audit_row(&last_audit(&api).await).3, "ok");
    // Again: it is gone, 404, audited as not found.
    let r = api.send("DELETE", &path, Some(OPERATOR), None).await;
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(error_code(&r), "not_found");
    assert_eq!(r.json["message"], format!("no silence {}", s.id));
    assert_eq!(audit_row(&last_audit(&api).await).3, "not_found");
    // Not an id: 400 naming it.
    let r = api
        .send("DELETE", "/api/v1/silences/abc", Some(OPERATOR), None)
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.json["message"].as_str().unwrap().contains("\"id\""));
    // Reading takes any role; writing was 2 x (forbidden, ok) + not found + invalid.
    let r = api.get("/api/v1/audit?limit=500", Some(VIEWER)).await;
    let silence_rows = r.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "silence" || e["action"] == "unsilence")
        .count();
    assert_eq!(silence_rows, 6);
}

async fn a_bad_silence_is_refused_naming_its_field(db: &TestDb) {
    let api = Api::start(db, &format!("{CONFIG}{}", tokens())).await;
    // The CLI's checks and messages (tests/it/silences.rs), without `--`.
    for (body, status, code, message) in [
        (
            r#"{"match": "job:back?p", "for": "1h", "reason": "x"}"#,
            400,
            "bad_parameter",
            "match: invalid glob \"job:back?p\": '?' is not supported, the only wildcard is * (e.g. \"system:service:*\")",
        ),
        (
            r#"{"match": "", "for": "1h", "reason": "x"}"#,
            400,
            "bad_parameter",
            "match: invalid glob \"\": name a fingerprint such as \"system:service:api\", \"job:backup\" or \"*\"",
        ),
        (
            r#"{"match": "job:*", "for": "0s", "reason": "x"}"#,
            400,
            "bad_parameter",
            "for: must be more than 0s",
        ),
        (
            r#"{"match": "job:*", "for": "1h", "reason": " "}"#,
            400,
            "bad_parameter",
            "reason: say why, such as \"db upgrade\"",
        ),
        (
            r#"{"match": "job:*", "until": "2020-01-01T00:00:00Z", "reason": "x"}"#,
            400,
            "bad_parameter",
            "until \"2020-01-01T00:00:00Z\" is not in the future",
        ),
        (
            r#"{"match": "job:*", "for": "1h", "until": "2h", "reason": "x"}"#,
            400,
            "bad_parameter",
            "for, until: give one of them, not both",
        ),
        (
            r#"{"match": "job:*", "reason": "x"}"#,
            400,
            "bad_parameter",
            "for: missing: give for (a duration such as 2h) or until (an RFC 3339 time)",
        ),
    ] {
        let r = api.post("/api/v1/silences", Some(OPERATOR), Some(body)).await;
        assert_eq!((r.status, error_code(&r)), (status, code.to_string()), "{body}: {r:?}");
        assert_eq!(r.json["message"], message, "{body}");
    }
    // A bad duration names the field and the value.
    let r = api
        .post(
            "/api/v1/silences",
            Some(OPERATOR),
            Some(r#"{"match": "job:*", "for": "2 fortnights", "reason": "x"}"#),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.json["message"]
        .as_str()
        .unwrap()
        .starts_with("for: invalid duration \"2 fortnights\""));
    // Unknown and missing fields, wrong types: 422 naming the field.
    for (body, field) in [
        (
            r#"{"match": "job:*", "for": "1h", "reason": "x", "by": "eve"}"#,
            "by",
        ),
        (r#"{"match": "job:*", "for": "1h"}"#, "reason"),
        (r#"{"match": 7, "for": "1h", "reason": "x"}"#, "match"),
    ] {
        let r = api
            .post("/api/v1/silences", Some(OPERATOR), Some(body))
            .await;
        assert_eq!(r.status, 422, "{body}: {r:?}");
        assert_eq!(error_code(&r), "invalid_body");
        assert!(
            r.json["message"].as_str().unwrap().contains(field),
            "{body}: {r:?}"
        );
    }
    // `until` as a time works, and nothing of the above was stored.
    assert!(db.db().silences(Utc::now(), true).await.unwrap().is_empty());
    let until = (Utc::now() + Duration::hours(3)).to_rfc3339();
    let r = api
        .post(
            "/api/v1/silences",
            Some(OPERATOR),
            Some(&format!(
                r#"{{"match": "job:backup", "until": "{until}", "reason": "restore test"}}"#
            )),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let stored = db.db().silences(Utc::now(), false).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].ends_at.timestamp(),
        chrono::DateTime::parse_from_rfc3339(&until)
            .unwrap()
            .timestamp()
    );
}

async fn listing_silences(db: &TestDb) {
    let api = Api::start(db, &format!("{CONFIG}{}", tokens())).await;
    let now = Utc::now();
    let ended = db
        .db()
        .add_silence(
            "job:*",
            now - Duration::hours(3),
            now - Duration::hours(1),
            "last night",
            "alice",
        )
        .await
        .unwrap();
    let active = db
        .db()
        .add_silence(
            "system:service:api",
            now - Duration::minutes(5),
            now + Duration::hours(1),
            "deploy",
            "bob",
        )
        .await
        .unwrap();
    assert_eq!(api.get("/api/v1/silences", None).await.status, 401);
    let r = api.get("/api/v1/silences", Some(VIEWER)).await;
    assert_eq!(r.status, 200, "{r:?}");
    let ids = |r: &crate::api::Resp| -> Vec<i64> {
        r.json
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(ids(&r), vec![active.id]);
    assert_eq!(r.json[0]["pattern"], "system:service:api");
    assert_eq!(r.json[0]["reason"], "deploy");
    assert_eq!(r.json[0]["created_by"], "bob");
    let r = api.get("/api/v1/silences?all=true", Some(VIEWER)).await;
    assert_eq!(ids(&r), vec![ended.id, active.id]);
    let r = api.get("/api/v1/silences?all=yes", Some(VIEWER)).await;
    assert_eq!(r.status, 400);
    assert!(r.json["message"].as_str().unwrap().contains("\"all\""));
}

async fn cross_site_silence_writes_are_refused(db: &TestDb) {
    // No tokens: loopback, every caller an operator; only the page's
    // origin stands between another site and a silence.
    let api = Api::start(db, CONFIG).await;
    let now = Utc::now();
    let s = db
        .db()
        .add_silence("job:*", now, now + Duration::hours(1), "x", "alice")
        .await
        .unwrap();
    let http = ops_worker_jobs::health::http_client();
    let r = http
        .post(format!("{}/api/v1/silences", api.base))
        .header("origin", "https://evil.example")
        .header("content-type", "application/json")
        .body(r#"{"match": "*", "for": "100d", "reason": "x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = http
        .delete(format!("{}/api/v1/silences/{}", api.base, s.id))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let left = db.db().silences(Utc::now(), true).await.unwrap();
    assert_eq!(left.len(), 1, "nothing added, nothing removed");
    // The same from a client that is no browser goes through.
    let r = api
        .send("DELETE", &format!("/api/v1/silences/{}", s.id), None, None)
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        audit_row(&last_audit(&api).await),
        (
            "local".into(),
            "unsilence".into(),
            format!("silence:{}", s.id),
            "ok".into()
        )
    );
}
