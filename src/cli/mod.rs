//! The command line: parse arguments, load what a command needs, call the
//! same config, runner and storage the daemon uses, print results. Errors go
//! back to `main`, which prints them once and picks the exit code.

mod exit;
mod logs;
pub mod oncall;
mod ping;
mod show;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use ops_worker_jobs::{Clock, SystemClock};

use crate::config::{Config, JobSpec};
use crate::db::{DatabaseUrl, Db, Open, Trigger};
use crate::runner::{Outcome, Recorder, Runner, Slot};
use crate::signals::StopSignal;
pub use exit::{exit_code_for, ExitCode, UsageError};
pub use logs::log_filter;

/// Each command's `--help` ends with its exit codes (the table is in
/// docs/cli.md, "Exit codes"): `exit_codes!("0  ...", usage!(), ...)`.
macro_rules! exit_codes {
    ($($line:expr),+ $(,)?) => {
        concat!("Exit codes:", $("\n  ", $line),+)
    };
}

/// Exit code 2, as every command that reads schedules.toml has it.
macro_rules! usage {
    () => {
        "2  bad usage: an unknown option, an invalid or missing schedules.toml, a malformed DATABASE_URL"
    };
}

/// Exit code 3, for every command that uses the database.
macro_rules! no_db {
    () => {
        "3  the database is unavailable"
    };
}

#[derive(Debug, Parser)]
#[command(
    name = "ops-worker",
    version,
    about = "Runs recurring operations jobs on a schedule and records every run"
)]
#[command(after_help = concat!(
    "Environment: DATABASE_URL (postgres://... or sqlite://PATH; unset: sqlite ./ops-worker.db), \
PGSSLMODE and PGSSLROOTCERT (TLS to PostgreSQL, when the URL has no sslmode or sslrootcert), \
OPS_WORKER_CONFIG, OPS_WORKER_ID, LOG_FORMAT, RUST_LOG; OPS_WORKER_PING_URL and OPS_WORKER_PING_TOKEN (ping, wrap). See README.md and docs/.\n\n",
    exit_codes!(
        "0  ok",
        "1  the job failed (run-job), or another runtime error",
        "2  bad usage or configuration",
        no_db!(),
    ),
    "\n\n`ops-worker COMMAND --help` says what each command means by them."
))]
pub struct Cli {
    /// The schedule file, relative to the current directory
    #[arg(
        long,
        global = true,
        env = "OPS_WORKER_CONFIG",
        default_value = crate::config::DEFAULT_CONFIG
    )]
    pub config: PathBuf,
    /// Log format on stderr
    #[arg(long, global = true, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// `--watch-config` of `run` and `serve` (`serve` applies no `[api]`
