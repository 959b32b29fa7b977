//! ops-worker: runs an operations team's recurring jobs on a schedule and
//! records every run in `job_runs`.
//!
//! Data flows one way: `config` turns schedules.toml into typed jobs, the
//! `scheduler` decides when each slot is due, the `runner` runs a slot and
//! records it through `db`, `notify` delivers the notification outbox,
//! `retention` prunes old runs, `worker` is the daemon's lifecycle and
//! `cli` is a thin front over all of them.

pub mod cli;
pub mod config;
pub mod db;
pub mod heartbeat;
pub mod memory;
pub mod notify;
pub mod reload;
pub mod retention;
pub mod runner;
pub mod scheduler;
pub mod telemetry;
pub mod worker;

/// The process exit codes, documented in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    Ok = 0,
    JobFailed = 1,
    Usage = 2,
    DatabaseUnavailable = 3,
}

/// A command used wrongly (e.g. an unknown job name): exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Maps an error to its exit code by what it is, wherever it sits in the chain.
pub fn exit_code_for(e: &anyhow::Error) -> ExitCode {
    for cause in e.chain() {
        if cause.is::<config::ConfigError>() || cause.is::<UsageError>() {
            return ExitCode::Usage;
        }
        if let Some(db) = cause.downcast_ref::<db::DbError>() {
            return if matches!(db, db::DbError::BadUrl { .. } | db::DbError::BadEnv { .. }) {
                ExitCode::Usage
            } else {
                ExitCode::DatabaseUnavailable
            };
        }
    }
    ExitCode::JobFailed
}

/// The log filter: `RUST_LOG` as `target=level` directives separated by
/// commas (`info`, `warn,ops_worker=debug`), else `default`. A `RUST_LOG`
/// that does not parse is reported (the caller prints it once) and `default`
/// applies. Span and field filters (`[run{job=x}]`) are not supported: they
/// need a regex engine, which would cost every process ~200 KiB of code.
pub fn log_filter(default: &str) -> (tracing_subscriber::filter::Targets, Option<String>) {
    let fallback = || default.parse().unwrap_or_default();
    match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => match v.parse() {
            Ok(f) => (f, None),
            Err(e) => (
                fallback(),
                Some(format!(
                    "RUST_LOG={v:?} is not a list of target=level directives ({e}); logging at {default}"
                )),
            ),
        },
        _ => (fallback(), None),
    }
}

/// `error: cause: cause` on one line, without repeating a cause that its
/// parent's message already contains.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let msg = s.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        source = s.source();
    }
    out
}
