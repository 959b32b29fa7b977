//! The `escalation` kind: pages people about open alerts nobody has
//! acknowledged, level by level along a policy, the way PagerDuty escalation
//! policies do.
//!
//! ```toml
//! [jobs.escalate]
//! kind = "escalation"
//! every = "30s"
//! match = { severity = ["critical"], source = ["service"], fingerprint = ["system:service:*"] }
//!
//! [jobs.escalate.policy]
//! repeat = 1              # start over once more after the last level (default 0, at most 10)
//! repeat_after = "30m"    # how long after the last level it starts over (default: its `after`)
//! levels = [
//!   { after = "5m",  notify = ["oncall:primary"] },
//!   { after = "15m", notify = ["oncall:secondary", "person:carol"] },
//!   { after = "30m", notify = ["ops-webhook"] },
//! ]
//! ```
//!
//! A policy is a list of *steps*: its levels in order, then (with `repeat`)
//! the same levels again, each cycle `last after + repeat_after` later than
//! the one before. Step `k` is due `after` its level's time since the alert
//! opened. The alert's `escalation_level` records the last step done, and a
//! run moves it forward with a conditional update that enqueues the step's
//! notifications in the same transaction, so a second run, a catch-up run, a
//! restart or a concurrent replica never pages a step twice.
//!
//! - Only `open` alerts escalate, and none while a maintenance window or an
//!   ad-hoc silence covers it ([`crate::silence`]): when the silence ends,
//!   the steps due by then are paged (at most one per level, as after a
//!   pause). Acknowledging (`ops-worker alerts ack`)
//!   or resolving one stops it, and a re-opened incident is a new alert that
//!   starts at step 0.
//! - A level's references resolve at the moment of paging: `oncall:NAME` to
//!   whoever is on call then, `person:NAME` to that person, anything else is
//!   a `[notify.NAME]` target. Each target gets one notification per step,
//!   however many of the step's people it reaches.
//! - A due step whose references reach nobody (nobody on call) goes on to the
//!   next level at once.
//! - After a pause (worker down, alert opened long ago) a run pages the due
//!   steps it has not paged, at most one per level: whole cycles that passed
//!   unseen are not replayed.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::de::{self, Deserializer};
use serde::Deserialize;

use crate::store::{Alert, AlertSource, AlertStatus, NotificationEvent, Page, Severity};
use crate::{BuildError, Directory, Job, JobContext, JobError, JobOutput, Settings};

/// The most cycles `repeat` may add.
pub const MAX_REPEAT: u32 = 10;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EscalationSettings {
    policy: PolicySettings,
    #[serde(default, rename = "match")]
    matching: Match,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicySettings {
    levels: Vec<LevelSettings>,
    #[serde(default)]
    repeat: u32,
    #[serde(default, deserialize_with = "crate::health::duration_opt")]
    repeat_after: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LevelSettings {
    #[serde(deserialize_with = "crate::health::duration")]
    after: Duration,
    notify: Vec<String>,
}

/// Which alerts a policy applies to; a missing key matches every alert.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Match {
    #[serde(default, deserialize_with = "severities")]
    severity: Option<Vec<Severity>>,
    #[serde(default, deserialize_with = "sources")]
    source: Option<Vec<AlertSource>>,
    /// `*` globs, e.g. `system:service:*`.
    #[serde(default)]
    fingerprint: Option<Vec<String>>,
}

impl Match {
    fn matches(&self, a: &Alert) -> bool {
        self.severity
            .as_ref()
            .is_none_or(|s| s.contains(&a.severity))
            && self.source.as_ref().is_none_or(|s| s.contains(&a.source))
            && self
                .fingerprint
                .as_ref()
                .is_none_or(|p| p.iter().any(|p| crate::prom::matches(p, &a.fingerprint)))
    }
}

/// A list of words parsed by `FromStr`, naming the expected ones on error.
fn words<'de, D: Deserializer<'de>, T: std::str::FromStr>(
    d: D,
    what: &str,
    expected: &str,
) -> Result<Option<Vec<T>>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|w| {
            w.parse().map_err(|_| {
                de::Error::custom(format!("invalid {what} {w:?} (expected {expected})"))
            })
        })
        .collect::<Result<Vec<T>, _>>()
        .map(Some)
}

