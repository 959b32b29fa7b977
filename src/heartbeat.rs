//! The worker's heartbeat: the daemon registers itself in `workers` at
//! start ([`claim`], which refuses a worker id another live process holds),
//! refreshes `heartbeat_at` every [`HEARTBEAT_EVERY`] from a task on
//! the scheduler's runtime, and records a clean stop. `ops-worker health`
//! (the container's HEALTHCHECK) judges the row with [`judge`].
//!
//! Every live daemon also watches the others: with each beat the runner
//! marks `abandoned` the `running` runs of workers whose heartbeat is older
//! than `dead_after` (`Runner::abandon_runs_of_dead_workers`), so a run
//! whose process died is never left `running`; and ends `timeout` the
//! starts of push jobs with no finish within their `timeout`
//! (`Runner::time_out_push_starts`).
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
/// After how long without a heartbeat a worker counts as dead, unless
/// `run --dead-after` says otherwise: four beats.
pub const DEFAULT_DEAD_AFTER: Duration = Duration::from_secs(20);
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

/// A starting daemon found its worker id held by a live process.
#[derive(Debug, thiserror::Error)]
#[error(
    "worker id {id:?} is in use by a running worker (pid {pid} on host {host:?}, last heartbeat {ago} ago): \
     set OPS_WORKER_ID to an id of its own for each worker (it defaults to the host name), or stop the other"
)]
pub struct WorkerIdTaken {
    pub id: String,
    pub pid: i32,
    pub host: String,
    pub ago: String,
}

impl WorkerIdTaken {
    fn new(held: &Worker, now: DateTime<Utc>) -> WorkerIdTaken {
        let age = (now - held.heartbeat_at).to_std().unwrap_or_default();
        WorkerIdTaken {
            id: held.id.clone(),
            pid: held.pid,
            host: held.host.clone(),
            ago: humantime::format_duration(Duration::from_secs(age.as_secs())).to_string(),
        }
    }
}

/// Registers daemon `me` under its worker id, unless another process holds
/// the id and lives ([`held_by_another`] with `starting`): then
/// [`WorkerIdTaken`], and that process's row is left as it was. Otherwise the
/// row is created, or taken over from a process that stopped, went quiet for
/// `dead_after`, or (on this host) is gone; a row that changed while this
/// was decided is judged again.
pub async fn claim(db: &Db, me: &Worker, dead_after: Duration) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let context = "cannot register this worker in the workers table";
    for _ in 0..3 {
        let held = db.worker(&me.id).await.context(context)?;
        if let Some(h) = held.as_ref() {
            if held_by_another(h, me, me.heartbeat_at, dead_after, true) {
                return Err(WorkerIdTaken::new(h, me.heartbeat_at).into());
            }
        }
        if db
            .take_worker_id(me, held.as_ref())
            .await
            .context(context)?
        {
            return Ok(());
        }
    }
    // Rewritten three times while this looked: some process keeps it alive.
    match db.worker(&me.id).await.context(context)? {
        Some(h) => Err(WorkerIdTaken::new(&h, me.heartbeat_at).into()),
        None => anyhow::bail!("{context}: the row of worker {:?} keeps changing", me.id),
    }
}

/// Whether `held`, the row of `me`'s worker id, belongs to another process
/// that is alive at `now`: no clean stop and a heartbeat at most
/// `dead_after` old (how every daemon judges the others). When `starting`,
/// a row of this host whose process is gone (its pid is ours, or runs no
/// ops-worker) is dead at once, so a daemon restarted after a crash or a
/// kill does not wait `dead_after` for its own predecessor.
pub fn held_by_another(
    held: &Worker,
    me: &Worker,
    now: DateTime<Utc>,
    dead_after: Duration,
    starting: bool,
) -> bool {
    if held.stopped_at.is_some() || (held.host == me.host && held.pid == me.pid) {
        return false;
    }
    let age = (now - held.heartbeat_at).to_std().unwrap_or_default();
    if age > dead_after {
        return false;
    }
    !(starting && held.host == me.host && !runs_ops_worker(held.pid))
}

/// Whether process `pid` of this host runs the same program as this one
/// (`/proc/PID/comm`). Unknown (no `/proc`) counts as yes.
fn runs_ops_worker(pid: i32) -> bool {
    let comm = |p: &str| std::fs::read_to_string(format!("/proc/{p}/comm"));
    match (comm("self"), comm(&pid.to_string())) {
        (Ok(mine), Ok(theirs)) => mine == theirs,
        (Ok(_), Err(_)) => false,
        (Err(_), _) => true,
    }
}

