//! `[maintenance.NAME]` tables of schedules.toml: when alerts are silenced
//! and which.
//!
//! ```toml
//! [maintenance.patch-sunday]           # recurring: a cron start, a duration
//! cron = "0 2 * * SUN"
//! duration = "2h"
//! timezone = "Europe/Berlin"           # default UTC
//! match = ["system:service:*", "job:backup"]
//!
//! [maintenance.db-migration]           # one-off: start and end
//! start = "2026-12-12T22:00"           # local time in `timezone`, or RFC 3339
//! end = "2026-12-13T01:00"
//! match = ["system:service:db"]
//! ```
//!
//! This file owns reading the tables and pointing problems at
//! file:line:column; when a window is open is the schedule module's
//! [`Window`], what it does to an alert `ops_worker_jobs::silence`'s.

use std::time::Duration;

use chrono::{DateTime, Utc};
use ops_worker_jobs::tz::Tz;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::cx::{Cx, Span};
use super::{keys, Section};
use crate::schedule::{CronSyntaxError, Schedule, Window};

/// The keys a `[maintenance.NAME]` table may have.
const KEYS: &[&str] = &["cron", "duration", "timezone", "start", "end", "match"];

/// One `[maintenance.NAME]` table.
#[derive(Debug, Clone)]
pub struct MaintenanceWindow {
    pub name: String,
    pub window: Window,
    /// The zone `cron`, `start` and `end` are read in (UTC by default).
    pub timezone: Tz,
    /// Fingerprint globs of the alerts it silences.
    pub matches: Vec<String>,
}

type Entry<'a> = Spanned<DeValue<'a>>;

