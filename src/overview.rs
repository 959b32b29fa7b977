//! What a job looks like to an operator, now: its schedule, last run, last
//! success, next fire, pause and open alert. `ops-worker list` prints it
//! and `GET /api/v1/jobs` returns it, so the two cannot disagree. Reads
//! only (through `src/db`); the next fire comes from `src/schedule`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::{Config, JobSpec};
use crate::db::{Db, DbError, JobSummary, Pause};
use crate::scheduler::Start;

/// One job as `list` and the API show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobOverview {
    pub name: String,
    pub kind: String,
    /// `every 30s` or `cron 0 2 * * *` (what `list` prints).
    pub schedule: String,
    /// The `every` or `cron` value as written.
    pub schedule_written: String,
    /// In words: `every 30s`, `At 02:00 AM (Europe/Berlin)`.
    pub schedule_words: String,
    pub timezone: String,
    pub enabled: bool,
    pub last_status: Option<String>,
    pub last_run: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
    pub next_fire: Option<DateTime<Utc>>,
    /// The job's pause, if one holds now (scheduled slots are not run).
    pub paused: Option<Pause>,
    /// The id of the active (open or acknowledged) alert about the job, if any.
    pub open_alert: Option<i64>,
}

/// Every job of `config`, in name order, as of `now`. Three statements,
/// whatever the number of jobs; each job's row is found by name in a map,
/// not by a search through every job's.
pub async fn jobs(
    config: &Config,
    db: &Db,
    now: DateTime<Utc>,
) -> Result<Vec<JobOverview>, DbError> {
    let summaries = db.job_summaries().await?;
    let pauses = db.pauses().await?;
    let alerts = db.list_alerts(false, i64::MAX).await?;
    let summaries: HashMap<&str, &JobSummary> =
        summaries.iter().map(|s| (s.job_name.as_str(), s)).collect();
    // The first of each job's, as a search in list order would find.
    let mut active_pauses: HashMap<&str, &Pause> = HashMap::new();
    for p in pauses.iter().filter(|p| p.active(now)) {
        active_pauses.entry(p.job_name.as_str()).or_insert(p);
    }
    let mut job_alerts: HashMap<&str, i64> = HashMap::new();
    for a in alerts
        .iter()
        .filter(|a| a.source == ops_worker_jobs::store::AlertSource::Job)
    {
        job_alerts.entry(a.subject.as_str()).or_insert(a.id);
    }
    Ok(config
        .jobs
        .iter()
        .map(|j| {
            let name = j.name.as_str();
            let summary = summaries.get(name).copied();
            let start = Start {
                last_slot: summary.and_then(|s| s.last_slot),
                armed_at: now,
            };
            let pause = active_pauses.get(name).copied();
            overview(j, summary, start, now, pause, job_alerts.get(name).copied())
        })
        .collect())
}

fn overview(
    j: &JobSpec,
    s: Option<&JobSummary>,
    start: Start,
    now: DateTime<Utc>,
    paused: Option<&Pause>,
    open_alert: Option<i64>,
) -> JobOverview {
    JobOverview {
        name: j.name.clone(),
        kind: j.kind.clone(),
        schedule: j.schedule.to_string(),
        schedule_written: j.schedule.as_written(),
        schedule_words: j.schedule.in_words(),
        timezone: j.timezone.to_string(),
        enabled: j.enabled,
        last_status: s.and_then(|s| s.last_status).map(|st| st.to_string()),
        last_run: s.and_then(|s| s.last_scheduled_for),
        last_success: s.and_then(|s| s.last_success_at),
        next_fire: j
            .enabled
            .then(|| j.schedule.next_after(now, start.anchor()))
            .flatten(),
        paused: paused.cloned(),
        open_alert,
    }
}
