//! The paused jobs, as last read from `job_pauses`: the runner and the
//! scheduler ask this, never the database, so a slot costs no query. The
//! daemon refreshes it with each heartbeat and once before it arms the jobs
//! (`src/heartbeat.rs`), so a pause or resume reaches every replica within
//! a heartbeat.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

use chrono::{DateTime, Utc};

use crate::db::Pause;

#[derive(Debug, Default)]
pub struct Pauses {
    by_job: RwLock<HashMap<String, Pause>>,
    /// The jobs seen paused at the last [`Pauses::set`], to log a pause
    /// starting or ending once.
    observed: RwLock<HashSet<String>>,
}

impl Pauses {
    /// Replaces the known pauses with `pauses` (ended ones included), read
    /// at `now`; logs each job whose pause started or ended since the last
    /// call.
    pub fn set(&self, pauses: Vec<Pause>, now: DateTime<Utc>) {
        let active: HashSet<String> = pauses
            .iter()
            .filter(|p| p.active(now))
            .map(|p| p.job_name.clone())
            .collect();
        {
            let mut observed = self.observed.write().unwrap();
            for p in pauses.iter().filter(|p| active.contains(&p.job_name)) {
                if !observed.contains(&p.job_name) {
                    tracing::info!(
                        job = %p.job_name,
                        paused_at = %p.paused_at,
                        until = p.until.map(tracing::field::display),
                        reason = p.reason.as_deref().unwrap_or(""),
                        paused_by = %p.paused_by,
                        "job paused: its slots are not run"
                    );
                }
            }
            for job in observed.difference(&active) {
                tracing::info!(job = %job, "job no longer paused: its slots run again");
            }
            *observed = active;
        }
        *self.by_job.write().unwrap() = pauses
            .into_iter()
            .map(|p| (p.job_name.clone(), p))
            .collect();
    }

    /// Whether `job`'s pause covers the instant `t`.
    pub fn covers(&self, job: &str, t: DateTime<Utc>) -> bool {
        self.by_job
            .read()
            .unwrap()
            .get(job)
            .is_some_and(|p| p.covers(t))
    }

    /// Whether `job`'s pause covers every instant from `from` to `to`: a
    /// job has one pause, so both ends in it means all between is.
    pub fn covers_span(&self, job: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
        self.by_job
            .read()
            .unwrap()
            .get(job)
            .is_some_and(|p| p.covers(from) && p.covers(to))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn pause(until: Option<&str>) -> Pause {
        Pause {
            job_name: "tick".into(),
            paused_at: at("2026-11-26T10:00:00Z"),
            until: until.map(at),
            reason: None,
            paused_by: "ops".into(),
        }
    }

    #[test]
    fn covers_from_paused_at_until_until_exclusive() {
        let p = Pauses::default();
        assert!(!p.covers("tick", at("2026-11-26T10:00:00Z")));
        p.set(
            vec![pause(Some("2026-11-26T11:00:00Z"))],
            at("2026-11-26T10:00:00Z"),
        );
        assert!(!p.covers("tick", at("2026-11-26T09:59:59Z")));
        assert!(p.covers("tick", at("2026-11-26T10:00:00Z")));
        assert!(p.covers("tick", at("2026-11-26T10:59:59Z")));
        assert!(!p.covers("tick", at("2026-11-26T11:00:00Z")));
        assert!(!p.covers("other", at("2026-11-26T10:30:00Z")));
        assert!(p.covers_span(
            "tick",
            at("2026-11-26T10:00:00Z"),
            at("2026-11-26T10:30:00Z")
        ));
        assert!(!p.covers_span(
            "tick",
            at("2026-11-26T09:00:00Z"),
            at("2026-11-26T10:30:00Z")
        ));
        p.set(vec![pause(None)], at("2026-11-26T12:00:00Z"));
        assert!(p.covers("tick", at("2030-01-01T00:00:00Z")));
        p.set(Vec::new(), at("2026-11-26T12:00:00Z"));
        assert!(!p.covers("tick", at("2026-11-26T10:30:00Z")));
    }
}
