//! The acknowledge links' two routes, outside `/api/v1` and without a
//! bearer token (the signed link is the credential, `crate::ack_link`):
//!
//! - `GET /ack/{token}` shows the alert and one button. It changes
//!   nothing: chat and mail clients fetch links to preview them.
//! - `POST /ack/{token}` (the button) acknowledges the alert as the
//!   recipient the link was sent to, through `crate::ops::ack` (so the
//!   acknowledgement is told as usual), and records it in `audit_log`.
//!   Refused from another site's page (the API's Sec-Fetch-Site / Origin
//!   check), and the form must carry the token itself. A second POST
//!   changes nothing and tells nobody again.
//!
//! A tampered, expired or unknown link, one whose alert is unknown or
//! resolved, and any link while links are off all get the same 403 page,
//! which says nothing of why. Pages are rendered with minijinja, every
//! value HTML-escaped, and are neither cached, framed nor given a
//! `Referer` (the token is in their URL). No SQL here: alerts are read and
//! acknowledged through `src/db` and `crate::ops`.

use std::net::SocketAddr;

use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use minijinja::{context, AutoEscape, Environment};
use ops_worker_jobs::store::{Alert, AlertStatus};
use serde::Deserialize;

use super::AppState;
use crate::ack_link::Claim;
use crate::db::NewAuditEntry;
use crate::ops::OpError;

/// The alert and, while it is open, the button.
const PAGE: &str = r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ severity }}: {{ subject }}</title>
<style>body{font-family:sans-serif;max-width:40em;margin:2em auto;padding:0 1em}th{text-align:left;padding-right:1em}button{font-size:1.2em;padding:.5em 1.5em}</style>
</head><body>
<h1>{{ subject }}</h1>
<p>{{ message }}</p>
<table>
<tr><th>Severity</th><td>{{ severity }}</td></tr>
<tr><th>Opened</th><td>{{ opened_at }}</td></tr>
<tr><th>Status</th><td>{{ status }}</td></tr>
{% if acknowledged_by %}<tr><th>Acknowledged</th><td>by {{ acknowledged_by }} at {{ acknowledged_at }}</td></tr>
{% endif %}</table>
{% if just_acknowledged %}<p><strong>Acknowledged as {{ recipient }}.</strong> Escalation and reminders have stopped; everyone paged is told.</p>
{% elif status == "open" %}<form method="post">
<input type="hidden" name="token" value="{{ token }}">
<p><button type="submit">Acknowledge as {{ recipient }}</button></p>
</form>
{% else %}<p>This alert is already acknowledged.</p>
{% endif %}</body></html>
"#;

/// Every refusal: no detail.
const FORBIDDEN: &str = r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Link not valid</title></head>
<body><h1>This link cannot be used</h1>
<p>See the alert with <code>ops-worker alerts list</code> or the API instead.</p>
</body></html>
"#;

const UNAVAILABLE: &str = r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Try again</title></head>
<body><h1>The database cannot be reached</h1><p>Nothing was changed. Try again in a moment.</p></body></html>
"#;

/// What the button sends.
#[derive(Deserialize)]
pub struct AckForm {
    token: String,
}

/// `GET /ack/{token}`: the alert and a button; acknowledges nothing.
pub async fn page(State(s): State<AppState>, Path(token): Path<String>) -> Response {
    match checked(&s, &token).await {
        Ok((claim, alert)) => render(&alert, &claim, &token, false),
        Err(refusal) => refusal,
    }
}

