//! What the CLI prints: plain aligned tables for people, `--json` for scripts.

use chrono::{DateTime, Utc};
use ops_worker_jobs::tz::Tz;

use super::ExitCode;
use crate::config::{Config, JobSpec};
use crate::db::{Db, Pause, RunRecord};
use crate::runner::Outcome;
use crate::schedule::{dst, NextBeyond, Schedule};
use crate::scheduler::Start;

fn ts(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "-".to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%SZ").to_string(),
    )
}

fn table(rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[c]));
            }
        }
        println!("{}", line.trim_end());
    }
}

/// How far ahead `validate` looks at cron jobs: for DST changes they fire
/// in, and for whether they fire at all.
const WARNING_HORIZON_MONTHS: u32 = 12;

pub fn validate(config: &Config, now: DateTime<Utc>) {
    let enabled = config.jobs.iter().filter(|j| j.enabled).count();
    println!(
        "{}: ok, {} job{} ({enabled} enabled)",
        config.path.display(),
        config.jobs.len(),
        if config.jobs.len() == 1 { "" } else { "s" }
    );
    for j in &config.jobs {
        let tz = match j.schedule {
            Schedule::Cron { tz, .. } => format!(" ({tz})"),
            Schedule::Every { .. } => String::new(),
        };
        let off = if j.enabled { "" } else { " [disabled]" };
        println!("  {}: {} {}{tz}{off}", j.name, j.kind, j.schedule);
    }
    // Never the URL or headers: they may hold tokens.
    for t in &config.notify {
        let how = match &t.channel {
            crate::config::Channel::Webhook(hook) => hook.format.as_str().to_string(),
            crate::config::Channel::Email(mail) => format!(
                "{}:{} {}, {} recipient{}",
                mail.host,
                mail.port,
                mail.tls.as_str(),
                mail.to.len(),
                if mail.to.len() == 1 { "" } else { "s" }
            ),
            crate::config::Channel::PagerDuty(_) => "events API v2".to_string(),
        };
        println!("  notify {}: {} ({how})", t.name, t.kind());
    }
    for p in &config.people {
        println!("  person {}: {}", p.name, p.notify.join(", "));
    }
    for (name, s) in &config.oncall {
        let n = |k: usize, what: &str| format!("{k} {what}{}", if k == 1 { "" } else { "s" });
        println!(
            "  oncall {name}: {}, {} ({})",
            n(s.layers.len(), "layer"),
            n(s.overrides.len(), "override"),
            s.timezone()
        );
    }
    for m in &config.maintenance {
        let when = match &m.window {
            crate::schedule::Window::Recurring { start, duration } => format!(
                "{start} for {} ({})",
                humantime::format_duration(*duration),
                m.timezone
            ),
            crate::schedule::Window::Once { .. } => "once".to_string(),
        };
        let state = match (m.window.covering(now), m.window.next_after(now)) {
            (Some((_, end)), _) => format!("open until {}", ts(Some(end))),
            (None, Some((start, end))) => format!("next {} to {}", ts(Some(start)), ts(Some(end))),
            (None, None) => "over".to_string(),
        };
        println!(
            "  maintenance {}: {when}, {state}; match {}",
            m.name,
            m.matches.join(", ")
        );
    }
    let mut warnings = cron_warnings(config, now);
    warnings.extend(config.warnings.iter().cloned());
    // In file order, as errors are.
    warnings.sort_by_key(|w| (w.line, w.column));
    for w in warnings {
        eprintln!("warning: {w}");
    }
}

/// Warnings about cron jobs in the next [`WARNING_HORIZON_MONTHS`]: the file
/// is valid, but the operator should know. One per job that fires at a
/// local time a DST change of its zone skips or repeats (what happens on
/// those days), and one per job that next fires later than that (a leap
/// day, a year field) or never again (every year it names has passed).
fn cron_warnings(config: &Config, now: DateTime<Utc>) -> Vec<crate::config::Problem> {
    let until = now
        .checked_add_months(chrono::Months::new(WARNING_HORIZON_MONTHS))
        .unwrap_or(now);
    let mut warnings = Vec::new();
    for j in &config.jobs {
        let Schedule::Cron { expr, tz, .. } = &j.schedule else {
            continue;
        };
        let mut warn = |message: String| {
            let (line, column) = j.schedule_at.unwrap_or((1, 1));
            warnings.push(crate::config::Problem {
                file: config.path.display().to_string(),
                line,
                column,
                section: Some(crate::config::Section::Job(j.name.clone())),
                key: None,
                message,
            });
        };
        let changes = dst::changes(&j.schedule, now, until);
        if !changes.is_empty() {
            let list: Vec<String> = changes.iter().map(ToString::to_string).collect();
            warn(format!(
                "cron {expr:?} in {tz} fires inside a DST change: {}",
                list.join("; ")
            ));
        }
        match j.schedule.next_beyond(now, until) {
            Some(NextBeyond::At(next)) => {
                let local = if *tz == Tz::UTC {
                    String::new()
                } else {
                    format!(
                        " ({})",
                        next.with_timezone(tz).format("%Y-%m-%d %H:%M:%S %Z")
                    )
                };
                warn(format!(
                    "cron {expr:?} next fires at {}{local}, more than a year from now",
                    next.format("%Y-%m-%dT%H:%M:%SZ")
                ));
            }
            Some(NextBeyond::NoneLeft) => warn(format!(
                "cron {expr:?} has no fire time left: the job never runs again"
            )),
            None => {}
        }
    }
    warnings
}

