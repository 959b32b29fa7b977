//! The operator's writes, shared by the CLI and the HTTP API: pause and
//! resume a job, acknowledge and resolve an alert, add and remove a
//! silence, and what silences an alert now. Each checks its input,
//! calls `src/db` and says what went wrong in a way both fronts map (the
//! CLI to an exit code, the API to a status). No printing, no HTTP.

use chrono::{DateTime, Utc};
use ops_worker_jobs::silence::{Quiet, Why};
use ops_worker_jobs::store::{Alert, AlertStatus, Silence};

use crate::config::Config;
use crate::db::{Db, DbError, Pause};

#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("unknown job {0:?}")]
    UnknownJob(String),
    /// A parameter that does not parse or is out of range; the message
    /// names it.
    #[error("{0}")]
    BadInput(String),
    /// A field of the request that is not valid: `--FIELD` for the CLI,
    /// `FIELD` of the API's body.
    #[error("{field}: {message}")]
    BadField {
        field: &'static str,
        message: String,
    },
    /// A `push` job runs elsewhere: there is nothing to run or pause here.
    #[error("job {0:?} is a push job: it runs elsewhere and reports by signal, so it cannot be run or paused here (a silence on job:{0} quiets its missed-slot alert)")]
    PushJob(String),
    #[error("no alert {0}")]
    NoAlert(i64),
    #[error("no silence {0}")]
    NoSilence(i64),
    /// The alert is not in a state that allows it.
    #[error("cannot {what} alert {id}: it is {status}")]
    AlertState {
        what: &'static str,
        id: i64,
        status: String,
    },
    #[error(transparent)]
    Db(#[from] DbError),
}

