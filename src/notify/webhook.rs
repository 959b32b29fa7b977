//! Webhook targets: rendering a notification in the target's format and one
//! POST of it. Knows nothing of the outbox, retries or the clock; the sender
//! in `mod.rs` does.
//!
//! The URL and header values of a target may be credentials (a Slack
//! incoming-webhook URL is one), so no reason this file produces contains
//! them: reqwest errors lose their URL (`without_url`), and every reason is
//! scrubbed of the URL, its path and password, and the header values before
//! it leaves, in case a cause or a response body echoes one.

use std::time::Duration;

use ops_worker_jobs::reqwest::{self, header, Url};

use crate::config::{NotifyFormat, NotifyTarget};

/// The most of an error response's body read for the reason.
const MAX_ERROR_BODY: usize = 512;
/// The longest reason kept (stored in `last_error` and logged).
const MAX_REASON: usize = 200;

/// Why a notification cannot be rendered: retrying will not help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("the payload is not a JSON object: {0}")]
    NotAnObject(String),
    #[error("the payload has no \"text\" string for the slack format")]
    NoText,
}

/// The request body for `format`, from a notification's JSON payload:
/// `json` sends the payload as it is, `slack` sends `{"text": payload.text}`
/// (what a Slack incoming webhook accepts).
pub fn render(format: NotifyFormat, payload: &str) -> Result<Vec<u8>, RenderError> {
    let value: serde_json::Value =
        serde_json::from_str(payload).map_err(|e| RenderError::NotAnObject(e.to_string()))?;
    let serde_json::Value::Object(object) = value else {
        return Err(RenderError::NotAnObject(format!(
            "found {}",
            json_type(&value)
        )));
    };
    match format {
        NotifyFormat::Json => Ok(payload.as_bytes().to_vec()),
        NotifyFormat::Slack => match object.get("text") {
            Some(serde_json::Value::String(text)) => {
                Ok(serde_json::json!({ "text": text }).to_string().into_bytes())
            }
            _ => Err(RenderError::NoText),
        },
    }
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// The sender's client: the jobs' client, but following no redirects. A
/// redirected POST arrives as a GET (301, 302, 303) without its body, so a
/// redirect is reported instead, to be fixed in the target's URL.
pub fn client() -> reqwest::Client {
    ops_worker_jobs::health::http_client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("the TLS backend is configured at build time")
}

/// How one POST went wrong, in a short line without secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub reason: String,
    /// Retrying cannot help (the request cannot even be built).
    pub permanent: bool,
}

/// POSTs `body` to the target under its timeout (connect, send, response
/// headers and an error body), with `content-type: application/json`,
/// `Idempotency-Key` and the target's own headers. Ok on any 2xx.
pub async fn post(
    http: &reqwest::Client,
    target: &NotifyTarget,
    idempotency_key: &str,
    body: Vec<u8>,
) -> Result<(), Failure> {
    let Ok(key) = header::HeaderValue::from_str(idempotency_key) else {
        return Err(Failure {
            reason:
                "the idempotency key cannot be sent as a header (non-ASCII or control characters)"
                    .into(),
            permanent: true,
        });
    };
    let mut request = http
        .post(target.url.expose())
        .header(header::CONTENT_TYPE, "application/json")
        .header("idempotency-key", key)
        .body(body);
    for (name, value) in &target.headers {
        request = request.header(name.as_str(), value.expose());
    }
    let answer = tokio::time::timeout(target.timeout, async {
        let mut response = request.send().await?;
        let status = response.status();
        let mut snippet = Vec::new();
        if !status.is_success() {
            while let Some(chunk) = response.chunk().await? {
                snippet.extend_from_slice(&chunk);
                if snippet.len() >= MAX_ERROR_BODY {
                    break;
                }
            }
        }
        Ok::<_, reqwest::Error>((status, snippet))
    })
    .await;
    let reason = match answer {
        Ok(Ok((status, _))) if status.is_success() => return Ok(()),
        Ok(Ok((status, snippet))) => {
            let body = String::from_utf8_lossy(&snippet);
            let body = body.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            if status.is_redirection() {
                format!("HTTP status {status}: redirects are not followed (a redirected POST arrives as a GET); set the target's url to where it redirects")
            } else {
                match body.trim() {
                    "" => format!("HTTP status {status}"),
                    body => format!("HTTP status {status}: {body}"),
                }
            }
        }
        Ok(Err(e)) => reason(e),
        Err(_) => format!("timed out after {}", format_duration(target.timeout)),
    };
    Err(Failure {
        reason: clip(&scrub(&reason, target)),
        permanent: false,
    })
}

fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// What kind of failure and its root cause, without the URL.
fn reason(e: reqwest::Error) -> String {
    let e = e.without_url();
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_builder() {
        "invalid request"
    } else if e.is_body() || e.is_decode() {
        "bad response"
    } else {
        "request failed"
    };
    let mut root: &dyn std::error::Error = &e;
    while let Some(next) = root.source() {
        root = next;
    }
    let root = root.to_string();
    if root.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {root}")
    }
}