/// change without a restart: docs/configuration.md#live-reload).
#[derive(Debug, clap::Args)]
pub struct WatchConfig {
    /// Reload schedules.toml as soon as it changes (false: only on
    /// SIGHUP and the check every 10s); `--watch-config` alone is true
    #[arg(
        long,
        env = "OPS_WORKER_WATCH_CONFIG",
        value_name = "BOOL",
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        default_value = "true",
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub watch_config: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the scheduler until SIGTERM or SIGINT
    #[command(after_help = exit_codes!(
        "0  stopped by SIGTERM or SIGINT, every run recorded",
        "1  a runtime error, e.g. the --metrics-addr port is taken",
        usage!(),
        no_db!(),
    ))]
    Run {
        /// How long shutdown waits for running jobs before interrupting them
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        grace: Duration,
        /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 0.0.0.0:9464); off when unset
        #[arg(long, env = "METRICS_ADDR", value_name = "ADDR", value_parser = parse_metrics_addr)]
        metrics_addr: Option<MetricsAddr>,
        /// Runs of another worker with no heartbeat for this long are marked
        /// abandoned (at least 10s)
        #[arg(long, env = "OPS_WORKER_DEAD_AFTER", default_value = "20s", value_parser = parse_dead_after)]
        dead_after: Duration,
        #[command(flatten)]
        watch: WatchConfig,
        /// Also serve the HTTP API (and /metrics) at ADDR, e.g.
        /// 127.0.0.1:8080; without [api.tokens] only a loopback address
        #[arg(long, value_name = "ADDR", value_parser = parse_http_addr)]
        http_addr: Option<std::net::SocketAddr>,
        /// How often to look for run requests without being woken (default:
        /// 1s on SQLite, 10s on PostgreSQL, where LISTEN/NOTIFY wakes at once)
        #[arg(long, env = "OPS_WORKER_REQUEST_POLL", value_name = "DURATION", value_parser = parse_request_poll)]
        request_poll: Option<Duration>,
    },
    /// Serve the HTTP API (docs/api.md) until SIGTERM or SIGINT; runs no jobs
    #[command(after_help = exit_codes!(
        "0  stopped by SIGTERM or SIGINT",
        "1  a runtime error, e.g. the port is taken",
        concat!(usage!(), ", a non-loopback --addr without [api.tokens]"),
        no_db!(),
    ))]
    Serve {
        /// Where to listen; without [api.tokens] in schedules.toml only a
        /// loopback address is accepted
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080", value_parser = parse_http_addr)]
        addr: std::net::SocketAddr,
        /// Run now is refused unless some worker has a heartbeat younger
        /// than this: the daemons' --dead-after (at least 10s)
        #[arg(long, env = "OPS_WORKER_DEAD_AFTER", default_value = "20s", value_parser = parse_dead_after)]
        dead_after: Duration,
        #[command(flatten)]
        watch: WatchConfig,
    },
    /// Run one job now, recorded like any other run (trigger "manual")
    #[command(after_help = exit_codes!(
        "0  the run succeeded",
        "1  the run failed, timed out, panicked or was interrupted, or its record could not be written",
        concat!(usage!(), ", a job not in schedules.toml"),
        no_db!(),
    ))]
    RunJob {
        /// The job, a [jobs.NAME] of schedules.toml (disabled and paused ones too)
        name: String,
    },
    /// Jobs with their schedule, last status, last success and next fire
    #[command(after_help = exit_codes!("0  ok", usage!(), no_db!()))]
    List {
        /// One JSON array of objects instead of the table
        #[arg(long)]
        json: bool,
    },
    /// Recent runs, newest first
    #[command(after_help = exit_codes!(
        "0  ok, also when there are no runs",
        concat!(usage!(), ", a NAME with neither runs nor a table in schedules.toml"),
        no_db!(),
    ))]
    History {
        /// Only this job's runs (also of a job no longer in schedules.toml)
        name: Option<String>,
        /// How many runs, newest first
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// One JSON array of runs instead of the table
        #[arg(long)]
        json: bool,
    },
    /// Upcoming fire times of a job, in UTC and in the job's time zone
    #[command(after_help = exit_codes!(
        "0  ok, also when a cron job has no fire time left",
        concat!(usage!(), ", a job not in schedules.toml"),
        "3  the database is unavailable (an interval job's grid starts at its last run)",
    ))]
    Next {
        /// The job, a [jobs.NAME] of schedules.toml
        name: String,
        /// How many fire times
        #[arg(long, default_value_t = 5)]
        count: usize,
    },
    /// Alerts opened by the `alerts` kind: list, acknowledge, resolve
    #[command(after_help = exit_codes!(
        "0  ok",
        "1  the alert is not in a state that allows it (ack, resolve)",
        "2  bad usage, no such alert, a malformed DATABASE_URL",
        no_db!(),
    ))]
    Alerts {
        #[command(subcommand)]
        command: AlertsCommand,
    },
    /// Silence alerts by fingerprint for a while, on every worker: add, list, remove
    #[command(after_help = exit_codes!(
        "0  ok",
        "2  bad usage, a bad --match glob or --for duration, no such silence, a malformed DATABASE_URL",
        no_db!(),
    ))]
    Silence {
        #[command(subcommand)]
        command: SilenceCommand,
    },
    /// Who is on call: `who` now or at a time, `show` the coming shifts
    #[command(after_help = exit_codes!(
        "0  ok",
        "2  bad usage, an invalid or missing schedules.toml, an unknown schedule, a time that does not parse",
    ))]
    Oncall {
        #[command(subcommand)]
        command: OncallCommand,
    },
    /// Reports written by the `report` kind
    #[command(after_help = exit_codes!(
        "0  ok",
        "2  bad usage, no stored report matches, a malformed DATABASE_URL",
        no_db!(),
    ))]
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
    /// Exit 0 when this worker's scheduler is alive (its heartbeat in the
    /// database is fresh), 1 when not: the container's HEALTHCHECK
    #[command(after_help = exit_codes!(
        "0  the daemon with this OPS_WORKER_ID heartbeats, at most --max-age ago",
        "1  it stopped, went stale or never ran",
        "2  bad usage, a malformed DATABASE_URL",
        no_db!(),
    ))]
    Health {
        /// The oldest heartbeat that counts as alive
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        max_age: Duration,
    },
    /// The workers that ran against this database: heartbeat, version, config hash
    #[command(after_help = exit_codes!(
        "0  ok",
        "2  bad usage, a malformed DATABASE_URL",
        no_db!(),
    ))]
    Status {
        /// One JSON array of workers instead of the table
        #[arg(long)]
        json: bool,
    },
    /// Ask the live daemons to run a job now: one of them runs it, recorded
    /// like any other run (trigger "manual"); prints the request's id
    #[command(after_help = exit_codes!(
        "0  the request is stored; a live daemon runs it within a second (PostgreSQL: at once)",
        "1  no daemon is live (no heartbeat within --dead-after), so nobody would run it; nothing is stored",
        concat!(usage!(), ", a job not in schedules.toml"),
        no_db!(),
    ))]
    RequestRun {
        /// The job, a [jobs.NAME] of schedules.toml
        name: String,
        /// Who asks, recorded with the request (default: $USER)
        #[arg(long)]
        by: Option<String>,
        /// A daemon counts as live while its heartbeat is younger than
        /// this: the daemons' --dead-after (at least 10s)
        #[arg(long, env = "OPS_WORKER_DEAD_AFTER", default_value = "20s", value_parser = parse_dead_after)]
        dead_after: Duration,
    },
    /// Stop running a job's scheduled slots, on every worker, until resumed
    /// or --until (manual `run-job` still runs it)
    #[command(after_help = exit_codes!(
        "0  paused (or the pause replaced)",
        concat!(usage!(), ", a job not in schedules.toml, an --until that is not a time or duration in the future"),
        no_db!(),
    ))]
    Pause {
        /// The job, a [jobs.NAME] of schedules.toml
        name: String,
        /// When the pause ends: RFC 3339, or a duration from now such as
        /// 2h (default: until `resume`)
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// Why, shown by `list`
        #[arg(long)]
        reason: Option<String>,
        /// Who pauses (default: $USER)
        #[arg(long)]
        by: Option<String>,
    },
    /// End a job's pause: its scheduled slots run again
    #[command(after_help = exit_codes!(
        "0  resumed, or it was not paused",
        concat!(usage!(), ", a job not in schedules.toml"),
        no_db!(),
    ))]
    Resume {
        /// The job, a [jobs.NAME] of schedules.toml
        name: String,
    },
    /// Check the schedule file and print a summary
    #[command(after_help = exit_codes!(
        "0  valid (warnings go to stderr and do not change it)",
        "2  bad usage, an invalid or missing schedules.toml (every problem is printed)",
    ))]
    Validate,
    /// Send one signal of a push job to an ops-worker server: success, or
    /// --start, --fail, --exit N (token from OPS_WORKER_PING_TOKEN)
    #[command(after_help = exit_codes!(
        "0  delivered (also when the slot's run was already recorded)",
        "1  not delivered after 3 tries (no connection, a 5xx, a 429)",
        "2  bad usage: no --url or OPS_WORKER_PING_URL, no OPS_WORKER_PING_TOKEN, or the server knows no push job of that name with that token",
    ))]
    Ping {
        /// The push job, a [jobs.NAME] of the server's schedules.toml
        name: String,
        /// Signal that the job started (its finish closes the run)
        #[arg(long, conflicts_with_all = ["fail", "exit"])]
        start: bool,
        /// Signal that the job failed
        #[arg(long, conflicts_with = "exit")]
        fail: bool,
        /// Signal the job's exit status (0 is a success)
        #[arg(long, value_name = "N")]
        exit: Option<u8>,
        /// The server's base URL, e.g. http://ops-worker:8080
        #[arg(long, value_name = "BASE", env = "OPS_WORKER_PING_URL")]
        url: Option<String>,
    },
    /// Run a command as a push job's run: signal start, run it, signal its
    /// exit status with the end of its output, exit with its status
    #[command(after_help = exit_codes!(
        "0  the command succeeded",
        "N  otherwise the command's own exit status (128 + N when signal N killed it, 127 when it cannot be run); a signal that is not delivered is a warning on stderr and never changes it",
        "2  bad usage (no command after --)",
    ))]
    Wrap {
        /// The push job, a [jobs.NAME] of the server's schedules.toml
        name: String,
        /// The server's base URL, e.g. http://ops-worker:8080
        #[arg(long, value_name = "BASE", env = "OPS_WORKER_PING_URL")]
        url: Option<String>,
        /// The command and its arguments, after --
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Apply pending database migrations
    #[command(after_help = exit_codes!(
        "0  migrated, or already up to date",
        "2  bad usage, a malformed DATABASE_URL",
        no_db!(),
    ))]
    Migrate,
}

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Active alerts (open or acknowledged), oldest first
    #[command(after_help = exit_codes!("0  ok, also when there are none", "2  bad usage, a malformed DATABASE_URL", no_db!()))]
    List {
        /// All alerts, resolved ones too, newest first
        #[arg(long)]
        all: bool,
        /// How many alerts at most
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// One JSON array of alerts instead of the table
        #[arg(long)]
        json: bool,
    },
    /// Acknowledge an open alert: reminders and escalation stop
    #[command(after_help = exit_codes!(
        "0  acknowledged",
        "1  the alert is not open (already acknowledged or resolved)",
        "2  bad usage, no such alert, a malformed DATABASE_URL",
        no_db!(),
    ))]
    Ack {
        /// The alert's id, as `alerts list` shows it
        id: i64,
        /// Who acknowledges (default: $USER)
        #[arg(long)]
        by: Option<String>,
    },
    /// Resolve an active alert; whoever was told it opened is told it is resolved
    #[command(after_help = exit_codes!(
        "0  resolved",
        "1  the alert is already resolved",
        "2  bad usage, no such alert, a malformed DATABASE_URL",
        no_db!(),
    ))]
    Resolve {
        /// The alert's id, as `alerts list` shows it
        id: i64,
        /// Why, stored with the alert and sent with the resolution
        #[arg(long, default_value = "resolved by hand")]
        note: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SilenceCommand {
    /// Silence the alerts whose fingerprint matches --match for --for: none
    /// opens, none is reminded or escalated
    #[command(after_help = exit_codes!(
        "0  added",
        "2  bad usage, a bad --match glob or --for duration, a malformed DATABASE_URL",
        no_db!(),
    ))]
    Add {
        /// A fingerprint glob, `*` the only wildcard: system:service:api, job:backup, job:*, *
        #[arg(long = "match", value_name = "GLOB")]
        pattern: String,
        /// How long from now, such as 2h or 30m
        #[arg(long = "for", value_name = "DURATION")]
        duration: String,
        /// Why, shown by `silence list` and `alerts list`
        #[arg(long)]
        reason: String,
        /// Who silences (default: $USER)
        #[arg(long)]
        by: Option<String>,
    },
    /// The active silences, by id
    #[command(after_help = exit_codes!("0  ok, also when there are none", "2  bad usage, a malformed DATABASE_URL", no_db!()))]
    List {
        /// Ended ones too
        #[arg(long)]
        all: bool,
        /// One JSON array of silences instead of the table
        #[arg(long)]
        json: bool,
    },
    /// Remove a silence: its alerts open, remind and escalate again
    #[command(after_help = exit_codes!(
        "0  removed",
        "2  bad usage, no such silence, a malformed DATABASE_URL",
        no_db!(),
    ))]
    Remove {
        /// The silence's id, as `silence list` shows it
        id: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum OncallCommand {
    /// Who is on call for SCHEDULE, and from when to when
    #[command(after_help = exit_codes!(
        "0  ok, also when nobody is on call",
        concat!(usage!(), ", an unknown SCHEDULE, an --at that does not parse"),
    ))]
    Who {
        /// The schedule, an [oncall.NAME] of schedules.toml
        schedule: String,
        /// RFC 3339, or a local time in the schedule's zone (default: now)
        #[arg(long)]
        at: Option<String>,
    },
    /// The shifts of SCHEDULE from now (or --from) for --days days
    #[command(after_help = exit_codes!(
        "0  ok",
        concat!(usage!(), ", an unknown SCHEDULE, a --from that does not parse"),
    ))]
    Show {
        /// The schedule, an [oncall.NAME] of schedules.toml
        schedule: String,
        /// How many days of shifts
        #[arg(long, default_value_t = 14)]
        days: u32,
        /// RFC 3339, or a local time in the schedule's zone (default: now)
        #[arg(long)]
        from: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Print a stored report as Markdown (the newest unless --period)
    #[command(after_help = exit_codes!(
        "0  ok",
        "2  bad usage, no stored report matches, a malformed DATABASE_URL",
        no_db!(),
    ))]
    Show {
        /// The report job's name (default: any)
        #[arg(long)]
        name: Option<String>,
        /// The period, e.g. 2026-11-21 or 2026-W47 (default: the newest)
        #[arg(long)]
        period: Option<String>,
        /// The figures as JSON instead
        #[arg(long)]
        json: bool,
    },
}

