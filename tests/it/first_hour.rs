//! What a new operator meets in the first hour: `--help` that explains
//! every option and the exit codes, and the shipped schedules.toml, which
//! runs clean on a machine with nothing else installed.

use clap::CommandFactory;
use ops_worker::cli::Cli;

use crate::cli::bin;

/// Every command and subcommand, as the words that name it (`["alerts",
/// "list"]`), with its definition.
fn commands(cmd: &clap::Command, path: Vec<String>, out: &mut Vec<(Vec<String>, clap::Command)>) {
    out.push((path.clone(), cmd.clone()));
    for sub in cmd.get_subcommands() {
        let mut p = path.clone();
        p.push(sub.get_name().to_string());
        commands(sub, p, out);
    }
}

/// `--help` of every command (walking clap's tree, so a new command or
/// option is checked without a change here) describes each argument and
/// states the command's exit codes; the real binary prints both.
#[test]
fn every_commands_help_describes_its_arguments_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let mut all = Vec::new();
    commands(&Cli::command(), Vec::new(), &mut all);
    assert!(all.len() >= 20, "only {} commands found", all.len());
    let mut failures = Vec::new();
    for (path, cmd) in &all {
        let name = if path.is_empty() {
            "ops-worker".to_string()
        } else {
            path.join(" ")
        };
        let out = bin(dir.path()).args(path).arg("--help").output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        if out.status.code() != Some(0) {
            failures.push(format!("{name} --help exited {:?}", out.status.code()));
            continue;
        }
        if !help.contains("\nExit codes:\n  0  ") {
            failures.push(format!(
                "{name} --help does not list its exit codes:\n{help}"
            ));
        }
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "help" | "version") || arg.is_hide_set() {
                continue;
            }
            let text = arg
                .get_long_help()
                .or(arg.get_help())
                .map(ToString::to_string)
                .unwrap_or_default();
            if text.trim().is_empty() {
                failures.push(format!("{name}: argument {id} has no description"));
            } else if !help.contains(text.lines().next().unwrap()) {
                failures.push(format!(
                    "{name} --help does not show the description of {id}: {text:?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
