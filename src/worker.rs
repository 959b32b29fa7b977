//! The daemon's lifecycle (`ops-worker run`): recover from the previous
//! process, register and heartbeat in `workers`, arm every enabled job,
//! start the notification sender and the pruning of old runs, and on
//! SIGTERM/SIGINT drain: stop firing, let running jobs finish within the
//! grace, interrupt the rest, write every record, give the sender a last
//! pass, exit.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::heartbeat::ConfigState;
use crate::notify::Sender;
use crate::reload::{Armed, Targets};
use crate::runner::{Runner, STOP_GRACE};
use crate::scheduler::Start;

/// How long shutdown waits for held records to reach the database.
const FINAL_FLUSH: Duration = Duration::from_secs(10);

/// How `run` behaves: its command-line options.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long shutdown waits for running jobs before interrupting them.
    pub grace: Duration,
    /// Where to serve `/metrics`, if anywhere.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// After how long without a heartbeat another worker's runs count as
    /// abandoned.
    pub dead_after: Duration,
    /// Reload schedules.toml when its directory reports a change (besides
    /// SIGHUP and the periodic check, which are always on).
    pub watch_config: bool,
}

/// Runs until `shutdown` fires, then drains within `options.grace`.
pub async fn run(
    config: Arc<Config>,
    runner: Arc<Runner>,
    worker_id: &str,
    options: Options,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let Options {
        grace,
        metrics_addr,
        dead_after,
        watch_config,
    } = options;
    let recorder = runner.recorder().clone();
    let db = recorder.db().clone();
    let now = runner.clock().now();
    let abandoned = db
        .abandon_running(worker_id, now)
        .await
        .context("cannot mark runs left by an earlier process as abandoned")?;
    if abandoned > 0 {
        tracing::warn!(
            abandoned,
            worker_id,
            "runs left running by an earlier process of this worker were marked abandoned"
        );
    }
    // Bound before anything is registered: a taken port fails start-up cleanly.
    runner.telemetry().started(&config.hash, worker_id, now);
    let stop_metrics = CancellationToken::new();
    let metrics = match metrics_addr {
        Some(addr) => Some(
            crate::telemetry::serve(addr, runner.telemetry().clone(), stop_metrics.clone())
                .await
                .with_context(|| format!("cannot serve metrics on METRICS_ADDR={addr}"))?,
        ),
        None => None,
    };
    let me = crate::heartbeat::this_worker(worker_id, &config.hash, now);
    db.register_worker(&me)
        .await
        .context("cannot register this worker in the workers table")?;
    let (config_state, heartbeat_config) = tokio::sync::watch::channel(ConfigState {
        hash: config.hash.clone(),
        error: None,
    });
    let stop_heartbeat = CancellationToken::new();
    let (abandoned_tx, abandoned) = tokio::sync::mpsc::unbounded_channel();
    let heartbeat = tokio::spawn(crate::heartbeat::beat(
        db.clone(),
        me.clone(),
        runner.clock().clone(),
        stop_heartbeat.clone(),
        Some(crate::heartbeat::Reaper {
            dead_after,
            peers: runner.peers().clone(),
            pauses: runner.pauses().clone(),
            abandoned: abandoned_tx,
        }),
        Some(heartbeat_config),
    ));
    // The first slots already spread over the workers that are up.
    crate::heartbeat::refresh_peers(&db, runner.peers(), now, dead_after).await;
    // Pauses hold from the first slot: read before any job is armed.
    crate::heartbeat::refresh_pauses(&db, runner.pauses(), now)
        .await
        .context("cannot read the paused jobs")?;
    let last_slots = db
        .last_slots()
        .await
        .context("cannot read the last recorded slots")?;

    let flusher = {
        let recorder = recorder.clone();
        tokio::spawn(async move { recorder.flush_loop().await })
    };
    // Started before the jobs so that what they enqueue goes out at once.
    let stop_sender = CancellationToken::new();
    let sender = Arc::new(Sender::new(
        db.clone(),
        &config.notify,
        crate::notify::webhook::client(),
        runner.clock().clone(),
    ));
    let sending = {
        let (sender, stop) = (sender.clone(), stop_sender.clone());
        tokio::spawn(async move { sender.run(stop).await })
    };
    let stop = CancellationToken::new();
    let runs = TaskTracker::new();
    let (running_config, retrier_config) = tokio::sync::watch::channel(config.clone());
    let retrier = tokio::spawn(retry_abandoned(
        retrier_config,
        runner.clone(),
        abandoned,
        stop.clone(),
        runs.clone(),
    ));
    let pruner = tokio::spawn(crate::retention::run(
        db.clone(),
        running_config.subscribe(),
        runner.clock().clone(),
        stop.clone(),
    ));
    let mut armed = Armed::new(runner.clone(), stop.clone(), runs.clone());
    let enabled: Vec<_> = config.jobs.iter().filter(|j| j.enabled).collect();
    for spec in &enabled {
        let start = Start {
            last_slot: last_slots.get(&spec.name).copied(),
            armed_at: now,
        };
        armed.arm((*spec).clone(), start);
    }
    let reloader = tokio::spawn(crate::reload::watch_file(
        config.path.clone(),
        armed,
        Targets {
            runner: runner.clone(),
            sender: sender.clone(),
            config: running_config,
            state: config_state,
            worker_id: worker_id.to_string(),
        },
        watch_config,
        stop.clone(),
    ));
    tracing::info!(
        jobs = enabled.len(),
        disabled = config.jobs.len() - enabled.len(),
        notify_targets = config.notify.len(),
        worker_id,
        config = %config.path.display(),
        "worker started"
    );
    crate::memory::release_free();

    shutdown.cancelled().await;
    tracing::info!(running = runs.len(), grace = %humantime::format_duration(grace), "shutting down: no new runs; waiting for running jobs");
    stop.cancel();
    runner.stop();
    if let Ok(armed) = reloader.await {
        armed.stopped().await;
    }
    let _ = retrier.await;
    // A batch under way finishes (one short statement); no other starts.
    let _ = pruner.await;
    runs.close();
    if tokio::time::timeout(grace, runs.wait()).await.is_err() {
        tracing::warn!(
            running = runs.len(),
            "grace period over: interrupting running jobs"
        );
        runner.interrupt();
        // Each run now stops within STOP_GRACE and records itself.
        let _ = tokio::time::timeout(STOP_GRACE + Duration::from_secs(3), runs.wait()).await;
    }
    flusher.abort();
    if tokio::time::timeout(FINAL_FLUSH, recorder.flush()).await != Ok(true) {
        tracing::error!(
            lost = recorder.pending(),
            "the database is unreachable: run records held in memory are lost"
        );
    }
    // After the runs: what they enqueued gets a last pass (bounded by
    // FINAL_PASS plus an attempt under way). Anything left stays pending in
    // the database for the next start.
    stop_sender.cancel();
    if let Err(e) = sending.await {
        tracing::error!(error = %e, "the notification sender panicked");
    }
    // Stopped cleanly: `health` now fails at once instead of after the
    // heartbeat goes stale.
    stop_heartbeat.cancel();
    let _ = heartbeat.await;
    if let Err(e) = db
        .worker_stopped(&me.id, me.pid, runner.clock().now())
        .await
    {
        tracing::warn!(error = %crate::error_chain(&e), "cannot record the clean stop in workers");
    }
    // Scrapes work until the very end, so the drain itself is visible.
    stop_metrics.cancel();
    if let Some(m) = metrics {
        let _ = m.await;
    }
    tracing::info!("worker stopped");
    Ok(())
}

