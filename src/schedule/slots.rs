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

impl Schedule {
    /// As the file has it: `30s` (the `every` value, normalised) or the
    /// cron expression.
    pub fn as_written(&self) -> String {
        match self {
            Schedule::Every { every } => humantime::format_duration(*every).to_string(),
            Schedule::Cron { expr, .. } => expr.clone(),
        }
    }

    /// For people: `every 30s`, or croner's description of the cron
    /// expression followed by its zone (`At 02:00 AM (Europe/Berlin)`).
    pub fn in_words(&self) -> String {
        match self {
            Schedule::Every { .. } => self.to_string(),
            Schedule::Cron { cron, tz, .. } => format!("{} ({tz})", cron.describe()),
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
    /// croner rejected it; the message names the field, the value and what
    /// is wrong with it (see [`describe`]), croner's own error is the source.
    #[error("{message}")]
    Invalid {
        message: String,
        #[source]
        source: croner::errors::CronError,
    },
    /// Well-formed, but no date matches it in any year it allows (the
    /// reason, e.g. "day 30 does not exist in February"): the job would
    /// never run.
    #[error("never fires: {0}")]
    NeverFires(String),
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
        let cron = parser()
            .parse(expr)
            .map_err(|source| CronSyntaxError::Invalid {
                message: describe(expr, &source),
                source,
            })?;
        if let Some(why) = never_fires(&cron, tz) {
            return Err(CronSyntaxError::NeverFires(why));
        }
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

    /// A cron schedule whose next slot after `now` lies after `until`, or
    /// that has none left (its year field names only past years): the job
    /// is valid but runs rarely or never again, which `validate` warns
    /// about. `None` for intervals and for cron that fires by `until`.
    pub fn next_beyond(&self, now: DateTime<Utc>, until: DateTime<Utc>) -> Option<NextBeyond> {
        match self {
            Schedule::Every { .. } => None,
            Schedule::Cron { .. } => match self.next_after(now, now) {
                None => Some(NextBeyond::NoneLeft),
                Some(next) if next > until => Some(NextBeyond::At(next)),
                Some(_) => None,
            },
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

/// The one cron parser: 5 fields (minute first), 6 (second first) or 7
/// (second first, year last).
fn parser() -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Optional)
        .build()
}

/// A field of a cron expression: its name, the values it takes and what
/// else it allows.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    /// Characters allowed besides digits, `*`, `,`, `-` and `/`.
    extra: &'static str,
    /// Names allowed instead of numbers (croner's), with their numbers.
    names: &'static [(&'static str, u32)],
    /// Said after an out-of-range value.
    note: &'static str,
}

const MONTH_NAMES: &[(&str, u32)] = &[
    ("JAN", 1),
    ("FEB", 2),
    ("MAR", 3),
    ("APR", 4),
    ("MAY", 5),
    ("JUN", 6),
    ("JUL", 7),
    ("AUG", 8),
    ("SEP", 9),
    ("OCT", 10),
    ("NOV", 11),
    ("DEC", 12),
];
const WEEKDAY_NAMES: &[(&str, u32)] = &[
    ("SUN", 0),
    ("MON", 1),
    ("TUE", 2),
    ("WED", 3),
    ("THU", 4),
    ("FRI", 5),
    ("SAT", 6),
];

const fn field(name: &'static str, min: u32, max: u32) -> Field {
    Field {
        name,
        min,
        max,
        extra: "",
        names: &[],
        note: "",
    }
}

const SECOND: Field = field("second", 0, 59);
const MINUTE: Field = field("minute", 0, 59);
const HOUR: Field = field("hour", 0, 23);
const DAY_OF_MONTH: Field = Field {
    extra: "LW?",
    ..field("day of month", 1, 31)
};
const MONTH: Field = Field {
    names: MONTH_NAMES,
    ..field("month", 1, 12)
};
const DAY_OF_WEEK: Field = Field {
    extra: "L#?",
    names: WEEKDAY_NAMES,
    note: " (0 and 7 are Sunday)",
    ..field("day of week", 0, 7)
};
const YEAR: Field = field(
    "year",
    croner::YEAR_LOWER_LIMIT as u32,
    croner::YEAR_UPPER_LIMIT as u32,
);

