//! schedules.toml: raw TOML (with spans) becomes typed, validated [`JobSpec`]s
//! and [`NotifyTarget`]s once, here. `validate`, `run`, `run-job` and the
//! tests all call [`Config::load`], so they cannot disagree about what a file
//! means. This file owns the document and the `[defaults]` and `[jobs.NAME]`
//! tables; `notify.rs` owns `[notify.NAME]`.
//!
//! Every problem names the file, line, column, job (or notify target) and
//! key. All problems of a file are reported together, one line each.

mod expand;
mod notify;
mod oncall;

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ops_worker_jobs::tz::Tz;
use ops_worker_jobs::{BuildError, Job};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::scheduler::schedule::CronSyntaxError;
use crate::scheduler::Schedule;
pub use expand::{expand, ExpandError};
pub use notify::{NotifyFormat, NotifyTarget, Secret, DEFAULT_NOTIFY_TIMEOUT};
pub use oncall::Person;
use ops_worker_jobs::oncall::OnCallSchedule;

/// What to do with a slot that comes due while the job's previous run is
/// still going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// Record the slot as `skipped` (the default).
    Skip,
    /// Run it when the previous run ends (at most one waits; more are skipped).
    Queue,
    /// Run it alongside.
    Allow,
}

/// What to do with slots that passed while the worker could not fire them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// One run for the newest missed slot (the default).
    Latest,
    /// One run per missed slot inside the window, oldest first.
    All,
    /// None.
    Skip,
}

/// How long a job's `job_runs` rows are kept: `history_retention` and
/// `keep_last`. The pruning itself (and which rows it never touches) is
/// `crate::retention`'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// `history_retention`: rows whose slot is older than this are pruned.
    pub max_age: Duration,
    /// `keep_last`: rows beyond the newest this many are pruned, whatever
    /// their age.
    pub keep_last: Option<u32>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_age: DEFAULT_HISTORY_RETENTION,
            keep_last: None,
        }
    }
}

/// One job, ready to schedule.
pub struct JobSpec {
    pub name: String,
    pub kind: String,
    pub schedule: Schedule,
    /// Line and column of the `every` or `cron` value in the file, for
    /// warnings about the schedule (`None` for a spec not read from a file).
    pub schedule_at: Option<(usize, usize)>,
    /// The zone `next` and `list` show times in (the cron zone for cron jobs).
    pub timezone: Tz,
    pub timeout: Duration,
    pub overlap: Overlap,
    pub catch_up: CatchUp,
    pub catch_up_window: Duration,
    pub retries: u32,
    pub retry_backoff: Duration,
    /// Each scheduled or caught-up slot starts this much later at most: a
    /// delay in `[0, jitter)` fixed per slot (see `scheduler::jitter`).
    /// Zero: no jitter.
    pub jitter: Duration,
    /// Run a slot once more on a live worker when the worker running it died
    /// (default: true for every kind but `command`, whose effects may not
    /// bear repeating).
    pub retry_abandoned: bool,
    pub enabled: bool,
    /// SHA-256 of everything that makes up the job: its kind, schedule,
    /// policies and the kind's settings, after `${VAR}` expansion and
    /// `[defaults]`, but not where they are in the file. A reload re-arms a
    /// job whose fingerprint changed and leaves the others alone.
    pub fingerprint: String,
    /// How long its `job_runs` rows are kept.
    pub retention: Retention,
    pub job: Arc<dyn Job>,
}

impl JobSpec {
    /// The scheduler's settings of the job, one line, for its fingerprint.
    /// Not `retention`: the pruner reads it from the running config, so a
    /// change of it needs no re-arming.
    fn policies(&self) -> String {
        format!(
            "{} {:?} {} {:?} {:?} {:?} {:?} {} {:?} {} {} {:?}",
            self.kind,
            self.schedule,
            self.timezone,
            self.timeout,
            self.overlap,
            self.catch_up,
            self.catch_up_window,
            self.retries,
            self.retry_backoff,
            self.retry_abandoned,
            self.enabled,
            self.jitter,
        )
    }
}

