//! The `job_runs` table: claiming a slot, finishing a run, the reads the
//! scheduler and the CLI need (slot anchors, per-job summaries, history),
//! and pruning old rows (history retention).
//!
//! Every query is written once inside `with_conn!` and so compiled for both
//! backends: Diesel's DSL where it reaches, portable SQL text for the
//! per-job reads that need a recursive CTE (which the DSL cannot express)
//! and for the pruning `DELETE` (whose selection is shared; only the way it
//! hands its ids to the `DELETE` differs per backend), and a hand-written
//! query type for the finishing `UPDATE`, which runs once per run and must
//! stay a cached prepared statement (see `FinishQuery`).
//!
//! Timestamps cross this boundary as `DateTime<Utc>` and are stored as UTC
//! `NaiveDateTime`: `scheduled_for` truncated to whole seconds (it is part of
//! the slot key), the others to microseconds (what PostgreSQL keeps), so a
//! value reads back identically from either backend. This file decides
//! nothing about when a run happens or what its outcome means; the runner
//! does.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use diesel::backend::Backend as DieselBackend;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::{BigInt, HasSqlType, Nullable, Text, Timestamp};
use diesel::{
    AsChangeset, ExpressionMethods, Insertable, OptionalExtension, QueryDsl, Queryable,
    QueryableByName, Selectable, SelectableHelper,
};
use serde::Serialize;

use super::schema::job_runs;
use super::{micros, with_conn, Db, DbError};

/// What [`Db::claim_run_exclusive`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExclusiveClaim {
    /// Inserted: this caller runs the slot; the row has this id.
    Won(i64),
    /// Someone else already holds the slot.
    Taken,
    /// A run of the job is going on this other worker.
    Busy(String),
}

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

/// A run marked `abandoned`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbandonedRun {
    pub id: i64,
    pub job_name: String,
    pub scheduled_for: DateTime<Utc>,
    pub attempt: i32,
    /// The worker that had it.
    pub worker_id: String,
}

/// Written into `error` by [`Db::abandon_running`].
const ABANDONED: &str = "abandoned: the worker stopped before the run finished";

/// A value in the database that no variant matches (a newer binary's
/// status, or a hand-edited row).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}")]
pub struct UnknownValue {
    // Set by `text_enum!`, which other table families use too.
    pub(super) what: &'static str,
    pub(super) value: String,
}

/// A closed set of strings stored in a TEXT column with a CHECK constraint:
/// the enum, its text form, parsing, and the Diesel mapping for any backend.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, AsExpression, FromSqlRow)]
        #[diesel(sql_type = Text)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownValue { what: $what, value: s.to_owned() }),
                }
            }
        }

        impl<DB: DieselBackend> ToSql<Text, DB> for $name
        where
            str: ToSql<Text, DB>,
        {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
                self.as_str().to_sql(out)
            }
        }

        impl<DB: DieselBackend> FromSql<Text, DB> for $name
        where
            String: FromSql<Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
                Ok(String::from_sql(bytes)?.parse()?)
            }
        }
    };
}

pub(super) use text_enum;

text_enum! {
    /// Why a run happened.
    Trigger, "trigger" {
        /// Its slot came due.
        Schedule = "schedule",
        /// Its slot passed while the worker was down or busy; run late.
        CatchUp = "catch_up",
        /// An operator asked for it (`ops-worker run-job`).
        Manual = "manual",
        /// An earlier attempt of the same slot failed.
        Retry = "retry",
    }
}

text_enum! {
    /// Where a run stands. Only `Running` is unfinished.
    RunStatus, "run status" {
        Running = "running",
        Success = "success",
        Failed = "failed",
        Timeout = "timeout",
        Panicked = "panicked",
        /// The worker was shutting down and stopped it.
        Interrupted = "interrupted",
        /// The slot was deliberately not run (overlap or catch-up policy).
        Skipped = "skipped",
        /// Found still `running` after its worker had stopped.
        Abandoned = "abandoned",
    }
}

/// A run about to start (or, with a [`Finish`], one already over).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRun {
    pub job_name: String,
    pub kind: String,
    /// Stored truncated to whole seconds.
    pub scheduled_for: DateTime<Utc>,
    pub trigger: Trigger,
    pub attempt: i32,
    pub worker_id: String,
    /// Stored truncated to microseconds.
    pub started_at: DateTime<Utc>,
    /// Slots before this one that were not run.
    pub missed: i32,
    /// The slot's `jitter` delay in ms (scheduled and catch-up runs of a
    /// job with `jitter`), else `None`.
    pub jitter_ms: Option<i64>,
}

