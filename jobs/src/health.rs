//! The `health` kind: polls HTTP health endpoints concurrently and records
//! each service's state (`service_health`) and every check (`health_checks`).
//!
//! This file owns how one target is polled and judged (status, body, JSON,
//! latency) and how a run fans out over its targets. Every target has its own
//! timeout covering connect, headers and body, so a target that accepts a
//! connection and never answers ends as `down` without delaying the others.
//! The run fails only when it cannot do its own work (storage); a service
//! being down is a finding, not a failure of the job.
//!
//! ```toml
//! [jobs.api-health]
//! kind = "health"
//! every = "${HEALTH_CHECK_INTERVAL:-60}s"
//! concurrency = 32            # targets polled at once
//! retention = "30d"           # health_checks older than this are pruned
//! targets = [
//!   { name = "api", url = "http://api:8080/health", degraded_after = "500ms" },
//!   { name = "search", url = "https://search.internal/status", method = "HEAD",
//!     expect_status = [200, "300-399"], timeout = "2s",
//!     headers = { Authorization = "Bearer ${SEARCH_TOKEN}" } },
//!   { name = "queue", url = "http://queue:15672/api/health", expect_json = { pointer = "/status", equals = "ok" } },
//! ]
//! ```

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use serde::de::{self, Deserializer};
use serde::Deserialize;

use crate::store::{HealthCheck, HealthStatus};
use crate::{BuildError, Job, JobContext, JobError, JobOutput, LongestWait, Settings};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_CONCURRENCY: usize = 32;
const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 86_400);
/// The most of a response body read for `expect_body`/`expect_json`.
const MAX_BODY: usize = 64 * 1024;
/// The longest reason stored for a check.
const MAX_REASON: usize = 300;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HealthSettings {
    targets: Vec<Target>,
    #[serde(default = "default_concurrency")]
    concurrency: usize,
    #[serde(default, deserialize_with = "duration_opt")]
    retention: Option<Duration>,
}

fn default_concurrency() -> usize {
    DEFAULT_CONCURRENCY
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub name: String,
    pub url: String,
    #[serde(default = "default_method")]
    pub method: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "duration_opt")]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub expect_status: Option<Vec<StatusRange>>,
    #[serde(default)]
    pub expect_body: Option<String>,
    #[serde(default)]
    pub expect_json: Option<ExpectJson>,
    #[serde(default, deserialize_with = "duration_opt")]
    pub degraded_after: Option<Duration>,
}

fn default_method() -> String {
    "GET".to_string()
}

/// `expect_json = { pointer = "/status", equals = "ok" }`: the value at the
/// JSON pointer must equal `equals` (any TOML value, compared as JSON).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectJson {
    pub pointer: String,
    pub equals: serde_json::Value,
}

/// One accepted status: `200` or `"200-299"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRange(pub u16, pub u16);

impl<'de> Deserialize<'de> for StatusRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(u16),
            Range(String),
        }
        let bad = || de::Error::custom("expected a status like 200 or a range like \"200-299\"");
        let (lo, hi) = match Raw::deserialize(d)? {
            Raw::One(n) => (n, n),
            Raw::Range(s) => {
                let (lo, hi) = s.split_once('-').ok_or_else(bad)?;
                (
                    lo.trim().parse().map_err(|_| bad())?,
                    hi.trim().parse().map_err(|_| bad())?,
                )
            }
        };
        if !(100..=599).contains(&lo) || !(100..=599).contains(&hi) || lo > hi {
            return Err(de::Error::custom(
                "HTTP statuses are 100 to 599, low to high",
            ));
        }
        Ok(StatusRange(lo, hi))
    }
}

/// A humantime duration setting (`"5s"`, `"1h 30m"`).
pub(crate) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(s.trim())
        .map_err(|e| de::Error::custom(format!("invalid duration {s:?}: {e}")))
}

pub(crate) fn duration_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

