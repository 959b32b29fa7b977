//! `[notify.NAME]` tables of schedules.toml: where notifications are sent.
//!
//! This file owns turning those tables into typed [`NotifyTarget`]s and the
//! problems they can have: the table as a whole (`type`, `timeout`, unknown
//! keys) and the webhook type (its template checked at load, problems at
//! the template's own line and column); `channels.rs` reads the email and
//! PagerDuty keys. The sender (`src/notify`) owns delivering.
//!
//! ```toml
//! [notify.ops-webhook]
//! type = "webhook"                 # required: webhook, email or pagerduty
//! url = "${OPS_WEBHOOK_URL}"       # required; http:// or https://
//! format = "slack"                 # "json" (default), "slack" or "template"
//! timeout = "10s"                  # default 10s
//! headers = { Authorization = "Bearer ${OPS_WEBHOOK_TOKEN}" }
//! ```
//!
//! A URL or a header value often *is* the credential (a Slack incoming-webhook
//! URL, a bearer token), so both are [`Secret`]s: their `Debug` shows `***`
//! and no problem reported here quotes them; problems name the target and
//! the key instead.

use std::fmt;
use std::time::Duration;

use ops_worker_jobs::reqwest::header::{HeaderName, HeaderValue};
use ops_worker_jobs::reqwest::Url;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::cx::{valid_job_name, Cx, Span};
use super::{keys, Section};
use crate::notify::template::{self, Escape};

/// A target's `timeout` when it sets none.
pub const DEFAULT_NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest `timeout` a target may set: a delivery in flight is waited for
/// at shutdown, so this bounds how long shutdown can take.
const MAX_NOTIFY_TIMEOUT: Duration = Duration::from_secs(300);
/// Target types and the keys each takes, in the order
/// docs/notifications.md documents them.
const TYPES: &[(&str, &[&str])] = &[
    (
        "webhook",
        &[
            "type",
            "url",
            "format",
            "headers",
            "template",
            "content_type",
            "timeout",
        ],
    ),
    (
        "email",
        &[
            "type", "host", "port", "tls", "username", "password", "from", "to", "ca_file",
            "timeout",
        ],
    ),
    ("pagerduty", &["type", "routing_key", "url", "timeout"]),
];
/// The content type of a template body that sets none.
const DEFAULT_CONTENT_TYPE: &str = "application/json";
/// Headers the sender sets itself; a target cannot override them.
const RESERVED_HEADERS: &[&str] = &["content-type", "content-length", "idempotency-key", "host"];

/// A string that must not appear in logs or errors (a webhook URL, a token).
/// `Debug` prints `***`; there is deliberately no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the one place that needs it (the request).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// How a webhook renders a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyFormat {
    /// The event's JSON payload as it is (the default).
    Json,
    /// `{"text": ...}`, what a Slack incoming webhook accepts.
    Slack,
    /// The target's own body template ([`WebhookTarget::template`]).
    Template,
}

impl NotifyFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyFormat::Json => "json",
            NotifyFormat::Slack => "slack",
            NotifyFormat::Template => "template",
        }
    }
}

/// One `[notify.NAME]` table: where and how notifications are delivered.
/// `Debug` redacts every secret (they are [`Secret`]s).
#[derive(Debug, Clone)]
pub struct NotifyTarget {
    pub name: String,
    /// For one whole attempt: connect, send, the answer.
    pub timeout: Duration,
    pub channel: Channel,
}

/// What a target is, by its `type`; the sender has one `match` on it.
#[derive(Debug, Clone)]
pub enum Channel {
    Webhook(WebhookTarget),
    Email(super::channels::EmailTarget),
    PagerDuty(super::channels::PagerDutyTarget),
}

impl NotifyTarget {
    /// Its `type` as written.
    pub fn kind(&self) -> &'static str {
        match self.channel {
            Channel::Webhook(_) => "webhook",
            Channel::Email(_) => "email",
            Channel::PagerDuty(_) => "pagerduty",
        }
    }

    /// The webhook settings, when it is one.
    pub fn webhook(&self) -> Option<&WebhookTarget> {
        match &self.channel {
            Channel::Webhook(w) => Some(w),
            _ => None,
        }
    }
}

/// `type = "webhook"`: notifications are POSTed to a URL.
#[derive(Debug, Clone)]
pub struct WebhookTarget {
    /// An `http://` or `https://` URL.
    pub url: Secret,
    pub format: NotifyFormat,
    /// Extra request headers, names as written (validated), values secret.
    pub headers: Vec<(String, Secret)>,
    /// Set exactly when `format` is `template`.
    pub template: Option<BodyTemplate>,
}

