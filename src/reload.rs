//! Live schedules: the running daemon picks up an edited schedules.toml
//! without a restart, and so does `serve` ([`serve_file`]: the same
//! [`Triggers`] and checks, no armed jobs).
//!
//! A reload is triggered by a change in the file's directory (watched with
//! `notify`, which sees editors that replace the file and Kubernetes'
//! ConfigMap symlink swaps), by SIGHUP, and by a check of the file every
//! [`POLL_EVERY`] (for file systems that report nothing, such as some network
//! mounts). Triggers are debounced for [`SETTLE`]; a file whose SHA-256 did
//! not change is left alone.
//!
//! A changed file is validated in full first. Invalid: the running schedule
//! stays as it is, the error is logged once, and the heartbeat row,
//! `status` and `/metrics` show it until a valid file loads. Valid: the
//! [`Armed`] set applies it: new jobs start, removed ones stop arming (their
//! runs finish and are recorded), changed ones are re-armed, the rest are not
//! touched.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, JobSpec};
use crate::heartbeat::ConfigState;
use crate::notify::Sender;
use crate::runner::Runner;
use crate::scheduler::{self, Start};

/// How long triggers must be quiet before the file is read: an editor's
/// save is several events (write a temporary file, rename, chmod).
pub const SETTLE: Duration = Duration::from_millis(300);
/// How often the file is read even without an event.
pub const POLL_EVERY: Duration = Duration::from_secs(10);

/// The timer loop of one job.
struct Loop {
    spec: Arc<JobSpec>,
    stop: CancellationToken,
    handle: JoinHandle<Option<DateTime<Utc>>>,
}

/// The jobs a running worker has armed, by name.
pub struct Armed {
    runner: Arc<Runner>,
    /// The daemon's stop: every loop's token is a child of it.
    stop: CancellationToken,
    runs: TaskTracker,
    loops: BTreeMap<String, Loop>,
}

/// What applying a config did, by job name.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub unchanged: usize,
}

impl Armed {
    pub fn new(runner: Arc<Runner>, stop: CancellationToken, runs: TaskTracker) -> Armed {
        Armed {
            runner,
            stop,
            runs,
            loops: BTreeMap::new(),
        }
    }

    /// Arms `spec` from `start`.
    pub fn arm(&mut self, spec: Arc<JobSpec>, start: Start) {
        let stop = self.stop.child_token();
        let handle = scheduler::arm(
            spec.clone(),
            self.runner.clone(),
            start,
            stop.clone(),
            self.runs.clone(),
        );
        self.loops
            .insert(spec.name.clone(), Loop { spec, stop, handle });
    }

    /// Makes the armed jobs those `config` enables. A job whose schedule
    /// did not change goes on from the newest slot its old loop handled, so
    /// it keeps its phase and no slot runs twice or is skipped (one that
    /// passed during the swap is caught up). A job that is new, or whose
    /// schedule changed, starts as a job with no history does: its next slot
    /// after now, interval grids on the Unix epoch, so every replica
    /// reloading the same file computes the same slots.
    pub async fn apply(&mut self, config: &Config) -> Changes {
        let mut changes = Changes::default();
        let wanted: BTreeMap<&str, &Arc<JobSpec>> = config
            .jobs
            .iter()
            .filter(|j| j.enabled)
            .map(|j| (j.name.as_str(), j))
            .collect();
        let gone: Vec<String> = self
            .loops
            .keys()
            .filter(|name| !wanted.contains_key(name.as_str()))
            .cloned()
            .collect();
        for name in gone {
            if let Some(l) = self.loops.remove(&name) {
                l.stop.cancel();
                let _ = l.handle.await;
                self.runner.telemetry().job_removed(&name);
                changes.removed.push(name);
            }
        }
        for (name, spec) in wanted {
            let now = self.runner.clock().now();
            let fresh = Start {
                last_slot: None,
                armed_at: now,
            };
            match self.loops.remove(name) {
                None => {
                    self.arm(spec.clone(), fresh);
                    changes.added.push(name.to_string());
                }
                Some(l) if l.spec.fingerprint == spec.fingerprint => {
                    self.loops.insert(name.to_string(), l);
                    changes.unchanged += 1;
                }
                Some(l) => {
                    l.stop.cancel();
                    let handled = l.handle.await.unwrap_or(None);
                    let same_schedule = l.spec.schedule.to_string() == spec.schedule.to_string()
                        && l.spec.timezone == spec.timezone;
                    let start = if same_schedule {
                        Start {
                            last_slot: handled,
                            armed_at: now,
                        }
                    } else {
                        fresh
                    };
                    self.arm(spec.clone(), start);
                    changes.changed.push(name.to_string());
                }
            }
        }
        changes
    }

    /// Waits for every loop to end once the daemon's stop has fired.
    pub async fn stopped(self) {
        for (_, l) in self.loops {
            let _ = l.handle.await;
        }
    }
}

