//! Query strings: each parameter parsed on its own, so a bad one gets a 400
//! that names it, and one the route does not take is refused rather than
//! ignored (a misspelt `stauts=failed` would otherwise list every run).

use std::collections::HashMap;
use std::str::FromStr;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use chrono::{DateTime, Utc};

use super::error::ApiError;

/// The query string of a request.
pub struct Params(HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_param("query", e.body_text()))?;
        let mut map = HashMap::new();
        for (k, v) in pairs {
            if map.insert(k.clone(), v).is_some() {
                return Err(ApiError::bad_param(&k, "given more than once"));
            }
        }
        Ok(Params(map))
    }
}

impl Params {
    /// Refuses parameters not in `allowed`.
    pub fn only(&self, allowed: &[&str]) -> Result<(), ApiError> {
        let mut unknown: Vec<&String> = self
            .0
            .keys()
            .filter(|k| !allowed.contains(&k.as_str()))
            .collect();
        unknown.sort();
        match unknown.first() {
            None => Ok(()),
            Some(k) => Err(ApiError::bad_param(
                k,
                if allowed.is_empty() {
                    "this route takes no parameters".to_string()
                } else {
                    format!(
                        "unknown parameter (this route takes: {})",
                        allowed.join(", ")
                    )
                },
            )),
        }
    }

    pub fn str(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A whole number in `min..=max`, or `default` when absent.
    pub fn int(&self, name: &str, min: i64, max: i64, default: i64) -> Result<i64, ApiError> {
        match self.str(name) {
            None => Ok(default),
            Some(s) => s
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| {
                    ApiError::bad_param(
                        name,
                        format!("expected a whole number from {min} to {max}"),
                    )
                }),
        }
    }

    /// `true` or `false`, or `default` when absent.
    pub fn bool(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.str(name).map(str::trim) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(_) => Err(ApiError::bad_param(name, "expected true or false")),
        }
    }

    /// An RFC 3339 time.
    pub fn time(&self, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        self.str(name)
            .map(|s| {
                DateTime::parse_from_rfc3339(s.trim())
                    .map(|t| t.to_utc())
                    .map_err(|e| {
                        ApiError::bad_param(
                            name,
                            format!("expected an RFC 3339 time such as 2026-11-24T10:00:00Z ({e})"),
                        )
                    })
            })
            .transpose()
    }

    /// One of a text enum's values.
    pub fn parse<T: FromStr>(&self, name: &str, valid: &str) -> Result<Option<T>, ApiError> {
        self.str(name)
            .map(|s| {
                s.parse::<T>()
                    .map_err(|_| ApiError::bad_param(name, format!("expected one of {valid}")))
            })
            .transpose()
    }
}

/// A path segment that must be an id.
pub fn id(name: &str, s: &str) -> Result<i64, ApiError> {
    s.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::bad_param(name, "expected a positive whole number"))
}
