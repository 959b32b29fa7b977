//! What jobs may read and write, as traits: `src/db` implements them for
//! PostgreSQL and SQLite, tests may fake them. Jobs never see SQL, Diesel or
//! which backend is in use.
//!
//! Each method is one consistent state change: where a change must also
//! enqueue notifications (an alert opening or resolving), the implementation
//! does both in one transaction, so a crash can neither lose nor repeat one.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// A storage failure, as one line with its cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

/// A service's state as one check saw it.
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    Up,
    /// Answered as expected, but slower than `degraded_after`.
    Degraded,
    Down,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Up => "up",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Down => "down",
        }
    }

    /// Up and degraded count as healthy for alerting; down does not.
    pub fn is_healthy(self) -> bool {
        self != HealthStatus::Down
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for HealthStatus {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s {
            "up" => Ok(HealthStatus::Up),
            "degraded" => Ok(HealthStatus::Degraded),
            "down" => Ok(HealthStatus::Down),
            other => Err(StoreError(format!("unknown health status {other:?}"))),
        }
    }
}

/// One poll of one target.
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthCheck {
    /// The target's `name`: the service.
    pub service: String,
    /// The `health` job that polled it.
    pub job_name: String,
    pub status: HealthStatus,
    pub http_status: Option<i32>,
    pub latency_ms: Option<i64>,
    /// Why it is down or degraded, one short line.
    pub error: Option<String>,
    pub checked_at: DateTime<Utc>,
}

/// The latest state of a service: what a dashboard reads (`service_health`).
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceHealth {
    pub service: String,
    pub job_name: String,
    pub status: HealthStatus,
    pub http_status: Option<i32>,
    pub latency_ms: Option<i64>,
    pub error: Option<String>,
    pub checked_at: DateTime<Utc>,
    /// Down checks in a row (0 after a healthy one).
    pub consecutive_failures: i32,
    /// Healthy (up or degraded) checks in a row (0 after a down one).
    pub consecutive_successes: i32,
    /// When the service entered its current status.
    pub since: DateTime<Utc>,
}

#[async_trait]
pub trait HealthStore: Send + Sync {
    /// Appends the checks to `health_checks` and folds them into
    /// `service_health` (counters and `since` computed by the database, so
    /// two writers cannot lose an update). One transaction.
    /// Returns the services whose status changed with their check (or
    /// that had none before), in the order of `checks`.
    async fn record_health(&self, checks: &[HealthCheck]) -> Result<Vec<String>, StoreError>;
    /// Deletes `health_checks` rows checked before `before`; returns how many.
    async fn prune_health_checks(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
    /// Every row of `service_health`, by service name.
    async fn service_health(&self) -> Result<Vec<ServiceHealth>, StoreError>;
}

/// Defines a text enum stored as lowercase words, with parsing and display.
macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        #[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = StoreError;
            fn from_str(s: &str) -> Result<Self, StoreError> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(StoreError(format!(concat!("unknown ", stringify!($name), " {:?}"), other))),
                }
            }
        }
    };
}

text_enum!(
    /// What an alert is about.
    AlertSource { Service = "service", Job = "job" }
);
text_enum!(
    /// Where an alert is in its life.
    AlertStatus { Open = "open", Acknowledged = "acknowledged", Resolved = "resolved" }
);
text_enum!(
    Severity { Critical = "critical", Warning = "warning", Info = "info" }
);
text_enum!(
    /// Why a notification is sent.
    NotificationEvent { Opened = "opened", Acknowledged = "acknowledged", Resolved = "resolved", Reminder = "reminder", Escalated = "escalated", Report = "report" }
);

/// One row of `alerts`.
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    pub id: i64,
    /// e.g. `system:service:api` or `job:nightly-backup`: at most one active alert each.
    pub fingerprint: String,
    pub source: AlertSource,
    /// The service or job name.
    pub subject: String,
    pub severity: Severity,
    pub status: AlertStatus,
    pub message: String,
    pub opened_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolution_note: Option<String>,
    pub escalation_level: i32,
    pub last_escalated_at: Option<DateTime<Utc>>,
    pub last_notified_at: Option<DateTime<Utc>>,
}

