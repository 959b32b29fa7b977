//! `ops-worker`: parse the command line, set up logging and the runtime, run
//! the command, print an error once with its cause chain, map it to an exit
//! code (0 ok, 1 job failed, 2 bad usage or config, 3 database unavailable).

use std::io::IsTerminal;

use clap::Parser;
use ops_worker::cli::{self, Cli, LogFormat};
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(cli.command.default_log_level()));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match cli.log_format {
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
        LogFormat::Text => logs.init(),
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
            ops_worker::exit_code_for(&e)
        }
    };
    std::process::ExitCode::from(code as u8)
}
