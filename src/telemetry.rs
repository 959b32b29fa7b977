//! The worker's own Prometheus metrics and the `/metrics` endpoint that
//! serves them when `METRICS_ADDR` is set (and only then: the worker opens
//! no port unless asked).
//!
//! The runner and the scheduler update a [`Telemetry`] as runs happen; this
//! file owns the metric names and their buckets. Encoding is
//! `prometheus-client`'s (OpenMetrics text, which Prometheus scrapes); the
//! route that serves it is `src/http`'s, on the same stack as the API.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::db::RunStatus;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabel {
    job: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobStatus {
    job: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Info {
    hash: String,
    version: String,
    worker_id: String,
}

type Seconds = Gauge<f64, AtomicU64>;
type Histograms = Family<JobLabel, Histogram, fn() -> Histogram>;

fn duration_buckets() -> Histogram {
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
        600.0,
    ])
}

fn lateness_buckets() -> Histogram {
    Histogram::new([
        0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
    ])
}

/// Every metric the worker exports.
pub struct Telemetry {
    registry: Registry,
    runs: Family<JobStatus, Counter>,
    duration: Histograms,
    lateness: Histograms,
    last_success: Family<JobLabel, Seconds>,
    next_fire: Family<JobLabel, Seconds>,
    running: Family<JobLabel, Gauge>,
    missed: Family<JobLabel, Counter>,
    skipped: Family<JobLabel, Counter>,
    ping_rate_limited: Family<JobLabel, Counter>,
    up: Gauge,
    info: Family<Info, Gauge>,
    reload_ok: Gauge,
    reload_success: Seconds,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry::new()
    }
}

impl Telemetry {
    pub fn new() -> Telemetry {
        let mut t = Telemetry {
            registry: Registry::with_prefix("ops_worker"),
            runs: Family::default(),
            duration: Family::new_with_constructor(duration_buckets),
            lateness: Family::new_with_constructor(lateness_buckets),
            last_success: Family::default(),
            next_fire: Family::default(),
            running: Family::default(),
            missed: Family::default(),
            skipped: Family::default(),
            ping_rate_limited: Family::default(),
            up: Gauge::default(),
            info: Family::default(),
            reload_ok: Gauge::default(),
            reload_success: Seconds::default(),
        };
        let r = &mut t.registry;
        r.register(
            "runs",
            "Finished runs (attempts) by job and status: success, failed, timeout, panicked, interrupted, skipped",
            t.runs.clone(),
        );
        r.register(
            "run_duration_seconds",
            "How long runs took, by job",
            t.duration.clone(),
        );
        r.register(
            "fire_lateness_seconds",
            "From a scheduled slot to its run's start (on-time runs only), by job",
            t.lateness.clone(),
        );
        r.register(
            "last_success_timestamp_seconds",
            "When the job's last successful run in this process finished (Unix time)",
            t.last_success.clone(),
        );
        r.register(
            "next_fire_timestamp_seconds",
            "The job's next slot (Unix time)",
            t.next_fire.clone(),
        );
        r.register("running", "Runs going now, by job", t.running.clone());
        r.register(
            "missed_slots",
            "Slots that passed without a run of their own (worker down or paused), by job",
            t.missed.clone(),
        );
        r.register(
            "skipped_slots",
            "Slots skipped by the overlap policy, by job",
            t.skipped.clone(),
        );
        r.register(
            "ping_rate_limited",
            "Push signals refused with 429: more than the limit for the job in one second, by job",
            t.ping_rate_limited.clone(),
        );
        r.register("up", "1 while the worker runs", t.up.clone());
        r.register(
            "config_info",
            "The loaded schedules.toml's SHA-256, with the version and worker id; always 1",
            t.info.clone(),
        );
        r.register(
            "config_last_reload_successful",
            "0 while the last schedules.toml read failed validation (the previous schedule still runs), else 1",
            t.reload_ok.clone(),
        );
        r.register(
            "config_last_reload_success_timestamp_seconds",
            "When the running schedules.toml was loaded (Unix time)",
            t.reload_success.clone(),
        );
        t
    }

    /// The worker started with this config.
    pub fn started(&self, config_hash: &str, worker_id: &str, at: DateTime<Utc>) {
        self.up.set(1);
        self.config_loaded(config_hash, worker_id, at);
    }

