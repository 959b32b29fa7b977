//! The notification sender: delivers the `notifications` outbox to the
//! `[notify.NAME]` targets of schedules.toml.
//!
//! This file owns delivery policy: which rows a pass takes, claiming each
//! before its attempt, retries with exponential backoff up to the retry
//! horizon, and the loop the daemon runs. It does not enqueue (the code that
//! changes state does, in the same transaction) and does not know SQL
//! (`db::Notifications`) or how a channel sends: each is a module behind
//! [`Sender::attempt`]'s one `match` on the target's type (`webhook.rs`,
//! `email.rs`, `pagerduty.rs`), rendering the row's [`Message`].
//!
//! Delivery is at least once. A row is claimed (a lease in the database)
//! before its POST and marked delivered after a 2xx, so a restart or a
//! second worker never sends a row that is delivered or being sent; a
//! process that dies between a receiver's 2xx and the mark leaves the row to
//! be sent again when the lease ends, with the same `Idempotency-Key`.

pub mod email;
pub mod message;
pub mod pagerduty;
pub mod template;
pub mod webhook;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use ops_worker_jobs::{reqwest, Clock};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use message::{Message, RenderError};

use crate::ack_link::AckLinks;
use crate::config::{Channel, NotifyTarget};
use crate::db::{Claimed, Db, DbError, Notification};

/// How often the loop looks for due rows when nobody wakes it.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// The wait after a first failed attempt; it doubles with each further one.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(5);
/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10 * 60);
/// How long after it was enqueued a notification is retried. The last
/// attempt is made at the horizon; if it fails too, the row is `failed`.
pub const RETRY_HORIZON: Duration = Duration::from_secs(24 * 3600);
/// A claim lasts the target's timeout plus this: long enough for the attempt
/// and recording it, short enough that a row whose sender died is retried
/// soon after.
pub const CLAIM_LEASE: Duration = Duration::from_secs(60);
/// At shutdown, the final pass starts no new attempt after this long
/// (attempts under way finish, each within its target's timeout).
pub const FINAL_PASS: Duration = Duration::from_secs(5);
/// Rows read per pass.
const BATCH: i64 = 100;
/// Targets delivered to at once (rows of one target go one at a time).
const CONCURRENT_TARGETS: usize = 8;

/// The wait before the attempt after attempt number `attempt` (1-based)
/// failed: 5 s, 10 s, 20 s, ... at most 10 min.
pub fn backoff(attempt: i32) -> Duration {
    let doublings = u32::try_from(attempt.saturating_sub(1))
        .unwrap_or(0)
        .min(20);
    FIRST_BACKOFF
        .saturating_mul(1 << doublings)
        .min(MAX_BACKOFF)
}

/// When to try a row created at `created_at` again after attempt `attempt`
/// failed at `now`: after the backoff, but no later than the retry horizon;
/// `None` once the horizon has passed (give up).
pub fn next_attempt(
    created_at: DateTime<Utc>,
    attempt: i32,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let horizon = created_at + chrono_duration(RETRY_HORIZON);
    if now >= horizon {
        return None;
    }
    Some((now + chrono_duration(backoff(attempt))).min(horizon))
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Due rows read.
    pub due: usize,
    pub delivered: usize,
    /// Failed attempts that will be retried.
    pub retrying: usize,
    /// Rows given up on.
    pub failed: usize,
    /// Rows another sender claimed first, or whose claim ran out before the
    /// outcome was recorded.
    pub lost: usize,
}

impl Pass {
    fn add(&mut self, other: Pass) {
        self.due += other.due;
        self.delivered += other.delivered;
        self.retrying += other.retrying;
        self.failed += other.failed;
        self.lost += other.lost;
    }
}

/// Wakes the sender's loop for an immediate pass, e.g. right after a
/// notification was enqueued. Cheap to clone.
#[derive(Clone)]
pub struct Waker(Arc<Notify>);

