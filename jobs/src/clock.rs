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

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    async fn sleep_until(&self, deadline: DateTime<Utc>) {
        loop {
            let left = deadline - Utc::now();
            let Ok(left) = left.to_std() else { return };
            if left.is_zero() {
                return;
            }
            tokio::time::sleep(left.min(MAX_SLEEP_STEP)).await;
        }
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