fn severities<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Severity>>, D::Error> {
    words(d, "severity", "critical, warning or info")
}

fn sources<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<AlertSource>>, D::Error> {
    words(d, "source", "service or job")
}

/// One entry of a level's `notify` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// `oncall:NAME`: whoever is on call on `[oncall.NAME]` at the time.
    OnCall(String),
    /// `person:NAME`: `[people.NAME]`'s targets.
    Person(String),
    /// A `[notify.NAME]` target.
    Target(String),
}

impl Reference {
    pub fn parse(s: &str) -> Reference {
        if let Some(name) = s.strip_prefix("oncall:") {
            Reference::OnCall(name.to_string())
        } else if let Some(name) = s.strip_prefix("person:") {
            Reference::Person(name.to_string())
        } else {
            Reference::Target(s.to_string())
        }
    }
}

#[derive(Debug)]
struct Level {
    after: Duration,
    notify: Vec<Reference>,
}

/// Where a step's notifications go: a target, and the people it reaches
/// there (none when the policy names the target itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub target: String,
    pub people: Vec<String>,
}

/// The levels, repeated: what is due when.
#[derive(Debug)]
struct Policy {
    levels: Vec<Level>,
    repeat: u32,
    /// From one cycle's start to the next's.
    cycle: Duration,
}

/// What one run does for one alert.
#[derive(Debug, PartialEq, Eq)]
struct Plan {
    /// The step the alert ends at.
    to: u32,
    /// The steps paged, each with its recipients (empty: nobody to page,
    /// so the next level followed at once).
    steps: Vec<(u32, Vec<Recipient>)>,
}

impl Policy {
    fn steps(&self) -> u32 {
        self.levels.len() as u32 * (self.repeat + 1)
    }

    /// (level, cycle) of `step`, both from 1.
    fn position(&self, step: u32) -> (u32, u32) {
        let n = self.levels.len() as u32;
        ((step - 1) % n + 1, (step - 1) / n + 1)
    }

    /// When `step` is due, as time since the alert opened.
    fn due(&self, step: u32) -> Duration {
        let (level, cycle) = self.position(step);
        // Saturating: a policy of absurd durations is never due, not a panic.
        self.cycle
            .saturating_mul(cycle - 1)
            .saturating_add(self.levels[level as usize - 1].after)
    }

    fn level(&self, step: u32) -> &Level {
        &self.levels[self.position(step).0 as usize - 1]
    }

    /// What is due for an alert `age` old whose last step done is `done`;
    /// `None` when nothing is. `resolve` finds a level's recipients now.
    fn plan(
        &self,
        done: u32,
        age: Duration,
        mut resolve: impl FnMut(&Level) -> Vec<Recipient>,
    ) -> Option<Plan> {
        let last_due = (1..=self.steps())
            .take_while(|&k| self.due(k) <= age)
            .last()?;
        if last_due <= done {
            return None;
        }
        // At most one step per level: cycles that passed unseen are not replayed.
        let n = self.levels.len() as u32;
        let mut step = (done + 1).max(last_due.saturating_sub(n) + 1);
        let mut to = last_due;
        let mut steps = Vec::new();
        while step <= to {
            let recipients = resolve(self.level(step));
            // Nobody to page at the last due step: the next level, now.
            if recipients.is_empty() && step == to && to < self.steps() {
                to += 1;
            }
            steps.push((step, recipients));
            step += 1;
        }
        Some(Plan { to, steps })
    }
}

pub struct EscalationJob {
    policy: Policy,
    matching: Match,
}