/// `value` as text without its place in the file: keys sorted, strings
/// quoted, numbers and dates as written.
fn canonical(value: &DeValue<'_>, out: &mut String) {
    use std::fmt::Write as _;
    match value {
        DeValue::String(s) => {
            let _ = write!(out, "{:?}", s.as_ref());
        }
        DeValue::Integer(i) => out.push_str(i.as_str()),
        DeValue::Float(f) => out.push_str(f.as_str()),
        DeValue::Boolean(b) => {
            let _ = write!(out, "{b}");
        }
        DeValue::Datetime(d) => {
            let _ = write!(out, "{d}");
        }
        DeValue::Array(items) => {
            out.push('[');
            for item in items.iter() {
                canonical(item.get_ref(), out);
                out.push(',');
            }
            out.push(']');
        }
        DeValue::Table(t) => {
            let mut entries: Vec<_> = t.iter().collect();
            entries.sort_by(|a, b| a.0.get_ref().cmp(b.0.get_ref()));
            out.push('{');
            for (k, v) in entries {
                let _ = write!(out, "{:?}=", k.get_ref().as_ref());
                canonical(v.get_ref(), out);
                out.push(',');
            }
            out.push('}');
        }
    }
}

impl fmt::Debug for JobSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobSpec")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("schedule", &self.schedule)
            .field("schedule_at", &self.schedule_at)
            .field("timezone", &self.timezone)
            .field("timeout", &self.timeout)
            .field("overlap", &self.overlap)
            .field("catch_up", &self.catch_up)
            .field("catch_up_window", &self.catch_up_window)
            .field("retries", &self.retries)
            .field("retry_backoff", &self.retry_backoff)
            .field("jitter", &self.jitter)
            .field("retry_abandoned", &self.retry_abandoned)
            .field("enabled", &self.enabled)
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl JobSpec {
    /// How long after `slot` its scheduled or catch-up run starts: the
    /// slot's delay under `jitter`, the same on every worker. `None` for a
    /// job without jitter.
    pub fn slot_jitter(&self, slot: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
        (!self.jitter.is_zero())
            .then(|| crate::scheduler::jitter::delay(&self.name, slot, self.jitter))
    }
}

/// A loaded schedules.toml.
#[derive(Debug)]
pub struct Config {
    pub path: PathBuf,
    /// SHA-256 of the file's text, hex (what `sha256sum` prints): shown by
    /// `status` and `/metrics` so replicas running different files stand out.
    pub hash: String,
    /// In name order.
    pub jobs: Vec<Arc<JobSpec>>,
    /// The `[notify.NAME]` targets, in name order.
    pub notify: Vec<NotifyTarget>,
    /// The `[people.NAME]` tables, in name order.
    pub people: Vec<Person>,
    /// The `[oncall.NAME]` schedules, in name order.
    pub oncall: Vec<(String, OnCallSchedule)>,
    /// `history_retention` and `keep_last` of `[defaults]` (else the
    /// built-in defaults): how the runs of jobs no longer in the file are
    /// pruned.
    pub default_retention: Retention,
}

impl Config {
    pub fn job(&self, name: &str) -> Option<&Arc<JobSpec>> {
        self.jobs.iter().find(|j| j.name == name)
    }

    /// The `[oncall.NAME]` schedule called `name`.
    pub fn oncall_schedule(&self, name: &str) -> Option<&OnCallSchedule> {
        self.oncall.iter().find(|(n, _)| n == name).map(|(_, s)| s)
    }

    /// The `[notify.NAME]` target called `name`.
    pub fn notify_target(&self, name: &str) -> Option<&NotifyTarget> {
        self.notify.iter().find(|t| t.name == name)
    }
}

