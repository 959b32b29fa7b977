//! The API's reads. Each handler checks its parameters, calls the reads
//! the CLI uses and returns JSON; lists that grow without bound (runs,
//! alerts, the audit log) are paged with an opaque `cursor`. Each handler
//! carries its OpenAPI description (`#[utoipa::path]`, collected by
//! `openapi.rs`); what every route shares (the bearer token, 400, 401,
//! 503) is added there once.

use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use ops_worker_jobs::store::{Alert, AlertStatus, HealthCheck, HealthStore, ServiceHealth};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::params::{id, Params};
use super::AppState;
use crate::db::{AuditEntry, ReportSummary, RunRecord, RunRequest, RunStatus, RunsQuery, Worker};
use crate::overview::JobOverview;

type ApiResult<T> = Result<Json<T>, ApiError>;

/// `GET /api/v1/jobs`: every job of schedules.toml.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs",
    responses((status = 200, description = "Every job of schedules.toml, by name", body = Vec<JobOverview>)))]
pub async fn jobs(State(s): State<AppState>, p: Params) -> ApiResult<Vec<JobOverview>> {
    p.only(&[])?;
    Ok(Json(
        crate::overview::jobs(&s.config(), &s.db, s.clock.now()).await?,
    ))
}

/// `GET /api/v1/jobs/{name}`.
#[utoipa::path(get, path = "/api/v1/jobs/{name}", tag = "jobs",
    params(("name" = String, Path, description = "The job's name in schedules.toml")),
    responses(
        (status = 200, description = "The job", body = JobOverview),
        (status = 404, description = "No such job", body = ErrorBody)))]
pub async fn job(
    State(s): State<AppState>,
    Path(name): Path<String>,
    p: Params,
) -> ApiResult<JobOverview> {
    p.only(&[])?;
    if s.config().job(&name).is_none() {
        return Err(unknown_job(&name));
    }
    crate::overview::jobs(&s.config(), &s.db, s.clock.now())
        .await?
        .into_iter()
        .find(|j| j.name == name)
        .map(Json)
        .ok_or_else(|| unknown_job(&name))
}

pub(super) fn unknown_job(name: &str) -> ApiError {
    ApiError::not_found(format!("unknown job {name:?}"))
}

/// A page of a list and where the next one starts (`None`: this was the last).
#[derive(Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// `cursor` of a runs page: `<scheduled_for as Unix seconds>.<id>` of the
/// previous page's last run.
pub(super) fn runs_cursor(r: &RunRecord) -> String {
    format!("{}.{}", r.scheduled_for.timestamp(), r.id)
}

pub(super) fn parse_runs_cursor(s: &str) -> Result<(DateTime<Utc>, i64), ApiError> {
    let bad = || ApiError::bad_param("cursor", "not a cursor this API gave out");
    let (secs, id) = s.split_once('.').ok_or_else(bad)?;
    let at = secs
        .parse::<i64>()
        .ok()
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .ok_or_else(bad)?;
    Ok((at, id.parse().map_err(|_| bad())?))
}

/// `GET /api/v1/jobs/{name}/runs?status=&since=&until=&limit=&cursor=`:
/// newest first.
#[utoipa::path(get, path = "/api/v1/jobs/{name}/runs", tag = "runs",
    params(
        ("name" = String, Path, description = "The job's name (also one no longer in schedules.toml that has runs)"),
        ("status" = Option<RunStatus>, Query, description = "Only runs with this status"),
        ("since" = Option<DateTime<Utc>>, Query, description = "Only runs scheduled at or after this RFC 3339 time"),
        ("until" = Option<DateTime<Utc>>, Query, description = "Only runs scheduled before this RFC 3339 time"),
        ("limit" = Option<i64>, Query, description = "Runs per page, 1 to 500 (default 50)", minimum = 1, maximum = 500),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses(
        (status = 200, description = "A page of the job's runs, newest first", body = Page<RunRecord>),
        (status = 404, description = "No such job", body = ErrorBody)))]
