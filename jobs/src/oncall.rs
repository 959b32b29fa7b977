//! On-call schedules and who is on call at an instant, the way PagerDuty and
//! Grafana OnCall define them: layers of rotating members, optionally
//! restricted to a weekly window, under overrides.
//!
//! One `[oncall.NAME]` table of schedules.toml:
//!
//! ```toml
//! [oncall.primary]
//! timezone = "Europe/Berlin"            # IANA, required
//! layers = [
//!   { members = ["alice", "bob", "carol"], rotation = "weekly", handoff = "2026-11-02T09:00" },
//!   { members = ["dave"], rotation = "daily", handoff = "2026-11-02T18:00",
//!     restrict = { days = ["sat", "sun"], from = "09:00", to = "18:00" } },
//!   { members = ["erin", "frank"], rotation = "12h", handoff = "2026-11-02T08:00" },
//! ]
//! overrides = [ { who = "zoe", from = "2026-11-24T09:00", to = "2026-11-25T09:00" } ]
//! ```
//!
//! Every local date-time and time is on the schedule's `timezone`. A local
//! time that does not exist (the spring-forward gap) is the first instant
//! after the gap; one that occurs twice (fall back) is its first occurrence.
//!
//! - A layer's `handoff` is the start of its first member's first shift;
//!   before it the layer has nobody. `"daily"` and `"weekly"` rotations hand
//!   off at the handoff's local wall-clock time every day or week (a daily
//!   shift across a DST change lasts 23 or 25 hours); a duration rotation
//!   (`"12h"`, `"1d"`, any humantime duration of at least a minute) is fixed
//!   elapsed time from the handoff instant, whatever the clocks do.
//! - `restrict` limits a layer to a window on some days: `days` (`mon` ..
//!   `sun`, default every day), `from` and `to` (`"HH:MM"`, default the whole
//!   day). `to` at or before `from` is an overnight window that belongs to the
//!   day it starts on. Outside its window a layer has nobody; the shift's
//!   owner is not replaced.
//! - An override names who is on call over `[from, to)`, beating every layer;
//!   a later override beats an earlier one where they overlap.
//!
//! At an instant the answer is the active override's `who`, else the last
//! layer that has someone on shift, else nobody.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use crate::tz::Tz;
use chrono::{
    DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Timelike, Utc, Weekday,
};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

/// The shortest rotation [`OnCallSchedule::validate`] accepts.
pub const MIN_ROTATION: Duration = Duration::from_secs(60);

/// One on-call schedule: a `[oncall.NAME]` table of schedules.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnCallSchedule {
    /// The IANA zone every local time of the schedule is read on.
    #[serde(deserialize_with = "de_timezone")]
    pub timezone: Tz,
    /// The rotations, lowest priority first: the last layer with someone on
    /// shift wins.
    pub layers: Vec<Layer>,
    /// One-off replacements, lowest priority first.
    #[serde(default)]
    pub overrides: Vec<Override>,
}

/// One rotation of a schedule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    /// Who takes shifts, in order; after the last the first comes again.
    pub members: Vec<String>,
    /// How long a shift lasts.
    pub rotation: Rotation,
    /// Local start of the first member's first shift.
    #[serde(deserialize_with = "de_local_datetime")]
    pub handoff: NaiveDateTime,
    /// The weekly window the layer is limited to, if any.
    #[serde(default)]
    pub restrict: Option<Restriction>,
}

/// How long one shift of a layer lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// Until the same local time the next day (23 or 25 hours across DST).
    Daily,
    /// Until the same local time and weekday the next week.
    Weekly,
    /// This much elapsed time, whatever the local clocks do.
    Every(Duration),
}

/// A layer's window: on `days`, from `from` to `to` local time.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Restriction {
    /// The days a window starts on; `None` is every day.
    #[serde(default, deserialize_with = "de_days")]
    pub days: Option<Vec<Weekday>>,
    /// Local start of the window; `None` is 00:00.
    #[serde(default, deserialize_with = "de_opt_time")]
    pub from: Option<NaiveTime>,
    /// Local end of the window; `None` is the end of the day. At or before
    /// `from`: the next day's.
    #[serde(default, deserialize_with = "de_opt_time")]
    pub to: Option<NaiveTime>,
}

/// Someone on call over `[from, to)` local time, whatever the layers say.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    pub who: String,
    #[serde(deserialize_with = "de_local_datetime")]
    pub from: NaiveDateTime,
    #[serde(deserialize_with = "de_local_datetime")]
    pub to: NaiveDateTime,
}

