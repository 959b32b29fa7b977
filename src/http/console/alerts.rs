//! The alerts feed (`/alerts?status=`): open, acknowledged or resolved
//! alerts with who was told what and when, and the acknowledge and resolve
//! buttons (`POST /alerts/{id}/ack`, `/alerts/{id}/resolve`), which call
//! `crate::ops` as the API's writes do and are audited the same way.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::Extension;
use ops_worker_jobs::store::AlertStatus;
use serde::Serialize;

use super::overview::AlertView;
use super::session::{Fields, Session};
use super::view::{render, when, when_opt, Fragment, PageResult, When};
use crate::http::auth::Caller;
use crate::http::params::{id, Params};
use crate::http::writes::audited;
use crate::http::{ApiError, AppState};

#[derive(Serialize)]
struct Delivery {
    event: String,
    target: String,
    status: String,
    attempts: i32,
    created: When,
    delivered: Option<When>,
}

#[derive(Serialize)]
struct Item {
    alert: AlertView,
    deliveries: Vec<Delivery>,
}

#[derive(Serialize)]
struct Page {
    session: Session,
    status: String,
    items: Vec<Item>,
}

/// The feed's tabs: `active` is open and acknowledged.
const TABS: &str = "active, open, acknowledged, resolved";

/// `GET /alerts?status=active|open|acknowledged|resolved`.
pub async fn page(
    State(s): State<AppState>,
    Extension(session): Extension<Session>,
    fragment: Fragment,
    p: Params,
) -> PageResult {
    p.only(&["status"])?;
    let tab = p.str("status").unwrap_or("active").to_string();
    let status = match tab.as_str() {
        "active" => None,
        other => Some(
            other
                .parse::<AlertStatus>()
                .map_err(|_| ApiError::bad_param("status", format!("expected one of {TABS}")))?,
        ),
    };
    let now = s.clock.now();
    let quiet = crate::ops::quiet(&s.db, Some(&s.config()), now).await?;
    let mut items = Vec::new();
    for a in s.db.alerts_by_status(status, None, 100).await? {
        let deliveries =
            s.db.alert_deliveries(a.id)
                .await?
                .into_iter()
                .map(|d| Delivery {
                    event: d.event,
                    target: d.target,
                    status: d.status,
                    attempts: d.attempts,
                    created: when(d.created_at, now),
                    delivered: when_opt(d.delivered_at, now),
                })
                .collect();
        items.push(Item {
            alert: AlertView::new(&a, now, &quiet),
            deliveries,
        });
    }
    render(
        "alerts.html",
        fragment,
        StatusCode::OK,
        Page {
            session,
            status: tab,
            items,
        },
    )
}

/// `POST /alerts/{id}/ack`: acknowledged by the session's token name.
pub async fn ack(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(alert_id): Path<String>,
) -> PageResult {
    let target = format!("alert:{alert_id}");
    audited(&s, &caller, "ack", &target, async {
        let alert_id = id("id", &alert_id)?;
        crate::ops::ack(&s.db, alert_id, &caller.name, s.clock.now()).await?;
        Ok(())
    })
    .await?;
    Ok(Redirect::to("/alerts").into_response())
}

/// `POST /alerts/{id}/resolve` with an optional `note`.
pub async fn resolve(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(fields): Extension<Fields>,
    Path(alert_id): Path<String>,
) -> PageResult {
    let target = format!("alert:{alert_id}");
    audited(&s, &caller, "resolve", &target, async {
        let alert_id = id("id", &alert_id)?;
        let note = fields.get("note").map_or_else(
            || format!("resolved in the console by {}", caller.name),
            str::to_string,
        );
        crate::ops::resolve(&s.db, alert_id, &note, s.clock.now()).await?;
        Ok(())
    })
    .await?;
    Ok(Redirect::to("/alerts?status=resolved").into_response())
}
