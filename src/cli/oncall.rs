//! `ops-worker oncall who|show`: who is on call, from the schedule file
//! alone (no database), so a rotation can be checked before relying on it.

use chrono::{DateTime, NaiveDateTime, TimeDelta, TimeZone, Utc};
use ops_worker_jobs::oncall::{OnCallSchedule, Shift};
use ops_worker_jobs::tz::Tz;

use super::UsageError;
use crate::config::Config;

/// How far `who` looks around the instant for the whole shift it is in.
const SHIFT_SEARCH: TimeDelta = TimeDelta::days(62);

pub fn schedule<'c>(config: &'c Config, name: &str) -> Result<&'c OnCallSchedule, UsageError> {
    config.oncall_schedule(name).ok_or_else(|| {
        let known: Vec<&str> = config.oncall.iter().map(|(n, _)| n.as_str()).collect();
        UsageError(format!(
            "no on-call schedule {name:?} in {} (schedules: {})",
            config.path.display(),
            if known.is_empty() {
                "none; add an [oncall.NAME] table".to_string()
            } else {
                known.join(", ")
            }
        ))
    })
}

/// `--at`: RFC 3339 (`2026-11-24T10:00:00Z`, any offset) or a local time in
/// the schedule's zone (`2026-11-24T10:00`, `2026-11-24 10:00:30`).
pub fn parse_at(s: &str, tz: Tz) -> Result<DateTime<Utc>, UsageError> {
    parse_time("--at", s, tz)
}

/// [`parse_at`] for the input called `param` (`--at`, `at`), which the
/// message names.
pub fn parse_time(param: &str, s: &str, tz: Tz) -> Result<DateTime<Utc>, UsageError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s.trim()) {
        return Ok(t.to_utc());
    }
    let local = ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s.trim(), f).ok())
        .ok_or_else(|| {
            UsageError(format!(
                "{param} {s:?}: expected RFC 3339 (2026-11-24T10:00:00Z) or a local time (2026-11-24T10:00)"
            ))
        })?;
    tz.from_local_datetime(&local)
        .earliest()
        .map(|t| t.to_utc())
        .ok_or_else(|| {
            UsageError(format!(
                "{param} {s:?}: that local time does not exist in {tz} (a DST gap)"
            ))
        })
}

fn local(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string()
}

/// The whole shift `at` lies in, if the schedule has one then.
pub fn shift_at(schedule: &OnCallSchedule, at: DateTime<Utc>) -> Option<Shift> {
    schedule
        .shifts(at - SHIFT_SEARCH, at + SHIFT_SEARCH)
        .into_iter()
        .find(|s| s.start <= at && at < s.end)
}

/// `primary (Europe/Berlin) at 2026-11-24 10:00 CET: alice, from ... to ...`
pub fn who(name: &str, schedule: &OnCallSchedule, at: DateTime<Utc>) -> String {
    let tz = schedule.timezone();
    let shift = shift_at(schedule, at);
    let head = format!("{name} ({tz}) at {}", local(at, tz));
    match shift {
        Some(Shift {
            who: Some(who),
            start,
            end,
        }) => format!(
            "{head}: {who}, on call from {} to {}",
            local(start, tz),
            local(end, tz)
        ),
        Some(Shift {
            who: None,
            start,
            end,
        }) => format!(
            "{head}: nobody (from {} to {}); escalation goes to the next level",
            local(start, tz),
            local(end, tz)
        ),
        None => format!("{head}: nobody; escalation goes to the next level"),
    }
}

/// The shifts of `days` days from `from`, one line each.
pub fn show(name: &str, schedule: &OnCallSchedule, from: DateTime<Utc>, days: u32) -> String {
    let tz = schedule.timezone();
    let to = from + TimeDelta::days(i64::from(days));
    let mut out = format!("{name} ({tz}), {} to {}:\n", local(from, tz), local(to, tz));
    for s in schedule.shifts(from, to) {
        out.push_str(&format!(
            "  {}  to  {}  {}\n",
            local(s.start, tz),
            local(s.end, tz),
            s.who.as_deref().unwrap_or("(nobody)")
        ));
    }
    out
}
