//! Body templates (minijinja): checking one at load and rendering a
//! notification with it. Used by `format = "template"` webhooks and by the
//! email channel's text and HTML parts.
//!
//! A template sees a fixed set of variables ([`VARIABLES`]): every field a
//! payload can have (absent ones are `none`), `ack_url` and `payload` (the
//! whole object). Undefined behaviour is strict, so a misspelt variable is
//! an error at load ([`check`]), never a silently empty value. What is
//! rendered is escaped for the body's content type: JSON values are
//! written as JSON (`{{ text }}` becomes `"..."`, quotes included), HTML is
//! HTML-escaped, anything else is left as it is.
//!
//! Knows nothing of targets, the outbox or HTTP.

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde_json::{Map, Value};

/// The names a template may use, in the order docs/notifications.md lists them.
pub const VARIABLES: &[&str] = &[
    "event",
    "alert_id",
    "fingerprint",
    "source",
    "subject",
    "severity",
    "status",
    "message",
    "text",
    "opened_at",
    "acknowledged_at",
    "acknowledged_by",
    "resolved_at",
    "resolution_note",
    "escalation_level",
    "level",
    "levels",
    "cycle",
    "cycles",
    "open_for_secs",
    "paging",
    "ack_command",
    "report",
    "period",
    "period_start",
    "period_end",
    "timezone",
    "ack_url",
    "payload",
];

/// How rendered values are escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// Values are written as JSON (strings quoted and escaped).
    Json,
    Html,
    None,
}

impl Escape {
    /// The escaping a body of `content_type` needs: JSON for `application/json`
    /// and `+json` types, HTML for `text/html`, none otherwise.
    pub fn for_content_type(content_type: &str) -> Escape {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if essence == "application/json" || essence.ends_with("+json") {
            Escape::Json
        } else if essence == "text/html" {
            Escape::Html
        } else {
            Escape::None
        }
    }
}

/// What is wrong with a template: `offset` is a byte offset into its source
/// when known, `line` its 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub line: usize,
    pub offset: Option<usize>,
    pub message: String,
}

fn environment(escape: Escape) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    env.set_debug(true);
    let mode = match escape {
        Escape::Json => AutoEscape::Json,
        Escape::Html => AutoEscape::Html,
        Escape::None => AutoEscape::None,
    };
    env.set_auto_escape_callback(move |_| mode);
    env
}

fn error(e: &minijinja::Error) -> TemplateError {
    let message = match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    };
    TemplateError {
        line: e.line().unwrap_or(1),
        offset: e.range().map(|r| r.start),
        message,
    }
}

/// Checks `source` once, at load: its syntax, that it uses only
/// [`VARIABLES`], and that it renders for a payload with every field set.
pub fn check(source: &str, escape: Escape) -> Result<(), TemplateError> {
    let env = environment(escape);
    let template = env.template_from_str(source).map_err(|e| error(&e))?;
    let mut unknown: Vec<(usize, String)> = template
        .undeclared_variables(false)
        .into_iter()
        .filter(|v| !VARIABLES.contains(&v.as_str()))
        .map(|v| (first_use(source, &v), v))
        .collect();
    unknown.sort();
    if let Some((offset, name)) = unknown.into_iter().next() {
        return Err(TemplateError {
            line: source[..offset].matches('\n').count() + 1,
            offset: Some(offset),
            message: format!(
                "unknown variable {name:?} (known: {})",
                VARIABLES.join(", ")
            ),
        });
    }
    template.render(sample()).map(drop).map_err(|e| error(&e))
}

/// Where `name` is first used as a whole word, for pointing at it.
fn first_use(source: &str, name: &str) -> usize {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    source
        .match_indices(name)
        .find(|(i, _)| {
            let before = source[..*i].chars().next_back();
            let after = source[i + name.len()..].chars().next();
            !before.is_some_and(word) && !after.is_some_and(word)
        })
        .map_or(0, |(i, _)| i)
}