impl EscalationJob {
    pub fn from_settings(_name: &str, settings: Settings<'_>) -> Result<Self, BuildError> {
        let s = EscalationSettings::deserialize(settings)?;
        let p = s.policy;
        let invalid = |m: &str| Err(BuildError::Invalid(m.to_string()));
        let Some(last) = p.levels.last() else {
            return invalid("policy: name at least one level");
        };
        if p.levels.windows(2).any(|w| w[1].after <= w[0].after) {
            return invalid("policy: each level's `after` must be later than the one before");
        }
        if p.levels.iter().any(|l| l.notify.is_empty()) {
            return invalid("policy: each level must notify someone");
        }
        if p.repeat > MAX_REPEAT {
            return Err(BuildError::Invalid(format!(
                "policy: repeat is at most {MAX_REPEAT}"
            )));
        }
        let cycle = last
            .after
            .saturating_add(p.repeat_after.unwrap_or(last.after));
        if p.repeat > 0 && cycle.is_zero() {
            return invalid("policy: with repeat, set repeat_after (the last level is at 0s)");
        }
        Ok(EscalationJob {
            policy: Policy {
                repeat: p.repeat,
                cycle,
                levels: p
                    .levels
                    .into_iter()
                    .map(|l| Level {
                        after: l.after,
                        notify: l.notify.iter().map(|r| Reference::parse(r)).collect(),
                    })
                    .collect(),
            },
            matching: s.matching,
        })
    }
}

/// A level's recipients at `at`: targets in the order the level names them,
/// each once, with the people it reaches.
fn resolve(level: &Level, directory: &dyn Directory, at: DateTime<Utc>) -> Vec<Recipient> {
    let mut out: Vec<Recipient> = Vec::new();
    let mut add = |target: String, person: Option<&str>| {
        let i = match out.iter().position(|r| r.target == target) {
            Some(i) => i,
            None => {
                out.push(Recipient {
                    target,
                    people: Vec::new(),
                });
                out.len() - 1
            }
        };
        if let Some(p) = person.filter(|p| !out[i].people.iter().any(|q| q == p)) {
            out[i].people.push(p.to_string());
        }
    };
    for r in &level.notify {
        let person = match r {
            Reference::Target(t) => {
                add(t.clone(), None);
                continue;
            }
            Reference::Person(p) => Some(p.clone()),
            Reference::OnCall(s) => directory.on_call(s, at),
        };
        if let Some(p) = person {
            for t in directory.person_targets(&p) {
                add(t, Some(&p));
            }
        }
    }
    out
}

/// The notification for one step to one recipient: the alert's payload
/// plus the level, how long it has been open, whom it pages and how to
/// acknowledge it.
fn payload(
    alert: &Alert,
    policy: &Policy,
    step: u32,
    age: Duration,
    r: &Recipient,
) -> serde_json::Value {
    let (level, cycle) = policy.position(step);
    let mut alert = alert.clone();
    alert.escalation_level = step as i32;
    let mut p = alert.payload(NotificationEvent::Escalated);
    let open_for = humantime::format_duration(Duration::from_secs(age.as_secs())).to_string();
    let ack = format!("ops-worker alerts ack {}", alert.id);
    let levels = policy.levels.len();
    let round = if policy.repeat > 0 {
        format!(" (round {cycle} of {})", policy.repeat + 1)
    } else {
        String::new()
    };
    let paging = if r.people.is_empty() {
        String::new()
    } else {
        format!(" Paging {}.", r.people.join(", "))
    };
    let text = format!(
        "[{}] Escalation level {level} of {levels}{round}: {}. Open for {open_for}, not acknowledged.{paging} Acknowledge: {ack}",
        alert.severity, alert.message
    );
    if let Some(o) = p.as_object_mut() {
        o.insert("level".into(), level.into());
        o.insert("levels".into(), levels.into());
        o.insert("cycle".into(), cycle.into());
        o.insert("cycles".into(), (policy.repeat + 1).into());
        o.insert("open_for_secs".into(), age.as_secs().into());
        o.insert("paging".into(), r.people.clone().into());
        o.insert("ack_command".into(), ack.into());
        o.insert("text".into(), text.into());
    }
    p
}

