//! Which slot a `push` job's signal belongs to. A push job runs elsewhere
//! and tells ops-worker when it starts and ends; its clock, its start-up and
//! its queue make a signal come a little before or after the slot it stands
//! for, and `grace` says how much.
//!
//! The rule, for a signal at `t` (truncated to the whole second), with `L`
//! the newest slot at or before `t` and `N` the first slot after it (an
//! interval grid on the Unix epoch, as the scheduler anchors a job with no
//! history; cron in the job's zone):
//!
//! 1. `N - t <= grace` (early) and `t - L <= grace` (late, or on time):
//!    both are near, and the nearer wins; a tie goes to `L`.
//! 2. only `N - t <= grace`: `N` (the job started a little early).
//! 3. otherwise `L`, however late: the run still stands for the newest
//!    slot that came due (its missed-slot alert may have fired already).
//! 4. no `L` (a cron schedule that has never fired yet) and no `N` within
//!    `grace`: no slot, `None`.
//!
//! Both bounds are inclusive: with `grace = 5m`, 01:55:00 belongs to 02:00,
//! 01:54:59 does not.
//!
//! A slot no signal stands for is missed ([`missed_between`]): one between
//! two recorded slots (by this rule no later signal can belong to it), and
//! one after the newest recorded slot once `slot + grace < now`, the
//! `alerts` kind's missed-slot rule for push jobs.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::slots::{whole_second, Schedule};

/// The slot a signal at `at` belongs to, by the rule in the module docs.
pub fn signal_slot(
    schedule: &Schedule,
    at: DateTime<Utc>,
    grace: Duration,
) -> Option<DateTime<Utc>> {
    let t = whole_second(at);
    let grace = TimeDelta::from_std(grace).unwrap_or(TimeDelta::MAX);
    let anchor = DateTime::UNIX_EPOCH;
    let last = schedule.latest_at_or_before(t, anchor);
    let next = schedule.next_after(t, anchor).filter(|n| *n - t <= grace);
    match (last, next) {
        (Some(l), Some(n)) if t - l <= grace => Some(if n - t < t - l { n } else { l }),
        (_, Some(n)) => Some(n),
        (Some(l), None) => Some(l),
        (None, None) => None,
    }
}

/// How far [`missed_between`] counts the slots of a cron schedule.
pub const MISSED_COUNTED: u64 = 10_000;

