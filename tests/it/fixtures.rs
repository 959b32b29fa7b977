//! Test jobs and job specs for runner, scheduler and worker tests: jobs that
//! succeed, fail, panic, block, or wait for a gate the test opens; runs
//! recorded as if they had happened; a manual clock that shows its sleepers;
//! and a bounded wait for an effect of a background task.
#![allow(dead_code)]

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ops_worker::config::{Config, JobSpec, Retention};
use ops_worker::runner::{Recorder, Runner};
use ops_worker::schedule::{CatchUp, Overlap, Schedule};
use ops_worker_jobs::{Clock, Job, JobContext, JobError, JobOutput, ManualClock};
use tokio::sync::{watch, Semaphore};

/// A run to record as if it had happened: `job`'s first attempt at `slot`
/// (kind `command`, worker `w`), started `late_ms` after it, taking
/// `duration_ms`; with status `Running`, one still going (claimed, not
/// finished).
pub struct PastRun {
    pub job: &'static str,
    pub slot: DateTime<Utc>,
    pub trigger: ops_worker::db::Trigger,
    pub late_ms: i64,
    pub status: ops_worker::db::RunStatus,
    pub duration_ms: i64,
    pub missed: i32,
    /// The slot's jitter, recorded as such (`late_ms` includes it).
    pub jitter_ms: Option<i64>,
}

impl PastRun {
    pub async fn record(&self, db: &ops_worker::db::Db) {
        use ops_worker::db::{Finish, NewRun};
        let started = self.slot + chrono::TimeDelta::milliseconds(self.late_ms);
        let run = NewRun {
            job_name: self.job.into(),
            kind: "command".into(),
            scheduled_for: self.slot,
            trigger: self.trigger,
            attempt: 1,
            worker_id: "w".into(),
            started_at: started,
            missed: self.missed,
            jitter_ms: self.jitter_ms,
        };
        if self.status == ops_worker::db::RunStatus::Running {
            assert!(db.claim_run(&run).await.unwrap().is_some());
            return;
        }
        let finish = Finish {
            status: self.status,
            finished_at: started + chrono::TimeDelta::milliseconds(self.duration_ms),
            error: None,
            output: None,
            duration_ms: self.duration_ms,
        };
        assert!(db.insert_finished_run(&run, &finish).await.unwrap());
    }
}

pub fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

/// What a test job does when run.
pub enum Behaviour {
    Succeed,
    Fail,
    Panic,
    /// Fails this many times, then succeeds.
    FailTimes(u32),
    /// Waits for a permit of the gate (or for cancellation).
    Gate(Arc<Semaphore>),
    /// Blocks its thread (never yields) for this long.
    Block(Duration),
}

/// A job that behaves as told and remembers every slot it ran for.
pub struct TestJob {
    pub behaviour: Behaviour,
    pub calls: AtomicU32,
    pub slots: Mutex<Vec<DateTime<Utc>>>,
}

impl TestJob {
    pub fn new(behaviour: Behaviour) -> Arc<TestJob> {
        Arc::new(TestJob {
            behaviour,
            calls: AtomicU32::new(0),
            slots: Mutex::new(Vec::new()),
        })
    }

    pub fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Job for TestJob {
    async fn run(&self, ctx: JobContext) -> Result<JobOutput, JobError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        self.slots.lock().unwrap().push(ctx.scheduled_for);
        match &self.behaviour {
            Behaviour::Succeed => Ok(JobOutput {
                output: Some(format!("ran for {}", ctx.scheduled_for)),
            }),
            Behaviour::Fail => Err(JobError {
                message: "it broke".into(),
                output: Some("some output".into()),
            }),
            Behaviour::Panic => panic!("boom in {}", ctx.job),
            Behaviour::FailTimes(k) if n <= *k => Err(JobError::new(format!("failure {n}"))),
            Behaviour::FailTimes(_) => Ok(JobOutput::default()),
            Behaviour::Gate(gate) => tokio::select! {
                permit = gate.acquire() => {
                    permit.unwrap().forget();
                    Ok(JobOutput::default())
                }
                _ = ctx.cancel.cancelled() => Err(JobError { message: "cancelled".into(), output: Some("partial".into()) }),
            },
            Behaviour::Block(d) => {
                std::thread::sleep(*d);
                Ok(JobOutput::default())
            }
        }
    }
}

