//! The workers page (`/workers`): every registered worker with its state
//! (`running`, `stale`, `stopped`, as `ops-worker status` and the API judge
//! it), version, started and last heartbeat, the hash of the schedules.toml
//! it runs (and whether it is the one this server loaded), and the error of
//! an edit it rejected. Reads `Db::workers` only.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Extension;
use serde::Serialize;

use super::session::Session;
use super::view::{render, when, when_opt, Fragment, PageResult, When};
use crate::heartbeat::{short_hash, state};
use crate::http::params::Params;
use crate::http::AppState;

#[derive(Serialize)]
struct WorkerView {
    id: String,
    host: String,
    pid: i32,
    version: String,
    state: &'static str,
    started: When,
    heartbeat: When,
    stopped: Option<When>,
    config_hash: String,
    config_hash_short: String,
    /// The hash is that of the schedules.toml this server loaded.
    same_config: bool,
    config_error: Option<String>,
}

#[derive(Serialize)]
struct Page {
    session: Session,
    workers: Vec<WorkerView>,
    config_hash_short: String,
}

/// `GET /workers`.
pub async fn page(
    State(s): State<AppState>,
    Extension(session): Extension<Session>,
    fragment: Fragment,
    p: Params,
) -> PageResult {
    p.only(&[])?;
    let now = s.clock.now();
    let ours = s.config().hash.clone();
    let workers =
        s.db.workers()
            .await?
            .into_iter()
            .map(|w| WorkerView {
                state: state(&w, now),
                started: when(w.started_at, now),
                heartbeat: when(w.heartbeat_at, now),
                stopped: when_opt(w.stopped_at, now),
                config_hash_short: short_hash(&w.config_hash).to_string(),
                same_config: w.config_hash == ours,
                id: w.id,
                host: w.host,
                pid: w.pid,
                version: w.version,
                config_hash: w.config_hash,
                config_error: w.config_error,
            })
            .collect();
    render(
        "workers.html",
        fragment,
        StatusCode::OK,
        Page {
            session,
            workers,
            config_hash_short: short_hash(&ours).to_string(),
        },
    )
}
