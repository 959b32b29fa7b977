//! The document as a whole: `${VAR}` expansion of every string, then the
//! top-level tables (`[defaults]`, `[jobs]`, `[notify]`, `[people]`,
//! `[oncall]`, `[maintenance]`, `[api]`) handed to the code that checks each.

use std::sync::Arc;

use ops_worker_jobs::oncall::OnCallSchedule;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::cx::{toml_message, valid_job_name, Cx};
use super::job::JOB_KEYS;
use super::{
    expand, keys, ApiConfig, JobSpec, MaintenanceWindow, NotifyTarget, Person, Retention, Section,
};

/// The tables a schedule file may have.
const TOP_LEVEL: &[&str] = &[
    "defaults",
    "jobs",
    "notify",
    "people",
    "oncall",
    "maintenance",
    "api",
];

/// What a schedule file declares, checked.
#[derive(Default)]
pub(super) struct Document {
    pub(super) jobs: Vec<Arc<JobSpec>>,
    pub(super) notify: Vec<NotifyTarget>,
    pub(super) people: Vec<Person>,
    pub(super) oncall: Vec<(String, OnCallSchedule)>,
    pub(super) maintenance: Vec<MaintenanceWindow>,
    pub(super) default_retention: Retention,
    pub(super) api: ApiConfig,
}