impl Cx<'_> {
    /// The `[maintenance]` table, in name order.
    pub(super) fn maintenance(&mut self, table: DeTable<'_>) -> Vec<MaintenanceWindow> {
        let mut windows = Vec::new();
        for (name, name_span, t) in self.named(table, Section::Maintenance, "[maintenance.NAME]") {
            if let Some(w) = self.maintenance_window(&name, name_span, t) {
                windows.push(w);
            }
        }
        windows.sort_by(|a, b| a.name.cmp(&b.name));
        windows
    }

    fn maintenance_window(
        &mut self,
        name: &str,
        name_span: Span,
        table: DeTable<'_>,
    ) -> Option<MaintenanceWindow> {
        let before = self.problems.len();
        let section = Section::Maintenance(name.to_string());
        let at = |cx: &mut Cx<'_>, span: Span, key: Option<&str>, msg: String| {
            cx.problem_in(span, Some(section.clone()), key, msg)
        };
        let (mut cron, mut duration, mut timezone): (Option<Entry>, Option<Entry>, Option<Entry>) =
            (None, None, None);
        let (mut start, mut end, mut matches): (Option<Entry>, Option<Entry>, Option<Entry>) =
            (None, None, None);
        // Keys taken for misspellings: not also reported as missing.
        let mut meant = Vec::new();
        for (key, value) in table {
            match key.get_ref().as_ref() {
                "cron" => cron = Some(value),
                "duration" => duration = Some(value),
                "timezone" => timezone = Some(value),
                "start" => start = Some(value),
                "end" => end = Some(value),
                "match" => matches = Some(value),
                other => {
                    meant.extend(keys::nearest(other, KEYS));
                    at(self, key.span(), None, keys::unknown_key(other, "", KEYS));
                }
            }
        }

        let tz = match &timezone {
            None => Some(Tz::UTC),
            Some(v) => self.section_string(&section, "timezone", v).and_then(|s| {
                s.parse::<Tz>().ok().or_else(|| {
                    let msg = format!("unknown time zone {s:?} (use an IANA name such as \"Europe/Berlin\" or \"UTC\")");
                    at(self, v.span(), Some("timezone"), msg);
                    None
                })
            }),
        };

        let window = match (&cron, &start) {
            (Some(c), Some(_)) => {
                at(
                    self,
                    c.span(),
                    None,
                    "set either \"cron\" and \"duration\" (a recurring window) or \"start\" and \"end\" (a one-off), not both".into(),
                );
                None
            }
            (None, None) => {
                if !meant.iter().any(|k| ["cron", "start"].contains(k)) {
                    at(
                        self,
                        name_span.clone(),
                        None,
                        "missing schedule: set \"cron\" and \"duration\" (a recurring window) or \"start\" and \"end\" (a one-off)".into(),
                    );
                }
                None
            }
            (Some(c), None) => {
                if let Some(e) = &end {
                    let msg = "\"end\" is for a one-off window: a recurring one takes \"duration\"";
                    at(self, e.span(), Some("end"), msg.into());
                }
                let schedule =
                    self.section_string(&section, "cron", c)
                        .and_then(|expr| match Schedule::cron(&expr, tz.unwrap_or(Tz::UTC)) {
                            Ok(s) => Some(s),
                            Err(CronSyntaxError::NeverFires(why)) => {
                                at(
                                    self,
                                    c.span(),
                                    Some("cron"),
                                    format!("cron {expr:?} never fires: {why}"),
                                );
                                None
                            }
                            Err(e) => {
                                at(
                                    self,
                                    c.span(),
                                    Some("cron"),
                                    format!("invalid cron {expr:?}: {e}"),
                                );
                                None
                            }
                        });
                let length = match &duration {
                    None => {
                        if !meant.contains(&"duration") {
                            at(self, name_span.clone(), None, "missing key \"duration\": how long each occurrence lasts, e.g. \"2h\"".into());
                        }
                        None
                    }
                    Some(v) => self.window_duration(&section, v),
                };
                match (schedule, length) {
                    (Some(start), Some(duration)) => Some(Window::Recurring { start, duration }),
                    _ => None,
                }
            }
            (None, Some(s)) => {
                if let Some(d) = &duration {
                    let msg = "\"duration\" is for a recurring window: a one-off one takes \"end\"";
                    at(self, d.span(), Some("duration"), msg.into());
                }
                let tz = tz.unwrap_or(Tz::UTC);
                let from = self.instant(&section, "start", s, tz);
                let until = match &end {
                    None => {
                        if !meant.contains(&"end") {
                            at(
                                self,
                                name_span.clone(),
                                None,
                                "missing key \"end\": when the window closes".into(),
                            );
                        }
                        None
                    }
                    Some(e) => self.instant(&section, "end", e, tz),
                };
                match (from, until) {
                    (Some(from), Some(until)) if until <= from => {
                        let e = end.as_ref().map(|e| e.span()).unwrap_or(name_span.clone());
                        let msg = format!(
                            "end {} is not after start {}",
                            until.format("%Y-%m-%d %H:%M:%SZ"),
                            from.format("%Y-%m-%d %H:%M:%SZ")
                        );
                        at(self, e, Some("end"), msg);
                        None
                    }
                    (Some(start), Some(end)) => Some(Window::Once { start, end }),
                    _ => None,
                }
            }
        };

        let globs = match &matches {
            None => {
                if !meant.contains(&"match") {
                    at(self, name_span, None, "missing key \"match\": the fingerprint globs it silences, e.g. [\"system:service:api\", \"job:*\"]".into());
                }
                None
            }
            Some(v) => self.globs(&section, v),
        };

        if self.problems.len() > before {
            return None;
        }
        Some(MaintenanceWindow {
            name: name.to_string(),
            window: window?,
            timezone: tz?,
            matches: globs?,
        })
    }

    fn section_string(&mut self, section: &Section, key: &str, v: &Entry) -> Option<String> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            other => {
                let msg = format!("expected a string, found {}", other.type_str());
                self.problem_in(v.span(), Some(section.clone()), Some(key), msg);
                None
            }
        }
    }

    /// `start` or `end`: RFC 3339 with an offset, or a local date-time in `tz`
    /// (a string, or a TOML date-time without an offset).
    fn instant(
        &mut self,
        section: &Section,
        key: &str,
        v: &Entry,
        tz: Tz,
    ) -> Option<DateTime<Utc>> {
        let text = match v.get_ref() {
            DeValue::Datetime(d) => d.to_string(),
            _ => self.section_string(section, key, v)?,
        };
        if let Ok(t) = DateTime::parse_from_rfc3339(text.trim()) {
            return Some(t.to_utc());
        }
        match ops_worker_jobs::oncall::parse_local_datetime(&text) {
            Ok(local) => Some(ops_worker_jobs::localtime::instant(tz, local)),
            Err(_) => {
                let msg = format!("invalid date-time {text:?}: expected RFC 3339 (2026-12-12T22:00:00Z) or a local YYYY-MM-DDTHH:MM in the window's timezone");
                self.problem_in(v.span(), Some(section.clone()), Some(key), msg);
                None
            }
        }
    }

    /// `duration`: a humantime duration of more than 0s.
    fn window_duration(&mut self, section: &Section, v: &Entry) -> Option<Duration> {
        let s = self.section_string(section, "duration", v)?;
        let msg = match humantime::parse_duration(s.trim()) {
            Ok(d) if !d.is_zero() => return Some(d),
            Ok(_) => "must be more than 0s".to_string(),
            Err(e) => {
                format!("invalid duration {s:?}: {e} (examples: \"30m\", \"2h\", \"1h 30m\")")
            }
        };
        self.problem_in(v.span(), Some(section.clone()), Some("duration"), msg);
        None
    }

    /// `match`: a non-empty list of valid fingerprint globs.
    fn globs(&mut self, section: &Section, v: &Entry) -> Option<Vec<String>> {
        let DeValue::Array(items) = v.get_ref() else {
            let msg = "expected a list of fingerprint globs, e.g. [\"system:service:api\"]";
            self.problem_in(v.span(), Some(section.clone()), Some("match"), msg);
            return None;
        };
        if items.is_empty() {
            let msg = "name at least one fingerprint glob (\"*\" silences every alert)";
            self.problem_in(v.span(), Some(section.clone()), Some("match"), msg);
            return None;
        }
        let mut globs = Vec::new();
        for item in items {
            let glob = self.section_string(section, "match", item)?;
            if let Err(msg) = ops_worker_jobs::silence::check_glob(&glob) {
                self.problem_in(item.span(), Some(section.clone()), Some("match"), msg);
                return None;
            }
            globs.push(glob);
        }
        Some(globs)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::{Config, ConfigError};
    use crate::schedule::Window;

    const JOB: &str = "[jobs.a]\nkind = \"command\"\nevery = \"1h\"\ncommand = [\"true\"]\n";

    fn parse(windows: &str) -> Result<Config, ConfigError> {
        Config::parse(
            Path::new("schedules.toml"),
            &format!("{windows}{JOB}"),
            &|_| None,
        )
    }

    fn problems(windows: &str) -> Vec<String> {
        match parse(windows) {
            Err(ConfigError::Invalid { problems }) => {
                problems.iter().map(ToString::to_string).collect()
            }
            other => panic!("expected problems, got {other:?}"),
        }
    }

    fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn recurring_and_one_off_windows_parse() {
        let c = parse(
            "[maintenance.sunday]\ncron = \"0 2 * * SUN\"\nduration = \"2h\"\n\
             timezone = \"Europe/Berlin\"\nmatch = [\"system:service:*\"]\n\
             [maintenance.once]\nstart = \"2026-12-12T22:00\"\nend = 2026-12-13T01:00:00\n\
             timezone = \"Europe/Berlin\"\nmatch = [\"job:backup\", \"*\"]\n\
             [maintenance.utc]\nstart = \"2026-12-12T22:00:00Z\"\nend = \"2026-12-13T00:00:00+01:00\"\n\
             match = [\"*\"]\n",
        )
        .unwrap();
        let names: Vec<_> = c.maintenance.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["once", "sunday", "utc"]);
        assert!(matches!(c.maintenance[1].window, Window::Recurring { .. }));
        // Local times in Berlin (CET, UTC+1).
        match c.maintenance[0].window {
            Window::Once { start, end } => {
                assert_eq!(start, at("2026-12-12T21:00:00Z"));
                assert_eq!(end, at("2026-12-13T00:00:00Z"));
            }
            ref w => panic!("{w:?}"),
        }
        assert_eq!(c.maintenance[0].matches, ["job:backup", "*"]);
        // Through the timeline: which windows are open when.
        let open = ops_worker_jobs::Timeline::open_windows(&c, at("2026-12-12T22:30:00Z"));
        let open: Vec<_> = open.iter().map(|w| (w.name.as_str(), w.until)).collect();
        assert_eq!(
            open,
            [
                ("once", at("2026-12-13T00:00:00Z")),
                ("utc", at("2026-12-12T23:00:00Z"))
            ]
        );
    }

    #[test]
    fn problems_point_at_the_key_with_its_section() {
        assert_eq!(
            problems(
                "[maintenance.w]\ncron = \"0 2 * *\"\nduratoin = \"2h\"\nmatch = [\"job:?\"]\n\
                 [maintenance.o]\nstart = \"2026-12-13T01:00\"\nend = \"2026-12-12T22:00\"\nmatch = [\"*\"]\n\
                 [maintenance.z]\ncron = \"0 2 * * *\"\nduration = \"0s\"\nmatch = []\n\
                 [maintenance.t]\nstart = \"tomorrow\"\nend = \"2026-12-12T22:00\"\ntimezone = \"Mars/Base\"\nmatch = [\"a b\"]\n"
            ),
            [
                "schedules.toml:2:8: maintenance \"w\": cron: invalid cron \"0 2 * *\": expected 5 fields (minute hour day-of-month month day-of-week), 6 (second first) or 7 (second first, year last), found 4",
                "schedules.toml:3:1: maintenance \"w\": unknown key \"duratoin\", did you mean \"duration\"? (valid keys: cron, duration, timezone, start, end, match)",
                "schedules.toml:4:10: maintenance \"w\": match: invalid glob \"job:?\": '?' is not supported, the only wildcard is * (e.g. \"system:service:*\")",
                "schedules.toml:7:7: maintenance \"o\": end: end 2026-12-12 22:00:00Z is not after start 2026-12-13 01:00:00Z",
                "schedules.toml:11:12: maintenance \"z\": duration: must be more than 0s",
                "schedules.toml:12:9: maintenance \"z\": match: name at least one fingerprint glob (\"*\" silences every alert)",
                "schedules.toml:14:9: maintenance \"t\": start: invalid date-time \"tomorrow\": expected RFC 3339 (2026-12-12T22:00:00Z) or a local YYYY-MM-DDTHH:MM in the window's timezone",
                "schedules.toml:16:12: maintenance \"t\": timezone: unknown time zone \"Mars/Base\" (use an IANA name such as \"Europe/Berlin\" or \"UTC\")",
                "schedules.toml:17:10: maintenance \"t\": match: invalid glob \"a b\": ' ' is not allowed (fingerprints have no spaces)",
            ]
        );
    }

    #[test]
    fn a_window_is_recurring_or_one_off() {
        assert_eq!(
            problems(
                "[maintenance.both]\ncron = \"0 2 * * *\"\nduration = \"1h\"\nstart = \"2026-12-12T22:00\"\nmatch = [\"*\"]\n\
                 [maintenance.none]\nmatch = [\"*\"]\n\
                 [maintenance.mixed]\ncron = \"0 2 * * *\"\nend = \"2026-12-12T22:00\"\nmatch = [\"*\"]\n\
                 [maintenance.nomatch]\nstart = \"2026-12-12T22:00\"\nend = \"2026-12-12T23:00\"\n"
            ),
            [
                "schedules.toml:2:8: maintenance \"both\": set either \"cron\" and \"duration\" (a recurring window) or \"start\" and \"end\" (a one-off), not both",
                "schedules.toml:6:14: maintenance \"none\": missing schedule: set \"cron\" and \"duration\" (a recurring window) or \"start\" and \"end\" (a one-off)",
                "schedules.toml:8:14: maintenance \"mixed\": missing key \"duration\": how long each occurrence lasts, e.g. \"2h\"",
                "schedules.toml:10:7: maintenance \"mixed\": end: \"end\" is for a one-off window: a recurring one takes \"duration\"",
                "schedules.toml:12:14: maintenance \"nomatch\": missing key \"match\": the fingerprint globs it silences, e.g. [\"system:service:api\", \"job:*\"]",
            ]
        );
    }
}