pub async fn job_runs(
    State(s): State<AppState>,
    Path(name): Path<String>,
    p: Params,
) -> ApiResult<Page<RunRecord>> {
    p.only(&["status", "since", "until", "limit", "cursor"])?;
    let status = p.parse::<RunStatus>(
        "status",
        "running, success, failed, timeout, panicked, interrupted, skipped, abandoned",
    )?;
    let since = p.time("since")?;
    let until = p.time("until")?;
    let limit = p.int("limit", 1, 500, 50)?;
    let after = p.str("cursor").map(parse_runs_cursor).transpose()?;
    // A job no longer in the file still shows the runs it had.
    if s.config().job(&name).is_none() && s.db.history(Some(&name), 1).await?.is_empty() {
        return Err(unknown_job(&name));
    }
    let mut runs =
        s.db.runs_page(&RunsQuery {
            job: &name,
            status,
            since,
            until,
            after,
            limit: limit + 1,
        })
        .await?;
    let more = runs.len() as i64 > limit;
    runs.truncate(limit as usize);
    let next_cursor = more.then(|| runs.last().map(runs_cursor)).flatten();
    Ok(Json(Page {
        items: runs,
        next_cursor,
    }))
}

/// `GET /api/v1/runs/{id}`: one run with its output and error.
#[utoipa::path(get, path = "/api/v1/runs/{id}", tag = "runs",
    params(("id" = i64, Path, description = "The run's id", minimum = 1)),
    responses(
        (status = 200, description = "The run, with its output and error", body = RunRecord),
        (status = 404, description = "No such run", body = ErrorBody)))]
pub async fn run(
    State(s): State<AppState>,
    Path(run_id): Path<String>,
    p: Params,
) -> ApiResult<RunRecord> {
    p.only(&[])?;
    let run_id = id("id", &run_id)?;
    s.db.run(run_id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no run {run_id}")))
}

/// A service's latest state and its newest checks.
#[derive(Serialize, ToSchema)]
pub struct ServiceState {
    #[serde(flatten)]
    pub health: ServiceHealth,
    /// Newest first.
    pub recent_checks: Vec<HealthCheck>,
}

/// `GET /api/v1/services?checks=N`: each service's latest state and its
/// newest `checks` checks (default 10).
#[utoipa::path(get, path = "/api/v1/services", tag = "services",
    params(("checks" = Option<i64>, Query, description = "Recent checks per service, 0 to 100 (default 10)", minimum = 0, maximum = 100)),
    responses((status = 200, description = "Every service the health jobs check, by name", body = Vec<ServiceState>)))]
pub async fn services(State(s): State<AppState>, p: Params) -> ApiResult<Vec<ServiceState>> {
    p.only(&["checks"])?;
    let n = p.int("checks", 0, 100, 10)?;
    let mut out = Vec::new();
    for health in s.db.service_health().await? {
        let recent_checks = s.db.recent_checks(&health.service, n).await?;
        out.push(ServiceState {
            health,
            recent_checks,
        });
    }
    Ok(Json(out))
}

/// A notification sent about an alert.
#[derive(Serialize, ToSchema)]
pub struct SentNotification {
    /// `opened`, `reminder`, `escalated`, `acknowledged`, `resolved`.
    pub event: String,
    /// The `[notify.NAME]` target.
    pub target: String,
}

/// An alert with the notifications sent about it.
#[derive(Serialize, ToSchema)]
pub struct AlertView {
    #[serde(flatten)]
    pub alert: Alert,
    pub notifications: Vec<SentNotification>,
}

async fn alert_view(s: &AppState, alert: Alert) -> Result<AlertView, ApiError> {
    let notifications =
        s.db.alert_notifications(alert.id)
            .await?
            .into_iter()
            .map(|(event, target)| SentNotification { event, target })
            .collect();
    Ok(AlertView {
        alert,
        notifications,
    })
}

/// `GET /api/v1/alerts?status=&limit=&cursor=`: newest first; `status` is
/// `active` (open or acknowledged, the default), `open`, `acknowledged`
/// or `resolved`.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts",
    params(
        ("status" = Option<String>, Query, description = "`active` (open or acknowledged, the default), `open`, `acknowledged` or `resolved`"),
        ("limit" = Option<i64>, Query, description = "Alerts per page, 1 to 500 (default 50)", minimum = 1, maximum = 500),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, description = "A page of alerts, newest first", body = Page<AlertView>)))]
