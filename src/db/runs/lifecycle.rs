//! The writes of a run's lifecycle: the claim of a slot (exclusive, for
//! the overlap policies across workers), the finish, a row inserted
//! already finished, and the marking of runs whose worker is gone as
//! `abandoned`. The claim and the finish run once per run, so each is a
//! query type of its own that both backends keep prepared.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::backend::Backend as DieselBackend;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, HasSqlType, Nullable, Text, Timestamp};
use diesel::{
    AsChangeset, ExpressionMethods, Insertable, OptionalExtension, QueryDsl, QueryableByName,
};

use super::{whole_seconds, AbandonedRun, ExclusiveClaim, Finish, NewRun, RunStatus, Trigger};
use crate::db::schema::job_runs;
use crate::db::{micros, with_conn, Db, DbError};

/// Which other worker has a run of the job going, if any.
const RUNNING_ELSEWHERE_SQL: &str = "\
SELECT worker_id FROM job_runs WHERE job_name = $1 AND finished_at IS NULL AND worker_id <> $2 LIMIT 1";

/// Which `running` rows to abandon.
#[derive(Clone, Copy)]
enum Leftovers<'a> {
    /// Those of this worker id: left by an earlier process with the id.
    Of(&'a str),
    /// Those of registered workers with no heartbeat since this instant.
    DeadSince(NaiveDateTime),
}

/// Written into `error` by [`Db::abandon_running`].
const ABANDONED: &str = "abandoned: the worker stopped before the run finished";

/// `treat_none_as_default_value = false`: a `None` is bound as NULL (what the
/// nullable columns default to anyway) instead of written as `DEFAULT`, which
/// Diesel does not cache, so the claim, run once per run, stays a prepared
/// statement instead of being parsed and planned again each time.
#[derive(Insertable)]
#[diesel(table_name = job_runs, treat_none_as_default_value = false)]
pub(super) struct NewRow<'a> {
    job_name: &'a str,
    kind: &'a str,
    scheduled_for: NaiveDateTime,
    trigger: Trigger,
    attempt: i32,
    worker_id: &'a str,
    started_at: NaiveDateTime,
    finished_at: Option<NaiveDateTime>,
    status: RunStatus,
    error: Option<&'a str>,
    output: Option<&'a str>,
    pub(super) duration_ms: Option<i64>,
    missed: i32,
    jitter_ms: Option<i64>,
}

impl<'a> NewRow<'a> {
    pub(super) fn new(run: &'a NewRun, finish: Option<&'a Finish>) -> Self {
        NewRow {
            job_name: &run.job_name,
            kind: &run.kind,
            scheduled_for: whole_seconds(run.scheduled_for),
            trigger: run.trigger,
            attempt: run.attempt,
            worker_id: &run.worker_id,
            started_at: micros(run.started_at),
            finished_at: finish.map(|f| micros(f.finished_at)),
            status: finish.map_or(RunStatus::Running, |f| f.status),
            error: finish.and_then(|f| f.error.as_deref()),
            output: finish.and_then(|f| f.output.as_deref()),
            duration_ms: finish.map(|f| f.duration_ms),
            missed: run.missed,
            jitter_ms: run.jitter_ms,
        }
    }
}

#[derive(AsChangeset)]
#[diesel(table_name = job_runs, treat_none_as_null = true)]
struct FinishRow<'a> {
    status: RunStatus,
    finished_at: NaiveDateTime,
    error: Option<&'a str>,
    output: Option<&'a str>,
    duration_ms: i64,
}

impl<'a> From<&'a Finish> for FinishRow<'a> {
    fn from(f: &'a Finish) -> Self {
        FinishRow {
            status: f.status,
            finished_at: micros(f.finished_at),
            error: f.error.as_deref(),
            output: f.output.as_deref(),
            duration_ms: f.duration_ms,
        }
    }
}

/// The finishing `UPDATE` of [`Db::finish_run`], written out as a query of
/// its own so both backends can keep it prepared: Diesel marks every
/// `diesel::update(..)` as not cacheable (a changeset's column list may
/// vary), so each finish was parsed and planned again, on PostgreSQL with an
/// extra round trip. Same statement as `update(..).set(&FinishRow)`.
struct FinishQuery<'a> {
    id: i64,
    row: FinishRow<'a>,
}

/// One fixed SQL text, so the statement is cached by this type.
impl QueryId for FinishQuery<'_> {
    type QueryId = FinishQuery<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<DB> QueryFragment<DB> for FinishQuery<'_>