pub struct HealthJob {
    targets: Vec<Target>,
    concurrency: usize,
    retention: Duration,
}

impl HealthJob {
    pub fn from_settings(_name: &str, settings: Settings<'_>) -> Result<Self, BuildError> {
        let s = HealthSettings::deserialize(settings)?;
        let invalid = |msg: String| BuildError::Invalid(msg);
        if s.targets.is_empty() {
            return Err(invalid("targets: add at least one { name, url }".into()));
        }
        if s.concurrency == 0 {
            return Err(invalid("concurrency: must be at least 1".into()));
        }
        let mut seen = std::collections::BTreeSet::new();
        for t in &s.targets {
            if !seen.insert(t.name.as_str()) {
                return Err(invalid(format!(
                    "targets: the name {:?} is used twice",
                    t.name
                )));
            }
            let url = reqwest::Url::parse(&t.url)
                .map_err(|e| invalid(format!("targets: {:?}: invalid url: {e}", t.name)))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(invalid(format!(
                    "targets: {:?}: the url must be http or https",
                    t.name
                )));
            }
            reqwest::Method::from_bytes(t.method.as_bytes()).map_err(|_| {
                invalid(format!(
                    "targets: {:?}: invalid method {:?}",
                    t.name, t.method
                ))
            })?;
            if let Some(j) = &t.expect_json {
                if !(j.pointer.is_empty() || j.pointer.starts_with('/')) {
                    return Err(invalid(format!(
                        "targets: {:?}: expect_json.pointer must start with '/'",
                        t.name
                    )));
                }
            }
        }
        Ok(HealthJob {
            targets: s.targets,
            concurrency: s.concurrency,
            retention: s.retention.unwrap_or(DEFAULT_RETENTION),
        })
    }
}

#[async_trait]
impl Job for HealthJob {
    async fn run(&self, ctx: JobContext) -> Result<JobOutput, JobError> {
        let checks = poll_all(&ctx.http, &self.targets, self.concurrency, &ctx).await;
        let changed = ctx
            .store
            .record_health(&checks)
            .await
            .map_err(|e| JobError::new(format!("cannot record health checks: {e}")))?;
        log_changes(&checks, &changed);
        let cutoff = ctx.clock.now()
            - chrono::Duration::from_std(self.retention).unwrap_or(chrono::Duration::MAX);
        ctx.store
            .prune_health_checks(cutoff)
            .await
            .map_err(|e| JobError::new(format!("cannot prune health checks: {e}")))?;
        Ok(JobOutput {
            output: Some(summary(&checks)),
        })
    }

    /// The slowest target's timeout, once per round when there are more
    /// targets than `concurrency` polls at once.
    fn longest_wait(&self) -> Option<LongestWait> {
        let slowest = self
            .targets
            .iter()
            .max_by_key(|t| t.timeout.unwrap_or(DEFAULT_TIMEOUT))?;
        let timeout = slowest.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let rounds = self.targets.len().div_ceil(self.concurrency.max(1));
        let shown = humantime::format_duration(timeout);
        let wait = timeout * u32::try_from(rounds).unwrap_or(u32::MAX);
        let what = if rounds == 1 {
            format!(
                "target {:?} may take up to {shown} (its timeout)",
                slowest.name
            )
        } else {
            format!(
                "{} targets polled {} at a time may take up to {} ({rounds} rounds of up to {shown}, target {:?})",
                self.targets.len(),
                self.concurrency,
                humantime::format_duration(wait),
                slowest.name
            )
        };
        Some(LongestWait {
            wait,
            why: format!(
                "{what}, and when a target hangs the whole run times out: no check is recorded, \
                 and the job counts as failing instead of the service as down"
            ),
        })
    }
}

