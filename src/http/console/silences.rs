//! The silences page (`/silences`): the maintenance windows open now and
//! the active ad-hoc silences (match, until, reason, who), a form to add a
//! silence (`POST /silences`: match, for, reason) and a remove button per
//! silence (`POST /silences/{id}/remove`). The writes call
//! `crate::ops::add_silence` and `remove_silence`, as the CLI and the API
//! do, and are audited as the API's are (`silence`, `unsilence`).
//!
//! A form that does not check out comes back with its values and the
//! one-line error of `crate::ops`, with the error's 4xx status.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::Extension;
use serde::Serialize;

use super::session::{Fields, Session};
use super::view::{render, when, ConsoleError, Fragment, PageResult, When};
use crate::http::auth::Caller;
use crate::http::params::{id, Params};
use crate::http::writes::audited;
use crate::http::AppState;
use crate::ops::SilenceEnd;

#[derive(Serialize)]
struct WindowRow {
    name: String,
    matches: Vec<String>,
    until: When,
}

#[derive(Serialize)]
struct SilenceRow {
    id: i64,
    pattern: String,
    since: When,
    until: When,
    reason: String,
    by: String,
}

/// The add form as last sent, and what was wrong with it.
#[derive(Serialize, Default)]
struct Form {
    pattern: String,
    duration: String,
    reason: String,
    error: Option<String>,
}

#[derive(Serialize)]
struct Page {
    session: Session,
    windows: Vec<WindowRow>,
    silences: Vec<SilenceRow>,
    form: Form,
}

/// The page with `form` (blank, or sent back with its error) and `status`.
async fn show(
    s: &AppState,
    session: Session,
    fragment: Fragment,
    status: StatusCode,
    form: Form,
) -> PageResult {
    let now = s.clock.now();
    let windows = ops_worker_jobs::Timeline::open_windows(&*s.config(), now)
        .into_iter()
        .map(|w| WindowRow {
            name: w.name,
            matches: w.matches,
            until: when(w.until, now),
        })
        .collect();
    let silences =
        s.db.silences(now, false)
            .await?
            .into_iter()
            .map(|x| SilenceRow {
                id: x.id,
                pattern: x.pattern,
                since: when(x.starts_at, now),
                until: when(x.ends_at, now),
                reason: x.reason,
                by: x.created_by,
            })
            .collect();
    render(
        "silences.html",
        fragment,
        status,
        Page {
            session,
            windows,
            silences,
            form,
        },
    )
}

/// `GET /silences`.
pub async fn page(
    State(s): State<AppState>,
    Extension(session): Extension<Session>,
    fragment: Fragment,
    p: Params,
) -> PageResult {
    p.only(&[])?;
    show(&s, session, fragment, StatusCode::OK, Form::default()).await
}

/// `POST /silences` `match=&for=&reason=`: silenced by the session's token
/// name from now; a bad field gives the form back with its error.
pub async fn add(
    State(s): State<AppState>,
    Extension(session): Extension<Session>,
    Extension(caller): Extension<Caller>,
    Extension(fields): Extension<Fields>,
) -> PageResult {
    let field = |name: &str| fields.get(name).unwrap_or("").to_string();
    let mut form = Form {
        pattern: field("match"),
        duration: field("for"),
        reason: field("reason"),
        error: None,
    };
    let target = format!("match:{}", form.pattern);
    let added = audited(&s, &caller, "silence", &target, async {
        let end = SilenceEnd::For(&form.duration);
        crate::ops::add_silence(
            &s.db,
            &form.pattern,
            end,
            &form.reason,
            &caller.name,
            s.clock.now(),
        )
        .await?;
        Ok(())
    })
    .await;
    match added {
        Ok(()) => Ok(Redirect::to("/silences").into_response()),
        Err(e) if e.status == StatusCode::BAD_REQUEST => {
            form.error = Some(e.message);
            show(&s, session, Fragment(false), e.status, form).await
        }
        Err(e) => Err(ConsoleError(e)),
    }
}

/// `POST /silences/{id}/remove`: its alerts open, remind and escalate again.
pub async fn remove(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(silence_id): Path<String>,
) -> PageResult {
    let target = format!("silence:{silence_id}");
    audited(&s, &caller, "unsilence", &target, async {
        let silence_id = id("id", &silence_id)?;
        crate::ops::remove_silence(&s.db, silence_id).await?;
        Ok(())
    })
    .await?;
    Ok(Redirect::to("/silences").into_response())
}
