//! The figures of an operations report, from what the store read for its
//! period (see the `period` module for which period that is).
//!
//! Nothing here touches storage or the clock: [`compute`] takes the rows
//! ([`RunFact`], [`HealthCheck`], [`Alert`], [`MetricSample`]) and returns a
//! [`ReportData`], which serialises to JSON and renders (in the `markdown`
//! module) as Markdown ([`ReportData::markdown`]) or as one chat line
//! ([`ReportData::summary`]).
//!
//! Every figure is defined on the struct field that holds it. Times are
//! compared as half-open ranges: an instant belongs to a period when
//! `start <= t < end`.

use std::collections::BTreeMap;

use crate::tz::Tz;
use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};

use super::period::Period;
use crate::store::{Alert, HealthCheck, HealthStatus, MetricSample, RunFact, Severity};

/// A whole report: what [`compute`] returns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportData {
    /// The report's name in the schedules (e.g. `daily`).
    pub name: String,
    pub period: Period,
    /// The IANA name of the zone whose calendar defines the period.
    pub timezone: String,
    pub generated_at: DateTime<Utc>,
    /// One per job with runs in the period, by job name.
    pub jobs: Vec<JobFigures>,
    /// One per service with checks, by service name.
    pub services: Vec<ServiceFigures>,
    pub alerts: AlertFigures,
    /// One per series with samples in the period, by name then labels.
    pub metrics: Vec<MetricFigures>,
}

/// One job over the period, from its runs with `scheduled_for` in
/// `[start, end)` (every attempt, manual runs and retries included).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobFigures {
    pub job: String,
    /// Rows whose status is not `skipped` (every attempt, manual included,
    /// still `running` included).
    pub runs: u64,
    /// Rows with status `success`.
    pub successes: u64,
    /// Rows with status `failed`, `panicked`, `interrupted` or `abandoned`.
    pub failures: u64,
    /// Rows with status `timeout`.
    pub timeouts: u64,
    /// Rows with status `skipped` (not runs).
    pub skipped: u64,
    /// Rows still `running` (counted in `runs`, not in the success rate).
    pub running: u64,
    /// The sum of `missed` over all rows, skipped ones included.
    pub missed: i64,
    /// `100 * successes / (runs - running)`; None when no run has finished.
    pub success_rate_pct: Option<f64>,
    /// Nearest-rank percentiles of `duration_ms` over the rows that are not
    /// skipped and have a duration: the value at index `ceil(q * n) - 1` of
    /// the sorted list. None when there is no such row.
    pub duration_ms_p50: Option<i64>,
    pub duration_ms_p95: Option<i64>,
    pub duration_ms_max: Option<i64>,
    /// The largest `started_at - scheduled_for - jitter_ms`, in ms, over the
    /// rows that are not skipped and whose trigger is `schedule` or
    /// `catch_up` (manual runs and retries do not start at their slot; a
    /// slot's jitter is a planned delay, not lateness). None if there is none.
    pub lateness_ms_max: Option<i64>,
}

/// One service over the period, from its health checks.
///
/// Each check's status holds from its `checked_at` until the service's next
/// check (or the end of the period). The newest check before `start` (the
/// carry-in) gives the status at `start`; checks at or after `end` and older
/// carry-ins are ignored. Degraded counts as up.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceFigures {
    pub service: String,
    /// Checks with `checked_at` in `[start, end)` (not the carry-in).
    pub checks: u64,
    /// The observed window, in ms: from `start` if there is a carry-in check,
    /// else from the first check in the period; to `end`. 0 when the service
    /// has no check before `end`.
    pub observed_ms: i64,
    /// Time spent down inside the observed window, in ms: the total length
    /// inside the period of the down episodes.
    pub down_ms: i64,
    /// `100 * (observed_ms - down_ms) / observed_ms`; None if nothing was observed.
    pub uptime_pct: Option<f64>,
    /// Maximal stretches of consecutive `down` checks (the carry-in
    /// included) that last some time inside the period: a stretch carried in
    /// from before `start` or running past `end` counts once.
    pub down_episodes: u64,
    /// The largest `latency_ms` of the checks in the period (not the carry-in).
    pub latency_ms_max: Option<i64>,
    /// The status in force at the end of the period, if any check was seen.
    pub last_status: Option<HealthStatus>,
}