/// A checked body template and the content type it is sent as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyTemplate {
    pub source: String,
    pub content_type: String,
}

/// A `[notify.NAME]` table's keys by name, each taken once by its reader.
pub(super) struct Fields<'a> {
    entries: Vec<(String, Span, Spanned<DeValue<'a>>)>,
}

impl<'a> Fields<'a> {
    pub(super) fn take(&mut self, key: &str) -> Option<Spanned<DeValue<'a>>> {
        let i = self.entries.iter().position(|(k, _, _)| k == key)?;
        Some(self.entries.remove(i).2)
    }
}

impl Cx<'_> {
    /// The targets of the top-level `[notify]` table, in name order.
    pub(super) fn notify_targets(&mut self, table: DeTable<'_>) -> Vec<NotifyTarget> {
        let mut targets = Vec::new();
        for (name, value) in table {
            let name_span = name.span();
            let name = name.into_inner().into_owned();
            let section = Section::Notify(name.clone());
            if !valid_job_name(&name) {
                self.problem_in(
                    name_span.clone(),
                    Some(section.clone()),
                    None,
                    "target names may use letters, digits, '-', '_' and '.' only",
                );
            }
            match value.into_inner() {
                DeValue::Table(t) => {
                    if let Some(target) = self.notify_target(&name, name_span, t) {
                        targets.push(target);
                    }
                }
                _ => self.problem_in(
                    name_span,
                    Some(section),
                    None,
                    "must be a table: [notify.NAME]",
                ),
            }
        }
        targets.sort_by(|a, b| a.name.cmp(&b.name));
        targets
    }

    fn notify_target(
        &mut self,
        name: &str,
        name_span: Span,
        table: DeTable<'_>,
    ) -> Option<NotifyTarget> {
        let before = self.problems.len();
        let mut p = Problems {
            cx: self,
            section: Section::Notify(name.to_string()),
            name_span,
            meant: Vec::new(),
        };
        let mut fields = Fields {
            entries: table
                .into_iter()
                .map(|(k, v)| (k.get_ref().to_string(), k.span(), v))
                .collect(),
        };
        let ty = fields.take("type");
        let known = match &ty {
            None => {
                let mut all: Vec<&'static str> = Vec::new();
                for (_, keys) in TYPES {
                    for k in *keys {
                        if !all.contains(k) {
                            all.push(k);
                        }
                    }
                }
                p.unknown_keys(&mut fields, &all);
                if !p.meant.contains(&"type") {
                    let known = format!("(known types: {})", type_names().join(", "));
                    p.missing("type", &known);
                }
                return None;
            }
            Some(v) => {
                let s = p.string("type", v)?;
                match TYPES.iter().find(|(t, _)| *t == s) {
                    Some((_, keys)) => keys,
                    None => {
                        let msg = format!(
                            "unknown type {s:?} (known types: {})",
                            type_names().join(", ")
                        );
                        p.at(v.span(), Some("type"), msg);
                        return None;
                    }
                }
            }
        };
        p.unknown_keys(&mut fields, known);
        let timeout = match &fields.take("timeout") {
            None => Some(DEFAULT_NOTIFY_TIMEOUT),
            Some(v) => p.timeout(v),
        };
        let channel = match ty.as_ref().map(|v| v.get_ref()) {
            Some(DeValue::String(t)) if t == "email" => p.email(&mut fields).map(Channel::Email),
            Some(DeValue::String(t)) if t == "pagerduty" => {
                p.pagerduty(&mut fields).map(Channel::PagerDuty)
            }
            _ => p.webhook(&mut fields).map(Channel::Webhook),
        };
        if self.problems.len() > before {
            return None;
        }
        Some(NotifyTarget {
            name: name.to_string(),
            timeout: timeout?,
            channel: channel?,
        })
    }
}

fn type_names() -> Vec<&'static str> {
    TYPES.iter().map(|(t, _)| *t).collect()
}

/// Reports problems inside one `[notify.NAME]` table.
pub(super) struct Problems<'c, 't> {
    pub(super) cx: &'c mut Cx<'t>,
    section: Section,
    /// The target's name, where missing keys are reported.
    name_span: Span,
    /// Keys taken for misspellings: not also reported as missing.
    meant: Vec<&'static str>,
}

