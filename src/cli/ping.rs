//! The other side of `push` jobs: `ops-worker ping` sends one signal, and
//! `ops-worker wrap` runs a command between a start and a finish signal.
//! Both need no schedules.toml and no database: only the server's base URL
//! (`--url` or `OPS_WORKER_PING_URL`) and the job's token
//! (`OPS_WORKER_PING_TOKEN`, never an argument, so it stays out of `ps`).
//!
//! A signal that cannot be delivered (no connection, a 5xx, a 429) is tried
//! [`ATTEMPTS`] times; `wrap` then goes on regardless and exits with the
//! command's own status, whatever became of its signals. `wrap` passes the
//! SIGTERM and SIGINT it receives on to its command and waits for it, so
//! stopping a unit, container or pod stops the command and records how it
//! ended.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ops_worker_jobs::reqwest;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use std::io::Write as _;

use tokio::io::{AsyncRead, AsyncReadExt};

use super::{ExitCode, UsageError};
use crate::http::PING_BODY_KEPT;

/// The variable that holds a push job's token.
pub const TOKEN_VAR: &str = "OPS_WORKER_PING_TOKEN";
/// Tries per signal.
pub const ATTEMPTS: u32 = 3;
/// The wait before the second try; doubled before each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// How long one try may take.
const TRY_TIMEOUT: Duration = Duration::from_secs(10);

/// The signal `ping` sends: `""` (success), `"/start"`, `"/fail"`, `"/N"`.
pub fn suffix(start: bool, fail: bool, exit: Option<u8>) -> String {
    match (start, fail, exit) {
        (true, _, _) => "/start".to_string(),
        (_, true, _) => "/fail".to_string(),
        (_, _, Some(n)) => format!("/{n}"),
        _ => String::new(),
    }
}

/// Where signals of `job` go, and the token: from the arguments and the
/// environment, or a usage error naming what is missing.
pub struct Target {
    base: String,
    job: String,
    token: String,
}

impl Target {
    pub fn new(job: &str, url: Option<String>) -> Result<Target, UsageError> {
        let base = url.filter(|u| !u.trim().is_empty()).ok_or_else(|| {
            UsageError(
                "no server to signal: pass --url BASE (e.g. http://ops-worker:8080) or set OPS_WORKER_PING_URL"
                    .to_string(),
            )
        })?;
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(UsageError(format!(
                "--url {base:?}: expected an http:// or https:// base URL"
            )));
        }
        let token = std::env::var(TOKEN_VAR)
            .ok()
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| {
                UsageError(format!(
                    "{TOKEN_VAR} is not set: set it to the job's token (its `token` in schedules.toml)"
                ))
            })?;
        Ok(Target {
            base: base.trim_end_matches('/').to_string(),
            job: job.to_string(),
            token: token.trim().to_string(),
        })
    }

    fn url(&self, suffix: &str) -> String {
        format!(
            "{}/ping/{}/{}{suffix}",
            self.base,
            utf8_percent_encode(&self.job, NON_ALPHANUMERIC),
            utf8_percent_encode(&self.token, NON_ALPHANUMERIC)
        )
    }
}

/// Why a signal was not delivered. Never names the URL: it holds the token.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The server answered 404: no push job of that name with that token.
    #[error("the server knows no push job {0:?} with this token (check the name and {TOKEN_VAR})")]
    Unknown(String),
    /// Any other answer or failure, after the last try.
    #[error("signal not delivered after {ATTEMPTS} tries: {0}")]
    Undelivered(String),
}

/// Sends one signal, trying again on what may pass (no connection, a 5xx,
/// a 429). Returns the server's answer (JSON) on a 2xx.
pub async fn send(
    http: &reqwest::Client,
    target: &Target,
    suffix: &str,
    body: Option<String>,
) -> Result<String, SendError> {
    let mut backoff = FIRST_BACKOFF;
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        if attempt > 1 {
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
        let req = match &body {
            Some(b) => http.post(target.url(suffix)).body(b.clone()),
            None => http.post(target.url(suffix)),
        };
        match req.timeout(TRY_TIMEOUT).send().await {
            Ok(resp) if resp.status().is_success() => {
                return Ok(resp.text().await.unwrap_or_default());
            }
            Ok(resp) if resp.status() == reqwest::StatusCode::NOT_FOUND => {
                return Err(SendError::Unknown(target.job.clone()));
            }
            Ok(resp) => {
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                last = format!(
                    "{status}: {}",
                    ops_worker_jobs::first_line_clipped(&text, 200)
                );
                if !(status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS) {
                    break;
                }
            }
            // Without the URL, which holds the token.
            Err(e) => last = crate::error_chain(&e.without_url()),
        }
    }
    Err(SendError::Undelivered(last))
}

/// `ops-worker ping`: 0 delivered, 1 not delivered, 2 a wrong job or token.
pub async fn ping(job: &str, url: Option<String>, suffix: &str) -> anyhow::Result<ExitCode> {
    let target = Target::new(job, url)?;
    let http = ops_worker_jobs::health::http_client();
    match send(&http, &target, suffix, None).await {
        Ok(answer) => {
            println!("{answer}");
            Ok(ExitCode::Ok)
        }
        Err(e @ SendError::Unknown(_)) => Err(UsageError(e.to_string()).into()),
        Err(e) => Err(e.into()),
    }
}

/// The last [`PING_BODY_KEPT`] bytes of what the command printed, both
/// streams as they came.
#[derive(Default)]
struct Tail(Mutex<(VecDeque<u8>, u64)>);

