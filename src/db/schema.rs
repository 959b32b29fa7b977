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
        jitter_ms -> Nullable<BigInt>,
        exclusive -> Bool,
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

diesel::table! {
    alerts (id) {
        id -> BigInt,
        fingerprint -> Text,
        source -> Text,
        subject -> Text,
        severity -> Text,
        status -> Text,
        message -> Text,
        opened_at -> Timestamp,
        acknowledged_at -> Nullable<Timestamp>,
        acknowledged_by -> Nullable<Text>,
        resolved_at -> Nullable<Timestamp>,
        resolution_note -> Nullable<Text>,
        escalation_level -> Integer,
        last_escalated_at -> Nullable<Timestamp>,
        last_notified_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    notifications (id) {
        id -> BigInt,
        idempotency_key -> Text,
        target -> Text,
        alert_id -> Nullable<BigInt>,
        event -> Text,
        payload -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        created_at -> Timestamp,
        delivered_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    job_pauses (job_name) {
        job_name -> Text,
        paused_at -> Timestamp,
        until -> Nullable<Timestamp>,
        reason -> Nullable<Text>,
        paused_by -> Text,
    }
}

diesel::table! {
    metric_samples (id) {
        id -> BigInt,
        job_name -> Text,
        name -> Text,
        labels -> Text,
        value -> Double,
        collected_at -> Timestamp,
    }
}

diesel::table! {
    reports (id) {
        id -> BigInt,
        name -> Text,
        period -> Text,
        period_start -> Timestamp,
        period_end -> Timestamp,
        generated_at -> Timestamp,
        json -> Text,
        markdown -> Text,
    }
}

diesel::table! {
    silences (id) {
        id -> BigInt,
        pattern -> Text,
        starts_at -> Timestamp,
        ends_at -> Timestamp,
        reason -> Text,
        created_by -> Text,
    }
}

diesel::table! {
    workers (id) {
        id -> Text,
        host -> Text,
        pid -> Integer,
        version -> Text,
        started_at -> Timestamp,
        heartbeat_at -> Timestamp,
        config_hash -> Text,
        stopped_at -> Nullable<Timestamp>,
        config_error -> Nullable<Text>,
    }
}

diesel::table! {
    audit_log (id) {
        id -> BigInt,
        at -> Timestamp,
        actor -> Text,
        action -> Text,
        target -> Text,
        source -> Text,
        outcome -> Text,
        detail -> Nullable<Text>,
    }
}

diesel::table! {
    console_sessions (id_hash) {
        id_hash -> Text,
        token_name -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    run_requests (id) {
        id -> BigInt,
        job_name -> Text,
        requested_by -> Text,
        requested_at -> Timestamp,
        status -> Text,
        claimed_by -> Nullable<Text>,
        claimed_at -> Nullable<Timestamp>,
        run_id -> Nullable<BigInt>,
        finished_at -> Nullable<Timestamp>,
        error -> Nullable<Text>,
    }
}

// The dead-worker check selects `job_runs` rows by a subquery on `workers`.
diesel::allow_tables_to_appear_in_same_query!(job_runs, workers);
// A claim of a dead worker is released by a subquery on `workers`.
diesel::allow_tables_to_appear_in_same_query!(run_requests, workers);
// Retention keeps a finished request while its run is in `job_runs`.
diesel::allow_tables_to_appear_in_same_query!(job_runs, run_requests);
