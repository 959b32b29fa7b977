//! `[people.NAME]` and `[oncall.NAME]` tables of schedules.toml: who can be
//! paged, through which notification targets, and who is on call when.
//!
//! ```toml
//! [people.alice]
//! notify = ["alice-webhook"]       # [notify.NAME] targets that reach her
//!
//! [oncall.primary]
//! timezone = "Europe/Berlin"
//! layers = [{ members = ["alice", "bob"], rotation = "weekly", handoff = "2026-11-02T09:00" }]
//! overrides = [{ who = "bob", from = "2026-11-24T09:00", to = "2026-11-25T09:00" }]
//! ```
//!
//! The resolution itself (layers, restrictions, overrides, DST) lives in the
//! jobs crate's [`ops_worker_jobs::oncall`]; this file owns reading the
//! tables, pointing problems at file:line:column, and checking that every
//! person a schedule names is declared and every target a person names is.

use ops_worker_jobs::escalation::Reference;
use ops_worker_jobs::oncall::OnCallSchedule;
use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::cx::{span_of_entries, valid_job_name, Cx, Span};
use super::Section;

/// One `[people.NAME]`: a person escalation can page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub name: String,
    /// The `[notify.NAME]` targets that reach them.
    pub notify: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PersonTable {
    notify: Vec<String>,
}

impl Cx<'_> {
    /// Names of the tables in `table`, each checked; `(name, span, value)`.
    pub(super) fn named<'a>(
        &mut self,
        table: DeTable<'a>,
        section: fn(String) -> Section,
        what: &str,
    ) -> Vec<(String, Span, DeTable<'a>)> {
        let mut out = Vec::new();
        for (name, value) in table {
            let name_span = name.span();
            let name = name.into_inner().into_owned();
            let sect = section(name.clone());
            if !valid_job_name(&name) {
                self.problem_in(
                    name_span.clone(),
                    Some(sect.clone()),
                    None,
                    "names may use letters, digits, '-', '_' and '.' only",
                );
            }
            match value.into_inner() {
                DeValue::Table(t) => out.push((name, name_span, t)),
                _ => self.problem_in(
                    name_span,
                    Some(sect),
                    None,
                    format!("must be a table: {what}"),
                ),
            }
        }
        out
    }

    /// Deserializes a whole table, reporting serde's problems at their spans.
    pub(super) fn typed<T: for<'de> Deserialize<'de>>(
        &mut self,
        section: &Section,
        name_span: Span,
        table: DeTable<'_>,
    ) -> Option<T> {
        let span = span_of_entries(&table).unwrap_or(name_span.clone());
        let value = Spanned::new(span.clone(), DeValue::Table(table.clone()));
        match T::deserialize(toml::de::ValueDeserializer::from(value)) {
            Ok(v) => Some(v),
            Err(e) => {
                self.serde_problem(Some(section.clone()), &table, name_span, &e, &[]);
                None
            }
        }
    }

    /// The `[people]` table, in name order. Every target named must be a
    /// declared `[notify.NAME]`.
    pub(super) fn people(&mut self, table: DeTable<'_>) -> Vec<Person> {
        let mut people = Vec::new();
        for (name, name_span, t) in self.named(table, Section::Person, "[people.NAME]") {
            let section = Section::Person(name.clone());
            // Spans of the list items, for pointing at an unknown target.
            let items: Vec<(String, Span)> = match t.get("notify").map(|v| v.get_ref()) {
                Some(DeValue::Array(items)) => items
                    .iter()
                    .filter_map(|i| Some((i.get_ref().as_str()?.to_string(), i.span())))
                    .collect(),
                _ => Vec::new(),
            };
            let Some(person) = self.typed::<PersonTable>(&section, name_span.clone(), t) else {
                continue;
            };
            for (target, span) in &items {
                if !self.notify_names.iter().any(|n| n == target) {
                    let msg = format!("unknown notification target {target:?}");
                    self.problem_in(span.clone(), Some(section.clone()), Some("notify"), msg);
                }
            }
            if person.notify.is_empty() {
                self.problem_in(
                    name_span,
                    Some(section),
                    Some("notify"),
                    "name at least one [notify.NAME] target that reaches them",
                );
            }
            people.push(Person {
                name,
                notify: person.notify,
            });
        }
        people.sort_by(|a, b| a.name.cmp(&b.name));
        people
    }

    /// The `[oncall]` table, in name order. Every person a schedule names
    /// must be in `people`.
    pub(super) fn oncall(
        &mut self,
        table: DeTable<'_>,
        people: &[Person],
    ) -> Vec<(String, OnCallSchedule)> {
        let mut schedules = Vec::new();
        for (name, name_span, t) in self.named(table, Section::OnCall, "[oncall.NAME]") {
            let section = Section::OnCall(name.clone());
            let Some(schedule) = self.typed::<OnCallSchedule>(&section, name_span.clone(), t)
            else {
                continue;
            };
            if let Err(msg) = schedule.validate() {
                self.problem_in(name_span.clone(), Some(section.clone()), None, msg);
                continue;
            }
            for who in schedule.people() {
                if !people.iter().any(|p| p.name == who) {
                    let msg = format!("unknown person {who:?} (declare them: [people.{who}])");
                    self.problem_in(name_span.clone(), Some(section.clone()), None, msg);
                }
            }
            schedules.push((name, schedule));
        }
        schedules.sort_by(|a, b| a.0.cmp(&b.0));
        schedules
    }

    /// Checks every reference in an `escalation` job's `policy.levels[].notify`:
    /// `oncall:NAME` and `person:NAME` must be declared, anything else is a
    /// `[notify.NAME]` target. Shapes are the kind's to check.
    pub(super) fn escalation_references(&mut self, job: Option<&str>, table: &DeTable<'_>) {
        let Some(DeValue::Table(policy)) = table.get("policy").map(|v| v.get_ref()) else {
            return;
        };
        let Some(DeValue::Array(levels)) = policy.get("levels").map(|v| v.get_ref()) else {
            return;
        };
        let refs = levels.iter().filter_map(|l| match l.get_ref() {
            DeValue::Table(l) => match l.get("notify").map(|v| v.get_ref()) {
                Some(DeValue::Array(items)) => Some(items),
                _ => None,
            },
            _ => None,
        });
        let refs: Vec<(String, Span)> = refs
            .flatten()
            .filter_map(|i| Some((i.get_ref().as_str()?.to_string(), i.span())))
            .collect();
        for (r, span) in refs {
            let (known, what, names) = match Reference::parse(&r) {
                Reference::Target(t) => {
                    self.check_target(span, job, &t);
                    continue;
                }
                Reference::OnCall(n) => (n, "on-call schedule", &self.oncall_names),
                Reference::Person(n) => (n, "person", &self.person_names),
            };
            if !names.contains(&known) {
                let table = if what == "person" { "people" } else { "oncall" };
                let msg =
                    format!("unknown {what} {known:?} in {r:?} (declare it: [{table}.{known}])");
                self.problem(span, job, Some("notify"), msg);
            }
        }
    }
}
