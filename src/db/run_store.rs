//! The jobs crate's [`RunStore`]: what jobs may read about other jobs' runs
//! (the `alerts` kind watching for failures and missed slots).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::{ExpressionMethods, QueryDsl};
use ops_worker_jobs::store::{FinishedRun, RunStore, StoreError};

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

#[async_trait]
impl RunStore for Db {
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
