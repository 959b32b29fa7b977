//! The rendering of a [`ReportData`]: the Markdown document
//! ([`ReportData::markdown`]), the one-line chat summary
//! ([`ReportData::summary`]) and their formatting helpers.

use std::fmt::Write as _;

use super::compute::{JobFigures, ReportData};

impl ReportData {
    /// The report as a Markdown document: a title, the UTC range, then the
    /// sections Jobs, Services, Alerts and Metrics (tables; an empty section
    /// says "none"). Percents have 2 decimals; durations are humanised
    /// (`1h 30m`); a figure that does not exist is `-`.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let p = &self.period;
        let _ = writeln!(
            md,
            "# Report {}: {} ({})\n",
            self.name, p.label, self.timezone
        );
        let _ = writeln!(
            md,
            "{} to {} UTC ({}), generated {} UTC.\n",
            p.start.format("%Y-%m-%d %H:%M:%S"),
            p.end.format("%Y-%m-%d %H:%M:%S"),
            humanise_ms(p.duration_ms()),
            self.generated_at.format("%Y-%m-%d %H:%M:%S"),
        );

        md.push_str("## Jobs\n\n");
        if self.jobs.is_empty() {
            md.push_str("none\n\n");
        } else {
            md.push_str(
                "| job | runs | success | failed | timeout | skipped | missed | success % | p50 / p95 / max ms | max lateness ms |\n\
                 |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
            );
            for j in &self.jobs {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} / {} / {} | {} |",
                    cell(&j.job),
                    j.runs,
                    j.successes,
                    j.failures,
                    j.timeouts,
                    j.skipped,
                    j.missed,
                    pct(j.success_rate_pct),
                    opt(j.duration_ms_p50),
                    opt(j.duration_ms_p95),
                    opt(j.duration_ms_max),
                    opt(j.lateness_ms_max),
                );
            }
            md.push('\n');
        }

        md.push_str("## Services\n\n");
        if self.services.is_empty() {
            md.push_str("none\n\n");
        } else {
            md.push_str(
                "| service | uptime % | down episodes | down time | worst latency ms | checks |\n\
                 |---|---:|---:|---:|---:|---:|\n",
            );
            for s in &self.services {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} |",
                    cell(&s.service),
                    pct(s.uptime_pct),
                    s.down_episodes,
                    humanise_ms(s.down_ms),
                    opt(s.latency_ms_max),
                    s.checks,
                );
            }
            md.push('\n');
        }

        md.push_str("## Alerts\n\n");
        let a = &self.alerts;
        if a.opened == 0 && a.resolved == 0 && a.still_open == 0 && a.acknowledged == 0 {
            md.push_str("none\n\n");
        } else {
            let mean = |secs: Option<f64>, n: u64, what: &str| match secs {
                Some(secs) => format!(
                    "{} ({} s, over {n} alert{} {what} in the period)",
                    humanise_ms((secs * 1000.0).round() as i64),
                    number(secs),
                    plural(n)
                ),
                None => "-".to_string(),
            };
            let _ = writeln!(md, "- Opened: {}", a.opened);
            let _ = writeln!(md, "- Resolved: {}", a.resolved);
            let _ = writeln!(md, "- Still open at the end: {}", a.still_open);
            let _ = writeln!(
                md,
                "- MTTA: {}",
                mean(a.mean_ack_secs, a.acknowledged, "acknowledged")
            );
            let _ = writeln!(
                md,
                "- MTTR: {}",
                mean(a.mean_resolve_secs, a.resolved, "resolved")
            );
            md.push_str("\n### Opened\n\n");
            if a.opened_alerts.is_empty() {
                md.push_str("none\n");
            }
            for o in &a.opened_alerts {
                let resolved = match o.resolved_at {
                    Some(r) => format!("resolved {} UTC", r.format("%Y-%m-%d %H:%M:%S")),
                    None => "not resolved".to_string(),
                };
                let _ = writeln!(
                    md,
                    "- #{} [{}] {}: {} (opened {} UTC, {resolved})",
                    o.id,
                    o.severity,
                    one_line(&o.subject),
                    one_line(&o.message),
                    o.opened_at.format("%Y-%m-%d %H:%M:%S"),
                );
            }
            md.push('\n');
        }

        md.push_str("## Metrics\n\n");
        if self.metrics.is_empty() {
            md.push_str("none\n");
        } else {
            md.push_str("| name | labels | min | avg | max |\n|---|---|---:|---:|---:|\n");
            for m in &self.metrics {
                let labels: Vec<String> =
                    m.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} |",
                    cell(&m.name),
                    if labels.is_empty() {
                        "-".to_string()
                    } else {
                        cell(&labels.join(", "))
                    },
                    number(m.min),
                    number(m.avg),
                    number(m.max),
                );
            }
        }
        md
    }

    /// One line for a chat message, e.g. `Report daily 2026-11-21
    /// (Europe/Berlin): 1440 runs, 99.93 % success, 3 failures; 2 services,
    /// worst uptime 99.10 % (api); 1 alert opened, 0 still open`.
    ///
    /// Runs, successes and failures are summed over the jobs; the success
    /// rate is `100 * successes / (runs - running)` over all jobs (left out
    /// when no run finished); timeouts are added as `, N timeouts` when there
    /// are any. The worst uptime is the lowest `uptime_pct` (the first
    /// service by name on a tie), left out when no service was observed.
    pub fn summary(&self) -> String {
        let sum = |f: fn(&JobFigures) -> u64| self.jobs.iter().map(f).sum::<u64>();
        let (runs, successes, failures) =
            (sum(|j| j.runs), sum(|j| j.successes), sum(|j| j.failures));
        let (timeouts, finished) = (sum(|j| j.timeouts), sum(|j| j.runs - j.running));
        let mut line = format!(
            "Report {} {} ({}): {runs} run{}",
            self.name,
            self.period.label,
            self.timezone,
            plural(runs)
        );
        if finished > 0 {
            let _ = write!(
                line,
                ", {:.2} % success",
                100.0 * successes as f64 / finished as f64
            );
        }
        let _ = write!(line, ", {failures} failure{}", plural(failures));
        if timeouts > 0 {
            let _ = write!(line, ", {timeouts} timeout{}", plural(timeouts));
        }
        let services = self.services.len() as u64;
        let _ = write!(line, "; {services} service{}", plural(services));
        let worst = self
            .services
            .iter()
            .filter_map(|s| Some((s.uptime_pct?, &s.service)))
            .fold(None::<(f64, &String)>, |w, (u, s)| match w {
                Some((wu, _)) if wu <= u => w,
                _ => Some((u, s)),
            });
        if let Some((uptime, service)) = worst {
            let _ = write!(line, ", worst uptime {uptime:.2} % ({service})");
        }
        let a = &self.alerts;
        let _ = write!(
            line,
            "; {} alert{} opened, {} still open",
            a.opened,
            plural(a.opened),
            a.still_open
        );
        line
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn pct(p: Option<f64>) -> String {
    p.map_or_else(|| "-".to_string(), |p| format!("{p:.2}"))
}

fn opt(v: Option<i64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// Text on one line, for a list item.
fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

/// Text for a table cell: one line, `|` escaped.
fn cell(s: &str) -> String {
    one_line(s).replace('|', "\\|")
}

/// A number for reading: integers as such, others with 3 decimals (trailing
/// zeros dropped), very small or large ones in scientific notation.
fn number(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let a = v.abs();
    if v.fract() == 0.0 && a < 1e15 {
        format!("{v:.0}")
    } else if (0.001..1e15).contains(&a) {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{v:.3e}")
    }
}

/// `1d 2h 3m 4s`, nonzero parts only; `0s` for nothing, `250ms` under a second.
fn humanise_ms(ms: i64) -> String {
    if ms < 0 {
        return format!("-{}", humanise_ms(-ms));
    }
    if ms == 0 {
        return "0s".to_string();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = ms / 1000;
    let parts = [
        (secs / 86_400, "d"),
        (secs / 3600 % 24, "h"),
        (secs / 60 % 60, "m"),
        (secs % 60, "s"),
    ];
    parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::compute::compute;
    use crate::report::compute::tests::{day, run, service_checks, some_alerts, some_samples};
    use crate::report::period::tests::utc;
    use crate::report::{Period, PeriodKind};
    use crate::tz::{zone, Tz};

    // ---- the whole report ----

    fn full_report() -> ReportData {
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
                1,
            ),
            run(
                "backup",
                "timeout",
                "schedule",
                "2026-11-21T02:00:00Z",
                "2026-11-21T02:00:01Z",
                Some(700),
                0,
            ),
            run(
                "backup",
                "success",
                "schedule",
                "2026-11-21T03:00:00Z",
                "2026-11-21T03:00:00Z",
                Some(200),
                0,
            ),
            run(
                "rotate|logs",
                "success",
                "schedule",
                "2026-11-21T03:00:00Z",
                "2026-11-21T03:00:00Z",
                Some(5),
                0,
            ),
        ];
        compute(
            "daily",
            &day(),
            Tz::UTC,
            utc("2026-11-22T06:00:05Z"),
            &runs,
            &service_checks(),
            &some_alerts(),
            &some_samples(),
        )
    }

    #[test]
    fn report_markdown_has_the_figures() {
        let r = full_report();
        let md = r.markdown();
        assert!(md.starts_with("# Report daily: 2026-11-21 (UTC)\n"), "{md}");
        for needle in [
            "2026-11-21 00:00:00 to 2026-11-22 00:00:00 UTC (1d), generated 2026-11-22 06:00:05 UTC.",
            "## Jobs",
            "| backup | 4 | 2 | 1 | 1 | 0 | 1 | 50.00 | 200 / 700 / 700 | 5000 |",
            "| rotate\\|logs | 1 | 1 | 0 | 0 | 0 | 0 | 100.00 | 5 / 5 / 5 | 0 |",
            "## Services",
            "| api | 93.75 | 2 | 1h 30m | 900 | 6 |",
            "| db | 100.00 | 0 | 0s | - | 0 |",
            "| web | 87.50 | 1 | 2h | 30 | 3 |",
            "## Alerts",
            "- Opened: 3",
            "- Resolved: 2",
            "- Still open at the end: 3",
            "- MTTA: 55m (3300 s, over 3 alerts acknowledged in the period)",
            "- MTTR: 1h 45m (6300 s, over 2 alerts resolved in the period)",
            "- #2 [critical] s2: s2 is down (opened 2026-11-21 10:00:00 UTC, resolved 2026-11-21 10:30:00 UTC)",
            "- #3 [critical] s3: s3 is down (opened 2026-11-21 20:00:00 UTC, not resolved)",
            "## Metrics",
            "| disk | mount=\"/\" | 5 | 6.25 | 7.5 |",
            "| load | - | 1 | 3 | 6 |",
        ] {
            assert!(md.contains(needle), "missing {needle:?} in\n{md}");
        }
        assert!(!md.contains("none"), "{md}");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["period"]["label"], "2026-11-21");
        assert_eq!(json["services"][0]["last_status"], "down");
        assert_eq!(json["alerts"]["opened_alerts"][0]["severity"], "critical");
    }

    #[test]
    fn report_empty_markdown_and_summary() {
        let p = Period::parse("2026-W47", PeriodKind::Week, zone("Europe/Berlin")).unwrap();
        let r = compute(
            "weekly",
            &p,
            zone("Europe/Berlin"),
            utc("2026-11-23T06:00:00Z"),
            &[],
            &[],
            &[],
            &[],
        );
        let md = r.markdown();
        assert!(
            md.starts_with("# Report weekly: 2026-W47 (Europe/Berlin)\n"),
            "{md}"
        );
        assert!(
            md.contains("2026-11-15 23:00:00 to 2026-11-22 23:00:00 UTC (7d)"),
            "{md}"
        );
        for section in [
            "## Jobs\n\nnone\n",
            "## Services\n\nnone\n",
            "## Alerts\n\nnone\n",
            "## Metrics\n\nnone\n",
        ] {
            assert!(md.contains(section), "missing {section:?} in\n{md}");
        }
        assert_eq!(
            r.summary(),
            "Report weekly 2026-W47 (Europe/Berlin): 0 runs, 0 failures; 0 services; 0 alerts opened, 0 still open"
        );
    }

    #[test]
    fn report_summary() {
        // 5 runs, 3 successes of 5 finished = 60 %, 1 failure, 1 timeout;
        // worst uptime web 87.50 %; 3 alerts opened, 3 still open.
        assert_eq!(
            full_report().summary(),
            "Report daily 2026-11-21 (UTC): 5 runs, 60.00 % success, 1 failure, 1 timeout; \
             3 services, worst uptime 87.50 % (web); 3 alerts opened, 3 still open"
        );
    }

    #[test]
    fn report_humanise_and_numbers() {
        assert_eq!(humanise_ms(5_400_000), "1h 30m");
        assert_eq!(humanise_ms(0), "0s");
        assert_eq!(humanise_ms(250), "250ms");
        assert_eq!(humanise_ms(90_061_000), "1d 1h 1m 1s");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(1.0 / 3.0), "0.333");
        assert_eq!(number(0.0001), "1.000e-4");
        assert_eq!(number(-2.5), "-2.5");
    }
}