impl Alert {
    /// The notification payload for `event`: the JSON object the outbox
    /// stores and a `json` webhook receives; `text` is the one-line summary a
    /// `slack` webhook shows.
    pub fn payload(&self, event: NotificationEvent) -> serde_json::Value {
        let text = match event {
            NotificationEvent::Opened => format!("[{}] {}", self.severity, self.message),
            NotificationEvent::Acknowledged => format!(
                "[acknowledged] {}: acknowledged by {}",
                self.message,
                self.acknowledged_by.as_deref().unwrap_or("someone")
            ),
            NotificationEvent::Resolved => format!(
                "[resolved] {}{}",
                self.message,
                self.resolution_note
                    .as_deref()
                    .map(|n| format!(": {n}"))
                    .unwrap_or_default()
            ),
            NotificationEvent::Reminder => format!(
                "[{}] still open since {}: {}",
                self.severity,
                self.opened_at.format("%Y-%m-%d %H:%M UTC"),
                self.message
            ),
            // The `escalation` kind says which level and whom it pages, and
            // reports are not about an alert: both replace `text`.
            NotificationEvent::Escalated | NotificationEvent::Report => self.message.clone(),
        };
        serde_json::json!({
            "event": event,
            "alert_id": self.id,
            "fingerprint": self.fingerprint,
            "source": self.source,
            "subject": self.subject,
            "severity": self.severity,
            "status": self.status,
            "message": self.message,
            "opened_at": self.opened_at,
            "acknowledged_at": self.acknowledged_at,
            "acknowledged_by": self.acknowledged_by,
            "resolved_at": self.resolved_at,
            "resolution_note": self.resolution_note,
            "escalation_level": self.escalation_level,
            "text": text,
        })
    }
}

/// An alert to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlert {
    pub fingerprint: String,
    pub source: AlertSource,
    pub subject: String,
    pub severity: Severity,
    pub message: String,
    pub opened_at: DateTime<Utc>,
}

#[async_trait]
pub trait AlertStore: Send + Sync {
    /// Opens the alert unless one is active for its fingerprint (the database
    /// decides, so concurrent callers cannot both open one) and enqueues an
    /// `opened` notification per target, in one transaction. `Some` when this
    /// call opened it.
    async fn open_alert(
        &self,
        alert: &NewAlert,
        notify: &[String],
    ) -> Result<Option<Alert>, StoreError>;
    /// Resolves the active alert for `fingerprint`, if any, and enqueues a
    /// `resolved` notification to every target that was told it opened, in
    /// one transaction. `Some` when this call resolved it.
    async fn resolve_alert(
        &self,
        fingerprint: &str,
        note: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<Alert>, StoreError>;
    /// Enqueues reminder number `seq` of an open alert to `notify` (once per
    /// seq, however many callers) and stamps `last_notified_at`. True when
    /// this call enqueued it.
    async fn remind_alert(
        &self,
        alert_id: i64,
        seq: i64,
        at: DateTime<Utc>,
        notify: &[String],
    ) -> Result<bool, StoreError>;
    /// Moves an open alert's `escalation_level` from `from` to `to` and
    /// enqueues `pages`, in one transaction, only if the alert is still open
    /// at level `from` (a conditional update: of two callers racing from the
    /// same level one wins, the other changes nothing). Each page is enqueued
    /// once per (alert, step, target). True when this call escalated it.
    async fn escalate_alert(
        &self,
        alert_id: i64,
        from: i32,
        to: i32,
        at: DateTime<Utc>,
        pages: &[Page],
    ) -> Result<bool, StoreError>;
    /// Open and acknowledged alerts, oldest first.
    async fn active_alerts(&self) -> Result<Vec<Alert>, StoreError>;
    /// The ad-hoc silences active at `at` (`starts_at <= at < ends_at`), by id.
    async fn active_silences(&self, at: DateTime<Utc>) -> Result<Vec<Silence>, StoreError>;
}

/// An ad-hoc silence (`ops-worker silence add`): alerts whose fingerprint
/// matches `pattern` are silenced over `[starts_at, ends_at)` (see
/// [`crate::silence`]).
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Silence {
    pub id: i64,
    /// A fingerprint glob (`*` the only wildcard).
    pub pattern: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub reason: String,
    pub created_by: String,
}

impl Silence {
    /// Whether it silences at `at`.
    pub fn active(&self, at: DateTime<Utc>) -> bool {
        self.starts_at <= at && at < self.ends_at
    }
}

/// One notification of an escalation step.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The step it belongs to (1 = the policy's first level; counting on
    /// through repeated cycles).
    pub step: i32,
    /// The `[notify.NAME]` target.
    pub target: String,
    /// The JSON object the outbox stores.
    pub payload: serde_json::Value,
}

/// A finished run, as the `alerts` kind judges a job by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedRun {
    pub scheduled_for: DateTime<Utc>,
    /// `success`, `failed`, `timeout`, `panicked`, `interrupted`, `abandoned`
    /// (skipped slots are not runs and are left out).
    pub status: String,
    pub error: Option<String>,
    pub finished_at: DateTime<Utc>,
}

