//! The one integration-test binary: shared helpers and one module per area.
//! Database tests need PostgreSQL (see `helpers::pg_admin_url`).

mod alerts;
mod api;
mod api_ack;
mod api_binary;
mod api_input;
mod api_openapi;
mod api_reads;
mod api_run_now;
mod api_silences;
mod api_writes;
mod channels;
mod console;
mod console_browser;
mod console_pages;
mod console_silences;
mod escalation;
mod fixtures;
mod health;
mod helpers;
mod http;
mod jitter;
mod metrics;
mod push;
mod reload;
mod replicas;
mod report;
mod retention;
mod silences;

mod cli;
mod daemon_log;
mod db_runs;
mod docs;
mod first_hour;
mod notify;
mod outage;
mod pause;
mod run_requests;
mod runner;
mod scheduler;
mod signals;
mod skew;
mod smtp;
mod tls;
mod worker_id;
