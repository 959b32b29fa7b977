//! The web console: server-rendered HTML pages over the same state and the
//! same functions as the API (`crate::overview`, `crate::ops`,
//! `crate::run_requests`, `src/db`), served by the same router under `/`.
//!
//! This file owns the console's routes and its static files (one script and
//! one stylesheet, compiled into the binary). `session.rs` decides who is
//! signed in and guards every write (CSRF token, cross-site check);
//! `view.rs` renders templates (`templates/`, one per page) and the times
//! and errors they show; one file per page family: `overview.rs`,
//! `alerts.rs`, `jobs.rs` (a job and its runs, and one run; its duration
//! chart's arithmetic in `durations.rs`), `oncall.rs`,
//! `services.rs`, `workers.rs`, `reports.rs`, `silences.rs`.
//!
//! Writes go through `super::writes::audited`, like the API's: a viewer's
//! attempt is refused with 403 and recorded.

mod alerts;
mod durations;
mod jobs;
mod oncall;
mod overview;
mod reports;
mod services;
mod session;
mod silences;
mod view;
mod workers;

use axum::http::header;
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;

use super::AppState;

/// The console's routes, to merge into the API's router.
pub fn router(state: AppState) -> Router<AppState> {
    let pages = Router::new()
        .route("/", get(overview::page))
        .route("/alerts", get(alerts::page))
        .route("/alerts/{id}/ack", post(alerts::ack))
        .route("/alerts/{id}/resolve", post(alerts::resolve))
        .route("/jobs/{name}", get(jobs::page))
        .route("/jobs/{name}/run", post(jobs::run_now))
        .route("/jobs/{name}/pause", post(jobs::pause))
        .route("/jobs/{name}/resume", post(jobs::resume))
        .route("/runs/{id}", get(jobs::run))
        .route("/oncall", get(oncall::page))
        .route("/services", get(services::page))
        .route("/workers", get(workers::page))
        .route("/reports", get(reports::list))
        .route("/reports/{name}/{period}", get(reports::one))
        .route("/silences", get(silences::page).post(silences::add))
        .route("/silences/{id}/remove", post(silences::remove))
        .route("/logout", post(session::logout))
        .route_layer(middleware::from_fn_with_state(state, session::require));
    Router::new()
        .merge(pages)
        .route("/login", get(session::login_page).post(session::login))
        .route("/console/console.js", get(script))
        .route("/console/console.css", get(stylesheet))
}

const SCRIPT: &str = include_str!("assets/console.js");
const STYLESHEET: &str = include_str!("assets/console.css");

async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        SCRIPT,
    )
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        STYLESHEET,
    )
}
