//! The daemon's claimer of run requests: it takes `pending` requests (one
//! guarded update each, so exactly one live worker gets a request), runs
//! each through [`Runner::run_now`] as every manual run is run, links the
//! run once claimed and finishes the request when the runner is done.
//!
//! It wakes on a PostgreSQL `NOTIFY` (a dedicated `LISTEN` connection,
//! re-opened when it drops) and polls besides, every `poll`; on SQLite it
//! only polls. Every [`HEARTBEAT_EVERY`] it also hands the claims of dead
//! workers back: not started -> `pending` again, running -> finished with
//! an error (the run itself is marked `abandoned` by the heartbeat).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::db::{Db, DbError, Holder, Listener, RunRequest, Trigger, RUN_REQUESTS_CHANNEL};
use crate::heartbeat::HEARTBEAT_EVERY;
use crate::runner::{Outcome, Runner, Slot};

/// How often a worker looks for requests without being woken, by
/// default: SQLite every second; PostgreSQL, whose `NOTIFY` wakes it,
/// every ten (in case a notification was lost with its connection).
pub fn default_poll(backend: crate::db::Backend) -> Duration {
    match backend {
        crate::db::Backend::Sqlite => Duration::from_secs(1),
        crate::db::Backend::Postgres => Duration::from_secs(10),
    }
}

/// How many pending requests one look reads.
const BATCH: i64 = 16;

/// What the claimer needs from the daemon.
pub struct Claimer {
    pub runner: Arc<Runner>,
    /// The config the worker runs (a reload replaces it).
    pub config: tokio::sync::watch::Receiver<Arc<Config>>,
    pub worker_id: String,
    /// A worker with no heartbeat for this long is dead: its claims go back.
    pub dead_after: Duration,
    /// How often to look without a wake-up.
    pub poll: Duration,
    /// Where the runs it starts are tracked (the daemon's drain waits for
    /// them).
    pub runs: TaskTracker,
}

