//! The timing engine: when each job's slots are due.
pub mod catch_up;
pub mod schedule;
pub use schedule::Schedule;
