//! `run_requests`: "run this job now", stored by whoever asks (the HTTP
//! API, `ops-worker request-run`) and carried out by one live daemon. This
//! file owns the rows and their guarded transitions, each one statement
//! whose `WHERE` lets exactly one process make it:
//!
//! `pending` -> `claimed` (a worker took it) -> `running` (its run is
//! claimed in `job_runs`, `run_id` set) -> `finished`; `claimed` goes back
//! to `pending` when its worker dies or stops before the run starts, and
//! any unfinished request can be `finished` with an `error` saying why no
//! run (or no complete run) came of it.
//!
//! On PostgreSQL a trigger (see the migration) sends a `NOTIFY` on
//! [`RUN_REQUESTS_CHANNEL`] whenever a row becomes `pending`; listening is
//! `listen.rs`. Who is live, which job exists and what a run is are not this
//! file's business; nor is when old requests go (`crate::retention`), only
//! which ones may ([`Db::prune_run_requests`]).

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::{
    dsl::{exists, not},
    BoolExpressionMethods, ExpressionMethods, Insertable, NullableExpressionMethods,
    OptionalExtension, QueryDsl, Queryable, Selectable, SelectableHelper,
};
use serde::Serialize;

use super::schema::{job_runs, run_requests, workers};
use super::text_enum::text_enum;
use super::{micros, with_conn, Db, DbError};

/// The PostgreSQL channel a new or released request is announced on.
pub const RUN_REQUESTS_CHANNEL: &str = "ops_worker_run_requests";

text_enum! {
    /// Where a run request stands.
    RequestStatus, "run request status" {
        /// Stored; no worker has it yet.
        Pending = "pending",
        /// A worker took it and is starting its run.
        Claimed = "claimed",
        /// Its run is claimed in `job_runs` (`run_id`).
        Running = "running",
        /// Done with: its run ended, or `error` says why none did.
        Finished = "finished",
    }
}

/// One "run now" request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RunRequest {
    pub id: i64,
    pub job_name: String,
    /// Who asked, as the caller recorded it (a token name, a person).
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    pub status: RequestStatus,
    /// The worker id that claimed it.
    pub claimed_by: Option<String>,
    pub claimed_at: Option<DateTime<Utc>>,
    /// The `job_runs` row of its run (the first attempt; retries are rows
    /// of the same slot).
    pub run_id: Option<i64>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Why no run came of it, or why its run was lost.
    pub error: Option<String>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = run_requests)]
struct Row {
    id: i64,
    job_name: String,
    requested_by: String,
    requested_at: NaiveDateTime,
    status: RequestStatus,
    claimed_by: Option<String>,
    claimed_at: Option<NaiveDateTime>,
    run_id: Option<i64>,
    finished_at: Option<NaiveDateTime>,
    error: Option<String>,
}

impl From<Row> for RunRequest {
    fn from(r: Row) -> Self {
        RunRequest {
            id: r.id,
            job_name: r.job_name,
            requested_by: r.requested_by,
            requested_at: r.requested_at.and_utc(),
            status: r.status,
            claimed_by: r.claimed_by,
            claimed_at: r.claimed_at.map(|t| t.and_utc()),
            run_id: r.run_id,
            finished_at: r.finished_at.map(|t| t.and_utc()),
            error: r.error,
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = run_requests)]
struct NewRow<'a> {
    job_name: &'a str,
    requested_by: &'a str,
    requested_at: NaiveDateTime,
    status: RequestStatus,
}

/// What [`Db::release_run_requests`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Released {
    /// Claimed, not started: back to `pending`, for another worker.
    pub pending_again: Vec<i64>,
    /// Running when the worker went: finished with an error (the run
    /// itself is marked `abandoned` by the heartbeat's reaper).
    pub lost: Vec<i64>,
}

/// Whose claims [`Db::release_run_requests`] releases.
#[derive(Debug, Clone, Copy)]
pub enum Holder<'a> {
    /// This worker id's, left by an earlier process with it.
    Earlier(&'a str),
    /// Those of workers with no heartbeat since the cutoff, or stopped.
    DeadSince(DateTime<Utc>),
}