impl Claimer {
    /// Claims and starts requests until `stop` fires. Requests that an
    /// earlier process with this worker id claimed are released first.
    pub async fn run(self, stop: CancellationToken) {
        let db = self.runner.recorder().db().clone();
        let lost_here = "the worker that ran it restarted before the run finished (the run is marked abandoned)";
        match db
            .release_run_requests(
                Holder::Earlier(&self.worker_id),
                self.runner.clock().now(),
                lost_here,
            )
            .await
        {
            Ok(released) => log_released(&released, &self.worker_id),
            Err(e) => {
                tracing::warn!(error = %crate::error_chain(&e), "cannot release run requests an earlier process of this worker claimed")
            }
        }
        let mut listener: Option<Listener> = None;
        // When a LISTEN was last tried, so a failing one is retried every
        // heartbeat, not in a loop.
        let mut listen_tried: Option<tokio::time::Instant> = None;
        let mut failing = false;
        // Since when every look has reached the database: dead workers are
        // judged only after `dead_after` of that, as the heartbeat's reaper
        // does, so after an outage every worker first beats again.
        let mut healthy_since: Option<DateTime<Utc>> = None;
        let mut next_release = tokio::time::Instant::now();
        let mut next_look = tokio::time::Instant::now();
        loop {
            if listener.is_none() && listen_tried.is_none_or(|t| t.elapsed() >= HEARTBEAT_EVERY) {
                listen_tried = Some(tokio::time::Instant::now());
                match db.listen(RUN_REQUESTS_CHANNEL).await {
                    // What was announced while nobody listened: look now.
                    Ok(Some(l)) => {
                        listener = Some(l);
                        next_look = tokio::time::Instant::now();
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::debug!(error = %crate::error_chain(&e), "cannot LISTEN for run requests; polling")
                    }
                }
            }
            let at = tokio::time::Instant::now();
            let now = self.runner.clock().now();
            let mut looked = Ok(());
            if at >= next_release {
                next_release = at + HEARTBEAT_EVERY;
                looked = self.release_dead(&db, now, healthy_since).await;
            }
            if looked.is_ok() && at >= next_look {
                looked = self.claim_pending(&db).await;
            }
            // Without a LISTEN connection (SQLite, or PostgreSQL while it is
            // down) a worker polls at least every second.
            let poll = match listener {
                Some(_) => self.poll,
                None if db.backend() == crate::db::Backend::Postgres => {
                    self.poll.min(Duration::from_secs(1))
                }
                None => self.poll,
            };
            match looked {
                Ok(()) => {
                    healthy_since.get_or_insert(now);
                    if std::mem::take(&mut failing) {
                        tracing::info!("run requests can be read again");
                    }
                    if at >= next_look {
                        next_look = at + poll;
                    }
                }
                Err(e) => {
                    healthy_since = None;
                    next_look = at + poll;
                    if !std::mem::replace(&mut failing, true) {
                        tracing::warn!(error = %crate::error_chain(&e), "cannot read run requests; retrying");
                    }
                }
            }
            let woken = async {
                match listener.as_mut() {
                    Some(l) => l.notified().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep_until(next_look.min(next_release)) => {}
                alive = woken => {
                    if alive {
                        next_look = tokio::time::Instant::now();
                    } else {
                        tracing::debug!("the LISTEN connection for run requests dropped; opening another");
                        listener = None;
                    }
                }
            }
        }
    }

    /// Hands back the claims of workers dead for `dead_after`, once this
    /// worker has reached the database for that long itself. A request put
    /// back to `pending` is announced (PostgreSQL) or found by a poll.
    async fn release_dead(
        &self,
        db: &Db,
        now: DateTime<Utc>,
        healthy_since: Option<DateTime<Utc>>,
    ) -> Result<(), DbError> {
        let dead_after =
            chrono::Duration::from_std(self.dead_after).unwrap_or(chrono::Duration::MAX);
        if healthy_since.is_some_and(|since| now - since >= dead_after) {
            let lost = "its worker stopped heartbeating before the run finished (the run is marked abandoned)";
            let released = db
                .release_run_requests(Holder::DeadSince(now - dead_after), now, lost)
                .await?;
            log_released(&released, &self.worker_id);
        }
        Ok(())
    }

    /// Claims every pending request this worker wins and starts it.
    async fn claim_pending(&self, db: &Db) -> Result<(), DbError> {
        loop {
            let pending = db.pending_run_requests(BATCH).await?;
            let full = pending.len() as i64 == BATCH;
            for request in pending {
                if db
                    .claim_run_request(request.id, &self.worker_id, self.runner.clock().now())
                    .await?
                {
                    let start = Start {
                        runner: self.runner.clone(),
                        config: self.config.clone(),
                        worker_id: self.worker_id.clone(),
                    };
                    self.runs.spawn(start.carry_out(request));
                }
            }
            if !full {
                return Ok(());
            }
        }
    }
}

fn log_released(released: &crate::db::Released, by: &str) {
    if !released.pending_again.is_empty() {
        tracing::warn!(requests = ?released.pending_again, released_by = %by, "run requests claimed by a worker that went away before starting them are pending again");
    }
    if !released.lost.is_empty() {
        tracing::warn!(requests = ?released.lost, released_by = %by, "run requests whose worker went away during the run are finished with an error");
    }
}

/// What carrying out one claimed request needs.
struct Start {
    runner: Arc<Runner>,
    config: tokio::sync::watch::Receiver<Arc<Config>>,
    worker_id: String,
}

impl Start {
    /// Runs the request's job now and records what came of it.
    async fn carry_out(self, request: RunRequest) {
        let db = self.runner.recorder().db().clone();
        let spec = self.config.borrow().job(&request.job_name).cloned();
        let Some(spec) = spec else {
            let why = format!(
                "job {:?} is not in the schedules.toml worker {} runs (removed or renamed since the request?)",
                request.job_name, self.worker_id
            );
            tracing::warn!(request = request.id, job = %request.job_name, "run request not run: {why}");
            self.finish(&db, request.id, Some(&why)).await;
            return;
        };
        tracing::info!(request = request.id, job = %spec.name, requested_by = %request.requested_by, "running a requested run");
        let (claimed, mut run_ids) = tokio::sync::mpsc::unbounded_channel();
        let link = {
            let (db, worker_id, id) = (db.clone(), self.worker_id.clone(), request.id);
            tokio::spawn(async move {
                // The first attempt's run; the sender goes with the slot.
                if let Some(run_id) = run_ids.recv().await {
                    if let Err(e) = db.run_request_started(id, &worker_id, run_id).await {
                        tracing::warn!(request = id, run_id, error = %crate::error_chain(&e), "cannot link the run to its request");
                    }
                }
            })
        };
        let slot = Slot::new(&spec, self.runner.clock().now(), Trigger::Manual).telling(claimed);
        let outcome = self.runner.run_now(slot).await;
        let _ = link.await;
        let error = match &outcome {
            Outcome::Ran(report) if report.run_id.is_some() => None,
            Outcome::Ran(_) => Some(
                "the run was recorded while the database was unreachable; see the job's history"
                    .to_string(),
            ),
            Outcome::Skipped => Some(
                "skipped: a run of the job was still going and its overlap policy is \"skip\" or \"queue\" (see the job's history)"
                    .to_string(),
            ),
            // Shutdown began before the run could start: another worker (or
            // this one after a restart) takes the request.
            Outcome::Taken if self.runner.stopping() => {
                if let Err(e) = db.unclaim_run_request(request.id, &self.worker_id).await {
                    tracing::warn!(request = request.id, error = %crate::error_chain(&e), "cannot hand the run request back");
                }
                return;
            }
            Outcome::Taken => Some(
                "no free slot: the current second and the next three were all claimed by other runs of the job"
                    .to_string(),
            ),
            Outcome::Paused => Some("the job is paused".to_string()),
            Outcome::Elsewhere => Some(ops_worker_jobs::push::NOT_RUN_HERE.to_string()),
        };
        self.finish(&db, request.id, error.as_deref()).await;
    }

    async fn finish(&self, db: &Db, id: i64, error: Option<&str>) {
        let now = self.runner.clock().now();
        if let Err(e) = db.finish_run_request(id, &self.worker_id, now, error).await {
            tracing::warn!(request = id, error = %crate::error_chain(&e), "cannot record the run request finished");
        }
    }
}
