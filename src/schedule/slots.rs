//! Slot arithmetic: which instants a schedule fires at. Pure functions of the
//! schedule, an anchor and a time; nothing here sleeps or reads a clock.
//!
//! A slot is a whole second in UTC. Interval schedules lie on a grid
//! `anchor + k * every`; cron schedules are evaluated by croner in the job's
//! IANA time zone, which fires a fixed local time (one second, minute and
//! hour) skipped by a DST change at the first instant after the gap and a
//! repeated one once; other expressions skip what does not exist and fire
//! both instants of what repeats (see `dst.rs`, which describes it).

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use ops_worker_jobs::tz::Tz;

/// When a job fires.
#[derive(Clone)]
pub enum Schedule {
    Every {
        every: Duration,
    },
    Cron {
        expr: String,
        cron: Box<Cron>,
        tz: Tz,
    },
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Every { every } => write!(f, "every {}", humantime::format_duration(*every)),
            Schedule::Cron { expr, .. } => write!(f, "cron {expr}"),
        }
    }
}

/// Why a cron expression was rejected.
#[derive(Debug, thiserror::Error)]
pub enum CronSyntaxError {
    #[error(
        "expected 5 fields (minute hour day-of-month month day-of-week), 6 (second first) \
         or 7 (second first, year last), found {0}"
    )]
    FieldCount(usize),
    #[error(transparent)]
    Invalid(#[from] croner::errors::CronError),
}

/// Why an interval was rejected.
#[derive(Debug, thiserror::Error)]
pub enum IntervalError {
    #[error("must be at least 1s")]
    TooShort,
    #[error("must be a whole number of seconds")]
    Fractional,
}

impl Schedule {
    pub fn every(every: Duration) -> Result<Schedule, IntervalError> {
        if every < Duration::from_secs(1) {
            return Err(IntervalError::TooShort);
        }
        if every.subsec_nanos() != 0 {
            return Err(IntervalError::Fractional);
        }
        Ok(Schedule::Every { every })
    }

    /// Accepts standard 5-field cron (minute first), 6 fields (seconds first)
    /// and 7 fields (seconds first, year last), as tokio-cron-scheduler users
    /// know them, plus croner's `@daily`-style nicknames.
    pub fn cron(expr: &str, tz: Tz) -> Result<Schedule, CronSyntaxError> {
        let fields = expr.split_whitespace().count();
        let nickname = expr.trim_start().starts_with('@');
        if !nickname && !(5..=7).contains(&fields) {
            return Err(CronSyntaxError::FieldCount(fields));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Optional)
            .build()
            .parse(expr)?;
        Ok(Schedule::Cron {
            expr: expr.trim().to_string(),
            cron: Box::new(cron),
            tz,
        })
    }

    /// The time zone the schedule is evaluated in (UTC for intervals).
    pub fn tz(&self) -> Tz {
        match self {
            Schedule::Every { .. } => Tz::UTC,
            Schedule::Cron { tz, .. } => *tz,
        }
    }

