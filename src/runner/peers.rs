//! Spreading slots over replicas. Every live worker arms every job, and the
//! slot claim in `job_runs` lets exactly one of them run each slot. Left at
//! that, whichever worker wakes fastest would win nearly every slot. So for
//! each slot the workers agree on an order (rendezvous hashing of the job,
//! the slot and the worker id, which every worker computes alike): the first
//! in that order claims at once, the n-th only after n × [`BACKUP_STEP`], by
//! when the first has normally claimed it. A dead or paused first worker
//! therefore costs its slots [`BACKUP_STEP`] of lateness, not the slot.
//!
//! The live workers come from `workers` (fresh heartbeats, refreshed with
//! each heartbeat). A worker that does not find itself in the list claims at
//! once: a stale list may cost spread, never a slot.

use std::sync::RwLock;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::schedule::jitter::slot_hash;

/// How much later each next worker in a slot's order claims it.
pub const BACKUP_STEP: Duration = Duration::from_millis(200);

/// The live workers, as last read from `workers`.
#[derive(Debug, Default)]
pub struct Peers {
    live: RwLock<Vec<String>>,
}

impl Peers {
    pub fn set(&self, mut ids: Vec<String>) {
        ids.sort();
        ids.dedup();
        *self.live.write().unwrap() = ids;
    }

    /// Whether other workers are live: only then can a run of a job be
    /// going elsewhere.
    pub fn shared(&self) -> bool {
        self.live.read().unwrap().len() > 1
    }

    pub fn live(&self) -> Vec<String> {
        self.live.read().unwrap().clone()
    }

    /// How long worker `me` waits before claiming `slot` of `job`: its rank
    /// in the slot's order times [`BACKUP_STEP`].
    pub fn delay(&self, me: &str, job: &str, slot: DateTime<Utc>) -> Duration {
        let live = self.live.read().unwrap();
        if live.len() < 2 || !live.iter().any(|w| w == me) {
            return Duration::ZERO;
        }
        let mine = score(job, slot, me);
        let rank = live
            .iter()
            .filter(|w| w.as_str() != me && score(job, slot, w) > mine)
            .count();
        BACKUP_STEP * rank as u32
    }

    /// The worker first in `slot`'s order, if any is live.
    pub fn first(&self, job: &str, slot: DateTime<Utc>) -> Option<String> {
        self.live
            .read()
            .unwrap()
            .iter()
            .max_by_key(|w| score(job, slot, w))
            .cloned()
    }
}

/// The rendezvous score: the same on every worker and every version.
fn score(job: &str, slot: DateTime<Utc>, worker: &str) -> u64 {
    slot_hash(job, slot, worker.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(i: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_514_400 + i, 0).unwrap()
    }

    #[test]
    fn one_worker_or_an_unknown_one_claims_at_once() {
        let p = Peers::default();
        assert_eq!(p.delay("w1", "job", slot(0)), Duration::ZERO);
        p.set(vec!["w1".into()]);
        assert_eq!(p.delay("w1", "job", slot(0)), Duration::ZERO);
        p.set(vec!["w1".into(), "w2".into()]);
        assert_eq!(p.delay("w3", "job", slot(0)), Duration::ZERO);
    }

    #[test]
    fn each_slot_has_one_first_and_the_firsts_spread_evenly() {
        let p = Peers::default();
        let workers = ["w1", "w2", "w3"];
        p.set(workers.iter().map(|w| w.to_string()).collect());
        let mut firsts = [0; 3];
        for i in 0..3000 {
            let mut delays: Vec<Duration> =
                workers.iter().map(|w| p.delay(w, "job", slot(i))).collect();
            let first = p.first("job", slot(i)).unwrap();
            let at_once = workers.iter().position(|w| *w == first).unwrap();
            assert_eq!(delays[at_once], Duration::ZERO);
            firsts[at_once] += 1;
            delays.sort();
            assert_eq!(delays, [Duration::ZERO, BACKUP_STEP, 2 * BACKUP_STEP]);
        }
        // 1,000 each expected; a fair split stays well within ±15 %.
        assert!(
            firsts.iter().all(|&n| (850..=1150).contains(&n)),
            "{firsts:?}"
        );
    }
}
