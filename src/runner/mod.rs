//! The runner: the only code that writes a run's lifecycle. A scheduled tick,
//! a catch-up, `ops-worker run-job` and the tests all call [`Runner::run`].
//!
//! For one slot it waits for the slot's `jitter` (scheduled and catch-up
//! slots of a job that has one), applies the overlap policy, claims the slot
//! in `job_runs` (exactly one claimer wins), runs the job on the job runtime
//! under its timeout with panic isolation, retries with doubling backoff,
//! and finishes the row as success, failed, timeout, panicked or
//! interrupted. A scheduled, caught-up or abandoned-and-retried slot of a
//! paused job is not run and leaves no row ([`Outcome::Paused`]); a manual
//! run is.

mod abandon;
pub mod pauses;
pub mod peers;
pub mod push;
pub mod recorder;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use ops_worker_jobs::{Clock, Directory, JobContext, JobError, JobOutput, Store, Timeline};
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;
use tokio::task::JoinError;
use tokio_util::sync::CancellationToken;
use tracing::{field, Instrument};

use crate::config::JobSpec;
use crate::db::{Finish, NewRun, RunStatus, Trigger};
use crate::schedule::catch_up::MISFIRE_GRACE;
use crate::schedule::Overlap;
use crate::telemetry::Telemetry;
pub use pauses::Pauses;
pub use peers::Peers;
pub use recorder::{Claim, Recorder};

/// How long a job has to stop after its cancel token fires (the `command`
/// kind uses 5 s of it between SIGTERM and SIGKILL) before it is aborted.
pub const STOP_GRACE: Duration = Duration::from_secs(7);
/// How long an aborted job gets to be dropped (a `command`'s process group
/// is killed as its future is dropped) before the run is recorded anyway: a
/// job that blocks its thread is dropped only when it returns.
const ABORT_WAIT: Duration = Duration::from_secs(1);
/// How often a `queue` slot checks whether another worker's run of its job
/// has ended.
const QUEUE_POLL: Duration = Duration::from_millis(250);
/// Retry backoff doubles per attempt up to this.
const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(3600);

/// Threads of the job runtime. Async jobs share them; a job that blocks its
/// thread (a bug, but one a worker must survive) takes one out until it
/// returns, so up to `JOB_THREADS - 1` jobs can block at once before others
/// wait. Idle threads cost a few KiB each.
fn job_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(8, |n| 2 * n.get())
        .max(8)
}

/// Jobs run here, not on the runtime that keeps time and writes records: a
/// job that blocks its thread then delays neither the timers nor the
/// recording of other runs, and other jobs move to the other worker threads.
/// It lives for the whole process (a runtime must not be dropped from async
/// code), so it is a process-wide static.
fn job_runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(job_threads())
            .thread_name("ops-worker-job")
            .enable_all()
            .build()
            .expect("cannot start the job runtime")
    })
}

/// What happened to a slot handed to [`Runner::run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The job ran; this is its last attempt.
    Ran(RunReport),
    /// Recorded as `skipped`: the previous run was still going.
    Skipped,
    /// Another claimer already holds this slot, or shutdown began while
    /// this worker waited for its turn to claim it; nothing ran here.
    Taken,
    /// The job is paused at the slot's time or now, and the slot is not a
    /// manual run: nothing ran and nothing was recorded.
    Paused,
    /// A `push` job: it runs elsewhere and its runs are the signals it
    /// sends (`record_push_signal`); nothing ran and nothing was recorded.
    Elsewhere,
}

/// One slot handed to the runner: which job, which slot, why it runs, and
/// which attempt its claim is. The scheduler, `run-job`, the retry of an
/// abandoned run and the tests build one and call [`Runner::run`].
#[derive(Debug, Clone)]
pub struct Slot {
    pub job: Arc<JobSpec>,
    /// `scheduled_for`: a whole second.
    pub at: DateTime<Utc>,
    pub trigger: Trigger,
    /// Slots before this one that will never run.
    pub missed: u64,
    /// The attempt the first claim is for: 1, or the one after an
    /// abandoned attempt.
    pub attempt: u32,
    /// Told the id of each `job_runs` row this slot's attempts claim, as
    /// soon as it is claimed (a run request links its run this way).
    pub claimed: Option<tokio::sync::mpsc::UnboundedSender<i64>>,
}