#[async_trait]
impl Job for EscalationJob {
    async fn run(&self, ctx: JobContext) -> Result<JobOutput, JobError> {
        let store = |e: crate::StoreError| JobError::new(format!("storage: {e}"));
        let now = ctx.clock.now();
        let alerts = ctx.store.active_alerts().await.map_err(store)?;
        let quiet = crate::silence::Quiet::load(&ctx, now)
            .await
            .map_err(store)?;
        let (mut matched, mut escalated, mut pages_sent) = (0, Vec::new(), 0);
        let mut unreached = Vec::new();
        for alert in alerts.iter().filter(|a| self.matching.matches(a)) {
            matched += 1;
            if alert.status != AlertStatus::Open || quiet.why(&alert.fingerprint).is_some() {
                continue;
            }
            let done = alert.escalation_level.max(0) as u32;
            let age = (now - alert.opened_at).to_std().unwrap_or_default();
            let Some(plan) = self
                .policy
                .plan(done, age, |l| resolve(l, &*ctx.directory, now))
            else {
                continue;
            };
            let pages: Vec<Page> = plan
                .steps
                .iter()
                .flat_map(|(step, rs)| {
                    rs.iter().map(|r| Page {
                        step: *step as i32,
                        target: r.target.clone(),
                        payload: payload(alert, &self.policy, *step, age, r),
                    })
                })
                .collect();
            let changed = ctx
                .store
                .escalate_alert(alert.id, done as i32, plan.to as i32, now, &pages)
                .await
                .map_err(store)?;
            // Another run escalated it first, or it was acknowledged or
            // resolved meanwhile: what it did stands.
            if !changed {
                continue;
            }
            let (level, _) = self.policy.position(plan.to);
            tracing::warn!(
                alert_id = alert.id,
                fingerprint = %alert.fingerprint,
                level,
                notifications = pages.len(),
                "alert escalated: {}",
                alert.message
            );
            escalated.push(format!("#{} to level {level}", alert.id));
            pages_sent += pages.len();
            if pages.is_empty() {
                unreached.push(alert.id);
            }
        }
        let out = format!(
            "{matched} active alert{} matched: escalated {}, {pages_sent} notification{} enqueued",
            if matched == 1 { "" } else { "s" },
            if escalated.is_empty() {
                "0".to_string()
            } else {
                format!("{} ({})", escalated.len(), escalated.join(", "))
            },
            if pages_sent == 1 { "" } else { "s" },
        );
        if !unreached.is_empty() {
            let ids: Vec<String> = unreached.iter().map(|id| format!("#{id}")).collect();
            return Err(JobError {
                message: format!(
                    "nobody could be paged for alert {}: no level due had anyone on call",
                    ids.join(", ")
                ),
                output: Some(out),
            });
        }
        Ok(JobOutput { output: Some(out) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(toml: &str) -> Result<EscalationJob, String> {
        let table = format!("{{ {toml} }}");
        EscalationJob::from_settings(
            "escalate",
            toml::de::ValueDeserializer::parse(&table).unwrap(),
        )
        .map_err(|e| e.to_string())
    }

    /// A three-level policy, with `extra` policy keys.
    fn three(extra: &str) -> String {
        format!(
            r#"policy = {{ levels = [
            {{ after = "5m", notify = ["oncall:primary"] }},
            {{ after = "15m", notify = ["person:carol", "ops"] }},
            {{ after = "30m", notify = ["ops"] }} ]{extra} }}"#
        )
    }

    fn mins(m: u64) -> Duration {
        Duration::from_secs(m * 60)
    }