impl Cx<'_> {
    pub(super) fn document(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Document {
        let mut root = match DeTable::parse(self.text) {
            Ok(root) => root.into_inner(),
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                self.problem(span, None, None, toml_message(&e));
                return Document::default();
            }
        };
        // Expand ${VAR} everywhere first, so every later check sees final values.
        for (key, value) in root.iter_mut() {
            let key = key.get_ref().to_string();
            self.expand_value(value, None, &key, env);
        }

        let mut defaults = DeTable::new();
        let mut jobs = None;
        let mut notify = Vec::new();
        let (mut people_table, mut oncall_table) = (None, None);
        let mut maintenance = Vec::new();
        let mut api = ApiConfig::default();
        for (key, value) in root {
            match key.get_ref().as_ref() {
                "defaults" => match value.into_inner() {
                    DeValue::Table(t) => defaults = t,
                    _ => self.problem(
                        key.span(),
                        None,
                        Some("defaults"),
                        "must be a table: [defaults]",
                    ),
                },
                "jobs" => match value.into_inner() {
                    DeValue::Table(t) => jobs = Some((key.span(), t)),
                    _ => self.problem(
                        key.span(),
                        None,
                        Some("jobs"),
                        "must be a table of jobs: [jobs.NAME]",
                    ),
                },
                "notify" => match value.into_inner() {
                    DeValue::Table(t) => notify = self.notify_targets(t),
                    _ => self.problem(
                        key.span(),
                        None,
                        Some("notify"),
                        "must be a table of targets: [notify.NAME]",
                    ),
                },
                "people" => match value.into_inner() {
                    DeValue::Table(t) => people_table = Some(t),
                    _ => self.problem(
                        key.span(),
                        None,
                        Some("people"),
                        "must be a table of people: [people.NAME]",
                    ),
                },
                "oncall" => match value.into_inner() {
                    DeValue::Table(t) => oncall_table = Some(t),
                    _ => self.problem(
                        key.span(),
                        None,
                        Some("oncall"),
                        "must be a table of schedules: [oncall.NAME]",
                    ),
                },
                "maintenance" => match value.into_inner() {
                    DeValue::Table(t) => maintenance = self.maintenance(t),
                    _ => self.problem(
                        key.span(),
                        None,
                        Some("maintenance"),
                        "must be a table of windows: [maintenance.NAME]",
                    ),
                },
                "api" => api = self.api(key.span(), value.into_inner()),
                other => {
                    let meant = keys::nearest(other, TOP_LEVEL)
                        .map_or_else(String::new, |k| format!(", did you mean {k:?}?"));
                    self.problem(
                        key.span(),
                        None,
                        None,
                        format!("unknown top-level key {other:?}{meant} (expected [defaults], [jobs.NAME], [notify.NAME], [people.NAME], [oncall.NAME], [maintenance.NAME] or [api])"),
                    )
                }
            }
        }
        let defaultable: Vec<&str> = JOB_KEYS
            .iter()
            .filter(|(_, d)| *d)
            .map(|(k, _)| *k)
            .collect();
        for (key, _) in defaults.iter() {
            let key_name = key.get_ref().as_ref();
            if defaultable.contains(&key_name) {
                continue;
            }
            let msg = if JOB_KEYS.iter().any(|(k, _)| *k == key_name) {
                format!("{key_name:?} cannot be set in [defaults]: set it in each job")
            } else {
                keys::unknown_key(key_name, " in [defaults]", &defaultable)
            };
            self.problem(key.span(), None, None, msg);
        }
        // Checked here, not only through the jobs that inherit them, so a
        // problem names [defaults] rather than the first job.
        let default_retention = self
            .retention(
                None,
                defaults.get("history_retention"),
                defaults.get("keep_last"),
            )
            .unwrap_or_default();
        self.notify_names = notify.iter().map(|t| t.name.clone()).collect();
        let people = people_table.map(|t| self.people(t)).unwrap_or_default();
        let oncall = oncall_table
            .map(|t| self.oncall(t, &people))
            .unwrap_or_default();
        self.person_names = people.iter().map(|p| p.name.clone()).collect();
        self.oncall_names = oncall.iter().map(|(n, _)| n.clone()).collect();
        let Some((jobs_span, jobs)) = jobs else {
            self.problem(
                0..0,
                None,
                None,
                "no jobs: add at least one [jobs.NAME] table",
            );
            return Document {
                jobs: Vec::new(),
                notify,
                people,
                oncall,
                maintenance,
                default_retention,
                api,
            };
        };
        if jobs.is_empty() {
            self.problem(
                jobs_span,
                None,
                None,
                "no jobs: add at least one [jobs.NAME] table",
            );
        }
        let mut specs = Vec::new();
        for (name, table) in jobs {
            let name_span = name.span();
            let name = name.into_inner().into_owned();
            if !valid_job_name(&name) {
                self.problem(
                    name_span.clone(),
                    Some(&name),
                    None,
                    "job names may use letters, digits, '-', '_' and '.' only",
                );
            }
            match table.into_inner() {
                DeValue::Table(t) => {
                    if let Some(spec) = self.job(&name, name_span, t, &defaults) {
                        specs.push(Arc::new(spec));
                    }
                }
                _ => self.problem(name_span, Some(&name), None, "must be a table: [jobs.NAME]"),
            }
        }
        Document {
            jobs: specs,
            notify,
            people,
            oncall,
            maintenance,
            default_retention,
            api,
        }
    }

    pub(super) fn expand_value(
        &mut self,
        value: &mut Spanned<DeValue<'_>>,
        section: Option<&Section>,
        key: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) {
        let span = value.span();
        match value.get_mut() {
            DeValue::String(s) => match expand(s, env) {
                Ok(std::borrow::Cow::Owned(new)) => *s = new.into(),
                Ok(std::borrow::Cow::Borrowed(_)) => {}
                Err(e) => self.problem_in(span, section.cloned(), Some(key), e.to_string()),
            },
            DeValue::Array(items) => {
                for item in items.iter_mut() {
                    self.expand_value(item, section, key, env);
                }
            }
            DeValue::Table(t) => {
                for (k, v) in t.iter_mut() {
                    let k = k.get_ref().to_string();
                    match (section, key) {
                        // [jobs.NAME] and [notify.NAME]: the key names the section.
                        (None, "jobs") => self.expand_value(v, Some(&Section::Job(k)), "", env),
                        (None, "notify") => {
                            self.expand_value(v, Some(&Section::Notify(k)), "", env)
                        }
                        // A key of a section's table or of [defaults].
                        (_, "") | (None, _) => self.expand_value(v, section, &k, env),
                        // Deeper (e.g. a kind's `env` table): report the section's key.
                        (Some(_), _) => self.expand_value(v, section, key, env),
                    }
                }
            }
            _ => {}
        }
    }
}