    /// The first slot strictly after `t`. `anchor` is a point of the interval
    /// grid (ignored by cron). `None` when a cron expression never fires again.
    pub fn next_after(&self, t: DateTime<Utc>, anchor: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every { every } => {
                let step = every.as_secs() as i64;
                let k = (t.timestamp() - anchor.timestamp()).div_euclid(step);
                let slot = anchor.timestamp() + (k + 1) * step;
                DateTime::from_timestamp(slot, 0)
            }
            Schedule::Cron { cron, tz, .. } => cron
                .find_next_occurrence(&t.with_timezone(tz), false)
                .ok()
                .map(|d| d.to_utc()),
        }
    }

    /// The newest slot at or before `t`, if any.
    pub fn latest_at_or_before(
        &self,
        t: DateTime<Utc>,
        anchor: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every { every } => {
                let step = every.as_secs() as i64;
                let k = (t.timestamp() - anchor.timestamp()).div_euclid(step);
                DateTime::from_timestamp(anchor.timestamp() + k * step, 0)
            }
            Schedule::Cron { cron, tz, .. } => cron
                .find_previous_occurrence(&whole_second(t).with_timezone(tz), true)
                .ok()
                .map(|d| d.to_utc()),
        }
    }

    /// Slots in `(after, upto]`, oldest first, at most `cap` of them (the
    /// newest `cap` when there are more), and how many there are in all.
    pub fn slots_between(
        &self,
        after: DateTime<Utc>,
        upto: DateTime<Utc>,
        anchor: DateTime<Utc>,
        cap: usize,
    ) -> (Vec<DateTime<Utc>>, u64) {
        let Some(newest) = self
            .latest_at_or_before(upto, anchor)
            .filter(|n| *n > after)
        else {
            return (Vec::new(), 0);
        };
        match self {
            Schedule::Every { every } => {
                let step = every.as_secs() as i64;
                let first = self
                    .next_after(after, anchor)
                    .expect("interval grid has no end");
                let total = ((newest - first).num_seconds() / step + 1) as u64;
                let keep = total.min(cap as u64) as i64;
                let slots = (0..keep)
                    .rev()
                    .map(|i| newest - TimeDelta::seconds(i * step))
                    .collect();
                (slots, total)
            }
            Schedule::Cron { .. } => {
                // Walk backwards from the newest so that the cap keeps the
                // slots a catch-up would run; count the rest without keeping them.
                let mut slots = vec![newest];
                let mut total = 1u64;
                let mut cursor = newest;
                while let Some(prev) = self.previous_before(cursor) {
                    if prev <= after || total >= MAX_COUNTED_SLOTS {
                        break;
                    }
                    total += 1;
                    if slots.len() < cap {
                        slots.push(prev);
                    }
                    cursor = prev;
                }
                slots.reverse();
                (slots, total)
            }
        }
    }

    fn previous_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every { .. } => unreachable!("interval slots are computed arithmetically"),
            Schedule::Cron { cron, tz, .. } => cron
                .find_previous_occurrence(&t.with_timezone(tz), false)
                .ok()
                .map(|d| d.to_utc()),
        }
    }

    /// The shortest time between two consecutive slots, and the first slot
    /// of that pair: for an interval, the interval; for cron, the smallest
    /// gap among the slots after `from` up to `from + horizon`, at most
    /// `max_slots` of them (the earliest such pair). `None` when fewer than
    /// two slots lie there.
    pub fn shortest_gap(
        &self,
        from: DateTime<Utc>,
        horizon: Duration,
        max_slots: usize,
    ) -> Option<(Duration, DateTime<Utc>)> {
        match self {
            Schedule::Every { every } => {
                Some((*every, self.next_after(from, DateTime::UNIX_EPOCH)?))
            }
            Schedule::Cron { .. } => {
                let end = from + TimeDelta::from_std(horizon).unwrap_or(TimeDelta::MAX);
                let mut shortest: Option<(TimeDelta, DateTime<Utc>)> = None;
                let mut prev = self.next_after(from, from)?;
                for _ in 1..max_slots {
                    let Some(next) = self.next_after(prev, prev).filter(|n| *n <= end) else {
                        break;
                    };
                    let gap = next - prev;
                    if shortest.is_none_or(|(s, _)| gap < s) {
                        shortest = Some((gap, prev));
                    }
                    prev = next;
                }
                let (gap, at) = shortest?;
                Some((gap.to_std().ok()?, at))
            }
        }
    }

    /// The next `count` slots after `t`.
    pub fn upcoming(
        &self,
        t: DateTime<Utc>,
        anchor: DateTime<Utc>,
        count: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(count);
        let mut cursor = t;
        while out.len() < count {
            match self.next_after(cursor, anchor) {
                Some(next) => {
                    out.push(next);
                    cursor = next;
                }
                None => break,
            }
        }
        out
    }
}

/// Counting missed cron slots stops here: a seconds-resolution cron job down
/// for a day has 86,400 of them and the exact figure past this is noise.
const MAX_COUNTED_SLOTS: u64 = 100_000;

