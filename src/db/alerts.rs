//! `alerts` and the enqueuing side of the `notifications` outbox: opening,
//! acknowledging, resolving, reminding and escalating are each one transaction that changes the alert
//! and writes its notification rows, so a crash can neither lose nor repeat
//! one. Implements the jobs crate's [`AlertStore`], plus what the CLI needs
//! (`alerts list`, `ack`, `resolve`).

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::{
    BoolExpressionMethods, ExpressionMethods, Insertable, OptionalExtension, QueryDsl, Queryable,
    Selectable, SelectableHelper,
};
use diesel_async::AsyncConnection;
use ops_worker_jobs::store::{
    Alert, AlertStatus, AlertStore, NewAlert, NotificationEvent, Page, Silence, StoreError,
};

use super::notifications::Outbox;
use super::schema::{alerts, notifications};
use super::{micros, store_error, with_conn, Db, DbError, NewNotification};

/// A notification about an alert and how far its delivery got.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AlertDelivery {
    pub event: String,
    pub target: String,
    /// pending, delivered, failed (the outbox's states).
    pub status: String,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = alerts)]
struct AlertRow {
    id: i64,
    fingerprint: String,
    source: String,
    subject: String,
    severity: String,
    status: String,
    message: String,
    opened_at: NaiveDateTime,
    acknowledged_at: Option<NaiveDateTime>,
    acknowledged_by: Option<String>,
    resolved_at: Option<NaiveDateTime>,
    resolution_note: Option<String>,
    escalation_level: i32,
    last_escalated_at: Option<NaiveDateTime>,
    last_notified_at: Option<NaiveDateTime>,
}

