//! [`Message`]: one outbox row read once, what every channel renders from
//! (a webhook body, an email, a PagerDuty event). Owns reading the stored
//! payload and the wording shared by channels (the one-line subject); not
//! how any channel sends.

use serde_json::{Map, Value};

use crate::db::Notification;

/// Why a notification cannot be rendered: retrying will not help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("the payload is not a JSON object: {0}")]
    NotAnObject(String),
    #[error("the payload has no \"text\" string for the slack format")]
    NoText,
    #[error("{0}")]
    Template(String),
}

/// A notification as channels see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// `opened`, `acknowledged`, `escalated`, `reminder`, `resolved`, `report`.
    pub event: String,
    pub alert_id: Option<i64>,
    /// Also the outbox row's `Idempotency-Key`: the same on every attempt.
    pub idempotency_key: String,
    pub fingerprint: Option<String>,
    /// `critical`, `warning` or `info` (alerts only).
    pub severity: Option<String>,
    /// The service or job name (alerts), the report's name (reports).
    pub subject: Option<String>,
    pub message: Option<String>,
    /// The one-line human summary the payload carries.
    pub text: Option<String>,
    pub acknowledged_by: Option<String>,
    /// The one-click acknowledge link for this message's recipient, when
    /// acknowledge links are on (see [`Message::set_ack_url`]).
    pub ack_url: Option<String>,
    /// The payload as stored (a `json` webhook sends it byte for byte), or
    /// as [`Message::set_ack_url`] changed it.
    pub raw: String,
    pub payload: Map<String, Value>,
}

impl Message {
    /// Reads a row's payload; a payload that is not a JSON object cannot be
    /// sent anywhere.
    pub fn from_row(row: &Notification) -> Result<Message, RenderError> {
        let value: Value = serde_json::from_str(&row.payload)
            .map_err(|e| RenderError::NotAnObject(e.to_string()))?;
        let Value::Object(payload) = value else {
            return Err(RenderError::NotAnObject(format!(
                "found {}",
                json_type(&value)
            )));
        };
        let text = |k: &str| payload.get(k).and_then(Value::as_str).map(str::to_string);
        Ok(Message {
            event: row.event.as_str().to_string(),
            alert_id: row.alert_id,
            idempotency_key: row.idempotency_key.clone(),
            fingerprint: text("fingerprint"),
            severity: text("severity"),
            subject: text("subject").or_else(|| text("report")),
            message: text("message"),
            text: text("text"),
            acknowledged_by: text("acknowledged_by"),
            ack_url: None,
            raw: row.payload.clone(),
            payload,
        })
    }

    /// Whether the message asks its reader to act on an open alert, so it
    /// carries an acknowledge link when links are on: `opened`, `reminder`
    /// and `escalated`.
    pub fn asks_to_acknowledge(&self) -> bool {
        self.alert_id.is_some()
            && matches!(self.event.as_str(), "opened" | "reminder" | "escalated")
    }

    /// Puts the acknowledge link `url` in the message as every channel
    /// sends it: `ack_url` (templates, email, PagerDuty's `links`), the
    /// payload's `ack_url`, and its `text`, which says `Acknowledge: URL`
    /// instead of the CLI command (`ack_command`), or at its end when it
    /// named none. The outbox row keeps the payload without the link:
    /// the link is made at send time, from the secret, and the stored
    /// payload is shown by the API.
    pub fn set_ack_url(&mut self, url: String) {
        let said = format!("Acknowledge: {url}");
        let text = match (
            &self.text,
            self.payload.get("ack_command").and_then(Value::as_str),
        ) {
            (Some(text), Some(cli)) if text.contains(&format!("Acknowledge: {cli}")) => {
                text.replace(&format!("Acknowledge: {cli}"), &said)
            }
            (Some(text), _) => format!("{} {said}", text.trim_end()),
            (None, _) => said,
        };
        self.payload
            .insert("text".into(), Value::from(text.clone()));
        self.payload
            .insert("ack_url".into(), Value::from(url.clone()));
        self.raw = Value::Object(self.payload.clone()).to_string();
        self.text = Some(text);
        self.ack_url = Some(url);
    }

    /// The summary, or what stands in for it.
    pub fn summary(&self) -> &str {
        self.text
            .as_deref()
            .or(self.message.as_deref())
            .unwrap_or(&self.event)
    }

    /// A one-line title naming severity, subject and event, e.g.
    /// `[critical] api opened: Service api is unhealthy: timed out after 5s`
    /// (an email's subject, a PagerDuty summary).
    pub fn title(&self) -> String {
        let label = match (&self.severity, self.event.as_str()) {
            (_, "report") => "report".to_string(),
            (Some(s), _) => s.clone(),
            (None, e) => e.to_string(),
        };
        let what = self.message.as_deref().unwrap_or(self.summary());
        let line = match (&self.subject, self.event.as_str()) {
            (Some(s), "report") => format!("[{label}] {s}: {what}"),
            (Some(s), "acknowledged") => format!(
                "[{label}] {s} acknowledged by {}: {what}",
                self.acknowledged_by.as_deref().unwrap_or("someone")
            ),
            (Some(s), event) => format!("[{label}] {s} {event}: {what}"),
            (None, event) => format!("[{label}] {event}: {what}"),
        };
        ops_worker_jobs::first_line_clipped(&line, 200)
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{NotificationEvent, NotificationStatus};

    fn message(event: NotificationEvent, payload: Value) -> Message {
        let at = chrono::DateTime::UNIX_EPOCH;
        Message::from_row(&Notification {
            id: 1,
            idempotency_key: "k".into(),
            target: "alice".into(),
            alert_id: Some(42),
            event,
            payload: payload.to_string(),
            status: NotificationStatus::Pending,
            attempts: 0,
            next_attempt_at: at,
            created_at: at,
            delivered_at: None,
            last_error: None,
        })
        .unwrap()
    }

    #[test]
    fn the_link_replaces_the_cli_command_or_ends_the_text() {
        let url = "https://ops.example.com/ack/T0K";
        let mut m = message(
            NotificationEvent::Escalated,
            serde_json::json!({
                "text": "[critical] Escalation level 1 of 1: api is down. Paging alice. Acknowledge: ops-worker alerts ack 42",
                "ack_command": "ops-worker alerts ack 42",
            }),
        );
        assert!(m.asks_to_acknowledge());
        m.set_ack_url(url.into());
        let want = format!(
            "[critical] Escalation level 1 of 1: api is down. Paging alice. Acknowledge: {url}"
        );
        assert_eq!(m.text.as_deref(), Some(want.as_str()));
        let raw: Value = serde_json::from_str(&m.raw).unwrap();
        assert_eq!(
            (&raw["text"], &raw["ack_url"]),
            (&Value::from(want), &Value::from(url))
        );

        let mut m = message(
            NotificationEvent::Opened,
            serde_json::json!({"text": "[critical] api is down"}),
        );
        m.set_ack_url(url.into());
        assert_eq!(
            m.text.as_deref(),
            Some("[critical] api is down Acknowledge: https://ops.example.com/ack/T0K")
        );
        assert_eq!(m.ack_url.as_deref(), Some(url));

        for event in [NotificationEvent::Acknowledged, NotificationEvent::Resolved] {
            assert!(!message(event, serde_json::json!({})).asks_to_acknowledge());
        }
    }
}