/// ops-worker's own figures for one job over a window: what the `metrics`
/// kind records with `own = true`.
#[derive(Debug, Clone, PartialEq)]
pub struct JobFigures {
    pub job: String,
    /// Runs scheduled in the window, by status (`success`, `failed`,
    /// `skipped`, ...), statuses sorted.
    pub runs: Vec<(String, i64)>,
    /// Of the finished runs that ran (not skipped).
    pub duration_ms_max: Option<i64>,
    pub duration_ms_avg: Option<f64>,
    /// `started_at - scheduled_for` of the scheduled and caught-up runs.
    pub lateness_ms_max: Option<i64>,
    /// When the job last succeeded, in the window or not.
    pub last_success: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait RunStore: Send + Sync {
    /// Per job with runs scheduled at or after `since`, its figures; sorted
    /// by job.
    async fn job_figures(&self, since: DateTime<Utc>) -> Result<Vec<JobFigures>, StoreError>;
    /// The newest scheduled or caught-up slot recorded per job, any status.
    async fn last_recorded_slots(
        &self,
    ) -> Result<std::collections::HashMap<String, DateTime<Utc>>, StoreError>;
    /// The newest `limit` finished, non-skipped runs of `job`, newest first.
    async fn recent_finished_runs(
        &self,
        job: &str,
        limit: i64,
    ) -> Result<Vec<FinishedRun>, StoreError>;
}

/// One sample of one series, as the `metrics` kind records it.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSample {
    pub job_name: String,
    pub name: String,
    /// Sorted by label name, no name twice.
    pub labels: Vec<(String, String)>,
    pub value: f64,
    pub collected_at: DateTime<Utc>,
}

/// One row of a read-only query: every column but the last is a label (the
/// column's name and its value as text), the last one is the number.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryRow {
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

#[async_trait]
pub trait MetricStore: Send + Sync {
    /// Runs one SQL statement that cannot change data (PostgreSQL: a `READ
    /// ONLY` transaction with `statement_timeout`; SQLite: a connection
    /// opened read-only) and returns its rows. The error says why, in one
    /// line: a write refused, a syntax error, a non-numeric last column.
    async fn query_read_only(
        &self,
        sql: &str,
        timeout: std::time::Duration,
    ) -> Result<Vec<QueryRow>, StoreError>;
    /// Writes samples in batches, all or none.
    async fn record_samples(&self, samples: &[MetricSample]) -> Result<(), StoreError>;
    /// Deletes samples collected before `before`, in small batches so no
    /// statement holds locks for long; returns how many went.
    async fn prune_samples(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// A run as a report reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFact {
    pub job: String,
    /// `running`, `success`, `failed`, `timeout`, `panicked`, `interrupted`,
    /// `skipped` or `abandoned`.
    pub status: String,
    /// `schedule`, `catch_up`, `manual` or `retry`.
    pub trigger: String,
    pub attempt: i32,
    pub scheduled_for: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
    /// None while running.
    pub duration_ms: Option<i64>,
    /// Slots before this one that were not run.
    pub missed: i32,
    /// The slot's `jitter` delay (ms) when the run waited for one: its
    /// lateness counts from `scheduled_for` plus this.
    pub jitter_ms: Option<i64>,
}

/// A report as stored in `reports`: one per (name, period).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReport {
    pub name: String,
    /// `2026-11-21` for a day, `2026-W47` for an ISO week.
    pub period: String,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub generated_at: DateTime<Utc>,
    pub json: String,
    pub markdown: String,
}

