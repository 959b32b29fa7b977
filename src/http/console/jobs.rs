//! A job's page (`/jobs/{name}`): its state, its next fire times with what
//! DST changes do to them (`schedule::dst::fire_times`, as `ops-worker
//! next`), a timeline of its recent slots, a chart of their durations
//! (`durations.rs`), its runs (newest first, paged, filtered by status) and
//! the run now, pause and resume buttons; and a run's page (`/runs/{id}`)
//! with every field, its output and the other attempts of its slot.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::Extension;
use chrono::{DateTime, TimeDelta, Utc};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde::Serialize;

use super::durations::{chart, Chart};
use super::session::{Fields, Session};
use super::view::{duration_ms, render, when, when_opt, Fragment, PageResult, When};
use crate::config::JobSpec;
use crate::db::{RunRecord, RunStatus, RunsQuery};
use crate::http::auth::Caller;
use crate::http::params::{id, Params};
use crate::http::reads::{parse_runs_cursor, runs_cursor, unknown_job};
use crate::http::writes::audited;
use crate::http::{ApiError, AppState};
use crate::schedule::dst;
use crate::schedule::signal::{missed_between, MISSED_COUNTED};
use crate::schedule::Schedule;
use crate::scheduler::Start;

/// Runs per page of the table.
const PAGE: i64 = 25;
/// Slots in the timeline.
const TIMELINE: i64 = 60;
/// Missed slots drawn in one place, at most (the label gives the count).
const MISSED_MARKS: u64 = 5;
/// Fire times listed.
const FIRE_TIMES: usize = 10;

#[derive(Serialize)]
struct RunRow {
    id: i64,
    scheduled: When,
    started: When,
    trigger: String,
    attempt: i32,
    status: String,
    duration: Option<String>,
    missed: i32,
    worker_id: String,
    error: Option<String>,
}

impl RunRow {
    fn new(r: &RunRecord, now: DateTime<Utc>) -> Self {
        RunRow {
            id: r.id,
            scheduled: when(r.scheduled_for, now),
            started: when(r.started_at, now),
            trigger: r.trigger.to_string(),
            attempt: r.attempt,
            status: r.status.to_string(),
            duration: r.duration_ms.map(duration_ms),
            missed: r.missed,
            worker_id: r.worker_id.clone(),
            error: r.error.clone(),
        }
    }
}

/// One mark of the timeline: a slot's outcome, or a slot not run.
#[derive(Debug, Serialize, PartialEq)]
struct Mark {
    x: usize,
    class: String,
    label: String,
}

/// Width of a mark and the gap after it, in SVG units.
const MARK_STEP: usize = 10;

/// A push job's slots as its timeline needs them. ops-worker records no
/// `missed` on a push row: its runs are the signals, so the slots with no
/// signal are found here, from the schedule, when the page is drawn.
/// Simpler and more correct than counting them when a signal is recorded:
/// a start and its finish are two writes, the first signal ever has no
/// slot before it, and two hosts' signals for neighbouring slots can commit
/// in either order, so a count written with one row could be wrong by the
/// time the next commits and would never be corrected. Read from the rows,
/// the gaps always agree with them and with the `alerts` kind, which reads
/// the same rows and the same schedule (`schedule::signal::missed_between`).
struct PushSlots<'a> {
    schedule: &'a Schedule,
    /// Now minus the job's `grace`: a slot after the newest recorded one
    /// and before this is missed (`slot + grace < now`, the alert's rule).
    /// `None` for a disabled job, which the alert does not watch.
    due_before: Option<DateTime<Utc>>,
}

impl<'a> PushSlots<'a> {
    /// `Some` for a push job.
    fn of(spec: Option<&'a JobSpec>, now: DateTime<Utc>) -> Option<Self> {
        let spec = spec?;
        let grace = TimeDelta::from_std(spec.push.as_ref()?.grace).ok()?;
        Some(PushSlots {
            schedule: &spec.schedule,
            due_before: spec
                .enabled
                .then(|| now.checked_sub_signed(grace))
                .flatten(),
        })
    }
}

