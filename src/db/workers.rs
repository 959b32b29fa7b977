//! `workers`: one row per worker process, with the heartbeat its scheduler
//! refreshes. Written by the daemon (`src/heartbeat.rs`), read by
//! `ops-worker health` and `ops-worker status`. Deciding what counts as
//! fresh is not this file's business.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::upsert::excluded;
use diesel::SelectableHelper;
use diesel::{
    ExpressionMethods, Insertable, OptionalExtension, QueryDsl, Queryable, Selectable,
    TextExpressionMethods,
};
use serde::Serialize;

use super::schema::workers;
use super::{micros, with_conn, Db, DbError};

/// One worker process, as registered and last heard of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Worker {
    /// `OPS_WORKER_ID`, default the host name.
    pub id: String,
    pub host: String,
    pub pid: i32,
    pub version: String,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
    /// SHA-256 of the schedules.toml it loaded, hex.
    pub config_hash: String,
    /// Set by a clean shutdown.
    pub stopped_at: Option<DateTime<Utc>>,
    /// Why its schedules.toml on disk was rejected by a reload (it runs the
    /// previous one, `config_hash`); `None` when it runs the file on disk.
    pub config_error: Option<String>,
}

#[derive(Insertable, Queryable, Selectable)]
#[diesel(table_name = workers)]
struct Row {
    id: String,
    host: String,
    pid: i32,
    version: String,
    started_at: NaiveDateTime,
    heartbeat_at: NaiveDateTime,
    config_hash: String,
    stopped_at: Option<NaiveDateTime>,
    config_error: Option<String>,
}

impl From<Row> for Worker {
    fn from(r: Row) -> Self {
        Worker {
            id: r.id,
            host: r.host,
            pid: r.pid,
            version: r.version,
            started_at: r.started_at.and_utc(),
            heartbeat_at: r.heartbeat_at.and_utc(),
            config_hash: r.config_hash,
            stopped_at: r.stopped_at.map(|t| t.and_utc()),
            config_error: r.config_error,
        }
    }
}

impl Row {
    /// The row of worker `w` as it registers: not stopped.
    fn registering(w: &Worker) -> Row {
        Row {
            id: w.id.clone(),
            host: w.host.clone(),
            pid: w.pid,
            version: w.version.clone(),
            started_at: micros(w.started_at),
            heartbeat_at: micros(w.heartbeat_at),
            config_hash: w.config_hash.clone(),
            stopped_at: None,
            config_error: w.config_error.clone(),
        }
    }
}

impl Db {
    /// Registers a worker whatever holds its id: its row is created, or
    /// taken over. For ids only one process can have (`run-job`'s); a
    /// daemon registers with [`Db::take_worker_id`].
    pub async fn register_worker(&self, w: &Worker) -> Result<(), DbError> {
        use diesel_async::RunQueryDsl;
        let row = Row::registering(w);
        with_conn!(self, |conn| {
            diesel::insert_into(workers::table)
                .values(&row)
                .on_conflict(workers::id)
                .do_update()
                .set((
                    workers::host.eq(excluded(workers::host)),
                    workers::pid.eq(excluded(workers::pid)),
                    workers::version.eq(excluded(workers::version)),
                    workers::started_at.eq(excluded(workers::started_at)),
                    workers::heartbeat_at.eq(excluded(workers::heartbeat_at)),
                    workers::config_hash.eq(excluded(workers::config_hash)),
                    workers::stopped_at.eq(None::<NaiveDateTime>),
                    workers::config_error.eq(excluded(workers::config_error)),
                ))
                .execute(conn)
                .await?
        });
        Ok(())
    }

