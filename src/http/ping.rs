//! `/ping/{job}/{token}[/start|/fail|/{exit-status}]`: the signals of `push`
//! jobs, which run elsewhere, in the URL shapes Healthchecks.io users know.
//! GET and POST both count; a POST body (its last [`PING_BODY_KEPT`] bytes)
//! becomes the run's output.
//!
//! The job's token is the credential: no bearer token, no audit row per
//! signal. A wrong job and a wrong token get the same 404, and the token is
//! compared as a SHA-256 digest in constant time, so neither can be probed.
//! Each job takes at most [`PINGS_PER_SECOND`] signals a second (429
//! beyond, counted in `/metrics`), so a runaway client cannot flood the
//! database. The handler only parses and checks: what a signal does to
//! `job_runs` is `crate::runner::push`'s.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};

use super::{ApiError, AppState};
use crate::runner::push::{record_signal, Recorded, Signal, SignalError};

/// How much of a POST body is kept as the run's output: its end, where a
/// failing job says why (as `command` keeps the end of its output).
pub const PING_BODY_KEPT: usize = 100 * 1024;
/// The largest body read at all: 413 beyond it, and nothing recorded. A
/// body whose Content-Length is larger is refused before any of it is
/// read, so a client that waits for `100 Continue` (curl does for large
/// bodies) gets the 413 cleanly.
pub const PING_BODY_LIMIT: usize = 1024 * 1024;
/// Signals one job may send in one second; more get 429.
pub const PINGS_PER_SECOND: u32 = 10;

/// The routes, merged into the API's router (outside `/api/v1` and its
/// bearer tokens).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ping/{job}/{token}", get(success).post(success))
        .route("/ping/{job}/{token}/{signal}", get(signal).post(signal))
}

/// Signals per job in the current second.
#[derive(Default)]
pub struct Limiter(Mutex<HashMap<String, (i64, u32)>>);

impl Limiter {
    /// Counts a signal of `job` in second `second`: `false` when it is one
    /// too many. Only jobs whose token was right are counted, so the map
    /// holds at most the configured push jobs.
    fn admit(&self, job: &str, second: i64) -> bool {
        let mut counts = self.0.lock().unwrap();
        let entry = counts.entry(job.to_string()).or_insert((second, 0));
        if entry.0 != second {
            *entry = (second, 0);
        }
        entry.1 += 1;
        entry.1 <= PINGS_PER_SECOND
    }
}

async fn success(
    State(state): State<AppState>,
    Path((job, token)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Recorded>, ApiError> {
    handle(state, &job, &token, None, &headers, body).await
}

async fn signal(
    State(state): State<AppState>,
    Path((job, token, signal)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Recorded>, ApiError> {
    handle(state, &job, &token, Some(&signal), &headers, body).await
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!(
            "the body is larger than {} KiB; nothing was recorded (send the end of the output: its last {} KiB are kept)",
            PING_BODY_LIMIT / 1024,
            PING_BODY_KEPT / 1024
        ),
    )
}

/// The one answer to a wrong job or a wrong token.
fn unknown() -> ApiError {
    ApiError::not_found("no push job with that name and token")
}

async fn handle(
    state: AppState,
    job: &str,
    token: &str,
    signal: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Json<Recorded>, ApiError> {
    let config = state.config();
    let spec = config.job(job).filter(|j| j.push.is_some());
    // Hashed and compared whether or not the job exists, so the time taken
    // does not tell a wrong job from a wrong token.
    let matches = match spec.and_then(|j| j.push.as_ref()) {
        Some(push) => push.token_matches(token),
        None => {
            let _ = crate::config::sha256(token.as_bytes());
            false
        }
    };
    let Some(spec) = spec.filter(|_| matches) else {
        return Err(unknown());
    };
    let signal = parse_signal(signal)?;
    let now = state.clock.now();
    if !state.pings.admit(&spec.name, now.timestamp()) {
        state.telemetry.ping_rate_limited(&spec.name);
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("more than {PINGS_PER_SECOND} signals for this job in one second; this one was not recorded"),
        ));
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > PING_BODY_LIMIT as u64) {
        return Err(too_large());
    }
    let body = axum::body::to_bytes(body, PING_BODY_LIMIT)
        .await
        .map_err(|_| too_large())?;
    let output = kept_output(&body);
    match record_signal(&state.db, spec, signal, output, now).await {
        Ok(recorded) => Ok(Json(recorded)),
        Err(SignalError::NoSlot) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_slot",
            SignalError::NoSlot.to_string(),
        )),
        Err(SignalError::Db(e)) => Err(ApiError::database(&e)),
    }
}