impl Db {
    /// Stores a `pending` request to run `job` now; returns its id. On
    /// PostgreSQL the listening workers are woken when it commits.
    pub async fn insert_run_request(
        &self,
        job: &str,
        requested_by: &str,
        at: DateTime<Utc>,
    ) -> Result<i64, DbError> {
        use diesel_async::RunQueryDsl;
        let row = NewRow {
            job_name: job,
            requested_by,
            requested_at: micros(at),
            status: RequestStatus::Pending,
        };
        Ok(with_conn!(self, |conn| {
            diesel::insert_into(run_requests::table)
                .values(&row)
                .returning(run_requests::id)
                .get_result::<i64>(conn)
                .await?
        }))
    }

    /// Request `id`, if there is one.
    pub async fn run_request(&self, id: i64) -> Result<Option<RunRequest>, DbError> {
        use diesel_async::RunQueryDsl;
        let row: Option<Row> = with_conn!(self, |conn| {
            run_requests::table
                .filter(run_requests::id.eq(id))
                .select(Row::as_select())
                .first(conn)
                .await
                .optional()?
        });
        Ok(row.map(RunRequest::from))
    }

    /// The oldest `limit` requests no worker has, oldest first.
    pub async fn pending_run_requests(&self, limit: i64) -> Result<Vec<RunRequest>, DbError> {
        use diesel_async::RunQueryDsl;
        let rows: Vec<Row> = with_conn!(self, |conn| {
            run_requests::table
                .filter(run_requests::status.eq(RequestStatus::Pending))
                .order(run_requests::id)
                .limit(limit)
                .select(Row::as_select())
                .load(conn)
                .await?
        });
        Ok(rows.into_iter().map(RunRequest::from).collect())
    }

    /// Takes `pending` request `id` for `worker`. Exactly one of several
    /// concurrent claimers gets true: the update is guarded by the status.
    pub async fn claim_run_request(
        &self,
        id: i64,
        worker: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        use diesel_async::RunQueryDsl;
        let n = with_conn!(self, |conn| {
            diesel::update(
                run_requests::table
                    .filter(run_requests::id.eq(id))
                    .filter(run_requests::status.eq(RequestStatus::Pending)),
            )
            .set((
                run_requests::status.eq(RequestStatus::Claimed),
                run_requests::claimed_by.eq(worker),
                run_requests::claimed_at.eq(micros(at)),
            ))
            .execute(conn)
            .await?
        });
        Ok(n == 1)
    }

    /// Links the run `worker` claimed for request `id`: `claimed` ->
    /// `running`. False when the request is no longer `worker`'s claim.
    pub async fn run_request_started(
        &self,
        id: i64,
        worker: &str,
        run_id: i64,
    ) -> Result<bool, DbError> {
        use diesel_async::RunQueryDsl;
        let n = with_conn!(self, |conn| {
            diesel::update(
                run_requests::table
                    .filter(run_requests::id.eq(id))
                    .filter(run_requests::status.eq(RequestStatus::Claimed))
                    .filter(run_requests::claimed_by.eq(worker)),
            )
            .set((
                run_requests::status.eq(RequestStatus::Running),
                run_requests::run_id.eq(run_id),
            ))
            .execute(conn)
            .await?
        });
        Ok(n == 1)
    }

    /// Finishes request `id`, claimed or running on `worker`, at `at`, with
    /// `error` when no (complete) run came of it. False when it is not
    /// `worker`'s unfinished request.
    pub async fn finish_run_request(
        &self,
        id: i64,
        worker: &str,
        at: DateTime<Utc>,
        error: Option<&str>,
    ) -> Result<bool, DbError> {
        use diesel_async::RunQueryDsl;
        let n = with_conn!(self, |conn| {
            diesel::update(
                run_requests::table
                    .filter(run_requests::id.eq(id))
                    .filter(
                        run_requests::status
                            .eq_any([RequestStatus::Claimed, RequestStatus::Running]),
                    )
                    .filter(run_requests::claimed_by.eq(worker)),
            )
            .set((
                run_requests::status.eq(RequestStatus::Finished),
                run_requests::finished_at.eq(micros(at)),
                run_requests::error.eq(error),
            ))
            .execute(conn)
            .await?
        });
        Ok(n == 1)
    }

