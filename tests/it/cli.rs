//! The real `ops-worker` binary in a clean environment: exit codes, error
//! lines, manual runs, SIGTERM drain and start-up recovery, on both backends.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use chrono::Utc;
use ops_worker::db::{NewRun, RunRecord, RunStatus, Trigger};

use crate::fixtures::eventually;
use crate::helpers::TestDb;

/// The binary with nothing of this process's environment but PATH, run in `dir`.
pub(crate) fn bin(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ops-worker"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .current_dir(dir)
        .stdin(Stdio::null());
    cmd
}

pub(crate) fn with_db(dir: &Path, db: &TestDb) -> Command {
    let mut cmd = bin(dir);
    cmd.env("DATABASE_URL", db.url_string());
    cmd
}

fn write_config(dir: &Path, text: &str) {
    std::fs::write(dir.join("schedules.toml"), text).unwrap();
}

#[track_caller]
fn code(out: &Output) -> i32 {
    out.status
        .code()
        .unwrap_or_else(|| panic!("killed by a signal: {out:?}"))
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const GOOD: &str = r#"
[jobs.ok]
kind = "command"
every = "1h"
command = ["sh", "-c", "echo hello"]

[jobs.bad]
kind = "command"
every = "1h"
command = ["sh", "-c", "echo oops >&2; exit 3"]

[jobs.berlin]
kind = "command"
cron = "0 30 2 * * *"
timezone = "Europe/Berlin"
command = ["true"]
"#;

/// With acknowledge links configured, `validate` refuses a short
/// `OPS_WORKER_SECRET` with the line `serve` refuses to start with, and
/// prints the secret nowhere.
#[test]
fn validate_refuses_a_short_secret_as_serve_does() {
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        &format!("{GOOD}\n[api]\npublic_url = \"https://ops.example.com\"\n"),
    );
    let short = "short-s3cr3t";
    let run = |args: &[&str], secret: &str| {
        bin(dir.path())
            .args(args)
            .env("OPS_WORKER_SECRET", secret)
            .output()
            .unwrap()
    };
    let validate = run(&["validate"], short);
    assert_eq!(code(&validate), 2, "{}", stdout(&validate));
    assert_eq!(
        stderr(&validate),
        "error: OPS_WORKER_SECRET: must be at least 32 bytes of randomness \
         (e.g. `openssl rand -hex 32`), found 12\n"
    );
    assert_eq!(stdout(&validate), "");
    let serve = run(&["serve"], short);
    assert_eq!(code(&serve), 2, "{}", stdout(&serve));
    assert_eq!(stderr(&serve), stderr(&validate));
    // No database was opened by either.
    assert!(!dir.path().join("ops-worker.db").exists());

    let long = "0123456789abcdef0123456789abcdef";
    let out = run(&["validate"], long);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stdout(&out).contains(long) && !stderr(&out).contains(long));
}

#[test]
fn validate_prints_a_summary_or_every_error_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), GOOD);
    let out = bin(dir.path()).arg("validate").output().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("schedules.toml: ok, 3 jobs (3 enabled)"),
        "{}",
        stdout(&out)
    );

    write_config(dir.path(), "[jobs.x]\nkind = \"command\"\nevery = \"3x\"\ncommand = [\"true\"]\n\n[jobs.y]\nkind = \"nope\"\nevery = \"1s\"\n");
    let out = bin(dir.path()).arg("validate").output().unwrap();
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    let lines: Vec<_> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines[0]
            .starts_with("error: schedules.toml:3:9: job \"x\": every: invalid duration \"3x\""),
        "{err}"
    );
    assert!(
        lines[1].starts_with("error: schedules.toml:7:8: job \"y\": kind: unknown kind \"nope\""),
        "{err}"
    );

    // A missing file: where it was looked for, and how to name another.
    let here = dir.path().canonicalize().unwrap();
    let out = bin(dir.path())
        .args(["--config", "missing.toml", "validate"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
    let given = format!(
        "error: no schedule file at {}/missing.toml (the path given by --config or \
         OPS_WORKER_CONFIG; without either, ops-worker looks for ./schedules.toml in the current directory)\n",
        here.display()
    );
    assert_eq!(stderr(&out), given);
    // OPS_WORKER_CONFIG selects the file too.
    let out = bin(dir.path())
        .env("OPS_WORKER_CONFIG", "missing.toml")
        .arg("validate")
        .output()
        .unwrap();
    assert_eq!((code(&out), stderr(&out)), (2, given));
    // The default, in a directory without one: every command that reads it.
    let empty = tempfile::tempdir().unwrap();
    let empty_dir = empty.path().canonicalize().unwrap();
    for args in [&["validate"][..], &["list"], &["run"], &["run-job", "x"]] {
        let out = bin(empty.path()).args(args).output().unwrap();
        assert_eq!(
            (code(&out), stderr(&out)),
            (
                2,
                format!(
                    "error: no schedule file at {}/schedules.toml (ops-worker looks for \
                     ./schedules.toml in the current directory; set --config PATH or OPS_WORKER_CONFIG)\n",
                    empty_dir.display()
                )
            ),
            "{args:?}"
        );
    }
}

#[test]
fn bad_usage_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), GOOD);
    let out = bin(dir.path()).arg("frobnicate").output().unwrap();
    assert_eq!(code(&out), 2);
    let out = bin(dir.path()).args(["run-job", "nope"]).output().unwrap();
    assert_eq!(code(&out), 2);
    assert_eq!(
        stderr(&out).trim(),
        "error: unknown job \"nope\" in schedules.toml (jobs: bad, berlin, ok)"
    );
    let out = bin(dir.path())
        .args(["run-job", "ok"])
        .env("DATABASE_URL", "mysql://db/x")
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("DATABASE_URL"), "{}", stderr(&out));
}

#[test]
fn an_unreachable_database_exits_3_without_showing_the_password() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), GOOD);
    for args in [&["list"][..], &["run-job", "ok"], &["migrate"], &["run"]] {
        let out = bin(dir.path())
            .args(args)
            .env("DATABASE_URL", "postgres://ops:hunter2@127.0.0.1:1/ops")
            .output()
            .unwrap();
        assert_eq!(code(&out), 3, "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("postgres://ops:***@127.0.0.1:1/ops") && !err.contains("hunter2"),
            "{err}"
        );
        assert_eq!(
            err.lines().filter(|l| l.starts_with("error:")).count(),
            1,
            "printed once: {err}"
        );
    }
}

