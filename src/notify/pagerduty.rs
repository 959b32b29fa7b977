//! `type = "pagerduty"`: a notification as a PagerDuty Events API v2 event.
//! An alert is one PagerDuty incident: every event about it carries the
//! same `dedup_key`; `opened` triggers it, `acknowledged` acknowledges it,
//! `resolved` resolves it. Owns that mapping and the event's JSON; the POST
//! is `webhook::post`'s, so its reasons are scrubbed the same way (and of
//! the routing key).

use std::time::Duration;

use ops_worker_jobs::reqwest;
use serde_json::{json, Value};

use super::webhook::{self, Post};
use super::{Failure, Message};
use crate::config::PagerDutyTarget;

/// What an event asks PagerDuty to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Trigger,
    Acknowledge,
    Resolve,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Trigger => "trigger",
            Action::Acknowledge => "acknowledge",
            Action::Resolve => "resolve",
        }
    }

    /// The action for an outbox event; `None` for a report (not an alert).
    pub fn of(event: &str) -> Option<Action> {
        match event {
            "opened" | "escalated" | "reminder" => Some(Action::Trigger),
            "acknowledged" => Some(Action::Acknowledge),
            "resolved" => Some(Action::Resolve),
            _ => None,
        }
    }
}

/// True for events that would trigger an alert PagerDuty may already have
/// (escalation steps and reminders): the sender sends them only when no
/// earlier trigger for the alert went to the same target.
pub fn retriggers(m: &Message) -> bool {
    matches!(m.event.as_str(), "escalated" | "reminder")
}

/// The incident's key: one per alert, the same for every event about it.
pub fn dedup_key(m: &Message) -> Option<String> {
    let id = m.alert_id?;
    Some(format!(
        "ops-worker:{}:{id}",
        m.fingerprint.as_deref().unwrap_or("alert")
    ))
}

/// PagerDuty's severities are critical, error, warning and info.
fn severity(s: Option<&str>) -> &'static str {
    match s {
        Some("critical") => "critical",
        Some("warning") => "warning",
        Some("info") => "info",
        _ => "error",
    }
}

/// The Events API v2 body for `m`; Err when `m` is not about an alert.
pub fn event(routing_key: &str, m: &Message) -> Result<Value, String> {
    let (Some(action), Some(dedup_key)) = (Action::of(&m.event), dedup_key(m)) else {
        return Err(format!(
            "a {} notification is not about an alert; PagerDuty targets take alerts only",
            m.event
        ));
    };
    let mut body = json!({
        "routing_key": routing_key,
        "event_action": action.as_str(),
        "dedup_key": dedup_key,
    });
    if action == Action::Trigger {
        let summary: String = m.title().chars().take(1024).collect();
        body["payload"] = json!({
            "summary": summary,
            "source": m.subject.as_deref().unwrap_or("ops-worker"),
            "severity": severity(m.severity.as_deref()),
            "timestamp": m.payload.get("opened_at"),
            "component": m.subject,
            "group": m.payload.get("source"),
            "class": m.fingerprint,
            "custom_details": m.payload,
        });
        body["client"] = json!("ops-worker");
        if let Some(url) = &m.ack_url {
            body["links"] = json!([{ "href": url, "text": "Acknowledge in ops-worker" }]);
        }
    }
    Ok(body)
}

/// Sends `m` as its event. PagerDuty answers 202 when it took it.
pub async fn send(
    http: &reqwest::Client,
    pd: &PagerDutyTarget,
    timeout: Duration,
    m: &Message,
) -> Result<(), Failure> {
    let body = event(pd.routing_key.expose(), m).map_err(Failure::permanent)?;
    webhook::post(
        http,
        Post {
            url: &pd.url,
            headers: &[],
            content_type: "application/json",
            idempotency_key: &m.idempotency_key,
            body: body.to_string().into_bytes(),
            timeout,
            body_secrets: &[&pd.routing_key],
        },
    )
    .await
}
