//! ops-worker: runs an operations team's recurring jobs on a schedule and
//! records every run in `job_runs`.
//!
//! Data flows one way: `config` turns schedules.toml into typed jobs, the
//! `scheduler` decides when each slot is due, the `runner` runs a slot and
//! records it through `db`, `notify` delivers the notification outbox,
//! `retention` prunes old runs, `worker` is the daemon's lifecycle and
//! `cli` is a thin front over all of them. `schedule` is the leaf every
//! other module asks about slots.

pub mod ack_link;
pub mod cli;
pub mod config;
pub mod db;
pub mod heartbeat;
pub mod http;
pub mod memory;
pub mod notify;
pub mod ops;
pub mod overview;
pub mod reload;
pub mod retention;
pub mod run_requests;
pub mod runner;
pub mod schedule;
pub mod scheduler;
pub mod signals;
pub mod telemetry;
pub mod worker;

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
