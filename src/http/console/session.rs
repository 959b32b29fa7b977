//! Who is using the console, and the guard on every console write.
//!
//! With `[api.tokens]` declared, a visitor signs in on `/login` with a
//! token (checked as the API checks a bearer token, `super::super::auth`);
//! that sets a session cookie (`HttpOnly`, `SameSite=Strict`, `Secure` when
//! the request came over https or `public_url` is https) holding a random
//! id, of which `console_sessions` stores only the SHA-256. The session's
//! role is the token's, read from the tokens loaded at start at each
//! request, so a token removed from the file ends its sessions at the next
//! start. Without tokens the server listens on loopback only and every
//! visitor is an operator (`local`), as in the API; no login is shown.
//!
//! Every write (POST) must come from the console's own pages: the API's
//! cross-site check (`Sec-Fetch-Site`, else `Origin`) and a CSRF token in
//! the form, derived from the session id (or, without tokens, from a key
//! drawn at start), compared in constant time. Either missing: 403.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::LazyLock;

use axum::body::{to_bytes, Body};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::TimeDelta;
use serde::Serialize;
use subtle::ConstantTimeEq;

use super::view::{render, ConsoleError, Fragment, PageResult};
use crate::config::{sha256, Role};
use crate::http::auth::{cross_site, find_token, Caller};
use crate::http::{ApiError, AppState, BODY_LIMIT};

/// The session cookie's name.
pub const COOKIE: &str = "ops_console";
/// How long a sign-in lasts.
pub const SESSION_LENGTH: TimeDelta = TimeDelta::hours(12);

/// What a console page knows about its visitor; templates see it as `session`.
#[derive(Debug, Clone, Serialize)]
pub struct Session {
    pub name: String,
    pub role: Role,
    pub may_write: bool,
    /// The value every form of this session carries as `csrf`.
    pub csrf: String,
    /// Signed in with a token (false: loopback without tokens).
    pub signed_in: bool,
    #[serde(skip)]
    pub caller: Caller,
}

/// The fields of a write's form, parsed by [`require`] (which checks its
/// `csrf`); handlers read the rest.
#[derive(Debug, Clone, Default)]
pub struct Fields(pub HashMap<String, String>);

impl Fields {
    /// A field's value, trimmed; `None` when absent or blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 32 random bytes, hex: a session id, or the key of the tokenless mode.
fn random_id() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| {
        tracing::error!(error = %e, "console: the system's random source failed");
        no_randomness()
    })?;
    Ok(hex(&bytes))
}

fn no_randomness() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "no_randomness",
        "the system's random source failed; try again",
    )
}

/// The CSRF token of the session with cookie id `id`.
fn csrf_for(id: &str) -> String {
    hex(&sha256(format!("ops-worker console csrf\n{id}").as_bytes()))
}

/// Without tokens there is no session: one key per process (`None` if the
/// system's random source failed: then no page is served rather than one
/// with a guessable token).
static LOCAL_KEY: LazyLock<Option<String>> = LazyLock::new(|| random_id().ok());

fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

fn source(req: &Request) -> String {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_string(), |c| c.0.to_string())
}

/// Whether the cookie must be `Secure`: the request came over https (as a
/// reverse proxy says) or the server's public address is https.
fn secure(s: &AppState, headers: &HeaderMap) -> bool {
    let proxied = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    proxied
        || s.api
            .public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
}

fn set_cookie(value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("ops_console=; Max-Age=0"))
}

/// The session of a request, if it has one (always, without tokens).
async fn session_of(
    s: &AppState,
    headers: &HeaderMap,
    source: String,
) -> Result<Option<Session>, ApiError> {
    if s.api.tokens.is_empty() {
        let caller = Caller {
            name: "local".to_string(),
            role: Role::Operator,
            source,
        };
        return Ok(Some(Session {
            name: caller.name.clone(),
            role: caller.role,
            may_write: true,
            csrf: csrf_for(LOCAL_KEY.as_deref().ok_or_else(no_randomness)?),
            signed_in: false,
            caller,
        }));
    }
    let Some(id) = cookie_value(headers, COOKIE) else {
        return Ok(None);
    };
    let hash = hex(&sha256(id.as_bytes()));
    let Some(name) = s.db.session_token(&hash, s.clock.now()).await? else {
        return Ok(None);
    };
    let Some(token) = s.api.tokens.iter().find(|t| t.name == name) else {
        return Ok(None);
    };
    let caller = Caller {
        name: token.name.clone(),
        role: token.role,
        source,
    };
    Ok(Some(Session {
        name: caller.name.clone(),
        role: caller.role,
        may_write: caller.may_write(),
        csrf: csrf_for(id),
        signed_in: true,
        caller,
    }))
}

fn forbidden(message: &str) -> Response {
    ConsoleError(ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)).into_response()
}