impl Slot {
    /// The first attempt of `job`'s slot at `at` (truncated to the whole
    /// second), with no slot missed before it.
    pub fn new(job: &Arc<JobSpec>, at: DateTime<Utc>, trigger: Trigger) -> Slot {
        Slot {
            job: job.clone(),
            at: crate::schedule::whole_second(at),
            trigger,
            missed: 0,
            attempt: 1,
            claimed: None,
        }
    }

    /// This slot, telling `claimed` the id of each run it claims.
    pub fn telling(self, claimed: tokio::sync::mpsc::UnboundedSender<i64>) -> Slot {
        Slot {
            claimed: Some(claimed),
            ..self
        }
    }

    /// This slot, with `missed` slots before it that will never run.
    pub fn with_missed(self, missed: u64) -> Slot {
        Slot { missed, ..self }
    }

    /// The slot of an attempt that was abandoned (its worker died), as the
    /// next attempt (trigger `retry`): the claim of that attempt decides
    /// which live worker runs it.
    pub fn after_abandoned(job: &Arc<JobSpec>, at: DateTime<Utc>, abandoned: u32) -> Slot {
        Slot {
            attempt: abandoned.saturating_add(1),
            ..Slot::new(job, at, Trigger::Retry)
        }
    }

    /// The next attempt after this one failed.
    fn retry(&self) -> Slot {
        Slot {
            trigger: Trigger::Retry,
            missed: 0,
            attempt: self.attempt + 1,
            ..self.clone()
        }
    }

    /// The slot's jitter for runs that wait for it: scheduled and catch-up
    /// slots of a job with `jitter`. Manual runs and retries start at once.
    fn jitter(&self) -> Option<Duration> {
        matches!(self.trigger, Trigger::Schedule | Trigger::CatchUp)
            .then(|| self.job.slot_jitter(self.at))
            .flatten()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// None when the database was away and the record is held in memory.
    pub run_id: Option<i64>,
    pub status: RunStatus,
    pub error: Option<String>,
    pub output: Option<String>,
    pub duration: Duration,
    pub attempts: u32,
}

/// Per-job overlap state, shared by every slot of the job in this process.
struct Guard {
    running: Semaphore,
    waiting: AtomicBool,
}

pub struct Runner {
    recorder: Arc<Recorder>,
    /// What jobs get in their context: the database behind the `Store`
    /// traits and the shared HTTP client.
    store: Arc<dyn Store>,
    http: ops_worker_jobs::reqwest::Client,
    /// The schedules and people jobs see; replaced by a reload.
    context: RwLock<(Arc<dyn Timeline>, Arc<dyn Directory>)>,
    /// The enabled push jobs and their timeouts, for [`Runner::time_out_push_starts`].
    push_jobs: RwLock<Vec<(String, Duration)>>,
    telemetry: Arc<Telemetry>,
    peers: Arc<Peers>,
    /// The paused jobs, refreshed by the daemon's heartbeat.
    pauses: Arc<Pauses>,
    clock: Arc<dyn Clock>,
    worker_id: String,
    guards: Mutex<HashMap<String, Arc<Guard>>>,
    /// Fired when shutdown begins: no new retries, queued slots give up.
    stopping: CancellationToken,
    /// Fired when the shutdown grace runs out: running jobs are cancelled and
    /// recorded as `interrupted`, with `interrupted_why` as their error.
    interrupt: CancellationToken,
    interrupted_why: OnceLock<String>,
    /// Fired when stopping must not wait for cancelled jobs: they are
    /// dropped at once (a `command`'s process group gets SIGKILL) instead
    /// of getting [`STOP_GRACE`].
    stop_now: CancellationToken,
}

/// Why a run the daemon's drain cancelled did not finish.
const SHUTDOWN: &str = "interrupted: the worker shut down before the run finished";

impl Runner {
    pub fn new(recorder: Arc<Recorder>, clock: Arc<dyn Clock>, worker_id: String) -> Runner {
        Runner {
            store: Arc::new(recorder.db().clone()),
            http: ops_worker_jobs::health::http_client(),
            context: RwLock::new((
                Arc::new(ops_worker_jobs::NoJobs),
                Arc::new(ops_worker_jobs::NoPeople),
            )),
            push_jobs: RwLock::new(Vec::new()),
            telemetry: Arc::new(Telemetry::new()),
            peers: Arc::new(Peers::default()),
            pauses: Arc::new(Pauses::default()),
            recorder,
            clock,
            worker_id,
            guards: Mutex::new(HashMap::new()),
            stopping: CancellationToken::new(),
            interrupt: CancellationToken::new(),
            interrupted_why: OnceLock::new(),
            stop_now: CancellationToken::new(),
        }
    }

