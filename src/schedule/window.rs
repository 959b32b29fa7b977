//! Maintenance windows as time: when a recurring window (a cron expression
//! for its start, evaluated in its time zone, plus a duration of elapsed
//! time) or a one-off window (`[start, end)`) covers an instant. Which
//! alerts a window covers is the config's and the jobs crate's business.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Schedule;

/// When a maintenance window is open.
#[derive(Debug, Clone)]
pub enum Window {
    /// Opens at every fire time of `start` and stays open for `duration`
    /// (elapsed time: a window over a DST change is as long as any other).
    Recurring { start: Schedule, duration: Duration },
    /// Open over `[start, end)`.
    Once {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
}

impl Window {
    /// The occurrence that covers `t` (`start <= t < end`), if any. When
    /// occurrences overlap (a duration longer than the gap between two
    /// starts), the newest one: it ends last.
    pub fn covering(&self, t: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        match self {
            Window::Recurring { start, duration } => {
                // The newest start at or before `t` is the one that ends last.
                let s = start.latest_at_or_before(t, t)?;
                let end = s + chrono::Duration::from_std(*duration).ok()?;
                (t < end).then_some((s, end))
            }
            Window::Once { start, end } => (*start <= t && t < *end).then_some((*start, *end)),
        }
    }

    /// The first occurrence that starts after `t`, if any.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        match self {
            Window::Recurring { start, duration } => {
                let s = start.next_after(t, t)?;
                Some((s, s + chrono::Duration::from_std(*duration).ok()?))
            }
            Window::Once { start, end } => (*start > t).then_some((*start, *end)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ops_worker_jobs::tz::Tz;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn berlin_sunday_2am(hours: u64) -> Window {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        Window::Recurring {
            start: Schedule::cron("0 2 * * SUN", tz).unwrap(),
            duration: Duration::from_secs(hours * 3600),
        }
    }

    #[test]
    fn recurring_window_in_winter_and_summer_time() {
        let w = berlin_sunday_2am(2);
        // 2026-01-04 is a Sunday: 02:00 CET is 01:00 UTC.
        assert_eq!(
            w.covering(at("2026-01-04T01:30:00Z")),
            Some((at("2026-01-04T01:00:00Z"), at("2026-01-04T03:00:00Z")))
        );
        assert_eq!(w.covering(at("2026-01-04T03:00:00Z")), None);
        assert_eq!(w.covering(at("2026-01-04T00:59:59Z")), None);
        // 2026-06-07: 02:00 CEST is 00:00 UTC.
        assert_eq!(
            w.covering(at("2026-06-07T01:59:59Z")),
            Some((at("2026-06-07T00:00:00Z"), at("2026-06-07T02:00:00Z")))
        );
    }

    #[test]
    fn recurring_window_across_the_spring_gap_opens_when_the_gap_ends() {
        // 2026-03-29: 02:00 local does not exist; the window opens at 03:00
        // CEST (01:00 UTC) and lasts two hours of elapsed time.
        let w = berlin_sunday_2am(2);
        assert_eq!(w.covering(at("2026-03-29T00:59:59Z")), None);
        assert_eq!(
            w.covering(at("2026-03-29T01:00:00Z")),
            Some((at("2026-03-29T01:00:00Z"), at("2026-03-29T03:00:00Z")))
        );
        assert_eq!(w.covering(at("2026-03-29T03:00:00Z")), None);
    }

    #[test]
    fn recurring_window_across_the_autumn_change_lasts_its_duration() {
        // 2026-10-25: 02:00 local happens twice; the window opens at the
        // first (00:00 UTC) and lasts three hours of elapsed time.
        let w = berlin_sunday_2am(3);
        let (start, end) = w.covering(at("2026-10-25T02:30:00Z")).unwrap();
        assert_eq!(start, at("2026-10-25T00:00:00Z"));
        assert_eq!(end, at("2026-10-25T03:00:00Z"));
        assert_eq!(
            w.next_after(at("2026-10-25T00:00:00Z")).unwrap().0,
            at("2026-11-01T01:00:00Z")
        );
    }

    #[test]
    fn overlapping_occurrences_end_with_the_newest() {
        let w = Window::Recurring {
            start: Schedule::cron("0 0 * * *", Tz::UTC).unwrap(),
            duration: Duration::from_secs(36 * 3600),
        };
        assert_eq!(
            w.covering(at("2026-01-02T06:00:00Z")),
            Some((at("2026-01-02T00:00:00Z"), at("2026-01-03T12:00:00Z")))
        );
    }

    #[test]
    fn one_off_window_is_half_open() {
        let w = Window::Once {
            start: at("2026-01-01T10:00:00Z"),
            end: at("2026-01-01T11:00:00Z"),
        };
        assert!(w.covering(at("2026-01-01T09:59:59Z")).is_none());
        assert!(w.covering(at("2026-01-01T10:00:00Z")).is_some());
        assert!(w.covering(at("2026-01-01T11:00:00Z")).is_none());
        assert_eq!(w.next_after(at("2026-01-01T10:00:00Z")), None);
    }
}
