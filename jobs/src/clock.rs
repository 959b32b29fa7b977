//! Wall-clock time, injectable: the real clock for production, a manual one
//! for tests that must not wait.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::watch;

/// The longest single sleep on the system clock. Sleeping in bounded steps and
/// re-reading the wall clock keeps timers right across a suspended VM (where
/// the monotonic clock stops) and a stepped wall clock.
const MAX_SLEEP_STEP: Duration = Duration::from_secs(5);

#[async_trait]
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
    /// Returns once `now() >= deadline`.
    async fn sleep_until(&self, deadline: DateTime<Utc>);
}

/// Tokio's timer wheel has millisecond ticks and rounds a sleep up to the
/// next one, and epoll's timeout is in milliseconds: a tokio sleep ends 1 to
/// 2 ms late. The system clock therefore lets tokio sleep until this long
/// before the deadline and hands the rest to [`precise`], a thread that
/// sleeps with microsecond precision and wakes every waiter due at once.
const PRECISE_LEAD: Duration = Duration::from_millis(6);

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    async fn sleep_until(&self, deadline: DateTime<Utc>) {
        loop {
            let Ok(left) = (deadline - Utc::now()).to_std() else {
                return;
            };
            if left.is_zero() {
                return;
            }
            if left <= PRECISE_LEAD {
                precise::sleep(left).await;
            } else {
                tokio::time::sleep((left - PRECISE_LEAD).min(MAX_SLEEP_STEP)).await;
            }
        }
    }
}

/// The precision waker: one thread, a heap of deadlines, microsecond sleeps.
/// Only the last few milliseconds of a wait come here, so the heap is small
/// and the thread sleeps most of the time.
mod precise {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    use std::sync::{Condvar, Mutex, OnceLock};
    use std::time::{Duration, Instant};

    use tokio::sync::oneshot;

    struct Waiter(Instant, oneshot::Sender<()>);

    impl PartialEq for Waiter {
        fn eq(&self, other: &Self) -> bool {
            self.0 == other.0
        }
    }
    impl Eq for Waiter {}
    impl PartialOrd for Waiter {
        fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(other))
        }
    }
    impl Ord for Waiter {
        fn cmp(&self, other: &Self) -> std::cmp::Ordering {
            self.0.cmp(&other.0)
        }
    }

    struct Waker {
        heap: Mutex<BinaryHeap<Reverse<Waiter>>>,
        changed: Condvar,
    }

    fn waker() -> &'static Waker {
        static WAKER: OnceLock<&'static Waker> = OnceLock::new();
        WAKER.get_or_init(|| {
            let w: &'static Waker = Box::leak(Box::new(Waker {
                heap: Mutex::new(BinaryHeap::new()),
                changed: Condvar::new(),
            }));
            std::thread::Builder::new()
                .name("ops-worker-timer".into())
                .spawn(move || run(w))
                .expect("cannot start the timer thread");
            w
        })
    }

    fn run(w: &Waker) {
        // Linux adds a default 50 µs of "timer slack" to every sleep of a
        // normal thread; this thread exists to be precise.
        // SAFETY: prctl(PR_SET_TIMERSLACK) takes a plain integer and affects
        // only the calling thread.
        #[cfg(target_os = "linux")]
        unsafe {
            libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
        }
        let mut heap = w.heap.lock().unwrap();
        loop {
            let now = Instant::now();
            while heap.peek().is_some_and(|Reverse(first)| first.0 <= now) {
                let Reverse(Waiter(_, tx)) = heap.pop().expect("peeked");
                let _ = tx.send(());
            }
            heap = match heap.peek() {
                None => w.changed.wait(heap).unwrap(),
                Some(Reverse(first)) => {
                    let left = first.0 - now;
                    // A condvar wait is as precise as a sleep and also ends
                    // when an earlier deadline arrives.
                    w.changed.wait_timeout(heap, left).unwrap().0
                }
            };
        }
    }

    /// Returns `left` from now, within tens of microseconds.
    pub async fn sleep(left: Duration) {
        let (tx, rx) = oneshot::channel();
        let w = waker();
        w.heap
            .lock()
            .unwrap()
            .push(Reverse(Waiter(Instant::now() + left, tx)));
        w.changed.notify_one();
        let _ = rx.await;
    }
}

/// A clock that moves only when a test says so. Sleepers wake as soon as
/// [`ManualClock::set`] or [`ManualClock::advance`] passes their deadline.
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
    tick: watch::Sender<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock {
            now: Mutex::new(start),
            tick: watch::Sender::new(start),
        }
    }

    pub fn set(&self, t: DateTime<Utc>) {
        *self.now.lock().unwrap() = t;
        self.tick.send_replace(t);
    }

    pub fn advance(&self, by: chrono::Duration) {
        let t = *self.now.lock().unwrap() + by;
        self.set(t);
    }
}

#[async_trait]
impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap()
    }

    async fn sleep_until(&self, deadline: DateTime<Utc>) {
        let mut rx = self.tick.subscribe();
        // wait_for checks the current value first, so a deadline already
        // passed returns at once.
        let _ = rx.wait_for(|now| *now >= deadline).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread")]
    async fn system_clock_never_wakes_before_the_deadline() {
        // Many waiters on one instant, as when many jobs share a slot; some
        // go through the tokio timer first, some straight to the precise one.
        for lead_ms in [2i64, 20] {
            let deadline = Utc::now() + chrono::Duration::milliseconds(lead_ms);
            let waiters: Vec<_> = (0..50)
                .map(|_| {
                    tokio::spawn(async move {
                        SystemClock.sleep_until(deadline).await;
                        Utc::now()
                    })
                })
                .collect();
            for w in waiters {
                let woke = tokio::time::timeout(Duration::from_secs(5), w)
                    .await
                    .unwrap()
                    .unwrap();
                assert!(woke >= deadline, "woke {} early", deadline - woke);
            }
        }
        // A deadline in the past returns at once.
        tokio::time::timeout(
            Duration::from_secs(1),
            SystemClock.sleep_until(Utc::now() - chrono::Duration::seconds(1)),
        )
        .await
        .unwrap();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn manual_clock_wakes_sleepers_when_advanced_past_deadline() {
        let start = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let clock = Arc::new(ManualClock::new(start));
        let c = clock.clone();
        let sleeper =
            tokio::spawn(async move { c.sleep_until(start + chrono::Duration::seconds(10)).await });
        clock.advance(chrono::Duration::seconds(5));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(chrono::Duration::seconds(5));
        tokio::time::timeout(Duration::from_secs(5), sleeper)
            .await
            .unwrap()
            .unwrap();
    }
}