impl Waker {
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// Delivers due notifications to their targets. One per process; any
/// number of processes may share a database.
pub struct Sender {
    db: Db,
    /// Replaced by a reload; a pass works with the targets it started with.
    targets: std::sync::RwLock<Arc<HashMap<String, NotifyTarget>>>,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    /// Puts a signed acknowledge link in the messages that ask someone to
    /// act, when `public_url` and `OPS_WORKER_SECRET` are set.
    ack_links: Option<Arc<AckLinks>>,
}

/// How one attempt went wrong, in a short line without secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub reason: String,
    /// Retrying cannot help (the notification cannot even be rendered).
    pub permanent: bool,
}

impl Failure {
    fn permanent(reason: impl Into<String>) -> Failure {
        Failure {
            reason: reason.into(),
            permanent: true,
        }
    }
}

/// How an attempt ended, before it is recorded.
enum Attempt {
    Delivered,
    Failed(Failure),
}

fn by_name(targets: &[NotifyTarget]) -> HashMap<String, NotifyTarget> {
    targets
        .iter()
        .map(|t| (t.name.clone(), t.clone()))
        .collect()
}

impl Sender {
    /// A sender for `targets` (the `[notify.NAME]` tables), sending with
    /// `http` (normally [`webhook::client`], which follows no redirects)
    /// and reading time from `clock`.
    pub fn new(
        db: Db,
        targets: &[NotifyTarget],
        http: reqwest::Client,
        clock: Arc<dyn Clock>,
    ) -> Sender {
        Sender {
            db,
            targets: std::sync::RwLock::new(Arc::new(by_name(targets))),
            http,
            clock,
            wake: Arc::new(Notify::new()),
            ack_links: None,
        }
    }

    /// Messages about open alerts carry acknowledge links made by `links`.
    pub fn with_ack_links(mut self, links: Option<Arc<AckLinks>>) -> Sender {
        self.ack_links = links;
        self
    }

    /// The `[notify.NAME]` tables of a reloaded schedule file.
    pub fn set_targets(&self, targets: &[NotifyTarget]) {
        *self.targets.write().unwrap() = Arc::new(by_name(targets));
    }

    pub fn waker(&self) -> Waker {
        Waker(self.wake.clone())
    }

    /// One pass over what is due now: what the loop does every second, and
    /// what tests call to step it.
    pub async fn deliver_due(&self) -> Result<Pass, DbError> {
        self.pass(&|| true).await
    }

    /// Runs passes every [`POLL_INTERVAL`] (at once when woken, and back to
    /// back while a full batch went through) until `stop` fires; then a
    /// final pass for what the last runs enqueued, starting no attempt after
    /// [`FINAL_PASS`]. An attempt under way when `stop` fires is finished
    /// and recorded.
    pub async fn run(&self, stop: CancellationToken) {
        let mut outage = false;
        while !stop.is_cancelled() {
            let pass = self.pass(&|| !stop.is_cancelled()).await;
            let again = self.note(pass, &mut outage);
            if again && !stop.is_cancelled() {
                continue;
            }
            let next = self.clock.now() + chrono_duration(POLL_INTERVAL);
            tokio::select! {
                _ = self.clock.sleep_until(next) => {}
                _ = self.wake.notified() => {}
                _ = stop.cancelled() => {}
            }
        }
        let deadline = tokio::time::Instant::now() + FINAL_PASS;
        let last = self.pass(&|| tokio::time::Instant::now() < deadline).await;
        self.note(last, &mut outage);
        match self.db.notifications().due(self.clock.now(), 1).await {
            Ok(left) if !left.is_empty() => tracing::info!(
                "notification sender stopped with notifications due; the next start delivers them"
            ),
            _ => tracing::debug!("notification sender stopped"),
        }
    }

    /// Logs a pass's database trouble once per outage. True when the pass
    /// went through a full batch without a retryable failure, so more may be
    /// due right away.
    fn note(&self, pass: Result<Pass, DbError>, outage: &mut bool) -> bool {
        match pass {
            Ok(p) => {
                if std::mem::take(outage) {
                    tracing::info!("the database is back: delivering notifications again");
                }
                if p.due > 0 {
                    tracing::debug!(
                        due = p.due,
                        delivered = p.delivered,
                        retrying = p.retrying,
                        failed = p.failed,
                        lost = p.lost,
                        "notification pass"
                    );
                }
                p.due as i64 >= BATCH && p.retrying == 0
            }
            Err(e) => {
                if !std::mem::replace(outage, true) {
                    tracing::warn!(
                        error = %crate::error_chain(&e),
                        "cannot reach the notification outbox; notifications wait until the database is back"
                    );
                }
                false
            }
        }
    }

