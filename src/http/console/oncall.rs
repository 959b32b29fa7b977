//! The on-call page (`/oncall`): who is on call now on each schedule of
//! schedules.toml and the coming shifts, from the same resolution as
//! `ops-worker oncall who` and `GET /api/v1/oncall/{schedule}`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Extension;
use chrono::TimeDelta;
use serde::Serialize;

use super::session::Session;
use super::view::{render, when, Fragment, PageResult, When};
use crate::http::params::Params;
use crate::http::AppState;

/// How far ahead the coming shifts are listed, and how many at most.
const AHEAD: TimeDelta = TimeDelta::days(28);
const COMING: usize = 6;

#[derive(Serialize)]
struct ShiftRow {
    who: Option<String>,
    start: When,
    end: When,
}

#[derive(Serialize)]
struct ScheduleView {
    name: String,
    timezone: String,
    now: Option<ShiftRow>,
    coming: Vec<ShiftRow>,
}

#[derive(Serialize)]
struct Page {
    session: Session,
    schedules: Vec<ScheduleView>,
}

/// `GET /oncall`.
pub async fn page(
    State(s): State<AppState>,
    Extension(session): Extension<Session>,
    fragment: Fragment,
    p: Params,
) -> PageResult {
    p.only(&[])?;
    let now = s.clock.now();
    let row = |sh: &ops_worker_jobs::oncall::Shift| ShiftRow {
        who: sh.who.clone(),
        start: when(sh.start, now),
        end: when(sh.end, now),
    };
    let schedules = s
        .config()
        .oncall
        .iter()
        .map(|(name, sched)| {
            let current = crate::cli::oncall::shift_at(sched, now);
            let from = current.as_ref().map_or(now, |c| c.end);
            ScheduleView {
                name: name.clone(),
                timezone: sched.timezone().to_string(),
                now: current.as_ref().map(row),
                coming: sched
                    .shifts(from, now + AHEAD)
                    .iter()
                    .take(COMING)
                    .map(row)
                    .collect(),
            }
        })
        .collect();
    render(
        "oncall.html",
        fragment,
        StatusCode::OK,
        Page { session, schedules },
    )
}