    /// Jobs see this config's schedules (`alerts` judges other jobs on
    /// them) and its people and on-call schedules (`escalation` pages them).
    pub fn with_config(self, config: Arc<crate::config::Config>) -> Runner {
        self.set_config(config);
        self
    }

    /// What [`Runner::with_config`] does, for a reload: runs that start from
    /// now on see `config`.
    pub fn set_config(&self, config: Arc<crate::config::Config>) {
        *self.push_jobs.write().unwrap() = config
            .jobs
            .iter()
            .filter(|j| j.enabled && j.push.is_some())
            .map(|j| (j.name.clone(), j.timeout))
            .collect();
        *self.context.write().unwrap() = (config.clone(), config);
    }

    /// Ends `timeout` the push jobs' starts with no finish within their
    /// `timeout` (see [`push::time_out_push_starts`]); asked on every
    /// heartbeat of the daemon. A failure is logged and tried again next time.
    pub async fn time_out_push_starts(&self, now: DateTime<Utc>) {
        let jobs = self.push_jobs.read().unwrap().clone();
        if jobs.is_empty() {
            return;
        }
        if let Err(e) = push::time_out_push_starts(self.recorder.db(), &jobs, now).await {
            tracing::warn!(error = %crate::error_chain(&e), "cannot end push starts past their timeout");
        }
    }

    /// The live workers this one shares slots with (see [`peers`]).
    pub fn peers(&self) -> &Arc<Peers> {
        &self.peers
    }

    /// The paused jobs whose slots this runner does not run (see [`pauses`]).
    pub fn pauses(&self) -> &Arc<Pauses> {
        &self.pauses
    }

    /// Whether a slot of `job` at `slot` is held back by a pause: one that
    /// covers the slot or now. Manual runs are never held back.
    pub fn paused(&self, job: &str, slot: DateTime<Utc>, trigger: Trigger) -> bool {
        trigger != Trigger::Manual
            && (self.pauses.covers(job, slot) || self.pauses.covers(job, self.clock.now()))
    }

    /// The metrics this runner (and the scheduler driving it) update.
    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.telemetry
    }

