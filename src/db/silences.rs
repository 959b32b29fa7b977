//! `silences`: the ad-hoc silences `ops-worker silence add` writes, read by
//! every `alerts` and `escalation` run (through the jobs crate's
//! [`AlertStore::active_silences`]) and by `silence list` and `alerts
//! list`. What a silence does to an alert is `ops_worker_jobs::silence`'s
//! business, not this file's.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::{ExpressionMethods, Insertable, QueryDsl, Queryable, Selectable, SelectableHelper};
use ops_worker_jobs::store::Silence;

use super::schema::silences;
use super::{micros, with_conn, Db, DbError};

#[derive(Queryable, Selectable)]
#[diesel(table_name = silences)]
struct Row {
    id: i64,
    pattern: String,
    starts_at: NaiveDateTime,
    ends_at: NaiveDateTime,
    reason: String,
    created_by: String,
}

#[derive(Insertable)]
#[diesel(table_name = silences)]
struct NewRow<'a> {
    pattern: &'a str,
    starts_at: NaiveDateTime,
    ends_at: NaiveDateTime,
    reason: &'a str,
    created_by: &'a str,
}

impl From<Row> for Silence {
    fn from(r: Row) -> Self {
        Silence {
            id: r.id,
            pattern: r.pattern,
            starts_at: r.starts_at.and_utc(),
            ends_at: r.ends_at.and_utc(),
            reason: r.reason,
            created_by: r.created_by,
        }
    }
}

impl Db {
    /// Stores a silence of the alerts matching `pattern` (a glob the caller
    /// checked with `ops_worker_jobs::silence::check_glob`) over `[from,
    /// until)`; `until` must be after `from`. Returns it with its id.
    pub async fn add_silence(
        &self,
        pattern: &str,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        reason: &str,
        by: &str,
    ) -> Result<Silence, DbError> {
        use diesel_async::RunQueryDsl;
        let row: Row = with_conn!(self, |conn| {
            diesel::insert_into(silences::table)
                .values(NewRow {
                    pattern,
                    starts_at: micros(from),
                    ends_at: micros(until),
                    reason,
                    created_by: by,
                })
                .returning(Row::as_returning())
                .get_result(conn)
                .await?
        });
        Ok(row.into())
    }

    /// The silences active at `at` (`starts_at <= at < ends_at`), by id;
    /// with `all`, every stored one, ended ones too.
    pub async fn silences(&self, at: DateTime<Utc>, all: bool) -> Result<Vec<Silence>, DbError> {
        use diesel_async::RunQueryDsl;
        let at = micros(at);
        let rows: Vec<Row> = with_conn!(self, |conn| {
            let q = silences::table
                .select(Row::as_select())
                .order(silences::id)
                .into_boxed();
            let q = if all {
                q
            } else {
                q.filter(silences::starts_at.le(at))
                    .filter(silences::ends_at.gt(at))
            };
            q.load(conn).await?
        });
        Ok(rows.into_iter().map(Silence::from).collect())
    }

    /// Deletes silence `id`; false when there is none.
    pub async fn remove_silence(&self, id: i64) -> Result<bool, DbError> {
        use diesel_async::RunQueryDsl;
        let n = with_conn!(self, |conn| {
            diesel::delete(silences::table.filter(silences::id.eq(id)))
                .execute(conn)
                .await?
        });
        Ok(n == 1)
    }
}
