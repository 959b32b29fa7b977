//! The `job_runs` reads and writes of a `push` job's signals (trigger
//! `push`): its open start, a run recorded finished with no start (so no
//! duration), and the starts past their timeout. Opening a slot's row is the
//! ordinary claim (`claim_run`), finishing one the ordinary `finish_run`:
//! the slot claim's unique key makes two signals for one slot one run,
//! whichever process receives them.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl};

use super::lifecycle::NewRow;
use super::{Finish, NewRun, RunStatus, Trigger};
use crate::db::schema::job_runs;
use crate::db::{micros, with_conn, Db, DbError};

/// A push job's row opened by a start signal and not finished yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenPush {
    pub id: i64,
    pub scheduled_for: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
}

impl Db {
    /// The newest unfinished push row of `job` (by slot), started at or
    /// before `started_before` if given. Reads the small partial index of
    /// unfinished rows.
    pub async fn open_push_runs(
        &self,
        job: &str,
        started_before: Option<DateTime<Utc>>,
        limit: i64,
    ) -> Result<Vec<OpenPush>, DbError> {
        use diesel_async::RunQueryDsl;
        let cutoff = started_before.map(micros);
        let rows: Vec<(i64, NaiveDateTime, NaiveDateTime)> = with_conn!(self, |conn| {
            let mut q = job_runs::table
                .filter(job_runs::job_name.eq(job))
                .filter(job_runs::finished_at.is_null())
                .filter(job_runs::trigger.eq(Trigger::Push))
                .select((job_runs::id, job_runs::scheduled_for, job_runs::started_at))
                .order((job_runs::scheduled_for.desc(), job_runs::id.desc()))
                .limit(limit)
                .into_boxed();
            if let Some(c) = cutoff {
                q = q.filter(job_runs::started_at.le(c));
            }
            q.load(conn).await?
        });
        Ok(rows
            .into_iter()
            .map(|(id, slot, started)| OpenPush {
                id,
                scheduled_for: slot.and_utc(),
                started_at: started.and_utc(),
            })
            .collect())
    }

    /// Inserts a push run that is already finished and had no start, so no
    /// duration (`finish.duration_ms` is ignored). `false` if its slot
    /// already has a row: a second signal for the slot, from anywhere.
    pub async fn insert_unstarted_push_run(
        &self,
        run: &NewRun,
        finish: &Finish,
    ) -> Result<bool, DbError> {
        debug_assert!(run.trigger == Trigger::Push && finish.status != RunStatus::Running);
        let mut row = NewRow::new(run, Some(finish));
        row.duration_ms = None;
        self.insert_unless_taken(&row).await
    }

    /// The newest row of `job` for `slot` (any trigger, any attempt).
    pub async fn run_of_slot(
        &self,
        job: &str,
        slot: DateTime<Utc>,
    ) -> Result<Option<(i64, RunStatus)>, DbError> {
        use diesel_async::RunQueryDsl;
        let slot = super::whole_seconds(slot);
        let row = with_conn!(self, |conn| {
            job_runs::table
                .filter(job_runs::job_name.eq(job))
                .filter(job_runs::scheduled_for.eq(slot))
                .select((job_runs::id, job_runs::status))
                .order(job_runs::id.desc())
                .first::<(i64, RunStatus)>(conn)
                .await
                .optional()?
        });
        Ok(row)
    }
}
