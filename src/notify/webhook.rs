//! Webhook targets: rendering a notification in the target's format and one
//! POST of it, and the POST itself for the other HTTP channels (PagerDuty).
//! Knows nothing of the outbox, retries or the clock; the sender in
//! `mod.rs` does.
//!
//! The URL and header values of a target may be credentials (a Slack
//! incoming-webhook URL is one), so no reason this file produces contains
//! them: reqwest errors lose their URL (`without_url`), and every reason is
//! scrubbed of the URL, its path and password, and the header values before
//! it leaves, in case a cause or a response body echoes one.

use std::time::Duration;

use ops_worker_jobs::reqwest::{self, header, Url};

use super::message::{Message, RenderError};
use super::template::{self, Escape};
use super::Failure;
use crate::config::{NotifyFormat, Secret, WebhookTarget};

/// The most of an error response's body read for the reason.
const MAX_ERROR_BODY: usize = 512;
/// The longest reason kept (stored in `last_error` and logged).
const MAX_REASON: usize = 200;

/// The request body and its content type for `hook`'s format: `json` sends
/// the payload as it is, `slack` sends `{"text": payload.text}` (what a
/// Slack incoming webhook accepts), `template` renders the target's template.
pub fn render(hook: &WebhookTarget, m: &Message) -> Result<(Vec<u8>, String), RenderError> {
    const JSON: &str = "application/json";
    match (hook.format, &hook.template) {
        (NotifyFormat::Json, _) => Ok((m.raw.as_bytes().to_vec(), JSON.into())),
        (NotifyFormat::Slack, _) => match m.payload.get("text") {
            Some(serde_json::Value::String(text)) => Ok((
                serde_json::json!({ "text": text }).to_string().into_bytes(),
                JSON.into(),
            )),
            _ => Err(RenderError::NoText),
        },
        (NotifyFormat::Template, Some(t)) => {
            let vars = template::context(&m.payload, m.ack_url.as_deref());
            let escape = Escape::for_content_type(&t.content_type);
            let body = template::render(&t.source, escape, &vars).map_err(RenderError::Template)?;
            Ok((body.into_bytes(), t.content_type.clone()))
        }
        (NotifyFormat::Template, None) => Err(RenderError::Template(
            "format = \"template\" without a template".into(),
        )),
    }
}

/// One POST: where, what and how long, and the secrets no reason may show.
pub struct Post<'a> {
    pub url: &'a Secret,
    pub headers: &'a [(String, Secret)],
    pub content_type: &'a str,
    pub idempotency_key: &'a str,
    pub body: Vec<u8>,
    pub timeout: Duration,
    /// Secrets inside the body (a routing key), scrubbed from reasons too.
    pub body_secrets: &'a [&'a Secret],
}