    pub fn recorder(&self) -> &Arc<Recorder> {
        &self.recorder
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Shutdown has begun: finish what runs, start nothing new.
    pub fn stop(&self) {
        self.stopping.cancel();
    }

    /// Whether shutdown has begun ([`Runner::stop`]).
    pub fn stopping(&self) -> bool {
        self.stopping.is_cancelled()
    }

    /// The grace is over: cancel running jobs and record them `interrupted`.
    pub fn interrupt(&self) {
        self.interrupt_because(SHUTDOWN);
    }

    /// [`Runner::interrupt`], with `why` as the runs' error (the first
    /// reason given stands).
    pub fn interrupt_because(&self, why: &str) {
        let _ = self.interrupted_why.set(why.to_string());
        self.stopping.cancel();
        self.interrupt.cancel();
    }

    /// Interrupts running jobs without waiting for them to stop: each is
    /// dropped where it is (a `command`'s process group gets SIGKILL) and
    /// recorded `interrupted` at once, without the output it had.
    pub fn stop_now(&self) {
        self.interrupt();
        self.stop_now.cancel();
    }

    fn guard(&self, job: &str) -> Arc<Guard> {
        self.guards
            .lock()
            .unwrap()
            .entry(job.to_string())
            .or_insert_with(|| {
                Arc::new(Guard {
                    running: Semaphore::new(1),
                    waiting: AtomicBool::new(false),
                })
            })
            .clone()
    }

    /// Whether a slot of `job` waits for its running predecessor (`overlap = "queue"`).
    pub fn has_queued_slot(&self, job: &str) -> bool {
        self.guards
            .lock()
            .unwrap()
            .get(job)
            .is_some_and(|g| g.waiting.load(Ordering::Acquire))
    }

    /// Runs one slot: the one execution path.
    pub async fn run(&self, slot: Slot) -> Outcome {
        let job = &slot.job.name;
        if slot.job.push.is_some() {
            tracing::debug!(job = %job, scheduled_for = %slot.at, trigger = %slot.trigger, "slot not run: a push job runs elsewhere");
            return Outcome::Elsewhere;
        }
        if self.paused(job, slot.at, slot.trigger) {
            tracing::debug!(job = %job, scheduled_for = %slot.at, trigger = %slot.trigger, "slot not run: the job is paused");
            return Outcome::Paused;
        }
        self.telemetry.missed(job, slot.missed);
        // A job with `jitter` starts a scheduled or caught-up slot at the
        // slot's jittered instant, which every worker computes alike, and
        // everything else happens from there: the overlap policy judges the
        // slot then, the claim, the spread over workers and the timeout
        // follow. A slot already past that instant (caught up late) does not
        // wait. Shutdown ends the wait as it ends a backup worker's: the slot
        // stays unclaimed here, for another worker or this one's catch-up
        // after a restart.
        if let Some(jitter) = slot.jitter() {
            let start = slot.at + TimeDelta::from_std(jitter).unwrap_or(TimeDelta::MAX);
            tokio::select! {
                _ = self.clock.sleep_until(start) => {}
                _ = self.stopping.cancelled() => return Outcome::Taken,
            }
            if self.paused(job, slot.at, slot.trigger) {
                tracing::debug!(job = %job, scheduled_for = %slot.at, trigger = %slot.trigger, "slot not run: the job was paused during its jitter");
                return Outcome::Paused;
            }
        }
        let guard = self.guard(job);
        let _permit = match slot.job.overlap {
            Overlap::Allow => None,
            Overlap::Skip => match guard.running.try_acquire() {
                Ok(p) => Some(p),
                Err(_) => {
                    return self
                        .skip(
                            &slot,
                            "the previous run is still going (overlap = \"skip\")",
                        )
                        .await
                }
            },
            Overlap::Queue => match guard.running.try_acquire() {
                Ok(p) => Some(p),
                Err(_) if guard.waiting.swap(true, Ordering::AcqRel) => {
                    return self
                        .skip(
                            &slot,
                            "a run is going and another slot already waits (overlap = \"queue\")",
                        )
                        .await
                }
                Err(_) => {
                    let permit = tokio::select! {
                        p = guard.running.acquire() => p.ok(),
                        _ = self.stopping.cancelled() => None,
                    };
                    guard.waiting.store(false, Ordering::Release);
                    match permit {
                        Some(p) => Some(p),
                        None => {
                            return self
                                .skip(&slot, "the worker stopped before the queued slot could run")
                                .await
                        }
                    }
                }
            },
        };
        self.attempts(slot).await
    }

    /// A manual run of `slot` (trigger `manual`, its slot the current
    /// second): when that second is taken (another manual run, or the
    /// scheduled run of this very second) it runs in the next one instead,
    /// up to three times, unless shutdown began.
    pub async fn run_now(&self, slot: Slot) -> Outcome {
        let mut outcome = self.run(slot.clone()).await;
        for _ in 0..3 {
            if outcome != Outcome::Taken || self.stopping.is_cancelled() {
                break;
            }
            let next_second =
                crate::schedule::whole_second(self.clock.now()) + TimeDelta::seconds(1);
            self.clock.sleep_until(next_second).await;
            outcome = self
                .run(Slot {
                    at: next_second,
                    ..slot.clone()
                })
                .await;
        }
        outcome
    }

    async fn skip(&self, slot: &Slot, why: &str) -> Outcome {
        let now = self.clock.now();
        let run = self.new_run(slot, now);
        tracing::info!(job = %slot.job.name, scheduled_for = %slot.at, "slot skipped: {why}");
        let finish = Finish {
            status: RunStatus::Skipped,
            finished_at: now,
            error: Some(format!("skipped: {why}")),
            output: None,
            duration_ms: 0,
        };
        self.recorder.insert_finished(&run, finish).await;
        self.telemetry.skipped(&slot.job.name);
        Outcome::Skipped
    }

    fn new_run(&self, slot: &Slot, now: DateTime<Utc>) -> NewRun {
        NewRun {
            job_name: slot.job.name.clone(),
            kind: slot.job.kind.clone(),
            scheduled_for: slot.at,
            trigger: slot.trigger,
            attempt: slot.attempt as i32,
            worker_id: self.worker_id.clone(),
            started_at: now,
            missed: slot.missed.min(i32::MAX as u64) as i32,
            jitter_ms: slot.jitter().map(|j| j.as_millis() as i64),
        }
    }

    /// Claims and runs the slot, then its retries: each attempt a row.
    async fn attempts(&self, mut slot: Slot) -> Outcome {
        let spec = slot.job.clone();
        let mut first = true;
        loop {
            // Scheduled slots spread over the live workers: the slot's first
            // worker claims now, the others a little later (see `peers`).
            let mut backup = false;
            if matches!(slot.trigger, Trigger::Schedule | Trigger::CatchUp) {
                let wait = self.peers.delay(&self.worker_id, &spec.name, slot.at);
                if !wait.is_zero() {
                    backup = true;
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = self.stopping.cancelled() => return Outcome::Taken,
                    }
                }
            }
            let started_at = self.clock.now();
            // Slots of one instant wake together; each stamps its start and
            // lets the others wake and stamp theirs before any spends CPU on
            // its claim (measured: 20 slots' p99 fire lateness 2.5 -> 0.7 ms,
            // 1,000 slots' 15-20 -> 7 ms).
            tokio::task::yield_now().await;
            let mut run = self.new_run(&slot, started_at);
            // A backup normally finds the slot claimed: one index lookup
            // says so, where a claim attempt takes an insert and a lookup.
            if backup && self.recorder.taken(&run).await {
                tracing::debug!(job = %spec.name, scheduled_for = %slot.at, attempt = slot.attempt, "slot already claimed elsewhere");
                return Outcome::Taken;
            }
            // `skip` and `queue` hold across workers: the claim of a slot's
            // first attempt also checks that no other worker runs the job.
            // Alone, a worker skips that check (it costs the database a
            // third more per run); a worker joining is seen within a
            // heartbeat.
            let exclusive = first
                && spec.overlap != Overlap::Allow
                && slot.trigger != Trigger::Manual
                && self.peers.shared();
            let mut claim = if exclusive {
                self.recorder.claim_exclusive(&run).await
            } else {
                self.recorder.claim(&run).await
            };
            while let Claim::Busy(worker) = &claim {
                if spec.overlap == Overlap::Skip {
                    let why = format!("a run is going on worker {worker} (overlap = \"skip\")");
                    return self.skip(&slot, &why).await;
                }
                // `queue`: wait for the other worker's run to end.
                tokio::select! {
                    _ = tokio::time::sleep(QUEUE_POLL) => {}
                    _ = self.stopping.cancelled() => {
                        return self
                            .skip(&slot, "the worker stopped before the queued slot could run")
                            .await
                    }
                }
                run.started_at = self.clock.now();
                claim = self.recorder.claim_exclusive(&run).await;
            }
            if claim == Claim::Taken {
                tracing::debug!(job = %spec.name, scheduled_for = %slot.at, attempt = slot.attempt, "slot already claimed elsewhere");
                return Outcome::Taken;
            }
            // The database is down, so no claim can tell the workers apart:
            // each slot runs on its first worker only, as it would with the
            // database up, rather than once on every worker.
            if claim == Claim::Offline && backup {
                tracing::debug!(job = %spec.name, scheduled_for = %slot.at, attempt = slot.attempt, "database unreachable: the slot's first worker runs it");
                return Outcome::Taken;
            }
            let span = tracing::info_span!(
                "run",
                job = %spec.name,
                kind = %spec.kind,
                run_id = field::Empty,
                scheduled_for = %slot.at,
                trigger = %slot.trigger,
                attempt = slot.attempt,
                duration_ms = field::Empty,
            );
            if let Claim::Won(id) = claim {
                span.record("run_id", id);
                if let Some(claimed) = &slot.claimed {
                    let _ = claimed.send(id);
                }
            }
            let report = self.attempt(&slot, claim, &run).instrument(span).await;
            let retry = matches!(
                report.status,
                RunStatus::Failed | RunStatus::Timeout | RunStatus::Panicked
            ) && slot.attempt <= spec.retries
                && !self.stopping.is_cancelled();
            if !retry {
                return Outcome::Ran(report);
            }
            let backoff = spec
                .retry_backoff
                .checked_mul(1 << (slot.attempt - 1).min(20))
                .unwrap_or(MAX_RETRY_BACKOFF)
                .min(MAX_RETRY_BACKOFF);
            tracing::info!(job = %spec.name, attempt = slot.attempt, backoff = %humantime::format_duration(backoff), "retrying");
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = self.stopping.cancelled() => return Outcome::Ran(report),
            }
            slot = slot.retry();
            first = false;
        }
    }

    async fn attempt(&self, slot: &Slot, claim: Claim, run: &NewRun) -> RunReport {
        let spec = &slot.job;
        // A manual run's slot is "now"; lateness means nothing there. A
        // jittered slot is late from its jittered start on: the jitter is
        // the job's own choice, lateness the engine's.
        let due = slot.at + TimeDelta::milliseconds(run.jitter_ms.unwrap_or(0));
        let lateness_ms =
            (run.trigger != Trigger::Manual).then(|| (run.started_at - due).num_milliseconds());
        let on_time_lateness = (run.trigger == Trigger::Schedule)
            .then(|| (run.started_at - due).to_std().unwrap_or_default());
        self.telemetry.run_started(&spec.name, on_time_lateness);
        // A slot the scheduler fired on time can still start late: it waited
        // for the previous run (`overlap = "queue"`), for a dead first
        // replica, or for a slow claim. Beyond the misfire threshold that is
        // as late as a missed slot; the scheduler warns about those itself.
        if let Some(late) = on_time_lateness.filter(|l| *l > MISFIRE_GRACE) {
            tracing::warn!(
                late_by = %humantime::format_duration(Duration::from_secs(late.as_secs())),
                "run started late, more than {}s after its slot",
                MISFIRE_GRACE.as_secs()
            );
        }
        let clock_start = Instant::now();
        let (status, error, output) = self.execute(slot).await;
        let duration = clock_start.elapsed();
        let finish = Finish {
            status,
            finished_at: self.clock.now(),
            error: error.clone(),
            output: output.clone(),
            duration_ms: duration.as_millis() as i64,
        };
        tracing::Span::current().record("duration_ms", finish.duration_ms);
        match status {
            RunStatus::Success => tracing::info!(
                lateness_ms = lateness_ms.map(field::display),
                jitter_ms = run.jitter_ms.map(field::display),
                "run succeeded"
            ),
            _ => {
                tracing::warn!(lateness_ms = lateness_ms.map(field::display), jitter_ms = run.jitter_ms.map(field::display), status = %status, error = error.as_deref().unwrap_or(""), "run did not succeed")
            }
        }
        self.telemetry
            .run_finished(&spec.name, status, duration, finish.finished_at);
        let run_id = match claim {
            Claim::Won(id) => Some(id),
            _ => None,
        };
        self.recorder.finish(claim, run, finish).await;
        RunReport {
            run_id,
            status,
            error,
            output,
            duration,
            attempts: slot.attempt,
        }
    }

    /// Runs the job once on the job runtime; never panics, never hangs past
    /// the timeout plus [`STOP_GRACE`].
    async fn execute(&self, slot: &Slot) -> (RunStatus, Option<String>, Option<String>) {
        let spec = &slot.job;
        let cancel = CancellationToken::new();
        let (timeline, directory) = self.context.read().unwrap().clone();
        let ctx = JobContext {
            job: spec.name.as_str().into(),
            scheduled_for: slot.at,
            attempt: slot.attempt,
            cancel: cancel.clone(),
            clock: self.clock.clone(),
            http: self.http.clone(),
            store: self.store.clone(),
            timeline,
            directory,
        };
        // Claimed after the interrupt (a signal reached `run-job` while it
        // connected): recorded, not started.
        if self.interrupt.is_cancelled() {
            return (
                RunStatus::Interrupted,
                Some(format!(
                    "{} (before the job started)",
                    self.interrupted_why()
                )),
                None,
            );
        }
        let job = spec.job.clone();
        // In the run's span, so what a job logs names the run.
        let mut handle = job_runtime().spawn(async move { job.run(ctx).await }.in_current_span());
        let (status, why) = tokio::select! {
            joined = &mut handle => return settle(joined),
            _ = tokio::time::sleep(spec.timeout) => {
                (RunStatus::Timeout, format!("timed out after {}", humantime::format_duration(spec.timeout)))
            }
            _ = self.interrupt.cancelled() => (RunStatus::Interrupted, self.interrupted_why()),
        };
        cancel.cancel();
        let stopped = tokio::select! {
            stopped = tokio::time::timeout(STOP_GRACE, &mut handle) => stopped.ok(),
            _ = self.stop_now.cancelled() => None,
        };
        let (why, output) = match stopped {
            Some(joined) => (why, settle(joined).2),
            None => {
                // The job ignored its cancel token (e.g. it blocks its thread),
                // or stopping cannot wait: drop its future at the next await
                // point (a `command`'s process group gets SIGKILL then) and
                // record it anyway.
                handle.abort();
                let _ = tokio::time::timeout(ABORT_WAIT, &mut handle).await;
                if self.stop_now.is_cancelled() {
                    (format!("{why}; stopped at once on another signal"), None)
                } else {
                    (why, None)
                }
            }
        };
        (status, Some(why), output)
    }

    fn interrupted_why(&self) -> String {
        self.interrupted_why
            .get()
            .map_or(SHUTDOWN, String::as_str)
            .to_string()
    }
}

fn settle(
    joined: Result<Result<JobOutput, JobError>, JoinError>,
) -> (RunStatus, Option<String>, Option<String>) {
    match joined {
        Ok(Ok(out)) => (RunStatus::Success, None, out.output),
        Ok(Err(e)) => (RunStatus::Failed, Some(e.message), e.output),
        Err(e) if e.is_panic() => {
            let payload = e.into_panic();
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".to_string());
            (RunStatus::Panicked, Some(format!("panicked: {msg}")), None)
        }
        Err(_) => (RunStatus::Interrupted, Some("cancelled".to_string()), None),
    }
}