/// `OPS_WORKER_DEAD_AFTER` / `--dead-after`: at least two heartbeats.
fn parse_dead_after(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim()).map_err(|e| {
        format!("OPS_WORKER_DEAD_AFTER (or --dead-after): invalid duration {s:?}: {e}")
    })?;
    if d < 2 * crate::heartbeat::HEARTBEAT_EVERY {
        return Err(format!(
            "OPS_WORKER_DEAD_AFTER (or --dead-after) must be at least {} (two heartbeats)",
            humantime::format_duration(2 * crate::heartbeat::HEARTBEAT_EVERY)
        ));
    }
    Ok(d)
}

/// `OPS_WORKER_REQUEST_POLL` / `--request-poll`: a duration above zero.
fn parse_request_poll(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s.trim()) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("OPS_WORKER_REQUEST_POLL (or --request-poll) must be above zero".to_string()),
        Err(e) => Err(format!(
            "OPS_WORKER_REQUEST_POLL (or --request-poll): invalid duration {s:?}: {e}"
        )),
    }
}

/// `METRICS_ADDR` / `--metrics-addr`: an IP and a port, or empty for off
/// (so a compose file can pass `${METRICS_ADDR:-}`).
#[derive(Debug, Clone, Copy)]
pub struct MetricsAddr(Option<std::net::SocketAddr>);

