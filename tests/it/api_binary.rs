//! The API through the real binary: `ops-worker serve` answers and runs no
//! jobs, refuses a non-loopback address without tokens (exit 2, one
//! line), and `run --http-addr` serves the same routes and /metrics.

use std::process::Stdio;
use std::time::Duration;

use crate::api::{tokens, CONFIG, VIEWER};
use crate::cli::{bin, exit_within, sigterm, with_db};
use crate::fixtures::eventually;
use crate::helpers::TestDb;
use crate::reload::replace;

crate::backend_tests!(serve_and_run_http_addr_answer, serve_reloads_schedules);

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

/// `serve` on a free loopback port with `args`, once it answers.
async fn start_serve(
    dir: &std::path::Path,
    db: &TestDb,
    args: &[&str],
) -> (std::process::Child, u16) {
    let port = crate::http::unused_port();
    let child = with_db(dir, db)
        .arg("serve")
        .args(args)
        .arg("--addr")
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    eventually(Duration::from_secs(20), "serve answers", || async {
        job_names(port).await.is_some()
    })
    .await;
    (child, port)
}

/// The names `GET /api/v1/jobs` lists (`None` while serve does not answer).
async fn job_names(port: u16) -> Option<Vec<String>> {
    let (status, body) = get(&format!("http://127.0.0.1:{port}/api/v1/jobs"), None).await?;
    assert_eq!(status, 200, "{body}");
    let jobs: serde_json::Value = serde_json::from_str(&body).unwrap();
    let list = jobs.as_array().or_else(|| jobs["jobs"].as_array());
    let mut names: Vec<String> = list
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|j| j["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    Some(names)
}

async fn reload_gauge(port: u16) -> String {
    let (_, body) = get(&format!("http://127.0.0.1:{port}/metrics"), None)
        .await
        .unwrap();
    body.lines()
        .find(|l| l.starts_with("ops_worker_config_last_reload_successful "))
        .unwrap_or_else(|| panic!("{body}"))
        .to_string()
}

fn job(name: &str) -> String {
    format!("\n[jobs.{name}]\nkind = \"command\"\nevery = \"1h\"\ncommand = [\"true\"]\n")
}

fn names(list: &[&str]) -> Option<Vec<String>> {
    Some(list.iter().map(|s| s.to_string()).collect())
}

/// `serve` reloads schedules.toml as `run` does: an added job is listed
/// without a restart, an invalid edit keeps the served jobs and is logged
/// once with its line, `[api]` is kept until a restart, and SIGHUP reloads
/// with the directory watch off.
async fn serve_reloads_schedules(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("schedules.toml"), CONFIG).unwrap();
    let (child, port) = start_serve(dir.path(), db, &[]).await;
    assert_eq!(job_names(port).await, names(&["backup", "tick"]));

    // Added: listed by the directory watch, well before the 10 s check.
    let added = format!("{CONFIG}{}", job("added"));
    replace(dir.path(), &added);
    eventually(
        Duration::from_secs(5),
        "the added job is listed",
        || async { job_names(port).await == names(&["added", "backup", "tick"]) },
    )
    .await;
    assert_eq!(
        reload_gauge(port).await,
        "ops_worker_config_last_reload_successful 1"
    );

    // Broken, with one more job: refused, the served jobs stay.
    let broken = format!("{added}{}", job("more").replace("1h", "3x"));
    let bad_line = broken.lines().position(|l| l == "every = \"3x\"").unwrap() + 1;
    replace(dir.path(), &broken);
    eventually(Duration::from_secs(20), "the edit is refused", || async {
        reload_gauge(port).await == "ops_worker_config_last_reload_successful 0"
    })
    .await;
    assert_eq!(job_names(port).await, names(&["added", "backup", "tick"]));

    // Fixed: loaded.
    replace(dir.path(), &broken.replace("3x", "1h"));
    eventually(
        Duration::from_secs(20),
        "the fixed file is loaded",
        || async { job_names(port).await == names(&["added", "backup", "more", "tick"]) },
    )
    .await;
    assert_eq!(
        reload_gauge(port).await,
        "ops_worker_config_last_reload_successful 1"
    );
    sigterm(&child);
    let (code, err) = exit_within(child, Duration::from_secs(15)).await;
    assert_eq!(code, 0, "{err}");
    let refused: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("schedules.toml changed but is invalid"))
        .collect();
    assert_eq!(refused.len(), 1, "{err}");
    assert!(
        refused[0].contains(&format!(
            "schedules.toml:{bad_line}:9: job \"more\": every: invalid duration \"3x\""
        )),
        "{err}"
    );
    assert!(
        refused[0].contains("the previous one stays served"),
        "{err}"
    );
    let reloads: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("schedules.toml reloaded"))
        .collect();
    assert_eq!(reloads.len(), 2, "{err}");
    assert!(reloads[0].contains("trigger=\"file change\""), "{err}");

    // The directory watch off: an edit in place is loaded on SIGHUP; its
    // new [api] tokens are not applied (no token is still an operator on
    // loopback) and the log says so.
    std::fs::write(dir.path().join("schedules.toml"), CONFIG).unwrap();
    let (child, port) = start_serve(dir.path(), db, &["--watch-config", "false"]).await;
    let hup = format!("{CONFIG}{}{}", job("hup"), tokens());
    std::fs::write(dir.path().join("schedules.toml"), hup).unwrap();
    // SAFETY: kill(2) on a pid this test spawned and has not yet reaped.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGHUP) }, 0);
    eventually(Duration::from_secs(5), "SIGHUP loads the edit", || async {
        job_names(port).await == names(&["backup", "hup", "tick"])
    })
    .await;
    sigterm(&child);
    let (code, err) = exit_within(child, Duration::from_secs(15)).await;
    assert_eq!(code, 0, "{err}");
    let reload = err
        .lines()
        .find(|l| l.contains("schedules.toml reloaded"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(reload.contains("trigger=\"SIGHUP\""), "{reload}");
    assert_eq!(
        err.matches("[api] changed: restart serve to apply").count(),
        1,
        "{err}"
    );
}
