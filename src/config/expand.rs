//! `${VAR}` and `${VAR:-default}` in schedules.toml strings, expanded from
//! the process environment before anything else reads a value.
//!
//! Only the braced form is special, so `$HOME` or `$1` in a shell command
//! pass through untouched; `$${` writes a literal `${`.

use std::borrow::Cow;

/// Why a string could not be expanded.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    #[error("environment variable {0} is not set and has no default (write ${{{0}:-default}})")]
    Missing(String),
    /// The value is not echoed: the error names its file, line and key, and
    /// a value (a header, a URL) may hold a secret.
    #[error("unterminated ${{ (the value is not shown: it may hold a secret; write $${{ for a literal ${{)")]
    Unterminated,
    #[error("invalid variable name {0:?} in ${{..}}")]
    BadName(String),
}

pub fn expand<'a>(
    input: &'a str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Cow<'a, str>, ExpandError> {
    if !input.contains("${") {
        return Ok(Cow::Borrowed(input));
    }
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find("${") {
        if rest[..pos].ends_with('$') {
            // `$${` is an escaped literal `${`.
            out.push_str(&rest[..pos - 1]);
            out.push_str("${");
            rest = &rest[pos + 2..];
            continue;
        }
        out.push_str(&rest[..pos]);
        let body_start = pos + 2;
        let end = rest[body_start..]
            .find('}')
            .ok_or(ExpandError::Unterminated)?;
        let body = &rest[body_start..body_start + end];
        let (name, default) = match body.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (body, None),
        };
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(ExpandError::BadName(name.to_string()));
        }
        // Like the shell's `:-`, an empty value takes the default too.
        match (lookup(name).filter(|v| !v.is_empty()), default) {
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => return Err(ExpandError::Missing(name.to_string())),
        }
        rest = &rest[body_start + end + 1..];
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "EVERY" => Some("45s".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn ex(s: &str) -> Result<String, ExpandError> {
        expand(s, &env).map(|c| c.into_owned())
    }

    #[test]
    fn expands_set_variables_and_defaults() {
        assert_eq!(ex("${EVERY}").unwrap(), "45s");
        assert_eq!(ex("${EVERY:-30s}").unwrap(), "45s");
        assert_eq!(ex("${UNSET:-30s}").unwrap(), "30s");
        assert_eq!(ex("${EMPTY:-7}s").unwrap(), "7s");
        assert_eq!(ex("a ${UNSET:-} b").unwrap(), "a  b");
        assert_eq!(ex("x${EVERY}y${EVERY}z").unwrap(), "x45sy45sz");
    }

    #[test]
    fn leaves_unbraced_dollars_and_escapes() {
        assert_eq!(ex("echo $HOME $1 $$").unwrap(), "echo $HOME $1 $$");
        assert_eq!(ex("literal $${EVERY}").unwrap(), "literal ${EVERY}");
    }

    #[test]
    fn reports_missing_unterminated_and_bad_names() {
        assert_eq!(ex("${NOPE}"), Err(ExpandError::Missing("NOPE".into())));
        assert!(ex("${NOPE}")
            .unwrap_err()
            .to_string()
            .contains("NOPE is not set"));
        let err = ex("${EVERY s3cr3t").unwrap_err();
        assert_eq!(err, ExpandError::Unterminated);
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
        assert_eq!(ex("${1X}"), Err(ExpandError::BadName("1X".into())));
        assert_eq!(ex("${}"), Err(ExpandError::BadName(String::new())));
    }
}
