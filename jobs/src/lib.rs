//! The job kinds ops-worker runs, behind one object-safe [`Job`] trait.
//!
//! This crate owns what a job *does*. It never knows when a job runs, how a
//! run is recorded or how the CLI looks: the scheduler, the runner and the
//! storage live in the `ops-worker` crate and reach jobs only through
//! [`build`] and [`Job::run`].
//!
//! Adding a kind: write `src/<kind>.rs` with a settings struct (serde,
//! `deny_unknown_fields`) and a type implementing [`Job`], then add one arm to
//! the `match` in [`build`] and its name to [`KINDS`].

pub mod alerts;
pub mod clock;
pub mod command;
pub mod escalation;
pub mod health;
pub mod localtime;
pub mod metrics;
pub mod oncall;
pub mod prom;
pub mod push;
pub mod report;
pub mod silence;
pub mod store;
pub mod tls;
pub mod tz;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

pub use clock::{Clock, ManualClock, SystemClock};
/// The HTTP client crate jobs use, re-exported so the runtime names the same version.
pub use reqwest;
pub use store::{Store, StoreError};

/// Every kind [`build`] knows, in the order docs/kinds.md documents them.
pub const KINDS: &[&str] = &[
    "command",
    "health",
    "alerts",
    "escalation",
    "metrics",
    "report",
    "push",
];

/// One job, configured and ready to run any number of times.
///
/// The runner calls [`Job::run`] once per attempt, on a runtime of its own,
/// under a timeout. A job should return soon after `ctx.cancel` fires (timeout
/// or shutdown); one that does not is aborted at its next await point.
#[async_trait]
pub trait Job: Send + Sync + 'static {
    async fn run(&self, ctx: JobContext) -> Result<JobOutput, JobError>;

    /// The longest a run waits on something outside ops-worker that hangs
    /// until its own timeout (a health job's targets) before it records
    /// what it found; `None` when the kind has no such timeouts. The job's
    /// `timeout` must leave room for it: otherwise one hanging target times
    /// the whole run out, and the run is recorded as failed instead of the
    /// target as down.
    fn longest_wait(&self) -> Option<LongestWait> {
        None
    }
}

/// What [`Job::longest_wait`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LongestWait {
    pub wait: std::time::Duration,
    /// What waits that long and what a run that times out because of it
    /// loses, for a warning: `target "api" may take up to 5s (its timeout),
    /// and ...`.
    pub why: String,
}

/// What a job receives for one attempt: which slot it runs for and the
/// services it may touch. Everything a job touches comes in through here so
/// that tests can hand it a manual clock.
#[derive(Clone)]
pub struct JobContext {
    /// The job's name in schedules.toml.
    pub job: Arc<str>,
    /// The slot this run stands for (whole seconds, UTC). A run that is late,
    /// caught up or re-run describes this instant, not "now".
    pub scheduled_for: DateTime<Utc>,
    /// 1 for the first attempt of a slot, 2 for its first retry, ...
    pub attempt: u32,
    /// Fired when the run must stop: its timeout passed or the worker shuts down.
    pub cancel: CancellationToken,
    pub clock: Arc<dyn Clock>,
    /// The shared HTTP client (see [`health::http_client`]).
    pub http: reqwest::Client,
    /// The database, through what jobs may do with it.
    pub store: Arc<dyn Store>,
    /// The worker's schedules, read-only: the jobs and their next slots.
    pub timeline: Arc<dyn Timeline>,
    /// Who can be paged and who is on call (`[people]`, `[oncall]`).
    pub directory: Arc<dyn Directory>,
}

/// The scheduler's view of time, for jobs that judge other jobs (`alerts`):
/// slots come from the schedules themselves, so a monitor cannot disagree
/// with the scheduler about time zones or intervals.
pub trait Timeline: Send + Sync {
    /// The enabled jobs, with their timeouts.
    fn jobs(&self) -> Vec<(String, std::time::Duration)>;
    /// The first slot of `job` after `slot` on its schedule.
    fn next_slot_after(&self, job: &str, slot: DateTime<Utc>) -> Option<DateTime<Utc>>;
    /// How long after `slot` the job's scheduled run starts on purpose (its
    /// `jitter` for that slot); zero for a job without jitter.
    fn slot_jitter(&self, _job: &str, _slot: DateTime<Utc>) -> std::time::Duration {
        std::time::Duration::ZERO
    }
    /// A `push` job's `grace`: its slot is missed when no signal came by
    /// the slot plus this (instead of `job_grace`, which is for jobs
    /// ops-worker runs). `None` for every other kind.
    fn push_grace(&self, _job: &str) -> Option<std::time::Duration> {
        None
    }
    /// The `[maintenance.NAME]` windows open at `at`; none by default.
    fn open_windows(&self, _at: DateTime<Utc>) -> Vec<silence::OpenWindow> {
        Vec::new()
    }
}