/// Pushes up to [`MISSED_MARKS`] missed marks for `count` slots, labelled
/// `label` after the count ("at least" from [`MISSED_COUNTED`] on, where
/// the count of a cron schedule's slots stops).
fn missed_marks(marks: &mut Vec<Mark>, count: u64, label: &str) {
    let at_least = if count >= MISSED_COUNTED {
        "at least "
    } else {
        ""
    };
    for _ in 0..count.min(MISSED_MARKS) {
        marks.push(Mark {
            x: 0,
            class: "missed".into(),
            label: format!("{at_least}{count} slot(s) missed {label}"),
        });
    }
}

/// The timeline of `runs` (newest first): per slot its latest attempt,
/// oldest on the left, each run preceded by the slots it says were missed.
/// For a push job (`push`), the slots between two runs with no signal, and
/// at the right end the slots due since the newest run with none. A job
/// ops-worker runs gets no trailing marks: its missed-slot alert counts
/// from a `job_grace` each `alerts` job sets for itself (or none watches
/// it) and slots of a paused job are not missed, so there is no one rule;
/// its worker records the slots it missed as `missed` when it runs again.
fn timeline(runs: &[RunRecord], push: Option<PushSlots<'_>>) -> Vec<Mark> {
    let mut slots: Vec<&RunRecord> = Vec::new();
    for r in runs {
        if slots
            .last()
            .is_none_or(|l| l.scheduled_for != r.scheduled_for)
        {
            slots.push(r);
        }
    }
    let utc = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    let mut marks = Vec::new();
    let mut previous: Option<DateTime<Utc>> = None;
    for r in slots.iter().rev() {
        let gap = match (&push, previous) {
            (Some(p), Some(prev)) => missed_between(p.schedule, prev, r.scheduled_for),
            _ => 0,
        };
        let missed = u64::try_from(r.missed).unwrap_or(0) + gap;
        let at = utc(r.scheduled_for);
        missed_marks(&mut marks, missed, &format!("before {at}"));
        marks.push(Mark {
            x: 0,
            class: r.status.to_string(),
            label: format!("{at}: {} ({}, attempt {})", r.status, r.trigger, r.attempt),
        });
        previous = Some(r.scheduled_for);
    }
    // A push job that has never signalled is not expected yet (nor by the alert).
    if let (Some(p), Some(newest)) = (&push, previous) {
        if let Some(due_before) = p.due_before {
            let at = utc(newest);
            missed_marks(
                &mut marks,
                missed_between(p.schedule, newest, due_before),
                &format!("after {at}: no signal within grace"),
            );
        }
    }
    for (i, m) in marks.iter_mut().enumerate() {
        m.x = i * MARK_STEP;
    }
    marks
}

/// One upcoming fire time: when (in the browser's zone, UTC on hover), the
/// job's local time, what a DST change does to it, and whether a pause
/// holds it back.
#[derive(Serialize)]
struct FireRow {
    at: When,
    local: String,
    marks: Vec<String>,
    paused: bool,
}

#[derive(Serialize)]
struct JobPage {
    session: Session,
    url: String,
    job: crate::overview::JobOverview,
    schedule: String,
    last_run: Option<When>,
    last_success: Option<When>,
    next_fire: Option<When>,
    paused_since: Option<When>,
    paused_until: Option<When>,
    /// A push job: its fire times are the slots a signal is expected for.
    push: bool,
    fires: Vec<FireRow>,
    durations: Option<Chart>,
    timeline: Vec<Mark>,
    timeline_width: usize,
    runs: Vec<RunRow>,
    status: Option<String>,
    statuses: &'static [&'static str],
    next_page: Option<String>,
    requested: Option<i64>,
}

const STATUSES: &[&str] = &[
    "running",
    "success",
    "failed",
    "timeout",
    "panicked",
    "interrupted",
    "skipped",
    "abandoned",
];

