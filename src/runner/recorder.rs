//! Writes run records, and keeps them when the database is away.
//!
//! A claim that cannot reach the database does not stop the job: the run goes
//! ahead (the worker keeps firing) and its record waits in a bounded in-memory
//! outbox until the database is back. Finishes that fail wait there too. A
//! background task retries with exponential backoff and logs one line when an
//! outage starts and one when it ends.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;

use crate::db::{Db, DbError, ExclusiveClaim, Finish, NewRun};

/// Records held while the database is unreachable. At 1,000 runs/s this is
/// 10 s of runs; at the usual few runs a minute, days. Each is well under
/// 10 KiB (output and error tails are capped by the jobs), so the bound is
/// about 100 MiB in the worst case and a few MiB in practice.
pub const MAX_PENDING: usize = 10_000;
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// The result of trying to claim a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This process owns the slot; the row has this id.
    Won(i64),
    /// Someone else already holds the slot.
    Taken,
    /// The database did not answer; the run goes ahead and is recorded later.
    Offline,
    /// A run of the job is going on this other worker (an exclusive claim).
    Busy(String),
}

enum Pending {
    Finish { id: i64, finish: Finish },
    Insert { run: NewRun, finish: Finish },
}

pub struct Recorder {
    db: Db,
    outbox: Mutex<VecDeque<Pending>>,
    wake: Notify,
    outage: AtomicBool,
    dropped: AtomicU64,
}

impl Recorder {
    pub fn new(db: Db) -> Recorder {
        Recorder {
            db,
            outbox: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
            outage: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
        }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub async fn claim(&self, run: &NewRun) -> Claim {
        match self.db.claim_run(run).await {
            Ok(Some(id)) => Claim::Won(id),
            Ok(None) => Claim::Taken,
            Err(e) => {
                self.outage_started(&e);
                Claim::Offline
            }
        }
    }

    /// Whether another worker already has the slot of `run`: asked by a
    /// backup worker before it claims. `false` when the database cannot say
    /// (the claim that follows then deals with the outage).
    pub async fn taken(&self, run: &NewRun) -> bool {
        if self.outage.load(Ordering::Relaxed) {
            return false;
        }
        self.db.slot_taken(run).await.unwrap_or(false)
    }

    /// [`Recorder::claim`] that also fails when another worker has a run of
    /// the job going ([`Claim::Busy`]): for the `skip` and `queue` overlap
    /// policies across workers.
    pub async fn claim_exclusive(&self, run: &NewRun) -> Claim {
        match self.db.claim_run_exclusive(run).await {
            Ok(ExclusiveClaim::Won(id)) => Claim::Won(id),
            Ok(ExclusiveClaim::Taken) => Claim::Taken,
            Ok(ExclusiveClaim::Busy(worker)) => Claim::Busy(worker),
            Err(e) => {
                self.outage_started(&e);
                Claim::Offline
            }
        }
    }

    /// Finishes a claimed run, or records a whole run that was never claimed
    /// (an offline claim, or a skipped slot).
    pub async fn finish(&self, claim: Claim, run: &NewRun, finish: Finish) {
        let pending = match claim {
            Claim::Won(id) => Pending::Finish { id, finish },
            Claim::Offline => Pending::Insert {
                run: run.clone(),
                finish,
            },
            Claim::Taken | Claim::Busy(_) => return,
        };
        if !self.outage.load(Ordering::Relaxed) {
            match self.write(&pending).await {
                Ok(()) => return,
                Err(e) => self.outage_started(&e),
            }
        }
        self.hold(pending);
    }

    /// Records a run that starts finished (a skipped slot).
    pub async fn insert_finished(&self, run: &NewRun, finish: Finish) {
        self.finish(Claim::Offline, run, finish).await;
    }

    async fn write(&self, pending: &Pending) -> Result<(), DbError> {
        match pending {
            Pending::Finish { id, finish } => {
                if !self.db.finish_run(*id, finish).await? {
                    // Finished by someone else: a live replica marked it
                    // abandoned while this worker was paused or cut off. Its
                    // outcome is noted there, never written over the row.
                    if self.db.note_late_finish(*id, finish).await? {
                        tracing::warn!(
                            run_id = id,
                            status = %finish.status,
                            "another worker had marked this run abandoned (this worker was paused or cut off); its late outcome is noted on the row"
                        );
                    }
                }
                Ok(())
            }
            Pending::Insert { run, finish } => {
                self.db.insert_finished_run(run, finish).await.map(drop)
            }
        }
    }

    fn hold(&self, pending: Pending) {
        let mut outbox = self.outbox.lock().unwrap();
        if outbox.len() >= MAX_PENDING {
            outbox.pop_front();
            if self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::error!(
                    max = MAX_PENDING,
                    "run records held for the database exceed the bound; dropping the oldest"
                );
            }
        }
        outbox.push_back(pending);
        drop(outbox);
        self.wake.notify_one();
    }

    fn outage_started(&self, e: &DbError) {
        if !self.outage.swap(true, Ordering::Relaxed) {
            tracing::error!(
                error = %crate::error_chain(e),
                "database unavailable: jobs keep running and their records are held in memory (up to {MAX_PENDING}) until it is back"
            );
        }
    }

    pub fn pending(&self) -> usize {
        self.outbox.lock().unwrap().len()
    }

    /// Writes held records, oldest first, until the outbox is empty.
    /// Returns false when the database still refuses.
    pub async fn flush(&self) -> bool {
        let mut written = 0u64;
        loop {
            let Some(next) = self.outbox.lock().unwrap().pop_front() else {
                break;
            };
            if let Err(e) = self.write(&next).await {
                self.outbox.lock().unwrap().push_front(next);
                self.outage_started(&e);
                return false;
            }
            written += 1;
        }
        if self.outage.swap(false, Ordering::Relaxed) || written > 0 {
            let dropped = self.dropped.swap(0, Ordering::Relaxed);
            tracing::info!(
                written,
                dropped,
                "database is back: held run records written"
            );
        }
        true
    }

    /// The background writer: flushes whenever something is held, backing off
    /// while the database stays away. Runs until the task is dropped.
    pub async fn flush_loop(&self) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            if self.pending() == 0 {
                self.wake.notified().await;
                continue;
            }
            if self.flush().await {
                backoff = FIRST_BACKOFF;
            } else {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}