#[test]
fn next_shows_utc_and_local_times_without_a_database() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), GOOD);
    let out = bin(dir.path())
        .args(["next", "berlin", "--count", "3"])
        .env("DATABASE_URL", "postgres://x@127.0.0.1:1/x")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let times: Vec<_> = text.lines().skip(1).collect();
    assert_eq!(times.len(), 3, "{text}");
    for line in times {
        // On the last Sunday of March 02:30 does not exist: that one runs at
        // 03:00 CEST, marked.
        assert!(
            (line.contains(":30:00Z") && line.contains(" 02:30:00 CE"))
                || line.contains("(DST: 02:30 does not exist on "),
            "{text}"
        );
    }
}

/// Jobs at 02:30 in Berlin on the last Sundays of March and October only:
/// every fire time falls on a DST change, whatever today is.
const DST: &str = r#"
[jobs.dst-days]
kind = "command"
cron = "0 30 2 * 3,10 0#L"
timezone = "Europe/Berlin"
command = ["true"]

[jobs.noon]
kind = "command"
cron = "0 0 12 * 3,10 0#L"
timezone = "Europe/Berlin"
command = ["true"]

[jobs.utc]
kind = "command"
cron = "0 30 2 * 3,10 0#L"
command = ["true"]
"#;

#[test]
fn next_marks_fire_times_on_a_dst_change() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), DST);
    let out = bin(dir.path())
        .args(["next", "dst-days", "--count", "4"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert_eq!(lines[0], "dst-days: cron 0 30 2 * 3,10 0#L (Europe/Berlin)");
    let (mut spring, mut autumn) = (0, 0);
    for line in &lines[1..] {
        // "  2027-03-28T01:00:00Z  ...": the day is the line's own.
        let day = line.trim_start().get(..10).unwrap_or_default();
        if day.get(5..7) == Some("03") {
            spring += 1;
            assert_eq!(
                *line,
                format!(
                    "  {day}T01:00:00Z  {day} 03:00:00 CEST  \
                     (DST: 02:30 does not exist on {day}, runs at 03:00 CEST instead)"
                ),
                "{text}"
            );
        } else {
            autumn += 1;
            assert_eq!(
                *line,
                format!(
                    "  {day}T00:30:00Z  {day} 02:30:00 CEST  \
                     (DST: 02:30 occurs twice on {day}, runs once, at the first (CEST))"
                ),
                "{text}"
            );
        }
    }
    assert_eq!((spring, autumn), (2, 2), "{text}");

    // Noon is never in a transition hour, and UTC has none.
    for job in ["noon", "utc"] {
        let out = bin(dir.path())
            .args(["next", job, "--count", "4"])
            .output()
            .unwrap();
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let text = stdout(&out);
        assert_eq!(text.lines().count(), 5, "{text}");
        assert!(!text.contains("DST"), "{text}");
    }
}

#[test]
fn validate_warns_about_a_job_in_a_dst_transition_hour_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        r#"[jobs.noon]
kind = "command"
cron = "0 0 12 * * *"
timezone = "Europe/Berlin"
command = ["true"]

[jobs.nightly]
kind = "command"
cron = "0 30 2 * * *"
timezone = "Europe/Berlin"
command = ["true"]

[jobs.tick]
kind = "command"
every = "1h"
command = ["true"]
"#,
    );
    let out = bin(dir.path()).arg("validate").output().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("schedules.toml: ok, 3 jobs (3 enabled)"),
        "{}",
        stdout(&out)
    );
    let err = stderr(&out);
    let lines: Vec<_> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one warning, for nightly only: {err}");
    let rest = lines[0]
        .strip_prefix(
            "warning: schedules.toml:9:8: job \"nightly\": cron \"0 30 2 * * *\" \
             in Europe/Berlin fires inside a DST change: ",
        )
        .unwrap_or_else(|| panic!("{err}"));
    // The next 12 months hold a spring and an autumn change, in date order.
    let changes: Vec<_> = rest.split("; ").collect();
    assert!(changes.len() >= 2, "{err}");
    for change in changes {
        let (day, what) = change.split_at(10);
        match day.get(5..7) {
            Some("03") => assert_eq!(what, " 02:30 does not exist (runs at 03:00)", "{err}"),
            Some("10") => assert_eq!(
                what, " 02:30 occurs twice (runs once, at the first)",
                "{err}"
            ),
            _ => panic!("not a Berlin DST day: {change}: {err}"),
        }
    }

    // A job at noon gets no warning.
    write_config(
        dir.path(),
        "[jobs.noon]\nkind = \"command\"\ncron = \"0 0 12 * * *\"\ntimezone = \"Europe/Berlin\"\ncommand = [\"true\"]\n",
    );
    let out = bin(dir.path()).arg("validate").output().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
}

/// A cron expression no date matches is an error at its value; one that
/// next fires more than a year from now, or never again, is a warning.
/// The years are far from today so the test does not depend on the date.
#[test]
fn validate_rejects_cron_that_never_fires_and_warns_about_rare_cron() {
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        r#"[jobs.feb30]
kind = "command"
cron = "0 0 30 2 *"
command = ["true"]

[jobs.short-months]
kind = "command"
cron = "0 0 31 4,6 *"
command = ["true"]
"#,
    );
    let out = bin(dir.path()).arg("validate").output().unwrap();
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "error: schedules.toml:3:8: job \"feb30\": cron \"0 0 30 2 *\" never fires: day 30 does not exist in February\n\
         error: schedules.toml:8:8: job \"short-months\": cron \"0 0 31 4,6 *\" never fires: day 31 does not exist in April or June\n"
    );

    write_config(
        dir.path(),
        r#"[jobs.far]
kind = "command"
cron = "0 0 0 1 1 * 2099"
timezone = "Europe/Berlin"
command = ["true"]

[jobs.past]
kind = "command"
cron = "0 0 0 1 1 * 2020"
command = ["true"]
"#,
    );
    let out = bin(dir.path()).arg("validate").output().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "warning: schedules.toml:3:8: job \"far\": cron \"0 0 0 1 1 * 2099\" next fires at 2098-12-31T23:00:00Z (2099-01-01 00:00:00 CET), more than a year from now\n\
         warning: schedules.toml:9:8: job \"past\": cron \"0 0 0 1 1 * 2020\" has no fire time left: the job never runs again\n"
    );
}

