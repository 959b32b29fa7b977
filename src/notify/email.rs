//! `type = "email"`: a notification as one email (a plain-text and an HTML
//! part) sent over SMTP with lettre. Owns the message (subject, bodies,
//! thread headers) and the SMTP session; not retries (the sender's).
//!
//! Every message about one alert names the same thread root in
//! `In-Reply-To` and `References` (`<ops-worker.alert.ID@DOMAIN>`, the
//! `opened` message's own `Message-ID`), so mail clients show opened,
//! escalated, acknowledged and resolved as one thread. A message's own
//! `Message-ID` comes from its idempotency key, so a retried attempt is
//! recognisably the same message.
//!
//! The SMTP username and password never reach a reason: lettre's errors
//! do not carry them, and every reason is scrubbed of them anyway.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::template::{self, Escape};
use super::{webhook, Failure, Message};
use crate::config::{EmailTarget, SmtpTls};

/// The plain-text part.
const TEXT: &str = "{{ text }}

{% if subject %}Subject:   {{ subject }}
{% endif %}{% if severity %}Severity:  {{ severity }}
{% endif %}{% if status %}Status:    {{ status }}
{% endif %}{% if fingerprint %}Alert:     {{ alert_id }} ({{ fingerprint }})
{% endif %}{% if opened_at %}Opened:    {{ opened_at }}
{% endif %}{% if acknowledged_by %}Acknowledged by {{ acknowledged_by }} at {{ acknowledged_at }}
{% endif %}{% if resolution_note %}Resolution: {{ resolution_note }}
{% endif %}{% if ack_url %}
Acknowledge: {{ ack_url }}
{% elif status == \"open\" and alert_id %}
Acknowledge: ops-worker alerts ack {{ alert_id }}
{% endif %}
-- 
ops-worker
";

/// The HTML part; every value is HTML-escaped.
const HTML: &str = "<!DOCTYPE html>
<html><body>
<p><strong>{{ text }}</strong></p>
<table>
{% if subject %}<tr><td>Subject</td><td>{{ subject }}</td></tr>
{% endif %}{% if severity %}<tr><td>Severity</td><td>{{ severity }}</td></tr>
{% endif %}{% if status %}<tr><td>Status</td><td>{{ status }}</td></tr>
{% endif %}{% if fingerprint %}<tr><td>Alert</td><td>{{ alert_id }} ({{ fingerprint }})</td></tr>
{% endif %}{% if opened_at %}<tr><td>Opened</td><td>{{ opened_at }}</td></tr>
{% endif %}{% if acknowledged_by %}<tr><td>Acknowledged by</td><td>{{ acknowledged_by }} at {{ acknowledged_at }}</td></tr>
{% endif %}{% if resolution_note %}<tr><td>Resolution</td><td>{{ resolution_note }}</td></tr>
{% endif %}</table>
{% if ack_url %}<p><a href=\"{{ ack_url }}\">Acknowledge</a></p>
{% elif status == \"open\" and alert_id %}<p>Acknowledge: <code>ops-worker alerts ack {{ alert_id }}</code></p>
{% endif %}</body></html>
";

/// The thread headers of `m`: its own `Message-ID`, and the root it
/// replies to (none for the root itself, nor for a report).
pub fn thread_ids(m: &Message, domain: &str) -> (String, Option<String>) {
    let own: String = m
        .idempotency_key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_".contains(c) {
                c
            } else {
                '.'
            }
        })
        .collect();
    match m.alert_id {
        Some(id) => {
            let root = format!("<ops-worker.alert.{id}@{domain}>");
            if m.event == "opened" {
                (root, None)
            } else {
                (format!("<ops-worker.{own}@{domain}>"), Some(root))
            }
        }
        None => (format!("<ops-worker.{own}@{domain}>"), None),
    }
}

/// The email for `m`.
pub fn compose(mail: &EmailTarget, m: &Message) -> Result<lettre::Message, String> {
    let vars = template::context(&m.payload, m.ack_url.as_deref());
    let text = template::render(TEXT, Escape::None, &vars)?;
    let html = template::render(HTML, Escape::Html, &vars)?;
    let (id, root) = thread_ids(m, mail.from.email.domain());
    let mut builder = lettre::Message::builder()
        .from(mail.from.clone())
        .subject(m.title())
        .message_id(Some(id));
    for to in &mail.to {
        builder = builder.to(to.clone());
    }
    if let Some(root) = root {
        builder = builder.in_reply_to(root.clone()).references(root);
    }
    builder
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(text),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(html),
                ),
        )
        .map_err(|e| format!("cannot build the email: {e}"))
}

fn transport(
    mail: &EmailTarget,
    timeout: Duration,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let tls = match mail.tls {
        SmtpTls::None => Tls::None,
        mode => {
            let mut params = TlsParameters::builder(mail.host.clone());
            if let Some(pem) = &mail.ca_pem {
                let cert = Certificate::from_pem(pem).map_err(|e| format!("ca_file: {e}"))?;
                params = params.add_root_certificate(cert);
            }
            let params = params.build_rustls().map_err(|e| format!("TLS: {e}"))?;
            if mode == SmtpTls::Tls {
                Tls::Wrapper(params)
            } else {
                Tls::Required(params)
            }
        }
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&mail.host)
        .port(mail.port)
        .tls(tls)
        .timeout(Some(timeout));
    if let Some((user, password)) = &mail.credentials {
        builder = builder
            .credentials(Credentials::new(
                user.expose().to_string(),
                password.expose().to_string(),
            ))
            .authentication(vec![Mechanism::Plain, Mechanism::Login]);
    }
    Ok(builder.build())
}

/// Sends `m` as one email to every `to` address, within `timeout` overall.
/// Any failure (connection, TLS, a rejected login or recipient) is retried
/// by the outbox; its reason is lettre's, e.g. `permanent error (550):
/// 5.1.1 no such user`.
pub async fn send(mail: &EmailTarget, timeout: Duration, m: &Message) -> Result<(), Failure> {
    let email = compose(mail, m).map_err(Failure::permanent)?;
    let smtp = transport(mail, timeout).map_err(Failure::permanent)?;
    let reason = match tokio::time::timeout(timeout, smtp.send(email)).await {
        Ok(Ok(_)) => return Ok(()),
        Ok(Err(e)) => {
            let mut reason = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                reason.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            reason
        }
        Err(_) => format!("timed out after {}", humantime::format_duration(timeout)),
    };
    let secrets = mail
        .credentials
        .iter()
        .flat_map(|(u, p)| [u.expose().to_string(), p.expose().to_string()])
        .collect();
    Err(Failure {
        reason: ops_worker_jobs::first_line_clipped(&webhook::scrub_values(&reason, secrets), 200),
        permanent: false,
    })
}
