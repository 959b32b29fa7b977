//! The `alerts` kind: opens a deduplicated alert when a service turns
//! unhealthy and resolves it when it recovers, from the checks the `health`
//! kind records in `service_health`.
//!
//! The state machine per service, as the monitor it replaces: healthy to
//! unhealthy opens an alert ("Service {name} is unhealthy: {reason}");
//! unhealthy to unhealthy does nothing; unhealthy to healthy resolves it;
//! healthy to healthy does nothing. "Unhealthy" means `fail_after` down checks
//! in a row, "healthy" `resolve_after` up or degraded ones, and only fresh
//! checks count: a service whose checks stopped arriving is never resolved.
//! The database keeps at most one active alert per fingerprint, so two runs at
//! once cannot open two.
//!
//! ```toml
//! [jobs.system-alerts]
//! kind = "alerts"
//! every = "30s"
//! enabled = "${SYSTEM_ALERT_ENABLED:-true}"
//! services = ["api", "db"]   # default: every service in service_health
//! fail_after = 2             # down checks in a row before opening
//! resolve_after = 2          # healthy checks in a row before resolving
//! severity = "critical"      # critical | warning | info
//! notify = ["ops-webhook"]   # [notify.NAME] targets told on open (and on resolve)
//! remind_every = "1h"        # optional: remind while still open and unacknowledged
//! stale_after = "5m"         # a check older than this is not fresh
//! watch_jobs = true          # also alert on jobs (job:NAME), below
//! jobs = ["backup"]          # default: every enabled job but this one
//! job_grace = "10m"          # default: the job's timeout + 1m
//! ```
//!
//! Jobs are watched on the scheduler's own timeline: `job:NAME` opens when a
//! job's last `fail_after` runs failed, or when its next slot (computed from
//! its schedule after the newest recorded one) passed `job_grace` ago with
//! nothing recorded for it (for a job with `jitter`, `job_grace` after the
//! slot's jittered start; for a `push` job, its own `grace` after the slot
//! with no signal); it resolves when the job succeeds again. A push job's
//! `fail` signals are failed runs like any other.
//!
//! An alert silenced by a maintenance window or an ad-hoc silence
//! ([`crate::silence`]) is not opened and gets no reminders; it may still
//! resolve. Its cause is judged again on every run, so once the silence
//! ends an alert whose service is still down (or job still failing) opens.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::de::{self, Deserializer};
use serde::Deserialize;

use crate::silence::Quiet;
use crate::store::{AlertSource, AlertStatus, NewAlert, Severity};
use crate::{BuildError, Job, JobContext, JobError, JobOutput, Settings};

const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(300);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertsSettings {
    #[serde(default)]
    services: Option<Vec<String>>,
    #[serde(default = "two")]
    fail_after: i32,
    #[serde(default = "two")]
    resolve_after: i32,
    #[serde(default = "critical", deserialize_with = "severity")]
    severity: Severity,
    #[serde(default)]
    notify: Vec<String>,
    #[serde(default, deserialize_with = "duration_opt")]
    remind_every: Option<Duration>,
    #[serde(default, deserialize_with = "duration_opt")]
    stale_after: Option<Duration>,
    #[serde(default = "yes")]
    watch_jobs: bool,
    #[serde(default)]
    jobs: Option<Vec<String>>,
    #[serde(default, deserialize_with = "duration_opt")]
    job_grace: Option<Duration>,
}

fn yes() -> bool {
    true
}

fn two() -> i32 {
    2
}

fn critical() -> Severity {
    Severity::Critical
}

fn severity<'de, D: Deserializer<'de>>(d: D) -> Result<Severity, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(|_| {
        de::Error::custom(format!(
            "invalid severity {s:?} (expected critical, warning or info)"
        ))
    })
}

fn duration_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let s = String::deserialize(d)?;
    match humantime::parse_duration(s.trim()) {
        Ok(d) if !d.is_zero() => Ok(Some(d)),
        Ok(_) => Err(de::Error::custom("must be more than 0s")),
        Err(e) => Err(de::Error::custom(format!("invalid duration {s:?}: {e}"))),
    }
}

pub struct AlertsJob {
    services: Option<Vec<String>>,
    fail_after: i32,
    resolve_after: i32,
    severity: Severity,
    notify: Vec<String>,
    remind_every: Option<Duration>,
    stale_after: Duration,
    watch_jobs: bool,
    jobs: Option<Vec<String>>,
    job_grace: Option<Duration>,
}

/// How long after a job's timeout a slot with no finished run counts as missed.
const DEFAULT_JOB_GRACE_EXTRA: Duration = Duration::from_secs(60);

/// The fingerprint of a job's alert.
pub fn job_fingerprint(job: &str) -> String {
    format!("job:{job}")
}

/// The fingerprint of a service's alert.
pub fn service_fingerprint(service: &str) -> String {
    format!("system:service:{service}")
}

