//! The Diesel view of the tables, shared by both backends.
//!
//! Only portable SQL types appear here (`BigInt`, `Integer`, `Text`,
//! `Timestamp`), so one `table!` serves PostgreSQL and SQLite. It matches what
//! `diesel print-schema` gives for either migrated database (see diesel.toml);
//! `tests/it/db_runs.rs` checks that the two migration trees agree.

diesel::table! {
    job_runs (id) {
        id -> BigInt,
        job_name -> Text,
        kind -> Text,
        scheduled_for -> Timestamp,
        trigger -> Text,
        attempt -> Integer,
        worker_id -> Text,
        started_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
        status -> Text,
        error -> Nullable<Text>,
        output -> Nullable<Text>,
        duration_ms -> Nullable<BigInt>,
        missed -> Integer,
    }
}

diesel::table! {
    service_health (service) {
        service -> Text,
        job_name -> Text,
        status -> Text,
        http_status -> Nullable<Integer>,
        latency_ms -> Nullable<BigInt>,
        error -> Nullable<Text>,
        checked_at -> Timestamp,
        consecutive_failures -> Integer,
        consecutive_successes -> Integer,
        since -> Timestamp,
    }
}

diesel::table! {
    health_checks (id) {
        id -> BigInt,
        service -> Text,
        job_name -> Text,
        status -> Text,
        http_status -> Nullable<Integer>,
        latency_ms -> Nullable<BigInt>,
        error -> Nullable<Text>,
        checked_at -> Timestamp,
    }
}