/// `POST /ack/{token}`: acknowledges as the link's recipient, once.
pub async fn confirm(
    State(s): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    form: Result<Form<AckForm>, FormRejection>,
) -> Response {
    if super::auth::cross_site(&headers) {
        return forbidden("cross-site post");
    }
    match form {
        Ok(Form(f)) if f.token == token => {}
        _ => return forbidden("the form does not carry the link's token"),
    }
    let (claim, alert) = match checked(&s, &token).await {
        Ok(found) => found,
        Err(refusal) => return refusal,
    };
    let source = peer.map_or_else(|| "unknown".to_string(), |Extension(c)| c.0.to_string());
    let target = format!("alert:{}", alert.id);
    let now = s.clock.now();
    let (response, outcome, detail) = if alert.status == AlertStatus::Open {
        match crate::ops::ack(&s.db, alert.id, &claim.recipient, now).await {
            Ok(acked) => {
                tracing::info!(alert_id = acked.id, by = %claim.recipient, "alert acknowledged through its link");
                (render(&acked, &claim, &token, true), "ok", None)
            }
            // Someone was quicker: show the alert as it is now.
            Err(OpError::AlertState { .. }) => match checked(&s, &token).await {
                Ok((claim, now_alert)) => (
                    render(&now_alert, &claim, &token, false),
                    "conflict",
                    Some(already(&now_alert)),
                ),
                Err(refusal) => (refusal, "forbidden", None),
            },
            Err(OpError::Db(e)) => return unavailable(&e),
            Err(e) => {
                tracing::debug!(error = %e, "acknowledge link refused");
                (forbidden_page(), "forbidden", None)
            }
        }
    } else {
        (
            render(&alert, &claim, &token, false),
            "conflict",
            Some(already(&alert)),
        )
    };
    let mut entry = NewAuditEntry::new(now, &claim.recipient, "ack", &target, &source);
    entry.outcome = outcome.to_string();
    entry.detail = Some(match detail {
        Some(d) => format!("acknowledge link: {d}"),
        None => "acknowledge link".to_string(),
    });
    if let Err(e) = s.db.record_audit(&entry).await {
        tracing::warn!(error = %crate::error_chain(&e), target, "ack link: cannot record the audit entry");
    }
    response
}

fn already(alert: &Alert) -> String {
    format!(
        "already acknowledged by {}",
        alert.acknowledged_by.as_deref().unwrap_or("someone")
    )
}

/// The link's claim and its alert, if the link is valid now and the alert
/// is not resolved; else the response that refuses it.
async fn checked(s: &AppState, token: &str) -> Result<(Claim, Alert), Response> {
    let Some(links) = &s.ack_links else {
        return Err(forbidden("acknowledge links are off"));
    };
    let claim = links
        .verify(token, s.clock.now())
        .map_err(|e| forbidden(&e.to_string()))?;
    match s.db.get_alert(claim.alert_id).await {
        Ok(Some(alert)) if alert.status != AlertStatus::Resolved => Ok((claim, alert)),
        Ok(Some(_)) => Err(forbidden("the alert is resolved")),
        Ok(None) => Err(forbidden("no such alert")),
        Err(e) => Err(unavailable(&e)),
    }
}

fn render(alert: &Alert, claim: &Claim, token: &str, just_acknowledged: bool) -> Response {
    let when = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    let vars = context! {
        subject => alert.subject,
        severity => alert.severity.to_string(),
        message => alert.message,
        opened_at => when(alert.opened_at),
        status => alert.status.to_string(),
        acknowledged_by => alert.acknowledged_by,
        acknowledged_at => alert.acknowledged_at.map(when),
        recipient => claim.recipient,
        token => token,
        just_acknowledged => just_acknowledged,
    };
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    match env.render_str(PAGE, vars) {
        Ok(html) => html_response(StatusCode::OK, html),
        Err(e) => {
            tracing::error!(error = %e, "ack link: cannot render the page");
            html_response(StatusCode::INTERNAL_SERVER_ERROR, UNAVAILABLE.to_string())
        }
    }
}

/// The one refusal page; `why` goes to the debug log only.
fn forbidden(why: &str) -> Response {
    tracing::debug!(why, "acknowledge link refused");
    forbidden_page()
}

fn forbidden_page() -> Response {
    html_response(StatusCode::FORBIDDEN, FORBIDDEN.to_string())
}

fn unavailable(e: &crate::db::DbError) -> Response {
    tracing::warn!(error = %crate::error_chain(e), "ack link: database unavailable");
    html_response(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE.to_string())
}

fn html_response(status: StatusCode, html: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        ],
        html,
    )
        .into_response()
}
