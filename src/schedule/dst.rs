//! Where a cron schedule meets a DST change of its time zone: the marks
//! on a job's next fire times ([`fire_times`], which `next` prints and the
//! console's job page shows) and the changes `validate` warns about.
//!
//! Nothing here knows a time zone rule or decides when a job fires. What the
//! expression asks for is croner evaluated on local wall-clock times (naive,
//! no zone); what the scheduler does is [`Schedule::next_after`] (croner in
//! the zone); whether a local time exists once, twice or not at all is
//! the zone's answer (`jobs/src/tz.rs`, jiff's compiled-in database). A
//! mark is where the two disagree. Pure: no clock, no I/O.
//!
//! croner's rule, which the marks describe rather than restate: an
//! expression whose second, minute and hour fields are each one value
//! ("fixed time", e.g. `30 2 * * *`) fires a local time that does not exist
//! at the first instant after the gap and a repeated local time once, at the
//! first; any other (wildcard, step, list or range) skips the local times
//! that do not exist and fires a repeated local time at both instants.

use std::fmt;

use chrono::{
    DateTime, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeDelta, TimeZone,
    Timelike, Utc,
};
use croner::Cron;
use ops_worker_jobs::tz::Tz;

use super::Schedule;

/// Local times of one gap or one repeated hour that the expression asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    pub first: NaiveDateTime,
    pub last: NaiveDateTime,
    pub count: usize,
}

impl Times {
    fn one(t: NaiveDateTime) -> Times {
        Times {
            first: t,
            last: t,
            count: 1,
        }
    }

    fn push(&mut self, t: NaiveDateTime) {
        self.first = self.first.min(t);
        self.last = self.last.max(t);
        self.count += 1;
    }

    fn date(&self) -> NaiveDate {
        self.first.date()
    }

    /// `02:30`, or `02:00 to 02:45` (both on one day).
    fn clock(&self) -> String {
        if self.count == 1 {
            clock(self.first)
        } else {
            format!("{} to {}", clock(self.first), clock(self.last))
        }
    }

    fn plural(&self, one: &'static str, many: &'static str) -> &'static str {
        if self.count == 1 {
            one
        } else {
            many
        }
    }
}

/// What a DST change does to one fire time of a cron job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mark {
    /// The local time asked for does not exist (spring forward); this fire
    /// time, the first instant after the gap, stands in for it.
    Moved { asked: Times, at: DateTime<Tz> },
    /// Local times asked for did not exist in a gap before this fire time
    /// and are not fired at all.
    Skipped { asked: Times },
    /// This fire time's local time occurs twice (fall back).
    Repeated {
        first: DateTime<Tz>,
        second: DateTime<Tz>,
        /// This fire time is the first of the two instants.
        this_is_first: bool,
        /// The schedule fires at the other instant as well.
        both: bool,
    },
}

impl fmt::Display for Mark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mark::Moved { asked, at } => write!(
                f,
                "DST: {} {} on {}, {} at {} {} instead",
                asked.clock(),
                asked.plural("does not exist", "do not exist"),
                asked.date(),
                asked.plural("runs", "runs once"),
                clock(at.naive_local()),
                at.format("%Z"),
            ),
            Mark::Skipped { asked } => write!(
                f,
                "DST: {} {} on {}, skipped",
                asked.clock(),
                asked.plural("does not exist", "do not exist"),
                asked.date(),
            ),
            Mark::Repeated {
                first,
                second,
                this_is_first,
                both,
            } => {
                let (this, which) = if *this_is_first {
                    (first, "first")
                } else {
                    (second, "second")
                };
                write!(
                    f,
                    "DST: {} occurs twice on {}, ",
                    clock(this.naive_local()),
                    this.date_naive()
                )?;
                if *both {
                    write!(
                        f,
                        "runs at both; this is the {which} ({})",
                        this.format("%Z")
                    )
                } else {
                    write!(f, "runs once, at the {which} ({})", this.format("%Z"))
                }
            }
        }
    }
}

