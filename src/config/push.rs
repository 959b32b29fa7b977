//! The keys of a `push` job (`grace`, `token`): read here, beside the other
//! keys ops-worker reads in `[jobs.NAME]` (`JOB_KEYS` in `job.rs`), because
//! the HTTP signals need them and the jobs crate cannot hand them back. What
//! a push job is and does: `ops_worker_jobs::push` and docs/kinds.md.

use std::fmt;
use std::time::Duration;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::api::sha256;
use super::cx::{Cx, Span};

/// A push token shorter than this is refused (the same floor as API tokens).
pub const MIN_PUSH_TOKEN_LEN: usize = 16;
/// `grace` when the job does not set it.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(300);

/// The keys of a `[jobs.NAME]` table about running a slot here (overlap,
/// catch-up, retries, jitter): a push job's runs happen elsewhere and
/// arrive as signals, so none of them applies to it.
pub(super) const NOT_FOR_PUSH: &[&str] = &[
    "overlap",
    "catch_up",
    "catch_up_window",
    "retries",
    "retry_backoff",
    "retry_abandoned",
    "jitter",
];

/// What a `push` job adds to a [`super::JobSpec`].
#[derive(Clone, PartialEq, Eq)]
pub struct PushSpec {
    /// How early before a slot, or how late after it, a signal still counts
    /// for that slot; and how long after a slot with no signal it is missed.
    pub grace: Duration,
    /// SHA-256 of the job's token: the token itself is kept nowhere, so it
    /// can reach no log, error or page.
    pub token_digest: [u8; 32],
}

impl PushSpec {
    /// Whether `presented` is the job's token, in constant time.
    pub fn token_matches(&self, presented: &str) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(self.token_digest.ct_eq(&sha256(presented.as_bytes())))
    }
}

impl fmt::Debug for PushSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushSpec")
            .field("grace", &self.grace)
            .field("token_digest", &"<redacted>")
            .finish()
    }
}

type Value<'a> = Spanned<DeValue<'a>>;

impl Cx<'_> {
    /// For push job `name`: reports each key of [`NOT_FOR_PUSH`] set in its
    /// own `table` and takes it out (so it is reported once, not also
    /// checked), and returns `defaults` without them: `[defaults]` sets
    /// them for the jobs that run here.
    pub(super) fn keys_not_for_push<'a>(
        &mut self,
        name: &str,
        table: &mut DeTable<'a>,
        defaults: &DeTable<'a>,
    ) -> DeTable<'a> {
        let mut defaults = defaults.clone();
        for key in NOT_FOR_PUSH {
            defaults.remove(*key);
            if let Some((k, _)) = table.remove_entry(*key) {
                let msg = format!("push jobs run elsewhere; {key} does not apply");
                self.problem(k.span(), Some(name), Some(key), msg);
            }
        }
        defaults
    }

    /// `grace` and `token` of job `name` of kind `kind`: required (token)
    /// and checked for a push job, refused on any other kind. `None` for a
    /// job of another kind, or when a problem was reported.
    pub(super) fn push_keys(
        &mut self,
        name: &str,
        name_span: Span,
        kind: Option<&str>,
        grace: Option<(Span, Value<'_>)>,
        token: Option<(Span, Value<'_>)>,
    ) -> Option<PushSpec> {
        let job = Some(name);
        if kind != Some("push") {
            if kind.is_some() {
                for (key, k) in [("grace", &grace), ("token", &token)] {
                    if let Some((span, _)) = k {
                        let msg = format!("{key:?} is a key of kind \"push\" only");
                        self.problem(span.clone(), job, Some(key), msg);
                    }
                }
            }
            return None;
        }
        let grace = match &grace {
            Some((_, v)) => self.duration(job, "grace", v).and_then(|d| {
                if d.is_zero() || d.subsec_nanos() != 0 {
                    let msg = "must be a whole number of seconds, at least 1s";
                    self.problem(v.span(), job, Some("grace"), msg);
                    None
                } else {
                    Some(d)
                }
            }),
            None => Some(DEFAULT_GRACE),
        };
        let token = match &token {
            None => {
                let msg = "missing key \"token\": a push job needs one, e.g. token = \"${BACKUP_PING_TOKEN}\"";
                self.problem(name_span, job, None, msg);
                None
            }
            Some((_, v)) => self.string(job, "token", v).and_then(|t| {
                // Never echoed: the message names the place, not the value.
                if t.trim().chars().count() < MIN_PUSH_TOKEN_LEN {
                    let msg = format!(
                        "a token must have at least {MIN_PUSH_TOKEN_LEN} characters (e.g. `openssl rand -hex 32`)"
                    );
                    self.problem(v.span(), job, Some("token"), msg);
                    return None;
                }
                if t.trim() != t || t.contains('/') {
                    let msg = "a token must not contain \"/\" or start or end with a space (it is part of the URL)";
                    self.problem(v.span(), job, Some("token"), msg);
                    return None;
                }
                let written = self.text.get(v.span()).unwrap_or_default();
                if !written.contains("${") {
                    let msg = "the token is written in the file: set it from the environment (token = \"${VAR}\") so the secret stays out of schedules.toml";
                    self.warning(v.span(), job, msg);
                }
                Some(sha256(t.as_bytes()))
            }),
        };
        Some(PushSpec {
            grace: grace?,
            token_digest: token?,
        })
    }
}