impl AlertsJob {
    pub fn from_settings(_name: &str, settings: Settings<'_>) -> Result<Self, BuildError> {
        let s = AlertsSettings::deserialize(settings)?;
        if s.fail_after < 1 || s.resolve_after < 1 {
            return Err(BuildError::Invalid(
                "fail_after and resolve_after must be at least 1".into(),
            ));
        }
        Ok(AlertsJob {
            services: s.services,
            fail_after: s.fail_after,
            resolve_after: s.resolve_after,
            severity: s.severity,
            notify: s.notify,
            remind_every: s.remind_every,
            stale_after: s.stale_after.unwrap_or(DEFAULT_STALE_AFTER),
            watch_jobs: s.watch_jobs,
            jobs: s.jobs,
            job_grace: s.job_grace,
        })
    }

    /// The notification targets this job names, for the config to check.
    pub fn notify_targets(&self) -> &[String] {
        &self.notify
    }

    fn watches_job(&self, job: &str) -> bool {
        self.watch_jobs
            && self
                .jobs
                .as_ref()
                .is_none_or(|j| j.iter().any(|n| n == job))
    }

    /// Opens `job:NAME` when the job's last `fail_after` runs failed or its
    /// next slot on the schedule passed `job_grace` ago with nothing recorded
    /// for it; resolves it when the newest run succeeded and no slot is
    /// overdue. Returns (opened, resolved) job names.
    async fn watch_jobs(
        &self,
        ctx: &JobContext,
        active: &HashMap<String, crate::store::Alert>,
        quiet: &Quiet,
        silenced: &mut Vec<String>,
    ) -> Result<(Vec<String>, Vec<String>), crate::StoreError> {
        let now = ctx.clock.now();
        let (mut opened, mut resolved) = (Vec::new(), Vec::new());
        let last_slots = ctx.store.last_recorded_slots().await?;
        for (job, timeout) in ctx.timeline.jobs() {
            if job == *ctx.job || !self.watches_job(&job) {
                continue;
            }
            let fingerprint = job_fingerprint(&job);
            let runs = ctx
                .store
                .recent_finished_runs(&job, i64::from(self.fail_after))
                .await?;
            let failing = runs.len() >= self.fail_after as usize
                && runs.iter().all(|r| r.status != "success");
            // A push job's own `grace` says when its signal is overdue.
            let grace = ctx
                .timeline
                .push_grace(&job)
                .unwrap_or_else(|| self.job_grace.unwrap_or(timeout + DEFAULT_JOB_GRACE_EXTRA));
            let grace = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
            // A job with no recorded slot has never been expected to run yet.
            // A jittered slot is claimed (and so recorded) only at its
            // jittered start: the grace counts from there.
            let overdue = last_slots
                .get(&job)
                .and_then(|last| ctx.timeline.next_slot_after(&job, *last))
                .map(|next| {
                    let jitter = ctx.timeline.slot_jitter(&job, next);
                    (
                        next,
                        next + chrono::Duration::from_std(jitter).unwrap_or_default(),
                    )
                })
                .filter(|(_, start)| *start + grace < now);
            let message = match (failing, overdue) {
                (true, _) => Some(format!(
                    "Job {job} failed {} times in a row: {}",
                    runs.len(),
                    runs[0].error.as_deref().unwrap_or(&runs[0].status)
                )),
                (false, Some((slot, start))) => Some(format!(
                    "Job {job} missed its slot at {}{}: nothing ran for it within {}",
                    slot.format("%Y-%m-%d %H:%M:%S UTC"),
                    if start == slot {
                        String::new()
                    } else {
                        format!(" (jittered to {})", start.format("%H:%M:%S%.3f"))
                    },
                    humantime::format_duration(grace.to_std().unwrap_or_default())
                )),
                (false, None) => None,
            };
            let is_active = active.contains_key(&fingerprint);
            match message {
                Some(_) if !is_active && quiet.why(&fingerprint).is_some() => {
                    silenced.push(format!("job:{job}"));
                }
                Some(message) if !is_active => {
                    let alert = NewAlert {
                        fingerprint,
                        source: AlertSource::Job,
                        subject: job.clone(),
                        severity: self.severity,
                        message,
                        opened_at: now,
                    };
                    if let Some(a) = ctx.store.open_alert(&alert, &self.notify).await? {
                        log_opened(&a);
                        opened.push(job);
                    }
                }
                None if is_active && runs.first().is_some_and(|r| r.status == "success") => {
                    let note = format!(
                        "Job {job} succeeded again (slot {})",
                        runs[0].scheduled_for.format("%Y-%m-%d %H:%M:%S UTC")
                    );
                    if let Some(a) = ctx.store.resolve_alert(&fingerprint, &note, now).await? {
                        log_resolved(&a, &note);
                        resolved.push(job);
                    }
                }
                _ => {}
            }
        }
        Ok((opened, resolved))
    }

    fn watches(&self, service: &str) -> bool {
        self.services
            .as_ref()
            .is_none_or(|s| s.iter().any(|n| n == service))
    }
}

