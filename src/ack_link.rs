//! One-click acknowledge links: the signed token that lets the person a
//! page was sent to acknowledge its alert from the message itself.
//!
//! This file owns the secret (`OPS_WORKER_SECRET`, read from the
//! environment only), the public address the links point at
//! (`[api] public_url`, or `OPS_WORKER_PUBLIC_URL` over it), their
//! lifetime (`[api] ack_link_ttl`), and signing and checking a token. It
//! knows nothing of HTTP (`src/http/ack.rs` serves the links) or of the
//! outbox (`src/notify` puts a link in each message it sends).
//!
//! A token is the URL-safe base64 (no padding) of
//! `alert id (8 bytes) | expiry in Unix seconds (8 bytes) | recipient`
//! followed by the HMAC-SHA256 of those bytes (with a fixed prefix that
//! names what they are), so it is bound to one alert, one recipient (the
//! outbox target the message went to) and one expiry; changing any byte
//! makes the MAC fail, which is checked in constant time (`hmac`'s
//! `verify_slice`). The secret never leaves this file: `Debug` shows
//! `***` and no error contains it.

use std::fmt;
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::config::ApiConfig;

/// The environment variable that holds the signing secret.
pub const SECRET_VAR: &str = "OPS_WORKER_SECRET";
/// The environment variable that overrides `[api] public_url`.
pub const PUBLIC_URL_VAR: &str = "OPS_WORKER_PUBLIC_URL";
/// The shortest secret taken, in bytes: 256 bits.
pub const MIN_SECRET_LEN: usize = 32;
/// How long a link stays valid without `[api] ack_link_ttl`.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);

/// What the MAC covers before the token's bytes, so a MAC made with the
/// same secret for anything else can never pass for a link.
const DOMAIN: &[u8] = b"ops-worker ack link v1\0";
const MAC_LEN: usize = 32;
/// Alert id and expiry.
const HEAD_LEN: usize = 16;
const ENGINE: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

type HmacSha256 = Hmac<Sha256>;

/// Why acknowledge links cannot be set up as configured.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{SECRET_VAR}: must be at least {MIN_SECRET_LEN} bytes of randomness (e.g. `openssl rand -hex 32`), found {0}")]
    ShortSecret(usize),
    #[error("{PUBLIC_URL_VAR}: {0}")]
    PublicUrl(String),
}

/// Makes and checks acknowledge links. Present only when both the public
/// address and the secret are set.
#[derive(Clone)]
pub struct AckLinks {
    key: Vec<u8>,
    /// Without a trailing `/`.
    public_url: String,
    ttl: Duration,
}

impl fmt::Debug for AckLinks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AckLinks")
            .field("key", &"***")
            .field("public_url", &self.public_url)
            .field("ttl", &self.ttl)
            .finish()
    }
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub alert_id: i64,
    /// The outbox target the link was sent to: who acknowledges.
    pub recipient: String,
    pub expires_at: DateTime<Utc>,
}

/// Why a token is refused. The page shows none of it; tests and logs may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("not a token")]
    Malformed,
    #[error("bad signature")]
    Signature,
    #[error("expired")]
    Expired,
}

