//! Keys that are not valid where they stand, and keys that are missing: the
//! one message for each, whoever found it. Our own checks (`[defaults]`,
//! `[notify.NAME]`, a job without a kind) and serde's (a kind's settings and
//! the tables inside them, `[people.NAME]`, `[oncall.NAME]`, whose messages
//! are read here) both end in [`unknown_key`]: every key valid there, and
//! the nearest one as `did you mean`.

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::cx::{toml_message, Cx, Span};
use super::Section;

/// How alike (Jaro-Winkler, 0 to 1) a key must be to a valid one to be
/// suggested: `evrey`/`every`, `timout`/`timeout`, `knd`/`kind` and
/// `keeplast`/`keep_last` are; `env`/`every` and `tz`/`timezone` are not.
const ALIKE: f64 = 0.8;

/// The valid key `key` most likely misspells, if any is alike enough (the
/// first of equally alike ones).
pub(super) fn nearest<'k>(key: &str, valid: &[&'k str]) -> Option<&'k str> {
    let mut best: Option<(f64, &'k str)> = None;
    for v in valid {
        let score = strsim::jaro_winkler(key, v);
        if score > ALIKE && best.is_none_or(|(b, _)| score > b) {
            best = Some((score, v));
        }
    }
    best.map(|(_, v)| v)
}

/// `unknown key "evrey", did you mean "every"? (valid keys: kind, every, ...)`;
/// `context` follows the key (`" in [defaults]"`, or empty).
pub(super) fn unknown_key(key: &str, context: &str, valid: &[&str]) -> String {
    let mut message = format!("unknown key {key:?}{context}");
    if let Some(meant) = nearest(key, valid) {
        message.push_str(&format!(", did you mean {meant:?}?"));
    }
    if valid.is_empty() {
        message.push_str(" (this table takes no keys)");
    } else {
        message.push_str(&format!(" (valid keys: {})", valid.join(", ")));
    }
    message
}

/// What serde says about a key, read from its message (serde's
/// `Error::unknown_field` and `missing_field`, whose wording the unit tests
/// below pin).
#[derive(Debug, PartialEq, Eq)]
pub(super) enum SerdeKey {
    /// `unknown field `x`, expected one of `a`, `b``: the key and the
    /// fields the table has.
    Unknown { key: String, expected: Vec<String> },
    /// `missing field `x``.
    Missing(String),
}

impl SerdeKey {
    pub(super) fn read(message: &str) -> Option<SerdeKey> {
        if let Some(name) = message
            .strip_prefix("missing field `")
            .and_then(|m| m.strip_suffix('`'))
        {
            return Some(SerdeKey::Missing(name.to_string()));
        }
        let (key, rest) = message.strip_prefix("unknown field `")?.split_once("`, ")?;
        let expected = if rest == "there are no fields" {
            Vec::new()
        } else {
            let list = rest.strip_prefix("expected ")?;
            let list = list.strip_prefix("one of ").unwrap_or(list);
            list.split(", ")
                .flat_map(|item| item.split(" or "))
                .map(|name| name.trim_matches('`').to_string())
                .collect()
        };
        Some(SerdeKey::Unknown {
            key: key.to_string(),
            expected,
        })
    }
}

/// Where a problem at `span` lies in `table`, as serde reports it.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Place {
    /// At one of the table's own keys.
    Key,
    /// Inside the value of the table's key of this name (deeper tables
    /// included).
    Under(String),
    /// Neither (the table as a whole).
    Table,
}

pub(super) fn place(table: &DeTable<'_>, span: &Span) -> Place {
    if table.keys().any(|k| k.span().start == span.start) {
        return Place::Key;
    }
    table
        .iter()
        .find(|(_, v)| within(v, span))
        .map_or(Place::Table, |(k, _)| Place::Under(k.get_ref().to_string()))
}

/// Whether `span` starts at `v` or at a key or value inside it. Not by
/// `v`'s own span alone: a `[jobs.NAME.sub]` table's keys lie outside it.
fn within(v: &Spanned<DeValue<'_>>, span: &Span) -> bool {
    let own = v.span();
    (own.start <= span.start && span.start < own.end)
        || match v.get_ref() {
            DeValue::Table(t) => t
                .iter()
                .any(|(k, v)| k.span().start == span.start || within(v, span)),
            DeValue::Array(items) => items.iter().any(|i| within(i, span)),
            _ => false,
        }
}

