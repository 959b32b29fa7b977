//! A job as the scheduler and the runner use it ([`JobSpec`]), with its
//! history retention and the fingerprint a reload compares. Built only by
//! `job.rs`; nothing here reads the file.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ops_worker_jobs::tz::Tz;
use ops_worker_jobs::Job;
use toml::de::DeValue;

use super::push::PushSpec;
use crate::schedule::{CatchUp, Overlap, Schedule};

/// `history_retention` when neither the job nor `[defaults]` sets it.
pub(super) const DEFAULT_HISTORY_RETENTION: Duration = Duration::from_secs(30 * 86_400);

/// How long a job's `job_runs` rows are kept: `history_retention` and
/// `keep_last`. The pruning itself (and which rows it never touches) is
/// `crate::retention`'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// `history_retention`: rows whose slot is older than this are pruned.
    pub max_age: Duration,
    /// `keep_last`: rows beyond the newest this many are pruned, whatever
    /// their age.
    pub keep_last: Option<u32>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_age: DEFAULT_HISTORY_RETENTION,
            keep_last: None,
        }
    }
}

/// One job, ready to schedule.
pub struct JobSpec {
    pub name: String,
    pub kind: String,
    pub schedule: Schedule,
    /// Line and column of the `every` or `cron` value in the file, for
    /// warnings about the schedule (`None` for a spec not read from a file).
    pub schedule_at: Option<(usize, usize)>,
    /// The zone `next` and `list` show times in (the cron zone for cron jobs).
    pub timezone: Tz,
    pub timeout: Duration,
    pub overlap: Overlap,
    pub catch_up: CatchUp,
    pub catch_up_window: Duration,
    pub retries: u32,
    pub retry_backoff: Duration,
    /// Each scheduled or caught-up slot starts this much later at most: a
    /// delay in `[0, jitter)` fixed per slot (see `schedule::jitter`).
    /// Zero: no jitter.
    pub jitter: Duration,
    /// Run a slot once more on a live worker when the worker running it died
    /// (default: true for every kind but `command`, whose effects may not
    /// bear repeating).
    pub retry_abandoned: bool,
    pub enabled: bool,
    /// SHA-256 of everything that makes up the job: its kind, schedule,
    /// policies and the kind's settings, after `${VAR}` expansion and
    /// `[defaults]`, but not where they are in the file. A reload re-arms a
    /// job whose fingerprint changed and leaves the others alone.
    pub fingerprint: String,
    /// How long its `job_runs` rows are kept.
    pub retention: Retention,
    /// `grace` and the token of a `push` job; `None` for every other kind.
    pub push: Option<PushSpec>,
    pub job: Arc<dyn Job>,
}

impl JobSpec {
    /// The scheduler's settings of the job, one line, for its fingerprint.
    /// Not `retention`: the pruner reads it from the running config, so a
    /// change of it needs no re-arming.
    pub(super) fn policies(&self) -> String {
        format!(
            "{} {:?} {} {:?} {:?} {:?} {:?} {} {:?} {} {} {:?} {:?}",
            self.kind,
            self.schedule,
            self.timezone,
            self.timeout,
            self.overlap,
            self.catch_up,
            self.catch_up_window,
            self.retries,
            self.retry_backoff,
            self.retry_abandoned,
            self.enabled,
            self.jitter,
            self.push.as_ref().map(|p| (p.grace, p.token_digest)),
        )
    }
}

/// `value` as text without its place in the file: keys sorted, strings
/// quoted, numbers and dates as written.
pub(super) fn canonical(value: &DeValue<'_>, out: &mut String) {
    use std::fmt::Write as _;
    match value {
        DeValue::String(s) => {
            let _ = write!(out, "{:?}", s.as_ref());
        }
        DeValue::Integer(i) => out.push_str(i.as_str()),
        DeValue::Float(f) => out.push_str(f.as_str()),
        DeValue::Boolean(b) => {
            let _ = write!(out, "{b}");
        }
        DeValue::Datetime(d) => {
            let _ = write!(out, "{d}");
        }
        DeValue::Array(items) => {
            out.push('[');
            for item in items.iter() {
                canonical(item.get_ref(), out);
                out.push(',');
            }
            out.push(']');
        }
        DeValue::Table(t) => {
            let mut entries: Vec<_> = t.iter().collect();
            entries.sort_by(|a, b| a.0.get_ref().cmp(b.0.get_ref()));
            out.push('{');
            for (k, v) in entries {
                let _ = write!(out, "{:?}=", k.get_ref().as_ref());
                canonical(v.get_ref(), out);
                out.push(',');
            }
            out.push('}');
        }
    }
}

impl fmt::Debug for JobSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobSpec")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("schedule", &self.schedule)
            .field("schedule_at", &self.schedule_at)
            .field("timezone", &self.timezone)
            .field("timeout", &self.timeout)
            .field("overlap", &self.overlap)
            .field("catch_up", &self.catch_up)
            .field("catch_up_window", &self.catch_up_window)
            .field("retries", &self.retries)
            .field("retry_backoff", &self.retry_backoff)
            .field("jitter", &self.jitter)
            .field("retry_abandoned", &self.retry_abandoned)
            .field("enabled", &self.enabled)
            .field("retention", &self.retention)
            .field("push", &self.push)
            .finish_non_exhaustive()
    }
}

impl JobSpec {
    /// How long after `slot` its scheduled or catch-up run starts: the
    /// slot's delay under `jitter`, the same on every worker. `None` for a
    /// job without jitter.
    pub fn slot_jitter(&self, slot: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
        (!self.jitter.is_zero())
            .then(|| crate::schedule::jitter::delay(&self.name, slot, self.jitter))
    }
}