fn parse_metrics_addr(s: &str) -> Result<MetricsAddr, String> {
    if s.trim().is_empty() {
        return Ok(MetricsAddr(None));
    }
    s.trim().parse().map(|a| MetricsAddr(Some(a))).map_err(|_| {
        "METRICS_ADDR (or --metrics-addr) must be IP:PORT, e.g. 0.0.0.0:9464 or 127.0.0.1:9464"
            .to_string()
    })
}

/// `--addr` / `--http-addr`: an IP and a port.
fn parse_http_addr(s: &str) -> Result<std::net::SocketAddr, String> {
    s.trim()
        .parse()
        .map_err(|_| "expected IP:PORT, e.g. 127.0.0.1:8080 or 0.0.0.0:8080".to_string())
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

impl Command {
    /// Commands that print for people log only warnings unless RUST_LOG says otherwise.
    pub fn default_log_level(&self) -> &'static str {
        match self {
            Command::Run { .. } | Command::RunJob { .. } | Command::Serve { .. } => "info",
            _ => "warn",
        }
    }

    /// What the command may do when its SQLite database is not there: the
    /// one place that decides it. The daemon, `run-job`, `migrate` and the
    /// commands that write create it; the commands that only read fail
    /// with exit 3 rather than create an empty database, in which a wrong
    /// `DATABASE_URL` or working directory would look like "no history".
    /// `None`: the command uses no database.
    pub fn database(&self) -> Option<Open> {
        match self {
            Command::Run { .. }
            | Command::RunJob { .. }
            | Command::Serve { .. }
            | Command::Migrate
            | Command::Pause { .. }
            | Command::Resume { .. }
            | Command::Alerts {
                command: AlertsCommand::Ack { .. } | AlertsCommand::Resolve { .. },
            }
            | Command::Silence {
                command: SilenceCommand::Add { .. } | SilenceCommand::Remove { .. },
            } => Some(Open::Create),
            Command::List { .. }
            | Command::History { .. }
            | Command::Next { .. }
            | Command::Alerts {
                command: AlertsCommand::List { .. },
            }
            | Command::Silence {
                command: SilenceCommand::List { .. },
            }
            | Command::Report { .. }
            | Command::Health { .. }
            | Command::Status { .. }
            | Command::RequestRun { .. } => Some(Open::Existing),
            Command::Validate
            | Command::Oncall { .. }
            | Command::Ping { .. }
            | Command::Wrap { .. } => None,
        }
    }
}

