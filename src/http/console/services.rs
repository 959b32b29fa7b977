//! The services page (`/services`): per service of `service_health`, its
//! state and since when, uptime over 24 h and 7 d, its recent down episodes
//! and a latency line over 24 h, drawn on the server as SVG. The checks come
//! from `Db::service_checks`; uptime is the report's own computation
//! (`report::compute::service_figures`), so the two cannot disagree.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Extension;
use chrono::{DateTime, TimeDelta, Utc};
use ops_worker_jobs::report::compute::service_figures;
use ops_worker_jobs::report::Period;
use ops_worker_jobs::store::{HealthCheck, HealthStatus, HealthStore};
use serde::Serialize;

use super::session::Session;
use super::view::{render, when, when_opt, Fragment, PageResult, When};
use crate::http::params::Params;
use crate::http::AppState;

/// Down episodes listed per service, newest first.
const EPISODES: usize = 10;
/// The latency chart's size, in SVG units.
const CHART_W: f64 = 600.0;
const CHART_H: f64 = 60.0;

/// A stretch of consecutive `down` checks: from the first to the next
/// check that was not down (`None`: still down).
#[derive(Debug, PartialEq)]
struct Episode {
    start: DateTime<Utc>,
    end: Option<DateTime<Utc>>,
}

/// The down episodes of `checks` (one service's, oldest first), newest first.
fn episodes(checks: &[HealthCheck]) -> Vec<Episode> {
    let mut out: Vec<Episode> = Vec::new();
    let mut open: Option<DateTime<Utc>> = None;
    for c in checks {
        match (c.status == HealthStatus::Down, open) {
            (true, None) => open = Some(c.checked_at),
            (false, Some(start)) => {
                out.push(Episode {
                    start,
                    end: Some(c.checked_at),
                });
                open = None;
            }
            _ => {}
        }
    }
    out.extend(open.map(|start| Episode { start, end: None }));
    out.reverse();
    out
}

/// The latency line of `checks` over `[start, end)`: SVG polyline points
/// (time left to right, the largest latency at the top) and that largest.
fn latency_line(
    checks: &[HealthCheck],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> (String, Option<i64>) {
    let pts: Vec<(DateTime<Utc>, i64)> = checks
        .iter()
        .filter(|c| c.checked_at >= start && c.checked_at < end)
        .filter_map(|c| c.latency_ms.map(|l| (c.checked_at, l)))
        .collect();
    let max = pts.iter().map(|(_, l)| *l).max();
    let span = (end - start).num_milliseconds().max(1) as f64;
    let top = max.unwrap_or(1).max(1) as f64;
    let points = pts
        .iter()
        .map(|(t, l)| {
            let x = (*t - start).num_milliseconds() as f64 / span * CHART_W;
            let y = CHART_H - (*l as f64 / top) * (CHART_H - 2.0);
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ");
    (points, max)
}

#[derive(Serialize)]
struct EpisodeRow {
    start: When,
    end: Option<When>,
    length: String,
}

#[derive(Serialize)]
struct ServiceView {
    service: String,
    job_name: String,
    status: String,
    since: When,
    checked: When,
    latency_ms: Option<i64>,
    error: Option<String>,
    uptime_24h: Option<String>,
    uptime_7d: Option<String>,
    episodes_7d: u64,
    episodes: Vec<EpisodeRow>,
    latency_points: String,
    latency_max: Option<i64>,
}

#[derive(Serialize)]
struct Page {
    session: Session,
    services: Vec<ServiceView>,
    chart_w: f64,
    chart_h: f64,
}

fn pct(p: Option<f64>) -> Option<String> {
    p.map(|p| format!("{p:.2} %"))
}

/// `GET /services`.
pub async fn page(
    State(s): State<AppState>,
    Extension(session): Extension<Session>,
    fragment: Fragment,
    p: Params,
) -> PageResult {
    p.only(&[])?;
    let now = s.clock.now();
    let day = now - TimeDelta::hours(24);
    let week = now - TimeDelta::days(7);
    let period = |label: &str, start| Period {
        label: label.to_string(),
        start,
        end: now,
    };
    let mut services = Vec::new();
    for h in s.db.service_health().await? {
        let checks = s.db.service_checks(&h.service, week, now).await?;
        let fig = |p: &Period| service_figures(p, &checks).into_iter().next();
        let (f24, f7) = (fig(&period("24h", day)), fig(&period("7d", week)));
        let (latency_points, latency_max) = latency_line(&checks, day, now);
        services.push(ServiceView {
            job_name: h.job_name,
            status: h.status.to_string(),
            since: when(h.since, now),
            checked: when(h.checked_at, now),
            latency_ms: h.latency_ms,
            error: h.error,
            uptime_24h: pct(f24.and_then(|f| f.uptime_pct)),
            uptime_7d: pct(f7.as_ref().and_then(|f| f.uptime_pct)),
            episodes_7d: f7.map_or(0, |f| f.down_episodes),
            episodes: episodes(&checks)
                .into_iter()
                .take(EPISODES)
                .map(|e| EpisodeRow {
                    start: when(e.start, now),
                    end: when_opt(e.end, now),
                    length: super::view::relative(e.end.unwrap_or(now) - e.start)
                        .trim_start_matches("in ")
                        .to_string(),
                })
                .collect(),
            latency_points,
            latency_max,
            service: h.service,
        });
    }
    render(
        "services.html",
        fragment,
        StatusCode::OK,
        Page {
            session,
            services,
            chart_w: CHART_W,
            chart_h: CHART_H,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(minute: i64, status: HealthStatus, latency: Option<i64>) -> HealthCheck {
        HealthCheck {
            service: "api".into(),
            job_name: "h".into(),
            status,
            http_status: None,
            latency_ms: latency,
            error: None,
            checked_at: DateTime::UNIX_EPOCH + TimeDelta::minutes(minute),
        }
    }

    #[test]
    fn episodes_are_stretches_of_down_checks_newest_first() {
        use HealthStatus::{Degraded, Down, Up};
        let at = |m| DateTime::UNIX_EPOCH + TimeDelta::minutes(m);
        let checks = [
            check(0, Down, None),
            check(1, Down, None),
            check(2, Up, None),
            check(3, Degraded, None),
            check(4, Down, None),
        ];
        assert_eq!(
            episodes(&checks),
            [
                Episode {
                    start: at(4),
                    end: None
                },
                Episode {
                    start: at(0),
                    end: Some(at(2))
                },
            ]
        );
        assert!(episodes(&checks[2..4]).is_empty());
    }

    #[test]
    fn latency_line_spans_the_window_with_the_largest_at_the_top() {
        let checks = [
            check(-1, HealthStatus::Up, Some(999)), // before the window
            check(0, HealthStatus::Up, Some(50)),
            check(5, HealthStatus::Down, None),
            check(10, HealthStatus::Up, Some(100)),
        ];
        let start = DateTime::UNIX_EPOCH;
        let (points, max) = latency_line(&checks, start, start + TimeDelta::minutes(20));
        assert_eq!(max, Some(100));
        assert_eq!(points, "0.0,31.0 300.0,2.0");
    }
}
