//! What to fire when a job's timer wakes: the due slot on time, and what the
//! catch-up policy makes of slots that passed while the process was stopped,
//! paused or stalled. A pure function, so every policy is unit-tested.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::CatchUp;

/// A slot whose lateness is within this is fired as on time. Quartz calls it
/// the misfire threshold and uses the same default. Only the newest due slot
/// can be on time; older ones are missed by definition.
pub const MISFIRE_GRACE: Duration = Duration::from_secs(60);

/// At most this many missed slots are run by `catch_up = "all"` after one
/// wake; older ones are counted as missed.
pub const MAX_CATCH_UP_RUNS: usize = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FireKind {
    OnTime,
    CatchUp,
}

/// One slot to hand to the runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fire {
    pub slot: DateTime<Utc>,
    pub kind: FireKind,
    /// Slots before this one that will never run (coalesced, outside the
    /// catch-up window, or dropped by `catch_up = "skip"`).
    pub missed: u64,
}

/// The slots that passed, newest last, and how many passed in all (`due` may
/// hold only the newest of them).
pub struct Due<'a> {
    pub slots: &'a [DateTime<Utc>],
    pub total: u64,
}

/// Decides what runs. `carried` is a missed count from an earlier wake that
/// nothing has reported yet; it is added to the first fire. Returns the fires
/// (oldest first) and the missed count still unreported when nothing fires.
pub fn plan(
    due: Due<'_>,
    now: DateTime<Utc>,
    policy: CatchUp,
    window: Duration,
    carried: u64,
) -> (Vec<Fire>, u64) {
    let Some((&newest, older)) = due.slots.split_last() else {
        return (Vec::new(), carried);
    };
    let grace = chrono::Duration::from_std(MISFIRE_GRACE).expect("small constant");
    let on_time = now - newest <= grace;
    let window_start = now - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
    // Every due slot except an on-time newest one is missed.
    let missed_total = due.total - u64::from(on_time) + carried;
    let missed_slots: &[DateTime<Utc>] = if on_time { older } else { due.slots };

    let mut fires = Vec::new();
    match policy {
        CatchUp::Latest => {
            if on_time {
                fires.push(Fire {
                    slot: newest,
                    kind: FireKind::OnTime,
                    missed: missed_total,
                });
            } else if newest >= window_start {
                fires.push(Fire {
                    slot: newest,
                    kind: FireKind::CatchUp,
                    missed: missed_total - 1,
                });
            }
        }
        CatchUp::All => {
            let runnable: Vec<_> = missed_slots
                .iter()
                .copied()
                .filter(|s| *s >= window_start)
                .collect();
            let mut unreported = missed_total - runnable.len() as u64;
            for slot in runnable {
                fires.push(Fire {
                    slot,
                    kind: FireKind::CatchUp,
                    missed: std::mem::take(&mut unreported),
                });
            }
            if on_time {
                fires.push(Fire {
                    slot: newest,
                    kind: FireKind::OnTime,
                    missed: std::mem::take(&mut unreported),
                });
            }
            if fires.is_empty() {
                return (fires, unreported);
            }
        }
        CatchUp::Skip => {
            if on_time {
                fires.push(Fire {
                    slot: newest,
                    kind: FireKind::OnTime,
                    missed: missed_total,
                });
            }
        }
    }
    if fires.is_empty() {
        (fires, missed_total)
    } else {
        (fires, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u32) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + i64::from(s), 0).unwrap()
    }

    const DAY: Duration = Duration::from_secs(86_400);

    fn run(
        slots: &[u32],
        total: u64,
        now: u32,
        policy: CatchUp,
        window: Duration,
    ) -> (Vec<Fire>, u64) {
        let slots: Vec<_> = slots.iter().map(|s| t(*s)).collect();
        plan(
            Due {
                slots: &slots,
                total,
            },
            t(now),
            policy,
            window,
            0,
        )
    }

    fn fire(slot: u32, kind: FireKind, missed: u64) -> Fire {
        Fire {
            slot: t(slot),
            kind,
            missed,
        }
    }

    #[test]
    fn a_single_due_slot_fires_on_time_under_every_policy() {
        for p in [CatchUp::Latest, CatchUp::All, CatchUp::Skip] {
            assert_eq!(
                run(&[100], 1, 100, p, DAY),
                (vec![fire(100, FireKind::OnTime, 0)], 0)
            );
        }
    }

    #[test]
    fn latest_coalesces_missed_slots_into_one_run() {
        // Paused for 5 intervals: the newest is on time and stands for the rest.
        assert_eq!(
            run(&[10, 20, 30, 40, 50], 5, 51, CatchUp::Latest, DAY),
            (vec![fire(50, FireKind::OnTime, 4)], 0)
        );
        // Down for hours: the newest is itself late, so it runs as a catch-up.
        assert_eq!(
            run(&[1000, 4600], 2, 8000, CatchUp::Latest, DAY),
            (vec![fire(4600, FireKind::CatchUp, 1)], 0)
        );
    }

    #[test]
    fn all_runs_each_missed_slot_in_the_window_then_the_current_one() {
        assert_eq!(
            run(&[10, 20, 30], 3, 30, CatchUp::All, DAY),
            (
                vec![
                    fire(10, FireKind::CatchUp, 0),
                    fire(20, FireKind::CatchUp, 0),
                    fire(30, FireKind::OnTime, 0)
                ],
                0
            )
        );
        // Only the newest 2 of 10 were kept by the caller; 7 missed slots are reported on the first fire.
        assert_eq!(
            run(&[90, 100], 10, 100, CatchUp::All, DAY),
            (
                vec![
                    fire(90, FireKind::CatchUp, 8),
                    fire(100, FireKind::OnTime, 0)
                ],
                0
            )
        );
    }

    #[test]
    fn the_window_bounds_catch_up() {
        let window = Duration::from_secs(150);
        assert_eq!(
            run(&[0, 100, 200], 3, 300, CatchUp::All, window),
            (vec![fire(200, FireKind::CatchUp, 2)], 0)
        );
        // Everything older than the window: nothing runs, the count is carried.
        assert_eq!(
            run(&[0, 100], 2, 1000, CatchUp::Latest, window),
            (vec![], 2)
        );
    }

    #[test]
    fn skip_runs_only_an_on_time_slot_and_carries_the_count() {
        assert_eq!(
            run(&[10, 20, 30], 3, 31, CatchUp::Skip, DAY),
            (vec![fire(30, FireKind::OnTime, 2)], 0)
        );
        assert_eq!(run(&[10, 20], 2, 1000, CatchUp::Skip, DAY), (vec![], 2));
    }

    #[test]
    fn a_carried_count_lands_on_the_next_fire() {
        let slots = [t(100)];
        let (fires, left) = plan(
            Due {
                slots: &slots,
                total: 1,
            },
            t(100),
            CatchUp::Skip,
            DAY,
            7,
        );
        assert_eq!((fires, left), (vec![fire(100, FireKind::OnTime, 7)], 0));
    }
}
