//! The silence routes: list the silences, add one, remove one (what
//! `ops-worker silence list|add|remove` do, through the same `crate::ops`
//! functions). Adding and removing are writes: operator only, audited and
//! cross-site checked like the others (`writes.rs`, `auth.rs`).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use ops_worker_jobs::store::Silence;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::params::{id, Params};
use super::writes::{audited, body};
use super::AppState;
use crate::ops::SilenceEnd;

/// `GET /api/v1/silences?all=`: the active silences, by id.
#[utoipa::path(get, operation_id = "list_silences", path = "/api/v1/silences", tag = "silences",
    params(("all" = Option<bool>, Query, description = "`true`: ended and future ones too (default `false`)")),
    responses((status = 200, description = "The silences, by id", body = Vec<Silence>)))]
pub async fn list(State(s): State<AppState>, p: Params) -> Result<Json<Vec<Silence>>, ApiError> {
    p.only(&["all"])?;
    let all = p.bool("all", false)?;
    Ok(Json(s.db.silences(s.clock.now(), all).await?))
}

/// The body of `POST /api/v1/silences`: `for` or `until`, not both.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSilence {
    /// A fingerprint glob, `*` the only wildcard: `system:service:api`,
    /// `job:backup`, `job:*`, `*`.
    #[serde(rename = "match")]
    pub pattern: String,
    /// How long from now, such as `2h` or `30m`.
    #[serde(rename = "for")]
    pub duration: Option<String>,
    /// When it ends instead: RFC 3339, or a duration from now.
    pub until: Option<String>,
    /// Why; shown by `silence list` and `alerts list`.
    pub reason: String,
}

/// `POST /api/v1/silences` `{"match": "job:*", "for": "2h", "reason": "..."}`:
/// silenced by the caller (the token's name) from now.
#[utoipa::path(post, operation_id = "add_silence", path = "/api/v1/silences", tag = "silences",
    request_body = NewSilence,
    responses(
        (status = 201, description = "The silence as stored, with its id", body = Silence),
        (status = 400, description = "A field that is not valid (`match`, `for`, `until`, `reason`), named in the message", body = ErrorBody)))]
pub async fn add(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    p: Params,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Silence>), ApiError> {
    let b: Result<NewSilence, ApiError> = body(bytes);
    let target = match &b {
        Ok(b) => format!("match:{}", b.pattern),
        Err(_) => "match:?".to_string(),
    };
    audited(&s, &caller, "silence", &target, async {
        p.only(&[])?;
        let b = b?;
        let end =
            match (b.duration.as_deref(), b.until.as_deref()) {
                (Some(d), None) => SilenceEnd::For(d),
                (None, Some(u)) => SilenceEnd::Until(u),
                (Some(_), Some(_)) => {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "bad_parameter",
                        "for, until: give one of them, not both",
                    ))
                }
                (None, None) => return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_parameter",
                    "for: missing: give for (a duration such as 2h) or until (an RFC 3339 time)",
                )),
            };
        let silence = crate::ops::add_silence(
            &s.db,
            &b.pattern,
            end,
            &b.reason,
            &caller.name,
            s.clock.now(),
        )
        .await?;
        Ok((StatusCode::CREATED, Json(silence)))
    })
    .await
}

/// What `DELETE /api/v1/silences/{id}` did.
#[derive(Serialize, ToSchema)]
pub struct Removed {
    pub id: i64,
    pub removed: bool,
}

/// `DELETE /api/v1/silences/{id}`: its alerts open, remind and escalate
/// again.
#[utoipa::path(delete, operation_id = "remove_silence", path = "/api/v1/silences/{id}", tag = "silences",
    params(("id" = i64, Path, description = "The silence's id", minimum = 1)),
    responses(
        (status = 200, description = "Removed", body = Removed),
        (status = 404, description = "No such silence", body = ErrorBody)))]
pub async fn remove(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(silence_id): Path<String>,
    p: Params,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Json<Removed>, ApiError> {
    let target = format!("silence:{silence_id}");
    audited(&s, &caller, "unsilence", &target, async {
        p.only(&[])?;
        let silence_id = id("id", &silence_id)?;
        let super::writes::Empty {} = body(bytes)?;
        crate::ops::remove_silence(&s.db, silence_id).await?;
        Ok(Json(Removed {
            id: silence_id,
            removed: true,
        }))
    })
    .await
}