/// Logs each target whose status changed with this run's check, once: the
/// store says which changed, so a target that stays down is not logged on
/// every poll, and a run on another replica does not log it again.
fn log_changes(checks: &[HealthCheck], changed: &[String]) {
    for c in checks.iter().filter(|c| changed.contains(&c.service)) {
        let reason = c.error.as_deref().unwrap_or("");
        match c.status {
            HealthStatus::Down => {
                tracing::warn!(service = %c.service, reason, "health target down")
            }
            HealthStatus::Degraded => {
                tracing::warn!(service = %c.service, reason, "health target degraded")
            }
            HealthStatus::Up => tracing::info!(service = %c.service, "health target up"),
        }
    }
}

/// "3 targets: 2 up, 1 down (db: connection refused)"
fn summary(checks: &[HealthCheck]) -> String {
    let count = |s| checks.iter().filter(|c| c.status == s).count();
    let mut out = format!(
        "{} target{}: {} up, {} degraded, {} down",
        checks.len(),
        if checks.len() == 1 { "" } else { "s" },
        count(HealthStatus::Up),
        count(HealthStatus::Degraded),
        count(HealthStatus::Down)
    );
    let bad: Vec<_> = checks
        .iter()
        .filter(|c| c.status != HealthStatus::Up)
        .map(|c| format!("{}: {}", c.service, c.error.as_deref().unwrap_or("")))
        .collect();
    if !bad.is_empty() {
        out.push_str(&format!(" ({})", bad.join("; ")));
    }
    out
}

/// Polls every target, at most `concurrency` at once, each under its own
/// timeout. Returns one check per target, in target order.
pub async fn poll_all(
    http: &reqwest::Client,
    targets: &[Target],
    concurrency: usize,
    ctx: &JobContext,
) -> Vec<HealthCheck> {
    // The futures are built first: a closure inside the stream would need a
    // higher-ranked lifetime the async_trait future cannot name.
    let polls: Vec<_> = targets.iter().map(|t| poll_one(http, t, ctx)).collect();
    let mut checks: Vec<HealthCheck> = futures::stream::iter(polls)
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    checks.sort_by_key(|c| targets.iter().position(|t| t.name == c.service));
    checks
}

async fn poll_one(http: &reqwest::Client, t: &Target, ctx: &JobContext) -> HealthCheck {
    let checked_at = ctx.clock.now();
    let (status, http_status, latency, error) = check(http, t).await;
    HealthCheck {
        service: t.name.clone(),
        job_name: ctx.job.to_string(),
        status,
        http_status: http_status.map(i32::from),
        latency_ms: latency.map(|l| l.as_millis() as i64),
        error,
        checked_at,
    }
}

type Verdict = (HealthStatus, Option<u16>, Option<Duration>, Option<String>);

/// Polls one target and judges the answer.
pub async fn check(http: &reqwest::Client, t: &Target) -> Verdict {
    let timeout = t.timeout.unwrap_or(DEFAULT_TIMEOUT);
    let started = Instant::now();
    let answer = tokio::time::timeout(timeout, fetch(http, t)).await;
    let latency = started.elapsed();
    let (code, body) = match answer {
        Err(_) => {
            return down(
                None,
                None,
                format!("timed out after {}", humantime::format_duration(timeout)),
            )
        }
        Ok(Err(e)) => return down(None, None, reason(&e)),
        Ok(Ok(answer)) => answer,
    };
    let accepted = match &t.expect_status {
        Some(ranges) => ranges.iter().any(|r| (r.0..=r.1).contains(&code)),
        None => (200..=299).contains(&code),
    };
    if !accepted {
        return down(
            Some(code),
            Some(latency),
            format!("unexpected HTTP status {code}"),
        );
    }
    if let Some(needle) = &t.expect_body {
        if !body.contains(needle.as_str()) {
            return down(
                Some(code),
                Some(latency),
                format!("the body does not contain {needle:?}"),
            );
        }
    }
    if let Some(expect) = &t.expect_json {
        match serde_json::from_str::<serde_json::Value>(&body) {
            Err(e) => {
                return down(
                    Some(code),
                    Some(latency),
                    format!("the body is not JSON: {e}"),
                )
            }
            Ok(v) => match v.pointer(&expect.pointer) {
                Some(found) if *found == expect.equals => {}
                Some(found) => {
                    let msg = format!(
                        "{} is {}, expected {}",
                        expect.pointer,
                        clip(&found.to_string()),
                        expect.equals
                    );
                    return down(Some(code), Some(latency), msg);
                }
                None => {
                    return down(
                        Some(code),
                        Some(latency),
                        format!("{} is missing from the JSON body", expect.pointer),
                    )
                }
            },
        }
    }
    match t.degraded_after {
        Some(limit) if latency > limit => (
            HealthStatus::Degraded,
            Some(code),
            Some(latency),
            Some(format!(
                "slow: {} ms (degraded after {})",
                latency.as_millis(),
                humantime::format_duration(limit)
            )),
        ),
        _ => (HealthStatus::Up, Some(code), Some(latency), None),
    }
}