/// What a cron job does at one DST change of its zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Local times it asks for do not exist: fired at `runs_at` (the first
    /// instant after the gap) or, when `None`, not at all.
    Gap {
        asked: Times,
        runs_at: Option<DateTime<Tz>>,
    },
    /// Local times it asks for occur twice: fired at both instants, or once.
    Repeated { asked: Times, twice: bool },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (asked, what) = match self {
            Change::Gap { asked, .. } => (asked, asked.plural("does not exist", "do not exist")),
            Change::Repeated { asked, .. } => (asked, asked.plural("occurs twice", "occur twice")),
        };
        write!(f, "{} {} {what} (", asked.date(), asked.clock())?;
        if asked.count > 1 {
            write!(f, "{} times, ", asked.count)?;
        }
        match self {
            Change::Gap {
                runs_at: Some(at), ..
            } => write!(f, "runs at {})", clock(at.naive_local())),
            Change::Gap { runs_at: None, .. } => f.write_str("skipped)"),
            Change::Repeated { twice: true, .. } => {
                f.write_str(asked.plural("runs twice)", "each runs twice)"))
            }
            Change::Repeated { twice: false, .. } => f.write_str(
                asked.plural("runs once, at the first)", "each runs once, at the first)"),
            ),
        }
    }
}

/// The marks of fire time `slot`, which the schedule computed as its first
/// fire time after `after`. Empty for interval schedules (a UTC grid) and
/// for zones without DST.
pub fn marks(schedule: &Schedule, after: DateTime<Utc>, slot: DateTime<Utc>) -> Vec<Mark> {
    let Schedule::Cron { cron, tz, .. } = schedule else {
        return Vec::new();
    };
    let local = slot.with_timezone(tz);
    let wall = local.naive_local();
    let mut out = Vec::new();

    // Local times asked for between the two that do not exist: the scheduler
    // fired none of them at its own instant.
    let mut gaps = missing(cron, *tz, after.with_timezone(tz).naive_local(), wall);
    // A fire time whose wall clock the expression does not ask for stands in
    // for the local time missing just before it.
    let stand_in = !cron.is_time_matching(&wall).unwrap_or(true);
    let moved = if stand_in { gaps.pop() } else { None };
    out.extend(gaps.into_iter().map(|asked| Mark::Skipped { asked }));
    if let Some(asked) = moved {
        out.push(Mark::Moved { asked, at: local });
    }

    if let LocalResult::Ambiguous(first, second) = tz.from_local_datetime(&wall) {
        let this_is_first = first == local;
        let other = if this_is_first { second } else { first };
        out.push(Mark::Repeated {
            first,
            second,
            this_is_first,
            both: fires_at(schedule, other.to_utc()),
        });
    }
    out
}

/// One upcoming fire time of a job and what a DST change does to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fire {
    pub at: DateTime<Utc>,
    /// Empty unless a DST change of the zone touches this fire time.
    pub marks: Vec<Mark>,
}

/// The next `count` fire times of `schedule` after `now`, each with its
/// [`marks`]: what `ops-worker next` prints and the console's job page
/// shows. `anchor` is the interval grid's (the scheduler's
/// `Start::anchor`); cron schedules ignore it.
pub fn fire_times(
    schedule: &Schedule,
    now: DateTime<Utc>,
    anchor: DateTime<Utc>,
    count: usize,
) -> Vec<Fire> {
    let mut after = now;
    schedule
        .upcoming(now, anchor, count)
        .into_iter()
        .map(|at| {
            let marks = marks(schedule, after, at);
            after = at;
            Fire { at, marks }
        })
        .collect()
}

