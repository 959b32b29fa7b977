//! Runs whose process is gone: the rows an earlier process with this
//! worker's id left `running` (marked at start-up), and those of workers
//! whose heartbeat stopped (marked by every live daemon's heartbeat). Both
//! finish the row as `abandoned`; they are the runner's writes because a
//! run's lifecycle is written nowhere else. When to look is the caller's
//! (`worker` at start, `heartbeat` on each beat).

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Runner;
use crate::db::{AbandonedRun, DbError};

impl Runner {
    /// Marks `abandoned` this worker id's runs still `running`: an earlier
    /// process with the id died or was killed before finishing them.
    /// Returns how many it marked.
    pub async fn abandon_leftovers(&self, now: DateTime<Utc>) -> Result<u64, DbError> {
        let abandoned = self
            .recorder
            .db()
            .abandon_running(&self.worker_id, now)
            .await?;
        if abandoned > 0 {
            tracing::warn!(
                abandoned,
                worker_id = %self.worker_id,
                "runs left running by an earlier process of this worker were marked abandoned"
            );
        }
        Ok(abandoned)
    }

    /// Marks `abandoned` the runs of workers with no heartbeat for
    /// `dead_after`, but only once this worker's own heartbeats have been
    /// written for `dead_after` without a gap (since `healthy_since`): after
    /// a database outage every worker gets the time to write its heartbeat
    /// again before anyone judges it dead. Returns the runs it marked.
    pub async fn abandon_runs_of_dead_workers(
        &self,
        now: DateTime<Utc>,
        healthy_since: DateTime<Utc>,
        dead_after: Duration,
    ) -> Vec<AbandonedRun> {
        let dead_after = chrono::Duration::from_std(dead_after).unwrap_or(chrono::Duration::MAX);
        if now - healthy_since < dead_after {
            return Vec::new();
        }
        let db = self.recorder.db();
        match db
            .abandon_dead_runs(now - dead_after, now, &self.worker_id)
            .await
        {
            Ok(runs) => {
                for r in &runs {
                    tracing::warn!(
                        job = %r.job_name,
                        scheduled_for = %r.scheduled_for,
                        attempt = r.attempt,
                        dead_worker = %r.worker_id,
                        run_id = r.id,
                        "marked a run abandoned: its worker stopped heartbeating"
                    );
                }
                runs
            }
            Err(e) => {
                tracing::warn!(error = %crate::error_chain(&e), "cannot check for runs of dead workers");
                Vec::new()
            }
        }
    }
}