#[async_trait]
impl Job for AlertsJob {
    async fn run(&self, ctx: JobContext) -> Result<JobOutput, JobError> {
        let store = |e: crate::StoreError| JobError::new(format!("storage: {e}"));
        let now = ctx.clock.now();
        let stale_after =
            chrono::Duration::from_std(self.stale_after).unwrap_or(chrono::Duration::MAX);
        let services = ctx.store.service_health().await.map_err(store)?;
        let active: HashMap<String, _> = ctx
            .store
            .active_alerts()
            .await
            .map_err(store)?
            .into_iter()
            .map(|a| (a.fingerprint.clone(), a))
            .collect();
        let quiet = Quiet::load(&ctx, now).await.map_err(store)?;

        let (mut opened, mut resolved, mut reminded, mut stale) =
            (Vec::new(), Vec::new(), 0, Vec::new());
        // Alerts that would open but are silenced: judged again next run.
        let mut silenced = Vec::new();
        for s in services.iter().filter(|s| self.watches(&s.service)) {
            if now - s.checked_at > stale_after {
                // Checks stopped arriving: neither open nor resolve on old news.
                stale.push(s.service.as_str());
                continue;
            }
            let fingerprint = service_fingerprint(&s.service);
            let is_active = active.contains_key(&fingerprint);
            if !s.status.is_healthy() && s.consecutive_failures >= self.fail_after && !is_active {
                if quiet.why(&fingerprint).is_some() {
                    silenced.push(fingerprint);
                    continue;
                }
                let reason = s.error.as_deref().unwrap_or("down");
                let alert = NewAlert {
                    fingerprint,
                    source: AlertSource::Service,
                    subject: s.service.clone(),
                    severity: self.severity,
                    message: format!("Service {} is unhealthy: {reason}", s.service),
                    opened_at: now,
                };
                if let Some(a) = ctx
                    .store
                    .open_alert(&alert, &self.notify)
                    .await
                    .map_err(store)?
                {
                    log_opened(&a);
                    opened.push(s.service.as_str());
                }
            } else if s.status.is_healthy()
                && s.consecutive_successes >= self.resolve_after
                && is_active
            {
                let note = format!(
                    "Service {} is healthy again: {} good checks in a row since {}",
                    s.service,
                    s.consecutive_successes,
                    s.since.format("%Y-%m-%d %H:%M:%S UTC")
                );
                if let Some(a) = ctx
                    .store
                    .resolve_alert(&fingerprint, &note, now)
                    .await
                    .map_err(store)?
                {
                    log_resolved(&a, &note);
                    resolved.push(s.service.as_str());
                }
            }
        }

        let (jobs_opened, jobs_resolved) = self
            .watch_jobs(&ctx, &active, &quiet, &mut silenced)
            .await
            .map_err(store)?;

        if let Some(every) = self.remind_every {
            let every = chrono::Duration::from_std(every).unwrap_or(chrono::Duration::MAX);
            for alert in active.values() {
                let ours = match alert.source {
                    AlertSource::Service => self.watches(&alert.subject),
                    AlertSource::Job => self.watches_job(&alert.subject),
                };
                // Acknowledged alerts are someone's job already, silenced
                // ones are being worked on: no reminders.
                if !ours
                    || alert.status != AlertStatus::Open
                    || resolved.contains(&alert.subject.as_str())
                    || quiet.why(&alert.fingerprint).is_some()
                {
                    continue;
                }
                // Reminder n is due n intervals after opening; its number makes
                // it idempotent across runs and replicas.
                let seq = (now - alert.opened_at).num_seconds() / every.num_seconds().max(1);
                if seq >= 1
                    && ctx
                        .store
                        .remind_alert(alert.id, seq, now, &self.notify)
                        .await
                        .map_err(store)?
                {
                    reminded += 1;
                }
            }
        }

        let mut out = format!(
            "{} service{} watched: opened {}, resolved {}, reminded {reminded}",
            services.iter().filter(|s| self.watches(&s.service)).count(),
            if services.len() == 1 { "" } else { "s" },
            list(&opened),
            list(&resolved),
        );
        if !jobs_opened.is_empty() || !jobs_resolved.is_empty() {
            out.push_str(&format!(
                "; jobs: opened {}, resolved {}",
                jobs_opened.join(", "),
                jobs_resolved.join(", ")
            ));
        }
        if !stale.is_empty() {
            out.push_str(&format!("; no fresh checks for {}", stale.join(", ")));
        }
        if !silenced.is_empty() {
            out.push_str(&format!("; silenced, not opened: {}", silenced.join(", ")));
        }
        Ok(JobOutput { output: Some(out) })
    }
}

/// An alert this run opened: logged once, by the run whose write opened it
/// (the database keeps one active alert per fingerprint).
fn log_opened(a: &crate::store::Alert) {
    tracing::warn!(alert_id = a.id, fingerprint = %a.fingerprint, severity = %a.severity, "alert opened: {}", a.message);
}

/// An alert this run resolved: logged once, as [`log_opened`].
fn log_resolved(a: &crate::store::Alert, note: &str) {
    tracing::info!(alert_id = a.id, fingerprint = %a.fingerprint, "alert resolved: {note}");
}

fn list(names: &[&str]) -> String {
    if names.is_empty() {
        "0".to_string()
    } else {
        format!("{} ({})", names.len(), names.join(", "))
    }
}