/// A payload with every field set, each of the type it has in a real
/// payload, for [`check`].
fn sample() -> Value {
    let mut payload = Map::new();
    for name in VARIABLES {
        let value = match *name {
            "payload" | "ack_url" => continue,
            "alert_id" => Value::from(42),
            "escalation_level" | "level" | "cycle" | "cycles" => Value::from(1),
            "levels" => Value::from(2),
            "open_for_secs" => Value::from(300),
            "paging" => serde_json::json!(["alice"]),
            other => Value::String(format!("<{other}>")),
        };
        payload.insert((*name).to_string(), value);
    }
    context(&payload, Some("https://ops.example.com/ack"))
}

/// The variables a template sees for `payload`.
pub fn context(payload: &Map<String, Value>, ack_url: Option<&str>) -> Value {
    let mut vars = Map::new();
    for name in VARIABLES {
        vars.insert((*name).to_string(), Value::Null);
    }
    for (k, v) in payload {
        if vars.contains_key(k) {
            vars.insert(k.clone(), v.clone());
        }
    }
    vars.insert("ack_url".into(), ack_url.map_or(Value::Null, Value::from));
    vars.insert("payload".into(), Value::Object(payload.clone()));
    Value::Object(vars)
}

/// Renders a template [`check`] accepted with `vars` (from [`context`]).
pub fn render(source: &str, escape: Escape, vars: &Value) -> Result<String, String> {
    environment(escape).render_str(source, vars).map_err(|e| {
        let e = error(&e);
        format!("template line {}: {}", e.line, e.message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_bodies_quote_and_escape_values() {
        let payload: Map<String, Value> = serde_json::from_str(
            r#"{"event":"opened","text":"a \"b\"\nc","alert_id":42,"severity":"critical"}"#,
        )
        .unwrap();
        let src = r#"{"content": {{ text }}, "id": {{ alert_id }}, "ack": {{ ack_url }}}"#;
        check(src, Escape::Json).unwrap();
        let out = render(src, Escape::Json, &context(&payload, None)).unwrap();
        assert_eq!(out, r#"{"content": "a \"b\"\nc", "id": 42, "ack": null}"#);
        let html = render("<p>{{ text }}</p>", Escape::Html, &context(&payload, None)).unwrap();
        assert_eq!(html, "<p>a &quot;b&quot;\nc</p>");
    }

    #[test]
    fn syntax_errors_and_unknown_variables_have_their_line() {
        let e = check("line one\n{{ text }\n", Escape::None).unwrap_err();
        assert_eq!(e.line, 2, "{e:?}");
        assert!(e.message.starts_with("syntax error"), "{e:?}");
        let e = check("{{ text }}\n\n {{ sevrity }}", Escape::None).unwrap_err();
        assert_eq!((e.line, e.offset), (3, Some(16)), "{e:?}");
        assert!(
            e.message
                .starts_with("unknown variable \"sevrity\" (known: event,"),
            "{e:?}"
        );
        let e = check("{{ payload.nope }}", Escape::None);
        assert!(e.is_err(), "strict: {e:?}");
        check(
            "{% if acknowledged_by %}{{ acknowledged_by }}{% endif %}{{ payload | tojson }}",
            Escape::None,
        )
        .unwrap();
        // Numbers are numbers and lists are lists when it is checked.
        check(
            "{{ level + 1 }} of {{ levels }}: {{ paging | join(\", \") }}",
            Escape::None,
        )
        .unwrap();
    }

    #[test]
    fn content_types() {
        assert_eq!(
            Escape::for_content_type("application/json; charset=utf-8"),
            Escape::Json
        );
        assert_eq!(
            Escape::for_content_type("application/vnd.x+json"),
            Escape::Json
        );
        assert_eq!(Escape::for_content_type("text/html"), Escape::Html);
        assert_eq!(Escape::for_content_type("text/plain"), Escape::None);
    }
}