/// The alerts over the period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertFigures {
    /// Alerts with `opened_at` in `[start, end)`.
    pub opened: u64,
    /// Alerts with `resolved_at` in `[start, end)`.
    pub resolved: u64,
    /// Alerts opened before `end` and not resolved before `end`.
    pub still_open: u64,
    /// Alerts with `acknowledged_at` in `[start, end)`.
    pub acknowledged: u64,
    /// Mean of `acknowledged_at - opened_at`, in seconds, over the alerts
    /// acknowledged in the period (whenever they opened); None if none.
    pub mean_ack_secs: Option<f64>,
    /// Mean of `resolved_at - opened_at`, in seconds, over the alerts
    /// resolved in the period (whenever they opened); None if none.
    pub mean_resolve_secs: Option<f64>,
    /// The alerts opened in the period, by `opened_at` then id.
    pub opened_alerts: Vec<OpenedAlert>,
}

/// An alert opened in the period, as the report lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenedAlert {
    pub id: i64,
    pub subject: String,
    pub severity: Severity,
    pub message: String,
    pub opened_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
}

/// One series (name and labels) over the period, from its samples with
/// `collected_at` in `[start, end)`. NaN samples are left out (a series with
/// nothing else is not listed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricFigures {
    pub name: String,
    /// Sorted by label name; serialised as a JSON object.
    #[serde(serialize_with = "labels_as_map")]
    pub labels: Vec<(String, String)>,
    pub samples: u64,
    pub min: f64,
    /// The arithmetic mean of the samples.
    pub avg: f64,
    pub max: f64,
}

fn labels_as_map<S: Serializer>(labels: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(labels.iter().map(|(k, v)| (k, v)))
}

/// Computes the report `name` for `period`, whose calendar is `tz`'s.
///
/// `runs` are the runs scheduled in the period, `checks` the health checks in
/// it plus at most one carry-in per service just before `start`, `alerts`
/// those that may touch the period, `samples` those collected in it. Rows
/// outside the period are ignored wherever a definition says "in the
/// period", so a caller may pass more than that. See the field docs of
/// [`JobFigures`], [`ServiceFigures`], [`AlertFigures`] and
/// [`MetricFigures`] for each figure.
#[allow(clippy::too_many_arguments)]
pub fn compute(
    name: &str,
    period: &Period,
    tz: Tz,
    generated_at: DateTime<Utc>,
    runs: &[RunFact],
    checks: &[HealthCheck],
    alerts: &[Alert],
    samples: &[MetricSample],
) -> ReportData {
    ReportData {
        name: name.to_string(),
        period: period.clone(),
        timezone: tz.name().to_string(),
        generated_at,
        jobs: job_figures(period, runs),
        services: service_figures(period, checks),
        alerts: alert_figures(period, alerts),
        metrics: metric_figures(period, samples),
    }
}

/// The value at index `ceil(pct/100 * n) - 1` of `sorted` (nearest rank),
/// in integers so that 95 % of 20 is exactly 19.
fn nearest_rank(sorted: &[i64], pct: usize) -> Option<i64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let rank = (pct * n).div_ceil(100).clamp(1, n);
    Some(sorted[rank - 1])
}