/// `GET /jobs/{name}?status=&cursor=&requested=`.
pub async fn page(
    State(s): State<AppState>,
    Extension(session): Extension<Session>,
    fragment: Fragment,
    Path(name): Path<String>,
    p: Params,
) -> PageResult {
    p.only(&["status", "cursor", "requested"])?;
    let status = p.parse::<RunStatus>("status", &STATUSES.join(", "))?;
    let after = p.str("cursor").map(parse_runs_cursor).transpose()?;
    let requested = p.str("requested").map(|r| id("requested", r)).transpose()?;
    let now = s.clock.now();
    let config = s.config();
    let spec = config.job(&name).ok_or_else(|| unknown_job(&name))?;
    let job = crate::overview::jobs(&config, &s.db, now)
        .await?
        .into_iter()
        .find(|j| j.name == name)
        .ok_or_else(|| unknown_job(&name))?;
    let start = Start {
        last_slot: s.db.last_slots().await?.get(&name).copied(),
        armed_at: now,
    };
    let fires = dst::fire_times(&spec.schedule, now, start.anchor(), FIRE_TIMES)
        .into_iter()
        .map(|f| FireRow {
            at: when(f.at, now),
            local: f
                .at
                .with_timezone(&spec.timezone)
                .format("%Y-%m-%d %H:%M:%S %Z")
                .to_string(),
            marks: f.marks.iter().map(ToString::to_string).collect(),
            paused: job.paused.as_ref().is_some_and(|p| p.active(f.at)),
        })
        .collect();
    let query = |status, after, limit| RunsQuery {
        job: &name,
        status,
        since: None,
        until: None,
        after,
        limit,
    };
    let mut runs = s.db.runs_page(&query(status, after, PAGE + 1)).await?;
    let next_page = (runs.len() as i64 > PAGE)
        .then(|| {
            runs.truncate(PAGE as usize);
            runs.last().map(runs_cursor)
        })
        .flatten();
    let recent = s.db.runs_page(&query(None, None, TIMELINE)).await?;
    let timeline = timeline(&recent, PushSlots::of(Some(spec), now));
    render(
        "job.html",
        fragment,
        StatusCode::OK,
        JobPage {
            session,
            url: job_url(&name),
            schedule: job.schedule_words.clone(),
            last_run: when_opt(job.last_run, now),
            last_success: when_opt(job.last_success, now),
            next_fire: when_opt(job.next_fire, now),
            paused_since: job.paused.as_ref().map(|p| when(p.paused_at, now)),
            paused_until: job.paused.as_ref().and_then(|p| when_opt(p.until, now)),
            push: spec.push.is_some(),
            fires,
            durations: chart(&recent),
            job,
            timeline_width: (timeline.len() * MARK_STEP).max(MARK_STEP),
            timeline,
            runs: runs.iter().map(|r| RunRow::new(r, now)).collect(),
            status: status.map(|s| s.to_string()),
            statuses: STATUSES,
            next_page,
            requested,
        },
    )
}

#[derive(Serialize)]
struct RunPage {
    session: Session,
    run: RunRow,
    kind: String,
    job_name: String,
    job_url: String,
    finished: Option<When>,
    jitter_ms: Option<i64>,
    output: Option<String>,
    attempts: Vec<RunRow>,
}

