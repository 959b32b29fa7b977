//! The API's writes (operator role only): pause and resume a job,
//! acknowledge and resolve an alert. Each is recorded in `audit_log`
//! whatever its outcome (a viewer's attempt as `forbidden`), then carried
//! out by the same `crate::ops` functions the CLI calls. Each handler
//! carries its OpenAPI description; the statuses every write shares (401,
//! 403, 413, 415, 422) are added by `openapi.rs`.

use std::future::Future;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::params::{id, Params};
use super::AppState;
use crate::db::NewAuditEntry;

/// Runs `work` if the caller may write, and records the attempt.
pub(super) async fn audited<T>(
    s: &AppState,
    caller: &Caller,
    action: &str,
    target: &str,
    work: impl Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    let result = if caller.may_write() {
        work.await
    } else {
        Err(ApiError::forbidden())
    };
    let (outcome, detail) = match &result {
        Ok(_) => ("ok", None),
        Err(e) => (
            match e.status {
                StatusCode::FORBIDDEN => "forbidden",
                StatusCode::NOT_FOUND => "not_found",
                StatusCode::CONFLICT => "conflict",
                s if s.is_client_error() => "invalid",
                // The database failed: recording it would fail as well.
                _ => return result,
            },
            Some(e.message.clone()),
        ),
    };
    let mut entry = NewAuditEntry::new(s.clock.now(), &caller.name, action, target, &caller.source);
    entry.outcome = outcome.to_string();
    entry.detail = detail;
    if let Err(e) = s.db.record_audit(&entry).await {
        tracing::warn!(error = %crate::error_chain(&e), action, target, "api: cannot record the audit entry");
    }
    result
}

/// A JSON body of `T`, where an empty body means `T::default()`.
pub(super) fn body<T: DeserializeOwned + Default>(
    bytes: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let bytes = bytes.map_err(|r| {
        let status = r.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            format!("the body is larger than {} bytes", super::BODY_LIMIT)
        } else {
            r.body_text()
        };
        ApiError::new(
            status,
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                "body_too_large"
            } else {
                "bad_body"
            },
            message,
        )
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    Json::<T>::from_bytes(&bytes)
        .map(|Json(t)| t)
        .map_err(ApiError::from)
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PauseBody {
    /// RFC 3339, or a duration from now such as `2h`; absent: until resumed.
    until: Option<String>,
    reason: Option<String>,
}

/// `POST /api/v1/jobs/{name}/pause` `{"until": "2h", "reason": "..."}`.
#[utoipa::path(post, path = "/api/v1/jobs/{name}/pause", tag = "jobs",
    params(("name" = String, Path, description = "The job's name in schedules.toml")),
    request_body(content = Option<PauseBody>, description = "Optional; an empty body pauses until resumed"),
    responses(
        (status = 200, description = "The job's pause as stored", body = crate::db::Pause),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "A push job, which runs elsewhere (`push_job`)", body = ErrorBody)))]
pub async fn pause(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    p: Params,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Json<crate::db::Pause>, ApiError> {
    let target = format!("job:{name}");
    audited(&s, &caller, "pause", &target, async {
        p.only(&[])?;
        let b: PauseBody = body(bytes)?;
        let now = s.clock.now();
        let until = b
            .until
            .as_deref()
            .map(|u| crate::ops::parse_until("until", u, now))
            .transpose()?;
        let pause = crate::ops::pause(
            &s.config(),
            &s.db,
            &name,
            now,
            until,
            b.reason.as_deref(),
            &caller.name,
        )
        .await?;
        Ok(Json(pause))
    })
    .await
}

/// What `resume` did.
#[derive(Serialize, ToSchema)]
pub struct Resumed {
    pub job: String,
    /// False when the job was not paused.
    pub resumed: bool,
}

/// `POST /api/v1/jobs/{name}/resume`.
#[utoipa::path(post, path = "/api/v1/jobs/{name}/resume", tag = "jobs",
    params(("name" = String, Path, description = "The job's name in schedules.toml")),
    responses(
        (status = 200, description = "The pause ended (or there was none)", body = Resumed),
        (status = 404, description = "No such job", body = ErrorBody)))]