    /// Everyone reachable, one target per level named after the level.
    fn everyone(l: &Level) -> Vec<Recipient> {
        vec![Recipient {
            target: format!("{:?}", l.after),
            people: Vec::new(),
        }]
    }

    fn stepped(plan: Option<Plan>) -> Option<(u32, Vec<u32>)> {
        plan.map(|p| (p.to, p.steps.iter().map(|s| s.0).collect()))
    }

    #[test]
    fn steps_fall_due_at_their_levels_after() {
        let p = job(&three("")).unwrap().policy;
        assert_eq!(p.steps(), 3);
        for (age, done, want) in [
            (4, 0, None),
            (5, 0, Some((1, vec![1]))),
            (14, 1, None),
            (15, 1, Some((2, vec![2]))),
            (29, 2, None),
            (30, 2, Some((3, vec![3]))),
            (500, 3, None),
        ] {
            assert_eq!(
                stepped(p.plan(done, mins(age), everyone)),
                want,
                "{age}m, {done} done"
            );
        }
    }

    #[test]
    fn a_late_run_pages_every_due_level_once() {
        let p = job(&three("")).unwrap().policy;
        assert_eq!(
            stepped(p.plan(0, mins(31), everyone)),
            Some((3, vec![1, 2, 3]))
        );
        assert_eq!(
            stepped(p.plan(1, mins(31), everyone)),
            Some((3, vec![2, 3]))
        );
    }