/// How many slots of `schedule` lie strictly between `after` and `before`,
/// on the interval grid anchored at `after` (as the `alerts` kind anchors it
/// at a job's newest recorded slot). With `after` and `before` two recorded
/// slots of a push job, the slots missed between them; with `after` its
/// newest recorded slot and `before` now minus its `grace`, the slots
/// missed since (`slot + grace < now`). An interval is counted exactly; a
/// cron schedule, walked slot by slot, up to [`MISSED_COUNTED`], so that a
/// page drawn every few seconds stays cheap after months of silence.
pub fn missed_between(schedule: &Schedule, after: DateTime<Utc>, before: DateTime<Utc>) -> u64 {
    if before <= after {
        return 0;
    }
    match schedule {
        // Slots are whole seconds: the newest one before `before` is the
        // newest at or before the instant just under it.
        Schedule::Every { .. } => {
            let upto = before - TimeDelta::nanoseconds(1);
            schedule.slots_between(after, upto, after, 0).1
        }
        Schedule::Cron { .. } => {
            let mut count = 0;
            let mut cursor = after;
            while count < MISSED_COUNTED {
                match schedule.next_after(cursor, after) {
                    Some(slot) if slot < before => {
                        count += 1;
                        cursor = slot;
                    }
                    _ => break,
                }
            }
            count
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ops_worker_jobs::tz::Tz;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn mins(m: u64) -> Duration {
        Duration::from_secs(60 * m)
    }

    fn hourly() -> Schedule {
        Schedule::every(Duration::from_secs(3600)).unwrap()
    }

    #[test]
    fn on_time_and_within_grace_either_side() {
        let s = hourly();
        let g = mins(5);
        let slot = utc("2026-06-01T02:00:00Z");
        for at in [
            "2026-06-01T02:00:00Z",
            "2026-06-01T02:00:00.999Z",
            "2026-06-01T01:55:00Z",
            "2026-06-01T01:55:00.5Z",
            "2026-06-01T02:05:00Z",
        ] {
            assert_eq!(signal_slot(&s, utc(at), g), Some(slot), "{at}");
        }
    }

    #[test]
    fn just_outside_grace() {
        let s = hourly();
        let g = mins(5);
        // One second too early for 02:00: still the 01:00 slot, late.
        assert_eq!(
            signal_slot(&s, utc("2026-06-01T01:54:59Z"), g),
            Some(utc("2026-06-01T01:00:00Z"))
        );
        // Late beyond grace: still the newest slot that came due.
        assert_eq!(
            signal_slot(&s, utc("2026-06-01T02:05:01Z"), g),
            Some(utc("2026-06-01T02:00:00Z"))
        );
        assert_eq!(
            signal_slot(&s, utc("2026-06-01T02:54:59Z"), g),
            Some(utc("2026-06-01T02:00:00Z"))
        );
    }

    #[test]
    fn a_grace_as_long_as_the_interval_takes_the_nearer_slot() {
        let s = Schedule::every(Duration::from_secs(60)).unwrap();
        let g = mins(5);
        assert_eq!(
            signal_slot(&s, utc("2026-06-01T02:00:00Z"), g),
            Some(utc("2026-06-01T02:00:00Z"))
        );
        // A tie goes to the slot that came due.
        assert_eq!(
            signal_slot(&s, utc("2026-06-01T02:00:30Z"), g),
            Some(utc("2026-06-01T02:00:00Z"))
        );
        assert_eq!(
            signal_slot(&s, utc("2026-06-01T02:00:31Z"), g),
            Some(utc("2026-06-01T02:01:00Z"))
        );
    }

    #[test]
    fn interval_slots_lie_on_the_epoch_grid() {
        let s = Schedule::every(Duration::from_secs(7 * 60)).unwrap();
        // 2026-06-01T00:00:00Z is 1_780_272_000 s: 360 s past a multiple of 420 s.
        let at = utc("2026-06-01T00:00:00Z");
        let slot = signal_slot(&s, at, Duration::from_secs(1)).unwrap();
        assert_eq!(slot, at - TimeDelta::seconds(360));
    }

    #[test]
    fn cron_in_a_zone_across_dst() {
        let s = Schedule::cron("30 2 * * *", "Europe/Berlin".parse::<Tz>().unwrap()).unwrap();
        let g = mins(5);
        // A summer day: 02:30 CEST is 00:30 UTC.
        assert_eq!(
            signal_slot(&s, utc("2026-06-01T00:26:00Z"), g),
            Some(utc("2026-06-01T00:30:00Z"))
        );
        // 29 March 2026: 02:30 does not exist (02:00 CET jumps to 03:00
        // CEST, 01:00 UTC); the slot is the first instant after the gap.
        assert_eq!(
            signal_slot(&s, utc("2026-03-29T00:55:00Z"), g),
            Some(utc("2026-03-29T01:00:00Z"))
        );
        assert_eq!(
            signal_slot(&s, utc("2026-03-29T00:54:59Z"), g),
            Some(utc("2026-03-28T01:30:00Z"))
        );
        // 25 October 2026: 02:30 happens twice (00:30 UTC in CEST, 01:30
        // UTC in CET) and fires once, at the first: a signal at the
        // second 02:30 is an hour late for it, not a slot of its own.
        assert_eq!(
            signal_slot(&s, utc("2026-10-25T00:30:00Z"), g),
            Some(utc("2026-10-25T00:30:00Z"))
        );
        assert_eq!(
            signal_slot(&s, utc("2026-10-25T01:30:00Z"), g),
            Some(utc("2026-10-25T00:30:00Z"))
        );
    }

    #[test]
    fn a_cron_that_never_fired_before_has_a_slot_only_within_grace() {
        // Fires only in 2030.
        let s = Schedule::cron("0 0 0 1 1 * 2030", Tz::UTC).unwrap();
        let g = mins(5);
        assert_eq!(signal_slot(&s, utc("2026-06-01T00:00:00Z"), g), None);
        assert_eq!(
            signal_slot(&s, utc("2029-12-31T23:55:00Z"), g),
            Some(utc("2030-01-01T00:00:00Z"))
        );
        assert_eq!(
            signal_slot(&s, utc("2031-06-01T00:00:00Z"), g),
            Some(utc("2030-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn slots_missed_between_two_recorded_slots() {
        let s = hourly();
        let at = |h: u32| utc(&format!("2026-06-01T{h:02}:00:00Z"));
        // 03:00 and 04:00 had no run before the 05:00 one.
        assert_eq!(missed_between(&s, at(2), at(5)), 2);
        // Neighbours, the same slot, and the wrong way round: none.
        assert_eq!(missed_between(&s, at(2), at(3)), 0);
        assert_eq!(missed_between(&s, at(2), at(2)), 0);
        assert_eq!(missed_between(&s, at(5), at(2)), 0);
        // A month of silence is counted, not walked.
        assert_eq!(
            missed_between(&s, at(0), utc("2026-07-01T00:00:00Z")),
            30 * 24 - 1
        );
        // The grid is anchored at the older slot, as the alert anchors it.
        let seven = Schedule::every(Duration::from_secs(7 * 60)).unwrap();
        let off = utc("2026-06-01T00:01:30Z");
        assert_eq!(missed_between(&seven, off, off + TimeDelta::minutes(21)), 2);
        assert_eq!(
            missed_between(
                &seven,
                off,
                off + TimeDelta::minutes(21) + TimeDelta::seconds(1)
            ),
            3
        );
    }

    #[test]
    fn slots_missed_after_the_newest_need_the_grace_to_have_passed() {
        let s = hourly();
        let newest = utc("2026-06-01T06:00:00Z");
        let grace = TimeDelta::minutes(5);
        let missed = |now: &str| missed_between(&s, newest, utc(now) - grace);
        // 07:00 is missed once 07:00 + 5m < now, as the alert judges it.
        assert_eq!(missed("2026-06-01T07:04:59Z"), 0);
        assert_eq!(missed("2026-06-01T07:05:00Z"), 0);
        assert_eq!(missed("2026-06-01T07:05:00.001Z"), 1);
        assert_eq!(missed("2026-06-01T07:05:01Z"), 1);
        assert_eq!(missed("2026-06-01T09:05:00Z"), 2);
        assert_eq!(missed("2026-06-01T09:05:01Z"), 3);
        // Not yet past the newest slot's own grace: nothing.
        assert_eq!(missed("2026-06-01T06:01:00Z"), 0);
    }

    #[test]
    fn slots_missed_on_a_cron_in_a_zone_across_dst() {
        let s = Schedule::cron("30 2 * * *", "Europe/Berlin".parse::<Tz>().unwrap()).unwrap();
        // 28 March 01:30 UTC (CET), then 29 March at 01:00 UTC (02:30 does
        // not exist; the first instant after the gap), then 30 March 00:30
        // UTC (CEST): one slot between the first and the last.
        assert_eq!(
            missed_between(&s, utc("2026-03-28T01:30:00Z"), utc("2026-03-30T00:30:00Z")),
            1
        );
        // Counted up to the cap: a minute cron silent for 80 days.
        let minutely = Schedule::cron("* * * * *", Tz::UTC).unwrap();
        let from = utc("2026-01-01T00:00:00Z");
        assert_eq!(
            missed_between(&minutely, from, from + TimeDelta::minutes(90)),
            89
        );
        assert_eq!(
            missed_between(&minutely, from, from + TimeDelta::days(80)),
            MISSED_COUNTED
        );
        // The autumn day fires once: 24, 25 and 26 October lie between.
        assert_eq!(
            missed_between(&s, utc("2026-10-23T00:30:00Z"), utc("2026-10-27T01:30:00Z")),
            3
        );
    }
}