/// `GET /runs/{id}`.
pub async fn run(
    State(s): State<AppState>,
    Extension(session): Extension<Session>,
    fragment: Fragment,
    Path(run_id): Path<String>,
    p: Params,
) -> PageResult {
    p.only(&[])?;
    let run_id = id("id", &run_id)?;
    let r =
        s.db.run(run_id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no run {run_id}")))?;
    let now = s.clock.now();
    let attempts =
        s.db.runs_page(&RunsQuery {
            job: &r.job_name,
            status: None,
            since: Some(r.scheduled_for),
            until: Some(r.scheduled_for + TimeDelta::seconds(1)),
            after: None,
            limit: 50,
        })
        .await?
        .iter()
        .filter(|a| a.id != r.id)
        .map(|a| RunRow::new(a, now))
        .collect();
    render(
        "run.html",
        fragment,
        StatusCode::OK,
        RunPage {
            session,
            run: RunRow::new(&r, now),
            kind: r.kind.clone(),
            job_name: r.job_name.clone(),
            job_url: job_url(&r.job_name),
            finished: when_opt(r.finished_at, now),
            jitter_ms: r.jitter_ms,
            output: r.output.clone(),
            attempts,
        },
    )
}

/// `/jobs/NAME`, with the name percent-encoded.
pub(super) fn job_url(name: &str) -> String {
    format!("/jobs/{}", utf8_percent_encode(name, NON_ALPHANUMERIC))
}

/// `POST /jobs/{name}/run`: a run-now request for a live worker, as the
/// API's; back to the job's page, which shows the run once claimed.
pub async fn run_now(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> PageResult {
    let target = format!("job:{name}");
    let request = audited(&s, &caller, "run", &target, async {
        crate::ops::runs_here(&s.config(), &name)?;
        Ok(crate::run_requests::submit(&s.db, &name, &caller.name, s.dead_after).await?)
    })
    .await?;
    Ok(Redirect::to(&format!("{}?requested={request}", job_url(&name))).into_response())
}

/// `POST /jobs/{name}/pause` with `until` (RFC 3339 or a duration such as
/// `2h`; blank: until resumed) and `reason`.
pub async fn pause(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(fields): Extension<Fields>,
    Path(name): Path<String>,
) -> PageResult {
    let target = format!("job:{name}");
    audited(&s, &caller, "pause", &target, async {
        let now = s.clock.now();
        let until = fields
            .get("until")
            .map(|u| crate::ops::parse_until("until", u, now))
            .transpose()?;
        crate::ops::pause(
            &s.config(),
            &s.db,
            &name,
            now,
            until,
            fields.get("reason"),
            &caller.name,
        )
        .await?;
        Ok(())
    })
    .await?;
    Ok(Redirect::to(&job_url(&name)).into_response())
}

/// `POST /jobs/{name}/resume`.
pub async fn resume(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> PageResult {
    let target = format!("job:{name}");
    audited(&s, &caller, "resume", &target, async {
        crate::ops::resume(&s.config(), &s.db, &name, s.clock.now()).await?;
        Ok(())
    })
    .await?;
    Ok(Redirect::to(&job_url(&name)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Trigger;

    fn run(id: i64, minute: u32, attempt: i32, status: RunStatus, missed: i32) -> RunRecord {
        let at = chrono::NaiveDate::from_ymd_opt(2026, 12, 5)
            .unwrap()
            .and_hms_opt(8, minute, 0)
            .unwrap()
            .and_utc();
        RunRecord {
            id,
            job_name: "j".into(),
            kind: "command".into(),
            scheduled_for: at,
            trigger: Trigger::Schedule,
            attempt,
            worker_id: "w".into(),
            started_at: at,
            finished_at: Some(at),
            status,
            error: None,
            output: None,
            duration_ms: Some(1),
            missed,
            jitter_ms: None,
        }
    }

    #[test]
    fn timeline_shows_each_slot_once_and_the_missed_ones() {
        // Newest first, as runs_page returns them: a retried slot at 08:03
        // (attempt 2 succeeded), 08:02 skipped, 08:01 after 7 missed slots.
        let runs = [
            run(5, 3, 2, RunStatus::Success, 0),
            run(4, 3, 1, RunStatus::Failed, 0),
            run(3, 2, 1, RunStatus::Skipped, 0),
            run(2, 1, 1, RunStatus::Success, 7),
        ];
        let marks = timeline(&runs, None);
        let classes: Vec<&str> = marks.iter().map(|m| m.class.as_str()).collect();
        assert_eq!(
            classes,
            ["missed", "missed", "missed", "missed", "missed", "success", "skipped", "success"]
        );
        assert!(
            marks[0].label.starts_with("7 slot(s) missed"),
            "{:?}",
            marks[0]
        );
        assert_eq!(
            marks.last().unwrap().label,
            "2026-12-05 08:03:00 UTC: success (schedule, attempt 2)"
        );
        let xs: Vec<usize> = marks.iter().map(|m| m.x).collect();
        assert_eq!(xs, (0..8).map(|i| i * MARK_STEP).collect::<Vec<_>>());
    }

    fn classes(marks: &[Mark]) -> Vec<&str> {
        marks.iter().map(|m| m.class.as_str()).collect()
    }

    #[test]
    fn a_push_jobs_timeline_shows_the_slots_with_no_signal() {
        use RunStatus::{Failed, Success};
        let every_minute = Schedule::every(std::time::Duration::from_secs(60)).unwrap();
        // Signals for 08:01, 08:02 and 08:05 (none for 08:03 and 08:04),
        // the last a fail; a 08:12 signal after 6 silent minutes.
        let runs = [
            run(4, 12, 1, Success, 0),
            run(3, 5, 1, Failed, 0),
            run(2, 2, 1, Success, 0),
            run(1, 1, 1, Success, 0),
        ];
        let at = |m: u32, s: u32| {
            chrono::NaiveDate::from_ymd_opt(2026, 12, 5)
                .unwrap()
                .and_hms_opt(8, m, s)
                .unwrap()
                .and_utc()
        };
        let push = |due_before| {
            Some(PushSlots {
                schedule: &every_minute,
                due_before,
            })
        };
        // Grace 30 s: at 08:13:30 the 08:13 slot is not missed yet.
        let marks = timeline(&runs, push(Some(at(13, 0))));
        assert_eq!(
            classes(&marks),
            [
                "success", "success", "missed", "missed", "failed", "missed", "missed", "missed",
                "missed", "missed", "success"
            ]
        );
        assert_eq!(
            marks[2].label,
            "2 slot(s) missed before 2026-12-05 08:05:00 UTC"
        );
        // Six missed, five drawn; the label gives the count.
        assert_eq!(
            marks[5].label,
            "6 slot(s) missed before 2026-12-05 08:12:00 UTC"
        );
        let xs: Vec<usize> = marks.iter().map(|m| m.x).collect();
        assert_eq!(xs, (0..11).map(|i| i * MARK_STEP).collect::<Vec<_>>());
        // Just past it: one missed mark at the right end, then capped.
        let marks = timeline(&runs, push(Some(at(13, 1))));
        assert_eq!(marks.len(), 12);
        assert_eq!(
            marks.last().unwrap(),
            &Mark {
                x: 11 * MARK_STEP,
                class: "missed".into(),
                label: "1 slot(s) missed after 2026-12-05 08:12:00 UTC: no signal within grace"
                    .into()
            }
        );
        let marks = timeline(&runs, push(Some(at(40, 0))));
        assert_eq!(classes(&marks[11..]), ["missed"; 5]);
        assert!(
            marks[15].label.starts_with("27 slot(s) missed after"),
            "{:?}",
            marks[15]
        );
        // Months of silence of a cron job: its count stops, and says so.
        let cron = Schedule::cron("* * * * *", ops_worker_jobs::tz::Tz::UTC).unwrap();
        let marks = timeline(
            &runs,
            Some(PushSlots {
                schedule: &cron,
                due_before: Some(at(12, 0) + TimeDelta::days(80)),
            }),
        );
        assert_eq!(
            marks.last().unwrap().label,
            "at least 10000 slot(s) missed after 2026-12-05 08:12:00 UTC: no signal within grace"
        );
        // A disabled push job: its gaps, nothing expected after.
        assert_eq!(timeline(&runs, push(None)).len(), 11);
        // No signal ever: nothing expected yet.
        assert!(timeline(&[], push(Some(at(40, 0)))).is_empty());
        // Not a push job: only the runs' own `missed`.
        assert_eq!(
            classes(&timeline(&runs, None)),
            ["success", "success", "failed", "success"]
        );
    }
}