    #[test]
    fn repeat_cycles_the_levels_and_stops_at_its_cap() {
        let p = job(&three(r#", repeat = 2, repeat_after = "10m""#))
            .unwrap()
            .policy;
        assert_eq!((p.steps(), p.cycle), (9, mins(40)));
        let dues: Vec<u64> = (1..=9).map(|k| p.due(k).as_secs() / 60).collect();
        assert_eq!(dues, [5, 15, 30, 45, 55, 70, 85, 95, 110]);
        assert_eq!(p.position(5), (2, 2));
        assert_eq!(stepped(p.plan(3, mins(45), everyone)), Some((4, vec![4])));
        assert_eq!(stepped(p.plan(9, mins(1000), everyone)), None);
        // Asleep for two cycles: only the latest due step of each level.
        assert_eq!(
            stepped(p.plan(1, mins(100), everyone)),
            Some((8, vec![6, 7, 8]))
        );
    }

    #[test]
    fn absurd_durations_saturate_instead_of_overflowing() {
        let p = job(
            r#"policy = { levels = [{ after = "500000000000y", notify = ["a"] }], repeat = 10 }"#,
        )
        .unwrap()
        .policy;
        assert_eq!(p.due(11), Duration::MAX);
        assert_eq!(stepped(p.plan(0, mins(60), everyone)), None);
    }

    #[test]
    fn the_default_repeat_after_is_the_last_levels_after() {
        let p = job(&three(", repeat = 1")).unwrap().policy;
        assert_eq!(p.cycle, mins(60));
        assert_eq!(p.due(4), mins(65));
    }

    #[test]
    fn nobody_to_page_goes_on_to_the_next_level_at_once() {
        let p = job(&three("")).unwrap().policy;
        // Level 1 (on call) has nobody: level 2 follows in the same run.
        let on_call_empty = |l: &Level| {
            if l.after == mins(5) {
                Vec::new()
            } else {
                everyone(l)
            }
        };
        assert_eq!(
            stepped(p.plan(0, mins(5), on_call_empty)),
            Some((2, vec![1, 2]))
        );
        // Nobody anywhere: the policy runs out, recorded as done.
        assert_eq!(
            stepped(p.plan(0, mins(5), |_| Vec::new())),
            Some((3, vec![1, 2, 3]))
        );
    }

    #[test]
    fn references_resolve_to_targets_once_each_with_their_people() {
        struct Dir;
        impl Directory for Dir {
            fn person_targets(&self, name: &str) -> Vec<String> {
                match name {
                    "alice" => vec!["alice-hook".into(), "team".into()],
                    "carol" => vec!["team".into()],
                    _ => Vec::new(),
                }
            }
            fn on_call(&self, schedule: &str, _: DateTime<Utc>) -> Option<String> {
                (schedule == "primary").then(|| "alice".into())
            }
        }
        let level = Level {
            after: Duration::ZERO,
            notify: [
                "oncall:primary",
                "oncall:empty",
                "person:carol",
                "team",
                "ops",
            ]
            .iter()
            .map(|r| Reference::parse(r))
            .collect(),
        };
        let rs = resolve(&level, &Dir, Utc::now());
        let got: Vec<(&str, Vec<&str>)> = rs
            .iter()
            .map(|r| {
                (
                    r.target.as_str(),
                    r.people.iter().map(|p| p.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("alice-hook", vec!["alice"]),
                ("team", vec!["alice", "carol"]),
                ("ops", vec![])
            ]
        );
    }

    #[test]
    fn bad_policies_are_refused() {
        for (toml, want) in [
            ("policy = { levels = [] }", "at least one level"),
            (
                r#"policy = { levels = [{ after = "5m", notify = ["a"] }, { after = "5m", notify = ["b"] }] }"#,
                "later than the one before",
            ),
            (
                r#"policy = { levels = [{ after = "5m", notify = [] }] }"#,
                "notify someone",
            ),
            (
                r#"policy = { levels = [{ after = "5m", notify = ["a"] }], repeat = 11 }"#,
                "at most 10",
            ),
            (
                r#"policy = { levels = [{ after = "0s", notify = ["a"] }], repeat = 1 }"#,
                "set repeat_after",
            ),
            (
                r#"policy = { levels = [{ after = "5x", notify = ["a"] }] }"#,
                "invalid duration \"5x\"",
            ),
            (
                r#"policy = { levels = [{ after = "5m", notify = ["a"] }] }, match = { severity = ["urgent"] }"#,
                "invalid severity \"urgent\" (expected critical, warning or info)",
            ),
            (
                r#"policy = { levels = [{ after = "5m", notify = ["a"] }] }, match = { team = "x" }"#,
                "unknown field `team`",
            ),
        ] {
            let err = job(toml)
                .err()
                .unwrap_or_else(|| panic!("accepted: {toml}"));
            assert!(err.contains(want), "{toml}: {err}");
        }
    }

    #[test]
    fn match_filters_by_severity_source_and_fingerprint() {
        let j = job(&format!(
            r#"{}, match = {{ severity = ["critical", "warning"], source = ["service"], fingerprint = ["system:service:api*"] }}"#,
            three("")
        ))
        .unwrap();
        let alert = |severity, source, fingerprint: &str| Alert {
            id: 1,
            fingerprint: fingerprint.into(),
            source,
            subject: "api".into(),
            severity,
            status: AlertStatus::Open,
            message: "down".into(),
            opened_at: Utc::now(),
            acknowledged_at: None,
            acknowledged_by: None,
            resolved_at: None,
            resolution_note: None,
            escalation_level: 0,
            last_escalated_at: None,
            last_notified_at: None,
        };
        use AlertSource::*;
        use Severity::*;
        assert!(j
            .matching
            .matches(&alert(Critical, Service, "system:service:api")));
        assert!(j
            .matching
            .matches(&alert(Warning, Service, "system:service:api-2")));
        assert!(!j
            .matching
            .matches(&alert(Info, Service, "system:service:api")));
        assert!(!j
            .matching
            .matches(&alert(Critical, Job, "system:service:api")));
        assert!(!j
            .matching
            .matches(&alert(Critical, Service, "system:service:db")));
        assert!(job(&three(""))
            .unwrap()
            .matching
            .matches(&alert(Info, Job, "job:x")));
    }
}