pub async fn alerts(State(s): State<AppState>, p: Params) -> ApiResult<Page<AlertView>> {
    p.only(&["status", "limit", "cursor"])?;
    let status = match p.str("status").unwrap_or("active") {
        "active" => None,
        other => Some(other.parse::<AlertStatus>().map_err(|_| {
            ApiError::bad_param(
                "status",
                "expected one of active, open, acknowledged, resolved",
            )
        })?),
    };
    let limit = p.int("limit", 1, 500, 50)?;
    let before = p.str("cursor").map(|c| id("cursor", c)).transpose()?;
    let mut alerts = s.db.alerts_by_status(status, before, limit + 1).await?;
    let more = alerts.len() as i64 > limit;
    alerts.truncate(limit as usize);
    let next_cursor = more
        .then(|| alerts.last().map(|a| a.id.to_string()))
        .flatten();
    let mut items = Vec::new();
    for a in alerts {
        items.push(alert_view(&s, a).await?);
    }
    Ok(Json(Page { items, next_cursor }))
}

/// `GET /api/v1/alerts/{id}`.
#[utoipa::path(get, path = "/api/v1/alerts/{id}", tag = "alerts",
    params(("id" = i64, Path, description = "The alert's id", minimum = 1)),
    responses(
        (status = 200, description = "The alert and the notifications sent about it", body = AlertView),
        (status = 404, description = "No such alert", body = ErrorBody)))]
pub async fn alert(
    State(s): State<AppState>,
    Path(alert_id): Path<String>,
    p: Params,
) -> ApiResult<AlertView> {
    p.only(&[])?;
    let alert_id = id("id", &alert_id)?;
    let a =
        s.db.get_alert(alert_id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no alert {alert_id}")))?;
    Ok(Json(alert_view(&s, a).await?))
}

/// A worker and its state.
#[derive(Serialize, ToSchema)]
pub struct WorkerState {
    #[serde(flatten)]
    pub worker: Worker,
    /// `running`, `stale` (no heartbeat for too long) or `stopped`.
    pub state: String,
}

/// `GET /api/v1/workers`: every worker with its state (`running`, `stale`,
/// `stopped`), as `status` shows them.
#[utoipa::path(get, path = "/api/v1/workers", tag = "workers",
    responses((status = 200, description = "Every worker that registered", body = Vec<WorkerState>)))]
pub async fn workers(State(s): State<AppState>, p: Params) -> ApiResult<Vec<WorkerState>> {
    p.only(&[])?;
    let now = s.clock.now();
    Ok(Json(
        s.db.workers()
            .await?
            .into_iter()
            .map(|worker| WorkerState {
                state: crate::heartbeat::state(&worker, now).to_string(),
                worker,
            })
            .collect(),
    ))
}

/// `GET /api/v1/reports?name=&limit=`: the stored reports, newest period
/// first, without their bodies.
#[utoipa::path(get, path = "/api/v1/reports", tag = "reports",
    params(
        ("name" = Option<String>, Query, description = "Only this report job's reports"),
        ("limit" = Option<i64>, Query, description = "At most this many, 1 to 500 (default 50)", minimum = 1, maximum = 500)),
    responses((status = 200, description = "Stored reports, newest period first, without their bodies", body = Vec<ReportSummary>)))]
pub async fn reports(State(s): State<AppState>, p: Params) -> ApiResult<Vec<ReportSummary>> {
    p.only(&["name", "limit"])?;
    let limit = p.int("limit", 1, 500, 50)?;
    Ok(Json(s.db.report_list(p.str("name"), limit).await?))
}

/// One stored report.
#[derive(Serialize, ToSchema)]
pub struct ReportView {
    #[serde(flatten)]
    pub report: ReportSummary,
    /// The report's figures, as the `report` kind computed them.
    #[schema(value_type = Object)]
    pub figures: Value,
    pub markdown: String,
}

/// `GET /api/v1/reports/{name}/{period}`: one report, its figures and its
/// Markdown.
#[utoipa::path(get, path = "/api/v1/reports/{name}/{period}", tag = "reports",
    params(
        ("name" = String, Path, description = "The report job's name"),
        ("period" = String, Path, description = "The period as the report names it, such as 2026-W48 or 2026-11")),
    responses(
        (status = 200, description = "The report with its figures and Markdown", body = ReportView),
        (status = 404, description = "No such report", body = ErrorBody)))]
