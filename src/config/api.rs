//! The `[api]` table of schedules.toml: who may use the HTTP API
//! (`[api.tokens.NAME]`) and the address acknowledge links point at
//! (`public_url`, `ack_link_ttl`). This file owns reading and checking them; `src/http`
//! owns using them.
//!
//! ```toml
//! [api]
//! public_url = "https://ops.example.com"   # optional; OPS_WORKER_PUBLIC_URL overrides
//! ack_link_ttl = "24h"                      # optional; how long acknowledge links last
//!
//! [api.tokens.grafana]
//! role = "viewer"                # "viewer" (reads) or "operator" (reads and writes)
//! token = "${GRAFANA_API_TOKEN}" # the token itself, from the environment
//!
//! [api.tokens.alice]
//! role = "operator"
//! sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
//! ```
//!
//! A `token` that is empty (an unset `${VAR:-}`) declares nothing. Only
//! the SHA-256 of a token is kept in memory: a `token` is hashed as
//! it is read, so neither `Debug` nor an error can show it.

use std::fmt;

use serde::Deserialize;
use toml::de::{DeTable, DeValue};

use super::cx::Span;
use super::{keys, Cx, Section};

/// The keys of `[api]`.
const KEYS: &[&str] = &["public_url", "ack_link_ttl", "tokens"];

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads only.
    Viewer,
    /// Reads and writes (run now, pause, resume, acknowledge, resolve).
    Operator,
}

/// One `[api.tokens.NAME]`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub name: String,
    pub role: Role,
    /// SHA-256 of the token.
    pub digest: [u8; 32],
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiToken")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("digest", &"***")
            .finish()
    }
}

/// The `[api]` table, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiConfig {
    /// In name order.
    pub tokens: Vec<ApiToken>,
    /// `public_url`, without a trailing `/`.
    pub public_url: Option<String>,
    /// `ack_link_ttl`: how long an acknowledge link is valid (default
    /// `crate::ack_link::DEFAULT_TTL`).
    pub ack_link_ttl: Option<std::time::Duration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenTable {
    role: Role,
    token: Option<String>,
    sha256: Option<String>,
}

/// Tokens shorter than this are refused: a guessable token is no lock.
const MIN_TOKEN_LEN: usize = 16;

impl Cx<'_> {
    pub(super) fn api(&mut self, key_span: Span, value: DeValue<'_>) -> ApiConfig {
        let DeValue::Table(table) = value else {
            self.problem(key_span, None, Some("api"), "must be a table: [api]");
            return ApiConfig::default();
        };
        let mut api = ApiConfig::default();
        for (key, value) in table {
            match key.get_ref().as_ref() {
                "public_url" => {
                    if let Some(url) = self.string(None, "api.public_url", &value) {
                        match public_url(&url) {
                            Ok(u) => api.public_url = Some(u),
                            Err(msg) => {
                                self.problem(value.span(), None, Some("api.public_url"), msg)
                            }
                        }
                    }
                }
                "ack_link_ttl" => {
                    if let Some(d) = self.duration(None, "api.ack_link_ttl", &value) {
                        if d.is_zero() {
                            self.problem(
                                value.span(),
                                None,
                                Some("api.ack_link_ttl"),
                                "must be longer than 0s",
                            );
                        } else {
                            api.ack_link_ttl = Some(d);
                        }
                    }
                }
                "tokens" => match value.into_inner() {
                    DeValue::Table(t) => api.tokens = self.tokens(t),
                    _ => self.problem(
                        key.span(),
                        None,
                        Some("api.tokens"),
                        "must be a table of tokens: [api.tokens.NAME]",
                    ),
                },
                other => self.problem(
                    key.span(),
                    None,
                    None,
                    keys::unknown_key(other, " in [api]", KEYS),
                ),
            }
        }
        api
    }

    fn tokens(&mut self, table: DeTable<'_>) -> Vec<ApiToken> {
        let mut tokens: Vec<ApiToken> = Vec::new();
        for (name, name_span, t) in self.named(table, Section::ApiToken, "[api.tokens.NAME]") {
            let section = Section::ApiToken(name.clone());
            let token_span = t.get("token").map(|v| v.span());
            let sha_span = t.get("sha256").map(|v| v.span());
            let Some(raw) = self.typed::<TokenTable>(&section, name_span.clone(), t) else {
                continue;
            };
            let digest = match (raw.token, raw.sha256) {
                // An unset `${VAR:-}`: this token is not declared, so a
                // shipped file can name one that only some installs set.
                (Some(token), None) if token.trim().is_empty() => continue,
                (Some(token), None) => {
                    if token.trim().len() < MIN_TOKEN_LEN {
                        self.problem_in(
                            token_span.unwrap_or(name_span),
                            Some(section),
                            Some("token"),
                            format!("a token must have at least {MIN_TOKEN_LEN} characters (e.g. `openssl rand -hex 32`)"),
                        );
                        continue;
                    }
                    sha256(token.trim().as_bytes())
                }
                (None, Some(hex)) => match parse_hex32(hex.trim()) {
                    Some(d) => d,
                    None => {
                        self.problem_in(
                            sha_span.unwrap_or(name_span),
                            Some(section),
                            Some("sha256"),
                            "expected 64 hex digits (what `printf %s TOKEN | sha256sum` prints)",
                        );
                        continue;
                    }
                },
                (Some(_), Some(_)) => {
                    self.problem_in(
                        name_span,
                        Some(section),
                        None,
                        "set either \"token\" or \"sha256\", not both",
                    );
                    continue;
                }
                (None, None) => {
                    self.problem_in(
                        name_span,
                        Some(section),
                        None,
                        "missing key \"token\" (the token, e.g. \"${OPS_API_TOKEN}\") or \"sha256\" (its SHA-256)",
                    );
                    continue;
                }
            };
            if let Some(other) = tokens.iter().find(|t| t.digest == digest) {
                let msg = format!("the same token as [api.tokens.{}]", other.name);
                self.problem_in(name_span, Some(section), None, msg);
                continue;
            }
            tokens.push(ApiToken {
                name,
                role: raw.role,
                digest,
            });
        }
        tokens.sort_by(|a, b| a.name.cmp(&b.name));
        tokens
    }
}

/// `public_url`: an absolute http(s) URL without query or fragment; the
/// trailing `/` is dropped.
pub fn public_url(s: &str) -> Result<String, String> {
    use ops_worker_jobs::reqwest::Url;
    let url = Url::parse(s.trim()).map_err(|e| format!("invalid URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http:// or https:// URL".to_string());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must have no query or fragment".to_string());
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}