impl AlertRow {
    fn into_alert(self) -> Result<Alert, DbError> {
        let bad =
            |e: StoreError| DbError::Query(diesel::result::Error::DeserializationError(e.0.into()));
        Ok(Alert {
            id: self.id,
            fingerprint: self.fingerprint,
            source: self.source.parse().map_err(bad)?,
            subject: self.subject,
            severity: self.severity.parse().map_err(bad)?,
            status: self.status.parse().map_err(bad)?,
            message: self.message,
            opened_at: self.opened_at.and_utc(),
            acknowledged_at: self.acknowledged_at.map(|t| t.and_utc()),
            acknowledged_by: self.acknowledged_by,
            resolved_at: self.resolved_at.map(|t| t.and_utc()),
            resolution_note: self.resolution_note,
            escalation_level: self.escalation_level,
            last_escalated_at: self.last_escalated_at.map(|t| t.and_utc()),
            last_notified_at: self.last_notified_at.map(|t| t.and_utc()),
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = alerts)]
struct NewAlertRow<'a> {
    fingerprint: &'a str,
    source: &'a str,
    subject: &'a str,
    severity: &'a str,
    status: &'a str,
    message: &'a str,
    opened_at: NaiveDateTime,
    last_notified_at: Option<NaiveDateTime>,
}

/// The key that makes an event for a target be enqueued once.
fn idempotency_key(
    alert_id: i64,
    event: NotificationEvent,
    seq: Option<i64>,
    target: &str,
) -> String {
    match seq {
        Some(n) => format!("alert:{alert_id}:{event}:{n}:{target}"),
        None => format!("alert:{alert_id}:{event}:{target}"),
    }
}

/// Which alert a resolution is for.
#[derive(Clone, Copy)]
enum Which<'a> {
    ActiveFingerprint(&'a str),
    Id(i64),
}

/// Enqueues one `event` notification about `$alert` per target through the
/// outbox, inside the surrounding transaction (a macro so it expands per
/// backend inside `with_conn!`); evaluates to how many rows were new.
macro_rules! enqueue {
    ($conn:expr, $alert:expr, $event:expr, $seq:expr, $targets:expr, $at:expr) => {{
        let mut new = 0usize;
        for target in $targets {
            let n = NewNotification {
                idempotency_key: idempotency_key($alert.id, $event, $seq, target),
                target: target.to_string(),
                alert_id: Some($alert.id),
                event: $event,
                payload: $alert.payload($event),
                created_at: $at,
            };
            new += usize::from($conn.enqueue_notification(&n).await?);
        }
        new
    }};
}

/// The targets told about alert `$id` when it opened or paged about it
/// since, in the surrounding transaction (a macro for the same reason as
/// `enqueue!`).
macro_rules! paged {
    ($conn:expr, $id:expr) => {{
        let targets: Vec<String> = notifications::table
            .filter(notifications::alert_id.eq($id))
            .filter(notifications::event.eq_any([
                NotificationEvent::Opened.as_str(),
                NotificationEvent::Escalated.as_str(),
            ]))
            .select(notifications::target)
            .distinct()
            .order(notifications::target)
            .load($conn)
            .await?;
        targets
    }};
}

fn to_alert(row: Option<AlertRow>) -> Result<Option<Alert>, DbError> {
    row.map(AlertRow::into_alert).transpose()
}

impl Db {
    async fn open(&self, new: &NewAlert, notify: &[String]) -> Result<Option<Alert>, DbError> {
        use diesel_async::RunQueryDsl;
        let row = with_conn!(self, |conn| {
            conn.transaction::<_, diesel::result::Error, _>(async |conn| {
                let at = micros(new.opened_at);
                // ON CONFLICT DO NOTHING against the partial unique index: the
                // database, not a read before the write, decides who opens it.
                let row: Option<AlertRow> = diesel::insert_into(alerts::table)
                    .values(NewAlertRow {
                        fingerprint: &new.fingerprint,
                        source: new.source.as_str(),
                        subject: &new.subject,
                        severity: new.severity.as_str(),
                        status: AlertStatus::Open.as_str(),
                        message: &new.message,
                        opened_at: at,
                        last_notified_at: (!notify.is_empty()).then_some(at),
                    })
                    .on_conflict_do_nothing()
                    .returning(AlertRow::as_returning())
                    .get_result(conn)
                    .await
                    .optional()?;
                if let Some(row) = &row {
                    let alert = AlertRow::into_alert(clone_row(row)).map_err(db_to_diesel)?;
                    enqueue!(
                        conn,
                        &alert,
                        NotificationEvent::Opened,
                        None,
                        notify,
                        new.opened_at
                    );
                }
                Ok(row)
            })
            .await?
        });
        to_alert(row)
    }

