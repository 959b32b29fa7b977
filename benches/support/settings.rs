//! The settings every HTTP benchmark reads the same way: environment
//! variables and the scenarios to run, checked against a fixed list. Each
//! bench that includes this file with `#[path]` includes `scenarios.rs`
//! beside it (as `mod scenarios`), whose [`named`](super::scenarios::named)
//! this builds on; the scheduler benchmark, whose scenario names are a
//! pattern rather than a list, includes `scenarios.rs` alone.

use anyhow::{ensure, Context as _};

/// An environment variable's value, `None` when unset or blank.
pub fn env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.trim().is_empty())
}

/// A positive whole number from the environment, `default` when unset.
pub fn env_number(key: &str, default: usize) -> anyhow::Result<usize> {
    match env(key) {
        Some(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .with_context(|| format!("{key} must be a positive whole number, not {v:?}")),
        None => Ok(default),
    }
}

/// The scenarios named (see [`named`](super::scenarios::named)), each one of
/// `known`; all of `known` when none is named.
pub fn checked(known: &[&str]) -> anyhow::Result<Vec<String>> {
    let names = super::scenarios::named(known);
    for s in &names {
        ensure!(
            known.contains(&s.as_str()),
            "unknown scenario {s:?}: expected one of {}",
            known.join(", ")
        );
    }
    Ok(names)
}