pub fn run_job(name: &str, outcome: &Outcome) -> ExitCode {
    match outcome {
        Outcome::Ran(r) => {
            let run = r
                .run_id
                .map_or_else(String::new, |id| format!(" (run {id})"));
            let why = r.error.as_deref().map_or_else(String::new, |e| {
                format!(": {}", e.lines().next().unwrap_or(""))
            });
            let tries = if r.attempts > 1 {
                format!(" after {} attempts", r.attempts)
            } else {
                String::new()
            };
            println!(
                "{name}: {} in {} ms{tries}{why}{run}",
                r.status,
                r.duration.as_millis()
            );
        }
        Outcome::Skipped => println!("{name}: skipped: a run of this job is still going"),
        Outcome::Taken => {
            println!("{name}: not run: a run for this second already exists; try again")
        }
        // Manual runs are not held back by a pause; kept for completeness.
        Outcome::Paused => println!("{name}: not run: the job is paused"),
        Outcome::Elsewhere => println!("{name}: not run: {}", ops_worker_jobs::push::NOT_RUN_HERE),
    }
    super::outcome_code(outcome)
}

/// The PAUSED column: `until 2026-11-26 12:00:00Z (reason)`, or `until
/// resumed (...)` for a pause with no end.
fn paused_cell(p: Option<&Pause>) -> String {
    let Some(p) = p else {
        return "-".to_string();
    };
    let until = match p.until {
        Some(_) => format!("until {}", ts(p.until)),
        None => "until resumed".to_string(),
    };
    match &p.reason {
        Some(r) => format!("{until} ({r})"),
        None => until,
    }
}

pub async fn list(config: &Config, db: &Db, now: DateTime<Utc>, json: bool) -> anyhow::Result<()> {
    let rows = crate::overview::jobs(config, db, now).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let mut out = vec![[
        "NAME",
        "KIND",
        "SCHEDULE",
        "TZ",
        "LAST",
        "LAST RUN",
        "LAST SUCCESS",
        "NEXT",
        "PAUSED",
    ]
    .map(String::from)
    .to_vec()];
    for r in rows {
        out.push(vec![
            r.name,
            r.kind,
            r.schedule,
            r.timezone,
            r.last_status.unwrap_or_else(|| "-".into()),
            ts(r.last_run),
            ts(r.last_success),
            if r.enabled {
                ts(r.next_fire)
            } else {
                "disabled".into()
            },
            paused_cell(r.paused.as_ref()),
        ]);
    }
    table(&out);
    Ok(())
}

pub fn history(runs: &[RunRecord], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(runs)?);
        return Ok(());
    }
    if runs.is_empty() {
        println!("no runs recorded");
        return Ok(());
    }
    let mut out = vec![[
        "ID",
        "JOB",
        "SCHEDULED FOR",
        "TRIGGER",
        "TRY",
        "STATUS",
        "MS",
        "WORKER",
        "DETAIL",
    ]
    .map(String::from)
    .to_vec()];
    for r in runs {
        // The error when there is one, else what the job reported.
        let detail = r.error.as_deref().or(r.output.as_deref()).unwrap_or("");
        let mut err = detail.lines().next().unwrap_or("").to_string();
        if err.chars().count() > 100 {
            err = err.chars().take(97).collect::<String>() + "...";
        }
        out.push(vec![
            r.id.to_string(),
            r.job_name.clone(),
            slot_and_jitter(r),
            r.trigger.to_string(),
            r.attempt.to_string(),
            r.status.to_string(),
            r.duration_ms.map_or_else(|| "-".into(), |d| d.to_string()),
            r.worker_id.clone(),
            err,
        ]);
    }
    table(&out);
    Ok(())
}

/// The slot, and the jitter its run waited for: `2026-11-24 10:00:00Z +19.625s`.
fn slot_and_jitter(r: &RunRecord) -> String {
    let slot = ts(Some(r.scheduled_for));
    match r.jitter_ms {
        Some(ms) => format!("{slot} +{}.{:03}s", ms / 1000, ms % 1000),
        None => slot,
    }
}

pub fn next(spec: &JobSpec, last_slot: Option<DateTime<Utc>>, now: DateTime<Utc>, count: usize) {
    let start = Start {
        last_slot,
        armed_at: now,
    };
    let tz = spec.timezone;
    println!("{}: {} ({tz})", spec.name, spec.schedule);
    if !spec.enabled {
        println!("  (disabled: it will not fire until enabled)");
    }
    let fires = dst::fire_times(&spec.schedule, now, start.anchor(), count);
    if fires.is_empty() {
        println!("  no further fire times");
    }
    for f in fires {
        // What a DST change does to this fire time, if anything.
        let marks: String = f.marks.iter().map(|m| format!("  ({m})")).collect();
        println!(
            "  {}  {}{marks}",
            f.at.format("%Y-%m-%dT%H:%M:%SZ"),
            f.at.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S %Z")
        );
    }
}

