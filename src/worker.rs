//! The daemon's lifecycle (`ops-worker run`): recover from the previous
//! process, register and heartbeat in `workers`, arm every enabled job,
//! start the notification sender, the claimer of run requests and the
//! pruning of old runs, and on
//! SIGTERM/SIGINT drain: stop firing, let running jobs finish within the
//! grace, interrupt the rest, write every record, give the sender a last
//! pass, exit.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::db::Worker;
use crate::heartbeat::ConfigState;
use crate::notify::Sender;
use crate::reload::{Armed, Targets};
use crate::runner::{Runner, Slot, STOP_GRACE};
use crate::scheduler::Start;
use crate::signals::Signals;

/// How long shutdown waits for held records to reach the database.
const FINAL_FLUSH: Duration = Duration::from_secs(10);

/// How `run` behaves: its command-line options.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long shutdown waits for running jobs before interrupting them.
    pub grace: Duration,
    /// Where to serve `/metrics`, if anywhere.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Where to serve the API (and `/metrics`), if anywhere (`--http-addr`).
    pub http_addr: Option<std::net::SocketAddr>,
    /// After how long without a heartbeat another worker's runs count as
    /// abandoned.
    pub dead_after: Duration,
    /// Reload schedules.toml when its directory reports a change (besides
    /// SIGHUP and the periodic check, which are always on).
    pub watch_config: bool,
    /// How often to look for run requests without a wake-up; `None`: the
    /// backend's default (`run_requests::claimer::default_poll`).
    pub request_poll: Option<Duration>,
    /// Makes the acknowledge links the sender puts in messages and checks
    /// them at `/ack/{token}` on `http_addr`; `None`: links are off.
    pub ack_links: Option<Arc<crate::ack_link::AckLinks>>,
}

/// Runs until the first SIGTERM or SIGINT, then drains within
/// `options.grace`; a second signal ends the grace at once, a third stops
/// the interrupted jobs without waiting for them.
pub async fn run(
    config: Arc<Config>,
    runner: Arc<Runner>,
    worker_id: &str,
    options: Options,
    signals: Signals,
) -> anyhow::Result<()> {
    let grace = options.grace;
    let daemon = Daemon::start(config, runner, worker_id, options).await?;
    signals.received(1).await;
    daemon.drain(grace, &signals).await;
    Ok(())
}

/// A background task and the token that stops it.
struct Task {
    stop: CancellationToken,
    handle: tokio::task::JoinHandle<()>,
}

impl Task {
    fn spawn<F>(start: impl FnOnce(CancellationToken) -> F) -> Task
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let stop = CancellationToken::new();
        let handle = tokio::spawn(start(stop.clone()));
        Task { stop, handle }
    }

    /// Stops the task and waits for it to end; `false` if it panicked.
    async fn stop(self) -> bool {
        self.stop.cancel();
        self.handle.await.is_ok()
    }
}

/// A started daemon: what [`Daemon::drain`] stops, in the order it stops
/// them.
struct Daemon {
    runner: Arc<Runner>,
    me: Worker,
    /// The timers, live reload, the retrier of abandoned runs, the claimer
    /// of run requests and the pruner: everything that starts runs or
    /// deletes rows. One token stops them all; the reloader hands back the
    /// armed job loops.
    firing: CancellationToken,
    reloader: tokio::task::JoinHandle<Armed>,
    retrier: tokio::task::JoinHandle<()>,
    claimer: tokio::task::JoinHandle<()>,
    pruner: tokio::task::JoinHandle<()>,
    /// The runs those started.
    runs: TaskTracker,
    /// Writes the records held while the database was away.
    flusher: tokio::task::JoinHandle<()>,
    sender: Task,
    heartbeat: Task,
    metrics: Option<Task>,
    api: Option<Task>,
}

