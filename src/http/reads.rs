//! The API's reads. Each handler checks its parameters, calls the reads
//! the CLI uses and returns JSON; lists that grow without bound (runs,
//! alerts, the audit log) are paged with an opaque `cursor`.

use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use ops_worker_jobs::store::{AlertStatus, HealthStore};
use serde::Serialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::params::{id, Params};
use super::AppState;
use crate::db::{RunRecord, RunStatus, RunsQuery};
use crate::overview::JobOverview;

type ApiResult<T> = Result<Json<T>, ApiError>;

/// `GET /api/v1/jobs`: every job of schedules.toml.
pub async fn jobs(State(s): State<AppState>, p: Params) -> ApiResult<Vec<JobOverview>> {
    p.only(&[])?;
    Ok(Json(
        crate::overview::jobs(&s.config(), &s.db, s.clock.now()).await?,
    ))
}

/// `GET /api/v1/jobs/{name}`.
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
#[derive(Serialize)]
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

/// `GET /api/v1/services?checks=N`: each service's latest state and its
/// newest `checks` checks (default 10).
pub async fn services(State(s): State<AppState>, p: Params) -> ApiResult<Vec<Value>> {
    p.only(&["checks"])?;
    let n = p.int("checks", 0, 100, 10)?;
    let mut out = Vec::new();
    for service in s.db.service_health().await? {
        let checks = s.db.recent_checks(&service.service, n).await?;
        let mut v = serde_json::to_value(&service).unwrap_or_default();
        v["recent_checks"] = serde_json::to_value(&checks).unwrap_or_default();
        out.push(v);
    }
    Ok(Json(out))
}

/// An alert with the notifications sent about it.
async fn alert_json(s: &AppState, a: &ops_worker_jobs::store::Alert) -> Result<Value, ApiError> {
    let notifications: Vec<Value> =
        s.db.alert_notifications(a.id)
            .await?
            .into_iter()
            .map(|(event, target)| json!({"event": event, "target": target}))
            .collect();
    let mut v = serde_json::to_value(a).unwrap_or_default();
    v["notifications"] = notifications.into();
    Ok(v)
}

/// `GET /api/v1/alerts?status=&limit=&cursor=`: newest first; `status` is
/// `active` (open or acknowledged, the default), `open`, `acknowledged`
/// or `resolved`.
pub async fn alerts(State(s): State<AppState>, p: Params) -> ApiResult<Page<Value>> {
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
    let mut items = Vec::new();
    for a in &alerts {
        items.push(alert_json(&s, a).await?);
    }
    Ok(Json(Page {
        items,
        next_cursor: more
            .then(|| alerts.last().map(|a| a.id.to_string()))
            .flatten(),
    }))
}

/// `GET /api/v1/alerts/{id}`.
pub async fn alert(
    State(s): State<AppState>,
    Path(alert_id): Path<String>,
    p: Params,
) -> ApiResult<Value> {
    p.only(&[])?;
    let alert_id = id("id", &alert_id)?;
    let a =
        s.db.get_alert(alert_id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no alert {alert_id}")))?;
    Ok(Json(alert_json(&s, &a).await?))
}

/// `GET /api/v1/workers`: every worker with its state (`running`, `stale`,
/// `stopped`), as `status` shows them.
pub async fn workers(State(s): State<AppState>, p: Params) -> ApiResult<Vec<Value>> {
    p.only(&[])?;
    let now = s.clock.now();
    Ok(Json(
        s.db.workers()
            .await?
            .iter()
            .map(|w| {
                let mut v = serde_json::to_value(w).unwrap_or_default();
                v["state"] = crate::heartbeat::state(w, now).into();
                v
            })
            .collect(),
    ))
}

/// `GET /api/v1/reports?name=&limit=`: the stored reports, newest period
/// first, without their bodies.
pub async fn reports(
    State(s): State<AppState>,
    p: Params,
) -> ApiResult<Vec<crate::db::ReportSummary>> {
    p.only(&["name", "limit"])?;
    let limit = p.int("limit", 1, 500, 50)?;
    Ok(Json(s.db.report_list(p.str("name"), limit).await?))
}

/// `GET /api/v1/reports/{name}/{period}`: one report, its figures and its
/// Markdown.
pub async fn report(
    State(s): State<AppState>,
    Path((name, period)): Path<(String, String)>,
    p: Params,
) -> ApiResult<Value> {
    p.only(&[])?;
    let r =
        s.db.report(Some(&name), Some(&period))
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no report {name:?} for {period:?}")))?;
    let figures: Value = serde_json::from_str(&r.json).unwrap_or(Value::String(r.json.clone()));
    Ok(Json(json!({
        "name": r.name,
        "period": r.period,
        "period_start": r.period_start,
        "period_end": r.period_end,
        "generated_at": r.generated_at,
        "figures": figures,
        "markdown": r.markdown,
    })))
}

/// `GET /api/v1/oncall/{schedule}?at=`: who is on call at `at` (RFC 3339
/// or a local time in the schedule's zone; default now) and the shift.
pub async fn oncall(
    State(s): State<AppState>,
    Path(schedule): Path<String>,
    p: Params,
) -> ApiResult<Value> {
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
    Ok(Json(json!({
        "schedule": schedule,
        "timezone": tz.to_string(),
        "at": at,
        "who": shift.as_ref().and_then(|s| s.who.clone()),
        "shift_start": shift.as_ref().map(|s| s.start),
        "shift_end": shift.as_ref().map(|s| s.end),
    })))
}

/// `GET /api/v1/audit?limit=&cursor=`: every write through the API,
/// newest first.
pub async fn audit(State(s): State<AppState>, p: Params) -> ApiResult<Page<crate::db::AuditEntry>> {
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
pub async fn run_request(
    State(s): State<AppState>,
    Path(request_id): Path<String>,
    p: Params,
) -> ApiResult<crate::db::RunRequest> {
    p.only(&[])?;
    let request_id = id("id", &request_id)?;
    crate::run_requests::get(&s.db, request_id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no run request {request_id}")))
}
