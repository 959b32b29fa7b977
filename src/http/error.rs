//! The API's errors: `{"error": "<code>", "message": "..."}` with the
//! status that goes with the code. Every rejection of bad input ends here
//! as a 4xx; only a failing database gives a 5xx (503), whose message
//! never carries the database's own text (it may name hosts or users).

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::ops::OpError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

/// The body of every error (schema `Error` of the OpenAPI document).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// A stable code: `bad_parameter`, `unauthorized`, `forbidden`,
    /// `cross_site`, `not_found`, `conflict`, `invalid_body`, ...
    error: String,
    /// One line for a person, naming the parameter or field at fault.
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 about the query or path parameter `name`.
    pub fn bad_param(name: &str, message: impl std::fmt::Display) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_parameter",
            format!("parameter {name:?}: {message}"),
        )
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 401, with no detail about why.
    pub fn unauthorized() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is required",
        )
    }

    pub fn forbidden() -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this token may only read (role \"viewer\"); writes need role \"operator\"",
        )
    }

    /// 503: the database failed. Logged once here, with its cause; the
    /// client learns only that it is unavailable.
    pub fn database(e: &crate::db::DbError) -> Self {
        tracing::warn!(error = %crate::error_chain(e), "api: database error");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            "the database is unavailable; try again",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&ErrorBody {
            error: self.code.to_string(),
            message: self.message,
        })
        .unwrap_or_default();
        let mut resp = (self.status, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

impl From<OpError> for ApiError {
    fn from(e: OpError) -> Self {
        match &e {
            OpError::UnknownJob(_) | OpError::NoAlert(_) | OpError::NoSilence(_) => {
                ApiError::not_found(e.to_string())
            }
            OpError::BadInput(m) => ApiError::new(StatusCode::BAD_REQUEST, "bad_parameter", m),
            OpError::BadField { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "bad_parameter", e.to_string())
            }
            OpError::AlertState { .. } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            OpError::PushJob(_) => ApiError::new(StatusCode::CONFLICT, "push_job", e.to_string()),
            OpError::Db(db) => ApiError::database(db),
        }
    }
}

impl From<crate::run_requests::SubmitError> for ApiError {
    fn from(e: crate::run_requests::SubmitError) -> Self {
        match e {
            crate::run_requests::SubmitError::NoLiveWorker => {
                ApiError::new(StatusCode::CONFLICT, "no_live_worker", e.to_string())
            }
            crate::run_requests::SubmitError::Db(db) => ApiError::database(&db),
        }
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(e: crate::db::DbError) -> Self {
        ApiError::database(&e)
    }
}

impl From<ops_worker_jobs::store::StoreError> for ApiError {
    fn from(e: ops_worker_jobs::store::StoreError) -> Self {
        tracing::warn!(error = %crate::error_chain(&e), "api: database error");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            "the database is unavailable; try again",
        )
    }
}

/// A body that is not what the route takes: 413 too large, 415 not JSON,
/// 400 not well-formed, 422 well-formed but with unknown or missing fields
/// or wrong types (axum's statuses; the message is serde's, which names
/// the field).
impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let status = r.status();
        let code = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::UNPROCESSABLE_ENTITY => "invalid_body",
            _ => "bad_body",
        };
        let message = match status {
            StatusCode::PAYLOAD_TOO_LARGE => {
                format!("the body is larger than {} bytes", super::BODY_LIMIT)
            }
            _ => r.body_text(),
        };
        ApiError::new(status, code, message)
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_parameter", r.body_text())
    }
}