pub async fn report(
    State(s): State<AppState>,
    Path((name, period)): Path<(String, String)>,
    p: Params,
) -> ApiResult<ReportView> {
    p.only(&[])?;
    let r =
        s.db.report(Some(&name), Some(&period))
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no report {name:?} for {period:?}")))?;
    let figures: Value = serde_json::from_str(&r.json).unwrap_or(Value::String(r.json.clone()));
    Ok(Json(ReportView {
        report: ReportSummary {
            name: r.name,
            period: r.period,
            period_start: r.period_start,
            period_end: r.period_end,
            generated_at: r.generated_at,
        },
        figures,
        markdown: r.markdown,
    }))
}

/// Who is on call at an instant.
#[derive(Serialize, ToSchema)]
pub struct OnCallAt {
    pub schedule: String,
    /// The schedule's IANA time zone.
    pub timezone: String,
    pub at: DateTime<Utc>,
    /// The person on call; `null` when nobody is.
    pub who: Option<String>,
    pub shift_start: Option<DateTime<Utc>>,
    pub shift_end: Option<DateTime<Utc>>,
}

/// `GET /api/v1/oncall/{schedule}?at=`: who is on call at `at` (RFC 3339
/// or a local time in the schedule's zone; default now) and the shift.
#[utoipa::path(get, path = "/api/v1/oncall/{schedule}", tag = "oncall",
    params(
        ("schedule" = String, Path, description = "The `[oncall.NAME]` schedule"),
        ("at" = Option<String>, Query, description = "RFC 3339, or a local time in the schedule's zone such as 2026-11-24T10:00 (default now)")),
    responses(
        (status = 200, description = "Who is on call and their shift", body = OnCallAt),
        (status = 404, description = "No such schedule", body = ErrorBody)))]
pub async fn oncall(
    State(s): State<AppState>,
    Path(schedule): Path<String>,
    p: Params,
) -> ApiResult<OnCallAt> {
    p.only(&["at"])?;
    let config = s.config();
    let sched = config
        .oncall_schedule(&schedule)
        .ok_or_else(|| ApiError::not_found(format!("no on-call schedule {schedule:?}")))?;
    let tz = sched.timezone();
    let at = match p.str("at") {
        Some(t) => crate::cli::oncall::parse_time("at", t, tz).map_err(|e| {
            ApiError::new(axum::http::StatusCode::BAD_REQUEST, "bad_parameter", e.0)
        })?,
        None => s.clock.now(),
    };
    let shift = crate::cli::oncall::shift_at(sched, at);
    Ok(Json(OnCallAt {
        schedule,
        timezone: tz.to_string(),
        at,
        who: shift.as_ref().and_then(|s| s.who.clone()),
        shift_start: shift.as_ref().map(|s| s.start),
        shift_end: shift.as_ref().map(|s| s.end),
    }))
}

/// `GET /api/v1/audit?limit=&cursor=`: every write through the API,
/// newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit",
    params(
        ("limit" = Option<i64>, Query, description = "Entries per page, 1 to 500 (default 50)", minimum = 1, maximum = 500),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, description = "A page of the audit log, newest first", body = Page<AuditEntry>)))]
pub async fn audit(State(s): State<AppState>, p: Params) -> ApiResult<Page<AuditEntry>> {
    p.only(&["limit", "cursor"])?;
    let limit = p.int("limit", 1, 500, 50)?;
    let before = p.str("cursor").map(|c| id("cursor", c)).transpose()?;
    let mut entries = s.db.audit_log(before, limit + 1).await?;
    let more = entries.len() as i64 > limit;
    entries.truncate(limit as usize);
    Ok(Json(Page {
        next_cursor: more
            .then(|| entries.last().map(|e| e.id.to_string()))
            .flatten(),
        items: entries,
    }))
}

/// `GET /api/v1/run-requests/{id}`: a "run now" request, with the worker
/// that claimed it and its run once claimed.
#[utoipa::path(get, path = "/api/v1/run-requests/{id}", tag = "runs",
    params(("id" = i64, Path, description = "The id `POST /api/v1/jobs/{name}/run` returned", minimum = 1)),
    responses(
        (status = 200, description = "The request, its worker and its run once claimed", body = RunRequest),
        (status = 404, description = "No such request", body = ErrorBody)))]
pub async fn run_request(
    State(s): State<AppState>,
    Path(request_id): Path<String>,
    p: Params,
) -> ApiResult<RunRequest> {
    p.only(&[])?;
    let request_id = id("id", &request_id)?;
    crate::run_requests::get(&s.db, request_id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no run request {request_id}")))
}
