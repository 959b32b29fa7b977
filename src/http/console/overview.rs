//! The overview page (`/`): the open alerts as a banner, every job with its
//! last run and next fire, the services and the workers. Reads only, through
//! the same functions as `GET /api/v1/jobs`, `/services` and `/workers`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Extension;
use chrono::{DateTime, Utc};
use ops_worker_jobs::silence::Quiet;
use ops_worker_jobs::store::{Alert, HealthStore};
use serde::Serialize;

use super::session::Session;
use super::view::{render, when, when_opt, Fragment, PageResult, When};
use crate::http::AppState;

/// An active alert as the banner and the feed show it.
#[derive(Serialize)]
pub struct AlertView {
    pub id: i64,
    pub status: String,
    pub severity: String,
    pub source: String,
    pub subject: String,
    pub message: String,
    pub opened: When,
    pub escalation_level: i32,
    pub acknowledged: Option<When>,
    pub acknowledged_by: Option<String>,
    pub resolved: Option<When>,
    pub resolution_note: Option<String>,
    /// What silences it now and why (`crate::ops::silenced`), as
    /// `alerts list` shows it.
    pub silenced: Option<String>,
}

impl AlertView {
    pub fn new(a: &Alert, now: DateTime<Utc>, quiet: &Quiet) -> Self {
        AlertView {
            id: a.id,
            status: a.status.to_string(),
            severity: a.severity.to_string(),
            source: a.source.to_string(),
            subject: a.subject.clone(),
            message: a.message.clone(),
            opened: when(a.opened_at, now),
            escalation_level: a.escalation_level,
            acknowledged: when_opt(a.acknowledged_at, now),
            acknowledged_by: a.acknowledged_by.clone(),
            resolved: when_opt(a.resolved_at, now),
            resolution_note: a.resolution_note.clone(),
            silenced: crate::ops::silenced(quiet, a).map(|w| w.to_string()),
        }
    }
}

#[derive(Serialize)]
struct JobRow {
    name: String,
    /// `/jobs/NAME`, encoded.
    url: String,
    kind: String,
    /// In words, with the time zone of a cron schedule.
    schedule: String,
    enabled: bool,
    last_status: Option<String>,
    last_run: Option<When>,
    last_success: Option<When>,
    next_fire: Option<When>,
    paused: bool,
    paused_until: Option<When>,
    open_alert: Option<i64>,
}

#[derive(Serialize)]
struct ServiceRow {
    service: String,
    status: String,
    since: When,
    latency_ms: Option<i64>,
    error: Option<String>,
}

#[derive(Serialize)]
struct WorkerRow {
    id: String,
    host: String,
    version: String,
    state: &'static str,
    heartbeat: When,
    config_error: Option<String>,
}

#[derive(Serialize)]
struct Page {
    session: Session,
    alerts: Vec<AlertView>,
    jobs: Vec<JobRow>,
    services: Vec<ServiceRow>,
    workers: Vec<WorkerRow>,
}

/// `GET /`.
pub async fn page(
    State(s): State<AppState>,
    Extension(session): Extension<Session>,
    fragment: Fragment,
) -> PageResult {
    let now = s.clock.now();
    let config = s.config();
    let quiet = crate::ops::quiet(&s.db, Some(&config), now).await?;
    let alerts =
        s.db.list_alerts(false, 100)
            .await?
            .iter()
            .map(|a| AlertView::new(a, now, &quiet))
            .collect();
    let jobs = crate::overview::jobs(&config, &s.db, now)
        .await?
        .into_iter()
        .map(|j| JobRow {
            schedule: j.schedule_words,
            url: super::jobs::job_url(&j.name),
            name: j.name,
            kind: j.kind,
            enabled: j.enabled,
            last_status: j.last_status,
            last_run: when_opt(j.last_run, now),
            last_success: when_opt(j.last_success, now),
            next_fire: when_opt(j.next_fire, now),
            paused: j.paused.is_some(),
            paused_until: j.paused.as_ref().and_then(|p| when_opt(p.until, now)),
            open_alert: j.open_alert,
        })
        .collect();
    let services =
        s.db.service_health()
            .await?
            .into_iter()
            .map(|h| ServiceRow {
                service: h.service,
                status: h.status.to_string(),
                since: when(h.since, now),
                latency_ms: h.latency_ms,
                error: h.error,
            })
            .collect();
    let workers =
        s.db.workers()
            .await?
            .iter()
            .map(|w| WorkerRow {
                id: w.id.clone(),
                host: w.host.clone(),
                version: w.version.clone(),
                state: crate::heartbeat::state(w, now),
                heartbeat: when(w.heartbeat_at, now),
                config_error: w.config_error.clone(),
            })
            .collect();
    render(
        "overview.html",
        fragment,
        StatusCode::OK,
        Page {
            session,
            alerts,
            jobs,
            services,
            workers,
        },
    )
}
