//! The parse in progress ([`Cx`]): where problems go, how a span becomes a
//! line and column, and the typed reading of one value (a string, a
//! duration, a number, a boolean, one of a set) that every table's checks
//! share.

use std::time::Duration;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::{Problem, Section};

/// The parse in progress: where problems go and how spans become lines.
pub(super) struct Cx<'t> {
    pub(super) file: String,
    pub(super) text: &'t str,
    pub(super) problems: Vec<Problem>,
    /// What is valid but likely not meant (`validate` prints them, `run`
    /// logs them).
    pub(super) warnings: Vec<Problem>,
    /// Where a cron job's fire times are looked at to check its jitter.
    pub(super) loaded_at: chrono::DateTime<chrono::Utc>,
    /// The declared [notify.NAME] targets, for checking jobs' `notify` lists.
    pub(super) notify_names: Vec<String>,
    /// The declared [people.NAME] and [oncall.NAME], for `escalation` policies.
    pub(super) person_names: Vec<String>,
    pub(super) oncall_names: Vec<String>,
}

pub(super) type Span = std::ops::Range<usize>;

impl Cx<'_> {
    /// A problem at `span`, in job `job` (if any), about `key` (if any).
    pub(super) fn problem(
        &mut self,
        span: Span,
        job: Option<&str>,
        key: Option<&str>,
        message: impl Into<String>,
    ) {
        let section = job.map(|j| Section::Job(j.to_string()));
        self.problem_in(span, section, key, message);
    }

    /// A problem at `span`, in any section.
    pub(super) fn problem_in(
        &mut self,
        span: Span,
        section: Option<Section>,
        key: Option<&str>,
        message: impl Into<String>,
    ) {
        let (line, column) = line_col(self.text, span.start);
        // One problem per place: a value that failed to expand is not also
        // reported as an invalid duration.
        if self
            .problems
            .iter()
            .any(|p| (p.line, p.column) == (line, column))
        {
            return;
        }
        self.problems.push(Problem {
            file: self.file.clone(),
            line,
            column,
            section,
            key: key.map(str::to_string),
            message: message.into(),
        });
    }

    /// A warning at `span`, in job `job` (if any).
    pub(super) fn warning(&mut self, span: Span, job: Option<&str>, message: impl Into<String>) {
        let (line, column) = line_col(self.text, span.start);
        self.warnings.push(Problem {
            file: self.file.clone(),
            line,
            column,
            section: job.map(|j| Section::Job(j.to_string())),
            key: None,
            message: message.into(),
        });
    }

    pub(super) fn string(
        &mut self,
        job: Option<&str>,
        key: &str,
        v: &Spanned<DeValue<'_>>,
    ) -> Option<String> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            other => {
                self.problem(
                    v.span(),
                    job,
                    Some(key),
                    format!("expected a string, found {}", other.type_str()),
                );
                None
            }
        }
    }

    pub(super) fn duration(
        &mut self,
        job: Option<&str>,
        key: &str,
        v: &Spanned<DeValue<'_>>,
    ) -> Option<Duration> {
        if let DeValue::Integer(_) = v.get_ref() {
            self.problem(
                v.span(),
                job,
                Some(key),
                "expected a duration string with a unit, such as \"30s\" or \"5m\"",
            );
            return None;
        }
        let s = self.string(job, key, v)?;
        match humantime::parse_duration(s.trim()) {
            Ok(d) => Some(d),
            Err(e) => {
                self.problem(
                    v.span(),
                    job,
                    Some(key),
                    format!("invalid duration {s:?}: {e} (examples: \"30s\", \"5m\", \"1h 30m\")"),
                );
                None
            }
        }
    }

    /// An integer, or a string holding one (what `${VAR}` expands to).
    pub(super) fn integer(
        &mut self,
        job: Option<&str>,
        key: &str,
        v: &Spanned<DeValue<'_>>,
        min: u64,
        max: u64,
    ) -> Option<u64> {
        let parsed = match v.get_ref() {
            DeValue::Integer(i) => i.as_str().replace('_', "").parse::<u64>().ok(),
            DeValue::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        match parsed.filter(|n| (min..=max).contains(n)) {
            Some(n) => Some(n),
            None => {
                self.problem(
                    v.span(),
                    job,
                    Some(key),
                    format!("expected a whole number from {min} to {max}"),
                );
                None
            }
        }
    }

    /// A boolean, or a string holding one (what `${VAR}` expands to).
    pub(super) fn boolean(
        &mut self,
        job: Option<&str>,
        key: &str,
        v: &Spanned<DeValue<'_>>,
    ) -> Option<bool> {
        let parsed = match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            DeValue::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => Some(true),
                "false" | "no" | "off" | "0" => Some(false),
                _ => None,
            },
            _ => None,
        };
        if parsed.is_none() {
            self.problem(v.span(), job, Some(key), "expected true or false");
        }
        parsed
    }

    pub(super) fn choice<T: Copy>(
        &mut self,
        job: Option<&str>,
        key: &str,
        v: Option<&(Spanned<std::borrow::Cow<'_, str>>, Spanned<DeValue<'_>>)>,
        options: &[(&str, T)],
        default: T,
    ) -> Option<T> {
        let Some((_, v)) = v else {
            return Some(default);
        };
        let s = self.string(job, key, v)?;
        match options.iter().find(|(name, _)| *name == s) {
            Some((_, t)) => Some(*t),
            None => {
                let names: Vec<_> = options.iter().map(|(n, _)| *n).collect();
                self.problem(
                    v.span(),
                    job,
                    Some(key),
                    format!(
                        "invalid value {s:?} (expected one of: {})",
                        names.join(", ")
                    ),
                );
                None
            }
        }
    }
}

/// The span from the first key to the last value of a table, for errors
/// about its settings as a whole.
pub(super) fn span_of_entries(table: &DeTable<'_>) -> Option<Span> {
    let start = table.keys().map(|k| k.span().start).min()?;
    let end = table.values().map(|v| v.span().end).max()?;
    Some(start..end)
}

/// serde's message for the error, one line, lowercase like ours.
pub(super) fn toml_message(e: &toml::de::Error) -> String {
    let msg = e.message().trim().replace('\n', " ");
    let mut chars = msg.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => msg,
    }
}

pub(super) fn valid_job_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}