where
    DB: DieselBackend + HasSqlType<Text> + HasSqlType<Timestamp> + HasSqlType<BigInt>,
    RunStatus: ToSql<Text, DB>,
    NaiveDateTime: ToSql<Timestamp, DB>,
    str: ToSql<Text, DB>,
    i64: ToSql<BigInt, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> diesel::QueryResult<()> {
        let row = &self.row;
        out.push_sql("UPDATE job_runs SET status = ");
        out.push_bind_param::<Text, _>(&row.status)?;
        out.push_sql(", finished_at = ");
        out.push_bind_param::<Timestamp, _>(&row.finished_at)?;
        out.push_sql(", error = ");
        out.push_bind_param::<Nullable<Text>, _>(&row.error)?;
        out.push_sql(", output = ");
        out.push_bind_param::<Nullable<Text>, _>(&row.output)?;
        out.push_sql(", duration_ms = ");
        out.push_bind_param::<BigInt, _>(&row.duration_ms)?;
        out.push_sql(" WHERE id = ");
        out.push_bind_param::<BigInt, _>(&self.id)?;
        out.push_sql(" AND finished_at IS NULL");
        Ok(())
    }
}

/// The claim of [`Db::claim_run_exclusive`] with the overlap check in one
/// statement, written out as a query type of its own so both backends keep
/// it prepared (it runs once per run, like the claim): `INSERT ... SELECT
/// ... WHERE NOT EXISTS (a run of the job going on another worker)`, on the
/// index `job_runs_running` (job, worker; unfinished rows only). SQLite
/// needs the `WHERE` that an upsert after `INSERT ... SELECT` requires
/// anyway. The row is marked `exclusive`: the unique index
/// `job_runs_one_exclusive` admits one unfinished exclusive run per job, so
/// two workers claiming different slots at once (each statement seeing no
/// running row, as READ COMMITTED allows) cannot both win. `ON CONFLICT DO
/// NOTHING` has no target so that either index's conflict means "not won".
struct ClaimExclusiveQuery<'a>(NewRow<'a>);

impl QueryId for ClaimExclusiveQuery<'_> {
    type QueryId = ClaimExclusiveQuery<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl diesel::query_builder::Query for ClaimExclusiveQuery<'_> {
    type SqlType = BigInt;
}

impl<DB> QueryFragment<DB> for ClaimExclusiveQuery<'_>
where
    DB: DieselBackend
        + HasSqlType<Text>
        + HasSqlType<Timestamp>
        + HasSqlType<diesel::sql_types::Integer>
        + HasSqlType<BigInt>,
    Trigger: ToSql<Text, DB>,
    RunStatus: ToSql<Text, DB>,
    NaiveDateTime: ToSql<Timestamp, DB>,
    str: ToSql<Text, DB>,
    i32: ToSql<diesel::sql_types::Integer, DB>,
    i64: ToSql<BigInt, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> diesel::QueryResult<()> {
        use diesel::sql_types::Integer;
        let r = &self.0;
        out.push_sql(
            "INSERT INTO job_runs (job_name, kind, scheduled_for, \"trigger\", attempt, worker_id, started_at, status, missed, jitter_ms, exclusive) SELECT ",
        );
        out.push_bind_param::<Text, _>(r.job_name)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(r.kind)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&r.scheduled_for)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&r.trigger)?;
        out.push_sql(", ");
        out.push_bind_param::<Integer, _>(&r.attempt)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(r.worker_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&r.started_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&r.status)?;
        out.push_sql(", ");
        out.push_bind_param::<Integer, _>(&r.missed)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<BigInt>, _>(&r.jitter_ms)?;
        out.push_sql(", TRUE WHERE NOT EXISTS (SELECT 1 FROM job_runs WHERE job_name = ");
        out.push_bind_param::<Text, _>(r.job_name)?;
        out.push_sql(" AND finished_at IS NULL AND worker_id <> ");
        out.push_bind_param::<Text, _>(r.worker_id)?;
        out.push_sql(") ON CONFLICT DO NOTHING RETURNING id");
        Ok(())
    }
}

impl Db {
    /// Inserts a `running` row unless the slot `(job_name, scheduled_for,
    /// attempt)` is taken. `Some(id)`: this caller won the slot; `None`:
    /// someone else has it.
    pub async fn claim_run(&self, run: &NewRun) -> Result<Option<i64>, DbError> {
        use diesel_async::RunQueryDsl;
        let row = NewRow::new(run, None);
        let id = with_conn!(self, |conn| {
            diesel::insert_into(job_runs::table)
                .values(&row)
                .on_conflict((
                    job_runs::job_name,
                    job_runs::scheduled_for,
                    job_runs::attempt,
                ))
                .do_nothing()
                .returning(job_runs::id)
                .get_result::<i64>(conn)
                .await
                .optional()?
        });
        Ok(id)
    }