/// Lowercase hex SHA-256 of `text`.
pub(crate) fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The named table of schedules.toml a problem is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Section {
    /// `[jobs.NAME]`
    Job(String),
    /// `[notify.NAME]`
    Notify(String),
    /// `[people.NAME]`
    Person(String),
    /// `[oncall.NAME]`
    OnCall(String),
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Section::Job(name) => write!(f, "job {name:?}"),
            Section::Notify(name) => write!(f, "notify {name:?}"),
            Section::Person(name) => write!(f, "person {name:?}"),
            Section::OnCall(name) => write!(f, "oncall {name:?}"),
        }
    }
}

/// The config as the jobs crate's [`ops_worker_jobs::Timeline`]: enabled
/// jobs and their slots, computed by the same [`Schedule`] the scheduler uses.
impl ops_worker_jobs::Timeline for Config {
    fn jobs(&self) -> Vec<(String, Duration)> {
        self.jobs
            .iter()
            .filter(|j| j.enabled)
            .map(|j| (j.name.clone(), j.timeout))
            .collect()
    }

    fn next_slot_after(
        &self,
        job: &str,
        slot: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        // The interval grid is anchored at the recorded slot, as the scheduler anchors it.
        self.job(job)?.schedule.next_after(slot, slot)
    }

    fn slot_jitter(&self, job: &str, slot: chrono::DateTime<chrono::Utc>) -> Duration {
        self.job(job)
            .and_then(|j| j.slot_jitter(slot))
            .unwrap_or_default()
    }
}

/// The config as the jobs crate's [`ops_worker_jobs::Directory`]: the
/// `[people]` and `[oncall]` tables.
impl ops_worker_jobs::Directory for Config {
    fn person_targets(&self, name: &str) -> Vec<String> {
        self.people
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.notify.clone())
            .unwrap_or_default()
    }

    fn on_call(&self, schedule: &str, at: chrono::DateTime<chrono::Utc>) -> Option<String> {
        self.oncall_schedule(schedule)?.who(at)
    }
}

/// One problem in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// The job or notify target, when the problem is inside one.
    pub section: Option<Section>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if let Some(section) = &self.section {
            write!(f, "{section}: ")?;
        }
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        f.write_str(&self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read the schedule file: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid { problems: Vec<Problem> },
}

/// Keys `[defaults]` may set: the scheduling keys a whole file may share.
const DEFAULTABLE_KEYS: &[&str] = &[
    "timezone",
    "timeout",
    "overlap",
    "catch_up",
    "catch_up_window",
    "retries",
    "retry_backoff",
    "retry_abandoned",
    "jitter",
    "enabled",
    "history_retention",
    "keep_last",
];

const MAX_TIMEOUT_DEFAULT: Duration = Duration::from_secs(600);
const DEFAULT_CATCH_UP_WINDOW: Duration = Duration::from_secs(24 * 3600);
const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_secs(5);
const MAX_RETRIES: u32 = 100;
const DEFAULT_HISTORY_RETENTION: Duration = Duration::from_secs(30 * 86_400);
/// A shorter history would be gone before anyone looked at a failure (and
/// pruning passes come only every 10 minutes).
const MIN_HISTORY_RETENTION: Duration = Duration::from_secs(3600);
/// A cron job's jitter must be shorter than every gap between its fire
/// times in this window from the time the file is loaded (four years: every
/// DST change of a zone and a 29 February), checking at most
/// [`JITTER_SLOTS`] fire times.
const JITTER_HORIZON: Duration = Duration::from_secs(4 * 366 * 86_400);
const JITTER_SLOTS: usize = 10_000;