impl Daemon {
    /// Registers, recovers from the previous process, and starts every
    /// task: the worker id first (refused while another live process holds
    /// it), then metrics (a taken port fails start-up, with the row marked
    /// stopped), the runs its previous process left, the heartbeat, the
    /// notification sender (before the jobs, so what they enqueue goes out
    /// at once), the claimer of run requests (whose runs the drain waits
    /// for like the jobs') and the jobs.
    async fn start(
        config: Arc<Config>,
        runner: Arc<Runner>,
        worker_id: &str,
        options: Options,
    ) -> anyhow::Result<Daemon> {
        let Options {
            grace: _,
            metrics_addr,
            http_addr,
            dead_after,
            watch_config,
            request_poll,
            ack_links,
        } = options;
        let db = runner.recorder().db().clone();
        let clock = runner.clock().clone();
        let now = clock.now();
        // The id first: a second daemon with the id of a live one stops
        // here, before it touches the other's runs, row or metrics port.
        let me = crate::heartbeat::this_worker(worker_id, &config.hash, now);
        crate::heartbeat::claim(&db, &me, dead_after).await?;
        let (running_config, retrier_config) = tokio::sync::watch::channel(config.clone());
        let metrics = match metrics_addr {
            Some(addr) => {
                let router = crate::http::metrics_router(runner.telemetry().clone());
                Some(
                    serve_or_stop(&db, &me, &clock, addr, router, "metrics on METRICS_ADDR")
                        .await?,
                )
            }
            None => None,
        };
        let api = match http_addr {
            Some(addr) => {
                let state = crate::http::AppState::builder(
                    db.clone(),
                    running_config.subscribe(),
                    clock.clone(),
                )
                .ack_links(ack_links.clone())
                .telemetry(runner.telemetry().clone())
                .dead_after(dead_after)
                .build();
                let router = crate::http::api_router(state)
                    .merge(crate::http::metrics_router(runner.telemetry().clone()));
                let task =
                    serve_or_stop(&db, &me, &clock, addr, router, "the API on --http-addr").await?;
                crate::http::announce(addr, &config.api);
                Some(task)
            }
            None => None,
        };
        runner
            .abandon_leftovers(now)
            .await
            .context("cannot mark runs left by an earlier process as abandoned")?;
        runner.telemetry().started(&config.hash, worker_id, now);
        let (config_state, heartbeat_config) = tokio::sync::watch::channel(ConfigState {
            hash: config.hash.clone(),
            error: None,
        });
        let (abandoned_tx, abandoned) = tokio::sync::mpsc::unbounded_channel();
        let heartbeat = Task::spawn(|stop| {
            crate::heartbeat::beat(
                db.clone(),
                me.clone(),
                clock.clone(),
                stop,
                Some(crate::heartbeat::Reaper {
                    dead_after,
                    runner: runner.clone(),
                    abandoned: abandoned_tx,
                }),
                Some(heartbeat_config),
            )
        });
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
            let recorder = runner.recorder().clone();
            tokio::spawn(async move { recorder.flush_loop().await })
        };
        let sender = Arc::new(
            Sender::new(
                db.clone(),
                &config.notify,
                crate::notify::webhook::client(),
                clock.clone(),
            )
            .with_ack_links(ack_links),
        );
        let sending = {
            let sender = sender.clone();
            Task::spawn(|stop| async move { sender.run(stop).await })
        };
        let firing = CancellationToken::new();
        let runs = TaskTracker::new();
        let retrier = tokio::spawn(retry_abandoned(
            retrier_config,
            runner.clone(),
            abandoned,
            firing.clone(),
            runs.clone(),
        ));
        let claimer = tokio::spawn(
            crate::run_requests::Claimer {
                runner: runner.clone(),
                config: running_config.subscribe(),
                worker_id: worker_id.to_string(),
                dead_after,
                poll: request_poll
                    .unwrap_or_else(|| crate::run_requests::claimer::default_poll(db.backend())),
                runs: runs.clone(),
            }
            .run(firing.clone()),
        );
        let pruner = tokio::spawn(crate::retention::run(
            db.clone(),
            running_config.subscribe(),
            clock.clone(),
            firing.clone(),
        ));
        let mut armed = Armed::new(runner.clone(), firing.clone(), runs.clone());
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
                sender,
                config: running_config,
                state: config_state,
                worker_id: worker_id.to_string(),
            },
            watch_config,
            firing.clone(),
        ));
        tracing::info!(
            jobs = enabled.len(),
            disabled = config.jobs.len() - enabled.len(),
            notify_targets = config.notify.len(),
            worker_id,
            config = %config.path.display(),
            database = %db.url(),
            "worker started"
        );
        crate::memory::release_free();
        Ok(Daemon {
            runner,
            me,
            firing,
            reloader,
            retrier,
            claimer,
            pruner,
            runs,
            flusher,
            sender: sending,
            heartbeat,
            metrics,
            api,
        })
    }

    /// Shuts down in this order, each step after the one before has ended.
    /// Each further signal moves step 2 on: the second interrupts running
    /// jobs at once, the third stops them without waiting.
    async fn drain(self, grace: Duration, signals: &Signals) {
        let Daemon {
            runner,
            me,
            firing,
            reloader,
            retrier,
            claimer,
            pruner,
            runs,
            flusher,
            sender,
            heartbeat,
            metrics,
            api,
        } = self;
        tracing::info!(running = runs.len(), grace = %humantime::format_duration(grace), "shutting down: no new runs; waiting for running jobs");
        // 1. Nothing new starts: no timer fires, no retry, no reload, no
        //    run request is claimed (one claimed but not started goes back
        //    to pending); a pruning batch under way finishes (one short
        //    statement).
        firing.cancel();
        runner.stop();
        if let Ok(armed) = reloader.await {
            armed.stopped().await;
        }
        let _ = retrier.await;
        let _ = claimer.await;
        let _ = pruner.await;
        // 2. Running jobs get the grace, then are interrupted; each stops
        //    within STOP_GRACE and records itself.
        runs.close();
        let finished = tokio::select! {
            waited = tokio::time::timeout(grace, runs.wait()) => {
                if waited.is_err() {
                    tracing::warn!(running = runs.len(), "grace period over: interrupting running jobs");
                }
                waited.is_ok()
            }
            () = signals.received(2) => {
                tracing::warn!(running = runs.len(), "stop signal again: interrupting running jobs now");
                false
            }
        };
        if !finished {
            runner.interrupt();
            tokio::select! {
                _ = tokio::time::timeout(STOP_GRACE + Duration::from_secs(3), runs.wait()) => {}
                () = signals.received(3) => {
                    tracing::warn!(running = runs.len(), "stop signal a third time: stopping interrupted jobs without waiting");
                    runner.stop_now();
                    let _ = tokio::time::timeout(Duration::from_secs(3), runs.wait()).await;
                }
            }
        }
        // 3. Every record held while the database was away is written, or
        //    said to be lost.
        flusher.abort();
        let recorder = runner.recorder();
        if tokio::time::timeout(FINAL_FLUSH, recorder.flush()).await != Ok(true) {
            tracing::error!(
                lost = recorder.pending(),
                "the database is unreachable: run records held in memory are lost"
            );
        }
        // 4. What the runs enqueued gets a last notification pass (bounded by
        //    its FINAL_PASS plus an attempt under way); anything left stays
        //    pending in the database for the next start.
        if !sender.stop().await {
            tracing::error!("the notification sender panicked");
        }
        // 5. The clean stop is recorded: `health` now fails at once instead
        //    of after the heartbeat goes stale.
        heartbeat.stop().await;
        if let Err(e) = recorder
            .db()
            .worker_stopped(&me.id, me.pid, runner.clock().now())
            .await
        {
            tracing::warn!(error = %crate::error_chain(&e), "cannot record the clean stop in workers");
        }
        // 6. Scrapes work until the very end, so the drain itself is visible.
        if let Some(metrics) = metrics {
            metrics.stop().await;
        }
        if let Some(api) = api {
            api.stop().await;
        }
        tracing::info!("worker stopped");
    }
}