/// What is wrong with a cron expression croner rejected, naming the field:
/// `minute 61 is out of range 0-59`. croner's errors do not say which field
/// they are about, so each field is tried alone (the others `*`) to find
/// the one croner rejects, and that field is looked at here; what this
/// does not recognise is said in croner's words, after the field's name.
fn describe(expr: &str, error: &croner::errors::CronError) -> String {
    let parts: Vec<&str> = expr.split_whitespace().collect();
    if let [nickname] = parts.as_slice() {
        if nickname.starts_with('@') {
            return format!(
                "unknown nickname {nickname:?} (known: @yearly, @annually, @monthly, @weekly, @daily, @hourly)"
            );
        }
    }
    let fields: &[Field] = match parts.len() {
        5 => &[MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK],
        6 => &[SECOND, MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK],
        _ => &[SECOND, MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK, YEAR],
    };
    let rejected = (0..parts.len()).find_map(|i| {
        let alone: Vec<&str> = (0..parts.len())
            .map(|j| if j == i { parts[i] } else { "*" })
            .collect();
        parser().parse(&alone.join(" ")).err().map(|e| (i, e))
    });
    match rejected {
        Some((i, e)) => {
            let f = &fields[i];
            field_problem(f, parts[i])
                .unwrap_or_else(|| format!("{} {:?}: {}", f.name, parts[i], croner_words(&e)))
        }
        None => croner_words(error),
    }
}

/// croner's message without its prefix, lowercase, without a final period.
fn croner_words(e: &croner::errors::CronError) -> String {
    use croner::errors::CronError;
    let text = match e {
        CronError::ComponentError(m) | CronError::InvalidPattern(m) => m.clone(),
        CronError::IllegalCharacters(m) => m.replace("CronPattern contains illegal", "illegal"),
        other => other.to_string(),
    };
    let text = text.trim().trim_end_matches('.');
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The first thing wrong with one field's text, or `None` when nothing here
/// recognises it.
fn field_problem(f: &Field, text: &str) -> Option<String> {
    let upper = text.to_uppercase();
    let upper = upper.strip_prefix('+').unwrap_or(&upper);
    let name = f.name;
    // Names stand for numbers (as croner reads them).
    // ("MON-SUN" is Monday to Sunday: croner reads "-SUN" as "-7".)
    let mut numeric = if f.names == WEEKDAY_NAMES {
        upper.replace("-SUN", "-7")
    } else {
        upper.to_string()
    };
    for (n, v) in f.names {
        numeric = numeric.replace(n, &v.to_string());
    }
    if let Some(c) = numeric
        .chars()
        .find(|c| !c.is_ascii_digit() && !"*,-/".contains(*c) && !f.extra.contains(*c))
    {
        let names = match f.names.first().zip(f.names.last()) {
            Some(((first, _), (last, _))) => format!(", the names {first}-{last}"),
            None => String::new(),
        };
        let extra: String = f.extra.chars().map(|c| format!(" {c}")).collect();
        return Some(format!(
            "{name} {text:?}: unexpected character {c:?} (allowed: numbers {}-{}{names}, * , - /{extra})",
            f.min, f.max
        ));
    }
    let out_of_range = |n: u32| format!("{name} {n} is out of range {}-{}{}", f.min, f.max, f.note);
    // A number of this field, or what is wrong with it.
    let number = |s: &str| -> Result<u32, String> {
        match s.parse::<u32>() {
            Ok(n) if (f.min..=f.max).contains(&n) => Ok(n),
            Ok(n) => Err(out_of_range(n)),
            Err(_) => Err(format!("{name} {text:?}: {s:?} is not a number")),
        }
    };
    let range = |part: &str| -> Result<(), String> {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b) = (number(a)?, number(b)?);
        if a > b {
            return Err(format!(
                "{name} range {a}-{b} runs backwards: write {a}-{},{}-{b}",
                f.max, f.min
            ));
        }
        Ok(())
    };
    // Each part of a list, as written (for messages) and with numbers for
    // names (for checking); names do not contain commas.
    for (written, part) in upper.split(',').zip(numeric.split(',')) {
        if part.is_empty() {
            continue;
        }
        let checked = if let Some((from, step)) = part.split_once('/') {
            match step.parse::<u32>() {
                Ok(0) => Err(format!("{name} step 0 in {written:?} must be at least 1")),
                Ok(_) if from.is_empty() => Err(format!(
                    "{name} {written:?}: a step needs a start: write */{step}"
                )),
                Ok(_) if from == "*" => Ok(()),
                Ok(_) if !from.contains('-') => Err(format!(
                    "{name} {written:?}: a step needs a range: write {from}-{}/{step} or */{step}",
                    f.max
                )),
                Ok(_) => range(from),
                Err(_) => Err(format!(
                    "{name} {written:?}: the step {step:?} is not a number"
                )),
            }
        } else if part == "*" || part == "?" || part == "L" || part == "LW" {
            Ok(())
        } else if let Some((day, nth)) = part.split_once('#') {
            match nth.parse::<u32>() {
                Ok(1..=5) => number(day).map(drop),
                _ if nth == "L" => number(day).map(drop),
                _ => Err(format!(
                    "{name} {written:?}: the nth weekday after # must be 1 to 5 or L"
                )),
            }
        } else if let Some(n) = part.strip_suffix('W').or_else(|| part.strip_suffix('L')) {
            number(n).map(drop)
        } else if part.contains('-') {
            range(part)
        } else {
            number(part).map(drop)
        };
        if let Err(problem) = checked {
            return Some(problem);
        }
    }
    None
}