/// Who a command acts for: `--by`, else `$USER`, else "cli".
fn by_or_user(by: Option<String>) -> String {
    by.or_else(|| std::env::var("USER").ok())
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "cli".to_string())
}

/// This process's worker id: `OPS_WORKER_ID`, else the host name.
pub fn worker_id() -> String {
    std::env::var("OPS_WORKER_ID")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .or_else(crate::heartbeat::hostname)
        .unwrap_or_else(|| "localhost".to_string())
}

/// The `DATABASE_URL` (or the SQLite default), with PostgreSQL's TLS
/// settings from it or from `PGSSLMODE` / `PGSSLROOTCERT`.
fn database_url() -> anyhow::Result<DatabaseUrl> {
    Ok(DatabaseUrl::from_env()?)
}

/// Connects to `DATABASE_URL` (or the SQLite default) as the command's
/// [`Command::database`] allows, and migrates. A command that declared no
/// database creates none.
async fn connect_db(open: Option<Open>) -> anyhow::Result<Db> {
    let url = database_url()?;
    let db = Db::connect_with(&url, url.pool_size(), open.unwrap_or(Open::Existing)).await?;
    db.migrate().await?;
    Ok(db)
}

/// An [`OpError`](crate::ops::OpError) as the CLI reports it: bad input
/// and unknown names are usage errors (exit 2), the rest exit 1 or 3.
fn op_error(e: crate::ops::OpError) -> anyhow::Error {
    use crate::ops::OpError;
    match e {
        OpError::BadInput(m) => UsageError(m).into(),
        OpError::BadField { .. } => UsageError(format!("--{e}")).into(),
        OpError::NoSilence(id) => UsageError(format!(
            "no silence {id} (see `ops-worker silence list --all`)"
        ))
        .into(),
        OpError::NoAlert(id) => UsageError(format!(
            "no alert {id} (see `ops-worker alerts list --all`)"
        ))
        .into(),
        OpError::PushJob(_) => UsageError(e.to_string()).into(),
        OpError::UnknownJob(_) | OpError::AlertState { .. } => anyhow::anyhow!(e.to_string()),
        OpError::Db(e) => e.into(),
    }
}

fn find<'c>(config: &'c Config, name: &str) -> anyhow::Result<&'c Arc<JobSpec>> {
    config.job(name).ok_or_else(|| {
        let known: Vec<_> = crate::config::names(config).into_iter().collect();
        UsageError(format!(
            "unknown job {name:?} in {} (jobs: {})",
            config.path.display(),
            known.join(", ")
        ))
        .into()
    })
}