    /// A schedules.toml was loaded (at start or by a reload): it replaces
    /// the one `config_info` showed.
    pub fn config_loaded(&self, config_hash: &str, worker_id: &str, at: DateTime<Utc>) {
        self.info.clear();
        self.info
            .get_or_create(&Info {
                hash: config_hash.to_string(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                worker_id: worker_id.to_string(),
            })
            .set(1);
        self.reload_ok.set(1);
        self.reload_success.set(unix(at));
    }

    /// A changed schedules.toml was rejected; the running one stays.
    pub fn config_rejected(&self) {
        self.reload_ok.set(0);
    }

    /// A job left the schedule: its next fire is no longer due.
    pub fn job_removed(&self, job: &str) {
        self.next_fire.remove(&label(job));
    }

    pub fn next_fire(&self, job: &str, at: DateTime<Utc>) {
        self.next_fire.get_or_create(&label(job)).set(unix(at));
    }

    pub fn missed(&self, job: &str, n: u64) {
        if n > 0 {
            self.missed.get_or_create(&label(job)).inc_by(n);
        }
    }

    /// A push signal of `job` was refused: too many in one second.
    pub fn ping_rate_limited(&self, job: &str) {
        self.ping_rate_limited.get_or_create(&label(job)).inc();
    }

    pub fn skipped(&self, job: &str) {
        self.skipped.get_or_create(&label(job)).inc();
        self.count(job, RunStatus::Skipped);
    }

    pub fn run_started(&self, job: &str, lateness: Option<Duration>) {
        self.running.get_or_create(&label(job)).inc();
        if let Some(l) = lateness {
            self.lateness
                .get_or_create(&label(job))
                .observe(l.as_secs_f64());
        }
    }

    pub fn run_finished(
        &self,
        job: &str,
        status: RunStatus,
        took: Duration,
        finished_at: DateTime<Utc>,
    ) {
        self.running.get_or_create(&label(job)).dec();
        self.duration
            .get_or_create(&label(job))
            .observe(took.as_secs_f64());
        self.count(job, status);
        if status == RunStatus::Success {
            self.last_success
                .get_or_create(&label(job))
                .set(unix(finished_at));
        }
    }

    fn count(&self, job: &str, status: RunStatus) {
        self.runs
            .get_or_create(&JobStatus {
                job: job.to_string(),
                status: status.to_string(),
            })
            .inc();
    }

    /// The exposition text (served with content type
    /// `application/openmetrics-text; version=1.0.0; charset=utf-8`).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

fn label(job: &str) -> JobLabel {
    JobLabel {
        job: job.to_string(),
    }
}

fn unix(t: DateTime<Utc>) -> f64 {
    t.timestamp_micros() as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_runs_durations_and_timestamps() {
        let t = Telemetry::new();
        let at = DateTime::parse_from_rfc3339("2026-11-24T10:00:00Z")
            .unwrap()
            .to_utc();
        t.started("3b35851ee1d5", "w1", at);
        t.next_fire("backup", at);
        t.run_started("backup", Some(Duration::from_micros(700)));
        t.run_finished("backup", RunStatus::Success, Duration::from_millis(30), at);
        t.run_started("backup", None);
        t.run_finished("backup", RunStatus::Failed, Duration::from_secs(2), at);
        t.skipped("backup");
        t.missed("backup", 3);
        let text = t.render();
        for line in [
            "ops_worker_runs_total{job=\"backup\",status=\"success\"} 1",
            "ops_worker_runs_total{job=\"backup\",status=\"failed\"} 1",
            "ops_worker_runs_total{job=\"backup\",status=\"skipped\"} 1",
            "ops_worker_run_duration_seconds_count{job=\"backup\"} 2",
            "ops_worker_run_duration_seconds_bucket{le=\"0.05\",job=\"backup\"} 1",
            "ops_worker_fire_lateness_seconds_bucket{le=\"0.001\",job=\"backup\"} 1",
            "ops_worker_fire_lateness_seconds_count{job=\"backup\"} 1",
            "ops_worker_last_success_timestamp_seconds{job=\"backup\"} 1795514400.0",
            "ops_worker_next_fire_timestamp_seconds{job=\"backup\"} 1795514400.0",
            "ops_worker_running{job=\"backup\"} 0",
            "ops_worker_missed_slots_total{job=\"backup\"} 3",
            "ops_worker_skipped_slots_total{job=\"backup\"} 1",
            "ops_worker_up 1",
            "ops_worker_config_info{hash=\"3b35851ee1d5\",version=\"0.1.0\",worker_id=\"w1\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
        }
    }
}
