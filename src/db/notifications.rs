//! The `notifications` outbox: enqueueing a notification (once per
//! idempotency key), the sender's queue of due rows, claiming a row for one
//! delivery attempt, and recording how the attempt went.
//!
//! A claim is a lease, taken with one conditional `UPDATE`: it pushes
//! `next_attempt_at` past the attempt (so no other sender sees the row as
//! due) and bumps `attempts`, which doubles as the row's version. Every later
//! write names the attempt it belongs to (`WHERE attempts = <claimed>`), so
//! two senders can never both claim one attempt, and a sender whose lease ran
//! out (it hung, or died mid-send) cannot overwrite what the next claimer
//! recorded. A sender that dies holding a claim leaves the row to be retried
//! when the lease ends.
//!
//! This file decides nothing about when to retry or what to send; the sender
//! (`src/notify`) does. Timestamps are stored as UTC truncated to
//! microseconds, as in `runs/`.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::backend::Backend as DieselBackend;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::dsl::{Eq as EqTo, Filter};
use diesel::expression::AsExpression;
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Text;
use diesel::{ExpressionMethods, Insertable, QueryDsl, QueryResult, Queryable, Selectable};
use diesel::{SelectableHelper, SqliteConnection};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::AsyncPgConnection;
use ops_worker_jobs::store::{NotificationEvent, StoreError};
use serde::Serialize;

use super::schema::notifications;
use super::text_enum::text_enum;
use super::{micros, with_conn, Db, DbError};

/// What a notification announces, as the `event` column stores it: the
/// jobs crate's [`NotificationEvent`] in a local type, so that Diesel's
/// traits can be implemented for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, AsExpression, FromSqlRow)]
#[diesel(sql_type = Text)]
struct EventColumn(NotificationEvent);

impl<DB: DieselBackend> ToSql<Text, DB> for EventColumn
where
    str: ToSql<Text, DB>,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
        self.0.as_str().to_sql(out)
    }
}

impl<DB: DieselBackend> FromSql<Text, DB> for EventColumn
where
    String: FromSql<Text, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        let text = String::from_sql(bytes)?;
        Ok(EventColumn(text.parse().map_err(|e: StoreError| e.0)?))
    }
}

text_enum! {
    /// Where a notification stands. Only `Pending` rows are ever sent.
    NotificationStatus, "notification status" {
        /// Waiting for its first or next attempt (or being attempted now).
        Pending = "pending",
        /// A target answered 2xx.
        Delivered = "delivered",
        /// Given up: the retry horizon passed, or it cannot be sent at all.
        Failed = "failed",
    }
}

/// A notification to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    /// Unique per event and target, e.g. `alert:42:opened:ops-webhook`; a
    /// second enqueue with the same key does nothing.
    pub idempotency_key: String,
    /// The name of a `[notify.NAME]` target.
    pub target: String,
    pub alert_id: Option<i64>,
    pub event: NotificationEvent,
    /// The event as a JSON object (see docs/notifications.md for its fields).
    pub payload: serde_json::Value,
    /// Also the first `next_attempt_at`: due at once.
    pub created_at: DateTime<Utc>,
}

/// One row of `notifications`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notification {
    pub id: i64,
    pub idempotency_key: String,
    pub target: String,
    pub alert_id: Option<i64>,
    pub event: NotificationEvent,
    /// JSON text, as enqueued.
    pub payload: String,
    pub status: NotificationStatus,
    /// Attempts claimed so far (including one in progress).
    pub attempts: i32,
    /// Pending: when it is next due (or when the current attempt's lease
    /// ends). Otherwise: as it was at the last attempt.
    pub next_attempt_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// Why the last attempt failed (never holds the target's URL).
    pub last_error: Option<String>,
}

/// The right to make one delivery attempt of a row, from
/// [`Notifications::claim`] until its lease ends. The `mark_*` calls take it
/// and do nothing once another sender has claimed the row again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claimed {
    pub id: i64,
    /// The row's `attempts` after the claim: 1 for the first attempt.
    pub attempt: i32,
}