fn down(code: Option<u16>, latency: Option<Duration>, why: String) -> Verdict {
    (HealthStatus::Down, code, latency, Some(clip(&why)))
}

/// Sends the request and reads at most [`MAX_BODY`] of the body.
async fn fetch(http: &reqwest::Client, t: &Target) -> Result<(u16, String), reqwest::Error> {
    let method = reqwest::Method::from_bytes(t.method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut req = http.request(method, &t.url);
    for (k, v) in &t.headers {
        req = req.header(k, v);
    }
    let mut resp = req.send().await?;
    let code = resp.status().as_u16();
    let mut body = Vec::new();
    if t.expect_body.is_some() || t.expect_json.is_some() {
        while let Some(chunk) = resp.chunk().await? {
            body.extend_from_slice(&chunk);
            if body.len() >= MAX_BODY {
                body.truncate(MAX_BODY);
                break;
            }
        }
    }
    Ok((code, String::from_utf8_lossy(&body).into_owned()))
}

/// A short reason for a failed request: what kind of failure and its root
/// cause, without the URL (it may hold a token).
pub(crate) fn reason(e: &reqwest::Error) -> String {
    let mut root: &dyn std::error::Error = e;
    while let Some(next) = root.source() {
        root = next;
    }
    let root = root.to_string();
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        let lower = root.to_ascii_lowercase();
        if lower.contains("dns")
            || lower.contains("lookup")
            || lower.contains("name or service")
            || lower.contains("resolve")
        {
            "dns error"
        } else if lower.contains("certificate")
            || lower.contains("tls")
            || lower.contains("handshake")
            || lower.contains("invalidcontenttype")
        {
            "tls error"
        } else {
            "cannot connect"
        }
    } else if e.is_body() || e.is_decode() {
        "bad response body"
    } else if e.is_redirect() {
        "too many redirects"
    } else {
        "request failed"
    };
    if root.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {root}")
    }
}

fn clip(s: &str) -> String {
    crate::first_line_clipped(s, MAX_REASON)
}

/// The HTTP client jobs share: rustls with the ring provider and the system's
/// CA certificates, a user agent naming ops-worker, no default timeout (each
/// check sets its own).
pub fn http_client() -> reqwest::Client {
    http_client_builder()
        .build()
        .expect("the TLS backend is configured at build time")
}