fn job_figures(period: &Period, runs: &[RunFact]) -> Vec<JobFigures> {
    let mut by_job: BTreeMap<&str, Vec<&RunFact>> = BTreeMap::new();
    for run in runs.iter().filter(|r| period.contains(r.scheduled_for)) {
        by_job.entry(run.job.as_str()).or_default().push(run);
    }
    by_job
        .into_iter()
        .map(|(job, rows)| {
            let count =
                |f: &dyn Fn(&str) -> bool| rows.iter().filter(|r| f(&r.status)).count() as u64;
            let skipped = count(&|s| s == "skipped");
            let runs = rows.len() as u64 - skipped;
            let successes = count(&|s| s == "success");
            let failures =
                count(&|s| matches!(s, "failed" | "panicked" | "interrupted" | "abandoned"));
            let timeouts = count(&|s| s == "timeout");
            let running = count(&|s| s == "running");
            let finished = runs - running;
            let ran = || rows.iter().filter(|r| r.status != "skipped");
            let mut durations: Vec<i64> = ran().filter_map(|r| r.duration_ms).collect();
            durations.sort_unstable();
            JobFigures {
                job: job.to_string(),
                runs,
                successes,
                failures,
                timeouts,
                skipped,
                running,
                missed: rows.iter().map(|r| i64::from(r.missed)).sum(),
                success_rate_pct: (finished > 0)
                    .then(|| 100.0 * successes as f64 / finished as f64),
                duration_ms_p50: nearest_rank(&durations, 50),
                duration_ms_p95: nearest_rank(&durations, 95),
                duration_ms_max: durations.last().copied(),
                lateness_ms_max: ran()
                    .filter(|r| matches!(r.trigger.as_str(), "schedule" | "catch_up"))
                    .map(|r| {
                        (r.started_at - r.scheduled_for).num_milliseconds()
                            - r.jitter_ms.unwrap_or(0)
                    })
                    .max(),
            }
        })
        .collect()
}

/// Per service, its figures over `period` from `checks` (each service's
/// carry-in included); the report's and the console's services page's.
pub fn service_figures(period: &Period, checks: &[HealthCheck]) -> Vec<ServiceFigures> {
    let mut by_service: BTreeMap<&str, Vec<&HealthCheck>> = BTreeMap::new();
    for check in checks {
        by_service
            .entry(check.service.as_str())
            .or_default()
            .push(check);
    }
    by_service
        .into_iter()
        .map(|(service, mut checks)| {
            checks.sort_by_key(|c| c.checked_at); // stable: equal times keep their order
            let carry_in = checks.iter().rev().find(|c| c.checked_at < period.start);
            let inside: Vec<&HealthCheck> = checks
                .iter()
                .copied()
                .filter(|c| period.contains(c.checked_at))
                .collect();
            // (from, status): each holds until the next one's `from`, the last until `end`.
            let steps: Vec<(DateTime<Utc>, HealthStatus)> = carry_in
                .map(|c| (period.start, c.status))
                .into_iter()
                .chain(inside.iter().map(|c| (c.checked_at, c.status)))
                .collect();
            let observed_ms = steps
                .first()
                .map_or(0, |(from, _)| (period.end - *from).num_milliseconds());
            let (mut down_ms, mut down_episodes) = (0, 0);
            let mut stretch: Option<i64> = None; // length so far of the current down stretch
            for (i, (from, status)) in steps.iter().enumerate() {
                let to = steps.get(i + 1).map_or(period.end, |(t, _)| *t);
                let len = (to - *from).num_milliseconds();
                if *status == HealthStatus::Down {
                    down_ms += len;
                    *stretch.get_or_insert(0) += len;
                } else if let Some(len) = stretch.take() {
                    down_episodes += u64::from(len > 0);
                }
            }
            if let Some(len) = stretch {
                down_episodes += u64::from(len > 0);
            }
            ServiceFigures {
                service: service.to_string(),
                checks: inside.len() as u64,
                observed_ms,
                down_ms,
                uptime_pct: (observed_ms > 0)
                    .then(|| 100.0 * (observed_ms - down_ms) as f64 / observed_ms as f64),
                down_episodes,
                latency_ms_max: inside.iter().filter_map(|c| c.latency_ms).max(),
                last_status: steps.last().map(|(_, s)| *s),
            }
        })
        .collect()
}