#[derive(Insertable)]
#[diesel(table_name = notifications)]
struct NewRow<'a> {
    idempotency_key: &'a str,
    target: &'a str,
    alert_id: Option<i64>,
    event: EventColumn,
    payload: String,
    status: NotificationStatus,
    attempts: i32,
    next_attempt_at: NaiveDateTime,
    created_at: NaiveDateTime,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = notifications)]
struct Row {
    id: i64,
    idempotency_key: String,
    target: String,
    alert_id: Option<i64>,
    event: EventColumn,
    payload: String,
    status: NotificationStatus,
    attempts: i32,
    next_attempt_at: NaiveDateTime,
    created_at: NaiveDateTime,
    delivered_at: Option<NaiveDateTime>,
    last_error: Option<String>,
}

impl From<Row> for Notification {
    fn from(r: Row) -> Self {
        Notification {
            id: r.id,
            idempotency_key: r.idempotency_key,
            target: r.target,
            alert_id: r.alert_id,
            event: r.event.0,
            payload: r.payload,
            status: r.status,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at.and_utc(),
            created_at: r.created_at.and_utc(),
            delivered_at: r.delivered_at.map(|t| t.and_utc()),
            last_error: r.last_error,
        }
    }
}

/// Enqueueing on a connection the caller already holds, so that code which
/// changes state (opening or resolving an alert) can write its notification
/// in the same transaction:
///
/// ```ignore
/// with_conn!(db, |conn| {
///     conn.transaction(async |conn| {
///         /* ... change the alert ... */
///         conn.enqueue_notification(&new).await?;
///         Ok(())
///     })
///     .await?
/// })
/// ```
///
/// Implemented for both backends' connections (the types `with_conn!` binds):
/// a function generic over the connection cannot express `ON CONFLICT`.
/// Other table families in `src/db` use it as `super::notifications::Outbox`.
pub(crate) trait Outbox {
    /// `INSERT .. ON CONFLICT (idempotency_key) DO NOTHING`: true when this
    /// call added the row, false when the key was enqueued before.
    async fn enqueue_notification(&mut self, n: &NewNotification) -> QueryResult<bool>;
}

macro_rules! outbox_for {
    ($($conn:ty),+) => {$(
        impl Outbox for $conn {
            async fn enqueue_notification(&mut self, n: &NewNotification) -> QueryResult<bool> {
                use diesel_async::RunQueryDsl;
                let created_at = micros(n.created_at);
                let inserted = diesel::insert_into(notifications::table)
                    .values(NewRow {
                        idempotency_key: &n.idempotency_key,
                        target: &n.target,
                        alert_id: n.alert_id,
                        event: EventColumn(n.event),
                        payload: n.payload.to_string(),
                        status: NotificationStatus::Pending,
                        attempts: 0,
                        next_attempt_at: created_at,
                        created_at,
                    })
                    .on_conflict(notifications::idempotency_key)
                    .do_nothing()
                    .execute(self)
                    .await?;
                Ok(inserted == 1)
            }
        }
    )+};
}
outbox_for!(AsyncPgConnection, SyncConnectionWrapper<SqliteConnection>);

/// The `notifications` table, from [`Db::notifications`].
#[derive(Clone, Copy)]
pub struct Notifications<'a> {
    db: &'a Db,
}

impl Db {
    /// The notification outbox.
    pub fn notifications(&self) -> Notifications<'_> {
        Notifications { db: self }
    }
}

impl fmt::Debug for Notifications<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifications")
            .field("db", self.db)
            .finish()
    }
}