/// `start`, `fail`, an exit status 0 to 255 (digits only), or nothing for
/// success; anything else is a 400 (the job and token were right).
fn parse_signal(signal: Option<&str>) -> Result<Signal, ApiError> {
    match signal {
        None => Ok(Signal::Success),
        Some("start") => Ok(Signal::Start),
        Some("fail") => Ok(Signal::Fail),
        Some(s) if !s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse::<u8>().map(Signal::Exit).map_err(|_| bad_signal(s))
        }
        Some(s) => Err(bad_signal(s)),
    }
}

fn bad_signal(s: &str) -> ApiError {
    ApiError::bad_param(
        "signal",
        format!(
            "{:?} is not start, fail or an exit status from 0 to 255",
            ops_worker_jobs::first_line_clipped(s, 20)
        ),
    )
}

/// The body's last [`PING_BODY_KEPT`] bytes as text (a cut character at the
/// start left out), noting how much was cut as `command` output does; `None`
/// for an empty body.
fn kept_output(body: &[u8]) -> Option<String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let mut start = body.len().saturating_sub(PING_BODY_KEPT);
    if start > 0 {
        // UTF-8 continuation bytes look like 0b10xx_xxxx.
        while start < body.len() && body[start] & 0xC0 == 0x80 {
            start += 1;
        }
    }
    let text = String::from_utf8_lossy(&body[start..]);
    let text = text.trim_end_matches(['\n', '\r']);
    Some(if start == 0 {
        text.to_string()
    } else {
        format!("[... {start} earlier bytes not kept]\n{text}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse() {
        assert_eq!(parse_signal(None).unwrap(), Signal::Success);
        assert_eq!(parse_signal(Some("start")).unwrap(), Signal::Start);
        assert_eq!(parse_signal(Some("fail")).unwrap(), Signal::Fail);
        assert_eq!(parse_signal(Some("0")).unwrap(), Signal::Exit(0));
        assert_eq!(parse_signal(Some("255")).unwrap(), Signal::Exit(255));
        for bad in ["256", "-1", "+1", "1000", "", "x", "Start", " 1"] {
            let e = parse_signal(Some(bad)).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
        }
    }

    #[test]
    fn the_limit_counts_per_job_per_second() {
        let l = Limiter::default();
        for _ in 0..PINGS_PER_SECOND {
            assert!(l.admit("a", 100));
        }
        assert!(!l.admit("a", 100));
        assert!(l.admit("b", 100));
        assert!(l.admit("a", 101));
    }

    #[test]
    fn output_keeps_the_end() {
        assert_eq!(kept_output(b""), None);
        assert_eq!(kept_output(b" \n"), None);
        assert_eq!(kept_output(b"done\n").as_deref(), Some("done"));
        let mut big = "€".repeat(PING_BODY_KEPT / 3 + 10).into_bytes();
        big.extend_from_slice(b"\nlast line\n");
        let kept = kept_output(&big).unwrap();
        assert!(kept.starts_with("[... "), "{}", &kept[..40]);
        assert!(kept.ends_with("last line"));
        let text = kept.split_once('\n').unwrap().1;
        assert!(text.len() <= PING_BODY_KEPT);
        assert!(text.starts_with('€'));
    }
}