fn mean_secs(deltas: impl Iterator<Item = chrono::TimeDelta>) -> (u64, Option<f64>) {
    let (n, total_ms) = deltas.fold((0u64, 0i128), |(n, t), d| {
        (n + 1, t + i128::from(d.num_milliseconds()))
    });
    (n, (n > 0).then(|| total_ms as f64 / 1000.0 / n as f64))
}

fn alert_figures(period: &Period, alerts: &[Alert]) -> AlertFigures {
    let in_period = |t: Option<DateTime<Utc>>| t.is_some_and(|t| period.contains(t));
    let mut opened_alerts: Vec<OpenedAlert> = alerts
        .iter()
        .filter(|a| period.contains(a.opened_at))
        .map(|a| OpenedAlert {
            id: a.id,
            subject: a.subject.clone(),
            severity: a.severity,
            message: a.message.clone(),
            opened_at: a.opened_at,
            acknowledged_at: a.acknowledged_at,
            resolved_at: a.resolved_at,
        })
        .collect();
    opened_alerts.sort_by_key(|a| (a.opened_at, a.id));
    let (acknowledged, mean_ack_secs) = mean_secs(
        alerts
            .iter()
            .filter(|a| in_period(a.acknowledged_at))
            .filter_map(|a| Some(a.acknowledged_at? - a.opened_at)),
    );
    let (resolved, mean_resolve_secs) = mean_secs(
        alerts
            .iter()
            .filter(|a| in_period(a.resolved_at))
            .filter_map(|a| Some(a.resolved_at? - a.opened_at)),
    );
    AlertFigures {
        opened: opened_alerts.len() as u64,
        resolved,
        still_open: alerts
            .iter()
            .filter(|a| a.opened_at < period.end && a.resolved_at.is_none_or(|r| r >= period.end))
            .count() as u64,
        acknowledged,
        mean_ack_secs,
        mean_resolve_secs,
        opened_alerts,
    }
}

/// A series: its name and its sorted labels.
type SeriesKey<'a> = (&'a str, &'a [(String, String)]);

