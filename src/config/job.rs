//! One `[jobs.NAME]` table: the keys ops-worker reads ([`JOB_KEYS`], each
//! from the job or else from `[defaults]`), the schedule and policies they
//! make, and the kind's own settings, built by the jobs crate from what is
//! left of the table.

use std::borrow::Cow;
use std::time::Duration;

use ops_worker_jobs::tz::Tz;
use ops_worker_jobs::BuildError;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::cx::{line_col, span_of_entries, Cx, Span};
use super::keys;
use super::spec::{canonical, DEFAULT_HISTORY_RETENTION};
use super::{sha256_hex, JobSpec, Retention, Section};
use crate::schedule::{CatchUp, CronSyntaxError, Overlap, Schedule};

/// A key and its value as found in the file.
type Entry<'a> = (Spanned<Cow<'a, str>>, Spanned<DeValue<'a>>);

/// Declares the keys of a `[jobs.NAME]` table that ops-worker reads (the
/// rest of the table is the kind's), each with whether `[defaults]` may
/// set it: [`JOB_KEYS`] for the checks of `[defaults]` and [`JobKeys`],
/// one field per key, for reading a job. One list, so the two cannot drift.
macro_rules! job_keys {
    ($($key:ident: $defaultable:literal,)+) => {
        /// Each key ops-worker reads in a `[jobs.NAME]` table, and whether
        /// `[defaults]` may set it.
        pub(super) const JOB_KEYS: &[(&str, bool)] = &[$((stringify!($key), $defaultable),)+];

        /// A job's values of [`JOB_KEYS`]: taken out of its table, else
        /// (where allowed) from `[defaults]`.
        struct JobKeys<'a> {
            $($key: Option<Entry<'a>>,)+
        }

        impl<'a> JobKeys<'a> {
            fn take(table: &mut DeTable<'a>, defaults: &DeTable<'a>) -> JobKeys<'a> {
                JobKeys {
                    $($key: take(table, defaults, stringify!($key), $defaultable),)+
                }
            }
        }
    };
}

job_keys! {
    kind: false,
    every: false,
    cron: false,
    timezone: true,
    timeout: true,
    overlap: true,
    catch_up: true,
    catch_up_window: true,
    retries: true,
    retry_backoff: true,
    retry_abandoned: true,
    jitter: true,
    enabled: true,
    history_retention: true,
    keep_last: true,
    grace: false,
    token: false,
}

/// `key` of a job's `table`, removed from it; else, if `defaultable`, the
/// same key of `[defaults]`.
fn take<'a>(
    table: &mut DeTable<'a>,
    defaults: &DeTable<'a>,
    key: &str,
    defaultable: bool,
) -> Option<Entry<'a>> {
    table.remove_entry(key).or_else(|| {
        defaultable
            .then(|| defaults.get_key_value(key))
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
    })
}

const MAX_TIMEOUT_DEFAULT: Duration = Duration::from_secs(600);
/// A job's timeout leaves this much beyond its [`ops_worker_jobs::Job::longest_wait`]
/// for recording what it found.
const RECORD_MARGIN: Duration = Duration::from_secs(2);
const DEFAULT_CATCH_UP_WINDOW: Duration = Duration::from_secs(24 * 3600);
const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_secs(5);
const MAX_RETRIES: u32 = 100;
/// A shorter history would be gone before anyone looked at a failure (and
/// pruning passes come only every 10 minutes).
const MIN_HISTORY_RETENTION: Duration = Duration::from_secs(3600);
/// A cron job's jitter must be shorter than every gap between its fire
/// times in this window from the time the file is loaded (four years: every
/// DST change of a zone and a 29 February), checking at most
/// [`JITTER_SLOTS`] fire times.
const JITTER_HORIZON: Duration = Duration::from_secs(4 * 366 * 86_400);
const JITTER_SLOTS: usize = 10_000;