/// What [`Schedule::next_beyond`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextBeyond {
    /// The next slot, later than the horizon.
    At(DateTime<Utc>),
    /// No slot after now: every year the expression names has passed.
    NoneLeft,
}

/// Why a parsed cron expression can never fire, or `None` when it fires at
/// least once. Independent of the current time: the search starts before
/// the first year the expression allows (2000 when it names none: the
/// Gregorian calendar, weekdays included, repeats every 400 years, well
/// within croner's search up to the year 5000), so a job whose years have
/// merely passed is not an error here (see [`Schedule::next_beyond`]).
fn never_fires(cron: &Cron, tz: Tz) -> Option<String> {
    let years = cron.pattern.years.values();
    let all_years = years.len() == usize::from(cron.pattern.years.max - cron.pattern.years.min) + 1;
    let first_year = if all_years {
        2000
    } else {
        i32::from(*years.first()?)
    };
    // A day early, so that a zone ahead of UTC still starts before its
    // local New Year.
    let start = chrono::NaiveDate::from_ymd_opt(first_year, 1, 1)?
        .and_hms_opt(0, 0, 0)?
        .and_utc()
        - TimeDelta::days(1);
    if cron
        .find_next_occurrence(&start.with_timezone(&tz), true)
        .is_ok()
    {
        return None;
    }
    Some(missing_days(cron, &years, all_years).unwrap_or_else(|| {
        "no date matches its day-of-month, month, day-of-week and year fields together".to_string()
    }))
}

