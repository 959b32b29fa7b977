//! The settings of the `[notify.NAME]` types that are not webhooks:
//! `email` (SMTP) and `pagerduty` (Events API v2). `notify.rs` owns the
//! table as a whole (its `type`, `timeout`, unknown keys); this file turns
//! one type's keys into its typed target. Credentials (the SMTP password,
//! the routing key) are [`Secret`]s and no problem quotes them.
//!
//! ```toml
//! [notify.ops-mail]
//! type = "email"
//! host = "smtp.example.com"
//! tls = "starttls"                  # "starttls" (default), "tls" or "none"
//! username = "${SMTP_USERNAME}"
//! password = "${SMTP_PASSWORD}"
//! from = "ops-worker <ops-worker@example.com>"
//! to = ["oncall@example.com"]
//!
//! [notify.pagerduty]
//! type = "pagerduty"
//! routing_key = "${PAGERDUTY_ROUTING_KEY}"
//! ```

use lettre::message::Mailbox;
use lettre::transport::smtp::client::Certificate;
use toml::de::DeValue;
use toml::Spanned;

use super::notify::{Fields, Problems};
use super::Secret;

/// Events API v2, US region; the EU region is `https://events.eu.pagerduty.com/v2/enqueue`.
pub const PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which the server must offer.
    StartTls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
    /// No encryption (a relay on localhost); no credentials then.
    None,
}

impl SmtpTls {
    pub fn as_str(self) -> &'static str {
        match self {
            SmtpTls::StartTls => "starttls",
            SmtpTls::Tls => "tls",
            SmtpTls::None => "none",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            SmtpTls::StartTls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        }
    }
}

/// `type = "email"`: each notification is one message to `to`.
#[derive(Debug, Clone)]
pub struct EmailTarget {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// Both or neither.
    pub credentials: Option<(Secret, Secret)>,
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    /// PEM certificates trusted besides the system's (a relay with a
    /// private CA), read and checked at load.
    pub ca_pem: Option<Vec<u8>>,
}

/// `type = "pagerduty"`: alerts become PagerDuty incidents.
#[derive(Debug, Clone)]
pub struct PagerDutyTarget {
    /// The integration key of a PagerDuty service ("Events API v2").
    pub routing_key: Secret,
    /// The enqueue endpoint: [`PAGERDUTY_URL`] unless set.
    pub url: Secret,
}

impl Problems<'_, '_> {
    pub(super) fn email(&mut self, fields: &mut Fields<'_>) -> Option<EmailTarget> {
        let host = self.required(fields, "host").and_then(|v| {
            let s = self.string("host", &v)?;
            if s.is_empty() || s.contains(char::is_whitespace) || s.contains('/') {
                self.at(v.span(), Some("host"), "expected a host name or IP address");
                return None;
            }
            Some(s.to_string())
        });
        let tls = match &fields.take("tls") {
            None => Some(SmtpTls::StartTls),
            Some(v) => self.string("tls", v).and_then(|s| match s {
                "starttls" => Some(SmtpTls::StartTls),
                "tls" => Some(SmtpTls::Tls),
                "none" => Some(SmtpTls::None),
                other => {
                    let msg =
                        format!("invalid value {other:?} (expected one of: starttls, tls, none)");
                    self.at(v.span(), Some("tls"), msg);
                    None
                }
            }),
        };
        let port = match &fields.take("port") {
            None => tls.map(SmtpTls::default_port),
            Some(v) => {
                // A string too: what `${SMTP_PORT}` expands to.
                let parsed = match v.get_ref() {
                    DeValue::Integer(i) => i.as_str().replace('_', "").parse::<u16>().ok(),
                    DeValue::String(s) => s.trim().parse::<u16>().ok(),
                    _ => None,
                };
                match parsed.filter(|p| *p > 0) {
                    Some(p) => Some(p),
                    None => {
                        self.at(v.span(), Some("port"), "expected a port from 1 to 65535");
                        None
                    }
                }
            }
        };
        let username = fields.take("username");
        let password = fields.take("password");
        let credentials = match (&username, &password) {
            (None, None) => Some(None),
            (Some(u), Some(p)) => {
                let u = self.string("username", u).map(Secret::new);
                let pw = self.string("password", p).map(Secret::new);
                match (u, pw, tls) {
                    (Some(_), Some(_), Some(SmtpTls::None)) => {
                        let msg = "credentials are never sent unencrypted: set tls = \"starttls\" or \"tls\"";
                        self.at(p.span(), Some("password"), msg);
                        None
                    }
                    (Some(u), Some(p), _) => Some(Some((u, p))),
                    _ => None,
                }
            }
            (Some(v), None) | (None, Some(v)) => {
                let (key, other) = if username.is_some() {
                    ("username", "password")
                } else {
                    ("password", "username")
                };
                self.at(v.span(), Some(key), format!("needs {other} too"));
                None
            }
        };
        let from = self
            .required(fields, "from")
            .and_then(|v| self.mailbox("from", &v));
        let to = self.required(fields, "to").and_then(|v| {
            let span = v.span();
            let DeValue::Array(items) = v.into_inner() else {
                let msg = "expected a list of addresses, such as [\"oncall@example.com\"]";
                self.at(span, Some("to"), msg);
                return None;
            };
            if items.is_empty() {
                self.at(span, Some("to"), "needs at least one address");
                return None;
            }
            let all: Vec<_> = items.iter().map(|i| self.mailbox("to", i)).collect();
            all.into_iter().collect::<Option<Vec<_>>>()
        });
        let ca_pem = match &fields.take("ca_file") {
            None => Some(None),
            Some(v) => self.string("ca_file", v).and_then(|path| {
                let read = std::fs::read(path)
                    .map_err(|e| e.to_string())
                    .and_then(|pem| {
                        Certificate::from_pem(&pem)
                            .map(|_| pem)
                            .map_err(|e| format!("not a PEM certificate: {e}"))
                    });
                match read {
                    Ok(pem) => Some(Some(pem)),
                    Err(e) => {
                        self.at(
                            v.span(),
                            Some("ca_file"),
                            format!("cannot use {path:?}: {e}"),
                        );
                        None
                    }
                }
            }),
        };
        Some(EmailTarget {
            host: host?,
            port: port?,
            tls: tls?,
            credentials: credentials?,
            from: from?,
            to: to?,
            ca_pem: ca_pem?,
        })
    }

    fn mailbox(&mut self, key: &str, v: &Spanned<DeValue<'_>>) -> Option<Mailbox> {
        let s = self.string(key, v)?;
        match s.parse::<Mailbox>() {
            Ok(m) => Some(m),
            Err(e) => {
                let msg = format!(
                    "invalid address {s:?}: {e} (such as \"ops@example.com\" or \"Ops <ops@example.com>\")"
                );
                self.at(v.span(), Some(key), msg);
                None
            }
        }
    }

    pub(super) fn pagerduty(&mut self, fields: &mut Fields<'_>) -> Option<PagerDutyTarget> {
        let routing_key = self.required(fields, "routing_key").and_then(|v| {
            let s = self.string("routing_key", &v)?;
            if s.trim().is_empty() {
                self.at(v.span(), Some("routing_key"), "must not be empty");
                return None;
            }
            Some(Secret::new(s.trim()))
        });
        let url = match &fields.take("url") {
            None => Some(Secret::new(PAGERDUTY_URL)),
            Some(v) => self.url("url", v),
        };
        Some(PagerDutyTarget {
            routing_key: routing_key?,
            url: url?,
        })
    }
}