impl Cx<'_> {
    pub(super) fn job<'a>(
        &mut self,
        name: &str,
        name_span: Span,
        mut table: DeTable<'a>,
        defaults: &DeTable<'a>,
    ) -> Option<JobSpec> {
        let before = self.problems.len();
        let job = Some(name);
        // A push job runs elsewhere: the keys about running its slots here
        // are refused in its table and not taken from [defaults].
        let push_defaults;
        let defaults = if table
            .get("kind")
            .is_some_and(|k| k.get_ref().as_str() == Some("push"))
        {
            push_defaults = self.keys_not_for_push(name, &mut table, defaults);
            &push_defaults
        } else {
            defaults
        };
        // What is left of the table belongs to the kind.
        let JobKeys {
            kind,
            every,
            cron,
            timezone,
            timeout,
            overlap,
            catch_up,
            catch_up_window,
            retries,
            retry_backoff,
            retry_abandoned,
            jitter,
            enabled,
            history_retention,
            keep_last,
            grace,
            token,
        } = JobKeys::take(&mut table, defaults);

        // A key missing because it is misspelt is reported once, as the
        // misspelt key (with its suggestion), not also as missing.
        let mut meant: Vec<String> = Vec::new();
        let kind = match kind {
            Some((_, v)) => self.string(job, "kind", &v).map(|s| (s, v.span())),
            None => {
                // Without a kind its settings are unknown: only keys that
                // look like a misspelt job key are reported.
                let names: Vec<&str> = JOB_KEYS.iter().map(|(k, _)| *k).collect();
                for key in table.keys() {
                    let Some(near) = keys::nearest(key.get_ref(), &names) else {
                        continue;
                    };
                    meant.push(near.to_string());
                    let mut msg = keys::unknown_key(key.get_ref(), "", &names);
                    msg.pop();
                    msg.push_str(", and the kind's own settings)");
                    self.problem(key.span(), job, None, msg);
                }
                None
            }
        };
        let timezone = match &timezone {
            Some((_, v)) => self.string(job, "timezone", v).and_then(|s| match s.parse::<Tz>() {
                Ok(tz) => Some(tz),
                Err(_) => {
                    let msg = format!("unknown time zone {s:?} (use an IANA name such as \"Europe/Berlin\" or \"UTC\")");
                    self.problem(v.span(), job, Some("timezone"), msg);
                    None
                }
            }),
            None => Some(Tz::UTC),
        };
        let schedule_at = every
            .as_ref()
            .or(cron.as_ref())
            .map(|(_, v)| line_col(self.text, v.span().start));
        let missing_schedule = every.is_none() && cron.is_none();
        let schedule = match (every, cron) {
            (Some(_), Some((k, _))) => {
                self.problem(
                    k.span(),
                    job,
                    None,
                    "set either \"every\" or \"cron\", not both",
                );
                None
            }
            // Reported below, unless a misspelt key stands for it.
            (None, None) => None,
            (Some((_, v)), None) => {
                self.duration(job, "every", &v)
                    .and_then(|d| match Schedule::every(d) {
                        Ok(s) => Some(s),
                        Err(e) => {
                            self.problem(
                                v.span(),
                                job,
                                Some("every"),
                                format!(
                                    "invalid interval {:?}: {e}",
                                    v.get_ref().as_str().unwrap_or_default()
                                ),
                            );
                            None
                        }
                    })
            }
            (None, Some((_, v))) => {
                let expr = self.string(job, "cron", &v)?;
                match Schedule::cron(&expr, timezone.unwrap_or(Tz::UTC)) {
                    Ok(s) => Some(s),
                    Err(CronSyntaxError::NeverFires(why)) => {
                        self.problem(
                            v.span(),
                            job,
                            None,
                            format!("cron {expr:?} never fires: {why}"),
                        );
                        None
                    }
                    Err(e) => {
                        self.problem(
                            v.span(),
                            job,
                            Some("cron"),
                            format!("invalid cron {expr:?}: {e}"),
                        );
                        None
                    }
                }
            }
        };
        let timeout_entry = timeout;
        let mut timeout = match &timeout_entry {
            Some((_, v)) => self.duration(job, "timeout", v).and_then(|d| {
                if d.is_zero() {
                    self.problem(v.span(), job, Some("timeout"), "must be more than 0s");
                    None
                } else {
                    Some(d)
                }
            }),
            None => Some(match &schedule {
                Some(Schedule::Every { every }) => (*every).min(MAX_TIMEOUT_DEFAULT),
                _ => MAX_TIMEOUT_DEFAULT,
            }),
        };
        let overlap = self.choice(
            job,
            "overlap",
            overlap.as_ref(),
            &[
                ("skip", Overlap::Skip),
                ("queue", Overlap::Queue),
                ("allow", Overlap::Allow),
            ],
            Overlap::Skip,
        );
        let catch_up = self.choice(
            job,
            "catch_up",
            catch_up.as_ref(),
            &[
                ("latest", CatchUp::Latest),
                ("all", CatchUp::All),
                ("skip", CatchUp::Skip),
            ],
            CatchUp::Latest,
        );
        let catch_up_window = match &catch_up_window {
            Some((_, v)) => self.duration(job, "catch_up_window", v),
            None => Some(DEFAULT_CATCH_UP_WINDOW),
        };
        let retry_backoff = match &retry_backoff {
            Some((_, v)) => self.duration(job, "retry_backoff", v),
            None => Some(DEFAULT_RETRY_BACKOFF),
        };
        let retries = match &retries {
            Some((_, v)) => self
                .integer(job, "retries", v, 0, u64::from(MAX_RETRIES))
                .map(|n| n as u32),
            None => Some(0),
        };
        let enabled = match &enabled {
            Some((_, v)) => self.boolean(job, "enabled", v),
            None => Some(true),
        };
        let retry_abandoned = match &retry_abandoned {
            Some((_, v)) => self.boolean(job, "retry_abandoned", v),
            None => Some(kind.as_ref().is_some_and(|(k, _)| k != "command")),
        };
        let retention = self.retention(
            job,
            history_retention.as_ref().map(|(_, v)| v),
            keep_last.as_ref().map(|(_, v)| v),
        );
        let jitter = match &jitter {
            Some((_, v)) => self.jitter(job, v, schedule.as_ref()),
            None => Some(Duration::ZERO),
        };

        // A `notify` list names [notify.NAME] targets, whatever the kind.
        if let Some(DeValue::Array(items)) = table.get("notify").map(|v| v.get_ref()) {
            for item in items {
                let Some(target) = item.get_ref().as_str() else {
                    continue;
                };
                self.check_target(item.span(), job, target);
            }
        }
        let push = self.push_keys(
            name,
            name_span.clone(),
            kind.as_ref().map(|(k, _)| k.as_str()),
            grace.map(|(k, v)| (k.span(), v)),
            token.map(|(k, v)| (k.span(), v)),
        );
        if kind.as_ref().is_some_and(|(k, _)| k == "escalation") {
            self.escalation_references(job, &table);
        }
        // The rest of the table is the kind's.
        let mut settings_text = String::new();
        let settings_table = table.clone();
        canonical(&DeValue::Table(table.clone()), &mut settings_text);
        let built = kind.as_ref().and_then(|(kind, kind_span)| {
            let settings_span = span_of_entries(&table).unwrap_or(kind_span.clone());
            let settings = Spanned::new(settings_span.clone(), DeValue::Table(table));
            match ops_worker_jobs::build_in(
                kind,
                name,
                timezone.unwrap_or(Tz::UTC),
                settings.into(),
            ) {
                Ok(job) => Some(job),
                Err(BuildError::UnknownKind { .. }) => {
                    let msg = format!(
                        "unknown kind {kind:?} (known kinds: {})",
                        ops_worker_jobs::KINDS.join(", ")
                    );
                    self.problem(kind_span.clone(), job, Some("kind"), msg);
                    None
                }
                Err(BuildError::Invalid(msg)) => {
                    self.problem(settings_span.clone(), job, None, msg);
                    None
                }
                Err(BuildError::Settings(e)) => {
                    let names: Vec<&str> = JOB_KEYS.iter().map(|(k, _)| *k).collect();
                    let section = Some(Section::Job(name.to_string()));
                    meant.extend(self.serde_problem(
                        section,
                        &settings_table,
                        kind_span.clone(),
                        &e,
                        &names,
                    ));
                    None
                }
            }
        });
        if kind.is_none() && !meant.iter().any(|k| k == "kind") {
            self.problem(name_span.clone(), job, None, "missing key \"kind\"");
        }
        if missing_schedule && !meant.iter().any(|k| k == "every" || k == "cron") {
            self.problem(
                name_span,
                job,
                None,
                "missing schedule: set \"every\" (e.g. \"60s\") or \"cron\"",
            );
        }

        // Room for what the job waits on (a health job's targets): the
        // default grows to fit; a shorter timeout set by hand is warned about.
        if let (Some(t), Some(wait)) = (
            timeout.as_mut(),
            built.as_ref().and_then(|j| j.longest_wait()),
        ) {
            let needed = wait.wait + RECORD_MARGIN;
            match &timeout_entry {
                None => *t = (*t).max(needed),
                Some((_, v)) if *t < needed => {
                    let msg = format!(
                        "timeout {} leaves no room: {}; set it to at least {}",
                        humantime::format_duration(*t),
                        wait.why,
                        humantime::format_duration(needed)
                    );
                    self.warning(v.span(), job, msg);
                }
                Some(_) => {}
            }
        }

        if self.problems.len() > before {
            return None;
        }
        let (kind, _) = kind?;
        let schedule = schedule?;
        let mut spec = JobSpec {
            name: name.to_string(),
            kind,
            timezone: match &schedule {
                Schedule::Cron { tz, .. } => *tz,
                Schedule::Every { .. } => timezone?,
            },
            schedule,
            schedule_at,
            timeout: timeout?,
            overlap: overlap?,
            catch_up: catch_up?,
            catch_up_window: catch_up_window?,
            retries: retries?,
            retry_backoff: retry_backoff?,
            jitter: jitter?,
            retry_abandoned: retry_abandoned?,
            enabled: enabled?,
            fingerprint: String::new(),
            retention: retention?,
            push,
            job: built?,
        };
        spec.fingerprint = sha256_hex(&format!("{}\n{settings_text}", spec.policies()));
        Some(spec)
    }

    /// `jitter`: whole milliseconds, and shorter than the time between two
    /// slots, so that a slot starts before the next one is due.
    pub(super) fn jitter(
        &mut self,
        job: Option<&str>,
        v: &Spanned<DeValue<'_>>,
        schedule: Option<&Schedule>,
    ) -> Option<Duration> {
        let jitter = self.duration(job, "jitter", v)?;
        let shown = humantime::format_duration(jitter);
        if jitter.subsec_nanos() % 1_000_000 != 0 {
            let msg = format!("{shown} is not a whole number of milliseconds");
            self.problem(v.span(), job, Some("jitter"), msg);
            return None;
        }
        if jitter.is_zero() {
            return Some(jitter);
        }
        let gap = schedule?.shortest_gap(self.loaded_at, JITTER_HORIZON, JITTER_SLOTS);
        match (schedule?, gap) {
            (Schedule::Every { every }, _) if jitter >= *every => {
                let msg = format!(
                    "{shown} must be shorter than the interval ({})",
                    humantime::format_duration(*every)
                );
                self.problem(v.span(), job, Some("jitter"), msg);
                None
            }
            (Schedule::Cron { tz, .. }, Some((gap, at))) if jitter >= gap => {
                let msg = format!(
                    "{shown} must be shorter than the shortest time between two fire times ({} after {})",
                    humantime::format_duration(gap),
                    at.with_timezone(tz).format("%Y-%m-%d %H:%M:%S %Z")
                );
                self.problem(v.span(), job, Some("jitter"), msg);
                None
            }
            _ => Some(jitter),
        }
    }

    /// A problem at `span` unless `target` is a declared `[notify.NAME]`.
    pub(super) fn check_target(&mut self, span: Span, job: Option<&str>, target: &str) {
        if !self.notify_names.iter().any(|n| n == target) {
            let declared = if self.notify_names.is_empty() {
                "none is declared: add a [notify.NAME] table".to_string()
            } else {
                format!("declared: {}", self.notify_names.join(", "))
            };
            let msg = format!("unknown notification target {target:?} ({declared})");
            self.problem(span, job, Some("notify"), msg);
        }
    }

    /// `history_retention` and `keep_last` of a job (`job`) or of
    /// `[defaults]` (`None`), each the built-in default when not given.
    pub(super) fn retention(
        &mut self,
        job: Option<&str>,
        history_retention: Option<&Spanned<DeValue<'_>>>,
        keep_last: Option<&Spanned<DeValue<'_>>>,
    ) -> Option<Retention> {
        let max_age = match history_retention {
            Some(v) => self.duration(job, "history_retention", v).and_then(|d| {
                if d < MIN_HISTORY_RETENTION {
                    self.problem(
                        v.span(),
                        job,
                        Some("history_retention"),
                        "must be at least 1h",
                    );
                    None
                } else {
                    Some(d)
                }
            }),
            None => Some(DEFAULT_HISTORY_RETENTION),
        };
        let keep_last = match keep_last {
            Some(v) => self
                .integer(job, "keep_last", v, 1, u64::from(u32::MAX))
                .map(|n| Some(n as u32)),
            None => Some(None),
        };
        Some(Retention {
            max_age: max_age?,
            keep_last: keep_last?,
        })
    }
}