#[async_trait]
pub trait ReportStore: Send + Sync {
    /// Runs with `scheduled_for` in `[start, end)`, oldest first.
    async fn runs_between(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<RunFact>, StoreError>;
    /// Checks with `checked_at` in `[start, end)` and, per service, the
    /// newest check before `start` (the state the period began in); sorted
    /// by service, then time.
    async fn checks_between(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<HealthCheck>, StoreError>;
    /// Alerts opened before `end` and not resolved before `start`, by id.
    async fn alerts_between(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<Alert>, StoreError>;
    /// Samples of the series named `names` collected in `[start, end)`.
    async fn samples_between(
        &self,
        names: &[String],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<MetricSample>, StoreError>;
    /// Stores `report`, replacing the one with its name and period, and in
    /// the same transaction enqueues `payload` as a `report` notification
    /// for each of `notify`, once per (name, period, target): re-running a
    /// period updates the report without announcing it again.
    async fn save_report(
        &self,
        report: &StoredReport,
        notify: &[String],
        payload: &serde_json::Value,
    ) -> Result<(), StoreError>;
}

/// Everything a job may touch in storage.
pub trait Store: HealthStore + AlertStore + RunStore + MetricStore + ReportStore {}
impl<T: HealthStore + AlertStore + RunStore + MetricStore + ReportStore> Store for T {}

/// Keeps what jobs write in memory: for tests of a kind without a database,
/// and for [`crate::JobContext::standalone`].
#[derive(Debug, Default)]
pub struct MemoryStore {
    pub checks: std::sync::Mutex<Vec<HealthCheck>>,
    pub samples: std::sync::Mutex<Vec<MetricSample>>,
}

/// The memory store reads nothing back for reports; reports are tested
/// against the real databases.
#[async_trait]
impl ReportStore for MemoryStore {
    async fn runs_between(
        &self,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
    ) -> Result<Vec<RunFact>, StoreError> {
        Ok(Vec::new())
    }
    async fn checks_between(
        &self,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
    ) -> Result<Vec<HealthCheck>, StoreError> {
        Ok(Vec::new())
    }
    async fn alerts_between(
        &self,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
    ) -> Result<Vec<Alert>, StoreError> {
        Ok(Vec::new())
    }
    async fn samples_between(
        &self,
        _: &[String],
        _: DateTime<Utc>,
        _: DateTime<Utc>,
    ) -> Result<Vec<MetricSample>, StoreError> {
        Ok(Vec::new())
    }
    async fn save_report(
        &self,
        _: &StoredReport,
        _: &[String],
        _: &serde_json::Value,
    ) -> Result<(), StoreError> {
        Err(StoreError("the memory store keeps no reports".into()))
    }
}

/// The memory store keeps samples; it has no SQL to run.
#[async_trait]
impl MetricStore for MemoryStore {
    async fn query_read_only(
        &self,
        _: &str,
        _: std::time::Duration,
    ) -> Result<Vec<QueryRow>, StoreError> {
        Err(StoreError("the memory store runs no SQL".into()))
    }
    async fn record_samples(&self, samples: &[MetricSample]) -> Result<(), StoreError> {
        self.samples.lock().unwrap().extend_from_slice(samples);
        Ok(())
    }
    async fn prune_samples(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut samples = self.samples.lock().unwrap();
        let n = samples.len();
        samples.retain(|s| s.collected_at >= before);
        Ok((n - samples.len()) as u64)
    }
}

#[async_trait]
impl RunStore for MemoryStore {
    async fn job_figures(&self, _: DateTime<Utc>) -> Result<Vec<JobFigures>, StoreError> {
        Ok(Vec::new())
    }
    async fn last_recorded_slots(
        &self,
    ) -> Result<std::collections::HashMap<String, DateTime<Utc>>, StoreError> {
        Ok(Default::default())
    }
    async fn recent_finished_runs(&self, _: &str, _: i64) -> Result<Vec<FinishedRun>, StoreError> {
        Ok(Vec::new())
    }
}

/// The memory store keeps no alerts: the `alerts` kind is tested against
/// the real databases.
#[async_trait]
impl AlertStore for MemoryStore {
    async fn open_alert(&self, _: &NewAlert, _: &[String]) -> Result<Option<Alert>, StoreError> {
        Err(no_alerts())
    }
    async fn resolve_alert(
        &self,
        _: &str,
        _: &str,
        _: DateTime<Utc>,
    ) -> Result<Option<Alert>, StoreError> {
        Err(no_alerts())
    }
    async fn remind_alert(
        &self,
        _: i64,
        _: i64,
        _: DateTime<Utc>,
        _: &[String],
    ) -> Result<bool, StoreError> {
        Err(no_alerts())
    }
    async fn escalate_alert(
        &self,
        _: i64,
        _: i32,
        _: i32,
        _: DateTime<Utc>,
        _: &[Page],
    ) -> Result<bool, StoreError> {
        Err(no_alerts())
    }
    async fn active_alerts(&self) -> Result<Vec<Alert>, StoreError> {
        Err(no_alerts())
    }
    async fn active_silences(&self, _: DateTime<Utc>) -> Result<Vec<Silence>, StoreError> {
        Err(no_alerts())
    }
}

fn no_alerts() -> StoreError {
    StoreError("the memory store keeps no alerts".into())
}

#[async_trait]
impl HealthStore for MemoryStore {
    async fn record_health(&self, checks: &[HealthCheck]) -> Result<Vec<String>, StoreError> {
        let mut stored = self.checks.lock().unwrap();
        let mut changed = Vec::new();
        for c in checks {
            let last = stored.iter().rev().find(|s| s.service == c.service);
            if last.is_none_or(|s| s.status != c.status) {
                changed.push(c.service.clone());
            }
            stored.push(c.clone());
        }
        Ok(changed)
    }

    async fn prune_health_checks(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut checks = self.checks.lock().unwrap();
        let n = checks.len();
        checks.retain(|c| c.checked_at >= before);
        Ok((n - checks.len()) as u64)
    }

    async fn service_health(&self) -> Result<Vec<ServiceHealth>, StoreError> {
        Err(StoreError(
            "the memory store keeps checks only, not service_health".into(),
        ))
    }
}