    async fn resolve(
        &self,
        which: Which<'_>,
        note: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<Alert>, DbError> {
        use diesel_async::RunQueryDsl;
        let row = with_conn!(self, |conn| {
            conn.transaction::<_, diesel::result::Error, _>(async |conn| {
                let target = alerts::table
                    .filter(alerts::status.ne(AlertStatus::Resolved.as_str()))
                    .into_boxed();
                let target = match which {
                    Which::ActiveFingerprint(f) => target.filter(alerts::fingerprint.eq(f)),
                    Which::Id(id) => target.filter(alerts::id.eq(id)),
                };
                let ids: Vec<i64> = target.select(alerts::id).load(conn).await?;
                let Some(id) = ids.into_iter().next() else {
                    return Ok(None);
                };
                let row: Option<AlertRow> = diesel::update(
                    alerts::table
                        .filter(alerts::id.eq(id))
                        .filter(alerts::status.ne(AlertStatus::Resolved.as_str())),
                )
                .set((
                    alerts::status.eq(AlertStatus::Resolved.as_str()),
                    alerts::resolved_at.eq(micros(at)),
                    alerts::resolution_note.eq(note),
                ))
                .returning(AlertRow::as_returning())
                .get_result(conn)
                .await
                .optional()?;
                if let Some(row) = &row {
                    let alert = AlertRow::into_alert(clone_row(row)).map_err(db_to_diesel)?;
                    // Whoever heard it open, or was paged about it, hears it resolve.
                    let told = paged!(conn, alert.id);
                    enqueue!(conn, &alert, NotificationEvent::Resolved, None, &told, at);
                }
                Ok(row)
            })
            .await?
        });
        to_alert(row)
    }

    async fn remind(
        &self,
        alert_id: i64,
        seq: i64,
        at: DateTime<Utc>,
        notify: &[String],
    ) -> Result<bool, DbError> {
        use diesel_async::RunQueryDsl;
        let new = with_conn!(self, |conn| {
            conn.transaction::<_, diesel::result::Error, _>(async |conn| {
                let row: Option<AlertRow> = diesel::update(
                    alerts::table
                        .filter(alerts::id.eq(alert_id))
                        .filter(alerts::status.eq(AlertStatus::Open.as_str())),
                )
                .set(alerts::last_notified_at.eq(micros(at)))
                .returning(AlertRow::as_returning())
                .get_result(conn)
                .await
                .optional()?;
                let Some(row) = row else { return Ok(0) };
                let alert = AlertRow::into_alert(row).map_err(db_to_diesel)?;
                Ok(enqueue!(
                    conn,
                    &alert,
                    NotificationEvent::Reminder,
                    Some(seq),
                    notify,
                    at
                ))
            })
            .await?
        });
        Ok(new > 0)
    }

    async fn escalate(
        &self,
        alert_id: i64,
        from: i32,
        to: i32,
        at: DateTime<Utc>,
        pages: &[Page],
    ) -> Result<bool, DbError> {
        use diesel_async::RunQueryDsl;
        let changed = with_conn!(self, |conn| {
            conn.transaction::<_, diesel::result::Error, _>(async |conn| {
                // The level it was read at is the claim: of two runs racing
                // from the same level, the second updates no row.
                let stamp = micros(at);
                let n = diesel::update(
                    alerts::table
                        .filter(alerts::id.eq(alert_id))
                        .filter(alerts::status.eq(AlertStatus::Open.as_str()))
                        .filter(alerts::escalation_level.eq(from)),
                )
                .set((
                    alerts::escalation_level.eq(to),
                    alerts::last_escalated_at.eq(stamp),
                ))
                .execute(conn)
                .await?;
                if n == 0 {
                    return Ok(false);
                }
                if !pages.is_empty() {
                    diesel::update(alerts::table.filter(alerts::id.eq(alert_id)))
                        .set(alerts::last_notified_at.eq(stamp))
                        .execute(conn)
                        .await?;
                }
                for page in pages {
                    let n = NewNotification {
                        idempotency_key: idempotency_key(
                            alert_id,
                            NotificationEvent::Escalated,
                            Some(i64::from(page.step)),
                            &page.target,
                        ),
                        target: page.target.clone(),
                        alert_id: Some(alert_id),
                        event: NotificationEvent::Escalated,
                        payload: page.payload.clone(),
                        created_at: at,
                    };
                    conn.enqueue_notification(&n).await?;
                }
                Ok(true)
            })
            .await?
        });
        Ok(changed)
    }

    /// Active alerts (open or acknowledged), oldest first; with `all`, the
    /// newest `limit` alerts of any status, newest first.
    pub async fn list_alerts(&self, all: bool, limit: i64) -> Result<Vec<Alert>, DbError> {
        use diesel_async::RunQueryDsl;
        let rows: Vec<AlertRow> = with_conn!(self, |conn| {
            let q = alerts::table.select(AlertRow::as_select()).into_boxed();
            let q = if all {
                q.order((alerts::opened_at.desc(), alerts::id.desc()))
                    .limit(limit)
            } else {
                q.filter(alerts::status.ne(AlertStatus::Resolved.as_str()))
                    .order((alerts::opened_at.asc(), alerts::id.asc()))
            };
            q.load(conn).await?
        });
        rows.into_iter().map(AlertRow::into_alert).collect()
    }

    /// Alerts with `status` (`None`: open or acknowledged), newest first,
    /// at most `limit`, only ids below `before` when given.
    pub async fn alerts_by_status(
        &self,
        status: Option<AlertStatus>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Alert>, DbError> {
        use diesel_async::RunQueryDsl;
        let rows: Vec<AlertRow> = with_conn!(self, |conn| {
            let mut q = alerts::table
                .select(AlertRow::as_select())
                .order(alerts::id.desc())
                .limit(limit.max(0))
                .into_boxed();
            q = match status {
                Some(s) => q.filter(alerts::status.eq(s.as_str())),
                None => q.filter(alerts::status.ne(AlertStatus::Resolved.as_str())),
            };
            if let Some(before) = before {
                q = q.filter(alerts::id.lt(before));
            }
            q.load(conn).await?
        });
        rows.into_iter().map(AlertRow::into_alert).collect()
    }

    /// Alerts opened before `end` and not resolved before `start`, by id.
    pub(super) async fn alerts_overlapping(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<Alert>, DbError> {
        use diesel_async::RunQueryDsl;
        let (start, end) = (micros(start), micros(end));
        let rows: Vec<AlertRow> = with_conn!(self, |conn| {
            alerts::table
                .select(AlertRow::as_select())
                .filter(alerts::opened_at.lt(end))
                .filter(
                    alerts::resolved_at
                        .is_null()
                        .or(alerts::resolved_at.ge(start)),
                )
                .order(alerts::id)
                .load(conn)
                .await?
        });
        rows.into_iter().map(AlertRow::into_alert).collect()
    }

    pub async fn get_alert(&self, id: i64) -> Result<Option<Alert>, DbError> {
        use diesel_async::RunQueryDsl;
        let row: Option<AlertRow> = with_conn!(self, |conn| {
            alerts::table
                .filter(alerts::id.eq(id))
                .select(AlertRow::as_select())
                .first(conn)
                .await
                .optional()?
        });
        to_alert(row)
    }

    /// The notifications enqueued about an alert: (event, target), oldest first.
    pub async fn alert_notifications(
        &self,
        alert_id: i64,
    ) -> Result<Vec<(String, String)>, DbError> {
        use diesel_async::RunQueryDsl;
        Ok(with_conn!(self, |conn| {
            notifications::table
                .filter(notifications::alert_id.eq(alert_id))
                .order(notifications::id)
                .select((notifications::event, notifications::target))
                .load(conn)
                .await?
        }))
    }

    /// The notifications about an alert with their delivery state, oldest
    /// first: what the console's alerts feed shows.
    pub async fn alert_deliveries(&self, alert_id: i64) -> Result<Vec<AlertDelivery>, DbError> {
        use diesel_async::RunQueryDsl;
        let rows: Vec<(
            String,
            String,
            String,
            i32,
            NaiveDateTime,
            Option<NaiveDateTime>,
        )> = with_conn!(self, |conn| {
            notifications::table
                .filter(notifications::alert_id.eq(alert_id))
                .order(notifications::id)
                .select((
                    notifications::event,
                    notifications::target,
                    notifications::status,
                    notifications::attempts,
                    notifications::created_at,
                    notifications::delivered_at,
                ))
                .load(conn)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(event, target, status, attempts, created_at, delivered_at)| AlertDelivery {
                    event,
                    target,
                    status,
                    attempts,
                    created_at: created_at.and_utc(),
                    delivered_at: delivered_at.map(|t| t.and_utc()),
                },
            )
            .collect())
    }

    /// Acknowledges an open alert: escalation stops, reminders stop, and
    /// every target that heard it open or was paged about it is told who
    /// acknowledged it (once each), in the same transaction. `None` when it
    /// is not open (unknown, already acknowledged or resolved). The CLI's
    /// `alerts ack` and the API both call this.
    pub async fn ack_alert(
        &self,
        id: i64,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<Alert>, DbError> {
        use diesel_async::RunQueryDsl;
        let row: Option<AlertRow> = with_conn!(self, |conn| {
            conn.transaction::<_, diesel::result::Error, _>(async |conn| {
                let row: Option<AlertRow> = diesel::update(
                    alerts::table
                        .filter(alerts::id.eq(id))
                        .filter(alerts::status.eq(AlertStatus::Open.as_str())),
                )
                .set((
                    alerts::status.eq(AlertStatus::Acknowledged.as_str()),
                    alerts::acknowledged_at.eq(micros(at)),
                    alerts::acknowledged_by.eq(by),
                ))
                .returning(AlertRow::as_returning())
                .get_result(conn)
                .await
                .optional()?;
                if let Some(row) = &row {
                    let alert = AlertRow::into_alert(clone_row(row)).map_err(db_to_diesel)?;
                    let told = paged!(conn, alert.id);
                    enqueue!(
                        conn,
                        &alert,
                        NotificationEvent::Acknowledged,
                        None,
                        &told,
                        at
                    );
                }
                Ok(row)
            })
            .await?
        });
        to_alert(row)
    }

    /// Resolves an active alert by id (the CLI), notifying whoever heard it open.
    pub async fn resolve_alert_by_id(
        &self,
        id: i64,
        note: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<Alert>, DbError> {
        self.resolve(Which::Id(id), note, at).await
    }
}

/// Rows are read once inside a transaction and needed twice (to build the
/// payload and to return); the columns are all owned, so a copy is cheap.
fn clone_row(r: &AlertRow) -> AlertRow {
    AlertRow {
        id: r.id,
        fingerprint: r.fingerprint.clone(),
        source: r.source.clone(),
        subject: r.subject.clone(),
        severity: r.severity.clone(),
        status: r.status.clone(),
        message: r.message.clone(),
        opened_at: r.opened_at,
        acknowledged_at: r.acknowledged_at,
        acknowledged_by: r.acknowledged_by.clone(),
        resolved_at: r.resolved_at,
        resolution_note: r.resolution_note.clone(),
        escalation_level: r.escalation_level,
        last_escalated_at: r.last_escalated_at,
        last_notified_at: r.last_notified_at,
    }
}

fn db_to_diesel(e: DbError) -> diesel::result::Error {
    match e {
        DbError::Query(e) => e,
        other => diesel::result::Error::DeserializationError(crate::error_chain(&other).into()),
    }
}

#[async_trait]
impl AlertStore for Db {
    async fn open_alert(
        &self,
        alert: &NewAlert,
        notify: &[String],
    ) -> Result<Option<Alert>, StoreError> {
        self.open(alert, notify).await.map_err(store_error)
    }

    async fn resolve_alert(
        &self,
        fingerprint: &str,
        note: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<Alert>, StoreError> {
        self.resolve(Which::ActiveFingerprint(fingerprint), note, at)
            .await
            .map_err(store_error)
    }

    async fn remind_alert(
        &self,
        alert_id: i64,
        seq: i64,
        at: DateTime<Utc>,
        notify: &[String],
    ) -> Result<bool, StoreError> {
        self.remind(alert_id, seq, at, notify)
            .await
            .map_err(store_error)
    }

    async fn escalate_alert(
        &self,
        alert_id: i64,
        from: i32,
        to: i32,
        at: DateTime<Utc>,
        pages: &[Page],
    ) -> Result<bool, StoreError> {
        self.escalate(alert_id, from, to, at, pages)
            .await
            .map_err(store_error)
    }

    async fn active_alerts(&self) -> Result<Vec<Alert>, StoreError> {
        self.list_alerts(false, i64::MAX).await.map_err(store_error)
    }

    async fn active_silences(&self, at: DateTime<Utc>) -> Result<Vec<Silence>, StoreError> {
        self.silences(at, false).await.map_err(store_error)
    }
}