/// Slots are whole seconds; this rounds `t` down to one.
pub fn whole_second(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::seconds(1)).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn cron(expr: &str, tz: &str) -> Schedule {
        Schedule::cron(expr, tz.parse().unwrap()).unwrap()
    }

    #[test]
    fn interval_grid_follows_the_anchor_not_the_query_time() {
        let s = Schedule::every(Duration::from_secs(60)).unwrap();
        let anchor = utc("2026-01-01T00:00:07Z");
        assert_eq!(
            s.next_after(utc("2026-01-01T00:10:00Z"), anchor),
            Some(utc("2026-01-01T00:10:07Z"))
        );
        assert_eq!(
            s.next_after(utc("2026-01-01T00:10:07Z"), anchor),
            Some(utc("2026-01-01T00:11:07Z"))
        );
        // before the anchor the grid extends backwards
        assert_eq!(
            s.next_after(utc("2025-12-31T23:59:00Z"), anchor),
            Some(utc("2025-12-31T23:59:07Z"))
        );
        assert_eq!(
            s.latest_at_or_before(utc("2026-01-01T00:10:06.9Z"), anchor),
            Some(utc("2026-01-01T00:09:07Z"))
        );
    }

    #[test]
    fn interval_rejects_zero_sub_second_and_fractional() {
        assert!(matches!(
            Schedule::every(Duration::ZERO),
            Err(IntervalError::TooShort)
        ));
        assert!(matches!(
            Schedule::every(Duration::from_millis(500)),
            Err(IntervalError::TooShort)
        ));
        assert!(matches!(
            Schedule::every(Duration::from_millis(1500)),
            Err(IntervalError::Fractional)
        ));
    }

    #[test]
    fn slots_between_counts_all_and_keeps_the_newest() {
        let s = Schedule::every(Duration::from_secs(10)).unwrap();
        let anchor = utc("2026-01-01T00:00:00Z");
        let (slots, total) = s.slots_between(anchor, utc("2026-01-01T00:01:05Z"), anchor, 3);
        assert_eq!(total, 6);
        assert_eq!(
            slots,
            vec![
                utc("2026-01-01T00:00:40Z"),
                utc("2026-01-01T00:00:50Z"),
                utc("2026-01-01T00:01:00Z")
            ]
        );
        let (slots, total) = s.slots_between(anchor, utc("2026-01-01T00:00:09Z"), anchor, 3);
        assert_eq!((slots.len(), total), (0, 0));

        let c = cron("*/15 * * * * *", "UTC");
        let (slots, total) = c.slots_between(anchor, utc("2026-01-01T00:01:00Z"), anchor, 2);
        assert_eq!(total, 4);
        assert_eq!(
            slots,
            vec![utc("2026-01-01T00:00:45Z"), utc("2026-01-01T00:01:00Z")]
        );
    }

    #[test]
    fn shortest_gap_of_intervals_and_cron() {
        let from = utc("2026-01-01T00:00:00Z");
        let year = Duration::from_secs(366 * 86_400);
        let gap = |s: &Schedule, horizon, max| s.shortest_gap(from, horizon, max).map(|g| g.0);
        let every = Schedule::every(Duration::from_secs(90)).unwrap();
        assert_eq!(gap(&every, year, 10), Some(Duration::from_secs(90)));
        // Twice an hour, at :00 and :10: the 10-minute gap, not the 50.
        let c = cron("0 0,10 * * * *", "UTC");
        assert_eq!(gap(&c, year, 1000), Some(Duration::from_secs(600)));
        // Capped by the slot count: the first two slots after midnight are
        // 00:10 and 01:00.
        assert_eq!(gap(&c, year, 2), Some(Duration::from_secs(3000)));
        // 02:00 and 14:00 in Berlin are 12 h apart, except when 02:00
        // happens twice (25 October 2026): then one hour, from 02:00 CEST.
        let c = cron("0 0 2,14 * * *", "Europe/Berlin");
        assert_eq!(
            c.shortest_gap(from, year, 1000),
            Some((Duration::from_secs(3600), utc("2026-10-25T00:00:00Z")))
        );
        // ... which a window before that day does not see.
        let month = Duration::from_secs(30 * 86_400);
        assert_eq!(gap(&c, month, 1000), Some(Duration::from_secs(12 * 3600)));
        // A single fire has no gap.
        let once = cron("0 0 0 1 1 * 2026", "UTC");
        assert_eq!(
            once.shortest_gap(from - TimeDelta::days(1), year, 1000),
            None
        );
    }

    #[test]
    fn cron_field_counts() {
        assert!(Schedule::cron("*/5 * * * *", Tz::UTC).is_ok());
        assert!(Schedule::cron("0 */5 * * * *", Tz::UTC).is_ok());
        assert!(Schedule::cron("0 0 12 * * * 2030", Tz::UTC).is_ok());
        assert!(Schedule::cron("@daily", Tz::UTC).is_ok());
        let err = Schedule::cron("*/5 * *", Tz::UTC).unwrap_err().to_string();
        assert!(err.starts_with("expected 5 fields"), "{err}");
        assert!(Schedule::cron("0 0 0 0 0 0 0 0", Tz::UTC).is_err());
        assert!(Schedule::cron("61 * * * *", Tz::UTC).is_err());
    }

    #[test]
    fn five_fields_are_minute_first_and_six_are_seconds_first() {
        let t = utc("2026-03-01T10:00:30Z");
        assert_eq!(
            cron("5 * * * *", "UTC").next_after(t, t),
            Some(utc("2026-03-01T10:05:00Z"))
        );
        assert_eq!(
            cron("5 * * * * *", "UTC").next_after(t, t),
            Some(utc("2026-03-01T10:01:05Z"))
        );
    }

    #[test]
    fn cron_in_a_zone_keeps_local_time_across_dst() {
        // 02:30 daily in Berlin: 01:30Z in winter, 00:30Z in summer.
        let s = cron("0 30 2 * * *", "Europe/Berlin");
        let t = utc("2026-03-27T12:00:00Z");
        let next = s.upcoming(t, t, 4);
        assert_eq!(
            next,
            vec![
                utc("2026-03-28T01:30:00Z"),
                // 2026-03-29 02:30 does not exist in Berlin (02:00 -> 03:00):
                // fired at the first instant after the gap, 03:00 CEST.
                utc("2026-03-29T01:00:00Z"),
                utc("2026-03-30T00:30:00Z"),
                utc("2026-03-31T00:30:00Z"),
            ]
        );
    }

    #[test]
    fn repeated_local_time_fires_once_in_berlin_and_new_york() {
        // Berlin falls back 2026-10-25 03:00 CEST -> 02:00 CET: 02:30 happens twice.
        let s = cron("0 30 2 * * *", "Europe/Berlin");
        let t = utc("2026-10-24T12:00:00Z");
        assert_eq!(
            s.upcoming(t, t, 2),
            vec![utc("2026-10-25T00:30:00Z"), utc("2026-10-26T01:30:00Z")]
        );
        // New York falls back 2026-11-01 02:00 EDT -> 01:00 EST: 01:30 twice.
        let s = cron("30 1 * * *", "America/New_York");
        let t = utc("2026-10-31T12:00:00Z");
        assert_eq!(
            s.upcoming(t, t, 2),
            vec![utc("2026-11-01T05:30:00Z"), utc("2026-11-02T06:30:00Z")]
        );
    }

    #[test]
    fn new_york_spring_forward_moves_the_skipped_time() {
        // 2026-03-08 02:00 EST -> 03:00 EDT: 02:30 does not exist.
        let s = cron("30 2 * * *", "America/New_York");
        let t = utc("2026-03-07T12:00:00Z");
        assert_eq!(
            s.upcoming(t, t, 3),
            vec![
                utc("2026-03-08T07:00:00Z"), // 03:00 EDT, right after the gap
                utc("2026-03-09T06:30:00Z"),
                utc("2026-03-10T06:30:00Z"),
            ]
        );
    }

    #[test]
    fn hourly_cron_runs_every_real_hour_through_fall_back() {
        let s = cron("0 0 * * * *", "Europe/Berlin");
        let t = utc("2026-10-24T23:30:00Z");
        let got = s.upcoming(t, t, 4);
        // 01:00 CEST, 02:00 CEST, 02:00 CET, 03:00 CET: every real hour.
        assert_eq!(
            got,
            vec![
                utc("2026-10-25T00:00:00Z"),
                utc("2026-10-25T01:00:00Z"),
                utc("2026-10-25T02:00:00Z"),
                utc("2026-10-25T03:00:00Z"),
            ]
        );
    }
}
