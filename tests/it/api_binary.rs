//! The API through the real binary: `ops-worker serve` answers and runs no
//! jobs, refuses a non-loopback address without tokens (exit 2, one
//! line), and `run --http-addr` serves the same routes and /metrics.

use std::process::Stdio;
use std::time::Duration;

use crate::api::{tokens, CONFIG, VIEWER};
use crate::cli::{bin, exit_within, sigterm, with_db};
use crate::fixtures::eventually;
use crate::helpers::TestDb;

crate::backend_tests!(serve_and_run_http_addr_answer);

#[test]
fn serve_refuses_a_public_address_without_tokens() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("schedules.toml"), CONFIG).unwrap();
    let out = bin(dir.path())
        .args(["serve", "--addr", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("refusing to serve the API on 0.0.0.0:0 without tokens"),
        "{err}"
    );
    // The same for the daemon.
    let out = bin(dir.path())
        .args(["run", "--http-addr", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // No database was created by either.
    assert!(!dir.path().join("ops-worker.db").exists());
}

async fn get(url: &str, token: Option<&str>) -> Option<(u16, String)> {
    let http = ops_worker_jobs::health::http_client();
    let mut req = http.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.ok()?;
    Some((resp.status().as_u16(), resp.text().await.ok()?))
}

async fn serve_and_run_http_addr_answer(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("schedules.toml"),
        format!("{CONFIG}{}", tokens()),
    )
    .unwrap();
    let port = crate::http::unused_port();
    let child = with_db(dir.path(), db)
        .args(["serve", "--addr", &format!("0.0.0.0:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/api/v1/jobs");
    eventually(Duration::from_secs(20), "serve answers", || async {
        get(&url, Some(VIEWER)).await.is_some()
    })
    .await;
    let (status, body) = get(&url, Some(VIEWER)).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"name\":\"backup\""), "{body}");
    assert_eq!(get(&url, None).await.unwrap().0, 401);
    let health = get(&format!("http://127.0.0.1:{port}/healthz"), None).await;
    assert_eq!(health.unwrap().0, 200);
    sigterm(&child);
    let (code, err) = exit_within(child, Duration::from_secs(15)).await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("API: bearer tokens required"), "{err}");
    // It ran no jobs.
    assert!(db.db().history(None, 10).await.unwrap().is_empty());

    // The daemon with --http-addr: the API and /metrics on one port.
    std::fs::write(dir.path().join("schedules.toml"), CONFIG).unwrap();
    let port = crate::http::unused_port();
    let child = with_db(dir.path(), db)
        .args(["run", "--grace", "5s", "--http-addr"])
        .arg(format!("127.0.0.1:{port}"))
        .env("OPS_WORKER_ID", "api-daemon")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/api/v1/workers");
    eventually(
        Duration::from_secs(20),
        "the daemon's API answers",
        || async {
            get(&url, None)
                .await
                .is_some_and(|(s, b)| s == 200 && b.contains("api-daemon"))
        },
    )
    .await;
    let metrics = get(&format!("http://127.0.0.1:{port}/metrics"), None)
        .await
        .unwrap();
    assert_eq!(metrics.0, 200);
    assert!(metrics.1.contains("ops_worker_up 1"), "{}", metrics.1);
    sigterm(&child);
    let (code, err) = exit_within(child, Duration::from_secs(20)).await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("every request is an operator"), "{err}");
}
