//! The reports pages: `/reports`, the stored reports (newest period first),
//! and `/reports/{name}/{period}`, one report rendered from its Markdown.
//!
//! The Markdown is rendered with pulldown-cmark; raw HTML in it (block or
//! inline) becomes text, and a link or image whose address is not http(s),
//! mailto or relative loses it, so a report cannot carry markup or script
//! into the page. That rendered HTML is the one value a console template
//! shows unescaped (`render_markdown`'s output, nothing else).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Extension;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use pulldown_cmark::{html, CowStr, Event, Options, Parser, Tag};
use serde::Serialize;

use super::session::Session;
use super::view::{render, when, Fragment, PageResult, When};
use crate::http::params::Params;
use crate::http::{ApiError, AppState};

/// Reports listed, at most.
const LISTED: i64 = 200;

/// `markdown` as HTML, raw HTML shown as text and unsafe link targets dropped.
pub fn render_markdown(markdown: &str) -> String {
    let safe = |url: CowStr<'static>| -> CowStr<'static> {
        let lower = url.trim().to_ascii_lowercase();
        let scheme = lower.split_once(':').map(|(s, _)| s);
        let relative = scheme.is_none() || lower.starts_with('/') || lower.starts_with('#');
        if relative || matches!(scheme, Some("http" | "https" | "mailto")) {
            url
        } else {
            CowStr::Borrowed("")
        }
    };
    let events = Parser::new_ext(
        markdown,
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH,
    )
    .map(|e| match e {
        Event::Html(s) | Event::InlineHtml(s) => Event::Text(s),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: safe(dest_url.into_static()),
            title,
            id,
        }),
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Image {
            link_type,
            dest_url: safe(dest_url.into_static()),
            title,
            id,
        }),
        e => e,
    });
    let mut out = String::new();
    html::push_html(&mut out, events);
    out
}

fn report_url(name: &str, period: &str) -> String {
    format!(
        "/reports/{}/{}",
        utf8_percent_encode(name, NON_ALPHANUMERIC),
        utf8_percent_encode(period, NON_ALPHANUMERIC)
    )
}

#[derive(Serialize)]
struct ReportRow {
    name: String,
    period: String,
    url: String,
    /// `/reports?name=NAME`, encoded.
    name_url: String,
    start: When,
    end: When,
    generated: When,
}

#[derive(Serialize)]
struct ListPage {
    session: Session,
    name: Option<String>,
    reports: Vec<ReportRow>,
}

/// `GET /reports?name=`.
pub async fn list(
    State(s): State<AppState>,
    Extension(session): Extension<Session>,
    fragment: Fragment,
    p: Params,
) -> PageResult {
    p.only(&["name"])?;
    let name = p.str("name").map(str::to_string);
    let now = s.clock.now();
    let reports =
        s.db.report_list(name.as_deref(), LISTED)
            .await?
            .into_iter()
            .map(|r| ReportRow {
                url: report_url(&r.name, &r.period),
                name_url: format!(
                    "/reports?name={}",
                    utf8_percent_encode(&r.name, NON_ALPHANUMERIC)
                ),
                start: when(r.period_start, now),
                end: when(r.period_end, now),
                generated: when(r.generated_at, now),
                name: r.name,
                period: r.period,
            })
            .collect();
    render(
        "reports.html",
        fragment,
        StatusCode::OK,
        ListPage {
            session,
            name,
            reports,
        },
    )
}

#[derive(Serialize)]
struct ReportPage {
    session: Session,
    name: String,
    period: String,
    generated: When,
    body: minijinja::Value,
}

/// `GET /reports/{name}/{period}`.
pub async fn one(
    State(s): State<AppState>,
    Extension(session): Extension<Session>,
    fragment: Fragment,
    Path((name, period)): Path<(String, String)>,
    p: Params,
) -> PageResult {
    p.only(&[])?;
    let r = s
        .db
        .report(Some(&name), Some(&period))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no report {name:?} for period {period:?}")))?;
    let now = s.clock.now();
    render(
        "report.html",
        fragment,
        StatusCode::OK,
        ReportPage {
            session,
            generated: when(r.generated_at, now),
            body: minijinja::Value::from_safe_string(render_markdown(&r.markdown)),
            name: r.name,
            period: r.period,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_html_is_text_and_unsafe_links_are_dropped() {
        let html = render_markdown(
            "# Daily\n\n<script>alert(1)</script>\n\nok <b>bold</b> [x](javascript:alert(2)) [y](https://example.com/a) [z](/jobs/a)\n\n| a |\n|---|\n| 1 |\n",
        );
        assert!(html.contains("<h1>Daily</h1>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(html.contains("&lt;b&gt;bold&lt;/b&gt;"), "{html}");
        assert!(!html.contains("<script") && !html.contains("<b>"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
        assert!(
            html.contains(r#"<a href="https://example.com/a">y</a>"#),
            "{html}"
        );
        assert!(html.contains(r#"<a href="/jobs/a">z</a>"#), "{html}");
        assert!(html.contains("<table>"), "{html}");
    }
}