impl Config {
    /// Reads and validates the file, expanding `${VAR}` from the environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::parse(path, &text, &|name| std::env::var(name).ok())
    }

    /// Validates `text` as the content of `path`; `env` looks up `${VAR}`s.
    pub fn parse(
        path: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        Config::parse_at(path, text, env, chrono::Utc::now())
    }

    /// [`Config::parse`] as if loaded at `now`, which only the check of a
    /// cron job's `jitter` against its upcoming fire times reads.
    pub fn parse_at(
        path: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Config, ConfigError> {
        let mut cx = Cx {
            file: path.display().to_string(),
            text,
            problems: Vec::new(),
            loaded_at: now,
            notify_names: Vec::new(),
            person_names: Vec::new(),
            oncall_names: Vec::new(),
        };
        let Document {
            jobs,
            notify,
            people,
            oncall,
            default_retention,
        } = cx.document(env);
        // In file order, whichever table was checked first.
        cx.problems.sort_by_key(|p| (p.line, p.column));
        if cx.problems.is_empty() {
            Ok(Config {
                path: path.to_path_buf(),
                hash: sha256_hex(text),
                jobs,
                notify,
                people,
                oncall,
                default_retention,
            })
        } else {
            Err(ConfigError::Invalid {
                problems: cx.problems,
            })
        }
    }
}

/// What a schedule file declares, checked.
#[derive(Default)]
struct Document {
    jobs: Vec<Arc<JobSpec>>,
    notify: Vec<NotifyTarget>,
    people: Vec<Person>,
    oncall: Vec<(String, OnCallSchedule)>,
    default_retention: Retention,
}

/// The parse in progress: where problems go and how spans become lines.
struct Cx<'t> {
    file: String,
    text: &'t str,
    problems: Vec<Problem>,
    /// Where a cron job's fire times are looked at to check its jitter.
    loaded_at: chrono::DateTime<chrono::Utc>,
    /// The declared [notify.NAME] targets, for checking jobs' `notify` lists.
    notify_names: Vec<String>,
    /// The declared [people.NAME] and [oncall.NAME], for `escalation` policies.
    person_names: Vec<String>,
    oncall_names: Vec<String>,
}

type Span = std::ops::Range<usize>;

