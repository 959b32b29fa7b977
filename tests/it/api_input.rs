//! Bad input to the API gets a 4xx with a JSON error that names the
//! parameter, never a 500: unknown and malformed parameters, bad ids,
//! SQL fragments, oversized bodies, unknown fields, unknown routes.

use crate::api::{error_code, Api, CONFIG};
use crate::helpers::TestDb;

crate::backend_tests!(bad_input_is_a_4xx_naming_the_parameter);

async fn bad_input_is_a_4xx_naming_the_parameter(db: &TestDb) {
    let api = Api::start(db, CONFIG).await;
    for (path, param) in [
        ("/api/v1/jobs/tick/runs?limit=0", "limit"),
        ("/api/v1/jobs/tick/runs?limit=abc", "limit"),
        ("/api/v1/jobs/tick/runs?status=bogus", "status"),
        ("/api/v1/jobs/tick/runs?since=yesterday", "since"),
        ("/api/v1/jobs/tick/runs?cursor=xyz", "cursor"),
        ("/api/v1/jobs/tick/runs?stauts=failed", "stauts"),
        ("/api/v1/jobs?limit=1&limit=2", "limit"),
        ("/api/v1/runs/abc", "id"),
        ("/api/v1/runs/-1", "id"),
        ("/api/v1/alerts?status=closed", "status"),
        ("/api/v1/oncall/primary?at=noon", "at"),
    ] {
        let r = api.get(path, None).await;
        assert_eq!(r.status, 400, "{path}: {r:?}");
        assert_eq!(error_code(&r), "bad_parameter", "{path}");
        let message = r.json["message"].as_str().unwrap();
        assert!(message.contains(param), "{path}: {message}");
    }
    // SQL fragments are data: no match, no error.
    let r = api
        .get(
            "/api/v1/jobs/x'%3B%20DROP%20TABLE%20job_runs%3B--/runs",
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{r:?}");
    let r = api
        .get("/api/v1/reports?name=%27%20OR%201%3D1--", None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json, serde_json::json!([]));
    assert_eq!(api.get("/api/v1/jobs/tick/runs", None).await.status, 200);

    // Bodies: unknown field 422, not JSON 400, too large 413.
    let r = api
        .post("/api/v1/jobs/tick/pause", None, Some(r#"{"untill": "2h"}"#))
        .await;
    assert_eq!(r.status, 422, "{r:?}");
    assert!(r.json["message"].as_str().unwrap().contains("untill"));
    let r = api
        .post("/api/v1/jobs/tick/pause", None, Some("{not json"))
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    let big = format!(r#"{{"reason": "{}"}}"#, "x".repeat(100 * 1024));
    let r = api.post("/api/v1/jobs/tick/pause", None, Some(&big)).await;
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(error_code(&r), "body_too_large");
    let r = api
        .post("/api/v1/jobs/tick/pause", None, Some(r#"{"until": "-5m"}"#))
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.json["message"].as_str().unwrap().contains("until"));
    let r = api
        .post(
            "/api/v1/jobs/tick/pause",
            None,
            Some(r#"{"until": "2020-01-01T00:00:00Z"}"#),
        )
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    // Unknown routes and methods.
    let r = api.get("/api/v1/nothing", None).await;
    assert_eq!(r.status, 404);
    assert_eq!(error_code(&r), "not_found");
    let r = api.send("DELETE", "/api/v1/jobs", None, None).await;
    assert_eq!(r.status, 405);
    assert_eq!(error_code(&r), "method_not_allowed");
    let r = api.get("/api/v1/jobs/tick/pause", None).await;
    assert_eq!(r.status, 405);
}