/// How a run ended. `status` must not be `Running` (the table rejects it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finish {
    pub status: RunStatus,
    /// Stored truncated to microseconds.
    pub finished_at: DateTime<Utc>,
    pub error: Option<String>,
    pub output: Option<String>,
    pub duration_ms: i64,
}

/// One row of `job_runs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunRecord {
    pub id: i64,
    pub job_name: String,
    pub kind: String,
    pub scheduled_for: DateTime<Utc>,
    pub trigger: Trigger,
    pub attempt: i32,
    pub worker_id: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub status: RunStatus,
    pub error: Option<String>,
    pub output: Option<String>,
    pub duration_ms: Option<i64>,
    pub missed: i32,
    pub jitter_ms: Option<i64>,
}

/// A job's latest state, for `ops-worker status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobSummary {
    pub job_name: String,
    /// Status of the newest run (by `scheduled_for`, then id); `None` only
    /// for summaries a caller builds for jobs that never ran.
    pub last_status: Option<RunStatus>,
    pub last_scheduled_for: Option<DateTime<Utc>>,
    pub last_finished_at: Option<DateTime<Utc>>,
    /// `finished_at` of the newest successful run.
    pub last_success_at: Option<DateTime<Utc>>,
}

fn whole_seconds(t: DateTime<Utc>) -> NaiveDateTime {
    t.naive_utc().trunc_subsecs(0)
}

/// `treat_none_as_default_value = false`: a `None` is bound as NULL (what the
/// nullable columns default to anyway) instead of written as `DEFAULT`, which
/// Diesel does not cache, so the claim, run once per run, stays a prepared
/// statement instead of being parsed and planned again each time.
#[derive(Insertable)]
#[diesel(table_name = job_runs, treat_none_as_default_value = false)]
struct NewRow<'a> {
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
    duration_ms: Option<i64>,
    missed: i32,
    jitter_ms: Option<i64>,
}

impl<'a> NewRow<'a> {
    fn new(run: &'a NewRun, finish: Option<&'a Finish>) -> Self {
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
/// index `job_runs_running` (job, worker; unfinished rows only). SQLite needs the `WHERE` that an upsert
/// after `INSERT ... SELECT` requires anyway.
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
            "INSERT INTO job_runs (job_name, kind, scheduled_for, \"trigger\", attempt, worker_id, started_at, status, missed, jitter_ms) SELECT ",
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
        out.push_sql(" WHERE NOT EXISTS (SELECT 1 FROM job_runs WHERE job_name = ");
        out.push_bind_param::<Text, _>(r.job_name)?;
        out.push_sql(" AND finished_at IS NULL AND worker_id <> ");
        out.push_bind_param::<Text, _>(r.worker_id)?;
        out.push_sql(") ON CONFLICT (job_name, scheduled_for, attempt) DO NOTHING RETURNING id");
        Ok(())
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = job_runs)]
struct Row {
    id: i64,
    job_name: String,
    kind: String,
    scheduled_for: NaiveDateTime,
    trigger: Trigger,
    attempt: i32,
    worker_id: String,
    started_at: NaiveDateTime,
    finished_at: Option<NaiveDateTime>,
    status: RunStatus,
    error: Option<String>,
    output: Option<String>,
    duration_ms: Option<i64>,
    missed: i32,
    jitter_ms: Option<i64>,
}

impl From<Row> for RunRecord {
    fn from(r: Row) -> Self {
        RunRecord {
            id: r.id,
            job_name: r.job_name,
            kind: r.kind,
            scheduled_for: r.scheduled_for.and_utc(),
            trigger: r.trigger,
            attempt: r.attempt,
            worker_id: r.worker_id,
            started_at: r.started_at.and_utc(),
            finished_at: r.finished_at.map(|t| t.and_utc()),
            status: r.status,
            error: r.error,
            output: r.output,
            duration_ms: r.duration_ms,
            missed: r.missed,
            jitter_ms: r.jitter_ms,
        }
    }
}

#[derive(QueryableByName)]
struct SummaryRow {
    #[diesel(sql_type = Text)]
    job_name: String,
    #[diesel(sql_type = Text)]
    status: RunStatus,
    #[diesel(sql_type = Timestamp)]
    scheduled_for: NaiveDateTime,
    #[diesel(sql_type = Nullable<Timestamp>)]
    finished_at: Option<NaiveDateTime>,
    #[diesel(sql_type = Nullable<Timestamp>)]
    last_success_at: Option<NaiveDateTime>,
}