fn metric_figures(period: &Period, samples: &[MetricSample]) -> Vec<MetricFigures> {
    // Per series, `avg` holds the sum until the end.
    let mut series: BTreeMap<SeriesKey, MetricFigures> = BTreeMap::new();
    for s in samples
        .iter()
        .filter(|s| period.contains(s.collected_at) && !s.value.is_nan())
    {
        let v = s.value;
        let m = series
            .entry((s.name.as_str(), s.labels.as_slice()))
            .or_insert_with(|| MetricFigures {
                name: s.name.clone(),
                labels: s.labels.clone(),
                samples: 0,
                min: v,
                avg: 0.0,
                max: v,
            });
        m.samples += 1;
        m.avg += v;
        m.min = m.min.min(v);
        m.max = m.max.max(v);
    }
    series
        .into_values()
        .map(|mut m| {
            m.avg /= m.samples as f64;
            m
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::report::period::tests::utc;
    use crate::report::PeriodKind;
    use crate::store::{AlertSource, AlertStatus};

    // ---- jobs ----

    pub(crate) fn run(
        job: &str,
        status: &str,
        trigger: &str,
        sched: &str,
        started: &str,
        dur: Option<i64>,
        missed: i32,
    ) -> RunFact {
        RunFact {
            job: job.to_string(),
            status: status.to_string(),
            trigger: trigger.to_string(),
            attempt: if trigger == "retry" { 2 } else { 1 },
            scheduled_for: utc(sched),
            started_at: utc(started),
            duration_ms: dur,
            missed,
            jitter_ms: None,
        }
    }

    pub(crate) fn day() -> Period {
        Period::parse("2026-11-21", PeriodKind::Day, Tz::UTC).unwrap()
    }

    #[test]
    fn report_nearest_rank() {
        let v: Vec<i64> = (1..=20).collect();
        assert_eq!(nearest_rank(&v, 50), Some(10));
        assert_eq!(nearest_rank(&v, 95), Some(19));
        assert_eq!(nearest_rank(&v[..1], 50), Some(1));
        assert_eq!(nearest_rank(&v[..1], 95), Some(1));
        assert_eq!(nearest_rank(&v[..3], 50), Some(2));
        assert_eq!(nearest_rank(&v[..3], 95), Some(3));
        assert_eq!(nearest_rank(&[], 50), None);
    }

    #[test]
    fn report_job_figures() {
        let runs = vec![
            run(
                "backup",
                "success",
                "schedule",
                "2026-11-21T00:00:00Z",
                "2026-11-21T00:00:02Z",
                Some(100),
                0,
            ),
            run(
                "backup",
                "failed",
                "schedule",
                "2026-11-21T01:00:00Z",
                "2026-11-21T01:00:05Z",
                Some(300),
                0,
            ),
            // Retries and manual runs: counted, but not late.
            run(
                "backup",
                "success",
                "retry",
                "2026-11-21T01:00:00Z",
                "2026-11-21T01:05:00Z",
                Some(200),
                0,
            ),
            run(
                "backup",
                "success",
                "manual",
                "2026-11-21T02:00:00Z",
                "2026-11-21T02:30:00Z",
                Some(400),
                0,
            ),
            // Skipped: not a run, no duration, no lateness; its missed count.
            run(
                "backup",
                "skipped",
                "schedule",
                "2026-11-21T03:00:00Z",
                "2026-11-21T03:59:00Z",
                Some(9999),
                1,
            ),
            run(
                "backup",
                "timeout",
                "catch_up",
                "2026-11-21T04:00:00Z",
                "2026-11-21T04:00:10Z",
                Some(1000),
                2,
            ),
            run(
                "backup",
                "running",
                "schedule",
                "2026-11-21T05:00:00Z",
                "2026-11-21T05:00:01Z",
                None,
                0,
            ),
            run(
                "backup",
                "panicked",
                "schedule",
                "2026-11-21T06:00:00Z",
                "2026-11-21T06:00:00.500Z",
                Some(50),
                1,
            ),
            // Outside the period: ignored.
            run(
                "backup",
                "failed",
                "schedule",
                "2026-11-22T00:00:00Z",
                "2026-11-22T00:00:00Z",
                Some(1),
                5,
            ),
            run(
                "flaky",
                "interrupted",
                "schedule",
                "2026-11-21T00:00:00Z",
                "2026-11-21T00:00:00Z",
                Some(10),
                0,
            ),
            run(
                "flaky",
                "abandoned",
                "schedule",
                "2026-11-21T01:00:00Z",
                "2026-11-21T01:00:00Z",
                None,
                0,
            ),
            run(
                "flaky",
                "success",
                "schedule",
                "2026-11-21T02:00:00Z",
                "2026-11-21T02:00:00Z",
                Some(20),
                0,
            ),
            run(
                "a-job",
                "running",
                "manual",
                "2026-11-21T02:00:00Z",
                "2026-11-21T02:00:00Z",
                None,
                0,
            ),
            run(
                "only-skipped",
                "skipped",
                "schedule",
                "2026-11-21T02:00:00Z",
                "2026-11-21T02:00:00Z",
                None,
                3,
            ),
        ];
        let jobs = job_figures(&day(), &runs);
        let names: Vec<&str> = jobs.iter().map(|j| j.job.as_str()).collect();
        assert_eq!(names, ["a-job", "backup", "flaky", "only-skipped"]);

        // backup: 7 runs (not the skipped one), 1 running → 6 finished, 3 successes.
        // Durations sorted: 50 100 200 300 400 1000 → p50 = [ceil(3)-1] = 200,
        // p95 = [ceil(5.7)-1] = 1000. Lateness: 2 s, 5 s, 10 s, 1 s, 0.5 s → 10 s
        // (the retry's 5 min, the manual 30 min and the skipped 59 min do not count).
        let b = &jobs[1];
        assert_eq!(
            *b,
            JobFigures {
                job: "backup".into(),
                runs: 7,
                successes: 3,
                failures: 2,
                timeouts: 1,
                skipped: 1,
                running: 1,
                missed: 4,
                success_rate_pct: Some(50.0),
                duration_ms_p50: Some(200),
                duration_ms_p95: Some(1000),
                duration_ms_max: Some(1000),
                lateness_ms_max: Some(10_000),
            }
        );

        let f = &jobs[2];
        assert_eq!((f.runs, f.successes, f.failures, f.timeouts), (3, 1, 2, 0));
        assert!((f.success_rate_pct.unwrap() - 100.0 / 3.0).abs() < 1e-9);
        assert_eq!(
            (f.duration_ms_p50, f.duration_ms_p95, f.duration_ms_max),
            (Some(10), Some(20), Some(20))
        );
        assert_eq!(f.lateness_ms_max, Some(0));

        let a = &jobs[0];
        assert_eq!((a.runs, a.running, a.success_rate_pct), (1, 1, None));
        assert_eq!(
            (a.duration_ms_p50, a.duration_ms_max, a.lateness_ms_max),
            (None, None, None)
        );

        let s = &jobs[3];
        assert_eq!(
            (s.runs, s.skipped, s.missed, s.success_rate_pct),
            (0, 1, 3, None)
        );
        assert_eq!((s.duration_ms_max, s.lateness_ms_max), (None, None));
    }

    #[test]
    fn report_lateness_counts_from_the_jittered_start() {
        let mut jittered = run(
            "j",
            "success",
            "schedule",
            "2026-11-21T00:00:00Z",
            "2026-11-21T00:00:40Z",
            Some(5),
            0,
        );
        jittered.jitter_ms = Some(38_000);
        let plain = run(
            "j",
            "success",
            "schedule",
            "2026-11-21T01:00:00Z",
            "2026-11-21T01:00:01.500Z",
            Some(5),
            0,
        );
        let jobs = job_figures(&day(), &[jittered, plain]);
        assert_eq!(jobs[0].lateness_ms_max, Some(2_000));
    }

    // ---- services ----

    fn check(service: &str, status: HealthStatus, at: &str, latency: Option<i64>) -> HealthCheck {
        HealthCheck {
            service: service.to_string(),
            job_name: "health".to_string(),
            status,
            http_status: None,
            latency_ms: latency,
            error: None,
            checked_at: utc(at),
        }
    }

    pub(crate) fn service_checks() -> Vec<HealthCheck> {
        use HealthStatus::*;
        vec![
            // api: down since before the period (carry-in), up at 00:30;
            // degraded 12:00-12:10 (counts as up); down from 23:00 past the end.
            check("api", Down, "2026-11-20T23:50:00Z", Some(5000)),
            check("api", Down, "2026-11-21T00:05:00Z", None),
            check("api", Up, "2026-11-21T00:30:00Z", Some(120)),
            check("api", Degraded, "2026-11-21T12:00:00Z", Some(900)),
            check("api", Up, "2026-11-21T12:10:00Z", Some(80)),
            check("api", Down, "2026-11-21T23:00:00Z", None),
            check("api", Down, "2026-11-21T23:30:00Z", None),
            // web: no carry-in, first check at 08:00; down 18:00-20:00.
            check("web", Up, "2026-11-21T08:00:00Z", Some(10)),
            check("web", Down, "2026-11-21T18:00:00Z", Some(30)),
            check("web", Up, "2026-11-21T20:00:00Z", Some(20)),
            check("web", Down, "2026-11-22T00:00:00Z", Some(99)), // after the end: ignored
            // db: only a carry-in (an older one is superseded).
            check("db", Down, "2026-11-19T12:00:00Z", None),
            check("db", Up, "2026-11-20T12:00:00Z", Some(10)),
        ]
    }

    #[test]
    fn report_service_figures() {
        let services = service_figures(&day(), &service_checks());
        let names: Vec<&str> = services.iter().map(|s| s.service.as_str()).collect();
        assert_eq!(names, ["api", "db", "web"]);

        // api: observed 24 h; down 00:00-00:30 (carried in) and 23:00-24:00
        // (past the end): 90 min in 2 episodes; uptime 100 * 22.5 / 24 = 93.75.
        assert_eq!(
            services[0],
            ServiceFigures {
                service: "api".into(),
                checks: 6,
                observed_ms: 86_400_000,
                down_ms: 5_400_000,
                uptime_pct: Some(93.75),
                down_episodes: 2,
                latency_ms_max: Some(900),
                last_status: Some(HealthStatus::Down),
            }
        );
        // db: up all day from the carry-in, no check in the period.
        assert_eq!(
            services[1],
            ServiceFigures {
                service: "db".into(),
                checks: 0,
                observed_ms: 86_400_000,
                down_ms: 0,
                uptime_pct: Some(100.0),
                down_episodes: 0,
                latency_ms_max: None,
                last_status: Some(HealthStatus::Up),
            }
        );
        // web: observed 08:00-24:00 = 16 h, down 2 h: 100 * 14 / 16 = 87.5.
        assert_eq!(
            services[2],
            ServiceFigures {
                service: "web".into(),
                checks: 3,
                observed_ms: 57_600_000,
                down_ms: 7_200_000,
                uptime_pct: Some(87.5),
                down_episodes: 1,
                latency_ms_max: Some(30),
                last_status: Some(HealthStatus::Up),
            }
        );
    }

    #[test]
    fn report_service_down_all_period_and_unobserved() {
        use HealthStatus::*;
        let checks = vec![
            check("x", Down, "2026-11-20T10:00:00Z", None),
            check("x", Down, "2026-11-21T10:00:00Z", None),
            check("late", Up, "2026-11-22T01:00:00Z", None),
        ];
        let s = service_figures(&day(), &checks);
        assert_eq!(s[0].service, "late");
        assert_eq!(
            (s[0].observed_ms, s[0].uptime_pct, s[0].last_status),
            (0, None, None)
        );
        assert_eq!(
            (s[1].down_episodes, s[1].down_ms, s[1].uptime_pct),
            (1, 86_400_000, Some(0.0))
        );
    }

    // ---- alerts ----

    fn alert(id: i64, opened: &str, ack: Option<&str>, resolved: Option<&str>) -> Alert {
        Alert {
            id,
            fingerprint: format!("system:service:s{id}"),
            source: AlertSource::Service,
            subject: format!("s{id}"),
            severity: Severity::Critical,
            status: if resolved.is_some() {
                AlertStatus::Resolved
            } else {
                AlertStatus::Open
            },
            message: format!("s{id} is down"),
            opened_at: utc(opened),
            acknowledged_at: ack.map(utc),
            acknowledged_by: None,
            resolved_at: resolved.map(utc),
            resolution_note: None,
            escalation_level: 0,
            last_escalated_at: None,
            last_notified_at: None,
        }
    }

    pub(crate) fn some_alerts() -> Vec<Alert> {
        vec![
            // Opened before, acknowledged (2h10m = 7800 s) and resolved (3 h = 10800 s) in the period.
            alert(
                1,
                "2026-11-20T22:00:00Z",
                Some("2026-11-21T00:10:00Z"),
                Some("2026-11-21T01:00:00Z"),
            ),
            // Opened, acknowledged (300 s), resolved (1800 s) in the period.
            alert(
                2,
                "2026-11-21T10:00:00Z",
                Some("2026-11-21T10:05:00Z"),
                Some("2026-11-21T10:30:00Z"),
            ),
            // Opened in the period, still open.
            alert(3, "2026-11-21T20:00:00Z", None, None),
            // Opened and acknowledged (1800 s) in the period, resolved after it: still open.
            alert(
                4,
                "2026-11-21T23:00:00Z",
                Some("2026-11-21T23:30:00Z"),
                Some("2026-11-22T01:00:00Z"),
            ),
            // Entirely before, entirely after: nothing.
            alert(
                5,
                "2026-11-19T00:00:00Z",
                Some("2026-11-19T01:00:00Z"),
                Some("2026-11-20T00:00:00Z"),
            ),
            alert(6, "2026-11-22T02:00:00Z", None, None),
            // Opened before, never resolved: still open.
            alert(7, "2026-11-20T12:00:00Z", None, None),
        ]
    }

    #[test]
    fn report_alert_figures() {
        let a = alert_figures(&day(), &some_alerts());
        assert_eq!(
            (a.opened, a.resolved, a.still_open, a.acknowledged),
            (3, 2, 3, 3)
        );
        // (7800 + 300 + 1800) / 3 and (10800 + 1800) / 2.
        assert_eq!(a.mean_ack_secs, Some(3300.0));
        assert_eq!(a.mean_resolve_secs, Some(6300.0));
        let ids: Vec<i64> = a.opened_alerts.iter().map(|o| o.id).collect();
        assert_eq!(ids, [2, 3, 4]);
        assert_eq!(
            a.opened_alerts[0].resolved_at,
            Some(utc("2026-11-21T10:30:00Z"))
        );

        let none = alert_figures(&day(), &[]);
        assert_eq!(
            (
                none.opened,
                none.still_open,
                none.mean_ack_secs,
                none.mean_resolve_secs
            ),
            (0, 0, None, None)
        );
    }

    // ---- metrics ----

    fn sample(name: &str, labels: &[(&str, &str)], value: f64, at: &str) -> MetricSample {
        MetricSample {
            job_name: "capacity".to_string(),
            name: name.to_string(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value,
            collected_at: utc(at),
        }
    }

    pub(crate) fn some_samples() -> Vec<MetricSample> {
        vec![
            sample("load", &[], 1.0, "2026-11-21T00:00:00Z"),
            sample("load", &[], 6.0, "2026-11-21T12:00:00Z"),
            sample("load", &[], 2.0, "2026-11-21T23:59:59Z"),
            sample("load", &[], 100.0, "2026-11-22T00:00:00Z"), // after the end
            sample("load", &[], f64::NAN, "2026-11-21T13:00:00Z"), // left out
            sample("disk", &[("mount", "/data")], 10.0, "2026-11-21T01:00:00Z"),
            sample("disk", &[("mount", "/")], 5.0, "2026-11-21T01:00:00Z"),
            sample("disk", &[("mount", "/")], 7.5, "2026-11-21T02:00:00Z"),
        ]
    }

    #[test]
    fn report_metric_figures() {
        let m = metric_figures(&day(), &some_samples());
        let mf = |name: &str, labels: &[(&str, &str)], samples, min, avg, max| MetricFigures {
            name: name.to_string(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            samples,
            min,
            avg,
            max,
        };
        assert_eq!(
            m,
            vec![
                mf("disk", &[("mount", "/")], 2, 5.0, 6.25, 7.5),
                mf("disk", &[("mount", "/data")], 1, 10.0, 10.0, 10.0),
                mf("load", &[], 3, 1.0, 3.0, 6.0),
            ]
        );
        let json = serde_json::to_value(&m[0]).unwrap();
        assert_eq!(json["labels"], serde_json::json!({"mount": "/"}));
    }
}
