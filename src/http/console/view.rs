//! Rendering for the console: the one template environment (the templates
//! of `templates/`, compiled into the binary, HTML auto-escaped), the
//! headers every page gets, error pages, and times as pages show them.
//!
//! A page asked for with `X-Console-Fragment: 1` (the script's polling)
//! gets only its `live` block, which the script swaps in place.

use std::sync::LazyLock;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use minijinja::Environment;
use serde::Serialize;

use crate::http::ApiError;

/// Every template, by the name pages extend and import them by.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("macros.html", include_str!("templates/macros.html")),
    ("login.html", include_str!("templates/login.html")),
    ("error.html", include_str!("templates/error.html")),
    ("overview.html", include_str!("templates/overview.html")),
    ("alerts.html", include_str!("templates/alerts.html")),
    ("job.html", include_str!("templates/job.html")),
    ("run.html", include_str!("templates/run.html")),
    ("oncall.html", include_str!("templates/oncall.html")),
    ("services.html", include_str!("templates/services.html")),
    ("workers.html", include_str!("templates/workers.html")),
    ("reports.html", include_str!("templates/reports.html")),
    ("report.html", include_str!("templates/report.html")),
    ("silences.html", include_str!("templates/silences.html")),
];

/// Built once; minijinja escapes every value in a template whose name ends
/// in `.html` unless it is marked safe, and nothing here marks one safe.
static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in TEMPLATES {
        // The templates are part of the binary; the unit test below parses them.
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("console template {name}: {e}"));
    }
    env
});

/// Headers of every console page: no caching (pages show live state), and a
/// policy that runs only the console's own script, even if something
/// unescaped slipped into a page.
fn page_headers(resp: &mut Response, fragment: bool) {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::VARY, HeaderValue::from_static("x-console-fragment"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if fragment {
        h.insert("x-console-fragment", HeaderValue::from_static("1"));
    }
}

/// Whether the request asks for the `live` block only.
#[derive(Debug, Clone, Copy)]
pub struct Fragment(pub bool);

impl<S: Send + Sync> FromRequestParts<S> for Fragment {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Fragment(
            parts
                .headers
                .get("x-console-fragment")
                .is_some_and(|v| v == "1"),
        ))
    }
}

/// Renders `name` with `ctx` (the whole page, or its `live` block).
pub fn render(
    name: &str,
    fragment: Fragment,
    status: StatusCode,
    ctx: impl Serialize,
) -> Result<Response, ConsoleError> {
    let html = render_html(name, fragment.0, &ctx).map_err(|e| {
        tracing::error!(template = name, error = %e, "console: cannot render a page");
        ConsoleError(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "render",
            "this page cannot be shown (the server's log says why)",
        ))
    })?;
    let mut resp = (status, Html(html)).into_response();
    page_headers(&mut resp, fragment.0);
    Ok(resp)
}

fn render_html(
    name: &str,
    fragment: bool,
    ctx: &impl Serialize,
) -> Result<String, minijinja::Error> {
    let template = ENV.get_template(name)?;
    // `base.html` leaves out all but the `live` block when `fragment` is
    // set, so a fragment costs one pass over the page's data, as the page
    // does (evaluating the page and then rendering its block took two).
    template.render(minijinja::context! { fragment, ..minijinja::Value::from_serialize(ctx) })
}

/// An error shown as a page with its status (the API's errors, in HTML).
#[derive(Debug)]
pub struct ConsoleError(pub ApiError);

impl From<ApiError> for ConsoleError {
    fn from(e: ApiError) -> Self {
        ConsoleError(e)
    }
}

impl From<crate::db::DbError> for ConsoleError {
    fn from(e: crate::db::DbError) -> Self {
        ConsoleError(e.into())
    }
}

impl From<ops_worker_jobs::store::StoreError> for ConsoleError {
    fn from(e: ops_worker_jobs::store::StoreError) -> Self {
        ConsoleError(e.into())
    }
}

impl From<crate::ops::OpError> for ConsoleError {
    fn from(e: crate::ops::OpError) -> Self {
        ConsoleError(e.into())
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let status = self.0.status;
        let ctx = minijinja::context! {
            status => status.as_u16(),
            reason => status.canonical_reason().unwrap_or(""),
            message => self.0.message,
        };
        match render_html("error.html", false, &ctx) {
            Ok(html) => {
                let mut resp = (status, Html(html)).into_response();
                page_headers(&mut resp, false);
                resp
            }
            Err(e) => {
                tracing::error!(error = %e, "console: cannot render the error page");
                (status, status.to_string()).into_response()
            }
        }
    }
}

