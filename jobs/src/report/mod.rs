//! The `report` kind: a daily (or weekly) summary of what ran, how the
//! services did, the alerts and selected metrics, stored in `reports` as JSON
//! and Markdown and optionally written to a directory.
//!
//! A run reports on the last whole period ending at or before its *slot*,
//! on the job's time zone's calendar, never on "now": a run that is late,
//! caught up after downtime or re-run with `ops-worker run-job` describes
//! the intended period, and re-running a period replaces its report.
//!
//! ```toml
//! [jobs.daily-report]
//! kind = "report"
//! cron = "0 5 0 * * *"          # 00:05 every day...
//! timezone = "Europe/Berlin"    # ...Berlin time; also the report's calendar
//! period = "day"                # day (default) | week (ISO weeks)
//! dir = "reports/"              # optional: also a Markdown file per period
//! metrics = ["alerts_open", "node:node_load1"]   # series summarised (min/avg/max)
//! notify = ["ops-chat"]         # optional: the summary line, once per period
//! ```

pub mod compute;
mod markdown;
pub mod period;

use std::path::{Path, PathBuf};

use crate::tz::Tz;
use async_trait::async_trait;
use serde::Deserialize;

use crate::store::StoredReport;
use crate::{BuildError, Job, JobContext, JobError, JobOutput, Settings};
pub use compute::ReportData;
pub use period::{Period, PeriodKind};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportSettings {
    #[serde(default)]
    period: Option<String>,
    #[serde(default)]
    dir: Option<PathBuf>,
    #[serde(default)]
    metrics: Vec<String>,
    /// Notification targets told the summary (names checked by the config).
    #[serde(default)]
    notify: Vec<String>,
}

pub struct ReportJob {
    name: String,
    kind: PeriodKind,
    timezone: Tz,
    dir: Option<PathBuf>,
    metrics: Vec<String>,
    notify: Vec<String>,
}

impl ReportJob {
    /// `timezone` is the job's own (`timezone` in schedules.toml, UTC by
    /// default): its calendar decides where a day or week starts.
    pub fn from_settings(
        name: &str,
        timezone: Tz,
        settings: Settings<'_>,
    ) -> Result<Self, BuildError> {
        let s = ReportSettings::deserialize(settings)?;
        let kind = match s.period.as_deref() {
            None | Some("day") => PeriodKind::Day,
            Some("week") => PeriodKind::Week,
            Some(other) => {
                return Err(BuildError::Invalid(format!(
                    "period: {other:?} is not one of day, week"
                )))
            }
        };
        if s.dir.as_ref().is_some_and(|d| d.as_os_str().is_empty()) {
            return Err(BuildError::Invalid("dir: is empty".into()));
        }
        Ok(ReportJob {
            name: name.to_string(),
            kind,
            timezone,
            dir: s.dir,
            metrics: s.metrics,
            notify: s.notify,
        })
    }

    /// The period a run for `slot` describes.
    pub fn period_for(&self, slot: chrono::DateTime<chrono::Utc>) -> Period {
        Period::before(slot, self.kind, self.timezone)
    }
}

#[async_trait]
impl Job for ReportJob {
    async fn run(&self, ctx: JobContext) -> Result<JobOutput, JobError> {
        let period = self.period_for(ctx.scheduled_for);
        let (start, end) = (period.start, period.end);
        let read = |what: &str, e: crate::StoreError| JobError::new(format!("reading {what}: {e}"));
        let runs = ctx
            .store
            .runs_between(start, end)
            .await
            .map_err(|e| read("runs", e))?;
        let checks = ctx
            .store
            .checks_between(start, end)
            .await
            .map_err(|e| read("health checks", e))?;
        let alerts = ctx
            .store
            .alerts_between(start, end)
            .await
            .map_err(|e| read("alerts", e))?;
        let samples = ctx
            .store
            .samples_between(&self.metrics, start, end)
            .await
            .map_err(|e| read("metric samples", e))?;
        let generated_at = ctx.clock.now();
        let data = compute::compute(
            &self.name,
            &period,
            self.timezone,
            generated_at,
            &runs,
            &checks,
            &alerts,
            &samples,
        );
        let json = serde_json::to_string(&data)
            .map_err(|e| JobError::new(format!("encoding the report: {e}")))?;
        let markdown = data.markdown();
        let summary = data.summary();
        // What a `json` target receives; a `slack` one shows `text`.
        let payload = serde_json::json!({
            "event": "report",
            "report": self.name,
            "period": period.label,
            "period_start": start,
            "period_end": end,
            "timezone": data.timezone,
            "text": summary,
        });
        ctx.store
            .save_report(
                &StoredReport {
                    name: self.name.clone(),
                    period: period.label.clone(),
                    period_start: start,
                    period_end: end,
                    generated_at,
                    json,
                    markdown: markdown.clone(),
                },
                &self.notify,
                &payload,
            )
            .await
            .map_err(|e| JobError::new(format!("cannot store the report: {e}")))?;
        let mut output = summary;
        if let Some(dir) = &self.dir {
            let path = write_file(dir, &self.name, &period.label, &markdown)
                .await
                .map_err(|e| JobError {
                    message: format!("cannot write the report to {}: {e}", dir.display()),
                    output: Some(output.clone()),
                })?;
            output.push_str(&format!("; written to {}", path.display()));
        }
        Ok(JobOutput {
            output: Some(output),
        })
    }
}

/// Writes `DIR/NAME-PERIOD.md` whole or not at all: a temporary file in the
/// same directory, then a rename over the old one.
async fn write_file(
    dir: &Path,
    name: &str,
    period: &str,
    markdown: &str,
) -> std::io::Result<PathBuf> {
    tokio::fs::create_dir_all(dir).await?;
    let path = dir.join(format!("{name}-{period}.md"));
    let tmp = dir.join(format!(".{name}-{period}.md.tmp"));
    tokio::fs::write(&tmp, markdown).await?;
    tokio::fs::rename(&tmp, &path).await?;
    Ok(path)
}