/// `reason` with the target's secrets replaced by `***`: the URL as written
/// and as normalised, its path and query, its password, and each header
/// value. Defence in depth: nothing should carry them here.
pub fn scrub(reason: &str, target: &NotifyTarget) -> String {
    let raw = target.url.expose();
    let mut secrets: Vec<String> = vec![raw.to_string()];
    if let Ok(url) = Url::parse(raw) {
        secrets.push(url.as_str().to_string());
        secrets.push(url.as_str().trim_end_matches('/').to_string());
        let path = url.path();
        if let Some(query) = url.query() {
            secrets.push(format!("{path}?{query}"));
            secrets.push(query.to_string());
        }
        if path.len() > 1 {
            secrets.push(path.to_string());
        }
        if let Some(password) = url.password() {
            secrets.push(password.to_string());
        }
    }
    secrets.extend(target.headers.iter().map(|(_, v)| v.expose().to_string()));
    // Longest first, so a URL goes whole before its path does.
    secrets.retain(|s| s.len() >= 4);
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = reason.to_string();
    for s in &secrets {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "***");
        }
    }
    out
}

fn clip(s: &str) -> String {
    ops_worker_jobs::first_line_clipped(s, MAX_REASON)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    const PAYLOAD: &str = r#"{"event":"opened","alert_id":42,"fingerprint":"system:service:api","source":"service","subject":"api","severity":"critical","status":"open","message":"api is down","opened_at":"2026-05-01T10:00:00Z","text":"[critical] api is down"}"#;

    #[test]
    fn json_sends_the_payload_as_it_is() {
        let body = render(NotifyFormat::Json, PAYLOAD).unwrap();
        assert_eq!(body, PAYLOAD.as_bytes());
    }

    #[test]
    fn slack_sends_only_the_text() {
        let body = render(NotifyFormat::Slack, PAYLOAD).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v, serde_json::json!({ "text": "[critical] api is down" }));
        // Quotes and newlines survive as JSON escapes.
        let body = render(NotifyFormat::Slack, r#"{"text":"a \"b\"\nc"}"#).unwrap();
        assert_eq!(body, br#"{"text":"a \"b\"\nc"}"#);
    }

    #[test]
    fn payloads_that_cannot_be_rendered() {
        assert_eq!(
            render(NotifyFormat::Slack, r#"{"event":"opened"}"#),
            Err(RenderError::NoText)
        );
        assert_eq!(
            render(NotifyFormat::Slack, r#"{"text":5}"#),
            Err(RenderError::NoText)
        );
        assert_eq!(
            render(NotifyFormat::Json, "[1]").unwrap_err().to_string(),
            "the payload is not a JSON object: found an array"
        );
        assert!(matches!(
            render(NotifyFormat::Json, "{nope"),
            Err(RenderError::NotAnObject(_))
        ));
    }

    fn target(url: &str) -> NotifyTarget {
        NotifyTarget {
            name: "hook".into(),
            url: Secret::new(url),
            format: NotifyFormat::Json,
            headers: vec![("Authorization".into(), Secret::new("Bearer t0ken"))],
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn scrub_hides_the_url_its_parts_and_header_values() {
        let t = target("https://user:pa55w0rd@hooks.example.com/services/T0/B0/s3cr3t?x=1");
        let said =
            "error for url (https://user:pa55w0rd@hooks.example.com/services/T0/B0/s3cr3t?x=1): \
                    path /services/T0/B0/s3cr3t?x=1, password pa55w0rd, header Bearer t0ken";
        let out = scrub(said, &t);
        for secret in ["s3cr3t", "pa55w0rd", "t0ken", "hooks.example.com"] {
            assert!(!out.contains(secret), "{out}");
        }
        assert_eq!(
            out,
            "error for url (***): path ***, password ***, header ***"
        );
        assert_eq!(scrub("HTTP status 503", &t), "HTTP status 503");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_redirect_is_reported_not_followed() {
        use wiremock::matchers::any;
        use wiremock::{Mock, MockServer, ResponseTemplate};
        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(ResponseTemplate::new(301).insert_header("location", "/moved"))
            .mount(&server)
            .await;
        let t = target(&format!("{}/hooks/s3cr3t", server.uri()));
        let f = post(&client(), &t, "k", b"{}".to_vec()).await.unwrap_err();
        assert!(
            f.reason
                .starts_with("HTTP status 301 Moved Permanently: redirects are not followed"),
            "{f:?}"
        );
        // Nothing went to /moved: a followed redirect would have been
        // requested (and recorded) before `post` returned.
        let seen: Vec<String> = server
            .received_requests()
            .await
            .expect("wiremock records requests")
            .iter()
            .map(|r| format!("{} {}", r.method, r.url.path()))
            .collect();
        assert_eq!(seen, ["POST /hooks/s3cr3t"]);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_refused_connection_is_a_short_reason_without_the_url() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let t = target(&format!("http://127.0.0.1:{port}/hooks/s3cr3t"));
        let http = ops_worker_jobs::health::http_client();
        let f = post(&http, &t, "k", b"{}".to_vec()).await.unwrap_err();
        assert!(!f.permanent);
        assert!(f.reason.starts_with("cannot connect"), "{f:?}");
        assert!(!f.reason.contains("s3cr3t"), "{f:?}");
        assert!(!f.reason.contains("127.0.0.1"), "{f:?}");
    }
}
