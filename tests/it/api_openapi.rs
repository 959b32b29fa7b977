//! `GET /api/v1/openapi.json` through real HTTP on both backends: the
//! document parses, describes exactly the routes the router serves
//! (`ops_worker::http::API_ROUTES`, the one list the router is built from),
//! every write declares the bearer scheme, every path parameter is
//! declared and every `$ref` resolves.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::api::{error_code, tokens, Api, CONFIG, OPERATOR, VIEWER};
use crate::helpers::TestDb;

crate::backend_tests!(
    the_document_describes_exactly_the_routes_served,
    the_document_is_behind_the_token_like_every_read,
    the_bodies_sent_are_the_ones_described,
);

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete"];

/// `path` with each `{param}` replaced by a value no route knows, so a
/// request reaches the handler (and gets its 404 or 400) without
/// changing anything.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if seg.starts_with('{') {
                if seg == "{id}" {
                    "987654321"
                } else {
                    "no-such-thing"
                }
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Every `$ref` in `v`.
fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

async fn the_document_describes_exactly_the_routes_served(db: &TestDb) {
    let api = Api::start(db, &format!("{CONFIG}{}", tokens())).await;
    let r = api.get("/api/v1/openapi.json", Some(VIEWER)).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.content_type.starts_with("application/json"), "{r:?}");
    let doc = &r.json;
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "not an OpenAPI 3 document: {doc}"
    );

    // The document's operations and the router's routes are the same set.
    let paths = doc["paths"].as_object().expect("paths");
    let documented: BTreeSet<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(move |m| (m.to_string(), path.clone()))
        })
        .collect();
    let served: BTreeSet<(String, String)> = ops_worker::http::API_ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), format!("/api/v1{p}")))
        .collect();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let not_served: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty() && not_served.is_empty(),
        "served without documentation: {undocumented:?}; documented but not served: {not_served:?}"
    );
    assert!(served.contains(&("delete".into(), "/api/v1/silences/{id}".into())));

    // The router really serves each of them: none gets the fallback's
    // "no such route" or a 405.
    for (method, path) in &served {
        let r = api
            .send(
                &method.to_uppercase(),
                &concrete(path),
                Some(OPERATOR),
                None,
            )
            .await;
        assert_ne!(r.status, 405, "{method} {path}: {r:?}");
        let message = r.json["message"].as_str().unwrap_or("");
        assert!(
            !message.starts_with("no such route"),
            "{method} {path} is not served: {r:?}"
        );
    }
    // ... which a route that does not exist does get, pointing here.
    let r = api.get("/api/v1/no-such-route", Some(OPERATOR)).await;
    assert_eq!(r.status, 404);
    assert_eq!(error_code(&r), "not_found");
    let message = r.json["message"].as_str().unwrap();
    assert!(message.contains("/api/v1/openapi.json"), "{message}");
    assert!(message.contains("docs/api.md"), "{message}");

    // Operation ids are what client generators name methods after.
    let ids: Vec<&str> = documented
        .iter()
        .map(|(m, p)| paths[p][m]["operationId"].as_str().unwrap_or(""))
        .collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "operation ids repeat: {ids:?}");

    // The bearer scheme, declared and required by every write (and read).
    let scheme = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(scheme["type"], "http", "{scheme}");
    assert_eq!(scheme["scheme"], "bearer", "{scheme}");
    for (method, path) in &documented {
        let op = &paths[path][method];
        let security = op["security"].as_array().cloned().unwrap_or_default();
        assert!(
            security.iter().any(|s| s.get("bearer").is_some()),
            "{method} {path} does not declare the bearer scheme: {op}"
        );
        let responses = op["responses"].as_object().expect("responses");
        for status in ["400", "401"] {
            assert!(
                responses.contains_key(status),
                "{method} {path} has no {status}"
            );
        }
        if method != "get" {
            assert!(
                responses.contains_key("403"),
                "{method} {path}: a write without 403"
            );
            assert!(
                responses.contains_key("422"),
                "{method} {path}: a write without 422"
            );
        }
        // Every `{param}` of the path is declared as a path parameter.
        let declared: BTreeSet<&str> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "path")
            .filter_map(|p| p["name"].as_str())
            .collect();
        let in_path: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        assert_eq!(declared, in_path, "{method} {path}: path parameters");
    }
    // The error body, as every error is sent.
    let error = &doc["components"]["schemas"]["Error"];
    assert_eq!(
        error["required"],
        serde_json::json!(["error", "message"]),
        "{error}"
    );

    // Every reference resolves.
    let mut all = Vec::new();
    refs(doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected $ref {r}"));
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "$ref {r} does not resolve"
        );
    }
}

