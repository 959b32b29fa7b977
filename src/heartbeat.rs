//! The worker's heartbeat: the daemon registers itself in `workers` at
//! start, refreshes `heartbeat_at` every [`HEARTBEAT_EVERY`] from a task on
//! the scheduler's runtime, and records a clean stop. `ops-worker health`
//! (the container's HEALTHCHECK) judges the row with [`judge`].
//!
//! Every live daemon also watches the others: with each beat the runner
//! marks `abandoned` the `running` runs of workers whose heartbeat is older
//! than `dead_after` (`Runner::abandon_runs_of_dead_workers`), so a run
//! whose process died is never left `running`.
//!
//! With each heartbeat a daemon also re-reads the paused jobs
//! ([`refresh_pauses`]), so a pause reaches every replica within
//! [`HEARTBEAT_EVERY`].
//!
//! A heartbeat that stops means the process is gone, paused, or its runtime
//! is wedged: all reasons for an orchestrator to restart it. The database
//! being unreachable stops it too, which is right for a worker whose every
//! run is recorded there.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ops_worker_jobs::Clock;
use tokio_util::sync::CancellationToken;

use crate::db::{AbandonedRun, Db, Worker};
use crate::runner::{Pauses, Peers, Runner};

/// How often the running scheduler refreshes its heartbeat.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// How old a heartbeat `ops-worker health` accepts by default: six beats,
/// so a slow database or a busy host does not flap the healthcheck.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(30);

/// The host name, if the kernel tells it.
pub fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

/// This process, as it registers.
pub fn this_worker(id: &str, config_hash: &str, now: DateTime<Utc>) -> Worker {
    Worker {
        id: id.to_string(),
        host: hostname().unwrap_or_default(),
        pid: std::process::id() as i32,
        version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: now,
        heartbeat_at: now,
        config_hash: config_hash.to_string(),
        stopped_at: None,
        config_error: None,
    }
}

/// Refreshes the heartbeat until `stop` fires. A failed refresh is logged
/// once per outage; a row taken over or deleted is registered again.
///
/// With `reaper`, each beat also re-reads the paused jobs and the live
/// workers into its runner, has the runner mark `abandoned` the runs of
/// workers with no heartbeat for its `dead_after`, and hands each such run
/// to its `abandoned` channel.
///
/// With `config`, each heartbeat also writes the config the worker runs
/// (a reload changes it) and why the file on disk was rejected, if it was.
pub async fn beat(
    db: Db,
    mut me: Worker,
    clock: Arc<dyn Clock>,
    stop: CancellationToken,
    reaper: Option<Reaper>,
    config: Option<tokio::sync::watch::Receiver<ConfigState>>,
) {
    let mut failing = false;
    // Since when this worker's own heartbeats have all been written.
    let mut healthy_since = Some(clock.now());
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(HEARTBEAT_EVERY) => {}
        }
        let now = clock.now();
        if let Some(config) = &config {
            let c = config.borrow();
            me.config_hash.clone_from(&c.hash);
            me.config_error.clone_from(&c.error);
        }
        let result = match db.heartbeat(&me, now).await {
            Ok(true) => Ok(()),
            Ok(false) => {
                tracing::warn!(worker_id = %me.id, "the worker's row was gone or taken over: registering again");
                let again = Worker {
                    heartbeat_at: now,
                    ..me.clone()
                };
                db.register_worker(&again).await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(()) if failing => {
                failing = false;
                healthy_since = Some(now);
                tracing::info!("heartbeat written again");
            }
            Ok(()) => {}
            Err(e) if !failing => {
                failing = true;
                healthy_since = None;
                tracing::warn!(error = %crate::error_chain(&e), "cannot write the heartbeat; `ops-worker health` fails until it is written again");
            }
            Err(_) => {}
        }
        if let Some(r) = &reaper {
            // Whatever the heartbeat's own fate: a failed read keeps the
            // pauses last read.
            if let Err(e) = refresh_pauses(&db, r.runner.pauses(), now).await {
                tracing::debug!(error = %crate::error_chain(&e), "cannot re-read job_pauses; the last known pauses hold");
            }
        }
        if let (Some(r), Some(since)) = (&reaper, healthy_since) {
            let runs = r
                .runner
                .abandon_runs_of_dead_workers(now, since, r.dead_after)
                .await;
            for run in runs {
                let _ = r.abandoned.send(run);
            }
            refresh_peers(&db, r.runner.peers(), now, r.dead_after).await;
        }
    }
}