/// What the reloader updates besides the armed jobs.
pub struct Targets {
    pub runner: Arc<Runner>,
    pub sender: Arc<Sender>,
    /// The running config, for the retries of abandoned runs.
    pub config: watch::Sender<Arc<Config>>,
    /// What the heartbeat reports.
    pub state: watch::Sender<ConfigState>,
    pub worker_id: String,
}

/// When to look at schedules.toml again: a change in its directory (unless
/// `watch_events` is off), SIGHUP, and the check every [`POLL_EVERY`], each
/// let settle for [`SETTLE`]. The daemon's reloader and `serve`'s share it.
pub struct Triggers {
    events: mpsc::UnboundedReceiver<&'static str>,
    /// Kept alive for as long as the triggers are.
    _watcher: Option<notify::RecommendedWatcher>,
    hangup: Option<tokio::signal::unix::Signal>,
    poll: tokio::time::Interval,
    stop: CancellationToken,
}

impl Triggers {
    /// Starts watching `path`. From now on SIGHUP no longer ends the
    /// process: it is a trigger.
    pub async fn new(path: &Path, watch_events: bool, stop: CancellationToken) -> Triggers {
        let (tx, events) = mpsc::unbounded_channel::<&'static str>();
        let watcher = if watch_events {
            watch_directory(path, tx)
        } else {
            tracing::info!(
                "directory watch off (--watch-config false): schedules.toml is reloaded on SIGHUP and every {}s",
                POLL_EVERY.as_secs()
            );
            None
        };
        let hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "cannot install the SIGHUP handler: reload by editing the file");
                None
            }
        };
        let mut poll = tokio::time::interval(POLL_EVERY);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        poll.tick().await;
        Triggers {
            events,
            _watcher: watcher,
            hangup,
            poll,
            stop,
        }
    }

    /// Waits for the next trigger and lets a burst of them settle; returns
    /// what it was (`"file change"`, `"SIGHUP"` or `"poll"`), or `None` once
    /// `stop` has fired.
    pub async fn next(&mut self) -> Option<&'static str> {
        let hangup = &mut self.hangup;
        let why = tokio::select! {
            _ = self.stop.cancelled() => return None,
            Some(why) = self.events.recv() => why,
            Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => "SIGHUP",
            _ = self.poll.tick() => "poll",
        };
        // Let a burst of events settle, then read once.
        tokio::select! {
            _ = self.stop.cancelled() => return None,
            _ = tokio::time::sleep(SETTLE) => {}
        }
        while self.events.try_recv().is_ok() {}
        Some(why)
    }
}

/// What a look at the file found, against the running version.
enum Look {
    /// Nothing to do: the running version, or an edit already rejected.
    Nothing,
    /// The running version again, after a rejected edit (logged here).
    BackToRunning,
    /// A changed file that does not load (logged here, once per version):
    /// the first line of the error.
    Rejected(String),
    /// A changed file that loads.
    Changed(Box<Config>),
}

/// Reads schedules.toml for a reload; remembers the version it rejected
/// last, so that one is logged once however often it is looked at.
struct Reader {
    path: PathBuf,
    /// What the log line of a rejected edit says stays in use.
    keeps: &'static str,
    rejected: Option<String>,
}

impl Reader {
    /// Reads the file and compares it with `running`.
    fn look(&mut self, why: &str, running: &Config) -> Look {
        let path = &self.path;
        let (hash, result) = match std::fs::read_to_string(path) {
            Ok(text) => (
                crate::config::sha256_hex(&text),
                Config::parse(path, &text, &|name| std::env::var(name).ok())
                    .map_err(|e| crate::error_chain(&e)),
            ),
            // Not a hash: reported once until the file can be read again.
            Err(e) => {
                let error = format!("cannot read {}: {e}", path.display());
                (error.clone(), Err(error))
            }
        };
        if hash == running.hash {
            if self.rejected.take().is_some() {
                tracing::info!(config = %path.display(), "schedules.toml is back to the running version");
                return Look::BackToRunning;
            }
            if why == "SIGHUP" {
                tracing::info!(config = %path.display(), "SIGHUP: schedules.toml unchanged");
            }
            return Look::Nothing;
        }
        if self.rejected.as_deref() == Some(hash.as_str()) {
            return Look::Nothing;
        }
        match result {
            Err(message) => {
                tracing::error!(
                    config = %path.display(),
                    trigger = why,
                    "schedules.toml changed but is invalid; {}: {message}",
                    self.keeps
                );
                self.rejected = Some(hash);
                Look::Rejected(first_line(&message))
            }
            Ok(config) => {
                self.rejected = None;
                Look::Changed(Box::new(config))
            }
        }
    }
}

/// Watches `path` and reloads it into `armed` until `stop` fires; then
/// hands `armed` back for the shutdown to wait on.
pub async fn watch_file(
    path: PathBuf,
    mut armed: Armed,
    targets: Targets,
    watch_events: bool,
    stop: CancellationToken,
) -> Armed {
    // The file the worker started with was loaded before this; its
    // warnings are logged here, as those of every reloaded one are.
    log_warnings(&targets.config.borrow());
    let mut triggers = Triggers::new(&path, watch_events, stop).await;
    let mut reader = Reader {
        path,
        keeps: "the previous schedule keeps running",
        rejected: None,
    };
    while let Some(why) = triggers.next().await {
        reload(&mut reader, why, &mut armed, &targets).await;
    }
    armed
}

