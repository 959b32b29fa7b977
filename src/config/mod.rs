//! schedules.toml: raw TOML (with spans) becomes typed, validated [`JobSpec`]s
//! and [`NotifyTarget`]s once, here. `validate`, `run`, `run-job` and the
//! tests all call [`Config::load`], so they cannot disagree about what a file
//! means. This file owns the document and the `[defaults]` and `[jobs.NAME]`
//! tables; `notify.rs` owns `[notify.NAME]` (`channels.rs` the email and
//! PagerDuty settings).
//!
//! Every problem names the file, line, column, job (or notify target) and
//! key. All problems of a file are reported together, one line each.

mod api;
mod channels;
mod cx;
mod document;
mod expand;
mod job;
mod keys;
mod maintenance;
mod notify;
mod oncall;
mod push;
mod spec;

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ops_worker_jobs::oncall::OnCallSchedule;

pub use api::{public_url, sha256, ApiConfig, ApiToken, Role};
pub use channels::{EmailTarget, PagerDutyTarget, SmtpTls, PAGERDUTY_URL};
pub use cx::line_col;
use cx::Cx;
use document::Document;
pub use expand::{expand, ExpandError};
pub use maintenance::MaintenanceWindow;
pub use notify::{
    BodyTemplate, Channel, NotifyFormat, NotifyTarget, Secret, WebhookTarget,
    DEFAULT_NOTIFY_TIMEOUT,
};
pub use oncall::Person;
pub use push::{PushSpec, DEFAULT_GRACE, MIN_PUSH_TOKEN_LEN};
pub use spec::{JobSpec, Retention};

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
    /// The `[maintenance.NAME]` windows, in name order.
    pub maintenance: Vec<MaintenanceWindow>,
    /// `history_retention` and `keep_last` of `[defaults]` (else the
    /// built-in defaults): how the runs of jobs no longer in the file are
    /// pruned.
    pub default_retention: Retention,
    /// What is valid but likely not meant, in file order: a health job
    /// whose timeout leaves no room for its targets. `validate` prints them
    /// (with its warnings about cron jobs, which depend on the date), `run`
    /// logs them when it loads the file.
    pub warnings: Vec<Problem>,
    /// The `[api]` table: tokens and `public_url`.
    pub api: ApiConfig,
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
    /// `[maintenance.NAME]`
    Maintenance(String),
    /// `[api.tokens.NAME]`
    ApiToken(String),
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Section::Job(name) => write!(f, "job {name:?}"),
            Section::Notify(name) => write!(f, "notify {name:?}"),
            Section::Person(name) => write!(f, "person {name:?}"),
            Section::OnCall(name) => write!(f, "oncall {name:?}"),
            Section::Maintenance(name) => write!(f, "maintenance {name:?}"),
            Section::ApiToken(name) => write!(f, "api token {name:?}"),
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

    fn push_grace(&self, job: &str) -> Option<Duration> {
        self.job(job)?.push.as_ref().map(|p| p.grace)
    }

    fn slot_jitter(&self, job: &str, slot: chrono::DateTime<chrono::Utc>) -> Duration {
        self.job(job)
            .and_then(|j| j.slot_jitter(slot))
            .unwrap_or_default()
    }

    fn open_windows(
        &self,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Vec<ops_worker_jobs::silence::OpenWindow> {
        self.maintenance
            .iter()
            .filter_map(|m| {
                let (_, until) = m.window.covering(at)?;
                Some(ops_worker_jobs::silence::OpenWindow {
                    name: m.name.clone(),
                    matches: m.matches.clone(),
                    until,
                })
            })
            .collect()
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

/// The file `--config` and `OPS_WORKER_CONFIG` default to.
pub const DEFAULT_CONFIG: &str = "schedules.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No file at the path: where it was looked for (absolute, so the
    /// directory shows) and how to point at another. The I/O error says no
    /// more than this.
    #[error(
        "no schedule file at {} ({})",
        absolute.display(),
        if *default {
            "ops-worker looks for ./schedules.toml in the current directory; set --config PATH or OPS_WORKER_CONFIG"
        } else {
            "the path given by --config or OPS_WORKER_CONFIG; without either, ops-worker looks for ./schedules.toml in the current directory"
        }
    )]
    Missing {
        absolute: PathBuf,
        /// The path is the default, not one the operator gave.
        default: bool,
    },
    #[error("{path}: cannot read the schedule file: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid { problems: Vec<Problem> },
}

impl Config {
    /// Reads and validates the file, expanding `${VAR}` from the environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ConfigError::Missing {
                    absolute: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
                    default: path == Path::new(DEFAULT_CONFIG),
                }
            } else {
                ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                }
            }
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
            warnings: Vec::new(),
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
            maintenance,
            default_retention,
            api,
        } = cx.document(env);
        // In file order, whichever table was checked first.
        cx.problems.sort_by_key(|p| (p.line, p.column));
        cx.warnings.sort_by_key(|p| (p.line, p.column));
        if cx.problems.is_empty() {
            Ok(Config {
                path: path.to_path_buf(),
                hash: sha256_hex(text),
                jobs,
                notify,
                people,
                oncall,
                maintenance,
                default_retention,
                warnings: cx.warnings,
                api,
            })
        } else {
            Err(ConfigError::Invalid {
                problems: cx.problems,
            })
        }
    }
}

/// Names of every job, for messages like "unknown job".
pub fn names(config: &Config) -> BTreeSet<&str> {
    config.jobs.iter().map(|j| j.name.as_str()).collect()
}

#[cfg(test)]
mod tests;