/// Runs each slot a dead worker abandoned once more, as its next attempt,
/// if the job is still enabled here and its `retry_abandoned` allows; the
/// claim of that attempt lets one live worker win it.
async fn retry_abandoned(
    config: tokio::sync::watch::Receiver<Arc<Config>>,
    runner: Arc<Runner>,
    mut abandoned: tokio::sync::mpsc::UnboundedReceiver<crate::db::AbandonedRun>,
    stop: CancellationToken,
    runs: TaskTracker,
) {
    loop {
        let run = tokio::select! {
            r = abandoned.recv() => match r { Some(r) => r, None => return },
            _ = stop.cancelled() => return,
        };
        let Some(spec) = config
            .borrow()
            .job(&run.job_name)
            .filter(|j| j.enabled)
            .cloned()
        else {
            continue;
        };
        if !spec.retry_abandoned {
            tracing::info!(job = %run.job_name, scheduled_for = %run.scheduled_for, "not retrying the abandoned run (retry_abandoned = false)");
            continue;
        }
        let (spec, runner) = (spec.clone(), runner.clone());
        let attempt = u32::try_from(run.attempt).unwrap_or(0).saturating_add(1);
        runs.spawn(async move {
            runner
                .retry_abandoned(&spec, run.scheduled_for, attempt)
                .await;
        });
    }
}

/// Fires on the first SIGTERM or SIGINT.
pub fn shutdown_signal() -> anyhow::Result<CancellationToken> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
    let token = CancellationToken::new();
    let fire = token.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
        fire.cancel();
    });
    Ok(token)
}