    /// Reads the due rows and delivers them: targets concurrently, each
    /// target's rows one at a time in the order they were enqueued.
    /// `keep_claiming` is asked before each claim.
    async fn pass(&self, keep_claiming: &(dyn Fn() -> bool + Sync)) -> Result<Pass, DbError> {
        let due = self.db.notifications().due(self.clock.now(), BATCH).await?;
        let mut total = Pass {
            due: due.len(),
            ..Pass::default()
        };
        let mut by_target: Vec<(String, Vec<Notification>)> = Vec::new();
        for row in due {
            match by_target.iter_mut().find(|(t, _)| *t == row.target) {
                Some((_, rows)) => rows.push(row),
                None => by_target.push((row.target.clone(), vec![row])),
            }
        }
        for (_, rows) in &mut by_target {
            rows.sort_by_key(|r| r.id);
        }
        let deliveries: Vec<_> = by_target
            .into_iter()
            .map(|(target, rows)| self.deliver_to(target, rows, keep_claiming))
            .collect();
        let results: Vec<Result<Pass, DbError>> = futures::stream::iter(deliveries)
            .buffer_unordered(CONCURRENT_TARGETS)
            .collect()
            .await;
        let mut first_error = None;
        for r in results {
            match r {
                Ok(p) => total.add(p),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(total),
        }
    }

    /// Delivers one target's due rows in order. After a failure that may be
    /// the target's (it is down, slow or refusing), the rest wait for a
    /// later pass, so a target that is down gets about one request a second
    /// however many rows wait for it.
    async fn deliver_to(
        &self,
        target_name: String,
        rows: Vec<Notification>,
        keep_claiming: &(dyn Fn() -> bool + Sync),
    ) -> Result<Pass, DbError> {
        let targets = self.targets.read().unwrap().clone();
        let target = targets.get(&target_name);
        let lease = CLAIM_LEASE + target.map_or(Duration::ZERO, |t| t.timeout);
        let outbox = self.db.notifications();
        let mut pass = Pass::default();
        for row in rows {
            if !keep_claiming() {
                break;
            }
            let Some(claim) = outbox.claim(&row, self.clock.now(), lease).await? else {
                pass.lost += 1;
                continue;
            };
            let attempt = match target {
                Some(target) => self.attempt(target, &row).await,
                None => Attempt::Failed(Failure::permanent(format!(
                    "no target {target_name:?} in the schedule file (add [notify.{target_name}])"
                ))),
            };
            let retryable = self.record(&row, &claim, attempt, &mut pass).await?;
            if retryable {
                break;
            }
        }
        Ok(pass)
    }

    /// The message every channel renders for `row`: its payload, with the
    /// acknowledge link for the row's target when links are on (the same
    /// link on every attempt: it expires a TTL after the row was enqueued).
    fn message(&self, row: &Notification) -> Result<Message, RenderError> {
        let mut message = Message::from_row(row)?;
        if let (Some(links), Some(alert_id)) = (&self.ack_links, message.alert_id) {
            if message.asks_to_acknowledge() {
                message.set_ack_url(links.url(alert_id, &row.target, row.created_at));
            }
        }
        Ok(message)
    }

    /// One delivery attempt of `row` to `target`: the one place that
    /// chooses a channel.
    async fn attempt(&self, target: &NotifyTarget, row: &Notification) -> Attempt {
        let message = match self.message(row) {
            Ok(m) => m,
            Err(e) => return Attempt::Failed(Failure::permanent(e.to_string())),
        };
        let sent = match &target.channel {
            Channel::Webhook(hook) => {
                webhook::send(&self.http, hook, target.timeout, &message).await
            }
            Channel::Email(mail) => email::send(mail, target.timeout, &message).await,
            Channel::PagerDuty(pd) => {
                if pagerduty::retriggers(&message) {
                    match self.db.notifications().triggered_before(row).await {
                        Ok(true) => {
                            tracing::info!(
                                notify_target = %row.target,
                                event = %row.event,
                                alert_id = row.alert_id,
                                "not sent: PagerDuty already has a trigger for this alert and escalates it itself"
                            );
                            return Attempt::Delivered;
                        }
                        Ok(false) => {}
                        Err(e) => {
                            return Attempt::Failed(Failure {
                                reason: format!(
                                    "cannot read the outbox: {}",
                                    crate::error_chain(&e)
                                ),
                                permanent: false,
                            })
                        }
                    }
                }
                pagerduty::send(&self.http, pd, target.timeout, &message).await
            }
        };
        match sent {
            Ok(()) => Attempt::Delivered,
            Err(f) => Attempt::Failed(f),
        }
    }

    /// Records the attempt and logs a failure (one line). True when it
    /// failed in a way that will be retried.
    async fn record(
        &self,
        row: &Notification,
        claim: &Claimed,
        attempt: Attempt,
        pass: &mut Pass,
    ) -> Result<bool, DbError> {
        let outbox = self.db.notifications();
        let now = self.clock.now();
        let (recorded, retryable) = match attempt {
            Attempt::Delivered => {
                let recorded = outbox.mark_delivered(claim, now).await?;
                if recorded {
                    pass.delivered += 1;
                    tracing::info!(
                        notify_target = %row.target,
                        event = %row.event,
                        alert_id = row.alert_id,
                        id = row.id,
                        attempt = claim.attempt,
                        "notification delivered"
                    );
                }
                (recorded, false)
            }
            Attempt::Failed(f) => {
                let next = if f.permanent {
                    None
                } else {
                    next_attempt(row.created_at, claim.attempt, now)
                };
                match next {
                    Some(next_at) => {
                        let recorded = outbox.mark_retry(claim, next_at, &f.reason).await?;
                        if recorded {
                            pass.retrying += 1;
                            tracing::warn!(
                                notify_target = %row.target,
                                event = %row.event,
                                id = row.id,
                                attempt = claim.attempt,
                                retry_in = %humantime::format_duration(
                                    (next_at - now).to_std().unwrap_or_default()
                                ),
                                reason = %f.reason,
                                "notification not delivered; will retry"
                            );
                        }
                        (recorded, true)
                    }
                    None => {
                        let error = if f.permanent {
                            f.reason.clone()
                        } else {
                            format!(
                                "gave up after {} attempt{} ({}h retry horizon): {}",
                                claim.attempt,
                                if claim.attempt == 1 { "" } else { "s" },
                                RETRY_HORIZON.as_secs() / 3600,
                                f.reason
                            )
                        };
                        let recorded = outbox.mark_failed(claim, &error).await?;
                        if recorded {
                            pass.failed += 1;
                            tracing::error!(
                                notify_target = %row.target,
                                event = %row.event,
                                alert_id = row.alert_id,
                                id = row.id,
                                attempt = claim.attempt,
                                reason = %error,
                                "notification failed for good"
                            );
                        }
                        (recorded, !f.permanent)
                    }
                }
            }
        };
        if !recorded {
            pass.lost += 1;
            tracing::warn!(
                notify_target = %row.target,
                id = row.id,
                attempt = claim.attempt,
                "the claim on a notification ran out before its attempt was recorded; another sender has it"
            );
        }
        Ok(retryable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn backoff_doubles_from_5s_to_at_most_10_minutes() {
        let secs: Vec<u64> = (1..=10).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(secs, [5, 10, 20, 40, 80, 160, 320, 600, 600, 600]);
        assert_eq!(backoff(i32::MAX), MAX_BACKOFF);
        assert_eq!(backoff(0), FIRST_BACKOFF);
    }

    #[test]
    fn the_last_attempt_is_at_the_horizon() {
        let created = t("2026-05-01T00:00:00Z");
        let horizon = t("2026-05-02T00:00:00Z");
        assert_eq!(
            next_attempt(created, 1, created),
            Some(t("2026-05-01T00:00:05Z"))
        );
        assert_eq!(
            next_attempt(created, 30, t("2026-05-01T23:55:00Z")),
            Some(horizon),
            "clamped to the horizon"
        );
        assert_eq!(next_attempt(created, 31, horizon), None);
        assert_eq!(next_attempt(created, 1, t("2026-05-03T00:00:00Z")), None);
    }
}