/// What the schedule does at each DST change of its zone in `[from, to)`,
/// oldest first. Empty for interval schedules and zones without DST.
pub fn changes(schedule: &Schedule, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Change> {
    let Schedule::Cron { tz, .. } = schedule else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (at, before, after) in transitions(*tz, from, to) {
        let shift = TimeDelta::seconds(i64::from(
            after.local_minus_utc() - before.local_minus_utc(),
        ));
        if shift > TimeDelta::zero() {
            // Spring forward: the local times [at + before, at + after) do not exist.
            let cursor = at - TimeDelta::seconds(1);
            let gap =
                at.with_timezone(&before).naive_local()..at.with_timezone(&after).naive_local();
            let Some(slot) = schedule.next_after(cursor, cursor) else {
                continue;
            };
            for m in marks(schedule, cursor, slot) {
                match m {
                    Mark::Moved { asked, at } if gap.contains(&asked.first) => {
                        out.push(Change::Gap {
                            asked,
                            runs_at: Some(at),
                        })
                    }
                    Mark::Skipped { asked } if gap.contains(&asked.first) => {
                        out.push(Change::Gap {
                            asked,
                            runs_at: None,
                        })
                    }
                    _ => {}
                }
            }
        } else {
            // Fall back: the instants [at - |shift|, at + |shift|) share local times.
            let span = -shift;
            let end = at + span;
            let mut cursor = at - span - TimeDelta::seconds(1);
            let mut asked: Option<Times> = None;
            let mut twice = false;
            for _ in 0..MAX_SLOTS_PER_CHANGE {
                let Some(slot) = schedule.next_after(cursor, cursor).filter(|s| *s < end) else {
                    break;
                };
                for m in marks(schedule, cursor, slot) {
                    if let Mark::Repeated {
                        first,
                        this_is_first,
                        both,
                        ..
                    } = m
                    {
                        twice |= both;
                        // Each repeated local time once, whichever instant fires.
                        if this_is_first || !both {
                            let t = first.naive_local();
                            match &mut asked {
                                Some(times) => times.push(t),
                                None => asked = Some(Times::one(t)),
                            }
                        }
                    }
                }
                cursor = slot;
            }
            if let Some(asked) = asked {
                out.push(Change::Repeated { asked, twice });
            }
        }
    }
    out
}

/// A repeated hour holds 7,200 one-second fire times; past this the rest of
/// a change is not looked at.
const MAX_SLOTS_PER_CHANGE: usize = 10_000;
/// Local times asked for that are looked at between two fire times: all but
/// the last are in gaps, and a zone that skipped a whole day has 86,400
/// seconds of them.
const MAX_MISSING: usize = 100_000;

/// The local times in `(after, before)` that the expression asks for and
/// that do not exist in `tz`, grouped by day, oldest first.
fn missing(cron: &Cron, tz: Tz, after: NaiveDateTime, before: NaiveDateTime) -> Vec<Times> {
    let mut out: Vec<Times> = Vec::new();
    let mut cursor = after;
    for _ in 0..MAX_MISSING {
        let Ok(t) = cron.find_next_occurrence(&cursor, false) else {
            break;
        };
        if t >= before {
            break;
        }
        if let LocalResult::None = tz.from_local_datetime(&t) {
            match out.last_mut() {
                Some(times) if times.date() == t.date() => times.push(t),
                _ => out.push(Times::one(t)),
            }
        }
        cursor = t;
    }
    out
}

/// Whether the schedule fires at `t`.
fn fires_at(schedule: &Schedule, t: DateTime<Utc>) -> bool {
    let just_before = t - TimeDelta::seconds(1);
    schedule.next_after(just_before, just_before) == Some(t)
}

/// The instants in `[from, to)` at which `tz`'s UTC offset changes, with
/// the offsets before and after, as the zone reports them.
fn transitions(
    tz: Tz,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, FixedOffset, FixedOffset)> {
    // Offsets change months apart; an hourly probe finds each change and a
    // bisection its second.
    let offset = |t: DateTime<Utc>| tz.offset_from_utc_datetime(&t.naive_utc()).fix();
    let step = TimeDelta::hours(1);
    let mut out = Vec::new();
    let mut t = super::whole_second(from);
    let mut before = offset(t);
    while t < to {
        let next = (t + step).min(to);
        let after = offset(next);
        if after != before {
            let (mut lo, mut hi) = (t, next);
            while hi - lo > TimeDelta::seconds(1) {
                let mid = lo + (hi - lo) / 2;
                let mid = super::whole_second(mid);
                if offset(mid) == before {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            out.push((hi, before, offset(hi)));
        }
        t = next;
        before = after;
    }
    out
}

/// `02:30`, or `02:30:15` when the second is not zero.
fn clock(t: NaiveDateTime) -> String {
    if t.second() == 0 {
        t.format("%H:%M").to_string()
    } else {
        t.format("%H:%M:%S").to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn cron(expr: &str, tz: &str) -> Schedule {
        Schedule::cron(expr, tz.parse().unwrap()).unwrap()
    }

    /// The next `count` fire times after `from`, each with its marks as `next` prints them.
    fn marked(s: &Schedule, from: &str, count: usize) -> Vec<(DateTime<Utc>, Vec<String>)> {
        let from = utc(from);
        fire_times(s, from, from, count)
            .into_iter()
            .map(|f| (f.at, f.marks.iter().map(Mark::to_string).collect()))
            .collect()
    }

    fn unmarked(t: &str) -> (DateTime<Utc>, Vec<String>) {
        (utc(t), Vec::new())
    }

    fn with(t: &str, mark: &str) -> (DateTime<Utc>, Vec<String>) {
        (utc(t), vec![mark.to_string()])
    }

    fn year_2026(s: &Schedule) -> Vec<String> {
        changes(s, utc("2026-01-01T00:00:00Z"), utc("2027-01-01T00:00:00Z"))
            .iter()
            .map(Change::to_string)
            .collect()
    }

    #[test]
    fn berlin_daily_0230_is_moved_in_spring_and_runs_once_in_autumn() {
        let s = cron("0 30 2 * * *", "Europe/Berlin");
        assert_eq!(
            marked(&s, "2026-03-27T12:00:00Z", 3),
            vec![
                unmarked("2026-03-28T01:30:00Z"),
                with(
                    "2026-03-29T01:00:00Z",
                    "DST: 02:30 does not exist on 2026-03-29, runs at 03:00 CEST instead"
                ),
                unmarked("2026-03-30T00:30:00Z"),
            ]
        );
        assert_eq!(
            marked(&s, "2026-10-23T12:00:00Z", 3),
            vec![
                unmarked("2026-10-24T00:30:00Z"),
                with(
                    "2026-10-25T00:30:00Z",
                    "DST: 02:30 occurs twice on 2026-10-25, runs once, at the first (CEST)"
                ),
                unmarked("2026-10-26T01:30:00Z"),
            ]
        );
        assert_eq!(
            year_2026(&s),
            vec![
                "2026-03-29 02:30 does not exist (runs at 03:00)",
                "2026-10-25 02:30 occurs twice (runs once, at the first)",
            ]
        );
    }

    #[test]
    fn fire_times_carry_the_marks_of_2027_in_berlin() {
        // 2027-03-28 02:00 CET -> 03:00 CEST; 2027-10-31 03:00 CEST -> 02:00 CET.
        let s = cron("0 30 2 * * *", "Europe/Berlin");
        let now = utc("2027-03-26T12:00:00Z");
        let spring = fire_times(&s, now, DateTime::UNIX_EPOCH, 4);
        let at: Vec<DateTime<Utc>> = spring.iter().map(|f| f.at).collect();
        assert_eq!(
            at,
            [
                utc("2027-03-27T01:30:00Z"),
                utc("2027-03-28T01:00:00Z"),
                utc("2027-03-29T00:30:00Z"),
                utc("2027-03-30T00:30:00Z"),
            ]
        );
        let marked: Vec<usize> = (0..4).filter(|&i| !spring[i].marks.is_empty()).collect();
        assert_eq!(marked, [1]);
        assert_eq!(
            spring[1].marks[0].to_string(),
            "DST: 02:30 does not exist on 2027-03-28, runs at 03:00 CEST instead"
        );

        let autumn = fire_times(&s, utc("2027-10-29T12:00:00Z"), now, 3);
        assert_eq!(
            autumn
                .iter()
                .map(|f| (f.at, f.marks.iter().map(Mark::to_string).collect()))
                .collect::<Vec<(DateTime<Utc>, Vec<String>)>>(),
            vec![
                unmarked("2027-10-30T00:30:00Z"),
                with(
                    "2027-10-31T00:30:00Z",
                    "DST: 02:30 occurs twice on 2027-10-31, runs once, at the first (CEST)"
                ),
                unmarked("2027-11-01T01:30:00Z"),
            ]
        );
        // Each is what the schedule alone gives, and `count` is honoured.
        assert_eq!(at, s.upcoming(now, now, 4));
        assert!(fire_times(&s, now, now, 0).is_empty());
    }

    #[test]
    fn interval_fire_times_follow_the_anchor_without_marks() {
        let s = Schedule::every(Duration::from_secs(60)).unwrap();
        let anchor = utc("2026-12-05T08:59:10Z");
        let fires = fire_times(&s, utc("2026-12-05T09:00:00Z"), anchor, 2);
        assert_eq!(
            fires,
            [
                Fire {
                    at: utc("2026-12-05T09:00:10Z"),
                    marks: vec![]
                },
                Fire {
                    at: utc("2026-12-05T09:01:10Z"),
                    marks: vec![]
                },
            ]
        );
    }

    #[test]
    fn a_repeated_time_already_fired_is_not_reported_as_missing() {
        // `next` run at 02:20 CET on 2026-10-25, in the second pass of the
        // repeated hour: 02:30 fired at its first instant (00:30Z), so the
        // next fire time is tomorrow's, and 02:30 today exists: no mark.
        let s = cron("0 30 2 * * *", "Europe/Berlin");
        assert_eq!(
            marked(&s, "2026-10-25T01:20:00Z", 1),
            vec![unmarked("2026-10-26T01:30:00Z")]
        );
    }

    #[test]
    fn new_york_daily_times_in_its_own_transition_hours() {
        // 2026-03-08 02:00 EST -> 03:00 EDT; 2026-11-01 02:00 EDT -> 01:00 EST.
        let s = cron("30 2 * * *", "America/New_York");
        assert_eq!(
            marked(&s, "2026-03-07T12:00:00Z", 2),
            vec![
                with(
                    "2026-03-08T07:00:00Z",
                    "DST: 02:30 does not exist on 2026-03-08, runs at 03:00 EDT instead"
                ),
                unmarked("2026-03-09T06:30:00Z"),
            ]
        );
        // 02:30 is not repeated in New York: the repeated hour is 01:00-02:00.
        assert_eq!(
            marked(&s, "2026-10-31T12:00:00Z", 2),
            vec![
                unmarked("2026-11-01T07:30:00Z"),
                unmarked("2026-11-02T07:30:00Z")
            ]
        );
        assert_eq!(
            year_2026(&s),
            vec!["2026-03-08 02:30 does not exist (runs at 03:00)"]
        );

        let s = cron("30 1 * * *", "America/New_York");
        assert_eq!(
            marked(&s, "2026-10-31T12:00:00Z", 2),
            vec![
                with(
                    "2026-11-01T05:30:00Z",
                    "DST: 01:30 occurs twice on 2026-11-01, runs once, at the first (EDT)"
                ),
                unmarked("2026-11-02T06:30:00Z"),
            ]
        );
        assert_eq!(
            year_2026(&s),
            vec!["2026-11-01 01:30 occurs twice (runs once, at the first)"]
        );
    }

    #[test]
    fn hourly_skips_the_missing_hour_and_runs_the_repeated_one_twice_in_berlin() {
        let s = cron("0 * * * *", "Europe/Berlin");
        assert_eq!(
            marked(&s, "2026-03-28T23:30:00Z", 3),
            vec![
                unmarked("2026-03-29T00:00:00Z"), // 01:00 CET
                with(
                    "2026-03-29T01:00:00Z", // 03:00 CEST
                    "DST: 02:00 does not exist on 2026-03-29, skipped"
                ),
                unmarked("2026-03-29T02:00:00Z"),
            ]
        );
        assert_eq!(
            marked(&s, "2026-10-24T22:30:00Z", 4),
            vec![
                unmarked("2026-10-24T23:00:00Z"), // 01:00 CEST
                with(
                    "2026-10-25T00:00:00Z",
                    "DST: 02:00 occurs twice on 2026-10-25, runs at both; this is the first (CEST)"
                ),
                with(
                    "2026-10-25T01:00:00Z",
                    "DST: 02:00 occurs twice on 2026-10-25, runs at both; this is the second (CET)"
                ),
                unmarked("2026-10-25T02:00:00Z"), // 03:00 CET
            ]
        );
        assert_eq!(
            year_2026(&s),
            vec![
                "2026-03-29 02:00 does not exist (skipped)",
                "2026-10-25 02:00 occurs twice (runs twice)",
            ]
        );
    }

    #[test]
    fn hourly_in_new_york() {
        let s = cron("0 0 * * * *", "America/New_York");
        assert_eq!(
            marked(&s, "2026-03-08T05:30:00Z", 2),
            vec![
                unmarked("2026-03-08T06:00:00Z"), // 01:00 EST
                with(
                    "2026-03-08T07:00:00Z", // 03:00 EDT
                    "DST: 02:00 does not exist on 2026-03-08, skipped"
                ),
            ]
        );
        assert_eq!(
            marked(&s, "2026-11-01T04:30:00Z", 3),
            vec![
                with(
                    "2026-11-01T05:00:00Z",
                    "DST: 01:00 occurs twice on 2026-11-01, runs at both; this is the first (EDT)"
                ),
                with(
                    "2026-11-01T06:00:00Z",
                    "DST: 01:00 occurs twice on 2026-11-01, runs at both; this is the second (EST)"
                ),
                unmarked("2026-11-01T07:00:00Z"), // 02:00 EST
            ]
        );
        assert_eq!(
            year_2026(&s),
            vec![
                "2026-03-08 02:00 does not exist (skipped)",
                "2026-11-01 01:00 occurs twice (runs twice)",
            ]
        );
    }

    #[test]
    fn several_times_in_one_transition_hour_are_counted() {
        let s = cron("*/15 * * * *", "Europe/Berlin");
        assert_eq!(
            year_2026(&s),
            vec![
                "2026-03-29 02:00 to 02:45 do not exist (4 times, skipped)",
                "2026-10-25 02:00 to 02:45 occur twice (4 times, each runs twice)",
            ]
        );
        // A list is not a fixed time for croner: both are skipped, not moved,
        // and the mark goes on the next fire time, a day later.
        let s = cron("0,30 2 * * *", "Europe/Berlin");
        assert_eq!(
            marked(&s, "2026-03-28T12:00:00Z", 1),
            vec![with(
                "2026-03-30T00:00:00Z",
                "DST: 02:00 to 02:30 do not exist on 2026-03-29, skipped"
            )]
        );
    }

    #[test]
    fn noon_utc_and_interval_jobs_have_no_marks() {
        let whole_year = |s: &Schedule, count| {
            let from = utc("2026-01-01T00:00:00Z");
            let mut after = from;
            for slot in s.upcoming(from, from, count) {
                assert_eq!(marks(s, after, slot), vec![], "{s} at {slot}");
                after = slot;
            }
            assert_eq!(year_2026(s), Vec::<String>::new(), "{s}");
        };
        whole_year(&cron("0 12 * * *", "Europe/Berlin"), 365);
        whole_year(&cron("0 12 * * *", "America/New_York"), 365);
        whole_year(&cron("30 2 * * *", "UTC"), 365);
        whole_year(&cron("0 * * * *", "UTC"), 24 * 365);
        // No DST in Tokyo.
        whole_year(&cron("30 2 * * *", "Asia/Tokyo"), 365);
        whole_year(
            &Schedule::every(Duration::from_secs(1800)).unwrap(),
            2 * 24 * 365,
        );
    }

    #[test]
    fn last_sundays_of_march_and_october_are_always_transition_days_in_berlin() {
        // What the CLI tests use: the marks show up whatever today is.
        let s = cron("0 30 2 * 3,10 0#L", "Europe/Berlin");
        assert_eq!(
            marked(&s, "2026-01-01T00:00:00Z", 3),
            vec![
                with(
                    "2026-03-29T01:00:00Z",
                    "DST: 02:30 does not exist on 2026-03-29, runs at 03:00 CEST instead"
                ),
                with(
                    "2026-10-25T00:30:00Z",
                    "DST: 02:30 occurs twice on 2026-10-25, runs once, at the first (CEST)"
                ),
                with(
                    "2027-03-28T01:00:00Z",
                    "DST: 02:30 does not exist on 2027-03-28, runs at 03:00 CEST instead"
                ),
            ]
        );
    }

    #[test]
    fn transitions_are_found_to_the_second() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let got = transitions(
            berlin,
            utc("2026-01-01T00:00:00Z"),
            utc("2027-01-01T00:00:00Z"),
        );
        let hours = |h| FixedOffset::east_opt(h * 3600).unwrap();
        assert_eq!(
            got,
            vec![
                (utc("2026-03-29T01:00:00Z"), hours(1), hours(2)),
                (utc("2026-10-25T01:00:00Z"), hours(2), hours(1)),
            ]
        );
        assert!(transitions(
            Tz::UTC,
            utc("2026-01-01T00:00:00Z"),
            utc("2027-01-01T00:00:00Z")
        )
        .is_empty());
    }
}
