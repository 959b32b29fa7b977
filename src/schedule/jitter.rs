//! Per-slot values that every replica computes alike, from the job's name
//! and the slot alone: the slot hash (which `runner::peers` also ranks
//! workers by) and a job's `jitter` delay. Pure functions; nothing here
//! sleeps or reads a clock.
//!
//! A slot's jitter is a delay in `[0, jitter)`, whole milliseconds, taken
//! from SHA-256 of the job name and the slot: the same on every worker, in
//! every process and every version, so a restart or a second replica never
//! moves a slot's jittered start. The slot itself (`scheduled_for`) stays
//! the unjittered instant.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// SHA-256 of the job, the slot's Unix second and `salt`, as a number.
/// These exact bytes are part of the on-disk contract between versions:
/// replicas of different versions must agree on every slot's value.
pub fn slot_hash(job: &str, slot: DateTime<Utc>, salt: &[u8]) -> u64 {
    let mut h = Sha256::new();
    h.update(job.as_bytes());
    h.update([0]);
    h.update(slot.timestamp().to_be_bytes());
    h.update(salt);
    let d = h.finalize();
    u64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

/// Sets the jitter hash apart from the worker ids `peers` salts with (an
/// id from the environment cannot hold a NUL byte).
const JITTER_SALT: &[u8] = b"\0jitter";

/// How long after `slot` job `job` starts, for a job with `jitter`: uniform
/// in `[0, jitter)` at millisecond resolution (zero for a jitter under 1 ms).
pub fn delay(job: &str, slot: DateTime<Utc>, jitter: Duration) -> Duration {
    let range = u64::try_from(jitter.as_millis()).unwrap_or(u64::MAX);
    // Multiply and shift maps the 64-bit hash onto [0, range) with a bias
    // below range / 2^64, where a modulo would favour the low values.
    let x = u128::from(slot_hash(job, slot, JITTER_SALT));
    Duration::from_millis(((x * u128::from(range)) >> 64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(i: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_514_400 + i, 0).unwrap()
    }

    const J: Duration = Duration::from_secs(30);

    #[test]
    fn within_bounds_and_whole_milliseconds() {
        for i in 0..10_000 {
            let d = delay("job", slot(i), J);
            assert!(d < J, "slot {i}: {d:?}");
            assert_eq!(d.subsec_nanos() % 1_000_000, 0, "slot {i}: {d:?}");
        }
        // Nothing to spread over: no delay.
        assert_eq!(delay("job", slot(0), Duration::ZERO), Duration::ZERO);
        assert_eq!(
            delay("job", slot(0), Duration::from_micros(999)),
            Duration::ZERO
        );
        // One millisecond of jitter leaves one value.
        assert_eq!(
            delay("job", slot(0), Duration::from_millis(1)),
            Duration::ZERO
        );
    }

    #[test]
    fn the_same_for_the_same_job_and_slot() {
        for i in 0..100 {
            assert_eq!(delay("job", slot(i), J), delay("job", slot(i), J));
        }
        // Sub-second noise in the slot does not change it: slots are seconds.
        let noisy = slot(7) + chrono::TimeDelta::milliseconds(300);
        assert_eq!(delay("job", noisy, J), delay("job", slot(7), J));
        // Pinned: a change of the hash would move every slot of every job on
        // an upgrade, and replicas of two versions would disagree.
        assert_eq!(
            delay("backup", slot(0), J),
            Duration::from_millis(PINNED_BACKUP_SLOT0_MS)
        );
    }

    /// `delay("backup", 2026-11-24T10:00:00Z, 30s)` as first computed.
    const PINNED_BACKUP_SLOT0_MS: u64 = 19_625;

    #[test]
    fn different_slots_and_jobs_differ() {
        let slots: std::collections::BTreeSet<Duration> =
            (0..1000).map(|i| delay("job", slot(i), J)).collect();
        // 1,000 draws from 30,000 values: a few collisions at most.
        assert!(slots.len() > 950, "{}", slots.len());
        let differ = (0..1000)
            .filter(|&i| delay("a", slot(i), J) != delay("b", slot(i), J))
            .count();
        assert!(differ > 950, "{differ}");
    }

    #[test]
    fn spread_is_roughly_uniform() {
        // 20,000 slots into 10 buckets of 3 s: 2,000 each expected, and a
        // fair spread stays well within ±10 % (about 7 standard deviations).
        let mut buckets = [0u32; 10];
        for i in 0..20_000 {
            let d = delay("job", slot(i * 60), J);
            buckets[(d.as_millis() / 3000) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|&n| (1800..=2200).contains(&n)),
            "{buckets:?}"
        );
        // The mean is near half the jitter.
        let mean = (0..20_000)
            .map(|i| delay("job", slot(i), J).as_millis() as f64)
            .sum::<f64>()
            / 20_000.0;
        assert!((14_000.0..16_000.0).contains(&mean), "{mean}");
    }

    #[test]
    fn the_peers_score_is_unchanged() {
        // `peers` ranks workers by this hash with the worker id as salt;
        // pinned so that moving it here kept every slot's order.
        assert_eq!(slot_hash("job", slot(0), b"w1"), PINNED_W1_SCORE);
    }

    const PINNED_W1_SCORE: u64 = 314_866_241_056_537_413;
}
