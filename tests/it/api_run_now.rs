//! "Run now" through the API on both backends: 409 while no worker is
//! live; with two real daemons, one request gives exactly one run, which
//! the request shows once claimed.

use std::process::Stdio;
use std::time::Duration;

use ops_worker::db::Trigger;

use crate::api::{error_code, Api};
use crate::cli::{exit_within, sigterm, with_db};
use crate::fixtures::eventually;
use crate::helpers::TestDb;

crate::backend_tests!(run_now_is_run_once_by_a_live_worker);

const CONFIG: &str =
    "[jobs.once]\nkind = \"command\"\nevery = \"1h\"\ncommand = [\"sh\", \"-c\", \"echo ran\"]\n";

async fn run_now_is_run_once_by_a_live_worker(db: &TestDb) {
    let api = Api::start(db, CONFIG).await;
    let r = api.post("/api/v1/jobs/once/run", None, None).await;
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(error_code(&r), "no_live_worker");
    assert_eq!(
        api.post("/api/v1/jobs/nope/run", None, None).await.status,
        404
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("schedules.toml"), CONFIG).unwrap();
    let daemons: Vec<_> = ["api-w1", "api-w2"]
        .iter()
        .map(|id| {
            with_db(dir.path(), db)
                .args(["run", "--grace", "5s"])
                .env("OPS_WORKER_ID", id)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    eventually(Duration::from_secs(30), "two running workers", || async {
        let w = api.get("/api/v1/workers", None).await;
        w.json
            .as_array()
            .is_some_and(|ws| ws.iter().filter(|w| w["state"] == "running").count() == 2)
    })
    .await;

    let r = api.post("/api/v1/jobs/once/run", None, None).await;
    assert_eq!(r.status, 202, "{r:?}");
    let id = r.json["id"].as_i64().unwrap();
    let path = format!("/api/v1/run-requests/{id}");
    eventually(Duration::from_secs(30), "the request's run", || async {
        api.get(&path, None).await.json["run_id"].is_i64()
    })
    .await;
    let request = api.get(&path, None).await.json;
    assert_eq!(request["requested_by"], "local");
    assert!(request["claimed_by"].as_str().unwrap().starts_with("api-w"));
    let run = api
        .get(&format!("/api/v1/runs/{}", request["run_id"]), None)
        .await;
    assert_eq!(run.json["trigger"], "manual");
    eventually(Duration::from_secs(30), "the run finished", || async {
        api.get(&format!("/api/v1/runs/{}", request["run_id"]), None)
            .await
            .json["status"]
            == "success"
    })
    .await;
    for d in daemons {
        sigterm(&d);
        let (code, err) = exit_within(d, Duration::from_secs(20)).await;
        assert_eq!(code, 0, "{err}");
    }
    let manual: Vec<_> = db
        .db()
        .history(Some("once"), 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.trigger == Trigger::Manual)
        .collect();
    assert_eq!(manual.len(), 1, "{manual:?}");
    assert_eq!(
        api.get("/api/v1/run-requests/999999", None).await.status,
        404
    );
    let audit = api.get("/api/v1/audit", None).await;
    let outcomes: Vec<_> = audit.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["outcome"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(outcomes, ["ok", "not_found", "conflict"]);
}
