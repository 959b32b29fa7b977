//! Workers whose clocks disagree by seconds still agree on every slot: a
//! slot's identity is computed from the schedule, never from a worker's
//! clock, so each slot is claimed once whoever wakes first. And their
//! heartbeats, stamped by each worker's own clock, do not make a live worker
//! look dead to another as long as the skew stays under `dead_after` minus
//! the heartbeat interval (docs/scaling-out.md, "Clock skew").

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use ops_worker::db::RunStatus;
use ops_worker::heartbeat::{beat, refresh_peers, this_worker, Reaper};
use ops_worker::scheduler::{self, Start};
use ops_worker_jobs::{Clock, Job, JobContext, JobError, JobOutput, SystemClock};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::fixtures::{fast_retry_spec, runner};
use crate::helpers::TestDb;

/// The system clock off by a fixed amount: a host whose clock is wrong.
struct SkewedClock(TimeDelta);

#[async_trait]
impl Clock for SkewedClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.0
    }

    async fn sleep_until(&self, deadline: DateTime<Utc>) {
        SystemClock.sleep_until(deadline - self.0).await
    }
}

/// Takes `busy`; counts how many runs of it are going at once, across the
/// workers (all in this process).
struct Counted {
    busy: Duration,
    going: AtomicUsize,
    most: AtomicUsize,
}

#[async_trait]
impl Job for Counted {
    async fn run(&self, _ctx: JobContext) -> Result<JobOutput, JobError> {
        let now = self.going.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.busy).await;
        self.going.fetch_sub(1, Ordering::SeqCst);
        Ok(JobOutput::default())
    }
}

fn counted(busy: Duration) -> Arc<Counted> {
    Arc::new(Counted {
        busy,
        going: AtomicUsize::new(0),
        most: AtomicUsize::new(0),
    })
}

/// Three workers with clocks 1.7 s behind, right and 2.3 s ahead (4 s
/// apart) share one database for 18 s, heartbeating and reaping with a
/// `dead_after` of 10 s (the least `ops-worker run` accepts), and run a job
/// every second, one every 5 s (whose grid a worker's own start time would
/// shift) and one taking 2.5 s every second with `overlap = "skip"`.
async fn workers_with_clocks_seconds_apart_agree(db: &TestDb) {
    let dead_after = Duration::from_secs(10);
    let skews = [("w-behind", -1700), ("w-right", 0), ("w-ahead", 2300)];
    let fast = counted(Duration::ZERO);
    let sparse = counted(Duration::ZERO);
    let slow = counted(Duration::from_millis(2500));
    let specs = [
        fast_retry_spec("fast", 1, fast.clone(), |_| {}),
        fast_retry_spec("sparse", 5, sparse.clone(), |_| {}),
        fast_retry_spec("slow", 1, slow.clone(), |_| {}),
    ];

    let (stop, runs) = (CancellationToken::new(), TaskTracker::new());
    let (abandoned_tx, mut abandoned) = tokio::sync::mpsc::unbounded_channel();
    let mut workers = Vec::new();
    for (id, skew_ms) in skews {
        let clock: Arc<dyn Clock> = Arc::new(SkewedClock(TimeDelta::milliseconds(skew_ms)));
        let me = this_worker(id, "hash", clock.now());
        db.db().register_worker(&me).await.unwrap();
        let r = runner(db.db(), clock.clone(), id);
        let heartbeat = tokio::spawn(beat(
            db.db().clone(),
            me,
            clock.clone(),
            stop.clone(),
            Some(Reaper {
                dead_after,
                runner: r.clone(),
                abandoned: abandoned_tx.clone(),
            }),
            None,
        ));
        workers.push((r, clock, heartbeat));
    }
    // As the daemon does once registered: each reads the live workers with
    // its own clock.
    for (r, clock, _) in &workers {
        refresh_peers(db.db(), r.peers(), clock.now(), dead_after).await;
        assert_eq!(r.peers().live().len(), 3, "{:?}", r.peers().live());
    }
    let started = Utc::now();
    for (r, clock, _) in &workers {
        for s in &specs {
            scheduler::arm(
                s.clone(),
                r.clone(),
                Start {
                    last_slot: None,
                    armed_at: clock.now(),
                },
                stop.clone(),
                runs.clone(),
            );
        }
    }
    // Three heartbeats (5 s apart), the last two reaping: 10 s of healthy
    // heartbeats come before a worker reaps.
    tokio::time::sleep(Duration::from_secs(18)).await;
    let ended = Utc::now();
    stop.cancel();
    for (r, _, _) in &workers {
        r.stop();
    }
    runs.close();
    tokio::time::timeout(Duration::from_secs(10), runs.wait())
        .await
        .expect("runs end");

    // Nobody was taken for dead: no run abandoned, nothing retried, and
    // each worker still counts all three live.
    assert!(abandoned.try_recv().is_err(), "a run was abandoned");
    for (r, _, heartbeat) in workers {
        assert_eq!(r.peers().live().len(), 3, "{:?}", r.peers().live());
        heartbeat.await.unwrap();
    }
    let rows = db.db().history(None, 10_000).await.unwrap();
    assert!(
        rows.iter()
            .all(|r| r.status != RunStatus::Abandoned && r.attempt == 1),
        "{rows:#?}"
    );
    // Every slot of the window: exactly one row, on the job's grid (whole
    // multiples of its interval). The window starts once the worker ahead
    // claims every slot first: before it was armed, the worker behind ran
    // the early slots up to 4 s late, so a `skip` job's next slot could
    // find that run still going and be skipped.
    let (from, to) = (
        started + TimeDelta::seconds(7),
        ended - TimeDelta::seconds(3),
    );
    for s in &specs {
        let every = if s.name == "sparse" { 5 } else { 1 };
        let mut per_slot: HashMap<i64, Vec<RunStatus>> = HashMap::new();
        for r in rows.iter().filter(|r| r.job_name == s.name) {
            assert_eq!(
                r.scheduled_for.timestamp() % every,
                0,
                "{} off its grid: {r:?}",
                s.name
            );
            per_slot
                .entry(r.scheduled_for.timestamp())
                .or_default()
                .push(r.status);
        }
        let first = from.timestamp().div_euclid(every) * every + every;
        let mut slot = first;
        while slot <= to.timestamp() {
            let got = per_slot.get(&slot).cloned().unwrap_or_default();
            assert_eq!(got.len(), 1, "{} slot {slot}: {got:?}", s.name);
            let ok = if s.name == "slow" {
                matches!(got[0], RunStatus::Success | RunStatus::Skipped)
            } else {
                got[0] == RunStatus::Success
            };
            assert!(
                ok,
                "{} slot {slot}: {got:?}\n{:#?}",
                s.name,
                rows.iter()
                    .filter(
                        |r| r.job_name == s.name && (r.scheduled_for.timestamp() - slot).abs() <= 3
                    )
                    .collect::<Vec<_>>()
            );
            slot += every;
        }
    }
    // `skip` held across the workers whatever their clocks said.
    assert_eq!(slow.most.load(Ordering::SeqCst), 1);
    assert!(fast.most.load(Ordering::SeqCst) >= 1);
    assert!(sparse.most.load(Ordering::SeqCst) >= 1);
}

crate::backend_tests!(workers_with_clocks_seconds_apart_agree);