async fn the_document_is_behind_the_token_like_every_read(db: &TestDb) {
    let api = Api::start(db, &format!("{CONFIG}{}", tokens())).await;
    for token in [None, Some("not-a-token-of-this-api")] {
        let r = api.get("/api/v1/openapi.json", token).await;
        assert_eq!(r.status, 401, "{token:?}: {r:?}");
        assert_eq!(error_code(&r), "unauthorized");
    }
    let viewer = api.get("/api/v1/openapi.json", Some(VIEWER)).await;
    let operator = api.get("/api/v1/openapi.json", Some(OPERATOR)).await;
    assert_eq!((viewer.status, operator.status), (200, 200));
    assert_eq!(viewer.json, operator.json);
    let r = api
        .get("/api/v1/openapi.json?format=yaml", Some(VIEWER))
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(error_code(&r), "bad_parameter");
}

/// `schema` with its `$ref` followed.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r.trim_start_matches("#/components/schemas/");
            resolve(doc, &doc["components"]["schemas"][name])
        }
        None => schema,
    }
}

/// The properties an object of `schema` has (`allOf` parts together).
fn properties<'a>(doc: &'a Value, schema: &'a Value) -> Vec<(&'a String, &'a Value)> {
    let schema = resolve(doc, schema);
    let mut out: Vec<(&String, &Value)> = schema["properties"]
        .as_object()
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    for part in schema["allOf"].as_array().into_iter().flatten() {
        out.extend(properties(doc, part));
    }
    out
}

/// Checks that `value`'s objects have exactly the properties `schema`
/// declares, down through objects and arrays; returns how many objects it
/// compared.
fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str) -> usize {
    let schema = resolve(doc, schema);
    if value.is_null() {
        return 0;
    }
    // `Option<T>`: one of null and T.
    if let Some(variants) = schema["oneOf"].as_array() {
        return variants
            .iter()
            .filter(|v| v["type"] != "null")
            .map(|v| conforms(doc, v, value, at))
            .sum();
    }
    if let Some(items) = value.as_array() {
        return items
            .iter()
            .enumerate()
            .map(|(i, item)| conforms(doc, &schema["items"], item, &format!("{at}[{i}]")))
            .sum();
    }
    let Some(object) = value.as_object() else {
        return 0;
    };
    let props = properties(doc, schema);
    if props.is_empty() {
        return 0; // a free-form object, such as a report's figures
    }
    let declared: BTreeSet<&str> = props.iter().map(|(k, _)| k.as_str()).collect();
    let sent: BTreeSet<&str> = object.keys().map(String::as_str).collect();
    assert_eq!(sent, declared, "{at}: the body's keys and the schema's");
    1 + props
        .into_iter()
        .map(|(k, s)| conforms(doc, s, &object[k], &format!("{at}.{k}")))
        .sum::<usize>()
}

