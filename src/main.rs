//! `ops-worker`: parse the command line, set up logging and the runtime, run
//! the command, print an error once with its cause chain, map it to an exit
//! code (0 ok, 1 job failed, 2 bad usage or config, 3 database unavailable,
//! 130 and 143 for a `run-job` stopped by SIGINT or SIGTERM).

use std::io::IsTerminal;

use clap::Parser;
use ops_worker::cli::{self, Cli, LogFormat};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

fn main() -> std::process::ExitCode {
    ops_worker::memory::limit_arenas();
    let cli = Cli::parse();
    let (filter, bad_filter) = ops_worker::cli::log_filter(cli.command.default_log_level());
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let registry = tracing_subscriber::registry().with(filter);
    match cli.log_format {
        LogFormat::Json => registry
            .with(logs.json().flatten_event(true).with_current_span(true))
            .init(),
        LogFormat::Text => registry.with(logs).init(),
    }
    if let Some(problem) = bad_filter {
        tracing::warn!("{problem}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("ops-worker")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    let code = match runtime.block_on(cli::dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            // A config error holds one problem per line; each gets the prefix.
            for line in ops_worker::error_chain(e.as_ref()).lines() {
                eprintln!("error: {line}");
            }
            ops_worker::cli::exit_code_for(&e)
        }
    };
    std::process::ExitCode::from(code as u8)
}