/// `until` of a pause (`--until` for the CLI, `until` for the API, as
/// `param` says): RFC 3339, or a humantime duration from `now`; it must lie
/// after `now`.
pub fn parse_until(param: &str, s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, OpError> {
    let t = s.trim();
    let until = match DateTime::parse_from_rfc3339(t) {
        Ok(at) => at.to_utc(),
        Err(rfc) => {
            let d = humantime::parse_duration(t).map_err(|dur| {
                OpError::BadInput(format!(
                    "{param} {s:?}: neither an RFC 3339 time ({rfc}) nor a duration such as 2h ({dur})"
                ))
            })?;
            chrono::TimeDelta::from_std(d)
                .ok()
                .and_then(|d| now.checked_add_signed(d))
                .ok_or_else(|| OpError::BadInput(format!("{param} {s:?}: too far in the future")))?
        }
    };
    if until <= now {
        return Err(OpError::BadInput(format!(
            "{param} {s:?} is not in the future"
        )));
    }
    Ok(until)
}

/// `name` is a job this worker runs: known, and not a `push` job, whose
/// slots only its signals fill (pausing one would not stop its signals
/// or its missed-slot alert; a run-now request could never run).
pub fn runs_here(config: &Config, name: &str) -> Result<(), OpError> {
    match config.job(name) {
        None => Err(OpError::UnknownJob(name.to_string())),
        Some(spec) if spec.push.is_some() => Err(OpError::PushJob(name.to_string())),
        Some(_) => Ok(()),
    }
}

/// Pauses a job of `config` from `now` (see [`Db::pause`]); the pause as
/// stored. A push job is refused ([`runs_here`]).
pub async fn pause(
    config: &Config,
    db: &Db,
    name: &str,
    now: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
    reason: Option<&str>,
    by: &str,
) -> Result<Pause, OpError> {
    runs_here(config, name)?;
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    db.pause(name, now, until, reason, by).await?;
    let pause = db
        .pauses()
        .await?
        .into_iter()
        .find(|p| p.job_name == name)
        .unwrap_or(Pause {
            job_name: name.to_string(),
            paused_at: now,
            until,
            reason: reason.map(str::to_string),
            paused_by: by.to_string(),
        });
    Ok(pause)
}

/// Ends a job's pause; `false` when it was not paused.
pub async fn resume(
    config: &Config,
    db: &Db,
    name: &str,
    now: DateTime<Utc>,
) -> Result<bool, OpError> {
    if config.job(name).is_none() {
        return Err(OpError::UnknownJob(name.to_string()));
    }
    Ok(db.resume(name, now).await?)
}

/// Acknowledges an open alert as `by`.
pub async fn ack(db: &Db, id: i64, by: &str, now: DateTime<Utc>) -> Result<Alert, OpError> {
    match db.ack_alert(id, by, now).await? {
        Some(a) => Ok(a),
        None => Err(not_changed(db, id, "acknowledge").await),
    }
}

/// Resolves an active alert with `note`.
pub async fn resolve(db: &Db, id: i64, note: &str, now: DateTime<Utc>) -> Result<Alert, OpError> {
    match db.resolve_alert_by_id(id, note, now).await? {
        Some(a) => Ok(a),
        None => Err(not_changed(db, id, "resolve").await),
    }
}

/// Why an alert could not be acknowledged or resolved.
async fn not_changed(db: &Db, id: i64, what: &'static str) -> OpError {
    match db.get_alert(id).await {
        Ok(Some(a)) => OpError::AlertState {
            what,
            id,
            status: a.status.to_string(),
        },
        Ok(None) => OpError::NoAlert(id),
        Err(e) => e.into(),
    }
}

/// When a new silence ends: `--for` / `for` (a duration from now) or the
/// API's `until` (RFC 3339 or a duration, as [`parse_until`] reads it).
#[derive(Debug, Clone, Copy)]
pub enum SilenceEnd<'a> {
    For(&'a str),
    Until(&'a str),
}

/// `for` of a silence: a humantime duration of more than 0s.
fn parse_silence_for(s: &str) -> Result<chrono::Duration, OpError> {
    let bad = |message: String| OpError::BadField {
        field: "for",
        message,
    };
    let d = humantime::parse_duration(s.trim()).map_err(|e| {
        bad(format!(
            "invalid duration {s:?}: {e} (examples: 30m, 2h, 1h 30m)"
        ))
    })?;
    if d.is_zero() {
        return Err(bad("must be more than 0s".into()));
    }
    chrono::Duration::from_std(d)
        .ok()
        .filter(|d| *d < chrono::Duration::days(365 * 100))
        .ok_or_else(|| bad(format!("{s:?} is too long")))
}

/// Silences the alerts matching `pattern` from `now` until `end`, as `by`
/// (`ops-worker silence add`, `POST /api/v1/silences`). The input is
/// checked in the order the CLI shows its flags: match, for, reason.
pub async fn add_silence(
    db: &Db,
    pattern: &str,
    end: SilenceEnd<'_>,
    reason: &str,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Silence, OpError> {
    ops_worker_jobs::silence::check_glob(pattern).map_err(|message| OpError::BadField {
        field: "match",
        message,
    })?;
    let until = match end {
        SilenceEnd::For(s) => now + parse_silence_for(s)?,
        SilenceEnd::Until(s) => parse_until("until", s, now)?,
    };
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(OpError::BadField {
            field: "reason",
            message: "say why, such as \"db upgrade\"".into(),
        });
    }
    Ok(db.add_silence(pattern, now, until, reason, by).await?)
}

/// Removes silence `id`: its alerts open, remind and escalate again.
pub async fn remove_silence(db: &Db, id: i64) -> Result<(), OpError> {
    if db.remove_silence(id).await? {
        Ok(())
    } else {
        Err(OpError::NoSilence(id))
    }
}

/// What silences alerts at `now`: the maintenance windows of `config` open
/// then (none without a config) and the stored silences active then
/// (`ops-worker alerts list`, the console's alerts).
pub async fn quiet(db: &Db, config: Option<&Config>, now: DateTime<Utc>) -> Result<Quiet, DbError> {
    let windows = config
        .map(|c| ops_worker_jobs::Timeline::open_windows(c, now))
        .unwrap_or_default();
    let silences = db.silences(now, false).await?;
    Ok(Quiet::new(windows, silences, now))
}

/// Why `alert` is silenced now, if it is: a resolved one is past silencing.
pub fn silenced(quiet: &Quiet, alert: &Alert) -> Option<Why> {
    (alert.status != AlertStatus::Resolved)
        .then(|| quiet.why(&alert.fingerprint))
        .flatten()
}
