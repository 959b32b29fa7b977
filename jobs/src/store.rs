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
    async fn record_health(&self, checks: &[HealthCheck]) -> Result<(), StoreError>;
    /// Deletes `health_checks` rows checked before `before`; returns how many.
    async fn prune_health_checks(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
    /// Every row of `service_health`, by service name.
    async fn service_health(&self) -> Result<Vec<ServiceHealth>, StoreError>;
}

/// Everything a job may touch in storage.
pub trait Store: HealthStore {}
impl<T: HealthStore> Store for T {}

/// Keeps what jobs write in memory: for tests of a kind without a database,
/// and for [`crate::JobContext::standalone`].
#[derive(Debug, Default)]
pub struct MemoryStore {
    pub checks: std::sync::Mutex<Vec<HealthCheck>>,
}

#[async_trait]
impl HealthStore for MemoryStore {
    async fn record_health(&self, checks: &[HealthCheck]) -> Result<(), StoreError> {
        self.checks.lock().unwrap().extend_from_slice(checks);
        Ok(())
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