/// The bodies the routes send have the shape the document gives them
/// (the typed bodies are what the schemas are derived from, so this
/// catches a hand-written body or a `#[schema]` that lies).
async fn the_bodies_sent_are_the_ones_described(db: &TestDb) {
    use chrono::{Duration, Utc};
    use ops_worker_jobs::store::{
        AlertSource, AlertStore, HealthCheck, HealthStatus, HealthStore, NewAlert, ReportStore,
        Severity, StoredReport,
    };
    let api = Api::start(db, &format!("{CONFIG}{}", tokens())).await;
    let now = Utc::now();
    let store = db.db();
    store
        .record_health(&[HealthCheck {
            service: "api".into(),
            job_name: "health".into(),
            status: HealthStatus::Down,
            http_status: Some(503),
            latency_ms: Some(12),
            error: Some("503".into()),
            checked_at: now,
        }])
        .await
        .unwrap();
    let alert = store
        .open_alert(
            &NewAlert {
                fingerprint: "system:service:api".into(),
                source: AlertSource::Service,
                subject: "api".into(),
                severity: Severity::Critical,
                message: "Service api is down".into(),
                opened_at: now,
            },
            &[],
        )
        .await
        .unwrap()
        .unwrap();
    store
        .save_report(
            &StoredReport {
                name: "weekly".into(),
                period: "2026-W47".into(),
                period_start: now - Duration::days(7),
                period_end: now,
                generated_at: now,
                json: r#"{"runs": 3}"#.into(),
                markdown: "# Weekly\n".into(),
            },
            &[],
            &serde_json::json!({}),
        )
        .await
        .unwrap();
    crate::fixtures::PastRun {
        job: "tick",
        slot: now - Duration::minutes(1),
        trigger: ops_worker::db::Trigger::Schedule,
        late_ms: 3,
        status: ops_worker::db::RunStatus::Failed,
        duration_ms: 20,
        missed: 0,
        jitter_ms: None,
    }
    .record(store)
    .await;
    store
        .register_worker(&ops_worker::db::Worker {
            id: "w1".into(),
            host: "host".into(),
            pid: 42,
            version: "0.1.0".into(),
            started_at: now,
            heartbeat_at: now,
            config_hash: "ab".into(),
            stopped_at: None,
            config_error: None,
        })
        .await
        .unwrap();
    let r = api
        .post(
            "/api/v1/silences",
            Some(OPERATOR),
            Some(r#"{"match": "job:*", "for": "1h", "reason": "x"}"#),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let r = api
        .post("/api/v1/jobs/tick/pause", Some(OPERATOR), Some("{}"))
        .await;
    assert_eq!(r.status, 200, "{r:?}");

    let doc = api.get("/api/v1/openapi.json", Some(VIEWER)).await.json;
    let mut compared = 0;
    for path in [
        "/api/v1/jobs",
        "/api/v1/jobs/tick",
        "/api/v1/jobs/tick/runs",
        "/api/v1/services",
        "/api/v1/alerts",
        &format!("/api/v1/alerts/{}", alert.id),
        "/api/v1/workers",
        "/api/v1/reports",
        "/api/v1/reports/weekly/2026-W47",
        "/api/v1/oncall/primary",
        "/api/v1/audit",
        "/api/v1/silences",
    ] {
        let r = api.get(path, Some(VIEWER)).await;
        assert_eq!(r.status, 200, "{path}: {r:?}");
        // The template this path matches in the document.
        let (template, item) = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(t, _)| {
                let (t, p): (Vec<_>, Vec<_>) = (t.split('/').collect(), path.split('/').collect());
                t.len() == p.len() && t.iter().zip(&p).all(|(t, p)| t.starts_with('{') || t == p)
            })
            .unwrap_or_else(|| panic!("{path} is not in the document"));
        let schema = &item["get"]["responses"]["200"]["content"]["application/json"]["schema"];
        assert!(!schema.is_null(), "{template}: no 200 schema");
        let n = conforms(&doc, schema, &r.json, template);
        assert!(n > 0, "{path}: no object compared in {}", r.json);
        compared += n;
    }
    // Jobs with their pause, a service with its check, an alert, a report,
    // the shift, the audit rows, the silence, the pages around them.
    assert!(compared >= 20, "only {compared} objects compared");
}
