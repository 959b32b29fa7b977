//! The reads of `job_runs` the scheduler and the CLI need: each job's last
//! slot (the anchor of its grid), its latest state, the job names, and the
//! history. The per-job reads hop along the job indexes with a recursive
//! CTE, which the DSL cannot express, so they are portable SQL text.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::sql_types::{Nullable, Text, Timestamp};
use diesel::{
    ExpressionMethods, QueryDsl, Queryable, QueryableByName, Selectable, SelectableHelper,
};

use super::{JobSummary, RunRecord, RunStatus, Trigger};
use crate::db::schema::job_runs;
use crate::db::{with_conn, Db, DbError};

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
    #[diesel(sql_type = Nullable<Timestamp>)]
    last_slot: Option<NaiveDateTime>,
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

/// Per job, its newest run (by `scheduled_for`, then id), the `finished_at`
/// of its newest success and its newest slot run by the schedule or
/// catch-up, in one statement. The recursive part hops from job to job along
/// `job_runs_job_newest` (a "loose index scan" that lands on each job's
/// newest row, one probe per job) carrying that row's id. The newest run is
/// most often a scheduled success, which then is the other two answers too;
/// only otherwise a `CASE` probes `job_runs_job_status` or
/// `job_runs_job_newest` once more. 'success' is a literal so PostgreSQL can
/// plan for it. At 1,000 jobs and 1,000,000 rows this is a third of the time
/// of one probe per job per answer (docs/performance.md, "API").
const JOB_SUMMARIES_SQL: &str = "\
WITH RECURSIVE latest (id) AS (
    SELECT (SELECT r.id FROM job_runs r
            ORDER BY r.job_name, r.scheduled_for DESC, r.id DESC LIMIT 1)
    UNION ALL
    SELECT (SELECT r.id FROM job_runs r
            WHERE r.job_name > (SELECT p.job_name FROM job_runs p WHERE p.id = latest.id)
            ORDER BY r.job_name, r.scheduled_for DESC, r.id DESC LIMIT 1)
    FROM latest
    WHERE latest.id IS NOT NULL
)
SELECT r.job_name, r.status, r.scheduled_for, r.finished_at,
       CASE WHEN r.status = 'success' THEN r.finished_at
            ELSE (SELECT s.finished_at FROM job_runs s
                  WHERE s.job_name = r.job_name AND s.status = 'success'
                  ORDER BY s.scheduled_for DESC, s.id DESC LIMIT 1)
       END AS last_success_at,
       CASE WHEN r.\"trigger\" IN ('schedule', 'catch_up', 'push') THEN r.scheduled_for
            ELSE (SELECT t.scheduled_for FROM job_runs t
                  WHERE t.job_name = r.job_name AND t.\"trigger\" IN ('schedule', 'catch_up', 'push')
                  ORDER BY t.scheduled_for DESC, t.id DESC LIMIT 1)
       END AS last_slot
FROM latest
JOIN job_runs r ON r.id = latest.id";

/// Every job name in `job_runs`.
const JOB_NAMES_SQL: &str = concat!(
    jobs_cte!(),
    "
SELECT job_name FROM jobs WHERE job_name IS NOT NULL"
);

impl Db {
    /// The latest `scheduled_for` per job among runs triggered by the
    /// schedule, by catch-up or by a push signal (any status): the anchor of
    /// each job's slot grid. Manual runs and retries do not move it. One statement (that of
    /// [`Db::job_summaries`]).
    pub async fn last_slots(&self) -> Result<HashMap<String, DateTime<Utc>>, DbError> {
        Ok(self
            .job_summaries()
            .await?
            .into_iter()
            .filter_map(|s| Some((s.job_name, s.last_slot?)))
            .collect())
    }

    /// Per job that has runs, sorted by name: its newest run (by
    /// `scheduled_for`, then id), the `finished_at` of its newest success
    /// and its newest slot run by the schedule or catch-up. One statement.
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
                last_slot: r.last_slot.map(|t| t.and_utc()),
            })
            .collect();
        // In Rust, not SQL: PostgreSQL would sort by its locale's collation,
        // SQLite bytewise, and the two backends should agree.
        summaries.sort_by(|a, b| a.job_name.cmp(&b.job_name));
        Ok(summaries)
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

    /// One page of a job's runs, newest first (`scheduled_for` DESC, then
    /// id DESC): those with `status` (any when `None`), scheduled in
    /// `[since, until)`, and strictly after the `after` cursor (the
    /// `(scheduled_for, id)` of the previous page's last run). One range
    /// scan of `job_runs_job_newest`, or of `job_runs_job_status` with a
    /// status.
    pub async fn runs_page(&self, q: &RunsQuery<'_>) -> Result<Vec<RunRecord>, DbError> {
        use diesel::BoolExpressionMethods;
        use diesel_async::RunQueryDsl;
        let limit = q.limit.max(0);
        let rows: Vec<Row> = with_conn!(self, |conn| {
            let mut query = job_runs::table
                .select(Row::as_select())
                .filter(job_runs::job_name.eq(q.job))
                .order((job_runs::scheduled_for.desc(), job_runs::id.desc()))
                .limit(limit)
                .into_boxed();
            if let Some(status) = q.status {
                query = query.filter(job_runs::status.eq(status));
            }
            if let Some(since) = q.since {
                query = query.filter(job_runs::scheduled_for.ge(since.naive_utc()));
            }
            if let Some(until) = q.until {
                query = query.filter(job_runs::scheduled_for.lt(until.naive_utc()));
            }
            if let Some((at, id)) = q.after {
                let at = at.naive_utc();
                // `<= at` is implied by the `OR`, but only a bound of its
                // own starts the index scan at the cursor: with the `OR`
                // alone a deep page read every newer row of the job first
                // (53 ms 100,000 rows down, docs/performance.md).
                query = query.filter(job_runs::scheduled_for.le(at)).filter(
                    job_runs::scheduled_for
                        .lt(at)
                        .or(job_runs::scheduled_for.eq(at).and(job_runs::id.lt(id))),
                );
            }
            query.load(conn).await?
        });
        Ok(rows.into_iter().map(RunRecord::from).collect())
    }

    /// The run with this id.
    pub async fn run(&self, id: i64) -> Result<Option<RunRecord>, DbError> {
        use diesel::OptionalExtension;
        use diesel_async::RunQueryDsl;
        let row: Option<Row> = with_conn!(self, |conn| {
            job_runs::table
                .select(Row::as_select())
                .filter(job_runs::id.eq(id))
                .first(conn)
                .await
                .optional()?
        });
        Ok(row.map(RunRecord::from))
    }
}

/// What [`Db::runs_page`] selects.
#[derive(Debug, Clone, Copy)]
pub struct RunsQuery<'a> {
    pub job: &'a str,
    pub status: Option<RunStatus>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// The `(scheduled_for, id)` of the last run of the previous page.
    pub after: Option<(DateTime<Utc>, i64)>,
    pub limit: i64,
}