/// The distinct job names, found by hopping along the `(job_name, ...)`
/// indexes ("loose index scan"): one probe per job instead of a pass over
/// the whole history. Portable: both backends run `WITH RECURSIVE`. The last
/// row is NULL, so users filter `job_name IS NOT NULL`.
macro_rules! jobs_cte {
    () => {
        "\
WITH RECURSIVE jobs (job_name) AS (
    SELECT MIN(job_name) FROM job_runs
    UNION ALL
    SELECT (SELECT r.job_name FROM job_runs r
            WHERE r.job_name > jobs.job_name
            ORDER BY r.job_name LIMIT 1)
    FROM jobs
    WHERE jobs.job_name IS NOT NULL
)"
    };
}

/// Per job, the newest slot run by the schedule or catch-up: one probe of
/// `job_runs_job_newest` per job, which stops at the first such row.
const LAST_SLOTS_SQL: &str = concat!(
    jobs_cte!(),
    "
SELECT jobs.job_name,
       (SELECT r.scheduled_for FROM job_runs r
        WHERE r.job_name = jobs.job_name AND r.\"trigger\" IN ('schedule', 'catch_up')
        ORDER BY r.scheduled_for DESC LIMIT 1) AS last_slot
FROM jobs
WHERE jobs.job_name IS NOT NULL"
);

/// Per job, its newest run and its newest success, in one statement: one
/// probe of `job_runs_job_newest` and one of the partial
/// `job_runs_job_last_success` per job. 'success' is a literal so
/// PostgreSQL can match that partial index.
const JOB_SUMMARIES_SQL: &str = concat!(
    jobs_cte!(),
    ",
latest (job_name, latest_id, last_success_at) AS (
    SELECT jobs.job_name,
           (SELECT r.id FROM job_runs r
            WHERE r.job_name = jobs.job_name
            ORDER BY r.scheduled_for DESC, r.id DESC LIMIT 1),
           (SELECT r.finished_at FROM job_runs r
            WHERE r.job_name = jobs.job_name AND r.status = 'success'
            ORDER BY r.scheduled_for DESC, r.id DESC LIMIT 1)
    FROM jobs
    WHERE jobs.job_name IS NOT NULL
)
SELECT latest.job_name, r.status, r.scheduled_for, r.finished_at, latest.last_success_at
FROM latest
JOIN job_runs r ON r.id = latest.latest_id"
);

/// The statuses of a run that ended without success, of which
/// [`Db::prune_runs`] keeps each job's newest row. Literal SQL, the same list
/// as the predicate of the partial index `job_runs_job_last_failure`
/// (migrations/*/2026-11-26-100000_job_last_failure), which a query must
/// repeat word for word for either backend to use that index.
macro_rules! failure_statuses {
    () => {
        "'failed', 'timeout', 'panicked', 'interrupted', 'abandoned'"
    };
}

