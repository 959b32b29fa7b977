//! History retention: the daemon prunes `job_runs` in the background, by
//! each job's `history_retention` and `keep_last`, and the runs of jobs no
//! longer in schedules.toml by those of `[defaults]`; then the finished
//! `run_requests` older than `[defaults]`' `history_retention`. This file
//! owns when, for which jobs and in which order; which rows go, and which
//! never do, is [`Db::prune_runs`]'s and [`Db::prune_run_requests`]'s.
//!
//! A pass deletes batch by batch ([`BATCH`] rows, one short statement each)
//! with a pause between full batches, so it never holds locks for long and
//! other writers, SQLite's one writer at a time included, get their turn.
//! Every worker prunes; deleting is idempotent, so replicas pruning at once
//! only find less to do.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use ops_worker_jobs::Clock;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, JobSpec, Retention};
use crate::db::{Db, DbError};

/// The first pass comes this long after start-up, when catch-up runs and
/// the first claims are done with the database.
pub const FIRST_PASS_AFTER: Duration = Duration::from_secs(60);
/// Between the end of a pass and the start of the next.
pub const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// Rows per DELETE.
pub const BATCH: i64 = 1000;
/// After a full batch, before the next.
const PAUSE: Duration = Duration::from_millis(100);

/// Prunes until `stop` fires: a pass [`FIRST_PASS_AFTER`] start-up, then
/// every [`PRUNE_EVERY`], with `clock` for "now" and for those waits (so a
/// test drives the loop with a manual clock), by the settings of the config
/// running at the time (a reload changes them). Logs one line per pass that
/// deleted something, and one per pass that failed.
pub async fn run(
    db: Db,
    config: tokio::sync::watch::Receiver<Arc<Config>>,
    clock: Arc<dyn Clock>,
    stop: CancellationToken,
) {
    let mut wait = FIRST_PASS_AFTER;
    loop {
        let next = clock.now() + TimeDelta::from_std(wait).expect("a wait of minutes");
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = clock.sleep_until(next) => {}
        }
        wait = PRUNE_EVERY;
        let started = std::time::Instant::now();
        let config = config.borrow().clone();
        let (jobs, default) = (&config.jobs, config.default_retention);
        match prune(&db, jobs, default, clock.now(), BATCH, &stop).await {
            Ok(Pruned {
                runs: 0,
                requests: 0,
            }) => {}
            Ok(Pruned { runs, requests }) => tracing::info!(
                pruned = runs,
                requests,
                took_ms = started.elapsed().as_millis() as u64,
                "pruned old runs from job_runs and old run requests from run_requests"
            ),
            Err(e) => tracing::warn!(
                error = %crate::error_chain(&e),
                "cannot prune job_runs and run_requests; trying again in {}",
                humantime::format_duration(PRUNE_EVERY)
            ),
        }
    }
}

/// What a pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Rows of `job_runs`.
    pub runs: u64,
    /// Rows of `run_requests`.
    pub requests: u64,
}

/// One pass, as of `now`: every job with rows in `job_runs`, by its spec in
/// `jobs`, or by `default` when it has none; then the finished run requests
/// older than `default`'s `max_age` (`keep_last` is not theirs: requests
/// are not a job's history). `batch` rows per DELETE until none are due.
/// Runs go first, so a request whose run this pass pruned goes in the same
/// pass (a request stays while its run does). Returns how many rows it
/// deleted. Stops early, between batches, when `stop` fires.
pub async fn prune(
    db: &Db,
    jobs: &[Arc<JobSpec>],
    default: Retention,
    now: DateTime<Utc>,
    batch: i64,
    stop: &CancellationToken,
) -> Result<Pruned, DbError> {
    let mut pruned = Pruned::default();
    for name in db.run_job_names().await? {
        let retention = jobs
            .iter()
            .find(|j| j.name == name)
            .map_or(default, |j| j.retention);
        let older_than = cutoff(now, retention.max_age);
        let done = in_batches(&mut pruned.runs, batch, stop, || {
            db.prune_runs(&name, older_than, retention.keep_last, batch)
        })
        .await?;
        if !done {
            return Ok(pruned);
        }
    }
    let older_than = cutoff(now, default.max_age);
    in_batches(&mut pruned.requests, batch, stop, || {
        db.prune_run_requests(older_than, batch)
    })
    .await?;
    Ok(pruned)
}

/// Calls `delete` (one batch) until it deletes less than `batch`, pausing
/// after each full one, and adds what it deleted to `total`. False when
/// `stop` fired first.
async fn in_batches<F, Fut>(
    total: &mut u64,
    batch: i64,
    stop: &CancellationToken,
    mut delete: F,
) -> Result<bool, DbError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<u64, DbError>>,
{
    loop {
        if stop.is_cancelled() {
            return Ok(false);
        }
        let deleted = delete().await?;
        *total += deleted;
        if deleted < batch.max(1) as u64 {
            return Ok(true);
        }
        tokio::select! {
            _ = stop.cancelled() => return Ok(false),
            _ = tokio::time::sleep(PAUSE) => {}
        }
    }
}

/// `now - max_age`, but not before 1970: no run is that old, and a
/// retention of centuries must not overflow or leave PostgreSQL's range.
fn cutoff(now: DateTime<Utc>, max_age: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(max_age)
        .ok()
        .and_then(|age| now.checked_sub_signed(age))
        .map_or(DateTime::UNIX_EPOCH, |t| t.max(DateTime::UNIX_EPOCH))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cutoff_is_now_minus_the_retention_but_not_before_1970() {
        let now = DateTime::parse_from_rfc3339("2026-11-26T12:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            cutoff(now, Duration::from_secs(30 * 86_400)).to_rfc3339(),
            "2026-10-27T12:00:00+00:00"
        );
        for huge in [Duration::from_secs(100 * 365 * 86_400), Duration::MAX] {
            assert_eq!(cutoff(now, huge), DateTime::UNIX_EPOCH);
        }
    }
}