/// The form of a POST, read whole (within the API's body limit).
async fn read_form(req: Request) -> Result<(Request, Fields), Response> {
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, BODY_LIMIT).await.map_err(|_| {
        ConsoleError(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the form is larger than {BODY_LIMIT} bytes"),
        ))
        .into_response()
    })?;
    let fields = Fields(
        form_urlencoded::parse(&bytes)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
    );
    Ok((Request::from_parts(parts, Body::from(bytes)), fields))
}

/// Middleware of every console page and write: finds the session (or sends
/// the visitor to `/login`) and guards writes.
pub async fn require(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let headers = req.headers().clone();
    let session = match session_of(&s, &headers, source(&req)).await {
        Ok(Some(session)) => session,
        Ok(None) if req.method().is_safe() => return Redirect::to("/login").into_response(),
        Ok(None) => {
            return ConsoleError(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "sign in first",
            ))
            .into_response()
        }
        Err(e) => return ConsoleError(e).into_response(),
    };
    let mut req = req;
    if !req.method().is_safe() {
        if cross_site(req.headers()) {
            return forbidden("cross-site write refused: use the console's own pages");
        }
        let (r, fields) = match read_form(req).await {
            Ok(x) => x,
            Err(resp) => return resp,
        };
        let presented = fields.0.get("csrf").map(String::as_str).unwrap_or("");
        if !bool::from(presented.as_bytes().ct_eq(session.csrf.as_bytes())) {
            return forbidden(
                "the form's CSRF token is missing or wrong: reload the page and try again",
            );
        }
        req = r;
        req.extensions_mut().insert(fields);
    }
    req.extensions_mut().insert(session.caller.clone());
    req.extensions_mut().insert(session);
    next.run(req).await
}

#[derive(Serialize)]
struct LoginPage<'a> {
    error: Option<&'a str>,
}

/// `GET /login`: the token form (straight to the overview without tokens).
pub async fn login_page(State(s): State<AppState>, fragment: Fragment) -> PageResult {
    if s.api.tokens.is_empty() {
        return Ok(Redirect::to("/").into_response());
    }
    render(
        "login.html",
        fragment,
        StatusCode::OK,
        LoginPage { error: None },
    )
}

/// `POST /login` `token=...`: a session for the token, or the form again
/// with 401 and no detail.
pub async fn login(State(s): State<AppState>, req: Request) -> PageResult {
    if s.api.tokens.is_empty() {
        return Ok(Redirect::to("/").into_response());
    }
    if cross_site(req.headers()) {
        return Ok(forbidden("cross-site sign-in refused"));
    }
    let headers = req.headers().clone();
    let (_, fields) = match read_form(req).await {
        Ok(x) => x,
        Err(resp) => return Ok(resp),
    };
    let Some(token) = fields
        .get("token")
        .and_then(|t| find_token(&s.api.tokens, t))
    else {
        return render(
            "login.html",
            Fragment(false),
            StatusCode::UNAUTHORIZED,
            LoginPage {
                error: Some("that token is not valid"),
            },
        );
    };
    let id = random_id()?;
    let now = s.clock.now();
    s.db.create_session(
        &hex(&sha256(id.as_bytes())),
        &token.name,
        now,
        now + SESSION_LENGTH,
    )
    .await?;
    let mut resp = Redirect::to("/").into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(&id, SESSION_LENGTH.num_seconds(), secure(&s, &headers)),
    );
    Ok(resp)
}

/// `POST /logout`: ends the session and clears the cookie.
pub async fn logout(State(s): State<AppState>, headers: HeaderMap) -> PageResult {
    if let Some(id) = cookie_value(&headers, COOKIE) {
        s.db.delete_session(&hex(&sha256(id.as_bytes()))).await?;
    }
    let target = if s.api.tokens.is_empty() {
        "/"
    } else {
        "/login"
    };
    let mut resp = Redirect::to(target).into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, set_cookie("", 0, secure(&s, &headers)));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_cookie() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; ops_console=abc ; b=2"),
        );
        assert_eq!(cookie_value(&h, COOKIE), Some("abc"));
        assert_eq!(cookie_value(&h, "c"), None);
    }

    #[test]
    fn csrf_differs_per_session_and_from_the_stored_hash() {
        assert_ne!(csrf_for("a"), csrf_for("b"));
        assert_ne!(csrf_for("a"), hex(&sha256(b"a")));
    }

    #[test]
    fn cookie_flags() {
        let v = set_cookie("x", 60, true);
        let v = v.to_str().unwrap();
        assert!(v.contains("HttpOnly") && v.contains("SameSite=Strict") && v.contains("Secure"));
        assert!(!set_cookie("x", 60, false)
            .to_str()
            .unwrap()
            .contains("Secure"));
    }
}