    /// Whether the slot and attempt of `run` already have a row (claimed,
    /// finished or skipped by any worker). One index lookup: a backup
    /// worker asks this before it tries to claim a slot that the slot's
    /// first worker has normally claimed by then.
    pub async fn slot_taken(&self, run: &NewRun) -> Result<bool, DbError> {
        use diesel_async::RunQueryDsl;
        let row = NewRow::new(run, None);
        let taken: i64 = with_conn!(self, |conn| {
            job_runs::table
                .filter(job_runs::job_name.eq(row.job_name))
                .filter(job_runs::scheduled_for.eq(row.scheduled_for))
                .filter(job_runs::attempt.eq(row.attempt))
                .count()
                .get_result(conn)
                .await?
        });
        Ok(taken > 0)
    }

    /// [`Db::claim_run`] for a job whose runs must not overlap: the row is
    /// inserted only if no other worker has a run of the job going, checked
    /// in the same statement.
    pub async fn claim_run_exclusive(&self, run: &NewRun) -> Result<ExclusiveClaim, DbError> {
        use diesel_async::RunQueryDsl;
        #[derive(QueryableByName)]
        struct Holder {
            #[diesel(sql_type = Text)]
            worker_id: String,
        }
        // A blocking run may end between the two statements: then try again.
        for _ in 0..3 {
            let query = ClaimExclusiveQuery(NewRow::new(run, None));
            let won: Option<i64> =
                with_conn!(self, |conn| query.get_result(conn).await.optional()?);
            if let Some(id) = won {
                return Ok(ExclusiveClaim::Won(id));
            }
            // Not inserted: this very slot is taken (perhaps still running
            // on its winner), or a run of another slot of the job is going.
            if self.slot_taken(run).await? {
                return Ok(ExclusiveClaim::Taken);
            }
            let holder: Option<Holder> = with_conn!(self, |conn| {
                diesel::sql_query(RUNNING_ELSEWHERE_SQL)
                    .bind::<Text, _>(&run.job_name)
                    .bind::<Text, _>(&run.worker_id)
                    .get_result(conn)
                    .await
                    .optional()?
            });
            if let Some(h) = holder {
                return Ok(ExclusiveClaim::Busy(h.worker_id));
            }
        }
        // Blocked three times by runs that ended before they could be named:
        // treated as busy, so that the slot is recorded (skipped), not lost.
        Ok(ExclusiveClaim::Busy(
            "(one that has just finished)".to_string(),
        ))
    }

    /// Records how run `id` ended. Only an unfinished row is updated, so this
    /// succeeds once: `true` means this call finished it.
    pub async fn finish_run(&self, id: i64, f: &Finish) -> Result<bool, DbError> {
        use diesel_async::RunQueryDsl;
        let query = FinishQuery {
            id,
            row: FinishRow::from(f),
        };
        let updated = with_conn!(self, |conn| query.execute(conn).await?);
        Ok(updated == 1)
    }

    /// Inserts a row that is already finished: a skipped slot, or a run
    /// recorded after a database outage. `false` if the slot was taken.
    pub async fn insert_finished_run(&self, run: &NewRun, f: &Finish) -> Result<bool, DbError> {
        self.insert_unless_taken(&NewRow::new(run, Some(f))).await
    }

    /// Inserts `row` unless its slot and attempt already have one: `false`
    /// then.
    pub(super) async fn insert_unless_taken(&self, row: &NewRow<'_>) -> Result<bool, DbError> {
        use diesel_async::RunQueryDsl;
        let inserted = with_conn!(self, |conn| {
            diesel::insert_into(job_runs::table)
                .values(row)
                .on_conflict((
                    job_runs::job_name,
                    job_runs::scheduled_for,
                    job_runs::attempt,
                ))
                .do_nothing()
                .execute(conn)
                .await?
        });
        Ok(inserted == 1)
    }

