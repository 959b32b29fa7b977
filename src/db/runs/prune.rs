//! History retention's `DELETE`: one bounded batch of a job's rows that
//! are due to go, oldest first, never the unfinished ones, the newest
//! success or the newest failure. When and for which jobs is
//! `crate::retention`'s.

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};

use crate::db::{micros, with_conn, Backend, Db, DbError};

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
/// rows, the newest success (`job_runs_job_status`) and
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

impl Db {
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
            Backend::Postgres => PRUNE_RUNS_PG_SQL,
            Backend::Sqlite => PRUNE_RUNS_SQLITE_SQL,
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
}

#[cfg(test)]
mod tests {
    use crate::db::RunStatus;

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
            include_str!("../../../migrations/postgres/2026-11-26-100000_job_last_failure/up.sql"),
            include_str!("../../../migrations/sqlite/2026-11-26-100000_job_last_failure/up.sql"),
        ] {
            assert!(migration.contains(predicate), "{migration}");
        }
    }
}