impl Cx<'_> {
    /// A problem at `span`, in job `job` (if any), about `key` (if any).
    fn problem(
        &mut self,
        span: Span,
        job: Option<&str>,
        key: Option<&str>,
        message: impl Into<String>,
    ) {
        let section = job.map(|j| Section::Job(j.to_string()));
        self.problem_in(span, section, key, message);
    }

    /// A problem at `span`, in any section.
    fn problem_in(
        &mut self,
        span: Span,
        section: Option<Section>,
        key: Option<&str>,
        message: impl Into<String>,
    ) {
        let (line, column) = line_col(self.text, span.start);
        // One problem per place: a value that failed to expand is not also
        // reported as an invalid duration.
        if self
            .problems
            .iter()
            .any(|p| (p.line, p.column) == (line, column))
        {
            return;
        }
        self.problems.push(Problem {
            file: self.file.clone(),
            line,
            column,
            section,
            key: key.map(str::to_string),
            message: message.into(),
        });
    }

    fn document(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Document {
        let mut root = match DeTable::parse(self.text) {
            Ok(root) => root.into_inner(),
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                self.problem(span, None, None, toml_message(&e));
                return Document::default();
            }
        };
        // Expand ${VAR} everywhere first, so every later check sees final values.
        for (key, value) in root.iter_mut() {
            let key = key.get_ref().to_string();
            self.expand_value(value, None, &key, env);
        }

        let mut defaults = DeTable::new();
        let mut jobs = None;
        let mut notify = Vec::new();
        let (mut people_table, mut oncall_table) = (None, None);
        for (key, value) in root {
            match key.get_ref().as_ref() {
                "defaults" => match value.into_inner() {
                    DeValue::Table(t) => defaults = t,
                    _ => self.problem(
                        key.span(),
                        None,
                        Some("defaults"),
                        "must be a table: [defaults]",
                    ),
                },
                "jobs" => match value.into_inner() {
                    DeValue::Table(t) => jobs = Some((key.span(), t)),
                    _ => self.problem(
                        key.span(),
                        None,
                        Some("jobs"),
                        "must be a table of jobs: [jobs.NAME]",
                    ),
                },
                "notify" => match value.into_inner() {
                    DeValue::Table(t) => notify = self.notify_targets(t),
                    _ => self.problem(
                        key.span(),
                        None,
                        Some("notify"),
                        "must be a table of targets: [notify.NAME]",
                    ),
                },
                "people" => match value.into_inner() {
                    DeValue::Table(t) => people_table = Some(t),
                    _ => self.problem(
                        key.span(),
                        None,
                        Some("people"),
                        "must be a table of people: [people.NAME]",
                    ),
                },
                "oncall" => match value.into_inner() {
                    DeValue::Table(t) => oncall_table = Some(t),
                    _ => self.problem(
                        key.span(),
                        None,
                        Some("oncall"),
                        "must be a table of schedules: [oncall.NAME]",
                    ),
                },
                other => self.problem(
                    key.span(),
                    None,
                    None,
                    format!("unknown top-level key {other:?} (expected [defaults], [jobs.NAME], [notify.NAME], [people.NAME] or [oncall.NAME])"),
                ),
            }
        }
        for (key, _) in defaults.iter() {
            if !DEFAULTABLE_KEYS.contains(&key.get_ref().as_ref()) {
                let msg = format!(
                    "unknown key {:?} in [defaults] (allowed: {})",
                    key.get_ref(),
                    DEFAULTABLE_KEYS.join(", ")
                );
                self.problem(key.span(), None, None, msg);
            }
        }
        // Checked here, not only through the jobs that inherit them, so a
        // problem names [defaults] rather than the first job.
        let default_retention = self
            .retention(
                None,
                defaults.get("history_retention"),
                defaults.get("keep_last"),
            )
            .unwrap_or_default();
        self.notify_names = notify.iter().map(|t| t.name.clone()).collect();
        let people = people_table.map(|t| self.people(t)).unwrap_or_default();
        let oncall = oncall_table
            .map(|t| self.oncall(t, &people))
            .unwrap_or_default();
        self.person_names = people.iter().map(|p| p.name.clone()).collect();
        self.oncall_names = oncall.iter().map(|(n, _)| n.clone()).collect();
        let Some((jobs_span, jobs)) = jobs else {
            self.problem(
                0..0,
                None,
                None,
                "no jobs: add at least one [jobs.NAME] table",
            );
            return Document {
                jobs: Vec::new(),
                notify,
                people,
                oncall,
                default_retention,
            };
        };
        if jobs.is_empty() {
            self.problem(
                jobs_span,
                None,
                None,
                "no jobs: add at least one [jobs.NAME] table",
            );
        }
        let mut specs = Vec::new();
        for (name, table) in jobs {
            let name_span = name.span();
            let name = name.into_inner().into_owned();
            if !valid_job_name(&name) {
                self.problem(
                    name_span.clone(),
                    Some(&name),
                    None,
                    "job names may use letters, digits, '-', '_' and '.' only",
                );
            }
            match table.into_inner() {
                DeValue::Table(t) => {
                    if let Some(spec) = self.job(&name, name_span, t, &defaults) {
                        specs.push(Arc::new(spec));
                    }
                }
                _ => self.problem(name_span, Some(&name), None, "must be a table: [jobs.NAME]"),
            }
        }
        Document {
            jobs: specs,
            notify,
            people,
            oncall,
            default_retention,
        }
    }

    fn expand_value(
        &mut self,
        value: &mut Spanned<DeValue<'_>>,
        section: Option<&Section>,
        key: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) {
        let span = value.span();
        match value.get_mut() {
            DeValue::String(s) => match expand(s, env) {
                Ok(std::borrow::Cow::Owned(new)) => *s = new.into(),
                Ok(std::borrow::Cow::Borrowed(_)) => {}
                Err(e) => self.problem_in(span, section.cloned(), Some(key), e.to_string()),
            },
            DeValue::Array(items) => {
                for item in items.iter_mut() {
                    self.expand_value(item, section, key, env);
                }
            }
            DeValue::Table(t) => {
                for (k, v) in t.iter_mut() {
                    let k = k.get_ref().to_string();
                    match (section, key) {
                        // [jobs.NAME] and [notify.NAME]: the key names the section.
                        (None, "jobs") => self.expand_value(v, Some(&Section::Job(k)), "", env),
                        (None, "notify") => {
                            self.expand_value(v, Some(&Section::Notify(k)), "", env)
                        }
                        // A key of a section's table or of [defaults].
                        (_, "") | (None, _) => self.expand_value(v, section, &k, env),
                        // Deeper (e.g. a kind's `env` table): report the section's key.
                        (Some(_), _) => self.expand_value(v, section, key, env),
                    }
                }
            }
            _ => {}
        }
    }

    fn job(
        &mut self,
        name: &str,
        name_span: Span,
        mut table: DeTable<'_>,
        defaults: &DeTable<'_>,
    ) -> Option<JobSpec> {
        let before = self.problems.len();
        let job = Some(name);
        // The keys the scheduler owns: the job's own, else [defaults]. What
        // is left of the table belongs to the kind.
        let mut own = |key: &str| {
            table.remove_entry(key).or_else(|| {
                defaults
                    .get_key_value(key)
                    .map(|(k, v)| (k.clone(), v.clone()))
            })
        };
        let kind = own("kind");
        let every = own("every");
        let cron = own("cron");
        let timezone = own("timezone");
        let timeout = own("timeout");
        let overlap = own("overlap");
        let catch_up = own("catch_up");
        let catch_up_window = own("catch_up_window");
        let retries = own("retries");
        let retry_backoff = own("retry_backoff");
        let retry_abandoned = own("retry_abandoned");
        let jitter = own("jitter");
        let enabled = own("enabled");
        let history_retention = own("history_retention");
        let keep_last = own("keep_last");

        let kind = match kind {
            Some((_, v)) => self.string(job, "kind", &v).map(|s| (s, v.span())),
            None => {
                self.problem(name_span.clone(), job, None, "missing key \"kind\"");
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
            (None, None) => {
                self.problem(
                    name_span,
                    job,
                    None,
                    "missing schedule: set \"every\" (e.g. \"60s\") or \"cron\"",
                );
                None
            }
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
        let timeout = match &timeout {
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
        if kind.as_ref().is_some_and(|(k, _)| k == "escalation") {
            self.escalation_references(job, &table);
        }
        // The rest of the table is the kind's.
        let mut settings_text = String::new();
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
                    let span = e.span().unwrap_or(kind_span.clone());
                    let key = e.span().and_then(|s| key_at(self.text, s));
                    self.problem(span, job, key.as_deref(), toml_message(&e));
                    None
                }
            }
        });

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
            job: built?,
        };
        spec.fingerprint = sha256_hex(&format!("{}\n{settings_text}", spec.policies()));
        Some(spec)
    }

    /// `jitter`: whole milliseconds, and shorter than the time between two
    /// slots, so that a slot starts before the next one is due.
    fn jitter(
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
    fn check_target(&mut self, span: Span, job: Option<&str>, target: &str) {
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
    fn retention(
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

    fn string(&mut self, job: Option<&str>, key: &str, v: &Spanned<DeValue<'_>>) -> Option<String> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            other => {
                self.problem(
                    v.span(),
                    job,
                    Some(key),
                    format!("expected a string, found {}", other.type_str()),
                );
                None
            }
        }
    }

    fn duration(
        &mut self,
        job: Option<&str>,
        key: &str,
        v: &Spanned<DeValue<'_>>,
    ) -> Option<Duration> {
        if let DeValue::Integer(_) = v.get_ref() {
            self.problem(
                v.span(),
                job,
                Some(key),
                "expected a duration string with a unit, such as \"30s\" or \"5m\"",
            );
            return None;
        }
        let s = self.string(job, key, v)?;
        match humantime::parse_duration(s.trim()) {
            Ok(d) => Some(d),
            Err(e) => {
                self.problem(
                    v.span(),
                    job,
                    Some(key),
                    format!("invalid duration {s:?}: {e} (examples: \"30s\", \"5m\", \"1h 30m\")"),
                );
                None
            }
        }
    }

    /// An integer, or a string holding one (what `${VAR}` expands to).
    fn integer(
        &mut self,
        job: Option<&str>,
        key: &str,
        v: &Spanned<DeValue<'_>>,
        min: u64,
        max: u64,
    ) -> Option<u64> {
        let parsed = match v.get_ref() {
            DeValue::Integer(i) => i.as_str().replace('_', "").parse::<u64>().ok(),
            DeValue::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        match parsed.filter(|n| (min..=max).contains(n)) {
            Some(n) => Some(n),
            None => {
                self.problem(
                    v.span(),
                    job,
                    Some(key),
                    format!("expected a whole number from {min} to {max}"),
                );
                None
            }
        }
    }

    /// A boolean, or a string holding one (what `${VAR}` expands to).
    fn boolean(&mut self, job: Option<&str>, key: &str, v: &Spanned<DeValue<'_>>) -> Option<bool> {
        let parsed = match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            DeValue::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => Some(true),
                "false" | "no" | "off" | "0" => Some(false),
                _ => None,
            },
            _ => None,
        };
        if parsed.is_none() {
            self.problem(v.span(), job, Some(key), "expected true or false");
        }
        parsed
    }

    fn choice<T: Copy>(
        &mut self,
        job: Option<&str>,
        key: &str,
        v: Option<&(Spanned<std::borrow::Cow<'_, str>>, Spanned<DeValue<'_>>)>,
        options: &[(&str, T)],
        default: T,
    ) -> Option<T> {
        let Some((_, v)) = v else {
            return Some(default);
        };
        let s = self.string(job, key, v)?;
        match options.iter().find(|(name, _)| *name == s) {
            Some((_, t)) => Some(*t),
            None => {
                let names: Vec<_> = options.iter().map(|(n, _)| *n).collect();
                self.problem(
                    v.span(),
                    job,
                    Some(key),
                    format!(
                        "invalid value {s:?} (expected one of: {})",
                        names.join(", ")
                    ),
                );
                None
            }
        }
    }
}

/// The span from the first key to the last value of a table, for errors
/// about its settings as a whole.
fn span_of_entries(table: &DeTable<'_>) -> Option<Span> {
    let start = table.keys().map(|k| k.span().start).min()?;
    let end = table.values().map(|v| v.span().end).max()?;
    Some(start..end)
}

/// The key an error span points at, when it points at a `key = value` line.
fn key_at(text: &str, span: Span) -> Option<String> {
    let line_start = text[..span.start].rfind('\n').map_or(0, |i| i + 1);
    let line = &text[line_start..];
    let line = &line[..line.find('\n').unwrap_or(line.len())];
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    (!key.is_empty() && !key.starts_with('[') && span.start >= line_start).then(|| key.to_string())
}

/// serde's message for the error, one line, lowercase like ours.
fn toml_message(e: &toml::de::Error) -> String {
    let msg = e.message().trim().replace('\n', " ");
    let mut chars = msg.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => msg,
    }
}

fn valid_job_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Names of every job, for messages like "unknown job".
pub fn names(config: &Config) -> BTreeSet<&str> {
    config.jobs.iter().map(|j| j.name.as_str()).collect()
}

#[cfg(test)]
mod tests;