pub type PageResult = Result<Response, ConsoleError>;

/// A time as pages show it: `<time datetime=iso title=utc>rel</time>`;
/// the script replaces `rel` with the browser's local time and the
/// distance from now.
#[derive(Debug, Clone, Serialize)]
pub struct When {
    pub iso: String,
    pub utc: String,
    pub rel: String,
}

pub fn when(t: DateTime<Utc>, now: DateTime<Utc>) -> When {
    When {
        iso: t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        utc: t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        rel: relative(t - now),
    }
}

pub fn when_opt(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<When> {
    t.map(|t| when(t, now))
}

/// `in 5 min`, `3 h ago`, `now`.
pub fn relative(d: chrono::TimeDelta) -> String {
    let secs = d.num_seconds();
    let a = secs.unsigned_abs();
    let amount = match a {
        0..=4 => return "now".to_string(),
        5..=119 => format!("{a} s"),
        120..=7199 => format!("{} min", a / 60),
        7200..=172_799 => format!("{} h", a / 3600),
        _ => format!("{} d", a / 86_400),
    };
    if secs > 0 {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

/// How long a run took: `850 ms`, `12.3 s`, `4 min 10 s`.
pub fn duration_ms(ms: i64) -> String {
    match ms {
        ..1000 => format!("{ms} ms"),
        1000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} min {} s", ms / 60_000, ms % 60_000 / 1000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse() {
        for (name, _) in TEMPLATES {
            ENV.get_template(name).unwrap();
        }
    }

    #[test]
    fn relative_times() {
        let d = chrono::TimeDelta::seconds;
        assert_eq!(relative(d(0)), "now");
        assert_eq!(relative(d(-30)), "30 s ago");
        assert_eq!(relative(d(300)), "in 5 min");
        assert_eq!(relative(d(-3 * 3600)), "3 h ago");
        assert_eq!(relative(d(-3 * 86_400)), "3 d ago");
    }

    #[test]
    fn durations() {
        assert_eq!(duration_ms(850), "850 ms");
        assert_eq!(duration_ms(12_345), "12.3 s");
        assert_eq!(duration_ms(250_000), "4 min 10 s");
    }

    #[test]
    fn values_are_escaped() {
        let html = render_html(
            "error.html",
            false,
            &minijinja::context! { status => 400, reason => "x", message => "<script>alert(1)</script>" },
        )
        .unwrap();
        assert!(html.contains("&lt;script&gt;alert(1)"), "{html}");
        assert!(!html.contains("<script>alert"), "{html}");
    }

    /// What the script swaps in is exactly what the page's `<main>` holds:
    /// the `live` block, with the imports and values it uses, and nothing
    /// of the page around it.
    #[test]
    fn a_fragment_is_the_pages_live_block() {
        use minijinja::context;
        let now = DateTime::parse_from_rfc3339("2026-12-05T12:00:00Z")
            .unwrap()
            .to_utc();
        let t = when(now - chrono::TimeDelta::seconds(90), now);
        let ctx = context! {
            session => context! { name => "alice", role => "operator", may_write => true, csrf => "c5rf", signed_in => true },
            alerts => vec![context! { id => 7, status => "open", severity => "critical", source => "health",
                subject => "web", message => "down <b>", opened => t.clone(), escalation_level => 1 }],
            jobs => vec![context! { name => "tick", url => "/jobs/tick", kind => "command", schedule => "every 1s",
                enabled => true, last_status => "failed", last_run => t.clone(), next_fire => t.clone(), paused => false }],
            services => Vec::<minijinja::Value>::new(),
            workers => Vec::<minijinja::Value>::new(),
        };
        let page = render_html("overview.html", false, &ctx).unwrap();
        let fragment = render_html("overview.html", true, &ctx).unwrap();
        let open = "<main id=\"live\" data-live>\n";
        let inner = page
            .split_once(open)
            .and_then(|(_, rest)| rest.rsplit_once("\n</main>"))
            .map(|(inner, _)| inner)
            .unwrap_or_else(|| panic!("no live block in {page}"));
        assert_eq!(fragment, inner);
        for shown in ["tick", "#7", "down &lt;b&gt;", "90 s ago", "s-failed"] {
            assert!(fragment.contains(shown), "{shown}: {fragment}");
        }
        assert!(page.starts_with("<!doctype html>") && page.ends_with("</html>"));
        assert!(!fragment.contains("<html") && !fragment.contains("c5rf"));
    }
}