pub async fn resume(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    p: Params,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Json<Resumed>, ApiError> {
    let target = format!("job:{name}");
    audited(&s, &caller, "resume", &target, async {
        p.only(&[])?;
        let Empty {} = body(bytes)?;
        let resumed = crate::ops::resume(&s.config(), &s.db, &name, s.clock.now()).await?;
        Ok(Json(Resumed {
            job: name.clone(),
            resumed,
        }))
    })
    .await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// `POST /api/v1/alerts/{id}/ack`: acknowledged by the caller (the token's
/// name).
#[utoipa::path(post, path = "/api/v1/alerts/{id}/ack", tag = "alerts",
    params(("id" = i64, Path, description = "The alert's id", minimum = 1)),
    responses(
        (status = 200, description = "The alert, acknowledged", body = ops_worker_jobs::store::Alert),
        (status = 404, description = "No such alert", body = ErrorBody),
        (status = 409, description = "The alert is not open (already acknowledged or resolved)", body = ErrorBody)))]
pub async fn ack(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(alert_id): Path<String>,
    p: Params,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Json<ops_worker_jobs::store::Alert>, ApiError> {
    let target = format!("alert:{alert_id}");
    audited(&s, &caller, "ack", &target, async {
        p.only(&[])?;
        let alert_id = id("id", &alert_id)?;
        let Empty {} = body(bytes)?;
        let a = crate::ops::ack(&s.db, alert_id, &caller.name, s.clock.now()).await?;
        Ok(Json(a))
    })
    .await
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    /// Why; stored with the alert and sent with the resolution.
    note: Option<String>,
}

/// `POST /api/v1/alerts/{id}/resolve` `{"note": "..."}`.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/resolve", tag = "alerts",
    params(("id" = i64, Path, description = "The alert's id", minimum = 1)),
    request_body(content = Option<ResolveBody>, description = "Optional"),
    responses(
        (status = 200, description = "The alert, resolved", body = ops_worker_jobs::store::Alert),
        (status = 404, description = "No such alert", body = ErrorBody),
        (status = 409, description = "The alert is already resolved", body = ErrorBody)))]
pub async fn resolve(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(alert_id): Path<String>,
    p: Params,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Json<ops_worker_jobs::store::Alert>, ApiError> {
    let target = format!("alert:{alert_id}");
    audited(&s, &caller, "resolve", &target, async {
        p.only(&[])?;
        let alert_id = id("id", &alert_id)?;
        let b: ResolveBody = body(bytes)?;
        let note = b
            .note
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| format!("resolved through the API by {}", caller.name));
        let a = crate::ops::resolve(&s.db, alert_id, &note, s.clock.now()).await?;
        Ok(Json(a))
    })
    .await
}

/// `POST /api/v1/jobs/{name}/run`: stores a "run now" request for a live
/// worker to claim and run (trigger `manual`, requested by the caller);
/// 202 with the request's id, 409 when no worker is live to run it.
#[utoipa::path(post, path = "/api/v1/jobs/{name}/run", tag = "jobs",
    params(("name" = String, Path, description = "The job's name in schedules.toml")),
    responses(
        (status = 202, description = "Stored for a live worker to run; follow `url`", body = RunNowAccepted),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "No live worker to run it (`no_live_worker`), or a push job, which runs elsewhere (`push_job`)", body = ErrorBody)))]
pub async fn run_now(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    p: Params,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<RunNowAccepted>), ApiError> {
    let target = format!("job:{name}");
    audited(&s, &caller, "run", &target, async {
        p.only(&[])?;
        let Empty {} = body(bytes)?;
        crate::ops::runs_here(&s.config(), &name)?;
        let id = crate::run_requests::submit(&s.db, &name, &caller.name, s.dead_after).await?;
        Ok((
            StatusCode::ACCEPTED,
            Json(RunNowAccepted {
                id,
                job: name.clone(),
                status: "pending".to_string(),
                url: format!("/api/v1/run-requests/{id}"),
            }),
        ))
    })
    .await
}

/// A stored "run now" request.
#[derive(Serialize, ToSchema)]
pub struct RunNowAccepted {
    pub id: i64,
    pub job: String,
    /// `pending` until a worker claims it.
    pub status: String,
    /// Where to follow it: `/api/v1/run-requests/{id}`.
    pub url: String,
}