impl Problems<'_, '_> {
    pub(super) fn at(&mut self, span: Span, key: Option<&str>, message: impl Into<String>) {
        self.cx
            .problem_in(span, Some(self.section.clone()), key, message);
    }

    /// Reports the keys left in `fields` that `known` does not list.
    fn unknown_keys(&mut self, fields: &mut Fields<'_>, known: &[&'static str]) {
        let mut left = Vec::new();
        for (key, span, value) in std::mem::take(&mut fields.entries) {
            if known.contains(&key.as_str()) {
                left.push((key, span, value));
            } else {
                self.meant.extend(keys::nearest(&key, known));
                self.at(span, None, keys::unknown_key(&key, "", known));
            }
        }
        fields.entries = left;
    }

    /// `key` is required: reported at the target's name unless a misspelt
    /// key was taken for it.
    pub(super) fn required<'a>(
        &mut self,
        fields: &mut Fields<'a>,
        key: &'static str,
    ) -> Option<Spanned<DeValue<'a>>> {
        let v = fields.take(key);
        if v.is_none() && !self.meant.contains(&key) {
            self.missing(key, "");
        }
        v
    }

    fn missing(&mut self, key: &str, more: &str) {
        let span = self.name_span.clone();
        let more = if more.is_empty() {
            String::new()
        } else {
            format!(" {more}")
        };
        self.at(span, None, format!("missing key {key:?}{more}"));
    }

    /// An `http://` or `https://` URL, kept secret (the message of a parse
    /// error describes the problem, never the input).
    pub(super) fn url(&mut self, key: &str, v: &Spanned<DeValue<'_>>) -> Option<Secret> {
        let s = self.string(key, v)?;
        match Url::parse(s) {
            Err(e) => {
                self.at(v.span(), Some(key), format!("invalid URL: {e}"));
                None
            }
            Ok(u) if !matches!(u.scheme(), "http" | "https") => {
                self.at(v.span(), Some(key), "must be an http:// or https:// URL");
                None
            }
            Ok(_) => Some(Secret::new(s)),
        }
    }

    fn webhook(&mut self, fields: &mut Fields<'_>) -> Option<WebhookTarget> {
        let url = self
            .required(fields, "url")
            .and_then(|v| self.url("url", &v));
        let format = match &fields.take("format") {
            None => Some(NotifyFormat::Json),
            Some(v) => self.string("format", v).and_then(|s| match s {
                "json" => Some(NotifyFormat::Json),
                "slack" => Some(NotifyFormat::Slack),
                "template" => Some(NotifyFormat::Template),
                other => {
                    let msg =
                        format!("invalid value {other:?} (expected one of: json, slack, template)");
                    self.at(v.span(), Some("format"), msg);
                    None
                }
            }),
        };
        let headers = match fields.take("headers") {
            None => Some(Vec::new()),
            Some(v) => self.headers(v),
        };
        let template = fields.take("template");
        let content_type = fields.take("content_type");
        let template = match (format, template) {
            (Some(NotifyFormat::Template), None) => {
                if !self.meant.contains(&"template") {
                    self.missing("template", "(format = \"template\" sends it as the body)");
                }
                None
            }
            (Some(NotifyFormat::Template), Some(t)) => {
                let content_type = match &content_type {
                    None => Some(DEFAULT_CONTENT_TYPE.to_string()),
                    Some(v) => self.content_type(v),
                };
                let escape = Escape::for_content_type(
                    content_type.as_deref().unwrap_or(DEFAULT_CONTENT_TYPE),
                );
                let source = self.template("template", &t, escape);
                Some(BodyTemplate {
                    source: source?,
                    content_type: content_type?,
                })
            }
            (_, t) => {
                for (key, v) in [("template", t), ("content_type", content_type)] {
                    if let Some(v) = v {
                        self.at(v.span(), Some(key), "only for format = \"template\"");
                    }
                }
                None
            }
        };
        Some(WebhookTarget {
            url: url?,
            format: format?,
            headers: headers?,
            template,
        })
    }

    fn content_type(&mut self, v: &Spanned<DeValue<'_>>) -> Option<String> {
        let s = self.string("content_type", v)?;
        if s.contains('/') && HeaderValue::from_str(s).is_ok() {
            Some(s.to_string())
        } else {
            let msg = format!(
                "invalid content type {s:?} (such as \"application/json\" or \"text/plain\")"
            );
            self.at(v.span(), Some("content_type"), msg);
            None
        }
    }

    /// A template, checked ([`template::check`]). A problem in it is
    /// reported at its own line and column in the file when the TOML string
    /// holds the template as written (no escapes), else at the string's
    /// start with the template's line.
    pub(super) fn template(
        &mut self,
        key: &str,
        v: &Spanned<DeValue<'_>>,
        escape: Escape,
    ) -> Option<String> {
        let source = self.string(key, v)?.to_string();
        let Err(e) = template::check(&source, escape) else {
            return Some(source);
        };
        let span = v.span();
        let text = self.cx.text;
        let raw = &text[span.clone()];
        let open = ["'''", "\"\"\"", "'", "\""]
            .into_iter()
            .find(|q| raw.starts_with(q))
            .map_or(0, str::len);
        let mut body_start = span.start + open;
        if open == 3 {
            // TOML drops a newline right after the opening quotes.
            if text[body_start..].starts_with('\n') {
                body_start += 1;
            } else if text[body_start..].starts_with("\r\n") {
                body_start += 2;
            }
        }
        let as_written = text.get(body_start..body_start + source.len()) == Some(source.as_str());
        match e.offset {
            Some(offset) if as_written => {
                let at = body_start + offset;
                self.at(at..at, Some(key), e.message);
            }
            _ => {
                let msg = format!("template line {}: {}", e.line, e.message);
                self.at(span, Some(key), msg);
            }
        }
        None
    }

    pub(super) fn string<'v>(&mut self, key: &str, v: &'v Spanned<DeValue<'_>>) -> Option<&'v str> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.as_ref()),
            other => {
                let msg = format!("expected a string, found {}", other.type_str());
                self.at(v.span(), Some(key), msg);
                None
            }
        }
    }

    pub(super) fn headers(&mut self, v: Spanned<DeValue<'_>>) -> Option<Vec<(String, Secret)>> {
        let span = v.span();
        let DeValue::Table(table) = v.into_inner() else {
            self.at(
                span,
                Some("headers"),
                "expected a table of header names to values, such as { Authorization = \"Bearer ...\" }",
            );
            return None;
        };
        let mut headers: Vec<(String, Secret)> = Vec::new();
        let mut ok = true;
        for (name, value) in table {
            let name_span = name.span();
            let name = name.into_inner().into_owned();
            let problem = if HeaderName::from_bytes(name.as_bytes()).is_err() {
                Some(format!("invalid header name {name:?}"))
            } else if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                Some(format!(
                    "{name:?} is set by the sender and cannot be overridden"
                ))
            } else if headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(&name)) {
                Some(format!(
                    "header {name:?} is given twice (names are case-insensitive)"
                ))
            } else {
                None
            };
            if let Some(msg) = problem {
                self.at(name_span, Some("headers"), msg);
                ok = false;
                continue;
            }
            let DeValue::String(s) = value.get_ref() else {
                let msg = format!(
                    "header {name:?}: expected a string, found {}",
                    value.get_ref().type_str()
                );
                self.at(value.span(), Some("headers"), msg);
                ok = false;
                continue;
            };
            if HeaderValue::from_str(s).is_err() {
                // Not shown: the value is likely a credential.
                let msg = format!(
                    "header {name:?}: invalid header value (control characters or non-ASCII; the value is not shown)"
                );
                self.at(value.span(), Some("headers"), msg);
                ok = false;
                continue;
            }
            headers.push((name, Secret::new(s.as_ref())));
        }
        ok.then_some(headers)
    }

    pub(super) fn timeout(&mut self, v: &Spanned<DeValue<'_>>) -> Option<Duration> {
        if let DeValue::Integer(_) = v.get_ref() {
            self.at(
                v.span(),
                Some("timeout"),
                "expected a duration string with a unit, such as \"10s\"",
            );
            return None;
        }
        let s = self.string("timeout", v)?;
        match humantime::parse_duration(s.trim()) {
            Err(e) => {
                let msg = format!("invalid duration {s:?}: {e} (examples: \"10s\", \"1m\")");
                self.at(v.span(), Some("timeout"), msg);
                None
            }
            Ok(d) if d.is_zero() || d > MAX_NOTIFY_TIMEOUT => {
                let msg = format!(
                    "must be more than 0s and at most {}",
                    humantime::format_duration(MAX_NOTIFY_TIMEOUT)
                );
                self.at(v.span(), Some("timeout"), msg);
                None
            }
            Ok(d) => Some(d),
        }
    }
}
