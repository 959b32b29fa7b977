//! The jobs crate's [`RunStore`]: what jobs may read about other jobs' runs
//! (the `alerts` kind watching for failures and missed slots).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::{ExpressionMethods, QueryDsl};
use ops_worker_jobs::store::{FinishedRun, JobFigures, RunFact, RunStore, StoreError};

use super::schema::job_runs;
use super::{store_error, with_conn, Db, DbError};

impl Db {
    async fn finished_runs(&self, job: &str, limit: i64) -> Result<Vec<FinishedRun>, DbError> {
        use diesel_async::RunQueryDsl;
        type Row = (NaiveDateTime, String, Option<String>, Option<NaiveDateTime>);
        let rows: Vec<Row> = with_conn!(self, |conn| {
            job_runs::table
                .filter(job_runs::job_name.eq(job))
                .filter(job_runs::finished_at.is_not_null())
                .filter(job_runs::status.ne("skipped"))
                .order((job_runs::scheduled_for.desc(), job_runs::id.desc()))
                .limit(limit)
                .select((
                    job_runs::scheduled_for,
                    job_runs::status,
                    job_runs::error,
                    job_runs::finished_at,
                ))
                .load(conn)
                .await?
        });
        Ok(rows
            .into_iter()
            .filter_map(|(slot, status, error, finished)| {
                Some(FinishedRun {
                    scheduled_for: slot.and_utc(),
                    status,
                    error,
                    finished_at: finished?.and_utc(),
                })
            })
            .collect())
    }
}

/// Per job and status over a window: counts, durations of runs that ran,
/// lateness of scheduled and caught-up runs (from the slot's jittered
/// start: a jitter is on purpose, not late). Timestamp arithmetic is not
/// portable SQL, so the lateness expression is per backend.
fn figures_sql(lateness_ms: &str) -> String {
    format!(
        "SELECT job_name, status, count(*) AS runs,
                max(CASE WHEN status <> 'skipped' THEN duration_ms END) AS duration_max,
                CAST(sum(CASE WHEN status <> 'skipped' THEN duration_ms END) AS BIGINT) AS duration_sum,
                count(CASE WHEN status <> 'skipped' THEN duration_ms END) AS duration_count,
                max(CASE WHEN status <> 'skipped' AND \"trigger\" IN ('schedule', 'catch_up')
                         THEN {lateness_ms} - COALESCE(jitter_ms, 0) END) AS lateness_max
         FROM job_runs
         WHERE scheduled_for >= $1
         GROUP BY job_name, status
         ORDER BY job_name, status"
    )
}

const PG_LATENESS_MS: &str =
    "CAST(round(EXTRACT(EPOCH FROM (started_at - scheduled_for)) * 1000) AS BIGINT)";
const SQLITE_LATENESS_MS: &str =
    "CAST(round((julianday(started_at) - julianday(scheduled_for)) * 86400000) AS BIGINT)";

#[derive(diesel::QueryableByName)]
struct FiguresRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    job_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    status: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    runs: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    duration_max: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    duration_sum: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    duration_count: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    lateness_max: Option<i64>,
}

impl Db {
    async fn figures(&self, since: DateTime<Utc>) -> Result<Vec<JobFigures>, DbError> {
        use diesel_async::RunQueryDsl;
        let since = since.naive_utc();
        // SQLite takes `$1` as a numbered parameter too.
        let sql = figures_sql(match self.backend() {
            super::Backend::Postgres => PG_LATENESS_MS,
            super::Backend::Sqlite => SQLITE_LATENESS_MS,
        });
        let rows: Vec<FiguresRow> = with_conn!(self, |conn| {
            diesel::sql_query(&sql)
                .bind::<diesel::sql_types::Timestamp, _>(since)
                .load(conn)
                .await?
        });
        let last_success: HashMap<String, DateTime<Utc>> = self
            .job_summaries()
            .await?
            .into_iter()
            .filter_map(|s| Some((s.job_name, s.last_success_at?)))
            .collect();
        let mut out: Vec<JobFigures> = Vec::new();
        // Per job: the sum and count of durations, for the average.
        let mut durations = (0i64, 0i64);
        for r in rows {
            if out.last().is_none_or(|f| f.job != r.job_name) {
                durations = (0, 0);
                out.push(JobFigures {
                    last_success: last_success.get(&r.job_name).copied(),
                    job: r.job_name.clone(),
                    runs: Vec::new(),
                    duration_ms_max: None,
                    duration_ms_avg: None,
                    lateness_ms_max: None,
                });
            }
            let f = out.last_mut().expect("pushed");
            durations.0 += r.duration_sum.unwrap_or(0);
            durations.1 += r.duration_count;
            f.duration_ms_avg = (durations.1 > 0).then(|| durations.0 as f64 / durations.1 as f64);
            f.duration_ms_max = f.duration_ms_max.max(r.duration_max);
            f.lateness_ms_max = f.lateness_ms_max.max(r.lateness_max);
            f.runs.push((r.status, r.runs));
        }
        Ok(out)
    }
}

impl Db {
    /// Runs with `scheduled_for` in `[start, end)`, oldest first.
    pub(super) async fn runs_in(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<RunFact>, DbError> {
        use diesel_async::RunQueryDsl;
        type Row = (
            String,
            String,
            String,
            i32,
            NaiveDateTime,
            NaiveDateTime,
            Option<i64>,
            i32,
            Option<i64>,
        );
        let (start, end) = (start.naive_utc(), end.naive_utc());
        let rows: Vec<Row> = with_conn!(self, |conn| {
            job_runs::table
                .filter(job_runs::scheduled_for.ge(start))
                .filter(job_runs::scheduled_for.lt(end))
                .order((job_runs::scheduled_for, job_runs::id))
                .select((
                    job_runs::job_name,
                    job_runs::status,
                    job_runs::trigger,
                    job_runs::attempt,
                    job_runs::scheduled_for,
                    job_runs::started_at,
                    job_runs::duration_ms,
                    job_runs::missed,
                    job_runs::jitter_ms,
                ))
                .load(conn)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(job, status, trigger, attempt, slot, started, duration_ms, missed, jitter_ms)| {
                    RunFact {
                        job,
                        status,
                        trigger,
                        attempt,
                        scheduled_for: slot.and_utc(),
                        started_at: started.and_utc(),
                        duration_ms,
                        missed,
                        jitter_ms,
                    }
                },
            )
            .collect())
    }
}

#[async_trait]
impl RunStore for Db {
    async fn job_figures(&self, since: DateTime<Utc>) -> Result<Vec<JobFigures>, StoreError> {
        self.figures(since).await.map_err(store_error)
    }

    async fn last_recorded_slots(&self) -> Result<HashMap<String, DateTime<Utc>>, StoreError> {
        self.last_slots().await.map_err(store_error)
    }

    async fn recent_finished_runs(
        &self,
        job: &str,
        limit: i64,
    ) -> Result<Vec<FinishedRun>, StoreError> {
        self.finished_runs(job, limit).await.map_err(store_error)
    }
}
