//! ops-worker: runs an operations team's recurring jobs on a schedule and
//! records every run in `job_runs`.
//!
//! Data flows one way: `config` turns schedules.toml into typed jobs, the
//! `scheduler` decides when each slot is due, the `runner` runs a slot and
//! records it through `db`, and `cli` is a thin front over all of them.

pub mod config;
pub mod db;
pub mod scheduler;
