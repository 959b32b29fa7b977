//! Schedule arithmetic and policies: which instants a job's slots are
//! (`slots`), what runs of the slots that passed while the worker could not
//! fire them (`catch_up`), a slot's `jitter` delay and hash (`jitter`), what
//! DST changes do to cron slots (`dst`), when a maintenance window is open
//! (`window`), which slot a push job's signal belongs to (`signal`), and
//! the `overlap` policy's values.
//!
//! A leaf: it imports nothing else of this crate, reads no clock and does no
//! I/O, so every rule here is a pure function with its unit tests beside it.
//! The scheduler, the runner, `config` and the CLI all ask this module, and
//! nothing else computes a slot.

pub mod catch_up;
pub mod dst;
pub mod jitter;
pub mod signal;
mod slots;
mod window;

pub use slots::{whole_second, CronSyntaxError, IntervalError, NextBeyond, Schedule};
pub use window::Window;

/// What to do with a slot that comes due while the job's previous run is
/// still going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// Record the slot as `skipped` (the default).
    Skip,
    /// Run it when the previous run ends (at most one waits; more are skipped).
    Queue,
    /// Run it alongside.
    Allow,
}

/// What to do with slots that passed while the worker could not fire them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// One run for the newest missed slot (the default).
    Latest,
    /// One run per missed slot inside the window, oldest first.
    All,
    /// None.
    Skip,
}