/// Reads the file and applies it if it changed and is valid.
async fn reload(reader: &mut Reader, why: &str, armed: &mut Armed, targets: &Targets) {
    let running = targets.config.borrow().clone();
    match reader.look(why, &running) {
        Look::Nothing => {}
        Look::BackToRunning => {
            targets.state.send_modify(|s| s.error = None);
            targets.runner.telemetry().config_loaded(
                &running.hash,
                &targets.worker_id,
                targets.runner.clock().now(),
            );
        }
        Look::Rejected(first) => {
            targets.state.send_modify(|s| s.error = Some(first));
            targets.runner.telemetry().config_rejected();
        }
        Look::Changed(config) => {
            let config: Arc<Config> = Arc::from(config);
            // Runs that start from now on see the new people, on-call
            // schedules, timeline and notification targets.
            targets.runner.set_config(config.clone());
            targets.sender.set_targets(&config.notify);
            let changes = armed.apply(&config).await;
            targets.state.send_replace(ConfigState {
                hash: config.hash.clone(),
                error: None,
            });
            targets.runner.telemetry().config_loaded(
                &config.hash,
                &targets.worker_id,
                targets.runner.clock().now(),
            );
            tracing::info!(
                config = %reader.path.display(),
                trigger = why,
                hash = %crate::heartbeat::short_hash(&config.hash),
                added = ?changes.added,
                removed = ?changes.removed,
                changed = ?changes.changed,
                unchanged = changes.unchanged,
                "schedules.toml reloaded"
            );
            log_warnings(&config);
            targets.config.send_replace(config);
        }
    }
}

/// `ops-worker serve`'s reload: the same triggers and checks as the
/// daemon's, until the triggers' stop fires. A valid new file replaces the config the
/// API and console read (`configs`, which `AppState::config` borrows on
/// every request) and the hash `telemetry` reports; an invalid one is
/// logged once and the previous one stays served. `[api]` (tokens,
/// `public_url`, `ack_link_ttl`) is not applied: the server's listening
/// address was checked against the tokens at start, and its acknowledge
/// links were made from them, so a change is logged as needing a restart.
pub async fn serve_file(
    path: PathBuf,
    mut triggers: Triggers,
    configs: watch::Sender<Arc<Config>>,
    telemetry: Arc<crate::telemetry::Telemetry>,
    clock: Arc<dyn ops_worker_jobs::Clock>,
) {
    const ID: &str = "serve";
    let mut reader = Reader {
        path,
        keeps: "the previous one stays served",
        rejected: None,
    };
    while let Some(why) = triggers.next().await {
        let running = configs.borrow().clone();
        match reader.look(why, &running) {
            Look::Nothing => {}
            Look::BackToRunning => telemetry.config_loaded(&running.hash, ID, clock.now()),
            Look::Rejected(_) => telemetry.config_rejected(),
            Look::Changed(mut config) => {
                if config.api != running.api {
                    tracing::warn!(
                        config = %reader.path.display(),
                        "[api] changed: restart serve to apply"
                    );
                }
                config.api = running.api.clone();
                telemetry.config_loaded(&config.hash, ID, clock.now());
                tracing::info!(
                    config = %reader.path.display(),
                    trigger = why,
                    hash = %crate::heartbeat::short_hash(&config.hash),
                    jobs = config.jobs.len(),
                    "schedules.toml reloaded"
                );
                configs.send_replace(Arc::from(config));
            }
        }
    }
}

/// What `validate` would warn about in a loaded file, apart from its
/// date-dependent warnings about cron jobs.
fn log_warnings(config: &Config) {
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
}

/// The first line of `message`, with how many more problems it lists.
fn first_line(message: &str) -> String {
    let mut lines = message.lines().filter(|l| !l.trim().is_empty());
    let first = lines.next().unwrap_or_default().to_string();
    match lines.count() {
        0 => first,
        n => format!("{first} (and {n} more)"),
    }
}

/// Sends a trigger for every change in `path`'s directory. `None` (after a
/// warning) when the platform cannot watch it: the poll still reloads.
fn watch_directory(
    path: &Path,
    tx: mpsc::UnboundedSender<&'static str>,
) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher as _;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            let _ = tx.send("file change");
        }
    });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch schedules.toml; changes are picked up every {}s or on SIGHUP", POLL_EVERY.as_secs());
            return None;
        }
    };
    if let Err(e) = watcher.watch(&dir, notify::RecursiveMode::NonRecursive) {
        tracing::warn!(error = %e, dir = %dir.display(), "cannot watch the directory of schedules.toml; changes are picked up every {}s or on SIGHUP", POLL_EVERY.as_secs());
        return None;
    }
    Some(watcher)
}