/// A spec around `job` running every `every_secs`, with schedules.toml's
/// defaults but for three: a fixed 30 s `timeout` (the default is the
/// interval, at most 10 min), a 10 ms `retry_backoff` (5 s), so retries do
/// not slow the tests, and `retry_abandoned = false` (true but for
/// `command`). `tweak` changes any of them.
pub fn fast_retry_spec(
    name: &str,
    every_secs: u64,
    job: Arc<dyn Job>,
    tweak: impl FnOnce(&mut JobSpec),
) -> Arc<JobSpec> {
    let mut spec = JobSpec {
        name: name.to_string(),
        kind: "test".to_string(),
        schedule: Schedule::every(Duration::from_secs(every_secs)).unwrap(),
        schedule_at: None,
        timezone: ops_worker_jobs::tz::Tz::UTC,
        timeout: Duration::from_secs(30),
        overlap: Overlap::Skip,
        catch_up: CatchUp::Latest,
        catch_up_window: Duration::from_secs(86_400),
        retries: 0,
        retry_backoff: Duration::from_millis(10),
        jitter: Duration::ZERO,
        retry_abandoned: false,
        fingerprint: String::new(),
        enabled: true,
        retention: Retention::default(),
        push: None,
        job,
    };
    tweak(&mut spec);
    Arc::new(spec)
}

/// One job from a schedules.toml snippet (real kinds, real parsing).
pub fn spec_from_toml(name: &str, toml: &str) -> Arc<JobSpec> {
    let config = Config::parse(Path::new("schedules.toml"), toml, &|_| None).unwrap();
    config.job(name).unwrap().clone()
}

/// The production runner (and recorder) on `db`, with `clock`, as worker
/// `worker`.
pub fn runner(db: &ops_worker::db::Db, clock: Arc<dyn Clock>, worker: &str) -> Arc<Runner> {
    Arc::new(Runner::new(
        Arc::new(Recorder::new(db.clone())),
        clock,
        worker.to_string(),
    ))
}

/// How long [`TestClock::asleep_until`] waits for a task to reach its sleep.
const ASLEEP_WITHIN: Duration = Duration::from_secs(10);

/// A [`ManualClock`] that also knows which sleeps are under way and until
/// when, so a test can wait until a task has reached a wait (and so has done
/// everything it does before it) instead of sleeping for a while and hoping
/// it has. A sleep whose deadline has already passed ends at once and may
/// never be seen.
pub struct TestClock {
    clock: ManualClock,
    /// The deadline of every sleep under way, in the order they began.
    sleeping: watch::Sender<Vec<DateTime<Utc>>>,
}

impl TestClock {
    pub fn new(start: DateTime<Utc>) -> Arc<TestClock> {
        Arc::new(TestClock {
            clock: ManualClock::new(start),
            sleeping: watch::Sender::new(Vec::new()),
        })
    }

    pub fn set(&self, t: DateTime<Utc>) {
        self.clock.set(t);
    }

    pub fn advance(&self, by: chrono::TimeDelta) {
        self.clock.advance(by);
    }

    /// Waits until at least `n` sleeps until exactly `deadline` are under
    /// way; fails the test, naming the sleeps there are, after 10 s.
    pub async fn asleep_until(&self, deadline: DateTime<Utc>, n: usize) {
        let mut sleeping = self.sleeping.subscribe();
        let reached = tokio::time::timeout(
            ASLEEP_WITHIN,
            sleeping.wait_for(|s| s.iter().filter(|d| **d == deadline).count() >= n),
        )
        .await;
        if reached.is_err() {
            panic!(
                "timed out waiting for {n} sleep(s) until {deadline}; sleeping until: {:?}",
                *self.sleeping.borrow()
            );
        }
    }
}

/// Takes a sleep off [`TestClock`]'s list when it ends or is dropped.
struct Asleep<'a> {
    sleeping: &'a watch::Sender<Vec<DateTime<Utc>>>,
    deadline: DateTime<Utc>,
}

impl Drop for Asleep<'_> {
    fn drop(&mut self) {
        self.sleeping.send_modify(|s| {
            if let Some(i) = s.iter().position(|d| *d == self.deadline) {
                s.remove(i);
            }
        });
    }
}

#[async_trait]
impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    async fn sleep_until(&self, deadline: DateTime<Utc>) {
        self.sleeping.send_modify(|s| s.push(deadline));
        let _asleep = Asleep {
            sleeping: &self.sleeping,
            deadline,
        };
        self.clock.sleep_until(deadline).await;
    }
}

/// Polls `check` until it holds or `limit` passes. For effects of background
/// tasks (a timer loop that was woken), not for timing.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A log writer for a test's tracing subscriber: what is logged (on the
/// thread the subscriber is the default of) is appended to the buffer.
pub struct Capture(pub Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