pub fn alerts(
    alerts: &[ops_worker_jobs::store::Alert],
    quiet: &ops_worker_jobs::silence::Quiet,
    now: DateTime<Utc>,
    json: bool,
) -> anyhow::Result<()> {
    let silenced = |a: &ops_worker_jobs::store::Alert| crate::ops::silenced(quiet, a);
    if json {
        let mut out = Vec::new();
        for a in alerts {
            let mut v = serde_json::to_value(a)?;
            if let Some(o) = v.as_object_mut() {
                o.insert("silenced".into(), silenced(a).map(|w| w.to_string()).into());
            }
            out.push(v);
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    if alerts.is_empty() {
        println!("no alerts");
        return Ok(());
    }
    let mut out = vec![[
        "ID", "STATUS", "SEVERITY", "SUBJECT", "OPENED", "FOR", "LEVEL", "SILENCED", "MESSAGE",
    ]
    .map(String::from)
    .to_vec()];
    for a in alerts {
        let end = a.resolved_at.unwrap_or(now);
        let age = (end - a.opened_at).to_std().unwrap_or_default();
        let age =
            humantime::format_duration(std::time::Duration::from_secs(age.as_secs() / 60 * 60))
                .to_string();
        let status = match (&a.acknowledged_by, a.status) {
            (Some(by), ops_worker_jobs::store::AlertStatus::Acknowledged) => {
                format!("acknowledged ({by})")
            }
            (_, s) => s.to_string(),
        };
        out.push(vec![
            a.id.to_string(),
            status,
            a.severity.to_string(),
            a.subject.clone(),
            ts(Some(a.opened_at)),
            if age == "0s" { "<1m".into() } else { age },
            // The last escalation step paged; `-` before the first.
            match a.escalation_level {
                0 => "-".into(),
                n => n.to_string(),
            },
            silenced(a).map_or_else(|| "-".into(), |w| w.to_string()),
            a.message.clone(),
        ]);
    }
    table(&out);
    Ok(())
}

/// `silence list`: id, glob, from, until, who, why.
pub fn silences(
    silences: &[ops_worker_jobs::store::Silence],
    now: DateTime<Utc>,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(silences)?);
        return Ok(());
    }
    if silences.is_empty() {
        println!("no silences");
        return Ok(());
    }
    let mut out = vec![["ID", "MATCH", "FROM", "UNTIL", "STATE", "BY", "REASON"]
        .map(String::from)
        .to_vec()];
    for s in silences {
        out.push(vec![
            s.id.to_string(),
            s.pattern.clone(),
            ts(Some(s.starts_at)),
            ts(Some(s.ends_at)),
            if s.active(now) { "active" } else { "ended" }.to_string(),
            s.created_by.clone(),
            s.reason.clone(),
        ]);
    }
    table(&out);
    Ok(())
}

/// `status`: every worker with its state (`running`, `stale`, `stopped`)
/// as `health` would judge it.
pub fn workers(
    workers: &[crate::db::Worker],
    now: DateTime<Utc>,
    json: bool,
) -> anyhow::Result<()> {
    use crate::heartbeat::short_hash;
    let state = |w: &crate::db::Worker| crate::heartbeat::state(w, now);
    if json {
        let list: Vec<serde_json::Value> = workers
            .iter()
            .map(|w| {
                let mut v = serde_json::to_value(w).unwrap_or_default();
                v["state"] = state(w).into();
                v
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    if workers.is_empty() {
        println!("no workers have run against this database");
        return Ok(());
    }
    let mut out = vec![[
        "WORKER",
        "STATE",
        "HOST",
        "PID",
        "VERSION",
        "STARTED",
        "HEARTBEAT",
        "CONFIG",
    ]
    .map(String::from)
    .to_vec()];
    for w in workers {
        let age = (now - w.heartbeat_at).to_std().unwrap_or_default();
        out.push(vec![
            w.id.clone(),
            state(w).to_string(),
            w.host.clone(),
            w.pid.to_string(),
            w.version.clone(),
            ts(Some(w.started_at)),
            format!(
                "{} ago",
                humantime::format_duration(std::time::Duration::from_secs(age.as_secs()))
            ),
            match &w.config_error {
                None => short_hash(&w.config_hash).to_string(),
                Some(_) => format!("{} (edit rejected)", short_hash(&w.config_hash)),
            },
        ]);
    }
    table(&out);
    // A worker still running its previous schedule says why.
    for w in workers.iter().filter(|w| w.stopped_at.is_none()) {
        if let Some(error) = &w.config_error {
            println!(
                "worker {}: schedules.toml on disk was rejected, still running config {}: {error}",
                w.id,
                short_hash(&w.config_hash)
            );
        }
    }
    Ok(())
}