impl Tail {
    fn push(&self, bytes: &[u8]) {
        let mut t = self.0.lock().unwrap();
        t.0.extend(bytes);
        let excess = t.0.len().saturating_sub(PING_BODY_KEPT);
        t.0.drain(..excess);
        t.1 += excess as u64;
    }

    fn text(&self) -> Option<String> {
        let mut t = self.0.lock().unwrap();
        let bytes = t.0.make_contiguous();
        (!bytes.iter().all(u8::is_ascii_whitespace))
            .then(|| String::from_utf8_lossy(bytes).into_owned())
    }
}

/// Copies `from` to `to` (the wrapper's own stdout or stderr, so the
/// command's output still goes where cron or systemd expect it) and into
/// `tail`.
async fn tee(mut from: impl AsyncRead + Unpin, to: fn(&[u8]), tail: Arc<Tail>) {
    let mut buf = vec![0; 8192];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                tail.push(&buf[..n]);
                to(&buf[..n]);
            }
        }
    }
}

/// Our stdout and stderr, written through at once (a closed one is ignored:
/// the command's output is the command's business).
fn to_stdout(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(bytes).and_then(|()| out.flush());
}

fn to_stderr(bytes: &[u8]) {
    let _ = std::io::stderr().lock().write_all(bytes);
}

/// `ops-worker wrap`: signals start, runs `command`, signals its exit
/// status with the tail of its output, and returns the status the process
/// should exit with: the command's own (128 + N when signal N killed it).
/// A signal that is not delivered is reported on stderr only.
pub async fn wrap(job: &str, url: Option<String>, command: &[String]) -> anyhow::Result<u8> {
    let (program, args) = command
        .split_first()
        .ok_or_else(|| UsageError("no command to run after --".to_string()))?;
    // Without a server or a token the command still runs: a monitoring
    // mistake must not stop the backup it watches.
    let target = match Target::new(job, url) {
        Ok(t) => Some(Arc::new(t)),
        Err(e) => {
            eprintln!("warning: ops-worker wrap: {e}; running the command without signals");
            None
        }
    };
    let http = ops_worker_jobs::health::http_client();
    let signal = move |suffix: String, body: Option<String>| {
        let (http, target) = (http.clone(), target.clone());
        async move {
            match target {
                Some(t) => Some(send(&http, &t, &suffix, body).await),
                None => None,
            }
        }
    };
    // Installed before the command starts, so no SIGTERM or SIGINT can end
    // this process between its start and its finish signal.
    let mut stops = StopSignals::listen()?;
    // The start goes out while the command runs: a slow or absent server
    // never delays it. The finish waits for it, so it cannot overtake it.
    let start = tokio::spawn(signal("/start".to_string(), None));
    let mut child = match tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            // As a shell reports a command it cannot run: 127.
            eprintln!("error: cannot run {program:?}: {e}");
            report(start.await.ok().flatten());
            let body = format!("ops-worker wrap: cannot run {program:?}: {e}");
            report(signal("/127".to_string(), Some(body)).await);
            return Ok(127);
        }
    };
    let tail = Arc::new(Tail::default());
    let out = tokio::spawn(tee(
        child.stdout.take().expect("piped"),
        to_stdout,
        tail.clone(),
    ));
    let err = tokio::spawn(tee(
        child.stderr.take().expect("piped"),
        to_stderr,
        tail.clone(),
    ));
    // A stopped systemd unit, container or pod signals this process (in
    // a container, PID 1): the command gets the signal too, and its exit
    // status ends the run as usual.
    let status = loop {
        tokio::select! {
            status = child.wait() => break status?,
            Some(sig) = stops.recv() => {
                if let Some(pid) = child.id().and_then(|id| libc::pid_t::try_from(id).ok()) {
                    // SAFETY: kill(2) on our own child, not yet reaped
                    // (`wait` has not returned).
                    unsafe { libc::kill(pid, sig) };
                }
            }
        }
    };
    let _ = tokio::join!(out, err);
    let code = match status.code() {
        Some(c) => c.clamp(0, 255) as u8,
        None => {
            use std::os::unix::process::ExitStatusExt;
            128u8.saturating_add(status.signal().unwrap_or(0) as u8)
        }
    };
    report(start.await.ok().flatten());
    report(signal(format!("/{code}"), tail.text()).await);
    Ok(code)
}

/// SIGTERM and SIGINT, which `wrap` passes on to its command instead of
/// ending.
struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn listen() -> anyhow::Result<StopSignals> {
        use anyhow::Context as _;
        use tokio::signal::unix::{signal, SignalKind};
        Ok(StopSignals {
            term: signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?,
        })
    }

    /// The next one received, as a signal number.
    async fn recv(&mut self) -> Option<libc::c_int> {
        tokio::select! {
            Some(()) = self.term.recv() => Some(libc::SIGTERM),
            Some(()) = self.int.recv() => Some(libc::SIGINT),
            else => None,
        }
    }
}

/// A signal `wrap` could not deliver, on stderr; it changes nothing else.
fn report(sent: Option<Result<String, SendError>>) {
    if let Some(Err(e)) = sent {
        eprintln!("warning: ops-worker wrap: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes() {
        assert_eq!(suffix(false, false, None), "");
        assert_eq!(suffix(true, false, None), "/start");
        assert_eq!(suffix(false, true, None), "/fail");
        assert_eq!(suffix(false, false, Some(3)), "/3");
    }

    #[test]
    fn the_tail_keeps_the_end() {
        let t = Tail::default();
        assert_eq!(t.text(), None);
        t.push(&vec![b'a'; PING_BODY_KEPT]);
        t.push(b"end");
        let text = t.text().unwrap();
        assert_eq!(text.len(), PING_BODY_KEPT);
        assert!(text.ends_with("aend"));
    }
}