impl Cx<'_> {
    /// Reports serde's error `e` about `table` (a kind's settings, a
    /// person, an on-call schedule) in `section`, under the key of `table`
    /// it is in. An unknown key gets [`unknown_key`]'s message; when it is
    /// one of `table`'s own keys, `also_valid` (the keys read before serde
    /// saw the rest: a job's `JOB_KEYS`) count as valid too. A missing key
    /// reads as ours do. Returns the key an unknown key was taken for, if
    /// one was suggested, so that the caller does not also report that key
    /// as missing.
    pub(super) fn serde_problem(
        &mut self,
        section: Option<Section>,
        table: &DeTable<'_>,
        fallback: Span,
        e: &toml::de::Error,
        also_valid: &[&str],
    ) -> Option<String> {
        let span = e.span().unwrap_or(fallback);
        let place = place(table, &span);
        let under = match &place {
            Place::Under(k) => Some(k.as_str()),
            Place::Key | Place::Table => None,
        };
        match SerdeKey::read(e.message()) {
            Some(SerdeKey::Unknown { key, expected }) => {
                let mut valid: Vec<&str> = match place {
                    Place::Key => also_valid.to_vec(),
                    Place::Under(_) | Place::Table => Vec::new(),
                };
                valid.extend(expected.iter().map(String::as_str));
                let meant = nearest(&key, &valid).map(str::to_string);
                self.problem_in(span, section, under, unknown_key(&key, "", &valid));
                meant
            }
            Some(SerdeKey::Missing(key)) => {
                self.problem_in(span, section, under, format!("missing key {key:?}"));
                None
            }
            None => {
                self.problem_in(span, section, under, toml_message(e));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_key_is_suggested_only_when_alike() {
        let job = [
            "kind",
            "every",
            "cron",
            "timezone",
            "timeout",
            "retries",
            "keep_last",
            "command",
            "env",
        ];
        for (typo, meant) in [
            ("evrey", Some("every")),
            ("evry", Some("every")),
            ("cronn", Some("cron")),
            ("timout", Some("timeout")),
            ("timezon", Some("timezone")),
            ("knd", Some("kind")),
            ("keeplast", Some("keep_last")),
            ("Every", Some("every")),
            ("tz", None),
            ("cmd", None),
            ("schedule", None),
            ("foo", None),
        ] {
            assert_eq!(nearest(typo, &job), meant, "{typo}");
        }
        assert_eq!(
            unknown_key("evrey", "", &["kind", "every", "cron"]),
            "unknown key \"evrey\", did you mean \"every\"? (valid keys: kind, every, cron)"
        );
        assert_eq!(
            unknown_key("x", " in [defaults]", &["timezone"]),
            "unknown key \"x\" in [defaults] (valid keys: timezone)"
        );
    }

    /// serde's own wording, produced by serde: if a serde release rewords
    /// it, this fails instead of the suggestions silently stopping.
    #[test]
    fn serde_messages_are_read() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Three {
            name: String,
            url: String,
            timeout: Option<String>,
        }
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Two {
            a: Option<u8>,
            b: Option<u8>,
        }
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct One {
            notify: Option<u8>,
        }
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Zero {}
        let message = |e: toml::de::Error| e.message().to_string();
        let unknown = |key: &str, expected: &[&str]| SerdeKey::Unknown {
            key: key.to_string(),
            expected: expected.iter().map(ToString::to_string).collect(),
        };
        let e =
            toml::from_str::<Three>("name = \"a\"\nurl = \"b\"\ntimout = \"1s\"\n").unwrap_err();
        assert_eq!(
            SerdeKey::read(&message(e)),
            Some(unknown("timout", &["name", "url", "timeout"]))
        );
        let e = toml::from_str::<Two>("c = 1\n").unwrap_err();
        assert_eq!(SerdeKey::read(&message(e)), Some(unknown("c", &["a", "b"])));
        let e = toml::from_str::<One>("notfy = 1\n").unwrap_err();
        assert_eq!(
            SerdeKey::read(&message(e)),
            Some(unknown("notfy", &["notify"]))
        );
        let e = toml::from_str::<Zero>("x = 1\n").unwrap_err();
        assert_eq!(SerdeKey::read(&message(e)), Some(unknown("x", &[])));
        let e = toml::from_str::<Three>("name = \"a\"\n").unwrap_err();
        assert_eq!(
            SerdeKey::read(&message(e)),
            Some(SerdeKey::Missing("url".to_string()))
        );
        assert_eq!(
            SerdeKey::read("invalid type: integer `5`, expected a string"),
            None
        );
    }
}