/// A timeline with no jobs, for contexts outside the worker.
pub struct NoJobs;

impl Timeline for NoJobs {
    fn jobs(&self) -> Vec<(String, std::time::Duration)> {
        Vec::new()
    }
    fn next_slot_after(&self, _: &str, _: DateTime<Utc>) -> Option<DateTime<Utc>> {
        None
    }
}

/// The people and on-call schedules of schedules.toml, for jobs that page
/// someone (`escalation`).
pub trait Directory: Send + Sync {
    /// The notification targets that reach person `name` (empty if unknown).
    fn person_targets(&self, name: &str) -> Vec<String>;
    /// Who is on call on schedule `schedule` at `at`: `None` when nobody is
    /// (or the schedule is unknown).
    fn on_call(&self, schedule: &str, at: DateTime<Utc>) -> Option<String>;
}

/// A directory with nobody in it, for contexts outside the worker.
pub struct NoPeople;

impl Directory for NoPeople {
    fn person_targets(&self, _: &str) -> Vec<String> {
        Vec::new()
    }
    fn on_call(&self, _: &str, _: DateTime<Utc>) -> Option<String> {
        None
    }
}

impl JobContext {
    /// A context outside the worker: the shared HTTP client and a
    /// [`store::MemoryStore`]. For tests and tools.
    pub fn standalone(
        job: &str,
        scheduled_for: DateTime<Utc>,
        clock: Arc<dyn Clock>,
    ) -> JobContext {
        JobContext {
            job: job.into(),
            scheduled_for,
            attempt: 1,
            cancel: CancellationToken::new(),
            clock,
            http: health::http_client(),
            store: Arc::new(store::MemoryStore::default()),
            timeline: Arc::new(NoJobs),
            directory: Arc::new(NoPeople),
        }
    }
}

/// The first line of `s`, trimmed, at most `max` characters (the last one
/// then `…`): how a reason is kept short enough for a record or a log line.
pub fn first_line_clipped(s: &str, max: usize) -> String {
    let line = s.lines().next().unwrap_or("").trim();
    if line.chars().count() <= max {
        line.to_string()
    } else {
        line.chars().take(max.saturating_sub(1)).collect::<String>() + "…"
    }
}

/// What a successful run leaves in its record.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct JobOutput {
    /// A short tail of what the job printed or produced, for `history`.
    pub output: Option<String>,
}

/// Why a run failed, in one line, plus what it printed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct JobError {
    pub message: String,
    pub output: Option<String>,
}

impl JobError {
    pub fn new(message: impl Into<String>) -> Self {
        JobError {
            message: message.into(),
            output: None,
        }
    }
}

/// Why a job could not be built from its settings.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("unknown kind {kind:?} (known kinds: {})", KINDS.join(", "))]
    UnknownKind { kind: String },
    /// A settings error from serde; its span points into schedules.toml.
    #[error("{}", .0.message())]
    Settings(#[from] toml::de::Error),
    /// Settings that parse but do not make sense together.
    #[error("{0}")]
    Invalid(String),
}

/// The kind's settings: the job's table in schedules.toml minus the keys the
/// scheduler owns (kind, every, cron, timezone, timeout, ...), with `${VAR}`
/// already expanded. Deserializing from it keeps spans, so errors point at the
/// offending key or value.
pub type Settings<'i> = toml::de::ValueDeserializer<'i>;

/// The one registration point: kind name to constructor, for a job on UTC.
pub fn build(kind: &str, name: &str, settings: Settings<'_>) -> Result<Arc<dyn Job>, BuildError> {
    build_in(kind, name, crate::tz::Tz::UTC, settings)
}

/// [`build`] for a job whose `timezone` is `timezone` (kinds with a calendar,
/// such as `report`, use it).
pub fn build_in(
    kind: &str,
    name: &str,
    timezone: crate::tz::Tz,
    settings: Settings<'_>,
) -> Result<Arc<dyn Job>, BuildError> {
    match kind {
        "command" => Ok(Arc::new(command::CommandJob::from_settings(
            name, settings,
        )?)),
        "health" => Ok(Arc::new(health::HealthJob::from_settings(name, settings)?)),
        "alerts" => Ok(Arc::new(alerts::AlertsJob::from_settings(name, settings)?)),
        "escalation" => Ok(Arc::new(escalation::EscalationJob::from_settings(
            name, settings,
        )?)),
        "metrics" => Ok(Arc::new(metrics::MetricsJob::from_settings(
            name, settings,
        )?)),
        "report" => Ok(Arc::new(report::ReportJob::from_settings(
            name, timezone, settings,
        )?)),
        "push" => Ok(Arc::new(push::PushJob::from_settings(name, settings)?)),
        other => Err(BuildError::UnknownKind {
            kind: other.to_string(),
        }),
    }
}
