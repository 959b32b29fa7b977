//! `job_pauses`: one row per paused (or once paused) job. Written by
//! `ops-worker pause` and `resume`, read by every daemon with each heartbeat
//! (`src/heartbeat.rs`) and by `ops-worker list`. What a pause does to a
//! slot is the runner's and the scheduler's business, not this file's.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::upsert::excluded;
use diesel::{
    BoolExpressionMethods, ExpressionMethods, Insertable, QueryDsl, Queryable, Selectable,
    SelectableHelper,
};
use serde::Serialize;

use super::schema::job_pauses;
use super::{micros, with_conn, Db, DbError};

/// A job's pause: its slots in `[paused_at, until)` are not run and do not
/// count as missed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Pause {
    pub job_name: String,
    pub paused_at: DateTime<Utc>,
    /// `None`: until `ops-worker resume`.
    pub until: Option<DateTime<Utc>>,
    pub reason: Option<String>,
    pub paused_by: String,
}

impl Pause {
    /// Whether the instant `t` lies in the pause.
    pub fn covers(&self, t: DateTime<Utc>) -> bool {
        self.paused_at <= t && self.until.is_none_or(|u| t < u)
    }

    /// Whether the pause still holds at `now` (or starts later): not ended
    /// by its `until` or a resume.
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        self.until.is_none_or(|u| now < u)
    }
}

#[derive(Insertable, Queryable, Selectable)]
#[diesel(table_name = job_pauses)]
struct Row {
    job_name: String,
    paused_at: NaiveDateTime,
    until: Option<NaiveDateTime>,
    reason: Option<String>,
    paused_by: String,
}

impl From<Row> for Pause {
    fn from(r: Row) -> Self {
        Pause {
            job_name: r.job_name,
            paused_at: r.paused_at.and_utc(),
            until: r.until.map(|t| t.and_utc()),
            reason: r.reason,
            paused_by: r.paused_by,
        }
    }
}

impl Db {
    /// Pauses `job` from `at` until `until` (`None`: until resumed). A job
    /// has one pause at most: this one replaces any earlier one, except
    /// that a pause still holding at `at` keeps its `paused_at` (the job has
    /// been paused since then, and those slots must stay not missed).
    pub async fn pause(
        &self,
        job: &str,
        at: DateTime<Utc>,
        until: Option<DateTime<Utc>>,
        reason: Option<&str>,
        by: &str,
    ) -> Result<(), DbError> {
        use diesel_async::RunQueryDsl;
        let row = Row {
            job_name: job.to_string(),
            paused_at: micros(at),
            until: until.map(micros),
            reason: reason.map(str::to_string),
            paused_by: by.to_string(),
        };
        let extended = with_conn!(self, |conn| {
            diesel::update(
                job_pauses::table
                    .filter(job_pauses::job_name.eq(job))
                    .filter(job_pauses::paused_at.le(row.paused_at))
                    .filter(
                        job_pauses::until
                            .is_null()
                            .or(job_pauses::until.gt(row.paused_at)),
                    ),
            )
            .set((
                job_pauses::until.eq(row.until),
                job_pauses::reason.eq(&row.reason),
                job_pauses::paused_by.eq(&row.paused_by),
            ))
            .execute(conn)
            .await?
        });
        if extended == 1 {
            return Ok(());
        }
        with_conn!(self, |conn| {
            diesel::insert_into(job_pauses::table)
                .values(&row)
                .on_conflict(job_pauses::job_name)
                .do_update()
                .set((
                    job_pauses::paused_at.eq(excluded(job_pauses::paused_at)),
                    job_pauses::until.eq(excluded(job_pauses::until)),
                    job_pauses::reason.eq(excluded(job_pauses::reason)),
                    job_pauses::paused_by.eq(excluded(job_pauses::paused_by)),
                ))
                .execute(conn)
                .await?
        });
        Ok(())
    }

    /// Ends `job`'s pause at `at`. The row stays, with `until = at`, so the
    /// slots it covered are still known not to be missed (a daemon started
    /// later must not catch them up). False when the job had no pause that
    /// still held at `at`.
    pub async fn resume(&self, job: &str, at: DateTime<Utc>) -> Result<bool, DbError> {
        use diesel_async::RunQueryDsl;
        let at = micros(at);
        let n = with_conn!(self, |conn| {
            diesel::update(
                job_pauses::table
                    .filter(job_pauses::job_name.eq(job))
                    .filter(job_pauses::until.is_null().or(job_pauses::until.gt(at))),
            )
            .set(job_pauses::until.eq(at))
            .execute(conn)
            .await?
        });
        Ok(n == 1)
    }

    /// Every job's pause, ended ones included (callers judge with
    /// [`Pause::active`] and [`Pause::covers`]), by job name.
    pub async fn pauses(&self) -> Result<Vec<Pause>, DbError> {
        use diesel_async::RunQueryDsl;
        let rows: Vec<Row> = with_conn!(self, |conn| {
            job_pauses::table
                .order(job_pauses::job_name)
                .select(Row::as_select())
                .load(conn)
                .await?
        });
        Ok(rows.into_iter().map(Pause::from).collect())
    }
}