pub async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let database = cli.command.database();
    let open_db = || connect_db(database);
    match cli.command {
        Command::Ping {
            name,
            start,
            fail,
            exit,
            url,
        } => ping::ping(&name, url, &ping::suffix(start, fail, exit)).await,
        Command::Wrap { name, url, command } => {
            let code = ping::wrap(&name, url, &command).await?;
            // The command's own status, which no variant of ExitCode holds.
            std::process::exit(i32::from(code));
        }
        Command::Validate => {
            let config = Config::load(&cli.config)?;
            // What `run` and `serve` refuse at start, refused here too: a
            // short OPS_WORKER_SECRET (its length shown, never its value),
            // a bad OPS_WORKER_PUBLIC_URL.
            crate::ack_link::AckLinks::from_env(&config.api, &|name| std::env::var(name).ok())
                .map_err(|e| UsageError(e.to_string()))?;
            show::validate(&config, SystemClock.now());
            Ok(ExitCode::Ok)
        }
        Command::Migrate => {
            let url = database_url()?;
            let db = Db::connect_with(&url, 1, database.unwrap_or(Open::Existing)).await?;
            let applied = db.migrate().await?;
            if applied.is_empty() {
                println!("{}: up to date", url.redacted());
            } else {
                println!("{}: applied {}", url.redacted(), applied.join(", "));
            }
            Ok(ExitCode::Ok)
        }
        Command::Run {
            grace,
            metrics_addr,
            dead_after,
            watch: WatchConfig { watch_config },
            request_poll,
            http_addr,
        } => {
            let config = Arc::new(Config::load(&cli.config)?);
            if let Some(addr) = http_addr {
                crate::http::check_bind(addr, &config.api)
                    .map_err(|e| UsageError(e.to_string()))?;
            }
            let ack_links = crate::ack_link::AckLinks::for_process(&config.api)
                .map_err(|e| UsageError(e.to_string()))?;
            let db = open_db().await?;
            let worker_id = worker_id();
            let clock: Arc<dyn Clock> = Arc::new(SystemClock);
            let runner = Arc::new(
                Runner::new(Arc::new(Recorder::new(db)), clock, worker_id.clone())
                    .with_config(config.clone()),
            );
            let signals = crate::signals::Signals::listen()?;
            let options = crate::worker::Options {
                grace,
                metrics_addr: metrics_addr.and_then(|m| m.0),
                http_addr,
                dead_after,
                watch_config,
                request_poll,
                ack_links,
            };
            crate::worker::run(config, runner, &worker_id, options, signals).await?;
            Ok(ExitCode::Ok)
        }
        Command::Serve {
            addr,
            dead_after,
            watch: WatchConfig { watch_config },
        } => {
            let config = Arc::new(Config::load(&cli.config)?);
            crate::http::check_bind(addr, &config.api).map_err(|e| UsageError(e.to_string()))?;
            let ack_links = crate::ack_link::AckLinks::for_process(&config.api)
                .map_err(|e| UsageError(e.to_string()))?;
            let signals = crate::signals::Signals::listen()?;
            let stop = tokio_util::sync::CancellationToken::new();
            // Before the API answers, so a SIGHUP from then on reloads.
            let triggers =
                crate::reload::Triggers::new(&cli.config, watch_config, stop.clone()).await;
            let db = open_db().await?;
            // Sent to by the reloader below; every request borrows it.
            let (reloaded, configs) = tokio::sync::watch::channel(config.clone());
            // Its own /metrics: the signals it refuses are counted there.
            // `up`, `config_info` (worker id `serve`) and the reload gauges
            // as a worker's, so a scrape of it does not read as a worker
            // down, and a rejected edit shows as on the workers.
            let telemetry = Arc::new(crate::telemetry::Telemetry::new());
            telemetry.started(&config.hash, "serve", SystemClock.now());
            let state = crate::http::AppState::builder(db, configs, Arc::new(SystemClock))
                .ack_links(ack_links)
                .telemetry(telemetry.clone())
                .dead_after(dead_after)
                .build();
            let router = crate::http::api_router(state)
                .merge(crate::http::metrics_router(telemetry.clone()));
            let (local, server) = crate::http::serve(addr, router, stop.clone())
                .await
                .with_context(|| format!("cannot serve the API on --addr {addr}"))?;
            crate::http::announce(local, &config.api);
            tracing::info!(addr = %local, "serving the API at http://{local}/api/v1");
            let reloader = tokio::spawn(crate::reload::serve_file(
                cli.config.clone(),
                triggers,
                reloaded,
                telemetry,
                Arc::new(SystemClock),
            ));
            signals.received(1).await;
            stop.cancel();
            let _ = reloader.await;
            let _ = server.await;
            Ok(ExitCode::Ok)
        }
        Command::RunJob { name } => {
            let config = Arc::new(Config::load(&cli.config)?);
            let spec = find(&config, &name)?.clone();
            // From here on Ctrl-C or SIGTERM stops the run instead of the
            // process, so the run is finished in job_runs and a `command`
            // stops with its process group.
            let signals = crate::signals::Signals::listen()?;
            let db = open_db().await?;
            let clock: Arc<dyn Clock> = Arc::new(SystemClock);
            let recorder = Arc::new(Recorder::new(db.clone()));
            // Its own worker id, registered and heartbeating while it runs:
            // should this process die mid-run, a live daemon marks the run
            // abandoned instead of leaving it `running`.
            let id = format!("{}/run-job/{}", worker_id(), std::process::id());
            let me = crate::heartbeat::this_worker(&id, &config.hash, clock.now());
            db.register_worker(&me)
                .await
                .context("cannot register this run in the workers table")?;
            let stop_heartbeat = tokio_util::sync::CancellationToken::new();
            let heartbeat = tokio::spawn(crate::heartbeat::beat(
                db.clone(),
                me.clone(),
                clock.clone(),
                stop_heartbeat.clone(),
                None,
                None,
            ));
            let runner = Arc::new(
                Runner::new(recorder.clone(), clock.clone(), id).with_config(config.clone()),
            );
            // The first signal interrupts the run (a `command` gets SIGTERM,
            // then SIGKILL after 5s), a second stops it at once; either way
            // it is recorded `interrupted`.
            let stopping = tokio::spawn({
                let (runner, signals) = (runner.clone(), signals.clone());
                async move {
                    signals.received(1).await;
                    let why = signals.first().map_or("a signal", StopSignal::name);
                    runner.interrupt_because(&format!("interrupted: run-job received {why}"));
                    signals.received(2).await;
                    runner.stop_now();
                }
            });
            // The first signal also ends `run_now`'s tries of later seconds.
            let outcome = runner
                .run_now(Slot::new(&spec, clock.now(), Trigger::Manual))
                .await;
            stopping.abort();
            stop_heartbeat.cancel();
            let _ = heartbeat.await;
            if !recorder.flush().await {
                anyhow::bail!("the run finished but its record could not be written: the database is unavailable");
            }
            if let Err(e) = db.forget_worker(&me.id, me.pid).await {
                tracing::warn!(error = %crate::error_chain(&e), "cannot remove this run's row from workers");
            }
            let code = show::run_job(&spec.name, &outcome);
            // As a shell reports a command a signal ended: 128 + its number.
            Ok(match signals.first() {
                Some(StopSignal::Interrupt) => ExitCode::Interrupted,
                Some(StopSignal::Terminate) => ExitCode::Terminated,
                None => code,
            })
        }
        Command::RequestRun {
            name,
            by,
            dead_after,
        } => {
            let config = Config::load(&cli.config)?;
            find(&config, &name)?;
            crate::ops::runs_here(&config, &name).map_err(op_error)?;
            let by = by_or_user(by);
            let db = open_db().await?;
            // No live daemon is exit 1, the database's errors exit 3.
            let id = crate::run_requests::submit(&db, &name, &by, dead_after).await?;
            println!("{name}: run request {id} stored for {by}; a live daemon runs it (ops-worker history {name} shows the run)");
            Ok(ExitCode::Ok)
        }
        Command::Pause {
            name,
            until,
            reason,
            by,
        } => {
            let config = Config::load(&cli.config)?;
            find(&config, &name)?;
            let now = SystemClock.now();
            let until = until
                .map(|u| crate::ops::parse_until("--until", &u, now))
                .transpose()
                .map_err(op_error)?;
            let by = by_or_user(by);
            let reason = reason.filter(|r| !r.trim().is_empty());
            let db = open_db().await?;
            crate::ops::pause(&config, &db, &name, now, until, reason.as_deref(), &by)
                .await
                .map_err(op_error)
                .context("cannot record the pause")?;
            let until = until.map_or_else(
                || "until resumed".to_string(),
                |u| format!("until {}", u.format("%Y-%m-%d %H:%M:%SZ")),
            );
            let why = reason.map_or_else(String::new, |r| format!(" ({r})"));
            println!("{name}: paused by {by} {until}{why}; every worker stops running its slots within 5s");
            Ok(ExitCode::Ok)
        }
        Command::Resume { name } => {
            let config = Config::load(&cli.config)?;
            find(&config, &name)?;
            let db = open_db().await?;
            if crate::ops::resume(&config, &db, &name, SystemClock.now())
                .await
                .map_err(op_error)
                .context("cannot end the pause")?
            {
                println!("{name}: resumed; every worker runs its slots again within 5s");
            } else {
                println!("{name}: was not paused");
            }
            Ok(ExitCode::Ok)
        }
        Command::List { json } => {
            let config = Config::load(&cli.config)?;
            let db = open_db().await?;
            show::list(&config, &db, SystemClock.now(), json).await?;
            Ok(ExitCode::Ok)
        }
        Command::History { name, limit, json } => {
            let db = open_db().await?;
            let runs = db
                .history(name.as_deref(), i64::from(limit))
                .await
                .context("cannot read the run history")?;
            if let (Some(name), true) = (&name, runs.is_empty()) {
                // A typo should not look like an empty history; a job removed
                // from the file still shows the runs it had.
                if let Ok(config) = Config::load(&cli.config) {
                    find(&config, name)?;
                }
            }
            show::history(&runs, json)?;
            Ok(ExitCode::Ok)
        }
        Command::Alerts { command } => {
            let db = open_db().await?;
            let now = SystemClock.now();
            match command {
                AlertsCommand::List { all, limit, json } => {
                    let alerts = db
                        .list_alerts(all, i64::from(limit))
                        .await
                        .context("cannot read alerts")?;
                    // Windows come from the file; without a valid one only
                    // the stored silences are shown.
                    let config = Config::load(&cli.config).ok();
                    let quiet = crate::ops::quiet(&db, config.as_ref(), now)
                        .await
                        .context("cannot read silences")?;
                    show::alerts(&alerts, &quiet, now, json)?;
                }
                AlertsCommand::Ack { id, by } => {
                    let by = by_or_user(by);
                    let a = crate::ops::ack(&db, id, &by, now).await.map_err(op_error)?;
                    println!("alert {}: acknowledged by {by}: {}", a.id, a.message);
                }
                AlertsCommand::Resolve { id, note } => {
                    let a = crate::ops::resolve(&db, id, &note, now)
                        .await
                        .map_err(op_error)?;
                    println!("alert {}: resolved: {}", a.id, a.message);
                }
            }
            Ok(ExitCode::Ok)
        }
        Command::Silence { command } => {
            let db = open_db().await?;
            let now = SystemClock.now();
            match command {
                SilenceCommand::Add {
                    pattern,
                    duration,
                    reason,
                    by,
                } => {
                    let by = by
                        .or_else(|| std::env::var("USER").ok())
                        .filter(|s| !s.trim().is_empty())
                        .unwrap_or_else(|| "cli".to_string());
                    let s = crate::ops::add_silence(
                        &db,
                        &pattern,
                        crate::ops::SilenceEnd::For(&duration),
                        &reason,
                        &by,
                        now,
                    )
                    .await
                    .map_err(op_error)?;
                    println!(
                        "silence {}: {} silenced by {by} until {}; every worker honours it from its next alerts or escalation run",
                        s.id,
                        s.pattern,
                        s.ends_at.format("%Y-%m-%d %H:%M:%SZ")
                    );
                }
                SilenceCommand::List { all, json } => {
                    let silences = db
                        .silences(now, all)
                        .await
                        .context("cannot read silences")?;
                    show::silences(&silences, now, json)?;
                }
                SilenceCommand::Remove { id } => {
                    crate::ops::remove_silence(&db, id)
                        .await
                        .map_err(op_error)?;
                    println!("silence {id}: removed; its alerts open, remind and escalate again");
                }
            }
            Ok(ExitCode::Ok)
        }
        Command::Report {
            command: ReportCommand::Show { name, period, json },
        } => {
            let db = open_db().await?;
            let Some(report) = db
                .report(name.as_deref(), period.as_deref())
                .await
                .context("cannot read reports")?
            else {
                let which = match (&name, &period) {
                    (Some(n), Some(p)) => format!(" named {n:?} for {p}"),
                    (Some(n), None) => format!(" named {n:?}"),
                    (None, Some(p)) => format!(" for {p}"),
                    (None, None) => String::new(),
                };
                return Err(UsageError(format!("no report{which} is stored")).into());
            };
            if json {
                println!("{}", report.json);
            } else {
                print!("{}", report.markdown);
            }
            Ok(ExitCode::Ok)
        }
        Command::Health { max_age } => {
            let db = open_db().await?;
            let id = worker_id();
            let row = db.worker(&id).await?;
            match crate::heartbeat::judge(&id, row.as_ref(), SystemClock.now(), max_age) {
                Ok(line) => {
                    println!("{line}");
                    Ok(ExitCode::Ok)
                }
                Err(line) => Err(anyhow::anyhow!(line)),
            }
        }
        Command::Status { json } => {
            let db = open_db().await?;
            let workers = db.workers().await?;
            show::workers(&workers, SystemClock.now(), json)?;
            Ok(ExitCode::Ok)
        }
        Command::Oncall { command } => {
            let config = Config::load(&cli.config)?;
            let at = |name: &str, when: Option<String>| -> anyhow::Result<_> {
                let schedule = oncall::schedule(&config, name)?;
                let at = match when {
                    Some(s) => oncall::parse_at(&s, schedule.timezone())?,
                    None => SystemClock.now(),
                };
                Ok((schedule, at))
            };
            match command {
                OncallCommand::Who { schedule, at: when } => {
                    let (s, t) = at(&schedule, when)?;
                    println!("{}", oncall::who(&schedule, s, t));
                }
                OncallCommand::Show {
                    schedule,
                    days,
                    from,
                } => {
                    let (s, t) = at(&schedule, from)?;
                    print!("{}", oncall::show(&schedule, s, t, days.max(1)));
                }
            }
            Ok(ExitCode::Ok)
        }
        Command::Next { name, count } => {
            let config = Config::load(&cli.config)?;
            let spec = find(&config, &name)?;
            // Interval grids are anchored at the last recorded slot; cron needs no database.
            let last_slot = match spec.schedule {
                crate::schedule::Schedule::Every { .. } => open_db()
                    .await?
                    .last_slots()
                    .await?
                    .get(&spec.name)
                    .copied(),
                crate::schedule::Schedule::Cron { .. } => None,
            };
            show::next(spec, last_slot, SystemClock.now(), count);
            Ok(ExitCode::Ok)
        }
    }
}

/// Used by `run-job`'s outcome.
pub fn outcome_code(outcome: &Outcome) -> ExitCode {
    match outcome {
        Outcome::Ran(r) if r.status == crate::db::RunStatus::Success => ExitCode::Ok,
        _ => ExitCode::JobFailed,
    }
}