/// A host without CA certificates (no ca-certificates package; here
/// SSL_CERT_FILE and SSL_CERT_DIR name none) still runs jobs, and plain-HTTP
/// checks work: one warning says HTTPS will fail. (The worker used to panic
/// at start-up building its HTTP client.)
#[test]
fn a_host_without_ca_certificates_warns_and_still_runs_http_checks() {
    // The server runs on a thread of its own; this runtime only starts it.
    let server = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(crate::http::answering(200, "text/plain", "ok"));
    let port = server.address().port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.pem"), "").unwrap();
    write_config(
        dir.path(),
        &format!(
            "[jobs.up]\nkind = \"health\"\nevery = \"1h\"\n\
             targets = [{{ name = \"api\", url = \"http://127.0.0.1:{port}/health\" }}]\n"
        ),
    );
    let out = bin(dir.path())
        .env("SSL_CERT_FILE", dir.path().join("empty.pem"))
        .env("SSL_CERT_DIR", dir.path().join("none"))
        .args(["run-job", "up"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("up: success in "),
        "{}",
        stdout(&out)
    );
    let warnings: Vec<_> = stderr(&out)
        .lines()
        .filter(|l| l.contains("no CA certificates, so HTTPS requests will fail"))
        .map(str::to_owned)
        .collect();
    assert_eq!(warnings.len(), 1, "{}", stderr(&out));
}

/// `run --watch-config` takes `true` or `false`, alone means `true`, and
/// falls back to `OPS_WORKER_WATCH_CONFIG`, which a flag overrides. What the
/// daemon did is in its log: a line when the directory watch is off.
#[test]
fn watch_config_takes_a_value_and_falls_back_to_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        "[jobs.idle]\nkind = \"command\"\nevery = \"1h\"\ncommand = [\"true\"]\n",
    );
    let watch_off = |args: &[&str], env: Option<&str>| -> bool {
        let log_path = dir.path().join("worker.log");
        let mut cmd = bin(dir.path());
        cmd.arg("run")
            .args(args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap());
        if let Some(v) = env {
            cmd.env("OPS_WORKER_WATCH_CONFIG", v);
        }
        let mut child = cmd.spawn().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let started = |log: &str| log.contains("worker started");
        while !started(&std::fs::read_to_string(&log_path).unwrap()) {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "{args:?}: exited with {status}: {}",
                    std::fs::read_to_string(&log_path).unwrap()
                );
            }
            assert!(std::time::Instant::now() < deadline, "{args:?}: no start");
            std::thread::sleep(Duration::from_millis(20));
        }
        sigterm(&child);
        let status = child.wait().unwrap();
        let log = std::fs::read_to_string(&log_path).unwrap();
        assert!(status.success(), "{args:?}: {status}: {log}");
        log.contains("directory watch off")
    };
    assert!(!watch_off(&[], None), "watching is the default");
    assert!(watch_off(&["--watch-config", "false"], None));
    assert!(watch_off(&["--watch-config=false"], None));
    assert!(!watch_off(&["--watch-config", "true"], None));
    assert!(watch_off(&[], Some("false")));
    assert!(!watch_off(&["--watch-config"], Some("false")));
    assert!(!watch_off(&["--watch-config", "true"], Some("false")));
    assert!(watch_off(&["--watch-config", "false"], Some("true")));

    let out = bin(dir.path())
        .args(["run", "--watch-config", "maybe"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("invalid value 'maybe' for '--watch-config [<BOOL>]'"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_embedded_default_is_a_sqlite_file_in_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), GOOD);
    let out = bin(dir.path()).args(["run-job", "ok"]).output().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(dir.path().join("ops-worker.db").exists());
    let out = bin(dir.path())
        .args(["history", "--json"])
        .output()
        .unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 1);
}

/// Every command that only reads, as the CLI table lists them.
const READ_ONLY: &[&[&str]] = &[
    &["list"],
    &["history"],
    &["history", "ok"],
    &["next", "ok"],
    &["alerts", "list"],
    &["report", "show"],
    &["health"],
    &["status"],
];

#[test]
fn read_only_commands_create_no_database() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), GOOD);
    let typo = dir.path().join("typo-dir");
    let typo_db = typo.join("x.db");
    let default_db = dir.path().join("ops-worker.db");
    for (url, file) in [
        (Some(format!("sqlite://{}", typo_db.display())), &typo_db),
        (None, &default_db),
    ] {
        for args in READ_ONLY {
            let mut cmd = bin(dir.path());
            if let Some(url) = &url {
                cmd.env("DATABASE_URL", url);
            }
            let out = cmd.args(*args).output().unwrap();
            assert_eq!(code(&out), 3, "{args:?} {url:?}: {}", stderr(&out));
            assert_eq!(
                stderr(&out).trim(),
                format!(
                    "error: no database at {} (ops-worker run or ops-worker migrate creates it)",
                    file.display()
                ),
                "{args:?} {url:?}"
            );
            assert!(stdout(&out).is_empty(), "{args:?}: {}", stdout(&out));
            assert!(
                !file.exists(),
                "{args:?} {url:?} created {}",
                file.display()
            );
        }
    }
    assert!(!typo.exists(), "no directory is created either");

    // `migrate` creates it (and its directory), and then reading works.
    let typo_url = format!("sqlite://{}", typo_db.display());
    let out = bin(dir.path())
        .env("DATABASE_URL", &typo_url)
        .arg("migrate")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(typo_db.exists());
    let out = bin(dir.path())
        .env("DATABASE_URL", &typo_url)
        .arg("list")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // So does `run-job`, on the unset default.
    let out = bin(dir.path()).args(["run-job", "ok"]).output().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(default_db.exists());
    let out = bin(dir.path()).args(["history", "ok"]).output().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("success"), "{}", stdout(&out));
}