/// The ids [`Db::prune_runs`] deletes in one call, oldest first. `$1` job,
/// `$2` the age cutoff, `$3` keep_last (NULL: none), `$4` the batch size;
/// they first appear in that order, which is how SQLite, reading `$N` as a
/// name, numbers them.
///
/// A row goes when it comes at or before a boundary in the order
/// (`scheduled_for`, `id`): the later of (cutoff, 0), which takes exactly
/// the rows older than the cutoff (ids start at 1), and the (keep_last + 1)-th
/// newest row. One range of `job_runs_job_newest`, read from the old end, so
/// a call costs about what it deletes however long the history. Unfinished
/// rows, the newest success (partial index `job_runs_job_last_success`) and
/// the newest failure (`job_runs_job_last_failure`) are never among them;
/// `COALESCE(.., 0)` because `id <> NULL` would match nothing.
macro_rules! prunable_runs_sql {
    () => {
        concat!(
            "\
SELECT r.id FROM job_runs r
WHERE r.job_name = $1
  AND r.finished_at IS NOT NULL
  AND (r.scheduled_for, r.id) <= (
      SELECT b.s, b.i FROM (
          SELECT $2 AS s, 0 AS i
          UNION ALL
          SELECT * FROM (SELECT n.scheduled_for, n.id FROM job_runs n
                         WHERE n.job_name = $1 AND $3 IS NOT NULL
                         ORDER BY n.scheduled_for DESC, n.id DESC
                         LIMIT 1 OFFSET COALESCE($3, 0)) nth
      ) b
      ORDER BY b.s DESC, b.i DESC LIMIT 1)
  AND r.id <> COALESCE((SELECT s.id FROM job_runs s
                        WHERE s.job_name = $1 AND s.status = 'success'
                        ORDER BY s.scheduled_for DESC, s.id DESC LIMIT 1), 0)
  AND r.id <> COALESCE((SELECT f.id FROM job_runs f
                        WHERE f.job_name = $1 AND f.status IN (",
            failure_statuses!(),
            ")
                        ORDER BY f.scheduled_for DESC, f.id DESC LIMIT 1), 0)
ORDER BY r.scheduled_for, r.id
LIMIT $4"
        )
    };
}

/// PostgreSQL: `= ANY(ARRAY(..))` makes the ids a value computed first and
/// then looked up in the primary key. With `IN (..)` the cached generic plan
/// (the batch size unknown) hash-joined the ids against a scan of the whole
/// table: 300 ms a batch at 600,000 rows instead of 3 ms.
const PRUNE_RUNS_PG_SQL: &str = concat!(
    "DELETE FROM job_runs WHERE id = ANY(ARRAY(",
    prunable_runs_sql!(),
    "))"
);

/// SQLite looks each id of the `IN` list up by rowid.
const PRUNE_RUNS_SQLITE_SQL: &str = concat!(
    "DELETE FROM job_runs WHERE id IN (",
    prunable_runs_sql!(),
    ")"
);

/// Every job name in `job_runs`.
const JOB_NAMES_SQL: &str = concat!(
    jobs_cte!(),
    "
SELECT job_name FROM jobs WHERE job_name IS NOT NULL"
);

#[derive(QueryableByName)]
struct LastSlotRow {
    #[diesel(sql_type = Text)]
    job_name: String,
    #[diesel(sql_type = Nullable<Timestamp>)]
    last_slot: Option<NaiveDateTime>,
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

    /// [`Db::claim_run`] for a job whose runs must not overlap: the row is
    /// inserted only if no other worker has a run of the job going, checked
    /// in the same statement.
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
        use diesel_async::RunQueryDsl;
        let row = NewRow::new(run, Some(f));
        let inserted = with_conn!(self, |conn| {
            diesel::insert_into(job_runs::table)
                .values(&row)
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
        use super::schema::workers;
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

    /// The latest `scheduled_for` per job among runs triggered by the
    /// schedule or by catch-up (any status): the anchor of each job's slot
    /// grid. Manual runs and retries do not move it. One statement.
    pub async fn last_slots(&self) -> Result<HashMap<String, DateTime<Utc>>, DbError> {
        use diesel_async::RunQueryDsl;
        let rows: Vec<LastSlotRow> = with_conn!(self, |conn| {
            diesel::sql_query(LAST_SLOTS_SQL).load(conn).await?
        });
        Ok(rows
            .into_iter()
            .filter_map(|r| Some((r.job_name, r.last_slot?.and_utc())))
            .collect())
    }

    /// Per job that has runs, sorted by name: its newest run (by
    /// `scheduled_for`, then id) and the `finished_at` of its newest success.
    /// One statement.
    pub async fn job_summaries(&self) -> Result<Vec<JobSummary>, DbError> {
        use diesel_async::RunQueryDsl;
        let rows: Vec<SummaryRow> = with_conn!(self, |conn| {
            diesel::sql_query(JOB_SUMMARIES_SQL).load(conn).await?
        });
        let mut summaries: Vec<JobSummary> = rows
            .into_iter()
            .map(|r| JobSummary {
                job_name: r.job_name,
                last_status: Some(r.status),
                last_scheduled_for: Some(r.scheduled_for.and_utc()),
                last_finished_at: r.finished_at.map(|t| t.and_utc()),
                last_success_at: r.last_success_at.map(|t| t.and_utc()),
            })
            .collect();
        // In Rust, not SQL: PostgreSQL would sort by its locale's collation,
        // SQLite bytewise, and the two backends should agree.
        summaries.sort_by(|a, b| a.job_name.cmp(&b.job_name));
        Ok(summaries)
    }

    /// Deletes at most `batch` (at least 1) of `job`'s rows that are due to
    /// go, oldest first (by slot), and returns how many it deleted: rows whose slot is
    /// before `older_than`, and rows beyond the job's newest `keep_last`
    /// (every row counts, running and skipped ones too). Never deleted: the
    /// job's unfinished rows, its newest `success` and its newest row that
    /// ended without success (`failed`, `timeout`, `panicked`,
    /// `interrupted` or `abandoned`), newest by `scheduled_for`, then id.
    ///
    /// One statement, so it holds its locks briefly and is safe to run from
    /// several workers at once: a row another worker deleted first is simply
    /// not counted. Call it until it returns less than `batch`.
    pub async fn prune_runs(
        &self,
        job: &str,
        older_than: DateTime<Utc>,
        keep_last: Option<u32>,
        batch: i64,
    ) -> Result<u64, DbError> {
        use diesel_async::RunQueryDsl;
        let sql = match self.backend() {
            super::Backend::Postgres => PRUNE_RUNS_PG_SQL,
            super::Backend::Sqlite => PRUNE_RUNS_SQLITE_SQL,
        };
        let deleted = with_conn!(self, |conn| {
            diesel::sql_query(sql)
                .bind::<Text, _>(job)
                .bind::<Timestamp, _>(micros(older_than))
                .bind::<Nullable<BigInt>, _>(keep_last.map(i64::from))
                .bind::<BigInt, _>(batch.max(1))
                .execute(conn)
                .await?
        });
        Ok(deleted as u64)
    }

    /// The name of every job with rows in `job_runs`, sorted. One index
    /// probe per job.
    pub async fn run_job_names(&self) -> Result<Vec<String>, DbError> {
        use diesel_async::RunQueryDsl;
        #[derive(QueryableByName)]
        struct Name {
            #[diesel(sql_type = Text)]
            job_name: String,
        }
        let rows: Vec<Name> = with_conn!(self, |conn| {
            diesel::sql_query(JOB_NAMES_SQL).load(conn).await?
        });
        let mut names: Vec<String> = rows.into_iter().map(|r| r.job_name).collect();
        // In Rust, as in `job_summaries`: the backends collate differently.
        names.sort();
        Ok(names)
    }

    /// Runs newest first (`scheduled_for` DESC, then id DESC), of one job or
    /// all, at most `limit` (a negative limit counts as 0).
    pub async fn history(&self, job: Option<&str>, limit: i64) -> Result<Vec<RunRecord>, DbError> {
        use diesel_async::RunQueryDsl;
        let limit = limit.max(0);
        let rows: Vec<Row> = with_conn!(self, |conn| {
            let mut query = job_runs::table
                .select(Row::as_select())
                .order((job_runs::scheduled_for.desc(), job_runs::id.desc()))
                .limit(limit)
                .into_boxed();
            if let Some(job) = job {
                query = query.filter(job_runs::job_name.eq(job));
            }
            query.load(conn).await?
        });
        Ok(rows.into_iter().map(RunRecord::from).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_round_trip() {
        for t in Trigger::ALL {
            assert_eq!(t.as_str().parse::<Trigger>().unwrap(), *t);
            assert_eq!(t.to_string(), t.as_str());
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        for s in RunStatus::ALL {
            assert_eq!(s.as_str().parse::<RunStatus>().unwrap(), *s);
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(Trigger::CatchUp.as_str(), "catch_up");
        assert_eq!(
            "bogus".parse::<RunStatus>().unwrap_err().to_string(),
            "unknown run status \"bogus\""
        );
    }

    #[test]
    fn failures_are_the_finished_statuses_but_success_and_skipped() {
        let listed: Vec<&str> = failure_statuses!()
            .split(", ")
            .map(|s| s.trim_matches('\''))
            .collect();
        let finished_unsuccessfully: Vec<&str> = RunStatus::ALL
            .iter()
            .filter(|s| {
                !matches!(
                    s,
                    RunStatus::Running | RunStatus::Success | RunStatus::Skipped
                )
            })
            .map(|s| s.as_str())
            .collect();
        assert_eq!(listed, finished_unsuccessfully);
        // The partial index is used only for the very same predicate.
        let predicate = concat!("WHERE status IN (", failure_statuses!(), ")");
        for migration in [
            include_str!("../../migrations/postgres/2026-11-26-100000_job_last_failure/up.sql"),
            include_str!("../../migrations/sqlite/2026-11-26-100000_job_last_failure/up.sql"),
        ] {
            assert!(migration.contains(predicate), "{migration}");
        }
    }

    #[test]
    fn truncation() {
        let t = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.123456789Z")
            .unwrap()
            .to_utc();
        assert_eq!(whole_seconds(t).to_string(), "2026-01-02 03:04:05");
        assert_eq!(micros(t).to_string(), "2026-01-02 03:04:05.123456");
    }
}
