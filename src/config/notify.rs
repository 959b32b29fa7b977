//! `[notify.NAME]` tables of schedules.toml: where notifications are sent.
//!
//! This file owns turning those tables into typed [`NotifyTarget`]s and the
//! problems they can have; the sender (`src/notify`) owns delivering to them.
//!
//! ```toml
//! [notify.ops-webhook]
//! type = "webhook"                 # required; the only type so far
//! url = "${OPS_WEBHOOK_URL}"       # required; http:// or https://
//! format = "slack"                 # "json" (default) or "slack"
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

/// A target's `timeout` when it sets none.
pub const DEFAULT_NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest `timeout` a target may set: a delivery in flight is waited for
/// at shutdown, so this bounds how long shutdown can take.
const MAX_NOTIFY_TIMEOUT: Duration = Duration::from_secs(300);
/// The keys a `[notify.NAME]` table may have.
const KEYS: &[&str] = &["type", "url", "format", "headers", "timeout"];
/// Target types, in the order docs/notifications.md documents them.
const TYPES: &[&str] = &["webhook"];
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

/// How a notification is rendered for a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyFormat {
    /// The event's JSON payload as it is (the default).
    Json,
    /// `{"text": ...}`, what a Slack incoming webhook accepts.
    Slack,
}

/// One `[notify.NAME]` table: a webhook notifications are POSTed to.
///
/// `Debug` redacts the URL and header values (they are [`Secret`]s).
#[derive(Clone)]
pub struct NotifyTarget {
    pub name: String,
    /// An `http://` or `https://` URL.
    pub url: Secret,
    pub format: NotifyFormat,
    /// Extra request headers, names as written (validated), values secret.
    pub headers: Vec<(String, Secret)>,
    /// For the whole request: connect, send, response headers.
    pub timeout: Duration,
}

impl fmt::Debug for NotifyTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<_> = self.headers.iter().map(|(k, _)| (k, "***")).collect();
        f.debug_struct("NotifyTarget")
            .field("name", &self.name)
            .field("url", &"***")
            .field("format", &self.format)
            .field("headers", &headers)
            .field("timeout", &self.timeout)
            .finish()
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
        };
        let (mut ty, mut url, mut format, mut headers, mut timeout) =
            (None, None, None, None, None);
        // Keys taken for misspellings: not also reported as missing.
        let mut meant = Vec::new();
        for (key, value) in table {
            match key.get_ref().as_ref() {
                "type" => ty = Some(value),
                "url" => url = Some(value),
                "format" => format = Some(value),
                "headers" => headers = Some(value),
                "timeout" => timeout = Some(value),
                other => {
                    meant.extend(keys::nearest(other, KEYS));
                    p.at(key.span(), None, keys::unknown_key(other, "", KEYS));
                }
            }
        }

        match &ty {
            None if meant.contains(&"type") => {}
            None => p.at(
                name_span.clone(),
                None,
                format!("missing key \"type\" (known types: {})", TYPES.join(", ")),
            ),
            Some(v) => {
                if let Some(s) = p.string("type", v) {
                    if !TYPES.contains(&s) {
                        let msg = format!("unknown type {s:?} (known types: {})", TYPES.join(", "));
                        p.at(v.span(), Some("type"), msg);
                    }
                }
            }
        }
        let url = match &url {
            None => {
                if !meant.contains(&"url") {
                    p.at(name_span, None, "missing key \"url\"");
                }
                None
            }
            Some(v) => p.string("url", v).and_then(|s| match Url::parse(s) {
                // The message of a parse error describes the problem, never
                // the input; the URL itself is not shown.
                Err(e) => {
                    p.at(v.span(), Some("url"), format!("invalid URL: {e}"));
                    None
                }
                Ok(u) if !matches!(u.scheme(), "http" | "https") => {
                    p.at(v.span(), Some("url"), "must be an http:// or https:// URL");
                    None
                }
                Ok(_) => Some(Secret::new(s)),
            }),
        };
        let format = match &format {
            None => Some(NotifyFormat::Json),
            Some(v) => p.string("format", v).and_then(|s| match s {
                "json" => Some(NotifyFormat::Json),
                "slack" => Some(NotifyFormat::Slack),
                other => {
                    let msg = format!("invalid value {other:?} (expected one of: json, slack)");
                    p.at(v.span(), Some("format"), msg);
                    None
                }
            }),
        };
        let headers = match headers {
            None => Some(Vec::new()),
            Some(v) => p.headers(v),
        };
        let timeout = match &timeout {
            None => Some(DEFAULT_NOTIFY_TIMEOUT),
            Some(v) => p.timeout(v),
        };

        if self.problems.len() > before {
            return None;
        }
        Some(NotifyTarget {
            name: name.to_string(),
            url: url?,
            format: format?,
            headers: headers?,
            timeout: timeout?,
        })
    }
}

/// Reports problems inside one `[notify.NAME]` table.
struct Problems<'c, 't> {
    cx: &'c mut Cx<'t>,
    section: Section,
}

impl Problems<'_, '_> {
    fn at(&mut self, span: Span, key: Option<&str>, message: impl Into<String>) {
        self.cx
            .problem_in(span, Some(self.section.clone()), key, message);
    }

    fn string<'v>(&mut self, key: &str, v: &'v Spanned<DeValue<'_>>) -> Option<&'v str> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.as_ref()),
            other => {
                let msg = format!("expected a string, found {}", other.type_str());
                self.at(v.span(), Some(key), msg);
                None
            }
        }
    }

    fn headers(&mut self, v: Spanned<DeValue<'_>>) -> Option<Vec<(String, Secret)>> {
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

    fn timeout(&mut self, v: &Spanned<DeValue<'_>>) -> Option<Duration> {
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
