//! What a command's outcome means to the shell: the exit codes (a fixed
//! table, documented in the manual) and which error maps to which.

/// The process exit codes, documented in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    Ok = 0,
    JobFailed = 1,
    Usage = 2,
    DatabaseUnavailable = 3,
    /// `run-job` stopped by SIGINT (128 + 2, as shells report it).
    Interrupted = 130,
    /// `run-job` stopped by SIGTERM (128 + 15).
    Terminated = 143,
}

/// A command used wrongly (e.g. an unknown job name): exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Maps an error to its exit code by what it is, wherever it sits in the chain.
pub fn exit_code_for(e: &anyhow::Error) -> ExitCode {
    for cause in e.chain() {
        if cause.is::<crate::config::ConfigError>()
            || cause.is::<UsageError>()
            || cause.is::<crate::heartbeat::WorkerIdTaken>()
        {
            return ExitCode::Usage;
        }
        if let Some(db) = cause.downcast_ref::<crate::db::DbError>() {
            return if matches!(
                db,
                crate::db::DbError::BadUrl { .. } | crate::db::DbError::BadEnv { .. }
            ) {
                ExitCode::Usage
            } else {
                ExitCode::DatabaseUnavailable
            };
        }
    }
    ExitCode::JobFailed
}