/// Serves `router` at `addr`; a taken port fails start-up, with this
/// worker's row marked stopped rather than left looking alive for
/// --dead-after. `what` says what and names the setting ("metrics on
/// METRICS_ADDR").
async fn serve_or_stop(
    db: &crate::db::Db,
    me: &crate::db::Worker,
    clock: &Arc<dyn ops_worker_jobs::Clock>,
    addr: std::net::SocketAddr,
    router: axum::Router,
    what: &str,
) -> anyhow::Result<Task> {
    let stop = CancellationToken::new();
    match crate::http::serve(addr, router, stop.clone()).await {
        Ok((local, handle)) => {
            tracing::info!(addr = %local, "serving {what}");
            Ok(Task { stop, handle })
        }
        Err(e) => {
            if let Err(stop) = db.worker_stopped(&me.id, me.pid, clock.now()).await {
                tracing::warn!(error = %crate::error_chain(&stop), "cannot record the stop in workers");
            }
            Err(anyhow::Error::from(e).context(format!("cannot serve {what}={addr}")))
        }
    }
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
        let abandoned = u32::try_from(run.attempt).unwrap_or(0);
        let slot = Slot::after_abandoned(&spec, run.scheduled_for, abandoned);
        let runner = runner.clone();
        runs.spawn(async move { runner.run(slot).await });
    }
}