/// Reads the live daemons into `peers`, for spreading slots over them. A
/// failed read keeps the last list.
pub async fn refresh_peers(db: &Db, peers: &Peers, now: DateTime<Utc>, dead_after: Duration) {
    let dead_after = chrono::Duration::from_std(dead_after).unwrap_or(chrono::Duration::MAX);
    if let Ok(ids) = db.live_workers(now - dead_after).await {
        peers.set(ids);
    }
}

/// Reads `job_pauses` into `pauses` (at `now`, for logging which pauses
/// started or ended). On error `pauses` is left as it was.
pub async fn refresh_pauses(
    db: &Db,
    pauses: &Pauses,
    now: DateTime<Utc>,
) -> Result<(), crate::db::DbError> {
    pauses.set(db.pauses().await?, now);
    Ok(())
}

/// The config a worker runs, as its heartbeat reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigState {
    /// SHA-256 of the schedules.toml it runs.
    pub hash: String,
    /// Why the file on disk is not the one it runs (a reload rejected it).
    pub error: Option<String>,
}

/// What a daemon's heartbeat does about other workers.
pub struct Reaper {
    /// A worker with no heartbeat for this long is dead.
    pub dead_after: Duration,
    /// Its live workers and paused jobs are refreshed with each heartbeat,
    /// and it marks the dead workers' runs abandoned.
    pub runner: Arc<Runner>,
    /// Where the runs it marks abandoned go (the daemon retries them).
    pub abandoned: tokio::sync::mpsc::UnboundedSender<AbandonedRun>,
}

/// Whether `worker` (the row of worker `id`, if any) is alive at `now`: its
/// heartbeat at most `max_age` old and no clean stop recorded. `Ok` and `Err`
/// each carry one line for the operator.
pub fn judge(
    id: &str,
    worker: Option<&Worker>,
    now: DateTime<Utc>,
    max_age: Duration,
) -> Result<String, String> {
    let Some(w) = worker else {
        return Err(format!(
            "worker {id:?} has never run against this database (is OPS_WORKER_ID the same as the daemon's?)"
        ));
    };
    let age = (now - w.heartbeat_at).to_std().unwrap_or_default();
    let ago = humantime::format_duration(Duration::from_secs(age.as_secs()));
    if let Some(stopped) = w.stopped_at {
        return Err(format!(
            "worker {id:?} stopped at {}",
            stopped.format("%Y-%m-%d %H:%M:%S UTC")
        ));
    }
    if age > max_age {
        return Err(format!(
            "worker {id:?}: last heartbeat {ago} ago, more than {}",
            humantime::format_duration(max_age)
        ));
    }
    Ok(format!(
        "worker {id:?}: alive, last heartbeat {ago} ago (pid {}, version {}, config {})",
        w.pid,
        w.version,
        short_hash(&w.config_hash)
    ))
}

/// The first 12 hex digits of a config hash, as `status` shows it.
pub fn short_hash(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn worker(heartbeat: &str, stopped: Option<&str>) -> Worker {
        Worker {
            id: "w1".into(),
            host: "h".into(),
            pid: 7,
            version: "0.1.0".into(),
            started_at: at("2026-11-24T10:00:00Z"),
            heartbeat_at: at(heartbeat),
            config_hash: "3b35851ee1d5e276529585de70edeb53".into(),
            stopped_at: stopped.map(at),
            config_error: None,
        }
    }

    #[test]
    fn fresh_stale_stopped_and_unknown() {
        let now = at("2026-11-24T10:01:00Z");
        let max = DEFAULT_MAX_AGE;
        assert_eq!(
            judge("w1", Some(&worker("2026-11-24T10:00:30Z", None)), now, max),
            Ok("worker \"w1\": alive, last heartbeat 30s ago (pid 7, version 0.1.0, config 3b35851ee1d5)".into())
        );
        assert_eq!(
            judge("w1", Some(&worker("2026-11-24T10:00:29Z", None)), now, max),
            Err("worker \"w1\": last heartbeat 31s ago, more than 30s".into())
        );
        assert_eq!(
            judge(
                "w1",
                Some(&worker(
                    "2026-11-24T10:00:50Z",
                    Some("2026-11-24T10:00:50Z")
                )),
                now,
                max
            ),
            Err("worker \"w1\" stopped at 2026-11-24 10:00:50 UTC".into())
        );
        assert!(judge("w2", None, now, max)
            .unwrap_err()
            .contains("has never run against this database"));
        // A heartbeat "from the future" (clocks apart) is fresh, not negative.
        assert!(judge("w1", Some(&worker("2026-11-24T10:02:00Z", None)), now, max).is_ok());
    }
}