/// Who is on call over `[start, end)`; `None` is nobody.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shift {
    pub who: Option<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl OnCallSchedule {
    /// Semantic checks serde cannot do: at least one layer, every layer with
    /// members (none blank), rotations of at least [`MIN_ROTATION`], no empty
    /// `restrict.days`, overrides naming someone with `from` before `to`.
    /// The message names the offending layer or override and key.
    pub fn validate(&self) -> Result<(), String> {
        if self.layers.is_empty() {
            return Err("layers: at least one layer is required".into());
        }
        for (i, layer) in self.layers.iter().enumerate() {
            if layer.members.is_empty() {
                return Err(format!("layers[{i}].members: is empty"));
            }
            if let Some(j) = layer.members.iter().position(|m| m.trim().is_empty()) {
                return Err(format!("layers[{i}].members[{j}]: is blank"));
            }
            if let Rotation::Every(d) = layer.rotation {
                if d < MIN_ROTATION {
                    return Err(format!(
                        "layers[{i}].rotation: {:?} is shorter than 1 minute",
                        humantime::format_duration(d).to_string()
                    ));
                }
            }
            if let Some(days) = layer.restrict.as_ref().and_then(|r| r.days.as_ref()) {
                if days.is_empty() {
                    return Err(format!(
                        "layers[{i}].restrict.days: is empty (leave it out for every day)"
                    ));
                }
            }
        }
        for (i, o) in self.overrides.iter().enumerate() {
            if o.who.trim().is_empty() {
                return Err(format!("overrides[{i}].who: is blank"));
            }
            if resolve(self.timezone, o.from) >= resolve(self.timezone, o.to) {
                return Err(format!(
                    "overrides[{i}]: from {} is not before to {}",
                    fmt_local(o.from),
                    fmt_local(o.to)
                ));
            }
        }
        Ok(())
    }

    /// The zone the schedule's local times are on.
    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    /// Who is on call at `at`: the last active override's `who`, else the
    /// last layer with someone on shift, else nobody.
    pub fn who(&self, at: DateTime<Utc>) -> Option<String> {
        let tz = self.timezone;
        if let Some(o) = self.overrides.iter().rev().find(|o| o.active(tz, at)) {
            return Some(o.who.clone());
        }
        self.layers
            .iter()
            .rev()
            .find_map(|l| l.on_shift(tz, at))
            .map(str::to_owned)
    }

    /// Who is on call over `[from, to)`, as contiguous shifts tiling exactly
    /// that range (empty if `from >= to`): consecutive stretches with the same
    /// answer are merged.
    ///
    /// Computed from the instants where the answer may change (rotation
    /// handoffs, restriction window edges, override edges), not by sampling.
    pub fn shifts(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Shift> {
        if from >= to {
            return Vec::new();
        }
        let tz = self.timezone;
        let mut cuts = vec![from, to];
        for layer in &self.layers {
            layer.edges(tz, from, to, &mut cuts);
        }
        for o in &self.overrides {
            cuts.push(resolve(tz, o.from));
            cuts.push(resolve(tz, o.to));
        }
        cuts.retain(|&c| from <= c && c <= to);
        cuts.sort_unstable();
        cuts.dedup();

        let mut out: Vec<Shift> = Vec::new();
        for w in cuts.windows(2) {
            let who = self.who(w[0]);
            match out.last_mut() {
                Some(last) if last.who == who => last.end = w[1],
                _ => out.push(Shift {
                    who,
                    start: w[0],
                    end: w[1],
                }),
            }
        }
        out
    }

    /// Everyone named in the layers and overrides.
    pub fn people(&self) -> BTreeSet<String> {
        self.layers
            .iter()
            .flat_map(|l| l.members.iter())
            .chain(self.overrides.iter().map(|o| &o.who))
            .cloned()
            .collect()
    }
}

impl Override {
    fn active(&self, tz: Tz, at: DateTime<Utc>) -> bool {
        resolve(tz, self.from) <= at && at < resolve(tz, self.to)
    }
}

impl Layer {
    /// The member on shift at `at`, if the layer has someone then.
    pub fn on_shift(&self, tz: Tz, at: DateTime<Utc>) -> Option<&str> {
        if !self.usable() {
            return None;
        }
        let k = self.shift_index(tz, at)?;
        if let Some(r) = &self.restrict {
            if !r.contains(tz, at) {
                return None;
            }
        }
        let n = self.members.len() as u128;
        Some(self.members[(k % n) as usize].as_str())
    }

    /// A layer `validate` would refuse (no members, a rotation under a
    /// minute) never has anyone, rather than looping or dividing by zero.
    fn usable(&self) -> bool {
        !self.members.is_empty()
            && match self.rotation {
                Rotation::Every(d) => d >= MIN_ROTATION,
                Rotation::Daily | Rotation::Weekly => true,
            }
    }

    /// Which shift (0 = the first) contains `at`; None before the handoff.
    fn shift_index(&self, tz: Tz, at: DateTime<Utc>) -> Option<u128> {
        let first = resolve(tz, self.handoff);
        if at < first {
            return None;
        }
        match self.rotation {
            Rotation::Every(d) => {
                let k = (nanos(at) - nanos(first)) / d.as_nanos() as i128;
                u128::try_from(k).ok()
            }
            Rotation::Daily | Rotation::Weekly => {
                let step = self.step_days();
                let days = (at.with_timezone(&tz).date_naive() - self.handoff.date()).num_days();
                // An estimate off by at most one either way, then exact.
                let mut k = days.div_euclid(step).max(0);
                while k > 0 && self.wall_boundary(tz, k).is_none_or(|b| b > at) {
                    k -= 1;
                }
                while self.wall_boundary(tz, k + 1).is_some_and(|b| b <= at) {
                    k += 1;
                }
                u128::try_from(k).ok()
            }
        }
    }

    fn step_days(&self) -> i64 {
        match self.rotation {
            Rotation::Weekly => 7,
            _ => 1,
        }
    }

    /// The start of shift `k` of a daily or weekly rotation.
    fn wall_boundary(&self, tz: Tz, k: i64) -> Option<DateTime<Utc>> {
        let days = TimeDelta::try_days(k.checked_mul(self.step_days())?)?;
        let date = self.handoff.date().checked_add_signed(days)?;
        Some(resolve(tz, date.and_time(self.handoff.time())))
    }

    /// Pushes onto `cuts` every instant in `(from, to)` where this layer's
    /// answer may change (and possibly a few more).
    fn edges(&self, tz: Tz, from: DateTime<Utc>, to: DateTime<Utc>, cuts: &mut Vec<DateTime<Utc>>) {
        if !self.usable() {
            return;
        }
        let first = resolve(tz, self.handoff);
        cuts.push(first);
        // With one member a handoff never changes who is on shift.
        if self.members.len() > 1 {
            match self.rotation {
                Rotation::Every(d) => {
                    let p = d.as_nanos() as i128;
                    let since = nanos(from) - nanos(first);
                    let mut k = if since <= 0 {
                        1
                    } else {
                        since.div_euclid(p) + 1
                    };
                    while let Some(b) = from_nanos(nanos(first) + k * p) {
                        if b >= to {
                            break;
                        }
                        cuts.push(b);
                        k += 1;
                    }
                }
                Rotation::Daily | Rotation::Weekly => {
                    let mut k = self
                        .shift_index(tz, from)
                        .and_then(|k| i64::try_from(k).ok())
                        .unwrap_or(0)
                        + 1;
                    while let Some(b) = self.wall_boundary(tz, k) {
                        if b >= to {
                            break;
                        }
                        cuts.push(b);
                        k += 1;
                    }
                }
            }
        }
        if let Some(r) = &self.restrict {
            let first_day = from.with_timezone(&tz).date_naive() - TimeDelta::days(2);
            let last_day = to.with_timezone(&tz).date_naive() + TimeDelta::days(1);
            for day in first_day.iter_days().take_while(|d| *d <= last_day) {
                if let Some((start, end)) = r.window(tz, day) {
                    cuts.push(start);
                    cuts.push(end);
                }
            }
        }
    }
}

impl Restriction {
    /// The window starting on local `day`, if `day` is one of `days`.
    fn window(&self, tz: Tz, day: NaiveDate) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        if let Some(days) = &self.days {
            if !days.contains(&day.weekday()) {
                return None;
            }
        }
        let from = self.from.unwrap_or(NaiveTime::MIN);
        let next = day.succ_opt()?;
        let end = match self.to {
            None => next.and_time(NaiveTime::MIN),
            Some(to) if to <= from => next.and_time(to),
            Some(to) => day.and_time(to),
        };
        Some((resolve(tz, day.and_time(from)), resolve(tz, end)))
    }

    fn contains(&self, tz: Tz, at: DateTime<Utc>) -> bool {
        // A window lasts at most a day (and a DST hour), so it starts on the
        // local day of `at` or the one before; a day more each way is slack
        // for zones that skip or repeat whole days.
        let today = at.with_timezone(&tz).date_naive();
        (-2..=1).any(|offset| {
            today
                .checked_add_signed(TimeDelta::days(offset))
                .and_then(|day| self.window(tz, day))
                .is_some_and(|(start, end)| start <= at && at < end)
        })
    }
}

use crate::localtime::instant as resolve;

fn nanos(t: DateTime<Utc>) -> i128 {
    i128::from(t.timestamp()) * 1_000_000_000 + i128::from(t.timestamp_subsec_nanos())
}

fn from_nanos(n: i128) -> Option<DateTime<Utc>> {
    let secs = i64::try_from(n.div_euclid(1_000_000_000)).ok()?;
    DateTime::from_timestamp(secs, n.rem_euclid(1_000_000_000) as u32)
}

fn fmt_local(t: NaiveDateTime) -> String {
    if t.second() == 0 {
        t.format("%Y-%m-%dT%H:%M").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%S").to_string()
    }
}

// ---- parsing -------------------------------------------------------------

impl<'de> Deserialize<'de> for Rotation {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.trim() {
            "daily" => Ok(Rotation::Daily),
            "weekly" => Ok(Rotation::Weekly),
            t => humantime::parse_duration(t).map(Rotation::Every).map_err(|e| {
                // humantime's reason helps with "12 hourz", not with "fortnightly".
                let why = if t.starts_with(|c: char| c.is_ascii_digit()) {
                    format!(" ({e})")
                } else {
                    String::new()
                };
                de::Error::custom(format!(
                    "invalid rotation {s:?}: expected \"daily\", \"weekly\" or a duration like \"12h\"{why}"
                ))
            }),
        }
    }
}

fn de_timezone<'de, D: Deserializer<'de>>(d: D) -> Result<Tz, D::Error> {
    let s = String::deserialize(d)?;
    s.parse::<Tz>().map_err(|_| {
        de::Error::custom(format!(
            "unknown time zone {s:?}: expected an IANA name like \"Europe/Berlin\""
        ))
    })
}

fn de_days<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Weekday>>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|s| parse_day(s).map_err(de::Error::custom))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn parse_day(s: &str) -> Result<Weekday, String> {
    let day = match s.trim().to_ascii_lowercase().as_str() {
        "mon" | "monday" => Weekday::Mon,
        "tue" | "tuesday" => Weekday::Tue,
        "wed" | "wednesday" => Weekday::Wed,
        "thu" | "thursday" => Weekday::Thu,
        "fri" | "friday" => Weekday::Fri,
        "sat" | "saturday" => Weekday::Sat,
        "sun" | "sunday" => Weekday::Sun,
        _ => {
            return Err(format!(
                "invalid day {s:?}: expected one of mon, tue, wed, thu, fri, sat, sun"
            ))
        }
    };
    Ok(day)
}