    /// Marks `worker_id`'s runs still `running` (left by an earlier process
    /// with that id) as `abandoned`, finished at `now`, with the time since
    /// they started as duration. Returns how many it marked.
    pub async fn abandon_running(
        &self,
        worker_id: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, DbError> {
        let rows = self
            .abandon(Leftovers::Of(worker_id), now, ABANDONED.to_string())
            .await?;
        Ok(rows.len() as u64)
    }

    /// Marks as `abandoned` the `running` rows of every registered worker
    /// whose heartbeat is older than `cutoff` (it died, or is paused): what
    /// a live replica does for a dead one. Workers not in `workers` are left
    /// alone. Returns the rows it marked.
    pub async fn abandon_dead_runs(
        &self,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
        by: &str,
    ) -> Result<Vec<AbandonedRun>, DbError> {
        let why = format!(
            "abandoned: its worker stopped heartbeating (none since {}); marked by worker {by}",
            cutoff.format("%Y-%m-%d %H:%M:%S UTC")
        );
        self.abandon(Leftovers::DeadSince(micros(cutoff)), now, why)
            .await
    }

    /// One read, then one guarded update per row: the duration differs per
    /// row and timestamp arithmetic is not portable SQL, and such rows are
    /// few (at most one per job and attempt). A row finished meanwhile by
    /// someone else is left alone and not returned.
    async fn abandon(
        &self,
        which: Leftovers<'_>,
        now: DateTime<Utc>,
        why: String,
    ) -> Result<Vec<AbandonedRun>, DbError> {
        use crate::db::schema::workers;
        use diesel_async::RunQueryDsl;
        let now = micros(now);
        let abandoned = with_conn!(self, |conn| {
            // `finished_at IS NULL` is the same as status 'running' (a CHECK
            // ties them) and matches the partial index without a parameter.
            let running = job_runs::table
                .filter(job_runs::finished_at.is_null())
                .into_boxed();
            let running = match which {
                Leftovers::Of(worker_id) => running.filter(job_runs::worker_id.eq(worker_id)),
                Leftovers::DeadSince(cutoff) => running.filter(
                    job_runs::worker_id.eq_any(
                        workers::table
                            .filter(workers::heartbeat_at.lt(cutoff))
                            .select(workers::id),
                    ),
                ),
            };
            let running: Vec<(i64, NaiveDateTime, String, NaiveDateTime, i32, String)> = running
                .select((
                    job_runs::id,
                    job_runs::started_at,
                    job_runs::job_name,
                    job_runs::scheduled_for,
                    job_runs::attempt,
                    job_runs::worker_id,
                ))
                .load(conn)
                .await?;
            let mut abandoned = Vec::new();
            for (id, started_at, job_name, scheduled_for, attempt, worker_id) in running {
                let changes = FinishRow {
                    status: RunStatus::Abandoned,
                    finished_at: now,
                    error: Some(&why),
                    output: None,
                    duration_ms: (now - started_at).num_milliseconds().max(0),
                };
                let updated = diesel::update(
                    job_runs::table
                        .filter(job_runs::id.eq(id))
                        .filter(job_runs::finished_at.is_null()),
                )
                .set(&changes)
                .execute(conn)
                .await?;
                if updated == 1 {
                    abandoned.push(AbandonedRun {
                        id,
                        job_name,
                        scheduled_for: scheduled_for.and_utc(),
                        attempt,
                        worker_id,
                    });
                }
            }
            abandoned
        });
        Ok(abandoned)
    }

    /// Run `id` was already finished when its own worker came to finish it:
    /// another worker marked it `abandoned` meanwhile (this one was paused
    /// or cut off). Notes the late outcome on the abandoned row, keeping its
    /// status; a row with any other status is left as it is. True when noted.
    pub async fn note_late_finish(&self, id: i64, f: &Finish) -> Result<bool, DbError> {
        use diesel_async::RunQueryDsl;
        let row: Option<Option<String>> = with_conn!(self, |conn| {
            job_runs::table
                .filter(job_runs::id.eq(id))
                .filter(job_runs::status.eq(RunStatus::Abandoned))
                .select(job_runs::error)
                .first(conn)
                .await
                .optional()?
        });
        let Some(error) = row else { return Ok(false) };
        let note = format!(
            "{}; its worker finished it late, at {}: {}{}",
            error.unwrap_or_else(|| ABANDONED.to_string()),
            f.finished_at.format("%Y-%m-%d %H:%M:%S UTC"),
            f.status,
            f.error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
        let updated = with_conn!(self, |conn| {
            diesel::update(
                job_runs::table
                    .filter(job_runs::id.eq(id))
                    .filter(job_runs::status.eq(RunStatus::Abandoned)),
            )
            .set(job_runs::error.eq(note))
            .execute(conn)
            .await?
        });
        Ok(updated == 1)
    }
}