/// What [`http_client`] is built from, for clients that differ in one
/// setting (the notification sender follows no redirects).
pub fn http_client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(concat!("ops-worker/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(DEFAULT_TIMEOUT)
        .tls_backend_preconfigured(tls_config())
}

/// The TLS settings every HTTP client shares: TLS 1.2 and 1.3 with the ring
/// provider, certificates checked against the system's CA store. The store
/// is read and parsed once per process (about 160 KiB held, see
/// [`crate::tls`]); each client's copy of the configuration shares it.
///
/// A system without CA certificates (no `ca-certificates` package, or
/// `SSL_CERT_FILE`/`SSL_CERT_DIR` naming none) is logged once as a warning
/// and gets an empty store: plain-HTTP checks and webhooks work, and each
/// HTTPS request fails with an unknown-issuer error naming its URL.
fn tls_config() -> rustls::ClientConfig {
    static CONFIG: OnceLock<rustls::ClientConfig> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let builder = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
                .with_safe_default_protocol_versions()
                .expect("ring supports TLS 1.2 and 1.3");
            let mut config = match crate::tls::system_verifier() {
                Ok(verifier) => builder
                    .dangerous()
                    .with_custom_certificate_verifier(verifier)
                    .with_no_client_auth(),
                Err(e) => {
                    tracing::warn!(
                        "no CA certificates, so HTTPS requests will fail ({e}): install \
                         ca-certificates, or point SSL_CERT_FILE or SSL_CERT_DIR at some"
                    );
                    builder
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth()
                }
            };
            // reqwest is built without HTTP/2.
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            config
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use chrono::{DateTime, Utc};
    use tokio::net::TcpListener;
    use wiremock::matchers::any;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::clock::ManualClock;
    use crate::store::MemoryStore;

    /// How a test server answers.
    #[derive(Clone)]
    enum Reply {
        /// Status line code and body, after an optional delay.
        Http(u16, &'static str, Duration),
        /// Accepts the connection, reads the request, never answers.
        Hang,
    }

    /// A wiremock server on 127.0.0.1 that answers every request the same
    /// way, for as long as it lives.
    async fn server(reply: Reply) -> MockServer {
        let server = MockServer::start().await;
        let answer = match reply {
            Reply::Http(code, body, delay) => ResponseTemplate::new(code)
                .set_body_raw(body, "application/json")
                .set_delay(delay),
            // Longer than any test: it never answers.
            Reply::Hang => ResponseTemplate::new(200).set_delay(Duration::from_secs(3600)),
        };
        Mock::given(any()).respond_with(answer).mount(&server).await;
        server
    }

    /// A port nothing listens on.
    async fn closed_port() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    }

    fn target(name: &str, url: String) -> Target {
        Target {
            name: name.into(),
            url,
            method: "GET".into(),
            headers: BTreeMap::new(),
            timeout: Some(Duration::from_secs(2)),
            expect_status: None,
            expect_body: None,
            expect_json: None,
            degraded_after: None,
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-05-01T00:00:00Z")
            .unwrap()
            .to_utc()
    }

    fn ctx() -> JobContext {
        JobContext::standalone("health", now(), Arc::new(ManualClock::new(now())))
    }

    const OK: Reply = Reply::Http(200, r#"{"status":"ok","db":{"up":true}}"#, Duration::ZERO);

    #[tokio::test(flavor = "multi_thread")]
    async fn a_hanging_target_is_down_and_delays_no_other() {
        let servers = [
            server(OK).await,
            server(Reply::Http(500, "boom", Duration::ZERO)).await,
            server(Reply::Http(200, "ok", Duration::from_millis(300))).await,
            server(Reply::Hang).await,
        ];
        let [ok, failing, slow, hang] = servers.each_ref().map(MockServer::address);
        let closed = closed_port().await;
        let mut slow_t = target("slow", format!("http://{slow}/"));
        slow_t.degraded_after = Some(Duration::from_millis(100));
        let targets = vec![
            target("ok", format!("http://{ok}/health")),
            target("failing", format!("http://{failing}/")),
            slow_t,
            target("hang", format!("http://{hang}/")),
            target("closed", format!("http://{closed}/")),
            target("tls", format!("https://{ok}/")),
            // RFC 6761: .invalid never resolves.
            target("dns", "http://ops-worker-test.invalid/".to_string()),
        ];
        let c = ctx();
        let started = Instant::now();
        let checks = poll_all(&c.http, &targets, 32, &c).await;
        let elapsed = started.elapsed();
        // Everything ran at once: the run takes about the hanging target's 2 s timeout, not the sum.
        assert!(
            elapsed >= Duration::from_secs(2) && elapsed < Duration::from_millis(3500),
            "{elapsed:?}"
        );

        let by = |name: &str| checks.iter().find(|c| c.service == name).unwrap().clone();
        assert_eq!(
            checks
                .iter()
                .map(|c| c.service.as_str())
                .collect::<Vec<_>>(),
            ["ok", "failing", "slow", "hang", "closed", "tls", "dns"]
        );
        let ok = by("ok");
        assert_eq!(
            (ok.status, ok.http_status, ok.error.as_deref()),
            (HealthStatus::Up, Some(200), None)
        );
        assert!(
            ok.latency_ms.unwrap() < 1000,
            "the healthy target was not held up: {ok:?}"
        );
        let failing = by("failing");
        assert_eq!(
            (failing.status, failing.http_status),
            (HealthStatus::Down, Some(500))
        );
        assert_eq!(failing.error.as_deref(), Some("unexpected HTTP status 500"));
        let slow = by("slow");
        assert_eq!(slow.status, HealthStatus::Degraded);
        assert!(
            slow.error.as_deref().unwrap().starts_with("slow: "),
            "{slow:?}"
        );
        let hang = by("hang");
        assert_eq!(
            (hang.status, hang.error.as_deref()),
            (HealthStatus::Down, Some("timed out after 2s"))
        );
        let closed = by("closed");
        assert_eq!(closed.status, HealthStatus::Down);
        assert!(
            closed
                .error
                .as_deref()
                .unwrap()
                .starts_with("cannot connect: "),
            "{closed:?}"
        );
        assert!(
            closed.error.as_deref().unwrap().contains("refused"),
            "{closed:?}"
        );
        let tls = by("tls");
        assert_eq!(tls.status, HealthStatus::Down);
        assert!(
            tls.error.as_deref().unwrap().starts_with("tls error: "),
            "{tls:?}"
        );
        for c in &checks {
            assert!(
                !c.error.as_deref().unwrap_or("").contains("127.0.0.1"),
                "no URL in reasons: {c:?}"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn status_body_and_json_expectations() {
        let ok = server(OK).await;
        let teapot = server(Reply::Http(418, "short and stout", Duration::ZERO)).await;
        let url = |s: &MockServer| format!("{}/", s.uri());
        let mut t = target("x", url(&teapot));
        t.expect_status = Some(vec![StatusRange(200, 200), StatusRange(400, 499)]);
        t.expect_body = Some("stout".into());
        assert_eq!(check(&ctx().http, &t).await.0, HealthStatus::Up);
        t.expect_body = Some("tall".into());
        let (status, _, _, why) = check(&ctx().http, &t).await;
        assert_eq!(
            (status, why.as_deref()),
            (
                HealthStatus::Down,
                Some("the body does not contain \"tall\"")
            )
        );

        let mut t = target("y", url(&ok));
        t.expect_json = Some(ExpectJson {
            pointer: "/db/up".into(),
            equals: serde_json::json!(true),
        });
        assert_eq!(check(&ctx().http, &t).await.0, HealthStatus::Up);
        t.expect_json = Some(ExpectJson {
            pointer: "/status".into(),
            equals: serde_json::json!("degraded"),
        });
        let why = check(&ctx().http, &t).await.3.unwrap();
        assert_eq!(why, "/status is \"ok\", expected \"degraded\"");
        t.expect_json = Some(ExpectJson {
            pointer: "/nope".into(),
            equals: serde_json::json!(1),
        });
        assert_eq!(
            check(&ctx().http, &t).await.3.unwrap(),
            "/nope is missing from the JSON body"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn concurrency_bounds_the_fan_out() {
        let server = server(Reply::Http(200, "ok", Duration::from_millis(300))).await;
        let slow = server.address();
        let targets: Vec<_> = (0..4)
            .map(|i| target(&format!("t{i}"), format!("http://{slow}/")))
            .collect();
        let c = ctx();
        let started = Instant::now();
        poll_all(&c.http, &targets, 2, &c).await;
        // Two at a time: two rounds of 300 ms.
        assert!(
            started.elapsed() >= Duration::from_millis(600),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_run_records_every_check_and_succeeds_whatever_the_states() {
        let closed = closed_port().await;
        let job = build_from(&format!(
            "targets = [{{ name = \"gone\", url = \"http://{closed}/\" }}]"
        ))
        .unwrap();
        let store = Arc::new(MemoryStore::default());
        let mut c = ctx();
        c.store = store.clone();
        let out = job.run(c).await.unwrap();
        assert!(out
            .output
            .unwrap()
            .starts_with("1 target: 0 up, 0 degraded, 1 down (gone: cannot connect"));
        let checks = store.checks.lock().unwrap().clone();
        assert_eq!(checks.len(), 1);
        assert_eq!(
            (checks[0].job_name.as_str(), checks[0].checked_at),
            ("health", now())
        );
    }

    fn build_from(settings: &str) -> Result<Arc<dyn Job>, BuildError> {
        crate::build(
            "health",
            "health",
            toml::de::ValueDeserializer::parse(&format!("{{ {settings} }}")).unwrap(),
        )
    }

    #[test]
    fn settings_are_checked() {
        let err = |s: &str| {
            build_from(s)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(build_from(r#"targets = [{ name = "a", url = "http://a/", expect_status = [200, "300-399"], timeout = "1s", degraded_after = "200ms", headers = { X = "1" } }]"#).is_ok());
        assert_eq!(
            err("targets = []"),
            "targets: add at least one { name, url }"
        );
        assert!(err(r#"targets = [{ name = "a", url = "ftp://a/" }]"#)
            .contains("must be http or https"));
        assert!(err(r#"targets = [{ name = "a", url = "not a url" }]"#).contains("invalid url"));
        assert!(err(
            r#"targets = [{ name = "a", url = "http://a/" }, { name = "a", url = "http://b/" }]"#
        )
        .contains("used twice"));
        assert!(err(
            r#"targets = [{ name = "a", url = "http://a/", expect_status = ["299-200"] }]"#
        )
        .contains("low to high"));
        assert!(
            err(r#"targets = [{ name = "a", url = "http://a/", timeout = "soon" }]"#)
                .contains("invalid duration")
        );
        assert!(
            err(r#"targets = [{ name = "a", url = "http://a/", tiemout = "1s" }]"#)
                .contains("unknown field `tiemout`")
        );
        assert!(
            err(r#"targets = [{ name = "a", url = "http://a/" }], concurrency = 0"#)
                .contains("at least 1")
        );
    }

    #[test]
    fn the_longest_wait_is_the_slowest_target_per_round() {
        let wait = |s: &str| build_from(s).unwrap().longest_wait().unwrap();
        let w = wait(
            r#"targets = [{ name = "a", url = "http://a/", timeout = "2s" }, { name = "b", url = "http://b/", timeout = "3s" }, { name = "c", url = "http://c/" }]"#,
        );
        assert_eq!(w.wait, Duration::from_secs(5));
        assert!(
            w.why.starts_with(
                "target \"c\" may take up to 5s (its timeout), and when a target hangs"
            ),
            "{}",
            w.why
        );
        let w = wait(
            r#"targets = [{ name = "a", url = "http://a/", timeout = "2s" }, { name = "b", url = "http://b/", timeout = "3s" }, { name = "c", url = "http://c/", timeout = "1s" }], concurrency = 2"#,
        );
        assert_eq!(w.wait, Duration::from_secs(6));
        assert!(
            w.why.starts_with(
                "3 targets polled 2 at a time may take up to 6s (2 rounds of up to 3s, target \"b\"), and"
            ),
            "{}",
            w.why
        );
    }
}
