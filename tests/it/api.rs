//! The HTTP API's test harness: the real router served on 127.0.0.1 by
//! `ops_worker::http::serve` (the same accept loop, limits and auth as
//! `ops-worker serve`) over a test database, and a small client that
//! returns status and JSON. The tests are in `api_*.rs`, one file per area.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use ops_worker::config::Config;
use ops_worker::http::{api_router, serve, AppState};
use ops_worker_jobs::SystemClock;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::helpers::TestDb;

/// `token` of the viewer and the operator of [`TOKENS`].
pub const VIEWER: &str = "viewer-token-0123456789";
pub const OPERATOR: &str = "operator-token-0123456789";

/// Two jobs, an on-call schedule and two tokens (the operator's by SHA-256).
pub const CONFIG: &str = r#"
[jobs.backup]
kind = "command"
cron = "0 2 * * *"
timezone = "Europe/Berlin"
command = ["true"]

[jobs.tick]
kind = "command"
every = "30s"
command = ["true"]

[notify.hook]
type = "webhook"
url = "http://127.0.0.1:9/hook"

[people.alice]
notify = ["hook"]

[oncall.primary]
timezone = "UTC"
layers = [{ members = ["alice"], rotation = "weekly", handoff = "2026-11-02T09:00" }]
"#;

/// The `[api]` tables of the tests with tokens.
pub fn tokens() -> String {
    format!(
        "\n[api.tokens.grafana]\nrole = \"viewer\"\ntoken = \"{VIEWER}\"\n\n[api.tokens.ops]\nrole = \"operator\"\nsha256 = \"{}\"\n",
        hex(&ops_worker::config::sha256(OPERATOR.as_bytes()))
    )
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An API served on 127.0.0.1 until dropped.
pub struct Api {
    pub base: String,
    stop: CancellationToken,
    http: ops_worker_jobs::reqwest::Client,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A response: status and body (JSON when it parses, else a string).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub json: Value,
    pub content_type: String,
}

impl Api {
    /// Serves `config_text` over `db`.
    pub async fn start(db: &TestDb, config_text: &str) -> Api {
        let config = Config::parse(Path::new("schedules.toml"), config_text, &|_| None)
            .unwrap_or_else(|e| panic!("test config: {e}"));
        let (_tx, rx) = tokio::sync::watch::channel(Arc::new(config));
        Api::serve(AppState::new(db.db().clone(), rx, Arc::new(SystemClock))).await
    }

    /// Serves `state`, built by the test (another clock, acknowledge links).
    pub async fn serve(state: AppState) -> Api {
        let stop = CancellationToken::new();
        let (addr, _task) = serve(
            "127.0.0.1:0".parse().unwrap(),
            api_router(state),
            stop.clone(),
        )
        .await
        .expect("serving the API");
        Api {
            base: format!("http://{addr}"),
            stop,
            http: ops_worker_jobs::health::http_client(),
        }
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> Resp {
        let method = ops_worker_jobs::reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = resp.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Resp {
            status,
            json,
            content_type,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.send("GET", path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Option<&str>) -> Resp {
        self.send("POST", path, token, body).await
    }
}

/// Asserts the `{"error", "message"}` shape and returns the code.
#[track_caller]
pub fn error_code(r: &Resp) -> String {
    assert!(
        r.json["message"].is_string(),
        "no message in an error: {r:?}"
    );
    r.json["error"].as_str().expect("an error code").to_string()
}