impl Notifications<'_> {
    /// Adds a pending notification, due at `created_at`, unless its
    /// idempotency key is already there. True when it was added.
    pub async fn enqueue(&self, n: &NewNotification) -> Result<bool, DbError> {
        Ok(with_conn!(self.db, |conn| conn
            .enqueue_notification(n)
            .await?))
    }

    /// Pending rows due at `now` (`next_attempt_at <= now`), the longest
    /// waiting first (then by id), at most `limit` (negative counts as 0).
    /// A row being attempted is not due: its claim moved `next_attempt_at`.
    pub async fn due(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<Notification>, DbError> {
        use diesel_async::RunQueryDsl;
        let now = micros(now);
        let rows: Vec<Row> = with_conn!(self.db, |conn| {
            notifications::table
                .filter(notifications::status.eq(NotificationStatus::Pending))
                .filter(notifications::next_attempt_at.le(now))
                .order((notifications::next_attempt_at, notifications::id))
                .limit(limit.max(0))
                .select(Row::as_select())
                .load(conn)
                .await?
        });
        Ok(rows.into_iter().map(Notification::from).collect())
    }

    /// Claims the next attempt of `row` (as read by [`Notifications::due`])
    /// for `lease`: one `UPDATE` that bumps `attempts` and moves
    /// `next_attempt_at` to `now + lease`, only if the row is still pending,
    /// due and unclaimed since it was read. `None` when another sender got
    /// there first (or the row changed). A sender that dies holding the claim
    /// leaves the row due again when the lease ends.
    pub async fn claim(
        &self,
        row: &Notification,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Option<Claimed>, DbError> {
        use diesel_async::RunQueryDsl;
        use notifications::dsl as n;
        let lease = chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let until = micros(
            now.checked_add_signed(lease)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        );
        let now = micros(now);
        let updated = with_conn!(self.db, |conn| {
            diesel::update(
                n::notifications
                    .filter(n::id.eq(row.id))
                    .filter(n::status.eq(NotificationStatus::Pending))
                    .filter(n::attempts.eq(row.attempts))
                    .filter(n::next_attempt_at.le(now)),
            )
            .set((
                n::attempts.eq(n::attempts + 1),
                n::next_attempt_at.eq(until),
            ))
            .execute(conn)
            .await?
        });
        Ok((updated == 1).then_some(Claimed {
            id: row.id,
            attempt: row.attempts + 1,
        }))
    }

    /// The claimed attempt got a 2xx: `delivered`, at `at`. False when the
    /// claim was lost (another sender claimed the row after the lease).
    pub async fn mark_delivered(&self, c: &Claimed, at: DateTime<Utc>) -> Result<bool, DbError> {
        use diesel_async::RunQueryDsl;
        use notifications::dsl as n;
        let at = micros(at);
        let updated = with_conn!(self.db, |conn| {
            diesel::update(claimed(c))
                .set((
                    n::status.eq(NotificationStatus::Delivered),
                    n::delivered_at.eq(Some(at)),
                    n::last_error.eq(None::<String>),
                ))
                .execute(conn)
                .await?
        });
        Ok(updated == 1)
    }

    /// The claimed attempt failed; try again at `next_at`. Keeps `error` as
    /// `last_error`. False when the claim was lost.
    pub async fn mark_retry(
        &self,
        c: &Claimed,
        next_at: DateTime<Utc>,
        error: &str,
    ) -> Result<bool, DbError> {
        use diesel_async::RunQueryDsl;
        use notifications::dsl as n;
        let next_at = micros(next_at);
        let updated = with_conn!(self.db, |conn| {
            diesel::update(claimed(c))
                .set((n::next_attempt_at.eq(next_at), n::last_error.eq(error)))
                .execute(conn)
                .await?
        });
        Ok(updated == 1)
    }

    /// The claimed attempt failed and there will be no other: `failed`,
    /// with `error` as `last_error`. False when the claim was lost.
    pub async fn mark_failed(&self, c: &Claimed, error: &str) -> Result<bool, DbError> {
        use diesel_async::RunQueryDsl;
        use notifications::dsl as n;
        let updated = with_conn!(self.db, |conn| {
            diesel::update(claimed(c))
                .set((
                    n::status.eq(NotificationStatus::Failed),
                    n::last_error.eq(error),
                ))
                .execute(conn)
                .await?
        });
        Ok(updated == 1)
    }

    /// Notifications newest first (by id), at most `limit` (negative counts
    /// as 0), for tests and tools.
    pub async fn list(&self, limit: i64) -> Result<Vec<Notification>, DbError> {
        use diesel_async::RunQueryDsl;
        let rows: Vec<Row> = with_conn!(self.db, |conn| {
            notifications::table
                .order(notifications::id.desc())
                .limit(limit.max(0))
                .select(Row::as_select())
                .load(conn)
                .await?
        });
        Ok(rows.into_iter().map(Notification::from).collect())
    }

    /// Whether an earlier row told `row`'s target about `row`'s alert with
    /// a trigger (`opened` or `escalated`) that is delivered or still
    /// pending. A PagerDuty target is triggered once per alert.
    pub async fn triggered_before(&self, row: &Notification) -> Result<bool, DbError> {
        use diesel_async::RunQueryDsl;
        let Some(alert_id) = row.alert_id else {
            return Ok(false);
        };
        let n: i64 = with_conn!(self.db, |conn| {
            notifications::table
                .filter(notifications::alert_id.eq(alert_id))
                .filter(notifications::target.eq(&row.target))
                .filter(notifications::id.lt(row.id))
                .filter(notifications::event.eq_any([
                    EventColumn(NotificationEvent::Opened),
                    EventColumn(NotificationEvent::Escalated),
                ]))
                .filter(notifications::status.ne(NotificationStatus::Failed))
                .count()
                .get_result(conn)
                .await?
        });
        Ok(n > 0)
    }
}

type ById = Filter<notifications::table, EqTo<notifications::id, i64>>;

type StillClaimed = Filter<
    Filter<ById, EqTo<notifications::status, NotificationStatus>>,
    EqTo<notifications::attempts, i32>,
>;

/// The row of a claim, if the claim still holds: pending, and not claimed
/// again since.
fn claimed(c: &Claimed) -> StillClaimed {
    notifications::table
        .filter(notifications::id.eq(c.id))
        .filter(notifications::status.eq(NotificationStatus::Pending))
        .filter(notifications::attempts.eq(c.attempt))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::DatabaseUrl;
    use diesel_async::AsyncConnection;

    fn new_notification() -> NewNotification {
        NewNotification {
            idempotency_key: "alert:1:opened:hook".into(),
            target: "hook".into(),
            alert_id: Some(1),
            event: NotificationEvent::Opened,
            payload: serde_json::json!({ "event": "opened", "text": "api is down" }),
            created_at: Utc::now(),
        }
    }

    /// What the alerts code does: the notification goes in (or not) with
    /// the state change in the caller's transaction. SQLite here (unit tests
    /// have no PostgreSQL fixture); the body is compiled for both backends.
    #[tokio::test(flavor = "multi_thread")]
    async fn enqueue_joins_the_callers_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&DatabaseUrl::Sqlite(dir.path().join("t.db")), 2)
            .await
            .unwrap();
        db.migrate().await.unwrap();
        let n = new_notification();

        let rolled_back: Result<(), DbError> = async {
            with_conn!(&db, |conn| {
                let r = conn
                    .transaction::<(), diesel::result::Error, _>(async |conn| {
                        assert!(conn.enqueue_notification(&n).await?);
                        // The state change fails: everything goes.
                        Err(diesel::result::Error::RollbackTransaction)
                    })
                    .await;
                assert!(r.is_err());
            });
            Ok(())
        }
        .await;
        rolled_back.unwrap();
        assert!(db.notifications().list(10).await.unwrap().is_empty());

        let committed: Result<(bool, bool), DbError> = async {
            Ok(with_conn!(&db, |conn| {
                conn.transaction::<_, diesel::result::Error, _>(async |conn| {
                    let first = conn.enqueue_notification(&n).await?;
                    // A repeat is a no-op, not an error aborting the transaction.
                    let again = conn.enqueue_notification(&n).await?;
                    Ok((first, again))
                })
                .await?
            }))
        }
        .await;
        assert_eq!(committed.unwrap(), (true, false));
        let rows = db.notifications().list(10).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].status, NotificationStatus::Pending);
    }

    #[test]
    fn text_forms_round_trip() {
        use NotificationEvent::*;
        for e in [Opened, Acknowledged, Resolved, Reminder, Escalated, Report] {
            assert_eq!(e.as_str().parse::<NotificationEvent>().unwrap(), e);
            assert_eq!(serde_json::to_value(e).unwrap(), e.as_str());
        }
        for s in NotificationStatus::ALL {
            assert_eq!(s.as_str().parse::<NotificationStatus>().unwrap(), *s);
        }
        assert_eq!(
            "sent"
                .parse::<NotificationStatus>()
                .unwrap_err()
                .to_string(),
            "unknown notification status \"sent\""
        );
    }
}