/// "day 30 does not exist in February": the reason when the day-of-month
/// field alone decides (plain days, and a day-of-week field of `*`) and
/// none of its days exists in any month the expression names.
fn missing_days(cron: &Cron, years: &[u16], all_years: bool) -> Option<String> {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let p = &cron.pattern;
    if p.is_dom_wildcard() || !p.is_dow_wildcard() || p.days.has_modifiers() {
        return None;
    }
    let leap = |y: u16| chrono::NaiveDate::from_ymd_opt(i32::from(y), 2, 29).is_some();
    let february = if all_years || years.iter().any(|y| leap(*y)) {
        29
    } else {
        28
    };
    let length = [31, february, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let days = p.days.values();
    let months = p.months.values();
    if days.is_empty()
        || months.is_empty()
        || months
            .iter()
            .any(|m| days.iter().any(|d| *d <= length[usize::from(*m) - 1]))
    {
        return None;
    }
    let days: Vec<String> = days.iter().map(ToString::to_string).collect();
    let months: Vec<&str> = months.iter().map(|m| MONTHS[usize::from(*m) - 1]).collect();
    let (noun, verb) = if days.len() == 1 {
        ("day", "does")
    } else {
        ("days", "do")
    };
    // The years matter only to February's 29th.
    let in_years = if all_years || !months.contains(&"February") {
        String::new()
    } else if years.len() == 1 {
        format!(" {}", years[0])
    } else {
        let years: Vec<String> = years.iter().map(ToString::to_string).collect();
        format!(" of {}", listed(&years, "or"))
    };
    Some(format!(
        "{noun} {} {verb} not exist in {}{in_years}",
        listed(&days, "and"),
        listed(&months, "or")
    ))
}

/// `a`, `a and b`, `a, b and c` (with `and` or `or`); long lists are cut
/// after the first five.
fn listed<S: AsRef<str>>(items: &[S], conjunction: &str) -> String {
    let items: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    match items.as_slice() {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] if items.len() <= 5 => {
            format!("{} {conjunction} {last}", init.join(", "))
        }
        _ => format!("{}, ... ({} in all)", items[..5].join(", "), items.len()),
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

    /// Every field, its range, steps, ranges, names and modifiers: the
    /// message names the field and what is wrong, not croner's "Number out
    /// of bounds".
    #[test]
    fn a_rejected_cron_names_the_field_and_its_range() {
        for (expr, want) in [
            ("61 * * * *", "minute 61 is out of range 0-59"),
            // Five fields are minute first: this is the hour.
            ("0 61 * * *", "hour 61 is out of range 0-23"),
            ("0 61 * * * *", "minute 61 is out of range 0-59"),
            ("61 0 * * * *", "second 61 is out of range 0-59"),
            ("0 0 24 * * *", "hour 24 is out of range 0-23"),
            ("0 0 32 * *", "day of month 32 is out of range 1-31"),
            ("0 0 0 * *", "day of month 0 is out of range 1-31"),
            ("0 0 1 13 *", "month 13 is out of range 1-12"),
            ("0 0 * * 8", "day of week 8 is out of range 0-7 (0 and 7 are Sunday)"),
            ("0 0 0 1 1 * 6000", "year 6000 is out of range 1-5000"),
            ("0 0 0 1 1 * 0", "year 0 is out of range 1-5000"),
            ("50-70 * * * *", "minute 70 is out of range 0-59"),
            ("0 22-2 * * *", "hour range 22-2 runs backwards: write 22-23,0-2"),
            ("0 0 * * FRI-MON", "day of week range 5-1 runs backwards: write 5-7,0-1"),
            ("*/0 * * * *", "minute step 0 in \"*/0\" must be at least 1"),
            ("0 0 */0 * * *", "hour step 0 in \"*/0\" must be at least 1"),
            ("5/10 * * * *", "minute \"5/10\": a step needs a range: write 5-59/10 or */10"),
            ("/10 * * * *", "minute \"/10\": a step needs a start: write */10"),
            ("0 10-70/5 * * *", "hour 70 is out of range 0-23"),
            ("0 0 1-40/2 * *", "day of month 40 is out of range 1-31"),
            ("0 0 32W * *", "day of month 32 is out of range 1-31"),
            ("0 0 * * MON#6", "day of week \"MON#6\": the nth weekday after # must be 1 to 5 or L"),
            ("0 0 * * 9#2", "day of week 9 is out of range 0-7 (0 and 7 are Sunday)"),
            (
                "0 0 * * MOM",
                "day of week \"MOM\": unexpected character 'M' (allowed: numbers 0-7, the names SUN-SAT, * , - / L # ?)",
            ),
            (
                "0 0 * JANN *",
                "month \"JANN\": unexpected character 'N' (allowed: numbers 1-12, the names JAN-DEC, * , - /)",
            ),
            ("0 0 15X * *", "day of month \"15X\": unexpected character 'X' (allowed: numbers 1-31, * , - / L W ?)"),
            ("x * * * *", "minute \"x\": unexpected character 'X' (allowed: numbers 0-59, * , - /)"),
            ("@fortnightly", "unknown nickname \"@fortnightly\" (known: @yearly, @annually, @monthly, @weekly, @daily, @hourly)"),
        ] {
            match Schedule::cron(expr, Tz::UTC) {
                Err(e @ CronSyntaxError::Invalid { .. }) => assert_eq!(e.to_string(), want, "{expr}"),
                other => panic!("{expr}: {other:?}"),
            }
        }
        // What the names stand for is croner's: Monday to Sunday is valid.
        assert!(Schedule::cron("0 0 * * MON-SUN", Tz::UTC).is_ok());
        assert!(Schedule::cron("0 0 * JAN-MAR MON#2", Tz::UTC).is_ok());
    }

    fn never(expr: &str) -> String {
        match Schedule::cron(expr, Tz::UTC) {
            Err(CronSyntaxError::NeverFires(why)) => why,
            other => panic!("{expr}: {other:?}"),
        }
    }

    #[test]
    fn cron_that_can_never_fire_is_rejected_with_the_reason() {
        assert_eq!(never("0 0 30 2 *"), "day 30 does not exist in February");
        assert_eq!(
            never("0 0 31 4,6 *"),
            "day 31 does not exist in April or June"
        );
        assert_eq!(
            never("0 0 30,31 2 *"),
            "days 30 and 31 do not exist in February"
        );
        assert_eq!(
            never("0 0 0 31 2,4,6,9,11 *"),
            "day 31 does not exist in February, April, June, September or November"
        );
        // 29 February in years that are not leap years.
        assert_eq!(
            never("0 0 0 29 2 * 2027"),
            "day 29 does not exist in February 2027"
        );
        assert_eq!(
            never("0 0 0 29 2 * 2025-2027"),
            "day 29 does not exist in February of 2025, 2026 or 2027"
        );
        // What the day-of-month field alone does not explain.
        assert_eq!(
            never("0 0 0 * 2 MON#5 2027"),
            "no date matches its day-of-month, month, day-of-week and year fields together"
        );
        let err = Schedule::cron("0 0 30 2 *", Tz::UTC).unwrap_err();
        assert_eq!(
            err.to_string(),
            "never fires: day 30 does not exist in February"
        );
        // In a zone ahead of UTC too, whose local New Year comes first.
        assert!(Schedule::cron("0 0 0 1 1 * 2030", "Pacific/Kiritimati".parse().unwrap()).is_ok());
    }

    #[test]
    fn rare_cron_is_valid() {
        for expr in [
            "0 0 29 2 *",   // leap day
            "0 0 0 29 2 *", // the same, six fields (seconds first)
            "0 0 0 29 2 * 2028",
            "0 0 31 1-4 *",     // January and March have a 31st
            "0 0 30 2 MON",     // day of month or day of week: Mondays in February
            "0 0 L 2 *",        // the last day of February
            "0 0 * 2 MON#5",    // a fifth Monday in February: 29 February on a Monday
            "0 0 0 1 1 * 2020", // in the past, but a date that exists
        ] {
            assert!(Schedule::cron(expr, Tz::UTC).is_ok(), "{expr}");
        }
    }

    #[test]
    fn next_beyond_finds_rare_and_finished_cron() {
        let now = utc("2026-12-05T12:00:00Z");
        let year = utc("2027-12-05T12:00:00Z");
        assert_eq!(
            cron("0 0 29 2 *", "UTC").next_beyond(now, year),
            Some(NextBeyond::At(utc("2028-02-29T00:00:00Z")))
        );
        // A year later the next leap day is less than a year away.
        assert_eq!(
            cron("0 0 29 2 *", "UTC")
                .next_beyond(utc("2027-12-05T12:00:00Z"), utc("2028-12-05T12:00:00Z")),
            None
        );
        assert_eq!(
            cron("0 0 0 1 1 * 2030", "UTC").next_beyond(now, year),
            Some(NextBeyond::At(utc("2030-01-01T00:00:00Z")))
        );
        assert_eq!(
            cron("0 0 0 1 1 * 2020", "UTC").next_beyond(now, year),
            Some(NextBeyond::NoneLeft)
        );
        assert_eq!(cron("0 0 * * *", "UTC").next_beyond(now, year), None);
        let every = Schedule::every(Duration::from_secs(60)).unwrap();
        assert_eq!(every.next_beyond(now, year), None);
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