#[test]
fn json_logs_on_request() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), GOOD);
    let out = bin(dir.path())
        .args(["--log-format", "json", "run-job", "ok"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0);
    let line = stderr(&out)
        .lines()
        .find(|l| l.contains("run succeeded"))
        .map(str::to_string)
        .expect("a log line");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["span"]["job"], "ok");
    assert_eq!(v["span"]["trigger"], "manual");
}

#[test]
fn rust_log_filters_by_target_and_a_bad_value_is_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), GOOD);
    let run = |rust_log: &str| {
        bin(dir.path())
            .env("RUST_LOG", rust_log)
            .args(["run-job", "ok"])
            .output()
            .unwrap()
    };
    // Our target off: the run's log line goes.
    let quiet = run("ops_worker=off");
    assert_eq!(code(&quiet), 0);
    assert!(
        !stderr(&quiet).contains("run succeeded"),
        "{}",
        stderr(&quiet)
    );
    // A level that is not one, a directive that is neither a level nor
    // target=level, a span filter: one warning naming the variable, then
    // the default (`info` for run-job) applies and the run is logged (the
    // last two used to be taken as targets no event has, which turned
    // every line off).
    for value in ["ops_worker=loud", "debug[x", "[span]=debug"] {
        let bad = run(value);
        assert_eq!(code(&bad), 0);
        let err = stderr(&bad);
        assert_eq!(
            err.matches(&format!("RUST_LOG={value:?} is not a list"))
                .count(),
            1,
            "{err}"
        );
        assert!(err.contains("run succeeded"), "{value}: {err}");
    }
}

async fn history(db: &TestDb, job: &str) -> Vec<RunRecord> {
    let mut runs = db.db().history(Some(job), 100).await.unwrap();
    runs.reverse();
    runs
}