    /// Registers daemon `w` under its id if the row is as the caller last
    /// read it: absent (`held` is `None`), or held by the process `held`
    /// describes, whose heartbeat has not moved since. False when another
    /// process registered or beat in between; whether `held` may be taken
    /// over is the caller's judgement (`heartbeat::claim`).
    pub async fn take_worker_id(&self, w: &Worker, held: Option<&Worker>) -> Result<bool, DbError> {
        use diesel_async::RunQueryDsl;
        let row = Row::registering(w);
        let n = match held {
            None => with_conn!(self, |conn| {
                diesel::insert_into(workers::table)
                    .values(&row)
                    .on_conflict(workers::id)
                    .do_nothing()
                    .execute(conn)
                    .await?
            }),
            Some(h) => with_conn!(self, |conn| {
                diesel::update(
                    workers::table
                        .filter(workers::id.eq(&h.id))
                        .filter(workers::host.eq(&h.host))
                        .filter(workers::pid.eq(h.pid))
                        .filter(workers::heartbeat_at.eq(micros(h.heartbeat_at))),
                )
                .set((
                    workers::host.eq(&row.host),
                    workers::pid.eq(row.pid),
                    workers::version.eq(&row.version),
                    workers::started_at.eq(row.started_at),
                    workers::heartbeat_at.eq(row.heartbeat_at),
                    workers::config_hash.eq(&row.config_hash),
                    workers::stopped_at.eq(None::<NaiveDateTime>),
                    workers::config_error.eq(&row.config_error),
                ))
                .execute(conn)
                .await?
            }),
        };
        Ok(n == 1)
    }

    /// Refreshes the heartbeat of worker `w` (its id and process), with the
    /// config it runs (`config_hash`, `config_error`). False when the row is
    /// gone or another process took it over.
    pub async fn heartbeat(&self, w: &Worker, at: DateTime<Utc>) -> Result<bool, DbError> {
        use diesel_async::RunQueryDsl;
        let n = with_conn!(self, |conn| {
            diesel::update(
                workers::table
                    .filter(workers::id.eq(&w.id))
                    .filter(workers::pid.eq(w.pid)),
            )
            .set((
                workers::heartbeat_at.eq(micros(at)),
                workers::config_hash.eq(&w.config_hash),
                workers::config_error.eq(&w.config_error),
            ))
            .execute(conn)
            .await?
        });
        Ok(n == 1)
    }

    /// Records a clean shutdown of worker `id` (process `pid`).
    pub async fn worker_stopped(
        &self,
        id: &str,
        pid: i32,
        at: DateTime<Utc>,
    ) -> Result<(), DbError> {
        use diesel_async::RunQueryDsl;
        with_conn!(self, |conn| {
            diesel::update(
                workers::table
                    .filter(workers::id.eq(id))
                    .filter(workers::pid.eq(pid)),
            )
            .set((
                workers::stopped_at.eq(micros(at)),
                workers::heartbeat_at.eq(micros(at)),
            ))
            .execute(conn)
            .await?
        });
        Ok(())
    }

    /// Removes worker `id`'s row (a finished `run-job`, which is no daemon
    /// `status` should list), if process `pid` still holds it.
    pub async fn forget_worker(&self, id: &str, pid: i32) -> Result<(), DbError> {
        use diesel_async::RunQueryDsl;
        with_conn!(self, |conn| {
            diesel::delete(
                workers::table
                    .filter(workers::id.eq(id))
                    .filter(workers::pid.eq(pid)),
            )
            .execute(conn)
            .await?
        });
        Ok(())
    }

    pub async fn worker(&self, id: &str) -> Result<Option<Worker>, DbError> {
        use diesel_async::RunQueryDsl;
        let row: Option<Row> = with_conn!(self, |conn| {
            workers::table
                .filter(workers::id.eq(id))
                .select(Row::as_select())
                .first(conn)
                .await
                .optional()?
        });
        Ok(row.map(Worker::from))
    }

    /// The ids of the daemons with a heartbeat at or after `since` and no
    /// clean stop (`run-job` processes are not daemons).
    pub async fn live_workers(&self, since: DateTime<Utc>) -> Result<Vec<String>, DbError> {
        use diesel::BoolExpressionMethods;
        use diesel_async::RunQueryDsl;
        Ok(with_conn!(self, |conn| {
            workers::table
                .filter(
                    workers::heartbeat_at
                        .ge(micros(since))
                        .and(workers::stopped_at.is_null())
                        .and(workers::id.not_like("%/run-job/%")),
                )
                .order(workers::id)
                .select(workers::id)
                .load(conn)
                .await?
        }))
    }

    /// Every registered worker, by id.
    pub async fn workers(&self) -> Result<Vec<Worker>, DbError> {
        use diesel_async::RunQueryDsl;
        let rows: Vec<Row> = with_conn!(self, |conn| {
            workers::table
                .order(workers::id)
                .select(Row::as_select())
                .load(conn)
                .await?
        });
        Ok(rows.into_iter().map(Worker::from).collect())
    }
}
