//! Who is calling: the bearer token checked against `[api.tokens.NAME]`,
//! or, with no token declared (loopback only), everyone as an operator.
//!
//! A presented token is hashed with SHA-256 and the digest compared with
//! every declared digest in constant time (`subtle`), all of them, so
//! neither the timing nor the order of tokens tells anything. A token is
//! never logged: a failure is a bare 401.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::AppState;
use crate::config::{sha256, ApiToken, Role};

/// The caller of a request, put in its extensions by [`authenticate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's name, or `local` without tokens.
    pub name: String,
    pub role: Role,
    /// The client's address as the server saw it.
    pub source: String,
}

impl Caller {
    pub fn may_write(&self) -> bool {
        self.role == Role::Operator
    }
}

/// The token in `Authorization: Bearer TOKEN`, if that is its form.
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The declared token whose digest matches `presented`'s, if any.
pub fn find_token<'t>(tokens: &'t [ApiToken], presented: &str) -> Option<&'t ApiToken> {
    let digest = sha256(presented.as_bytes());
    let mut found = None;
    for t in tokens {
        if bool::from(t.digest.ct_eq(&digest)) {
            found = Some(t);
        }
    }
    found
}

/// Whether a write comes from a page of another site, as browsers say:
/// `Sec-Fetch-Site` (sent by every current browser), else an `Origin` whose
/// host and port differ from the request's `Host`. A browser sends a form's
/// or a script's cross-site POST with the user's network position (the
/// loopback mode below has no token to withhold), so such writes are
/// refused; clients that are not browsers send neither header.
pub(super) fn cross_site(req: &Request) -> bool {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    match (header("origin"), header("host")) {
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_none_or(|(_, authority)| !authority.eq_ignore_ascii_case(host)),
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// Middleware of every `/api/v1` route.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if !req.method().is_safe() && cross_site(&req) {
        return ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "cross_site",
            "cross-site write refused (Origin / Sec-Fetch-Site): call the API from a client, not from another site's page",
        )
        .into_response();
    }
    let source = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_string(), |c| c.0.to_string());
    let tokens = &state.api.tokens;
    let caller = if tokens.is_empty() {
        // Only ever bound to loopback (see `super::check_bind`).
        Caller {
            name: "local".to_string(),
            role: Role::Operator,
            source,
        }
    } else {
        let presented = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer);
        match presented.and_then(|p| find_token(tokens, p)) {
            Some(t) => Caller {
                name: t.name.clone(),
                role: t.role,
                source,
            },
            None => return ApiError::unauthorized().into_response(),
        }
    };
    req.extensions_mut().insert(caller);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_forms() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("abc"), None);
    }

    #[test]
    fn finds_by_digest() {
        let tokens = vec![
            ApiToken {
                name: "a".into(),
                role: Role::Viewer,
                digest: sha256(b"first-token-0123456"),
            },
            ApiToken {
                name: "b".into(),
                role: Role::Operator,
                digest: sha256(b"second-token-0123456"),
            },
        ];
        assert_eq!(
            find_token(&tokens, "second-token-0123456").unwrap().name,
            "b"
        );
        assert_eq!(
            find_token(&tokens, "first-token-0123456").unwrap().name,
            "a"
        );
        assert!(find_token(&tokens, "first-token-012345").is_none());
    }
}
