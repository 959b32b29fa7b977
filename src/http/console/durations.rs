//! The duration chart of a job's page: how long its recent finished runs
//! took, oldest on the left, as points the template draws as SVG (no
//! script). Pure: the runs come in, coordinates and labels go out.
//!
//! Runs still going have no duration yet and are left out, as are skipped
//! slots: they record 0 ms because nothing ran.

use serde::Serialize;

use super::view::duration_ms;
use crate::db::{RunRecord, RunStatus};

/// The chart's size, in SVG units.
pub const CHART_W: f64 = 600.0;
pub const CHART_H: f64 = 100.0;
/// Room left of the y axis for its labels.
const LEFT: f64 = 64.0;
/// Room above the largest point and below the smallest, and either side.
const PAD: f64 = 8.0;

/// One run's point.
#[derive(Debug, Serialize, PartialEq)]
pub struct Point {
    pub x: String,
    pub y: String,
    /// The timeline's class of the run's status (`m-failed` is red).
    pub class: String,
    /// The slot, duration, status, attempt and worker, for its `<title>`.
    pub label: String,
}

/// What the template draws.
#[derive(Debug, Serialize, PartialEq)]
pub struct Chart {
    pub points: Vec<Point>,
    /// The points joined, for a `<polyline>`.
    pub line: String,
    /// The top of the y axis: the largest duration, as the run table writes it.
    pub max: String,
    pub width: f64,
    pub height: f64,
    pub left: f64,
    pub top: f64,
    pub bottom: f64,
}

/// The chart of `runs` (newest first, as `runs_page` returns them), or
/// `None` when none of them finished with a duration.
pub fn chart(runs: &[RunRecord]) -> Option<Chart> {
    let runs: Vec<(&RunRecord, i64)> = runs
        .iter()
        .rev()
        .filter(|r| r.finished_at.is_some())
        .filter(|r| !matches!(r.status, RunStatus::Running | RunStatus::Skipped))
        .filter_map(|r| r.duration_ms.map(|d| (r, d.max(0))))
        .collect();
    let max = runs.iter().map(|(_, d)| *d).max()?;
    let top = max.max(1) as f64;
    let bottom = CHART_H - PAD;
    let span = CHART_W - LEFT - 2.0 * PAD;
    let step = span / (runs.len().max(2) - 1) as f64;
    let points: Vec<Point> = runs
        .iter()
        .enumerate()
        .map(|(i, (r, d))| Point {
            x: format!("{:.1}", LEFT + PAD + i as f64 * step),
            y: format!("{:.1}", bottom - *d as f64 / top * (bottom - PAD)),
            class: format!("m-{}", r.status),
            label: format!(
                "{}: {} ({}, attempt {}, worker {})",
                r.scheduled_for.format("%Y-%m-%d %H:%M:%S UTC"),
                duration_ms(*d),
                r.status,
                r.attempt,
                r.worker_id
            ),
        })
        .collect();
    Some(Chart {
        line: points
            .iter()
            .map(|p| format!("{},{}", p.x, p.y))
            .collect::<Vec<_>>()
            .join(" "),
        points,
        max: duration_ms(max),
        width: CHART_W,
        height: CHART_H,
        left: LEFT,
        top: PAD,
        bottom,
    })
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeDelta};

    use super::*;
    use crate::db::Trigger;

    fn run(minute: i64, status: RunStatus, duration: Option<i64>) -> RunRecord {
        let at = DateTime::UNIX_EPOCH + TimeDelta::minutes(minute);
        RunRecord {
            id: minute,
            job_name: "j".into(),
            kind: "command".into(),
            scheduled_for: at,
            trigger: Trigger::Schedule,
            attempt: 1,
            worker_id: "w1".into(),
            started_at: at,
            finished_at: (status != RunStatus::Running).then_some(at),
            status,
            error: None,
            output: None,
            duration_ms: duration,
            missed: 0,
            jitter_ms: None,
        }
    }

    #[test]
    fn points_run_oldest_left_with_the_largest_at_the_top() {
        // Newest first, as the page fetches them.
        let runs = [
            run(5, RunStatus::Running, None),
            run(4, RunStatus::Timeout, Some(2000)),
            run(3, RunStatus::Skipped, Some(0)),
            run(2, RunStatus::Failed, Some(500)),
            run(1, RunStatus::Success, Some(1000)),
        ];
        let c = chart(&runs).unwrap();
        let xy: Vec<(&str, &str, &str)> = c
            .points
            .iter()
            .map(|p| (p.x.as_str(), p.y.as_str(), p.class.as_str()))
            .collect();
        // x from 72 to 592 in two steps; y from 92 (0 ms) up to 8 (2 s).
        assert_eq!(
            xy,
            [
                ("72.0", "50.0", "m-success"),
                ("332.0", "71.0", "m-failed"),
                ("592.0", "8.0", "m-timeout"),
            ]
        );
        assert_eq!(c.line, "72.0,50.0 332.0,71.0 592.0,8.0");
        assert_eq!(c.max, "2.0 s");
        assert_eq!(
            c.points[1].label,
            "1970-01-01 00:02:00 UTC: 500 ms (failed, attempt 1, worker w1)"
        );
    }

    #[test]
    fn one_run_or_only_zeros_still_draw_and_none_finished_draws_nothing() {
        let c = chart(&[run(1, RunStatus::Success, Some(0))]).unwrap();
        assert_eq!(
            (c.points[0].x.as_str(), c.points[0].y.as_str()),
            ("72.0", "92.0")
        );
        assert_eq!(c.max, "0 ms");
        assert_eq!(chart(&[]), None);
        assert_eq!(
            chart(&[
                run(2, RunStatus::Running, None),
                run(1, RunStatus::Skipped, Some(0))
            ]),
            None
        );
    }
}