fn de_local_datetime<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDateTime, D::Error> {
    d.deserialize_any(LocalVisitor {
        expecting: "a local date-time \"YYYY-MM-DDTHH:MM\"",
        parse: parse_local_datetime,
    })
}

fn de_opt_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveTime>, D::Error> {
    d.deserialize_any(LocalVisitor {
        expecting: "a local time \"HH:MM\"",
        parse: parse_time,
    })
    .map(Some)
}

/// Whether `s` has `shape`, `d` standing for a digit: the input must match it
/// exactly (chrono's parser alone takes "9:00" or "+2026-...").
fn has_shape(s: &str, shape: &str) -> bool {
    s.len() == shape.len()
        && s.bytes().zip(shape.bytes()).all(|(c, p)| match p {
            b'd' => c.is_ascii_digit(),
            _ => c == p,
        })
}

/// `YYYY-MM-DDTHH:MM` or `YYYY-MM-DDTHH:MM:SS`, a space allowed for the `T`
/// as in TOML.
pub fn parse_local_datetime(s: &str) -> Result<NaiveDateTime, String> {
    let norm = s.trim().replacen(' ', "T", 1);
    let format = if has_shape(&norm, "dddd-dd-ddTdd:dd") {
        "%Y-%m-%dT%H:%M"
    } else if has_shape(&norm, "dddd-dd-ddTdd:dd:dd") {
        "%Y-%m-%dT%H:%M:%S"
    } else {
        return Err(format!(
            "invalid date-time {s:?}: expected a local YYYY-MM-DDTHH:MM (no offset: the schedule's timezone applies)"
        ));
    };
    NaiveDateTime::parse_from_str(&norm, format)
        .map_err(|_| format!("invalid date-time {s:?}: no such date or time"))
}

/// `HH:MM` or `HH:MM:SS`, 00:00 to 23:59:59.
fn parse_time(s: &str) -> Result<NaiveTime, String> {
    let t = s.trim();
    let format = if has_shape(t, "dd:dd") {
        "%H:%M"
    } else if has_shape(t, "dd:dd:dd") {
        "%H:%M:%S"
    } else {
        return Err(format!("invalid time {s:?}: expected HH:MM"));
    };
    NaiveTime::parse_from_str(t, format)
        .map_err(|_| format!("invalid time {s:?}: hours are 00-23, minutes 00-59"))
}

/// The TOML deserializer hands an unquoted date-time or time
/// (`from = 09:00`) to a visitor as a one-entry map under this key.
const TOML_DATETIME_KEY: &str = "$__toml_private_datetime";

/// Reads a quoted string or a TOML local date-time / time through `parse`.
struct LocalVisitor<T> {
    expecting: &'static str,
    parse: fn(&str) -> Result<T, String>,
}

