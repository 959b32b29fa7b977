//! Whether an alert is silenced, and why: the one place that decides it.
//!
//! Two things silence an alert by its fingerprint (`system:service:api`,
//! `job:backup`): a maintenance window of schedules.toml that is open (the
//! [`crate::Timeline`] says which are, computed by the schedule module), and
//! an ad-hoc silence stored in the database (`ops-worker silence add`), so
//! every replica sees the same ones. While an alert is silenced the `alerts`
//! kind does not open it and sends it no reminders, and the `escalation`
//! kind pages nobody about it; checks are still recorded, so when the
//! silence ends an alert whose cause remains opens then.
//!
//! A fingerprint glob has one wildcard, `*`, which matches any run of
//! characters (`:` included): `system:service:*`, `job:backup`, `*`.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::store::Silence;
use crate::{JobContext, StoreError};

/// A maintenance window that is open at some instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenWindow {
    /// The `[maintenance.NAME]` table.
    pub name: String,
    /// Fingerprint globs it covers.
    pub matches: Vec<String>,
    /// When this occurrence ends.
    pub until: DateTime<Utc>,
}

/// Why an alert is silenced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    Window {
        name: String,
        until: DateTime<Utc>,
    },
    Silence {
        id: i64,
        reason: String,
        until: DateTime<Utc>,
    },
}

impl Why {
    pub fn until(&self) -> DateTime<Utc> {
        match self {
            Why::Window { until, .. } | Why::Silence { until, .. } => *until,
        }
    }
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let until = self.until().format("%Y-%m-%d %H:%M:%SZ");
        match self {
            Why::Window { name, .. } => write!(f, "maintenance window {name} until {until}"),
            Why::Silence { id, reason, .. } => write!(f, "silence {id} until {until}: {reason}"),
        }
    }
}

/// What silences alerts at one instant: the open windows and the active
/// silences.
#[derive(Debug, Clone, Default)]
pub struct Quiet {
    windows: Vec<OpenWindow>,
    silences: Vec<Silence>,
}

impl Quiet {
    /// `silences` not active at `at` are left out.
    pub fn new(windows: Vec<OpenWindow>, silences: Vec<Silence>, at: DateTime<Utc>) -> Quiet {
        let silences = silences.into_iter().filter(|s| s.active(at)).collect();
        Quiet { windows, silences }
    }

    /// The windows open and the silences active at `at`, as a job sees them.
    pub async fn load(ctx: &JobContext, at: DateTime<Utc>) -> Result<Quiet, StoreError> {
        let silences = ctx.store.active_silences(at).await?;
        Ok(Quiet::new(ctx.timeline.open_windows(at), silences, at))
    }

    /// Why the alert with `fingerprint` is silenced, if it is: the window
    /// or silence that ends last, windows first when they end together.
    pub fn why(&self, fingerprint: &str) -> Option<Why> {
        let windows = self
            .windows
            .iter()
            .filter(|w| w.matches.iter().any(|g| glob_matches(g, fingerprint)))
            .map(|w| Why::Window {
                name: w.name.clone(),
                until: w.until,
            });
        let silences = self
            .silences
            .iter()
            .filter(|s| glob_matches(&s.pattern, fingerprint))
            .map(|s| Why::Silence {
                id: s.id,
                reason: s.reason.clone(),
                until: s.ends_at,
            });
        windows
            .chain(silences)
            .fold(None, |best: Option<Why>, w| match best {
                Some(b) if b.until() >= w.until() => Some(b),
                _ => Some(w),
            })
    }
}

/// Whether fingerprint glob `glob` matches `fingerprint`.
pub fn glob_matches(glob: &str, fingerprint: &str) -> bool {
    crate::prom::matches(glob, fingerprint)
}

/// Checks a fingerprint glob: not empty, no white space or control
/// characters, and no wildcard but `*`. The error says why, in one line.
pub fn check_glob(glob: &str) -> Result<(), String> {
    if glob.is_empty() {
        return Err("invalid glob \"\": name a fingerprint such as \"system:service:api\", \"job:backup\" or \"*\"".into());
    }
    if let Some(c) = glob.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "invalid glob {glob:?}: {c:?} is not allowed (fingerprints have no spaces)"
        ));
    }
    if let Some(c) = glob
        .chars()
        .find(|c| matches!(c, '?' | '[' | ']' | '{' | '}' | '!'))
    {
        return Err(format!(
            "invalid glob {glob:?}: {c:?} is not supported, the only wildcard is * (e.g. \"system:service:*\")"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn silence(id: i64, pattern: &str, from: &str, to: &str) -> Silence {
        Silence {
            id,
            pattern: pattern.into(),
            starts_at: at(from),
            ends_at: at(to),
            reason: format!("reason {id}"),
            created_by: "alice".into(),
        }
    }

    #[test]
    fn globs() {
        assert!(check_glob("system:service:api").is_ok());
        assert!(check_glob("*").is_ok());
        assert!(check_glob("job:*").is_ok());
        assert!(check_glob("").is_err());
        assert!(check_glob("job: x").unwrap_err().contains("not allowed"));
        assert!(check_glob("job:back?p")
            .unwrap_err()
            .contains("the only wildcard is *"));
        assert!(glob_matches("system:service:*", "system:service:api"));
        assert!(!glob_matches("system:service:*", "job:api"));
        assert!(glob_matches("*", "job:backup"));
    }

    #[test]
    fn the_latest_ending_reason_wins_and_inactive_silences_do_not_count() {
        let now = at("2026-01-01T10:00:00Z");
        let quiet = Quiet::new(
            vec![OpenWindow {
                name: "nightly".into(),
                matches: vec!["system:service:*".into()],
                until: at("2026-01-01T11:00:00Z"),
            }],
            vec![
                silence(
                    1,
                    "system:service:api",
                    "2026-01-01T09:00:00Z",
                    "2026-01-01T12:00:00Z",
                ),
                silence(2, "*", "2026-01-01T08:00:00Z", "2026-01-01T09:00:00Z"),
                silence(3, "job:*", "2026-01-01T11:00:00Z", "2026-01-01T12:00:00Z"),
            ],
            now,
        );
        assert_eq!(
            quiet.why("system:service:api"),
            Some(Why::Silence {
                id: 1,
                reason: "reason 1".into(),
                until: at("2026-01-01T12:00:00Z")
            })
        );
        assert_eq!(
            quiet.why("system:service:db").unwrap().to_string(),
            "maintenance window nightly until 2026-01-01 11:00:00Z"
        );
        assert_eq!(quiet.why("job:backup"), None);
    }
}