/// Refreshes the heartbeat until `stop` fires. A failed refresh is logged
/// once per outage; a row deleted, or taken over by a process that has
/// since gone quiet, is registered again, but not one another live process
/// holds (logged once, as an error: two processes share the worker id).
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
    // Held by another live process: what it was, to log a change once.
    let mut taken: Option<(String, i32)> = None;
    let dead_after = reaper.as_ref().map_or(DEFAULT_DEAD_AFTER, |r| r.dead_after);
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
        // Ok(true): written; Ok(false): another live process holds the id.
        let written = match db.heartbeat(&me, now).await {
            Ok(true) => Ok(true),
            Ok(false) => match db.worker(&me.id).await {
                Ok(Some(held)) if held_by_another(&held, &me, now, dead_after, false) => {
                    let holder = (held.host.clone(), held.pid);
                    if taken.as_ref() != Some(&holder) {
                        tracing::error!(
                            worker_id = %me.id,
                            pid = held.pid,
                            host = %held.host,
                            "another running worker took over this worker id while this process was not heartbeating; \
                             not registering again: give each worker its own OPS_WORKER_ID, or stop this one"
                        );
                        taken = Some(holder);
                    }
                    Ok(false)
                }
                Ok(held) => {
                    tracing::warn!(worker_id = %me.id, "the worker's row was gone or its holder stopped: registering again");
                    let again = Worker {
                        heartbeat_at: now,
                        ..me.clone()
                    };
                    db.take_worker_id(&again, held.as_ref()).await
                }
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match written {
            Ok(true) => {
                taken = None;
                healthy_since.get_or_insert(now);
                if std::mem::take(&mut failing) {
                    tracing::info!("heartbeat written again");
                }
            }
            Ok(false) => healthy_since = None,
            Err(e) => {
                healthy_since = None;
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!(error = %crate::error_chain(&e), "cannot write the heartbeat; `ops-worker health` fails until it is written again");
                }
            }
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
            r.runner.time_out_push_starts(now).await;
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

/// A worker's state as `status` and the API show it: `running`, `stale`
/// (no fresh heartbeat, not stopped) or `stopped`.
pub fn state(w: &crate::db::Worker, now: DateTime<Utc>) -> &'static str {
    match (w.stopped_at, judge(&w.id, Some(w), now, DEFAULT_MAX_AGE)) {
        (Some(_), _) => "stopped",
        (None, Ok(_)) => "running",
        (None, Err(_)) => "stale",
    }
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
    fn who_holds_a_worker_id() {
        let now = at("2026-11-24T10:01:00Z");
        let dead_after = DEFAULT_DEAD_AFTER;
        let me = Worker {
            host: "here".into(),
            pid: 7,
            ..worker("2026-11-24T10:01:00Z", None)
        };
        let holder = |host: &str, pid: i32, heartbeat: &str, stopped: Option<&str>| Worker {
            host: host.into(),
            pid,
            ..worker(heartbeat, stopped)
        };
        let fresh = "2026-11-24T10:00:45Z";
        // Another host: alive while its heartbeat is at most dead_after old.
        assert!(held_by_another(
            &holder("there", 9, fresh, None),
            &me,
            now,
            dead_after,
            true
        ));
        let stale = holder("there", 9, "2026-11-24T10:00:39Z", None);
        assert!(!held_by_another(&stale, &me, now, dead_after, true));
        let stopped = holder("there", 9, fresh, Some(fresh));
        assert!(!held_by_another(&stopped, &me, now, dead_after, true));
        // This host: our own pid is an earlier incarnation; a pid that runs
        // no process like this one is gone, but only a starting daemon
        // looks (a running one judges by the heartbeat alone).
        assert!(!held_by_another(
            &holder("here", 7, fresh, None),
            &me,
            now,
            dead_after,
            true
        ));
        let gone = holder("here", i32::MAX, fresh, None);
        assert!(!held_by_another(&gone, &me, now, dead_after, true));
        assert!(held_by_another(&gone, &me, now, dead_after, false));
        let this_process = holder("here", std::process::id() as i32, fresh, None);
        assert!(held_by_another(&this_process, &me, now, dead_after, true));
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