/// Renders `m` for `hook` and POSTs it.
pub async fn send(
    http: &reqwest::Client,
    hook: &WebhookTarget,
    timeout: Duration,
    m: &Message,
) -> Result<(), Failure> {
    let (body, content_type) = render(hook, m).map_err(|e| Failure {
        reason: e.to_string(),
        permanent: true,
    })?;
    post(
        http,
        Post {
            url: &hook.url,
            headers: &hook.headers,
            content_type: &content_type,
            idempotency_key: &m.idempotency_key,
            body,
            timeout,
            body_secrets: &[],
        },
    )
    .await
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

/// POSTs the body under the timeout (connect, send, response headers and
/// an error body), with its content type, `Idempotency-Key` and the
/// target's own headers. Ok on any 2xx.
pub async fn post(http: &reqwest::Client, p: Post<'_>) -> Result<(), Failure> {
    let Ok(key) = header::HeaderValue::from_str(p.idempotency_key) else {
        return Err(Failure {
            reason:
                "the idempotency key cannot be sent as a header (non-ASCII or control characters)"
                    .into(),
            permanent: true,
        });
    };
    let mut request = http
        .post(p.url.expose())
        .header(header::CONTENT_TYPE, p.content_type)
        .header("idempotency-key", key)
        .body(p.body);
    for (name, value) in p.headers {
        request = request.header(name.as_str(), value.expose());
    }
    let answer = tokio::time::timeout(p.timeout, async {
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
        Err(_) => format!("timed out after {}", format_duration(p.timeout)),
    };
    let mut reason = scrub(&reason, p.url, p.headers);
    for secret in p.body_secrets {
        reason = scrub_values(&reason, vec![secret.expose().to_string()]);
    }
    Err(Failure {
        reason: clip(&reason),
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

/// `reason` with a target's secrets replaced by `***`: the URL as written
/// and as normalised, its path and query, its password, and each header
/// value. Defence in depth: nothing should carry them here.
pub fn scrub(reason: &str, url: &Secret, headers: &[(String, Secret)]) -> String {
    let raw = url.expose();
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
    secrets.extend(headers.iter().map(|(_, v)| v.expose().to_string()));
    scrub_values(reason, secrets)
}

/// `reason` with each of `secrets` (of 4 characters or more) replaced by
/// `***`, longest first, so a URL goes whole before its path does.
pub fn scrub_values(reason: &str, mut secrets: Vec<String>) -> String {
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
    use crate::db::{Notification, NotificationEvent, NotificationStatus};

    const PAYLOAD: &str = r#"{"event":"opened","alert_id":42,"fingerprint":"system:service:api","source":"service","subject":"api","severity":"critical","status":"open","message":"api is down","opened_at":"2026-05-01T10:00:00Z","text":"[critical] api is down"}"#;

    fn message(payload: &str) -> Result<Message, RenderError> {
        let at = chrono::DateTime::UNIX_EPOCH;
        Message::from_row(&Notification {
            id: 1,
            idempotency_key: "alert:42:opened:hook".into(),
            target: "hook".into(),
            alert_id: Some(42),
            event: NotificationEvent::Opened,
            payload: payload.into(),
            status: NotificationStatus::Pending,
            attempts: 0,
            next_attempt_at: at,
            created_at: at,
            delivered_at: None,
            last_error: None,
        })
    }

    fn hook(format: NotifyFormat) -> WebhookTarget {
        WebhookTarget {
            url: Secret::new("http://127.0.0.1/hook"),
            format,
            headers: vec![("Authorization".into(), Secret::new("Bearer t0ken"))],
            template: None,
        }
    }

    fn body(format: NotifyFormat, payload: &str) -> Result<Vec<u8>, RenderError> {
        render(&hook(format), &message(payload)?).map(|(b, _)| b)
    }

    #[test]
    fn json_sends_the_payload_as_it_is() {
        assert_eq!(
            body(NotifyFormat::Json, PAYLOAD).unwrap(),
            PAYLOAD.as_bytes()
        );
    }

    #[test]
    fn slack_sends_only_the_text() {
        let b = body(NotifyFormat::Slack, PAYLOAD).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v, serde_json::json!({ "text": "[critical] api is down" }));
        // Quotes and newlines survive as JSON escapes.
        let b = body(NotifyFormat::Slack, r#"{"text":"a \"b\"\nc"}"#).unwrap();
        assert_eq!(b, br#"{"text":"a \"b\"\nc"}"#);
    }

    #[test]
    fn a_template_renders_with_its_content_type() {
        let mut h = hook(NotifyFormat::Template);
        h.template = Some(crate::config::BodyTemplate {
            source: "{{ severity | upper }}: {{ message }} ({{ alert_id }})".into(),
            content_type: "text/plain".into(),
        });
        let (b, ct) = render(&h, &message(PAYLOAD).unwrap()).unwrap();
        assert_eq!(
            (b.as_slice(), ct.as_str()),
            (&b"CRITICAL: api is down (42)"[..], "text/plain")
        );
    }

    #[test]
    fn payloads_that_cannot_be_rendered() {
        assert_eq!(
            body(NotifyFormat::Slack, r#"{"event":"opened"}"#),
            Err(RenderError::NoText)
        );
        assert_eq!(
            body(NotifyFormat::Slack, r#"{"text":5}"#),
            Err(RenderError::NoText)
        );
        assert_eq!(
            body(NotifyFormat::Json, "[1]").unwrap_err().to_string(),
            "the payload is not a JSON object: found an array"
        );
        assert!(matches!(
            body(NotifyFormat::Json, "{nope"),
            Err(RenderError::NotAnObject(_))
        ));
    }

    fn post_to(url: &str) -> (Secret, Vec<(String, Secret)>) {
        (
            Secret::new(url),
            vec![("Authorization".into(), Secret::new("Bearer t0ken"))],
        )
    }

    fn request<'a>(url: &'a Secret, headers: &'a [(String, Secret)]) -> Post<'a> {
        Post {
            url,
            headers,
            content_type: "application/json",
            idempotency_key: "k",
            body: b"{}".to_vec(),
            timeout: Duration::from_secs(1),
            body_secrets: &[],
        }
    }

    #[test]
    fn scrub_hides_the_url_its_parts_and_header_values() {
        let (url, headers) =
            post_to("https://user:pa55w0rd@hooks.example.com/services/T0/B0/s3cr3t?x=1");
        let said =
            "error for url (https://user:pa55w0rd@hooks.example.com/services/T0/B0/s3cr3t?x=1): \
                    path /services/T0/B0/s3cr3t?x=1, password pa55w0rd, header Bearer t0ken";
        let out = scrub(said, &url, &headers);
        for secret in ["s3cr3t", "pa55w0rd", "t0ken", "hooks.example.com"] {
            assert!(!out.contains(secret), "{out}");
        }
        assert_eq!(
            out,
            "error for url (***): path ***, password ***, header ***"
        );
        assert_eq!(scrub("HTTP status 503", &url, &headers), "HTTP status 503");
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
        let (url, headers) = post_to(&format!("{}/hooks/s3cr3t", server.uri()));
        let f = post(&client(), request(&url, &headers)).await.unwrap_err();
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
        let (url, headers) = post_to(&format!("http://127.0.0.1:{port}/hooks/s3cr3t"));
        let http = ops_worker_jobs::health::http_client();
        let f = post(&http, request(&url, &headers)).await.unwrap_err();
        assert!(!f.permanent);
        assert!(f.reason.starts_with("cannot connect"), "{f:?}");
        assert!(!f.reason.contains("s3cr3t"), "{f:?}");
        assert!(!f.reason.contains("127.0.0.1"), "{f:?}");
    }
}