    /// Gives request `id`, claimed by `worker` and not started, back to
    /// the other workers (`pending`). False when it is not such a request.
    pub async fn unclaim_run_request(&self, id: i64, worker: &str) -> Result<bool, DbError> {
        use diesel_async::RunQueryDsl;
        let n = with_conn!(self, |conn| {
            diesel::update(
                run_requests::table
                    .filter(run_requests::id.eq(id))
                    .filter(run_requests::status.eq(RequestStatus::Claimed))
                    .filter(run_requests::claimed_by.eq(worker)),
            )
            .set((
                run_requests::status.eq(RequestStatus::Pending),
                run_requests::claimed_by.eq(None::<String>),
                run_requests::claimed_at.eq(None::<NaiveDateTime>),
            ))
            .execute(conn)
            .await?
        });
        Ok(n == 1)
    }

    /// Releases the unfinished requests of `holder`: those not started go
    /// back to `pending`, those running are finished at `now` with `lost`
    /// as their error. One read, then one guarded update per row (such rows
    /// are few); a row another process moved meanwhile is left alone.
    pub async fn release_run_requests(
        &self,
        holder: Holder<'_>,
        now: DateTime<Utc>,
        lost: &str,
    ) -> Result<Released, DbError> {
        use diesel_async::RunQueryDsl;
        let mut released = Released::default();
        let held: Vec<(i64, RequestStatus, String)> = with_conn!(self, |conn| {
            let open = run_requests::table
                .filter(
                    run_requests::status.eq_any([RequestStatus::Claimed, RequestStatus::Running]),
                )
                .into_boxed();
            let open = match holder {
                Holder::Earlier(worker) => {
                    open.filter(run_requests::claimed_by.eq(worker.to_string()))
                }
                Holder::DeadSince(cutoff) => open.filter(
                    run_requests::claimed_by.eq_any(
                        workers::table
                            .filter(
                                workers::heartbeat_at
                                    .lt(micros(cutoff))
                                    .or(workers::stopped_at.is_not_null()),
                            )
                            .select(workers::id.nullable()),
                    ),
                ),
            };
            open.select((
                run_requests::id,
                run_requests::status,
                run_requests::claimed_by.assume_not_null(),
            ))
            .load(conn)
            .await?
        });
        for (id, status, worker) in held {
            match status {
                RequestStatus::Claimed => {
                    if self.unclaim_run_request(id, &worker).await? {
                        released.pending_again.push(id);
                    }
                }
                _ => {
                    if self
                        .finish_run_request(id, &worker, now, Some(lost))
                        .await?
                    {
                        released.lost.push(id);
                    }
                }
            }
        }
        Ok(released)
    }

    /// Deletes at most `batch` (at least 1) `finished` requests that
    /// finished before `older_than`, oldest first, and returns how many it
    /// deleted. Never deleted: an unfinished request (`pending`, `claimed`,
    /// `running`), and one whose run is still in `job_runs`, since the
    /// request is the only record of who asked for that run: it goes with
    /// the first pass after its run was pruned (there is no foreign key, so
    /// the order is ours to keep).
    ///
    /// One statement, safe to run from several workers at once, like
    /// [`Db::prune_runs`]. Call it until it returns less than `batch`.
    pub async fn prune_run_requests(
        &self,
        older_than: DateTime<Utc>,
        batch: i64,
    ) -> Result<u64, DbError> {
        use diesel_async::RunQueryDsl;
        let deleted = with_conn!(self, |conn| {
            // The batch is a subquery on the same table, so under another name.
            let r = diesel::alias!(run_requests as due);
            let due = r
                .filter(r.field(run_requests::status).eq(RequestStatus::Finished))
                .filter(r.field(run_requests::finished_at).lt(micros(older_than)))
                .filter(not(exists(job_runs::table.filter(
                    job_runs::id.nullable().eq(r.field(run_requests::run_id)),
                ))))
                .order(r.field(run_requests::id))
                .limit(batch.max(1))
                .select(r.field(run_requests::id));
            diesel::delete(run_requests::table.filter(run_requests::id.eq_any(due)))
                .execute(conn)
                .await?
        });
        Ok(deleted as u64)
    }
}