impl AckLinks {
    /// Links with `secret`, pointing at `public_url` (checked as
    /// `[api] public_url` is), valid for `ttl`.
    pub fn new(secret: &str, public_url: &str, ttl: Duration) -> Result<AckLinks, SetupError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(SetupError::ShortSecret(secret.len()));
        }
        let public_url = crate::config::public_url(public_url).map_err(SetupError::PublicUrl)?;
        Ok(AckLinks {
            key: secret.as_bytes().to_vec(),
            public_url,
            ttl,
        })
    }

    /// The links of this process: `None` unless both a public address
    /// (`OPS_WORKER_PUBLIC_URL`, else `[api] public_url`) and
    /// `OPS_WORKER_SECRET` are set (an empty variable counts as unset).
    /// `env` looks variables up (the process environment, or a test's).
    pub fn from_env(
        api: &ApiConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<AckLinks>, SetupError> {
        let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let secret = set(SECRET_VAR);
        if let Some(s) = &secret {
            if s.len() < MIN_SECRET_LEN {
                return Err(SetupError::ShortSecret(s.len()));
            }
        }
        let url = match set(PUBLIC_URL_VAR) {
            Some(u) => Some(crate::config::public_url(&u).map_err(SetupError::PublicUrl)?),
            None => api.public_url.clone(),
        };
        let ttl = api.ack_link_ttl.unwrap_or(DEFAULT_TTL);
        match (secret, url) {
            (Some(secret), Some(url)) => AckLinks::new(&secret, &url, ttl).map(Some),
            _ => Ok(None),
        }
    }

    /// [`AckLinks::from_env`] with the process environment, said at start
    /// ([`AckLinks::announce`]): what `run` and `serve` use.
    pub fn for_process(api: &ApiConfig) -> Result<Option<std::sync::Arc<AckLinks>>, SetupError> {
        let env = |name: &str| std::env::var(name).ok();
        let links = AckLinks::from_env(api, &env)?;
        AckLinks::announce(links.as_ref(), api, &env);
        Ok(links.map(std::sync::Arc::new))
    }

    /// Logs at start whether messages carry acknowledge links, and why not
    /// when only half of what they need is set.
    pub fn announce(
        links: Option<&AckLinks>,
        api: &ApiConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) {
        let set = |name: &str| env(name).is_some_and(|v| !v.trim().is_empty());
        match links {
            Some(l) => tracing::info!(
                public_url = %l.public_url,
                ttl = %humantime::format_duration(l.ttl),
                "acknowledge links on: messages about open alerts carry a signed link"
            ),
            None if set(SECRET_VAR) => tracing::warn!(
                "{SECRET_VAR} is set but no public address is ([api] public_url or {PUBLIC_URL_VAR}): messages carry no acknowledge link"
            ),
            None if api.public_url.is_some() || set(PUBLIC_URL_VAR) => tracing::warn!(
                "a public address is set but {SECRET_VAR} is not: messages carry no acknowledge link"
            ),
            None => {}
        }
    }

    /// How long a link is valid.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The token for `alert_id` and `recipient`, valid until `expires_at`.
    pub fn token(&self, alert_id: i64, recipient: &str, expires_at: DateTime<Utc>) -> String {
        let mut bytes = Vec::with_capacity(HEAD_LEN + recipient.len() + MAC_LEN);
        bytes.extend_from_slice(&alert_id.to_be_bytes());
        bytes.extend_from_slice(&expires_at.timestamp().to_be_bytes());
        bytes.extend_from_slice(recipient.as_bytes());
        let mac = self.mac(&bytes).finalize().into_bytes();
        bytes.extend_from_slice(&mac);
        ENGINE.encode(bytes)
    }

    /// The link for a message about `alert_id` to `recipient`, made at
    /// `since` (the notification's creation, so every attempt to send it
    /// carries the same link): `PUBLIC_URL/ack/TOKEN`.
    pub fn url(&self, alert_id: i64, recipient: &str, since: DateTime<Utc>) -> String {
        let expires_at =
            since + chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::MAX);
        format!(
            "{}/ack/{}",
            self.public_url,
            self.token(alert_id, recipient, expires_at)
        )
    }

    /// What `token` says, if this process signed it and it has not expired
    /// at `now`.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Claim, Invalid> {
        let bytes = ENGINE.decode(token).map_err(|_| Invalid::Malformed)?;
        if bytes.len() < HEAD_LEN + MAC_LEN {
            return Err(Invalid::Malformed);
        }
        let (signed, mac) = bytes.split_at(bytes.len() - MAC_LEN);
        self.mac(signed)
            .verify_slice(mac)
            .map_err(|_| Invalid::Signature)?;
        let (head, recipient) = signed.split_at(HEAD_LEN);
        let (id, expiry) = head.split_at(8);
        let alert_id = i64::from_be_bytes(id.try_into().map_err(|_| Invalid::Malformed)?);
        let expiry = i64::from_be_bytes(expiry.try_into().map_err(|_| Invalid::Malformed)?);
        let expires_at = DateTime::from_timestamp(expiry, 0).ok_or(Invalid::Malformed)?;
        let recipient = String::from_utf8(recipient.to_vec()).map_err(|_| Invalid::Malformed)?;
        if now >= expires_at {
            return Err(Invalid::Expired);
        }
        Ok(Claim {
            alert_id,
            recipient,
            expires_at,
        })
    }

    fn mac(&self, bytes: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes a key of any size");
        mac.update(DOMAIN);
        mac.update(bytes);
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn links() -> AckLinks {
        AckLinks::new(SECRET, "https://ops.example.com/", DEFAULT_TTL).unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn a_link_verifies_until_it_expires() {
        let l = links();
        let sent = at("2026-05-01T10:00:00Z");
        let url = l.url(42, "alice-phone", sent);
        let token = url
            .strip_prefix("https://ops.example.com/ack/")
            .expect(&url);
        assert!(!token.contains(['/', '+', '=', '?']), "{token}");
        let claim = l.verify(token, sent).unwrap();
        assert_eq!(
            claim,
            Claim {
                alert_id: 42,
                recipient: "alice-phone".into(),
                expires_at: at("2026-05-02T10:00:00Z"),
            }
        );
        assert!(l.verify(token, at("2026-05-02T09:59:59Z")).is_ok());
        assert_eq!(
            l.verify(token, at("2026-05-02T10:00:00Z")),
            Err(Invalid::Expired)
        );
    }

    #[test]
    fn any_changed_byte_or_another_secret_fails() {
        let l = links();
        let now = at("2026-05-01T10:00:00Z");
        let token = l.token(42, "alice", at("2026-05-02T10:00:00Z"));
        let bytes = ENGINE.decode(&token).unwrap();
        for i in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[i] ^= 1;
            assert!(l.verify(&ENGINE.encode(&changed), now).is_err(), "byte {i}");
        }
        // The recipient or alert swapped for another's.
        let other = l.token(43, "bob", at("2026-05-02T10:00:00Z"));
        let mut spliced = ENGINE.decode(&other).unwrap();
        spliced.truncate(spliced.len() - MAC_LEN);
        spliced.extend_from_slice(&bytes[bytes.len() - MAC_LEN..]);
        assert_eq!(
            l.verify(&ENGINE.encode(&spliced), now),
            Err(Invalid::Signature)
        );
        let elsewhere =
            AckLinks::new(&SECRET.repeat(2), "https://ops.example.com", DEFAULT_TTL).unwrap();
        assert_eq!(elsewhere.verify(&token, now), Err(Invalid::Signature));
        for junk in ["", "abc", "!!!!", &"A".repeat(100)] {
            assert!(l.verify(junk, now).is_err(), "{junk}");
        }
    }

    #[test]
    fn set_up_from_the_environment() {
        let mut api = ApiConfig::default();
        let env = |secret: Option<&'static str>, url: Option<&'static str>| {
            move |name: &str| match name {
                SECRET_VAR => secret.map(String::from),
                PUBLIC_URL_VAR => url.map(String::from),
                _ => None,
            }
        };
        // Either half alone: no links.
        assert!(AckLinks::from_env(&api, &env(Some(SECRET), None))
            .unwrap()
            .is_none());
        assert!(
            AckLinks::from_env(&api, &env(None, Some("https://a.example")))
                .unwrap()
                .is_none()
        );
        api.public_url = Some("https://file.example".into());
        api.ack_link_ttl = Some(Duration::from_secs(3600));
        let l = AckLinks::from_env(&api, &env(Some(SECRET), None))
            .unwrap()
            .unwrap();
        assert_eq!(
            (l.public_url.as_str(), l.ttl),
            ("https://file.example", Duration::from_secs(3600))
        );
        // The variable wins over the file.
        let l = AckLinks::from_env(&api, &env(Some(SECRET), Some("https://env.example/ops/")))
            .unwrap()
            .unwrap();
        assert_eq!(l.public_url, "https://env.example/ops");
        // An empty variable is unset.
        assert!(AckLinks::from_env(&api, &env(Some(" "), None))
            .unwrap()
            .is_none());

        let e = AckLinks::from_env(&api, &env(Some("short-secret"), None)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "OPS_WORKER_SECRET: must be at least 32 bytes of randomness (e.g. `openssl rand -hex 32`), found 12"
        );
        assert!(!e.to_string().contains("short-secret"));
        let e = AckLinks::from_env(&api, &env(Some(SECRET), Some("ftp://x"))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "OPS_WORKER_PUBLIC_URL: must be an http:// or https:// URL"
        );
        assert!(!format!("{l:?}").contains(SECRET));
    }
}