impl<'de, T> Visitor<'de> for LocalVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.parse)(v).map_err(E::custom)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let key: Option<String> = map.next_key()?;
        if key.as_deref() != Some(TOML_DATETIME_KEY) {
            return Err(de::Error::invalid_type(de::Unexpected::Map, &self));
        }
        let text: String = map.next_value()?;
        (self.parse)(&text).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tz::zone;
    use std::collections::BTreeMap;

    /// `"2026-11-02 08:00"` or `"2026-11-02 08:00:30"` as UTC.
    fn utc(s: &str) -> DateTime<Utc> {
        let format = if s.len() == 16 {
            "%Y-%m-%d %H:%M"
        } else {
            "%Y-%m-%d %H:%M:%S"
        };
        NaiveDateTime::parse_from_str(s, format).unwrap().and_utc()
    }

    fn parse(body: &str) -> OnCallSchedule {
        let s: OnCallSchedule = toml::from_str(body).unwrap_or_else(|e| panic!("{e}\n{body}"));
        s.validate().unwrap();
        s
    }

    fn parse_err(body: &str) -> String {
        match toml::from_str::<OnCallSchedule>(body) {
            Ok(s) => panic!("parsed: {s:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn who(s: &OnCallSchedule, at: &str) -> Option<String> {
        s.who(utc(at))
    }

    fn shift(who: Option<&str>, start: &str, end: &str) -> Shift {
        Shift {
            who: who.map(str::to_owned),
            start: utc(start),
            end: utc(end),
        }
    }

    fn hours(s: &Shift) -> i64 {
        (s.end - s.start).num_minutes() / 60
    }

    /// The segments tile `[from, to)` exactly, neighbours differ, and each
    /// segment's answer is what `who` says at its start, just before its end
    /// and at every minute in between.
    fn assert_tiles(s: &OnCallSchedule, from: DateTime<Utc>, to: DateTime<Utc>) {
        let shifts = s.shifts(from, to);
        assert_eq!(shifts.first().unwrap().start, from);
        assert_eq!(shifts.last().unwrap().end, to);
        for w in shifts.windows(2) {
            assert_eq!(w[0].end, w[1].start, "{shifts:#?}");
            assert_ne!(w[0].who, w[1].who, "not merged: {shifts:#?}");
        }
        for sh in &shifts {
            assert!(sh.start < sh.end);
            let mut t = sh.start;
            while t < sh.end {
                assert_eq!(s.who(t), sh.who, "at {t} in {sh:?}");
                t += TimeDelta::minutes(1);
            }
            assert_eq!(s.who(sh.end - TimeDelta::seconds(1)), sh.who);
        }
    }

    const EXAMPLE: &str = r#"
[oncall.primary]
timezone = "Europe/Berlin"            # IANA, required
layers = [
  { members = ["alice", "bob", "carol"], rotation = "weekly", handoff = "2026-11-02T09:00" },
  { members = ["dave"], rotation = "daily", handoff = "2026-11-02T18:00",
    restrict = { days = ["sat", "sun"], from = "09:00", to = "18:00" } },
  { members = ["erin", "frank"], rotation = "12h", handoff = "2026-11-02T08:00" },
]
overrides = [ { who = "zoe", from = "2026-11-24T09:00", to = "2026-11-25T09:00" } ]
"#;

    /// The example without its last layer (which, never restricted, would
    /// beat the other two all the time).
    const WEEKDAYS_AND_WEEKENDS: &str = r#"
timezone = "Europe/Berlin"
layers = [
  { members = ["alice", "bob", "carol"], rotation = "weekly", handoff = "2026-11-02T09:00" },
  { members = ["dave"], rotation = "daily", handoff = "2026-11-02T18:00",
    restrict = { days = ["sat", "sun"], from = "09:00", to = "18:00" } },
]
overrides = [ { who = "zoe", from = "2026-11-24T09:00", to = "2026-11-25T09:00" } ]
"#;

    #[test]
    fn the_documented_example_parses_and_resolves() {
        let file: BTreeMap<String, BTreeMap<String, OnCallSchedule>> =
            toml::from_str(EXAMPLE).unwrap();
        let s = &file["oncall"]["primary"];
        s.validate().unwrap();
        assert_eq!(s.timezone(), zone("Europe/Berlin"));
        assert_eq!(s.layers.len(), 3);
        assert_eq!(s.layers[0].rotation, Rotation::Weekly);
        assert_eq!(s.layers[1].rotation, Rotation::Daily);
        assert_eq!(
            s.layers[2].rotation,
            Rotation::Every(Duration::from_secs(12 * 3600))
        );
        let r = s.layers[1].restrict.as_ref().unwrap();
        assert_eq!(r.days, Some(vec![Weekday::Sat, Weekday::Sun]));
        assert_eq!(r.from, NaiveTime::from_hms_opt(9, 0, 0));
        assert_eq!(r.to, NaiveTime::from_hms_opt(18, 0, 0));
        // CET is UTC+1. Nobody before 08:00 local (07:00Z), the earliest
        // handoff; then the unrestricted 12h layer beats the other two.
        assert_eq!(who(s, "2026-11-02 06:59:59"), None);
        assert_eq!(who(s, "2026-11-02 07:00"), Some("erin".into()));
        assert_eq!(who(s, "2026-11-02 08:00"), Some("erin".into()));
        assert_eq!(who(s, "2026-11-02 19:00"), Some("frank".into()));
        assert_eq!(who(s, "2026-11-07 12:00"), Some("erin".into()));
        assert_eq!(who(s, "2026-11-24 08:00"), Some("zoe".into()));
        // 553 h after erin's first handoff: shift 46, erin's.
        assert_eq!(who(s, "2026-11-25 08:00"), Some("erin".into()));
        let people: Vec<_> = s.people().into_iter().collect();
        assert_eq!(
            people,
            ["alice", "bob", "carol", "dave", "erin", "frank", "zoe"]
        );
    }

    #[test]
    fn deserializes_like_the_config_loader_does() {
        // The loader parses the file into a DeTable and hands one table to
        // `OnCallSchedule::deserialize` as a ValueDeserializer.
        let text = r#"
[oncall.primary]
timezone = "Europe/Berlin"
layers = [ { members = ["alice", "bob"], rotation = "weekly", handoff = 2026-11-02T09:00,
             restrict = { from = 08:00, to = "20:00" } } ]
"#;
        let root = toml::de::DeTable::parse(text).unwrap().into_inner();
        let oncall = root.get("oncall").unwrap().get_ref();
        let toml::de::DeValue::Table(oncall) = oncall else {
            panic!("{oncall:?}")
        };
        let table = oncall.get("primary").unwrap().clone();
        let settings: toml::de::ValueDeserializer<'_> = table.into();
        let s = OnCallSchedule::deserialize(settings).unwrap();
        s.validate().unwrap();
        assert_eq!(who(&s, "2026-11-09 08:00"), Some("bob".into()));
        assert_eq!(who(&s, "2026-11-09 19:00"), None);

        // And through a toml::Value, as a caller holding a parsed file might.
        let value: toml::Value = toml::from_str(text).unwrap();
        let s = OnCallSchedule::deserialize(value["oncall"]["primary"].clone()).unwrap();
        assert_eq!(who(&s, "2026-11-09 08:00"), Some("bob".into()));
        let err = OnCallSchedule::deserialize(
            toml::from_str::<toml::Value>("timezone = \"UTC\"\nlayers = [ { members = [\"a\"], rotation = \"daily\", handoff = \"2026-11-02T09:00\", restrict = { to = \"24:00\" } } ]")
                .unwrap(),
        )
        .unwrap_err();
        assert!(err.to_string().contains(r#"invalid time "24:00""#), "{err}");
    }

    #[test]
    fn weekly_rotation_goes_in_order_and_wraps() {
        let s = parse(
            r#"
timezone = "Europe/Berlin"
layers = [ { members = ["alice", "bob", "carol"], rotation = "weekly", handoff = "2026-11-02T09:00" } ]
"#,
        );
        // Monday 2026-11-02 09:00 CET = 08:00Z.
        assert_eq!(who(&s, "2026-11-02 07:59:59"), None);
        assert_eq!(who(&s, "2026-11-02 08:00"), Some("alice".into()));
        assert_eq!(who(&s, "2026-11-05 12:00"), Some("alice".into()));
        assert_eq!(who(&s, "2026-11-09 07:59:59"), Some("alice".into()));
        assert_eq!(who(&s, "2026-11-09 08:00"), Some("bob".into()));
        assert_eq!(who(&s, "2026-11-16 08:00"), Some("carol".into()));
        assert_eq!(who(&s, "2026-11-23 07:59"), Some("carol".into()));
        assert_eq!(who(&s, "2026-11-23 08:00"), Some("alice".into()));
        assert_eq!(who(&s, "2026-11-30 08:00"), Some("bob".into()));
        // Week 21 (2027-03-29, after the switch to CEST): 21 % 3 = 0, and
        // the handoff stays at 09:00 local, now 07:00Z.
        assert_eq!(who(&s, "2027-03-29 06:59:59"), Some("carol".into()));
        assert_eq!(who(&s, "2027-03-29 07:00"), Some("alice".into()));
        // Week 20 began 2027-03-22 09:00 CET: the week holding the change
        // to summer time is an hour short, 167 hours.
        let weeks = s.shifts(utc("2027-03-22 08:00"), utc("2027-04-05 07:00"));
        assert_eq!(
            weeks,
            vec![
                shift(Some("carol"), "2027-03-22 08:00", "2027-03-29 07:00"),
                shift(Some("alice"), "2027-03-29 07:00", "2027-04-05 07:00"),
            ]
        );
        assert_eq!(hours(&weeks[0]), 7 * 24 - 1);
    }

    #[test]
    fn daily_rotation_keeps_local_handoff_across_berlin_dst() {
        // Spring: 2026-03-29 02:00 CET -> 03:00 CEST (01:00Z).
        let s = parse(
            r#"
timezone = "Europe/Berlin"
layers = [ { members = ["alice", "bob"], rotation = "daily", handoff = "2026-03-27T09:00" } ]
"#,
        );
        let shifts = s.shifts(utc("2026-03-27 08:00"), utc("2026-03-31 07:00"));
        assert_eq!(
            shifts,
            vec![
                shift(Some("alice"), "2026-03-27 08:00", "2026-03-28 08:00"),
                shift(Some("bob"), "2026-03-28 08:00", "2026-03-29 07:00"),
                shift(Some("alice"), "2026-03-29 07:00", "2026-03-30 07:00"),
                shift(Some("bob"), "2026-03-30 07:00", "2026-03-31 07:00"),
            ]
        );
        assert_eq!(
            shifts.iter().map(hours).collect::<Vec<_>>(),
            [24, 23, 24, 24]
        );
        assert_eq!(who(&s, "2026-03-29 06:59:59"), Some("bob".into()));
        assert_eq!(who(&s, "2026-03-29 07:00"), Some("alice".into()));

        // Autumn: 2026-10-25 03:00 CEST -> 02:00 CET (01:00Z).
        let s = parse(
            r#"
timezone = "Europe/Berlin"
layers = [ { members = ["alice", "bob"], rotation = "daily", handoff = "2026-10-23T09:00" } ]
"#,
        );
        let shifts = s.shifts(utc("2026-10-23 07:00"), utc("2026-10-27 08:00"));
        assert_eq!(
            shifts,
            vec![
                shift(Some("alice"), "2026-10-23 07:00", "2026-10-24 07:00"),
                shift(Some("bob"), "2026-10-24 07:00", "2026-10-25 08:00"),
                shift(Some("alice"), "2026-10-25 08:00", "2026-10-26 08:00"),
                shift(Some("bob"), "2026-10-26 08:00", "2026-10-27 08:00"),
            ]
        );
        assert_eq!(
            shifts.iter().map(hours).collect::<Vec<_>>(),
            [24, 25, 24, 24]
        );
        assert_eq!(who(&s, "2026-10-25 07:59:59"), Some("bob".into()));
        assert_eq!(who(&s, "2026-10-25 08:00"), Some("alice".into()));
    }

    #[test]
    fn daily_rotation_keeps_local_handoff_across_new_york_dst() {
        // 2026-03-08 02:00 EST -> 03:00 EDT (07:00Z).
        let s = parse(
            r#"
timezone = "America/New_York"
layers = [ { members = ["alice", "bob"], rotation = "daily", handoff = "2026-03-07T09:00" } ]
"#,
        );
        assert_eq!(s.timezone(), zone("America/New_York"));
        let shifts = s.shifts(utc("2026-03-07 14:00"), utc("2026-03-09 13:00"));
        assert_eq!(
            shifts,
            vec![
                shift(Some("alice"), "2026-03-07 14:00", "2026-03-08 13:00"),
                shift(Some("bob"), "2026-03-08 13:00", "2026-03-09 13:00"),
            ]
        );
        assert_eq!(shifts.iter().map(hours).collect::<Vec<_>>(), [23, 24]);

        // 2026-11-01 02:00 EDT -> 01:00 EST (06:00Z).
        let s = parse(
            r#"
timezone = "America/New_York"
layers = [ { members = ["alice", "bob"], rotation = "daily", handoff = "2026-10-31T09:00" } ]
"#,
        );
        let shifts = s.shifts(utc("2026-10-31 13:00"), utc("2026-11-02 14:00"));
        assert_eq!(
            shifts,
            vec![
                shift(Some("alice"), "2026-10-31 13:00", "2026-11-01 14:00"),
                shift(Some("bob"), "2026-11-01 14:00", "2026-11-02 14:00"),
            ]
        );
        assert_eq!(shifts.iter().map(hours).collect::<Vec<_>>(), [25, 24]);
        assert_eq!(who(&s, "2026-11-01 13:59:59"), Some("alice".into()));
    }

    #[test]
    fn handoff_in_the_spring_forward_gap_is_the_end_of_the_gap() {
        // 02:30 does not exist on 2026-03-29 in Berlin: the first shift
        // starts at 03:00 CEST (01:00Z); the next at 02:30 CEST (00:30Z).
        let s = parse(
            r#"
timezone = "Europe/Berlin"
layers = [ { members = ["alice", "bob"], rotation = "daily", handoff = "2026-03-29T02:30" } ]
"#,
        );
        assert_eq!(who(&s, "2026-03-29 00:59:59"), None);
        assert_eq!(who(&s, "2026-03-29 01:00"), Some("alice".into()));
        assert_eq!(
            s.shifts(utc("2026-03-29 00:00"), utc("2026-03-31 00:30")),
            vec![
                shift(None, "2026-03-29 00:00", "2026-03-29 01:00"),
                shift(Some("alice"), "2026-03-29 01:00", "2026-03-30 00:30"),
                shift(Some("bob"), "2026-03-30 00:30", "2026-03-31 00:30"),
            ]
        );

        // The same in New York: 02:30 on 2026-03-08 -> 03:00 EDT (07:00Z).
        let s = parse(
            r#"
timezone = "America/New_York"
layers = [ { members = ["alice"], rotation = "12h", handoff = "2026-03-08T02:30" } ]
"#,
        );
        assert_eq!(who(&s, "2026-03-08 06:59:59"), None);
        assert_eq!(who(&s, "2026-03-08 07:00"), Some("alice".into()));
    }

    #[test]
    fn repeated_handoff_time_is_its_first_occurrence() {
        // 02:30 happens twice on 2026-10-25 in Berlin: first at 02:30 CEST
        // (00:30Z). The next handoff is 02:30 CET (01:30Z): a 25 h shift.
        let s = parse(
            r#"
timezone = "Europe/Berlin"
layers = [ { members = ["alice", "bob"], rotation = "daily", handoff = "2026-10-25T02:30" } ]
"#,
        );
        assert_eq!(who(&s, "2026-10-25 00:29:59"), None);
        assert_eq!(who(&s, "2026-10-25 00:30"), Some("alice".into()));
        assert_eq!(who(&s, "2026-10-26 01:29:59"), Some("alice".into()));
        assert_eq!(who(&s, "2026-10-26 01:30"), Some("bob".into()));
    }

    #[test]
    fn duration_rotation_is_elapsed_time_across_dst() {
        // 08:00 CET = 07:00Z; every 12 h in UTC, so after the change the
        // handoffs are at 09:00 and 21:00 CEST.
        let s = parse(
            r#"
timezone = "Europe/Berlin"
layers = [ { members = ["erin", "frank"], rotation = "12h", handoff = "2026-03-28T08:00" } ]
"#,
        );
        assert_eq!(who(&s, "2026-03-28 06:59"), None);
        assert_eq!(who(&s, "2026-03-28 07:00"), Some("erin".into()));
        assert_eq!(who(&s, "2026-03-28 19:00"), Some("frank".into()));
        // 08:00 CEST is 06:00Z: still frank's shift.
        assert_eq!(who(&s, "2026-03-29 06:00"), Some("frank".into()));
        assert_eq!(who(&s, "2026-03-29 06:59:59"), Some("frank".into()));
        assert_eq!(who(&s, "2026-03-29 07:00"), Some("erin".into()));
        let shifts = s.shifts(utc("2026-03-28 07:00"), utc("2026-03-30 07:00"));
        assert_eq!(shifts.len(), 4);
        assert!(shifts.iter().all(|sh| hours(sh) == 12), "{shifts:#?}");
        assert_eq!(
            shifts[2],
            shift(Some("erin"), "2026-03-29 07:00", "2026-03-29 19:00")
        );

        // "1d" is 24 elapsed hours, not "daily": 09:00 CET, then 10:00 CEST.
        let s = parse(
            r#"
timezone = "Europe/Berlin"
layers = [ { members = ["alice", "bob"], rotation = "1d", handoff = "2026-03-28T09:00" } ]
"#,
        );
        assert_eq!(who(&s, "2026-03-29 07:59"), Some("alice".into()));
        assert_eq!(who(&s, "2026-03-29 08:00"), Some("bob".into()));
    }

    #[test]
    fn restricted_layer_wins_only_inside_its_window() {
        let s = parse(WEEKDAYS_AND_WEEKENDS);
        // Saturday 2026-11-07, CET: dave from 09:00 (08:00Z) to 18:00 (17:00Z).
        assert_eq!(who(&s, "2026-11-07 07:59:59"), Some("alice".into()));
        assert_eq!(who(&s, "2026-11-07 08:00"), Some("dave".into()));
        assert_eq!(who(&s, "2026-11-07 16:59:59"), Some("dave".into()));
        assert_eq!(who(&s, "2026-11-07 17:00"), Some("alice".into()));
        assert_eq!(who(&s, "2026-11-08 11:00"), Some("dave".into()));
        // Not on weekdays, whoever's daily shift it is.
        assert_eq!(who(&s, "2026-11-06 11:00"), Some("alice".into()));
        assert_eq!(who(&s, "2026-11-09 11:00"), Some("bob".into()));
        // Before dave's first handoff his window does nothing.
        let early = parse(
            r#"
timezone = "Europe/Berlin"
layers = [
  { members = ["alice"], rotation = "weekly", handoff = "2026-11-02T09:00" },
  { members = ["dave"], rotation = "daily", handoff = "2026-11-07T12:00",
    restrict = { days = ["sat", "sun"], from = "09:00", to = "18:00" } },
]
"#,
        );
        assert_eq!(
            early.shifts(utc("2026-11-07 00:00"), utc("2026-11-08 00:00")),
            vec![
                shift(Some("alice"), "2026-11-07 00:00", "2026-11-07 11:00"),
                shift(Some("dave"), "2026-11-07 11:00", "2026-11-07 17:00"),
                shift(Some("alice"), "2026-11-07 17:00", "2026-11-08 00:00"),
            ]
        );
    }

    #[test]
    fn restricted_window_keeps_the_rotation_owner() {
        // Two members rotating daily at 12:00 with a 09:00-18:00 window: the
        // morning belongs to yesterday's owner, the afternoon to today's.
        let s = parse(
            r#"
timezone = "UTC"
layers = [ { members = ["a", "b"], rotation = "daily", handoff = "2026-11-02T12:00",
             restrict = { from = "09:00", to = "18:00" } } ]
"#,
        );
        assert_eq!(
            s.shifts(utc("2026-11-03 00:00"), utc("2026-11-04 00:00")),
            vec![
                shift(None, "2026-11-03 00:00", "2026-11-03 09:00"),
                shift(Some("a"), "2026-11-03 09:00", "2026-11-03 12:00"),
                shift(Some("b"), "2026-11-03 12:00", "2026-11-03 18:00"),
                shift(None, "2026-11-03 18:00", "2026-11-04 00:00"),
            ]
        );
    }

    #[test]
    fn overnight_window_belongs_to_the_day_it_starts() {
        let s = parse(
            r#"
timezone = "Europe/Berlin"
layers = [
  { members = ["alice"], rotation = "weekly", handoff = "2026-11-02T09:00" },
  { members = ["nora"], rotation = "daily", handoff = "2026-11-02T00:00",
    restrict = { days = ["fri"], from = "22:00", to = "06:00" } },
]
"#,
        );
        // Friday 2026-11-06 22:00 CET (21:00Z) to Saturday 06:00 (05:00Z).
        assert_eq!(who(&s, "2026-11-06 20:59:59"), Some("alice".into()));
        assert_eq!(who(&s, "2026-11-06 21:00"), Some("nora".into()));
        assert_eq!(who(&s, "2026-11-06 23:30"), Some("nora".into()));
        assert_eq!(who(&s, "2026-11-07 04:59:59"), Some("nora".into()));
        assert_eq!(who(&s, "2026-11-07 05:00"), Some("alice".into()));
        // Saturday night and Thursday night are not Friday's.
        assert_eq!(who(&s, "2026-11-07 22:00"), Some("alice".into()));
        assert_eq!(who(&s, "2026-11-05 22:00"), Some("alice".into()));
        assert_eq!(who(&s, "2026-11-06 02:00"), Some("alice".into()));
        assert_tiles(&s, utc("2026-11-02 00:00"), utc("2026-11-16 00:00"));

        // Every night across the autumn change: Saturday 2026-10-24 22:00
        // CEST (20:00Z) to Sunday 06:00 CET (05:00Z) is 9 hours.
        let s = parse(
            r#"
timezone = "Europe/Berlin"
layers = [ { members = ["nora"], rotation = "weekly", handoff = "2026-10-01T00:00",
             restrict = { from = "22:00", to = "06:00" } } ]
"#,
        );
        assert_eq!(
            s.shifts(utc("2026-10-24 12:00"), utc("2026-10-25 12:00")),
            vec![
                shift(None, "2026-10-24 12:00", "2026-10-24 20:00"),
                shift(Some("nora"), "2026-10-24 20:00", "2026-10-25 05:00"),
                shift(None, "2026-10-25 05:00", "2026-10-25 12:00"),
            ]
        );
    }

    #[test]
    fn window_defaults_and_midnight_ends() {
        // Only `from`: until midnight. `to = "00:00"`: also until midnight.
        // `from == to`: a whole day from `from`.
        for restrict in [
            r#"{ days = ["sat"], from = "18:00" }"#,
            r#"{ days = ["sat"], from = "18:00", to = "00:00" }"#,
        ] {
            let s = parse(&format!(
                "timezone = \"UTC\"\nlayers = [ {{ members = [\"a\"], rotation = \"daily\", \
                 handoff = \"2026-11-01T00:00\", restrict = {restrict} }} ]"
            ));
            assert_eq!(
                s.shifts(utc("2026-11-07 00:00"), utc("2026-11-09 00:00")),
                vec![
                    shift(None, "2026-11-07 00:00", "2026-11-07 18:00"),
                    shift(Some("a"), "2026-11-07 18:00", "2026-11-08 00:00"),
                    shift(None, "2026-11-08 00:00", "2026-11-09 00:00"),
                ],
                "{restrict}"
            );
        }
        let s = parse(
            r#"
timezone = "UTC"
layers = [ { members = ["a"], rotation = "daily", handoff = "2026-11-01T00:00",
             restrict = { days = ["sat"], from = "09:00", to = "09:00" } } ]
"#,
        );
        assert_eq!(
            s.shifts(utc("2026-11-07 00:00"), utc("2026-11-09 00:00")),
            vec![
                shift(None, "2026-11-07 00:00", "2026-11-07 09:00"),
                shift(Some("a"), "2026-11-07 09:00", "2026-11-08 09:00"),
                shift(None, "2026-11-08 09:00", "2026-11-09 00:00"),
            ]
        );
        // Only `days`: the whole of those days.
        let s = parse(
            r#"
timezone = "UTC"
layers = [ { members = ["a"], rotation = "daily", handoff = "2026-11-01T00:00",
             restrict = { days = ["sun", "mon"] } } ]
"#,
        );
        assert_eq!(
            s.shifts(utc("2026-11-07 00:00"), utc("2026-11-11 00:00")),
            vec![
                shift(None, "2026-11-07 00:00", "2026-11-08 00:00"),
                shift(Some("a"), "2026-11-08 00:00", "2026-11-10 00:00"),
                shift(None, "2026-11-10 00:00", "2026-11-11 00:00"),
            ]
        );
    }

    #[test]
    fn later_layer_beats_earlier_and_falls_back_outside_its_shifts() {
        let s = parse(
            r#"
timezone = "UTC"
layers = [
  { members = ["a"], rotation = "daily", handoff = "2026-11-01T00:00" },
  { members = ["b"], rotation = "daily", handoff = "2026-11-03T00:00" },
  { members = ["c"], rotation = "daily", handoff = "2026-11-05T00:00",
    restrict = { from = "10:00", to = "11:00" } },
]
"#,
        );
        assert_eq!(who(&s, "2026-10-31 23:59:59"), None);
        assert_eq!(who(&s, "2026-11-01 00:00"), Some("a".into()));
        assert_eq!(who(&s, "2026-11-02 10:30"), Some("a".into()));
        assert_eq!(who(&s, "2026-11-03 00:00"), Some("b".into()));
        assert_eq!(who(&s, "2026-11-04 10:30"), Some("b".into()));
        assert_eq!(who(&s, "2026-11-05 10:30"), Some("c".into()));
        assert_eq!(who(&s, "2026-11-05 11:00"), Some("b".into()));
    }

    #[test]
    fn overrides_beat_layers_with_half_open_edges() {
        let s = parse(WEEKDAYS_AND_WEEKENDS);
        // Week 4 (k = 3, alice) began Monday 2026-11-23. zoe from Tuesday
        // 09:00 CET (08:00Z) to Wednesday 09:00 (08:00Z).
        assert_eq!(who(&s, "2026-11-24 07:59:59"), Some("alice".into()));
        assert_eq!(who(&s, "2026-11-24 08:00"), Some("zoe".into()));
        assert_eq!(who(&s, "2026-11-25 07:59:59"), Some("zoe".into()));
        assert_eq!(who(&s, "2026-11-25 08:00"), Some("alice".into()));

        // Overlapping overrides: the later entry wins where they overlap,
        // and an override beats a restricted layer inside its window.
        let s = parse(
            r#"
timezone = "Europe/Berlin"
layers = [
  { members = ["alice"], rotation = "weekly", handoff = "2026-11-02T09:00" },
  { members = ["dave"], rotation = "daily", handoff = "2026-11-02T18:00",
    restrict = { days = ["sat", "sun"], from = "09:00", to = "18:00" } },
]
overrides = [
  { who = "x", from = "2026-11-07T10:00", to = "2026-11-07T14:00" },
  { who = "y", from = "2026-11-07T12:00", to = "2026-11-07T13:00" },
]
"#,
        );
        assert_eq!(
            s.shifts(utc("2026-11-07 08:00"), utc("2026-11-07 17:00")),
            vec![
                shift(Some("dave"), "2026-11-07 08:00", "2026-11-07 09:00"),
                shift(Some("x"), "2026-11-07 09:00", "2026-11-07 11:00"),
                shift(Some("y"), "2026-11-07 11:00", "2026-11-07 12:00"),
                shift(Some("x"), "2026-11-07 12:00", "2026-11-07 13:00"),
                shift(Some("dave"), "2026-11-07 13:00", "2026-11-07 17:00"),
            ]
        );
        // Listed the other way round, the long one hides the short one.
        let mut swapped = s.clone();
        swapped.overrides.reverse();
        assert_eq!(
            swapped.shifts(utc("2026-11-07 08:00"), utc("2026-11-07 17:00")),
            vec![
                shift(Some("dave"), "2026-11-07 08:00", "2026-11-07 09:00"),
                shift(Some("x"), "2026-11-07 09:00", "2026-11-07 13:00"),
                shift(Some("dave"), "2026-11-07 13:00", "2026-11-07 17:00"),
            ]
        );
    }

    #[test]
    fn override_before_first_handoff_and_nobody_otherwise() {
        let s = parse(
            r#"
timezone = "UTC"
layers = [ { members = ["a", "b"], rotation = "weekly", handoff = "2026-11-02T09:00" } ]
overrides = [ { who = "z", from = "2026-11-01T00:00", to = "2026-11-01T06:00" } ]
"#,
        );
        assert_eq!(who(&s, "2026-10-31 23:59:59"), None);
        assert_eq!(who(&s, "2026-11-01 00:00"), Some("z".into()));
        assert_eq!(who(&s, "2026-11-01 06:00"), None);
        assert_eq!(who(&s, "2026-11-02 08:59:59"), None);
        assert_eq!(who(&s, "2026-11-02 09:00"), Some("a".into()));
        assert_eq!(who(&s, "2020-01-01 00:00"), None);
        assert_eq!(
            s.shifts(utc("2026-10-31 00:00"), utc("2026-11-02 10:00")),
            vec![
                shift(None, "2026-10-31 00:00", "2026-11-01 00:00"),
                shift(Some("z"), "2026-11-01 00:00", "2026-11-01 06:00"),
                shift(None, "2026-11-01 06:00", "2026-11-02 09:00"),
                shift(Some("a"), "2026-11-02 09:00", "2026-11-02 10:00"),
            ]
        );
    }

    #[test]
    fn shifts_over_fourteen_days_merge_clip_and_tile() {
        let s = parse(
            r#"
timezone = "Europe/Berlin"
layers = [
  { members = ["alice", "bob"], rotation = "weekly", handoff = "2026-11-02T09:00" },
  { members = ["dave"], rotation = "daily", handoff = "2026-11-02T18:00",
    restrict = { days = ["sat", "sun"], from = "09:00", to = "18:00" } },
]
overrides = [ { who = "zoe", from = "2026-11-10T12:00", to = "2026-11-11T12:00" } ]
"#,
        );
        let (from, to) = (utc("2026-11-01 00:00"), utc("2026-11-15 00:00"));
        // All CET (UTC+1); dave's daily handoffs and alice's weekly ones
        // inside a merged stretch leave no seam.
        assert_eq!(
            s.shifts(from, to),
            vec![
                shift(None, "2026-11-01 00:00", "2026-11-02 08:00"),
                shift(Some("alice"), "2026-11-02 08:00", "2026-11-07 08:00"),
                shift(Some("dave"), "2026-11-07 08:00", "2026-11-07 17:00"),
                shift(Some("alice"), "2026-11-07 17:00", "2026-11-08 08:00"),
                shift(Some("dave"), "2026-11-08 08:00", "2026-11-08 17:00"),
                shift(Some("alice"), "2026-11-08 17:00", "2026-11-09 08:00"),
                shift(Some("bob"), "2026-11-09 08:00", "2026-11-10 11:00"),
                shift(Some("zoe"), "2026-11-10 11:00", "2026-11-11 11:00"),
                shift(Some("bob"), "2026-11-11 11:00", "2026-11-14 08:00"),
                shift(Some("dave"), "2026-11-14 08:00", "2026-11-14 17:00"),
                shift(Some("bob"), "2026-11-14 17:00", "2026-11-15 00:00"),
            ]
        );
        assert_tiles(&s, from, to);
        // Clipped to a range inside one shift, or starting mid-shift.
        assert_eq!(
            s.shifts(utc("2026-11-03 12:00"), utc("2026-11-03 13:00")),
            vec![shift(Some("alice"), "2026-11-03 12:00", "2026-11-03 13:00")]
        );
        assert_eq!(
            s.shifts(utc("2026-11-10 12:30:15"), utc("2026-11-14 09:00")),
            vec![
                shift(Some("zoe"), "2026-11-10 12:30:15", "2026-11-11 11:00"),
                shift(Some("bob"), "2026-11-11 11:00", "2026-11-14 08:00"),
                shift(Some("dave"), "2026-11-14 08:00", "2026-11-14 09:00"),
            ]
        );
        // Empty or backwards ranges have no shifts.
        assert!(s.shifts(from, from).is_empty());
        assert!(s.shifts(to, from).is_empty());
    }

    #[test]
    fn shifts_tile_the_example_and_dst_schedules() {
        let file: BTreeMap<String, BTreeMap<String, OnCallSchedule>> =
            toml::from_str(EXAMPLE).unwrap();
        let s = &file["oncall"]["primary"];
        assert_tiles(s, utc("2026-11-01 00:00"), utc("2026-11-29 00:00"));
        // The example's 12h layer hands off 16 times in 8 days and nothing
        // else shows through it.
        let shifts = s.shifts(utc("2026-11-02 07:00"), utc("2026-11-10 07:00"));
        assert_eq!(shifts.len(), 16);
        assert!(shifts.iter().all(|sh| hours(sh) == 12));

        let dst = parse(
            r#"
timezone = "America/New_York"
layers = [
  { members = ["a", "b", "c"], rotation = "daily", handoff = "2026-02-26T01:30" },
  { members = ["n", "m"], rotation = "weekly", handoff = "2026-02-27T00:00",
    restrict = { days = ["sat", "sun"], from = "22:00", to = "02:30" } },
  { members = ["q", "r"], rotation = "90m", handoff = "2026-03-08T03:15",
    restrict = { days = ["sun"], from = "03:00", to = "05:00" } },
]
overrides = [ { who = "z", from = "2026-03-08T01:00", to = "2026-03-08T03:30" } ]
"#,
        );
        assert_tiles(&dst, utc("2026-02-25 00:00"), utc("2026-03-12 00:00"));
        assert_tiles(&dst, utc("2026-10-25 00:00"), utc("2026-11-08 00:00"));
    }

    #[test]
    fn shift_serializes_as_json() {
        let sh = shift(Some("alice"), "2026-11-02 08:00", "2026-11-09 08:00");
        assert_eq!(
            serde_json::to_value(&sh).unwrap(),
            serde_json::json!({
                "who": "alice",
                "start": "2026-11-02T08:00:00Z",
                "end": "2026-11-09T08:00:00Z",
            })
        );
        let none = shift(None, "2026-11-02 08:00", "2026-11-09 08:00");
        assert_eq!(
            serde_json::to_value(&none).unwrap()["who"],
            serde_json::Value::Null
        );
    }

    fn validate_err(body: &str) -> String {
        let s: OnCallSchedule = toml::from_str(body).unwrap();
        s.validate().unwrap_err()
    }

    #[test]
    fn validate_names_the_problem() {
        assert_eq!(
            validate_err("timezone = \"UTC\"\nlayers = []"),
            "layers: at least one layer is required"
        );
        assert_eq!(
            validate_err(
                r#"timezone = "UTC"
layers = [ { members = ["a"], rotation = "daily", handoff = "2026-11-02T09:00" },
           { members = [], rotation = "daily", handoff = "2026-11-02T09:00" } ]"#
            ),
            "layers[1].members: is empty"
        );
        assert_eq!(
            validate_err(
                r#"timezone = "UTC"
layers = [ { members = ["a", " "], rotation = "daily", handoff = "2026-11-02T09:00" } ]"#
            ),
            "layers[0].members[1]: is blank"
        );
        assert_eq!(
            validate_err(
                r#"timezone = "UTC"
layers = [ { members = ["a"], rotation = "30s", handoff = "2026-11-02T09:00" } ]"#
            ),
            "layers[0].rotation: \"30s\" is shorter than 1 minute"
        );
        assert_eq!(
            validate_err(
                r#"timezone = "UTC"
layers = [ { members = ["a"], rotation = "0s", handoff = "2026-11-02T09:00" } ]"#
            ),
            "layers[0].rotation: \"0s\" is shorter than 1 minute"
        );
        assert_eq!(
            validate_err(
                r#"timezone = "UTC"
layers = [ { members = ["a"], rotation = "daily", handoff = "2026-11-02T09:00",
             restrict = { days = [] } } ]"#
            ),
            "layers[0].restrict.days: is empty (leave it out for every day)"
        );
        assert_eq!(
            validate_err(
                r#"timezone = "UTC"
layers = [ { members = ["a"], rotation = "daily", handoff = "2026-11-02T09:00" } ]
overrides = [ { who = "z", from = "2026-11-01T00:00", to = "2026-11-01T06:00" },
              { who = "z", from = "2026-11-25T09:00", to = "2026-11-24T09:00" } ]"#
            ),
            "overrides[1]: from 2026-11-25T09:00 is not before to 2026-11-24T09:00"
        );
        assert_eq!(
            validate_err(
                r#"timezone = "UTC"
layers = [ { members = ["a"], rotation = "daily", handoff = "2026-11-02T09:00" } ]
overrides = [ { who = "z", from = "2026-11-01T00:00", to = "2026-11-01T00:00" } ]"#
            ),
            "overrides[0]: from 2026-11-01T00:00 is not before to 2026-11-01T00:00"
        );
        // Both ends in Berlin's spring gap are the same instant (03:00 CEST).
        assert_eq!(
            validate_err(
                r#"timezone = "Europe/Berlin"
layers = [ { members = ["a"], rotation = "daily", handoff = "2026-11-02T09:00" } ]
overrides = [ { who = "z", from = "2026-03-29T02:10", to = "2026-03-29T02:50" } ]"#
            ),
            "overrides[0]: from 2026-03-29T02:10 is not before to 2026-03-29T02:50"
        );
        assert_eq!(
            validate_err(
                r#"timezone = "UTC"
layers = [ { members = ["a"], rotation = "daily", handoff = "2026-11-02T09:00" } ]
overrides = [ { who = "", from = "2026-11-01T00:00", to = "2026-11-01T06:00" } ]"#
            ),
            "overrides[0].who: is blank"
        );
        // One minute is enough.
        let s: OnCallSchedule = toml::from_str(
            r#"timezone = "UTC"
layers = [ { members = ["a"], rotation = "1m", handoff = "2026-11-02T09:00" } ]"#,
        )
        .unwrap();
        s.validate().unwrap();
    }

    #[test]
    fn invalid_layers_never_answer_without_validate() {
        // Built without validate: no panic, no endless loop, just nobody.
        let s: OnCallSchedule = toml::from_str(
            r#"timezone = "UTC"
layers = [ { members = ["a"], rotation = "0s", handoff = "2026-11-02T09:00" },
           { members = [], rotation = "daily", handoff = "2026-11-02T09:00" } ]"#,
        )
        .unwrap();
        assert_eq!(who(&s, "2026-11-03 00:00"), None);
        assert_eq!(
            s.shifts(utc("2026-11-01 00:00"), utc("2026-11-05 00:00")),
            vec![shift(None, "2026-11-01 00:00", "2026-11-05 00:00")]
        );
    }

    #[test]
    fn serde_refuses_unknown_keys() {
        let layer = r#"members = ["a"], rotation = "daily", handoff = "2026-11-02T09:00""#;
        for (body, key) in [
            (format!("timezone = \"UTC\"\nzone = \"UTC\"\nlayers = [ {{ {layer} }} ]"), "zone"),
            (format!("timezone = \"UTC\"\nlayers = [ {{ {layer}, member = [\"b\"] }} ]"), "member"),
            (
                format!("timezone = \"UTC\"\nlayers = [ {{ {layer}, restrict = {{ day = [\"sat\"] }} }} ]"),
                "day",
            ),
            (
                format!(
                    "timezone = \"UTC\"\nlayers = [ {{ {layer} }} ]\n\
                     overrides = [ {{ whom = \"z\", from = \"2026-11-01T00:00\", to = \"2026-11-01T06:00\" }} ]"
                ),
                "whom",
            ),
        ] {
            let err = parse_err(&body);
            assert!(
                err.contains("unknown field") && err.contains(&format!("`{key}`")),
                "{key}: {err}"
            );
        }
    }

    #[test]
    fn serde_names_bad_values() {
        let with_layer =
            |layer: &str| format!("timezone = \"Europe/Berlin\"\nlayers = [ {layer} ]");
        let cases = [
            (
                with_layer(
                    r#"{ members = ["a"], rotation = "daily", handoff = "2026-11-02T09:00",
                         restrict = { from = "25:00" } }"#,
                ),
                r#"invalid time "25:00""#,
            ),
            (
                with_layer(
                    r#"{ members = ["a"], rotation = "daily", handoff = "2026-11-02T09:00",
                         restrict = { to = "9am" } }"#,
                ),
                r#"invalid time "9am": expected HH:MM"#,
            ),
            (
                with_layer(
                    r#"{ members = ["a"], rotation = "daily", handoff = "2026-11-02T09:00",
                         restrict = { from = "12:60" } }"#,
                ),
                r#"invalid time "12:60""#,
            ),
            (
                with_layer(
                    r#"{ members = ["a"], rotation = "daily", handoff = "2026-11-02T09:00",
                         restrict = { days = ["sat", "funday"] } }"#,
                ),
                r#"invalid day "funday""#,
            ),
            (
                with_layer(r#"{ members = ["a"], rotation = "daily", handoff = "2026-11-02 9:00" }"#),
                r#"invalid date-time "2026-11-02 9:00""#,
            ),
            (
                with_layer(r#"{ members = ["a"], rotation = "daily", handoff = "2026-02-30T09:00" }"#),
                r#"invalid date-time "2026-02-30T09:00": no such date or time"#,
            ),
            (
                with_layer(r#"{ members = ["a"], rotation = "daily", handoff = "2026-11-02T09:00+01:00" }"#),
                "no offset",
            ),
            (
                with_layer(r#"{ members = ["a"], rotation = "fortnightly", handoff = "2026-11-02T09:00" }"#),
                r#"invalid rotation "fortnightly""#,
            ),
            (
                with_layer(r#"{ members = ["a"], rotation = "daily" }"#),
                "missing field `handoff`",
            ),
            (
                "timezone = \"Europe/Berln\"\nlayers = []".to_string(),
                r#"unknown time zone "Europe/Berln""#,
            ),
            ("layers = []".to_string(), "missing field `timezone`"),
            (
                format!(
                    "{}\noverrides = [ {{ who = \"z\", from = \"2026-11-24T09:00\", to = \"tomorrow\" }} ]",
                    with_layer(r#"{ members = ["a"], rotation = "daily", handoff = "2026-11-02T09:00" }"#)
                ),
                r#"invalid date-time "tomorrow""#,
            ),
        ];
        for (body, expected) in cases {
            let err = parse_err(&body);
            assert!(err.contains(expected), "expected {expected:?} in: {err}");
        }
    }

    #[test]
    fn unquoted_toml_datetimes_and_times_are_accepted() {
        let s = parse(
            r#"
timezone = "Europe/Berlin"
layers = [ { members = ["a"], rotation = "daily", handoff = 2026-11-02T09:00,
             restrict = { days = ["Saturday", "SUN"], from = 09:00, to = 18:00:00 } } ]
overrides = [ { who = "z", from = 2026-11-24T09:00:00, to = 2026-11-25 09:00 } ]
"#,
        );
        assert_eq!(
            s.layers[0].handoff,
            NaiveDate::from_ymd_opt(2026, 11, 2)
                .unwrap()
                .and_hms_opt(9, 0, 0)
                .unwrap()
        );
        let r = s.layers[0].restrict.as_ref().unwrap();
        assert_eq!(r.days, Some(vec![Weekday::Sat, Weekday::Sun]));
        assert_eq!(r.to, NaiveTime::from_hms_opt(18, 0, 0));
        assert_eq!(who(&s, "2026-11-24 08:00"), Some("z".into()));
        // An offset date-time or a bare date is refused by name.
        let err = parse_err(
            r#"timezone = "UTC"
layers = [ { members = ["a"], rotation = "daily", handoff = 2026-11-02T09:00:00Z } ]"#,
        );
        assert!(err.contains("no offset"), "{err}");
        let err = parse_err(
            r#"timezone = "UTC"
layers = [ { members = ["a"], rotation = "daily", handoff = 2026-11-02 } ]"#,
        );
        assert!(err.contains(r#"invalid date-time "2026-11-02""#), "{err}");
        let err = parse_err(
            r#"timezone = "UTC"
layers = [ { members = ["a"], rotation = "daily", handoff = 42 } ]"#,
        );
        assert!(err.contains("a local date-time"), "{err}");
    }

    #[test]
    fn people_lists_members_and_override_names_once() {
        let s = parse(
            r#"
timezone = "UTC"
layers = [
  { members = ["bob", "alice"], rotation = "weekly", handoff = "2026-11-02T09:00" },
  { members = ["alice", "carol"], rotation = "daily", handoff = "2026-11-02T09:00" },
]
overrides = [ { who = "zoe", from = "2026-11-24T09:00", to = "2026-11-25T09:00" },
              { who = "bob", from = "2026-11-26T09:00", to = "2026-11-27T09:00" } ]
"#,
        );
        assert_eq!(
            s.people().into_iter().collect::<Vec<_>>(),
            ["alice", "bob", "carol", "zoe"]
        );
    }
}
