//! The `push` kind: a job that runs elsewhere (a crontab line, a systemd
//! timer, a Kubernetes CronJob, a loop in an API process) and reports each
//! run to ops-worker over HTTP (`/ping/{job}/{token}`). ops-worker runs
//! nothing for it: the scheduler does not fire it, and its runs are the
//! signals it receives, recorded with trigger `push`.
//!
//! Its keys (`grace`, `token`, and the schedule and `timeout` every job has)
//! are read by the `ops-worker` crate's config, which needs them to place a
//! signal in a slot and to check its token; this crate only knows that the
//! kind has no settings of its own.
//!
//! ```toml
//! [jobs.nightly-backup]
//! kind = "push"
//! cron = "0 2 * * *"
//! timezone = "Europe/Berlin"
//! grace = "15m"                       # how early or late a signal may come
//! token = "${BACKUP_PING_TOKEN}"      # at least 16 characters
//! timeout = "2h"                      # a start with no finish ends `timeout`
//! ```

use async_trait::async_trait;
use serde::Deserialize;

use crate::{BuildError, Job, JobContext, JobError, JobOutput, Settings};

/// Nothing beyond the keys the config reads: any other key is unknown.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PushSettings {}

/// A job whose runs happen elsewhere.
pub struct PushJob;

impl PushJob {
    pub fn from_settings(_name: &str, settings: Settings<'_>) -> Result<Self, BuildError> {
        PushSettings::deserialize(settings)?;
        Ok(PushJob)
    }
}

/// Why a push job has nothing to run here.
pub const NOT_RUN_HERE: &str =
    "a push job runs elsewhere and signals ops-worker over HTTP (/ping/NAME/TOKEN); ops-worker runs nothing for it";

#[async_trait]
impl Job for PushJob {
    async fn run(&self, _ctx: JobContext) -> Result<JobOutput, JobError> {
        // Never called: the scheduler does not arm push jobs and the runner
        // refuses them. Kept an error so a bug cannot pass for a success.
        Err(JobError::new(NOT_RUN_HERE))
    }
}