async fn run_job_records_a_manual_run(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), GOOD);
    let out = with_db(dir.path(), db)
        .args(["run-job", "ok"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let line = stdout(&out);
    assert!(
        line.starts_with("ok: success in ") && line.trim_end().ends_with("(run 1)"),
        "{line}"
    );

    let out = with_db(dir.path(), db)
        .args(["run-job", "bad"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 1);
    assert!(
        stdout(&out).starts_with("bad: failed in "),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains(": exit status 3: oops"),
        "{}",
        stdout(&out)
    );

    let ok = &history(db, "ok").await[0];
    assert_eq!(
        (ok.status, ok.trigger),
        (RunStatus::Success, Trigger::Manual)
    );
    assert_eq!(ok.output.as_deref(), Some("hello"));
    // Recorded under its own worker id, registered only while it ran.
    assert!(ok.worker_id.contains("/run-job/"), "{ok:?}");
    assert_eq!(db.db().workers().await.unwrap(), Vec::new());
    let bad = &history(db, "bad").await[0];
    assert_eq!(bad.status, RunStatus::Failed);

    let out = with_db(dir.path(), db)
        .args(["list", "--json"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = |name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(row("ok")["last_status"], "success");
    assert!(row("ok")["last_success"].is_string());
    assert_eq!(row("bad")["last_status"], "failed");
    assert!(row("bad")["last_success"].is_null());
    assert!(row("berlin")["next_fire"]
        .as_str()
        .unwrap()
        .ends_with(":30:00Z"));

    let out = with_db(dir.path(), db)
        .args(["history", "bad", "--json"])
        .output()
        .unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(runs[0]["status"], "failed");
    assert_eq!(runs[0]["trigger"], "manual");
    let out = with_db(dir.path(), db).arg("history").output().unwrap();
    assert!(
        stdout(&out).lines().count() == 3,
        "header and two runs: {}",
        stdout(&out)
    );
}

/// `run-job` does not wait for a job's jitter and records none (NULL);
/// `history` shows a scheduled run's jitter after its slot, and as
/// `jitter_ms` in JSON.
async fn run_job_ignores_jitter_and_history_shows_it(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        "[jobs.spread]\nkind = \"command\"\nevery = \"1h\"\njitter = \"59m\"\ncommand = [\"true\"]\n",
    );
    let started = std::time::Instant::now();
    let out = with_db(dir.path(), db)
        .args(["run-job", "spread"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(30));
    // A scheduled run an hour earlier that waited 19.625 s.
    let slot = chrono::DurationRound::duration_trunc(
        Utc::now() - chrono::Duration::hours(1),
        chrono::Duration::seconds(1),
    )
    .unwrap();
    let run = NewRun {
        job_name: "spread".into(),
        kind: "command".into(),
        scheduled_for: slot,
        trigger: Trigger::Schedule,
        attempt: 1,
        worker_id: "w1".into(),
        started_at: slot + chrono::Duration::milliseconds(19_630),
        missed: 0,
        jitter_ms: Some(19_625),
    };
    let finish = ops_worker::db::Finish {
        status: RunStatus::Success,
        finished_at: slot + chrono::Duration::seconds(20),
        error: None,
        output: None,
        duration_ms: 370,
    };
    assert!(db.db().insert_finished_run(&run, &finish).await.unwrap());

    let out = with_db(dir.path(), db)
        .args(["history", "spread", "--json"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(runs[0]["trigger"], "manual");
    assert!(
        runs[0].as_object().unwrap()["jitter_ms"].is_null(),
        "{runs}"
    );
    assert_eq!(runs[1]["jitter_ms"], 19_625);

    let out = with_db(dir.path(), db)
        .args(["history", "spread"])
        .output()
        .unwrap();
    let text = stdout(&out);
    let scheduled = format!("{} +19.625s  schedule", slot.format("%Y-%m-%d %H:%M:%SZ"));
    assert!(text.contains(&scheduled), "{text}");
    assert!(
        text.lines().filter(|l| l.contains(" +")).count() == 1,
        "only the scheduled run shows a jitter: {text}"
    );
}

/// A `run` daemon with the given schedule.
pub(crate) fn daemon(dir: &Path, db: &TestDb, config: &str, grace: &str, worker: &str) -> Child {
    write_config(dir, config);
    with_db(dir, db)
        .args(["run", "--grace", grace])
        .env("OPS_WORKER_ID", worker)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

pub(crate) fn sigterm(child: &Child) {
    // SAFETY: kill(2) on a pid this test spawned and has not yet reaped.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
}

/// Waits for the child to exit, failing the test after `limit`.
pub(crate) async fn exit_within(mut child: Child, limit: Duration) -> (i32, String) {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            return (status.code().expect("exited normally"), err);
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the worker did not exit within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_status(db: &TestDb, job: &str, status: RunStatus) {
    eventually(
        Duration::from_secs(20),
        &format!("a {status} run of {job}"),
        || async { history(db, job).await.iter().any(|r| r.status == status) },
    )
    .await;
}

async fn sigterm_lets_running_jobs_finish(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let config = "[jobs.slow]\nkind = \"command\"\nevery = \"1s\"\ncommand = [\"sh\", \"-c\", \"sleep 2; echo done\"]\ntimeout = \"30s\"\n";
    let child = daemon(dir.path(), db, config, "20s", "drain-test");
    wait_status(db, "slow", RunStatus::Running).await;
    sigterm(&child);
    let (code, err) = exit_within(child, Duration::from_secs(15)).await;
    assert_eq!(code, 0, "{err}");
    let runs = history(db, "slow").await;
    assert!(!runs.is_empty());
    for r in &runs {
        assert!(
            matches!(r.status, RunStatus::Success | RunStatus::Skipped),
            "{r:?}"
        );
    }
    assert!(runs
        .iter()
        .any(|r| r.status == RunStatus::Success && r.output.as_deref() == Some("done")));
    assert!(err.contains("worker stopped"), "{err}");
}

async fn sigterm_past_the_grace_interrupts_and_records(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let config = "[jobs.endless]\nkind = \"command\"\nevery = \"1s\"\ncommand = [\"sleep\", \"600\"]\ntimeout = \"10m\"\n";
    let child = daemon(dir.path(), db, config, "1s", "interrupt-test");
    wait_status(db, "endless", RunStatus::Running).await;
    sigterm(&child);
    let (code, err) = exit_within(child, Duration::from_secs(15)).await;
    assert_eq!(code, 0, "{err}");
    let runs = history(db, "endless").await;
    let started: Vec<_> = runs
        .iter()
        .filter(|r| r.status != RunStatus::Skipped)
        .collect();
    assert!(!started.is_empty());
    for r in started {
        assert_eq!(r.status, RunStatus::Interrupted, "{r:?}");
        assert!(r.finished_at.is_some());
    }
}

async fn start_up_marks_this_workers_leftover_runs_abandoned(db: &TestDb) {
    let leftover = |worker: &str| NewRun {
        job_name: "nightly".into(),
        kind: "command".into(),
        scheduled_for: Utc::now() - chrono::Duration::hours(1),
        trigger: Trigger::Schedule,
        attempt: 1,
        worker_id: worker.into(),
        started_at: Utc::now() - chrono::Duration::hours(1),
        missed: 0,
        jitter_ms: None,
    };
    let mine = db
        .db()
        .claim_run(&leftover("crashed-worker"))
        .await
        .unwrap()
        .unwrap();
    let mut other = leftover("other-worker");
    other.scheduled_for -= chrono::Duration::hours(1);
    db.db().claim_run(&other).await.unwrap().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let config = "[jobs.nightly]\nkind = \"command\"\ncron = \"0 0 3 * * *\"\ncommand = [\"true\"]\ncatch_up = \"skip\"\n";
    let child = daemon(dir.path(), db, config, "5s", "crashed-worker");
    wait_status(db, "nightly", RunStatus::Abandoned).await;
    sigterm(&child);
    let (code, err) = exit_within(child, Duration::from_secs(15)).await;
    assert_eq!(code, 0, "{err}");
    let runs = history(db, "nightly").await;
    let mine = runs.iter().find(|r| r.id == mine).unwrap();
    assert_eq!(mine.status, RunStatus::Abandoned);
    assert!(mine.error.as_deref().unwrap().contains("abandoned"));
    let other = runs.iter().find(|r| r.worker_id == "other-worker").unwrap();
    assert_eq!(
        other.status,
        RunStatus::Running,
        "another worker's run is not ours to judge"
    );
    assert!(err.contains("marked abandoned"), "{err}");
}

pub(crate) fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on a pid this test spawned and has not yet reaped.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

async fn a_sigstop_pause_neither_stops_jobs_nor_fires_a_burst(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let config = "[jobs.tick]\nkind = \"command\"\nevery = \"1s\"\ncommand = [\"true\"]\n";
    let child = daemon(dir.path(), db, config, "5s", "pause-test");
    eventually(
        Duration::from_secs(20),
        "two runs before the pause",
        || async {
            history(db, "tick")
                .await
                .iter()
                .filter(|r| r.status == RunStatus::Success)
                .count()
                >= 2
        },
    )
    .await;
    signal(&child, libc::SIGSTOP);
    let paused_at = Utc::now();
    // The pause under test: the process is frozen for 4 s, as a debugger or a suspended VM would.
    tokio::time::sleep(Duration::from_secs(4)).await;
    signal(&child, libc::SIGCONT);
    let before = history(db, "tick").await.len();
    eventually(
        Duration::from_secs(20),
        "three runs after the pause",
        || async { history(db, "tick").await.len() >= before + 3 },
    )
    .await;
    sigterm(&child);
    let (code, err) = exit_within(child, Duration::from_secs(15)).await;
    assert_eq!(code, 0, "{err}");

    let runs = history(db, "tick").await;
    let after: Vec<_> = runs
        .iter()
        .filter(|r| r.scheduled_for > paused_at)
        .collect();
    // The first slot after waking stands for the ones that passed: one run, not a burst.
    let first = after[0];
    assert!(
        first.missed >= 2,
        "the coalesced run reports missed slots: {first:?}"
    );
    for pair in after.windows(2) {
        assert_eq!(
            pair[1].scheduled_for - pair[0].scheduled_for,
            chrono::Duration::seconds(1),
            "{after:#?}"
        );
    }
    assert!(
        runs.iter().all(|r| r.status == RunStatus::Success),
        "{runs:#?}"
    );
}

async fn alerts_can_be_listed_acknowledged_and_resolved(db: &TestDb) {
    use ops_worker_jobs::store::{AlertSource, AlertStore, NewAlert, Severity};
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), GOOD);
    let new = NewAlert {
        fingerprint: "system:service:api".into(),
        source: AlertSource::Service,
        subject: "api".into(),
        severity: Severity::Critical,
        message: "Service api is unhealthy: timed out after 5s".into(),
        opened_at: Utc::now(),
    };
    let id = db
        .db()
        .open_alert(&new, &["ops".into()])
        .await
        .unwrap()
        .unwrap()
        .id;
    let cli = |args: &[&str]| with_db(dir.path(), db).args(args).output().unwrap();

    let out = cli(&["alerts", "list"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Service api is unhealthy"),
        "{}",
        stdout(&out)
    );
    let out = cli(&["alerts", "ack", &id.to_string(), "--by", "alice"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        format!("alert {id}: acknowledged by alice: Service api is unhealthy: timed out after 5s")
    );
    let out = cli(&["alerts", "ack", &id.to_string()]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out).trim(),
        format!("error: cannot acknowledge alert {id}: it is acknowledged")
    );
    let out = cli(&[
        "alerts",
        "resolve",
        &id.to_string(),
        "--note",
        "restarted the pod",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = cli(&["alerts", "list", "--all", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["status"], "resolved");
    assert_eq!(list[0]["acknowledged_by"], "alice");
    assert_eq!(list[0]["resolution_note"], "restarted the pod");
    let out = cli(&["alerts", "list"]);
    assert_eq!(stdout(&out).trim(), "no alerts");
    let out = cli(&["alerts", "resolve", "999999"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("no alert 999999"), "{}", stderr(&out));
}

/// The daemon hands jobs its schedules: `alerts` watching jobs sees a
/// failing one and opens `job:NAME`.
async fn the_daemons_alerts_job_watches_the_other_jobs(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let config = "[jobs.flaky]\nkind = \"command\"\nevery = \"1s\"\ncommand = [\"false\"]\n\n\
                  [jobs.alerts]\nkind = \"alerts\"\nevery = \"1s\"\nfail_after = 2\n";
    let child = daemon(dir.path(), db, config, "5s", "watch-test");
    eventually(Duration::from_secs(30), "a job:flaky alert", || async {
        db.db()
            .list_alerts(false, 10)
            .await
            .unwrap()
            .iter()
            .any(|a| a.fingerprint == "job:flaky")
    })
    .await;
    sigterm(&child);
    let (code, err) = exit_within(child, Duration::from_secs(20)).await;
    assert_eq!(code, 0, "{err}");
}

/// The container's healthcheck: `health` passes while the daemon's
/// heartbeat is fresh and fails once it stopped; `status` shows the worker.
async fn health_follows_the_daemons_heartbeat(db: &TestDb) {
    use sha2::Digest;
    let dir = tempfile::tempdir().unwrap();
    let config = "[jobs.tick]\nkind = \"command\"\nevery = \"1h\"\ncommand = [\"true\"]\n";
    let hash: String = sha2::Sha256::digest(config.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let cli = |args: &[&str]| {
        with_db(dir.path(), db)
            .env("OPS_WORKER_ID", "hb-test")
            .args(args)
            .output()
            .unwrap()
    };
    let out = cli(&["health"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("worker \"hb-test\" has never run against this database"),
        "{}",
        stderr(&out)
    );

    let child = daemon(dir.path(), db, config, "5s", "hb-test");
    eventually(Duration::from_secs(30), "health passes", || async {
        code(&cli(&["health"])) == 0
    })
    .await;
    let out = cli(&["health"]);
    assert!(
        stdout(&out).starts_with("worker \"hb-test\": alive, last heartbeat "),
        "{}",
        stdout(&out)
    );
    let first = db.db().worker("hb-test").await.unwrap().unwrap();
    assert_eq!(first.config_hash, hash);
    assert_eq!(first.pid, child.id() as i32);
    // The running scheduler refreshes it.
    eventually(Duration::from_secs(20), "a newer heartbeat", || async {
        db.db()
            .worker("hb-test")
            .await
            .unwrap()
            .unwrap()
            .heartbeat_at
            > first.heartbeat_at
    })
    .await;
    let out = cli(&["status"]);
    let line = stdout(&out)
        .lines()
        .find(|l| l.starts_with("hb-test"))
        .unwrap_or_default()
        .to_string();
    assert!(
        line.contains(" running ") && line.contains(&hash[..12]),
        "{}",
        stdout(&out)
    );

    sigterm(&child);
    let (code_, err) = exit_within(child, Duration::from_secs(20)).await;
    assert_eq!(code_, 0, "{err}");
    let out = cli(&["health"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("worker \"hb-test\" stopped at"),
        "{}",
        stderr(&out)
    );
    let out = cli(&["status", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["state"], "stopped");

    // A worker whose heartbeat stopped without a clean stop (killed, paused).
    let now = Utc::now();
    let mut stale = ops_worker::heartbeat::this_worker("hb-stale", &hash, now);
    stale.heartbeat_at = now - chrono::TimeDelta::seconds(40);
    db.db().register_worker(&stale).await.unwrap();
    let out = with_db(dir.path(), db)
        .env("OPS_WORKER_ID", "hb-stale")
        .arg("health")
        .output()
        .unwrap();
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("s ago, more than 30s"),
        "{}",
        stderr(&out)
    );
    let out = cli(&["health", "--max-age", "1m"]);
    assert_eq!(code(&out), 1, "stopped stays stopped");
}

/// Inodes of the TCP sockets process `pid` listens on.
fn listening_sockets(pid: u32) -> Vec<String> {
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let mut listening = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in std::fs::read_to_string(table)
            .unwrap_or_default()
            .lines()
            .skip(1)
        {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // st 0A is LISTEN; the inode is the tenth column.
            if cols.get(3) == Some(&"0A") && fds.iter().any(|f| Some(&f.as_str()) == cols.get(9)) {
                listening.push(cols[9].to_string());
            }
        }
    }
    listening
}

/// `/metrics` with METRICS_ADDR set: runs by status, durations, the next
/// fire, up and the config hash; no listening socket at all without it.
async fn metrics_are_served_only_when_asked(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let config = "[jobs.tick]\nkind = \"command\"\nevery = \"1s\"\ncommand = [\"true\"]\n";
    write_config(dir.path(), config);
    // Empty is off too, as a compose file's `${METRICS_ADDR:-}` passes it.
    let child = with_db(dir.path(), db)
        .args(["run", "--grace", "5s"])
        .env("OPS_WORKER_ID", "no-metrics")
        .env("METRICS_ADDR", "")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_status(db, "tick", RunStatus::Success).await;
    assert_eq!(listening_sockets(child.id()), Vec::<String>::new());
    sigterm(&child);
    assert_eq!(exit_within(child, Duration::from_secs(20)).await.0, 0);

    let port = crate::http::unused_port();
    write_config(dir.path(), config);
    let child = with_db(dir.path(), db)
        .args(["run", "--grace", "5s"])
        .env("OPS_WORKER_ID", "metrics-test")
        .env("METRICS_ADDR", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let http = ops_worker_jobs::health::http_client();
    let url = format!("http://127.0.0.1:{port}/metrics");
    let scrape = || async {
        let resp = http.get(&url).send().await.ok()?;
        let ct = resp
            .headers()
            .get("content-type")?
            .to_str()
            .ok()?
            .to_string();
        Some((ct, resp.text().await.ok()?))
    };
    eventually(
        Duration::from_secs(30),
        "two successful runs scraped",
        || async {
            scrape().await.is_some_and(|(_, t)| {
                t.lines().any(|l| {
                    l.starts_with("ops_worker_runs_total{job=\"tick\",status=\"success\"} ")
                        && l.rsplit(' ').next().and_then(|n| n.parse::<u64>().ok()) >= Some(2)
                })
            })
        },
    )
    .await;
    assert_eq!(
        listening_sockets(child.id()).len(),
        1,
        "the metrics port only"
    );
    let (content_type, text) = scrape().await.unwrap();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let hash = &db
        .db()
        .worker("metrics-test")
        .await
        .unwrap()
        .unwrap()
        .config_hash;
    for want in [
        "ops_worker_up 1".to_string(),
        format!(
            "ops_worker_config_info{{hash=\"{hash}\",version=\"{}\",worker_id=\"metrics-test\"}} 1",
            env!("CARGO_PKG_VERSION")
        ),
        "ops_worker_running{job=\"tick\"} ".to_string(),
        "ops_worker_next_fire_timestamp_seconds{job=\"tick\"} ".to_string(),
        "ops_worker_last_success_timestamp_seconds{job=\"tick\"} ".to_string(),
        "ops_worker_fire_lateness_seconds_count{job=\"tick\"} ".to_string(),
        "ops_worker_run_duration_seconds_bucket{le=\"+Inf\",job=\"tick\"} ".to_string(),
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(&want)),
            "no {want:?} in\n{text}"
        );
    }
    // The next fire is in the future, within the interval.
    let next: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("ops_worker_next_fire_timestamp_seconds{job=\"tick\"} "))
        .unwrap()
        .parse()
        .unwrap();
    let now = Utc::now().timestamp_micros() as f64 / 1e6;
    assert!(
        next > now - 1.0 && next <= now + 1.5,
        "next {next}, now {now}"
    );
    let other = http
        .get(format!("http://127.0.0.1:{port}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status().as_u16(), 404);
    sigterm(&child);
    assert_eq!(exit_within(child, Duration::from_secs(20)).await.0, 0);

    // A METRICS_ADDR that is not an address is a usage error naming it.
    let out = with_db(dir.path(), db)
        .arg("run")
        .env("METRICS_ADDR", "localhost:http")
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("METRICS_ADDR"), "{}", stderr(&out));
}

/// A worker killed mid-run, and one paused past `--dead-after`: a live
/// worker marks their runs abandoned; the paused one, resumed, finishes its
/// run late and that is noted on the row, not written over it.
async fn a_live_worker_abandons_the_runs_of_dead_and_paused_ones(db: &TestDb) {
    let (dir_a, dir_b, dir_c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let slow = |job: &str, secs: u32| {
        format!("[jobs.{job}]\nkind = \"command\"\nevery = \"1s\"\ncommand = [\"sleep\", \"{secs}\"]\ntimeout = \"1m\"\n")
    };
    // Each starts a run within a second; later slots are skipped while it goes.
    let killed = daemon(dir_a.path(), db, &slow("killed-job", 60), "5s", "w-killed");
    let paused = daemon(dir_b.path(), db, &slow("paused-job", 12), "5s", "w-paused");
    wait_status(db, "killed-job", RunStatus::Running).await;
    wait_status(db, "paused-job", RunStatus::Running).await;
    signal(&killed, libc::SIGKILL);
    signal(&paused, libc::SIGSTOP);
    let watcher_config = "[jobs.idle]\nkind = \"command\"\nevery = \"1h\"\ncommand = [\"true\"]\n";
    write_config(dir_c.path(), watcher_config);
    let watcher = with_db(dir_c.path(), db)
        .args(["run", "--grace", "5s", "--dead-after", "10s"])
        .env("OPS_WORKER_ID", "w-watcher")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for job in ["killed-job", "paused-job"] {
        eventually(
            Duration::from_secs(40),
            &format!("{job} abandoned"),
            || async {
                history(db, job)
                    .await
                    .iter()
                    .any(|r| r.status == RunStatus::Abandoned)
            },
        )
        .await;
    }
    let abandoned = |runs: Vec<RunRecord>| {
        runs.into_iter()
            .find(|r| r.status == RunStatus::Abandoned)
            .unwrap()
    };
    let run = &abandoned(history(db, "killed-job").await);
    assert!(
        run.error
            .as_deref()
            .unwrap()
            .contains("its worker stopped heartbeating")
            && run
                .error
                .as_deref()
                .unwrap()
                .contains("marked by worker w-watcher"),
        "{run:?}"
    );
    // Resumed: its run ends (sleep 12 has run out) and the late outcome is noted.
    signal(&paused, libc::SIGCONT);
    eventually(Duration::from_secs(30), "the late finish noted", || async {
        abandoned(history(db, "paused-job").await)
            .error
            .is_some_and(|e| e.contains("its worker finished it late"))
    })
    .await;
    let run = &abandoned(history(db, "paused-job").await);
    assert_eq!(run.status, RunStatus::Abandoned, "{run:?}");
    assert!(
        run.error.as_deref().unwrap().ends_with(": success"),
        "{run:?}"
    );
    for child in [paused, watcher] {
        sigterm(&child);
        let (code, err) = exit_within(child, Duration::from_secs(20)).await;
        assert_eq!(code, 0, "{err}");
    }
    let mut killed = killed;
    let _ = killed.wait();
}

/// `retry_abandoned = true`: the slot a killed worker was running runs once
/// more, as the next attempt, on a live worker.
async fn an_abandoned_slot_runs_again_on_a_live_worker(db: &TestDb) {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let marker = dir_a.path().join("first-attempt");
    // The first attempt leaves a marker and hangs; the retry sees it and ends.
    let job = |every: &str| {
        format!(
            "[jobs.once]\nkind = \"command\"\nevery = \"{every}\"\nretry_abandoned = true\ntimeout = \"2m\"\n\
             command = [\"sh\", \"-c\", \"if [ -e {m} ]; then echo retried; else touch {m}; sleep 60; fi\"]\n",
            m = marker.display()
        )
    };
    let killed = daemon(dir_a.path(), db, &job("1s"), "5s", "w-dies");
    // Its row is written before the command starts: wait for the marker.
    eventually(
        Duration::from_secs(20),
        "the first attempt's marker",
        || {
            let there = marker.exists();
            async move { there }
        },
    )
    .await;
    signal(&killed, libc::SIGKILL);
    // The live worker has the job too (on a schedule that does not fire here).
    write_config(dir_b.path(), &job("1h"));
    let live = with_db(dir_b.path(), db)
        .args(["run", "--grace", "5s", "--dead-after", "10s"])
        .env("OPS_WORKER_ID", "w-lives")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Judged dead 10 s after its last heartbeat, and only once the live
    // worker's own heartbeats have held 10 s: about 15 s, more under load.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !history(db, "once")
        .await
        .iter()
        .any(|r| r.status == RunStatus::Success)
    {
        if std::time::Instant::now() > deadline {
            sigterm(&live);
            let (_, err) = exit_within(live, Duration::from_secs(20)).await;
            panic!(
                "no successful retry within 60 s: {:#?}\nthe live worker's log:\n{err}",
                history(db, "once").await
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let runs = history(db, "once").await;
    let first = runs
        .iter()
        .find(|r| r.status == RunStatus::Abandoned)
        .unwrap();
    let retry = runs
        .iter()
        .find(|r| r.status == RunStatus::Success)
        .unwrap();
    assert_eq!(
        (
            retry.scheduled_for,
            retry.attempt,
            retry.trigger,
            retry.worker_id.as_str(),
            retry.output.as_deref()
        ),
        (
            first.scheduled_for,
            first.attempt + 1,
            Trigger::Retry,
            "w-lives",
            Some("retried")
        ),
        "{runs:#?}"
    );
    sigterm(&live);
    let (code, err) = exit_within(live, Duration::from_secs(20)).await;
    assert_eq!(code, 0, "{err}");
    let mut killed = killed;
    let _ = killed.wait();
}

crate::backend_tests!(
    an_abandoned_slot_runs_again_on_a_live_worker,
    a_live_worker_abandons_the_runs_of_dead_and_paused_ones,
    metrics_are_served_only_when_asked,
    health_follows_the_daemons_heartbeat,
    the_daemons_alerts_job_watches_the_other_jobs,
    run_job_records_a_manual_run,
    run_job_ignores_jitter_and_history_shows_it,
    alerts_can_be_listed_acknowledged_and_resolved,
    a_sigstop_pause_neither_stops_jobs_nor_fires_a_burst,
    sigterm_lets_running_jobs_finish,
    sigterm_past_the_grace_interrupts_and_records,
    start_up_marks_this_workers_leftover_runs_abandoned,
);

const ONCALL: &str = r#"
[jobs.ok]
kind = "command"
every = "1h"
command = ["true"]

[notify.a-hook]
type = "webhook"
url = "http://127.0.0.1:9/hook"

[people.alice]
notify = ["a-hook"]

[people.bob]
notify = ["a-hook"]

[oncall.primary]
timezone = "Europe/Berlin"
layers = [{ members = ["alice", "bob"], rotation = "weekly", handoff = "2026-11-02T09:00" }]
"#;

#[test]
fn oncall_who_and_show_read_the_schedule_file() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), ONCALL);
    let run = |args: &[&str]| bin(dir.path()).args(args).output().unwrap();

    let out = run(&["oncall", "who", "primary", "--at", "2026-11-03T12:00:00Z"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "primary (Europe/Berlin) at 2026-11-03 13:00 CET: alice, on call from 2026-11-02 09:00 CET to 2026-11-09 09:00 CET\n"
    );
    // A local time in the schedule's zone; before the first handoff nobody is.
    let out = run(&["oncall", "who", "primary", "--at", "2026-11-02T08:59"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("primary (Europe/Berlin) at 2026-11-02 08:59 CET: nobody"),
        "{}",
        stdout(&out)
    );

    let out = run(&[
        "oncall",
        "show",
        "primary",
        "--from",
        "2026-11-08T00:00",
        "--days",
        "2",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "primary (Europe/Berlin), 2026-11-08 00:00 CET to 2026-11-10 00:00 CET:\n\
         \x20 2026-11-08 00:00 CET  to  2026-11-09 09:00 CET  alice\n\
         \x20 2026-11-09 09:00 CET  to  2026-11-10 00:00 CET  bob\n"
    );

    let out = run(&["oncall", "who", "secondary"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("no on-call schedule \"secondary\""),
        "{}",
        stderr(&out)
    );
    let out = run(&["oncall", "who", "primary", "--at", "soon"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("--at \"soon\""), "{}", stderr(&out));
}
