//! The `command` kind: runs one program from an argv (no shell unless the argv
//! names one) and records how it ended plus the tail of what it printed.
//!
//! This file owns the child's whole life: spawning it in a process group of
//! its own, reading both pipes while it runs, stopping the group when the run
//! is cancelled, and making sure nothing in the group outlives the run, even
//! when the run's future is dropped half-way. It does not own timeouts or
//! retries (the runner fires `ctx.cancel`) and never records anything itself.
//!
//! Settings, in the job's table of schedules.toml:
//!
//! ```toml
//! command = ["backup.sh", "--full"]     # required: the program, then its arguments
//! env = { BACKUP_DIR = "/srv/backup" }  # optional: added to the worker's environment
//! workdir = "/srv"                      # optional: where the program starts
//! ```
//!
//! The child also gets `OPS_WORKER_JOB` (the job's name) and
//! `OPS_WORKER_SCHEDULED_FOR` (the slot, RFC 3339 UTC); these win over `env`.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::pin::{pin, Pin};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use async_trait::async_trait;
use chrono::SecondsFormat;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};

use crate::{BuildError, Job, JobContext, JobError, JobOutput, Settings};

/// How long a cancelled command gets between SIGTERM and SIGKILL. Measured on
/// tokio's monotonic timer, not `ctx.clock`: it is a grace for a real process,
/// not a point on the schedule.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// How much of stdout and of stderr a run keeps. The end is kept because that
/// is where a failing program says why.
const TAIL_BYTES: usize = 4096;

/// How long to keep reading after the process group has been killed. Every
/// process in the group is dead by then, so the pipes close at once unless a
/// process left the group (setsid) still holding them; the run must not wait
/// for such a daemon.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// The longest stderr line quoted in a failure message.
const REASON_CHARS: usize = 200;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandSettings {
    command: Argv,
    #[serde(default)]
    env: Env,
    workdir: Option<PathBuf>,
}

/// A job that runs one program; see the module docs for its settings.
#[derive(Debug)]
pub struct CommandJob {
    /// Never empty, and `argv[0]` is never empty: [`Argv`] rejects both.
    argv: Vec<String>,
    env: BTreeMap<String, String>,
    workdir: Option<PathBuf>,
}

impl CommandJob {
    pub fn from_settings(_name: &str, settings: Settings<'_>) -> Result<Self, BuildError> {
        let s = CommandSettings::deserialize(settings)?;
        Ok(CommandJob {
            argv: s.command.0,
            env: s.env.0,
            workdir: s.workdir,
        })
    }

    fn program(&self) -> &str {
        &self.argv[0]
    }

    fn command(&self, ctx: &JobContext) -> Command {
        let mut cmd = Command::new(self.program());
        cmd.args(&self.argv[1..])
            .envs(&self.env)
            .env("OPS_WORKER_JOB", &*ctx.job)
            .env(
                "OPS_WORKER_SCHEDULED_FOR",
                ctx.scheduled_for
                    .to_rfc3339_opts(SecondsFormat::AutoSi, true),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A group of its own lets us signal the whole tree the command
            // starts, not just its first process, and keeps a Ctrl-C at the
            // worker's terminal from reaching jobs behind the worker's back:
            // shutdown stops them in order through `ctx.cancel`.
            .process_group(0)
            // Covers the paths where we stop waiting (the future is dropped,
            // or `wait` fails): tokio then kills and reaps the child, so it
            // never stays a zombie.
            .kill_on_drop(true);
        if let Some(dir) = &self.workdir {
            cmd.current_dir(dir);
        }
        cmd
    }

    /// Turns a failed spawn into a message that names what was wrong. The OS
    /// reports a missing workdir as a bare ENOENT, indistinguishable from a
    /// missing program, so the workdir is looked at separately.
    fn spawn_error(&self, err: io::Error) -> JobError {
        let program = self.program();
        let Some(dir) = &self.workdir else {
            return JobError::new(format!("cannot start {program:?}: {err}"));
        };
        let message = match std::fs::metadata(dir) {
            Err(meta_err) => format!("cannot start {program:?}: workdir {dir:?}: {meta_err}"),
            Ok(meta) if !meta.is_dir() => {
                format!("cannot start {program:?}: workdir {dir:?} is not a directory")
            }
            Ok(_) => format!("cannot start {program:?} in workdir {dir:?}: {err}"),
        };
        JobError::new(message)
    }
}

#[async_trait]
impl Job for CommandJob {
    async fn run(&self, ctx: JobContext) -> Result<JobOutput, JobError> {
        if ctx.cancel.is_cancelled() {
            return Err(JobError::new("cancelled before start"));
        }
        let mut child = self
            .command(&ctx)
            .spawn()
            .map_err(|e| self.spawn_error(e))?;
        let Some(pgid) = child.id().and_then(|id| libc::pid_t::try_from(id).ok()) else {
            // Cannot happen before the child is waited for; dropping it kills
            // and reaps it (kill_on_drop).
            return Err(JobError::new(format!(
                "started {:?} but got no process id for it",
                self.program()
            )));
        };
        // Declared after `child`, so on a drop it goes first and kills the
        // group while the leader still holds the group id.
        let mut group = ProcessGroup::new(pgid);

        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let mut out = Tail::default();
        let mut err = Tail::default();
        let (ending, status) = {
            // Both pipes are read for as long as anything may write to them:
            // a child blocked on a full pipe would never exit.
            let mut drain = pin!(async {
                tokio::join!(out.fill(stdout), err.fill(stderr));
            });
            let mut drained = false;
            let ended = wait_or_cancel(&mut child, &group, &ctx, drain.as_mut(), &mut drained);
            let ended = ended.await;

            // The main process is gone, but background children it left can
            // hold the pipes open forever and keep running unsupervised.
            // Like systemd's KillMode=control-group, the run ends with its
            // group. (The leader is already reaped here, so in theory its pid
            // could be reused as a new group id; that needs the pid space to
            // wrap within microseconds, which we accept.)
            group.kill_rest();
            if !drained && tokio::time::timeout(DRAIN_GRACE, drain).await.is_err() {
                tracing::warn!(
                    job = %ctx.job,
                    "output pipes still open {DRAIN_GRACE:?} after the command's process group \
                     was killed (a process left the group, e.g. with setsid); output may be cut short"
                );
            }
            ended
        };

        let stderr = err.finish();
        let output = combine(&out.finish().shown(), &stderr.shown());
        let status = status.map_err(|e| JobError {
            message: format!("cannot wait for {:?}: {e}", self.program()),
            output: output.clone(),
        })?;
        let message = match ending {
            Ending::Exited if status.success() => return Ok(JobOutput { output }),
            Ending::Exited => match last_line(&stderr.text) {
                Some(line) => format!("{}: {line}", describe(status)),
                None => describe(status),
            },
            Ending::Terminated => "cancelled: terminated (SIGTERM)".to_owned(),
            Ending::Killed => format!(
                "cancelled: killed (SIGKILL) after {}s",
                KILL_GRACE.as_secs()
            ),
        };
        Err(JobError { message, output })
    }
}

/// How the main process came to an end.
enum Ending {
    /// On its own.
    Exited,
    /// After `ctx.cancel` and SIGTERM, within the grace.
    Terminated,
    /// After `ctx.cancel`, SIGTERM and the grace, by SIGKILL.
    Killed,
}

/// Waits for the main process while draining its pipes; on cancellation
/// stops the group, politely first.
async fn wait_or_cancel(
    child: &mut Child,
    group: &ProcessGroup,
    ctx: &JobContext,
    mut drain: Pin<&mut impl Future<Output = ()>>,
    drained: &mut bool,
) -> (Ending, io::Result<ExitStatus>) {
    let exited = while_draining(drain.as_mut(), drained, async {
        tokio::select! {
            // An exit that is already there wins over a late cancellation.
            biased;
            status = child.wait() => Some(status),
            () = ctx.cancel.cancelled() => None,
        }
    })
    .await;
    if let Some(status) = exited {
        return (Ending::Exited, status);
    }

    group.signal(libc::SIGTERM);
    let graceful = tokio::time::timeout(KILL_GRACE, child.wait());
    if let Ok(status) = while_draining(drain.as_mut(), drained, graceful).await {
        return (Ending::Terminated, status);
    }
    group.signal(libc::SIGKILL);
    let status = while_draining(drain, drained, child.wait()).await;
    (Ending::Killed, status)
}

/// Runs `fut` to completion while also polling `drain`, until the latter is
/// done (`drained` remembers that, so it is never polled after finishing).
async fn while_draining<T>(
    mut drain: Pin<&mut impl Future<Output = ()>>,
    drained: &mut bool,
    fut: impl Future<Output = T>,
) -> T {
    let mut fut = pin!(fut);
    loop {
        tokio::select! {
            biased;
            value = &mut fut => return value,
            () = drain.as_mut(), if !*drained => *drained = true,
        }
    }
}

/// The child's process group. Dropped while armed (the run's future was
/// dropped before the run finished), it SIGKILLs the group, so no process
/// outlives an aborted run.
struct ProcessGroup {
    pgid: libc::pid_t,
    armed: bool,
}

impl ProcessGroup {
    fn new(pgid: libc::pid_t) -> Self {
        ProcessGroup { pgid, armed: true }
    }

    fn signal(&self, signal: libc::c_int) {
        if let Err(e) = signal_group(self.pgid, signal) {
            tracing::warn!(pgid = self.pgid, signal, "cannot signal process group: {e}");
        }
    }

    /// Kills whatever is left of the group once the run is over.
    fn kill_rest(&mut self) {
        self.signal(libc::SIGKILL);
        self.armed = false;
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if self.armed {
            self.signal(libc::SIGKILL);
        }
    }
}

/// Sends `signal` to every process in group `pgid`. A group that no longer
/// exists is not an error: everything in it is already gone.
fn signal_group(pgid: libc::pid_t, signal: libc::c_int) -> io::Result<()> {
    // killpg(0) would signal our own group and kill(-1) every process we may
    // signal; a child's group id is never either, so refuse rather than risk it.
    if pgid <= 1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refusing to signal process group {pgid}"),
        ));
    }
    // SAFETY: killpg takes two integers and touches no memory of ours, so it
    // cannot break Rust's invariants. The only hazard is signalling the wrong
    // processes, which the check above and the callers (who pass only the
    // group id of a child they spawned with process_group(0)) rule out.
    let rc = unsafe { libc::killpg(pgid, signal) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) {
        Ok(())
    } else {
        Err(err)
    }
}

/// The last [`TAIL_BYTES`] bytes of a stream; memory stays bounded however
/// much the command prints.
#[derive(Default)]
struct Tail {
    buf: VecDeque<u8>,
    /// Bytes read but no longer kept.
    dropped: u64,
}

impl Tail {
    /// Reads `pipe` to its end. A read error ends the stream early: the
    /// output tail is a courtesy and must not fail the run.
    async fn fill(&mut self, pipe: Option<impl AsyncRead + Unpin>) {
        let Some(mut pipe) = pipe else { return };
        let mut chunk = vec![0; 8192];
        loop {
            match pipe.read(&mut chunk).await {
                Ok(0) => return,
                Ok(n) => self.push(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::debug!("stopped reading command output: {e}");
                    return;
                }
            }
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        let skip = bytes.len().saturating_sub(TAIL_BYTES);
        self.buf.extend(&bytes[skip..]);
        let excess = self.buf.len() - TAIL_BYTES.min(self.buf.len());
        self.buf.drain(..excess);
        self.dropped += (skip + excess) as u64;
    }

    /// What was kept, decoded lossily, without trailing newlines. After a
    /// cut the first bytes may be the middle of a character; they are left
    /// out rather than shown as a replacement character.
    fn finish(mut self) -> Captured {
        let bytes = self.buf.make_contiguous();
        let mut start = 0;
        if self.dropped > 0 {
            // UTF-8 continuation bytes look like 0b10xx_xxxx; a character
            // has at most three of them.
            while start < bytes.len().min(3) && bytes[start] & 0xC0 == 0x80 {
                start += 1;
            }
        }
        let text = String::from_utf8_lossy(&bytes[start..]);
        Captured {
            text: text.trim_end_matches(['\n', '\r']).to_owned(),
            cut: self.dropped + start as u64,
        }
    }
}

/// The end of one stream, once it is over.
struct Captured {
    text: String,
    /// Bytes before `text` that were not kept.
    cut: u64,
}

impl Captured {
    /// `text` as shown to an operator: with a note when its start was cut.
    fn shown(&self) -> String {
        if self.cut == 0 || self.text.trim().is_empty() {
            self.text.clone()
        } else {
            format!("[... {} earlier bytes not kept]\n{}", self.cut, self.text)
        }
    }
}

/// One record for both streams; their interleaving is not kept.
fn combine(stdout: &str, stderr: &str) -> Option<String> {
    match (stdout.trim().is_empty(), stderr.trim().is_empty()) {
        (true, true) => None,
        (false, true) => Some(stdout.to_owned()),
        (true, false) => Some(format!("--- stderr ---\n{stderr}")),
        (false, false) => Some(format!("{stdout}\n--- stderr ---\n{stderr}")),
    }
}

/// The last non-empty line of stderr, trimmed and shortened: the likeliest
/// one-line reason for a failure.
fn last_line(stderr: &str) -> Option<String> {
    let line = stderr
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())?;
    if line.chars().count() <= REASON_CHARS {
        return Some(line.to_owned());
    }
    let mut short: String = line.chars().take(REASON_CHARS).collect();
    short.push('…');
    Some(short)
}

/// `exit status 3`, `killed by signal 9 (SIGKILL)`.
fn describe(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    let Some(signal) = status.signal() else {
        return status.to_string();
    };
    let mut text = format!("killed by signal {signal}");
    if let Some(name) = signal_name(signal) {
        text.push_str(&format!(" ({name})"));
    }
    if status.core_dumped() {
        text.push_str(", core dumped");
    }
    text
}

fn signal_name(signal: libc::c_int) -> Option<&'static str> {
    Some(match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        _ => return None,
    })
}

/// `command`: a non-empty array of strings whose first element (the program)
/// is non-empty. Checked while deserializing, so errors carry the span of
/// the array or of the offending element.
#[derive(Debug)]
struct Argv(Vec<String>);

impl<'de> Deserialize<'de> for Argv {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(ArgvVisitor)
    }
}

struct ArgvVisitor;

impl<'de> Visitor<'de> for ArgvVisitor {
    type Value = Argv;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of strings: the program, then its arguments")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Argv, A::Error> {
        let Some(program) = seq.next_element_seed(Text::Program)? else {
            return Err(de::Error::custom(
                "command is empty: give the program and its arguments, like [\"backup.sh\", \"--full\"]",
            ));
        };
        let mut argv = vec![program];
        while let Some(arg) = seq.next_element_seed(Text::Arg)? {
            argv.push(arg);
        }
        Ok(Argv(argv))
    }
}

/// `env`: a table of variable names to string values.
#[derive(Debug, Default)]
struct Env(BTreeMap<String, String>);

impl<'de> Deserialize<'de> for Env {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EnvVisitor)
    }
}

struct EnvVisitor;

impl<'de> Visitor<'de> for EnvVisitor {
    type Value = Env;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a table of environment variables, like { NAME = \"value\" }")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Env, A::Error> {
        let mut env = BTreeMap::new();
        while let Some((name, value)) = map.next_entry_seed(Text::EnvName, Text::EnvValue)? {
            env.insert(name, value);
        }
        Ok(Env(env))
    }
}

/// A string bound for the OS, checked for what the OS cannot take. The
/// check runs inside the deserializer's own visit, so the error gets the
/// string's own span.
#[derive(Clone, Copy)]
enum Text {
    Program,
    Arg,
    EnvName,
    EnvValue,
}

impl Text {
    fn check(self, s: &str) -> Result<(), String> {
        let what = match self {
            Text::Program => "the program (first element of command)",
            Text::Arg => "an argument",
            Text::EnvName => "an environment variable name",
            Text::EnvValue => "an environment variable value",
        };
        if s.contains('\0') {
            return Err(format!("{what} contains a NUL character"));
        }
        match self {
            Text::Program if s.is_empty() => Err(format!("{what} is empty")),
            Text::EnvName if s.is_empty() => Err(format!("{what} is empty")),
            Text::EnvName if s.contains('=') => Err(format!("{what} contains \"=\": {s:?}")),
            _ => Ok(()),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Text {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_string(self)
    }
}

impl<'de> Visitor<'de> for Text {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Text::Program => "a string naming the program to run",
            Text::Arg | Text::EnvValue => "a string",
            Text::EnvName => "a variable name",
        })
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<String, E> {
        self.check(s).map_err(E::custom)?;
        Ok(s.to_owned())
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<String, E> {
        self.check(&s).map_err(E::custom)?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    use chrono::{DateTime, Utc};
    use toml::de::ValueDeserializer;

    use crate::{build, ManualClock};

    /// Long enough for any command here, short enough that a hang fails the
    /// test instead of the whole suite.
    const TEST_LIMIT: Duration = Duration::from_secs(30);

    fn slot() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .to_utc()
    }

    fn ctx() -> JobContext {
        JobContext::standalone("t", slot(), Arc::new(ManualClock::new(slot())))
    }

    /// Builds a job from an inline TOML table, the way config does.
    fn job(settings: &str) -> Arc<dyn Job> {
        match build("command", "t", ValueDeserializer::parse(settings).unwrap()) {
            Ok(job) => job,
            Err(e) => panic!("{settings}: {e}"),
        }
    }

    /// A TOML basic string; Rust's escaping agrees with TOML's for the
    /// printable strings used here.
    fn quote(s: &str) -> String {
        format!("{s:?}")
    }

    fn sh(script: &str) -> Arc<dyn Job> {
        job(&format!(
            "{{ command = [\"sh\", \"-c\", {}] }}",
            quote(script)
        ))
    }

    /// `sh -c script` with `$PIDFILE` set to a fresh file in `dir`.
    fn sh_with_pidfile(script: &str, dir: &tempfile::TempDir) -> (Arc<dyn Job>, PathBuf) {
        let pidfile = dir.path().join("pids");
        let settings = format!(
            "{{ command = [\"sh\", \"-c\", {}], env = {{ PIDFILE = {} }} }}",
            quote(script),
            quote(pidfile.to_str().unwrap())
        );
        (job(&settings), pidfile)
    }

    async fn run(job: &Arc<dyn Job>, ctx: JobContext) -> Result<JobOutput, JobError> {
        tokio::time::timeout(TEST_LIMIT, job.run(ctx))
            .await
            .expect("run did not finish")
    }

    fn settings_error(settings: &str) -> (String, String) {
        let deserializer = ValueDeserializer::parse(settings).unwrap();
        match build("command", "t", deserializer) {
            Ok(_) => panic!("{settings} was accepted"),
            Err(BuildError::Settings(e)) => {
                let span = e.span().expect("settings errors carry a span");
                (e.message().to_owned(), settings[span].to_owned())
            }
            Err(e) => panic!("{settings}: unexpected error {e}"),
        }
    }

    /// Waits until the command has written its pids (whitespace-separated)
    /// to `pidfile`; the file exists a moment before its contents do.
    async fn read_pids(pidfile: &std::path::Path, count: usize) -> Vec<libc::pid_t> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(text) = std::fs::read_to_string(pidfile) {
                let pids: Vec<libc::pid_t> = text
                    .split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect();
                if text.ends_with('\n') && pids.len() == count {
                    return pids;
                }
            }
            assert!(Instant::now() < deadline, "no pids in {pidfile:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Whether `pid` is dead: gone, or a zombie nobody has reaped yet (its
    /// parent died, so init reaps it when it gets to it).
    fn is_dead(pid: libc::pid_t) -> bool {
        // SAFETY: signal 0 only checks that the process exists.
        if unsafe { libc::kill(pid, 0) } == -1 {
            return io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return true;
        };
        // The state follows the command name, which is in parentheses and
        // may itself contain spaces or parentheses.
        let state = stat[stat.rfind(')').unwrap() + 1..]
            .split_whitespace()
            .next();
        matches!(state, Some("Z" | "X"))
    }

    /// Signals arrive asynchronously, so death is awaited with a deadline.
    async fn assert_dies(pid: libc::pid_t) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !is_dead(pid) {
            assert!(Instant::now() < deadline, "process {pid} survived the run");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn success_keeps_stdout() {
        let out = run(&sh("echo hello; echo world"), ctx()).await.unwrap();
        assert_eq!(out.output.as_deref(), Some("hello\nworld"));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn success_adds_stderr_under_a_separator() {
        let out = run(&sh("echo out; echo err >&2"), ctx()).await.unwrap();
        assert_eq!(out.output.as_deref(), Some("out\n--- stderr ---\nerr"));
        let out = run(&sh("echo only-err >&2"), ctx()).await.unwrap();
        assert_eq!(out.output.as_deref(), Some("--- stderr ---\nonly-err"));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn silent_success_has_no_output() {
        let out = run(&job(r#"{ command = ["true"] }"#), ctx()).await.unwrap();
        assert_eq!(out, JobOutput { output: None });
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn failure_names_exit_status_and_last_stderr_line() {
        let script =
            "echo partial; echo 'first problem' >&2; echo '  disk full  ' >&2; echo >&2; exit 3";
        let err = run(&sh(script), ctx()).await.unwrap_err();
        assert_eq!(err.message, "exit status 3: disk full");
        assert_eq!(
            err.output.as_deref(),
            Some("partial\n--- stderr ---\nfirst problem\n  disk full  ")
        );

        let err = run(&sh("exit 7"), ctx()).await.unwrap_err();
        assert_eq!(err, JobError::new("exit status 7"));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn failure_by_signal_names_the_signal() {
        let err = run(&sh("echo dying >&2; kill -9 $$"), ctx())
            .await
            .unwrap_err();
        assert_eq!(err.message, "killed by signal 9 (SIGKILL): dying");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_megabyte_of_output_keeps_a_bounded_tail() {
        let big = sh(r#"head -c 1000000 /dev/zero | tr "\0" x; echo; echo end"#);
        let out = run(&big, ctx()).await.unwrap().output.unwrap();
        let (note, tail) = out.split_once('\n').unwrap();
        // 1_000_000 x's and "\nend\n", less the 4096 bytes kept.
        assert_eq!(note, "[... 995909 earlier bytes not kept]");
        assert!(tail.len() <= TAIL_BYTES, "{} bytes kept", tail.len());
        assert!(tail.ends_with("xxx\nend"));

        let noisy = sh(r#"head -c 1000000 /dev/zero | tr "\0" y >&2; exit 1"#);
        let err = run(&noisy, ctx()).await.unwrap_err();
        let reason = format!("exit status 1: {}…", "y".repeat(REASON_CHARS));
        assert_eq!(err.message, reason);
        let output = err.output.unwrap();
        assert!(
            output.len() <= TAIL_BYTES + 100,
            "{} bytes kept",
            output.len()
        );
    }

    #[test]
    fn tail_cuts_on_a_character_boundary() {
        let mut tail = Tail::default();
        // 4096 is not a multiple of 3, so the last 4096 bytes of a run of
        // three-byte characters start inside one.
        let text = "€".repeat(2000);
        for chunk in text.as_bytes().chunks(1000) {
            tail.push(chunk);
        }
        let kept = tail.finish();
        assert_eq!(kept.text, "€".repeat(TAIL_BYTES / 3));
        assert_eq!(kept.cut, (6000 - TAIL_BYTES / 3 * 3) as u64);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn env_and_workdir_apply_and_the_slot_is_passed() {
        let dir = tempfile::tempdir().unwrap();
        let settings = format!(
            "{{ command = [\"sh\", \"-c\", {}], env = {{ FOO = \"bar baz\" }}, workdir = {} }}",
            quote(r#"echo "$FOO"; pwd -P; echo "$OPS_WORKER_JOB $OPS_WORKER_SCHEDULED_FOR""#),
            quote(dir.path().to_str().unwrap()),
        );
        let out = run(&job(&settings), ctx()).await.unwrap();
        let workdir = dir.path().canonicalize().unwrap();
        let expected = format!("bar baz\n{}\nt 2026-01-02T03:04:05Z", workdir.display());
        assert_eq!(out.output, Some(expected));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn spawn_failure_names_the_program() {
        let missing = job(r#"{ command = ["nonexistent-binary"] }"#);
        let err = run(&missing, ctx()).await.unwrap_err();
        assert_eq!(
            err,
            JobError::new(
                "cannot start \"nonexistent-binary\": No such file or directory (os error 2)"
            )
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn bad_workdir_is_named() {
        let nowhere = job(r#"{ command = ["true"], workdir = "/nonexistent/dir" }"#);
        let err = run(&nowhere, ctx()).await.unwrap_err();
        assert_eq!(
            err.message,
            "cannot start \"true\": workdir \"/nonexistent/dir\": No such file or directory (os error 2)"
        );

        let file = tempfile::NamedTempFile::new().unwrap();
        let settings = format!(
            "{{ command = [\"true\"], workdir = {} }}",
            quote(file.path().to_str().unwrap())
        );
        let err = run(&job(&settings), ctx()).await.unwrap_err();
        assert_eq!(
            err.message,
            format!(
                "cannot start \"true\": workdir {:?} is not a directory",
                file.path()
            )
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_run_cancelled_before_start_starts_nothing() {
        let ctx = ctx();
        ctx.cancel.cancel();
        let err = run(&job(r#"{ command = ["true"] }"#), ctx)
            .await
            .unwrap_err();
        assert_eq!(err.message, "cancelled before start");
    }

    #[test]
    fn settings_errors_point_at_the_value() {
        let cases = [
            (
                r#"{ command = [] }"#,
                "command is empty: give the program and its arguments, like [\"backup.sh\", \"--full\"]",
                "[]",
            ),
            (
                r#"{ command = ["", "x"] }"#,
                "the program (first element of command) is empty",
                r#""""#,
            ),
            (
                r#"{ command = "ls -l" }"#,
                "invalid type: string \"ls -l\", expected an array of strings: the program, then its arguments",
                r#""ls -l""#,
            ),
            (
                r#"{ command = ["sleep", 5] }"#,
                "invalid type: integer `5`, expected a string",
                "5",
            ),
            (
                r#"{ command = ["ls"], shell = true }"#,
                "unknown field `shell`, expected one of `command`, `env`, `workdir`",
                "shell",
            ),
            (
                r#"{ command = ["ls"], env = { A = 1 } }"#,
                "invalid type: integer `1`, expected a string",
                "1",
            ),
            (
                r#"{ command = ["ls"], env = ["A=1"] }"#,
                "invalid type: sequence, expected a table of environment variables, like { NAME = \"value\" }",
                r#"["A=1"]"#,
            ),
            (
                r#"{ command = ["ls"], env = { "A=B" = "1" } }"#,
                "an environment variable name contains \"=\": \"A=B\"",
                r#""A=B""#,
            ),
        ];
        for (settings, message, at) in cases {
            assert_eq!(
                settings_error(settings),
                (message.to_owned(), at.to_owned())
            );
        }

        let deserializer = ValueDeserializer::parse("{ env = {} }").unwrap();
        let Err(BuildError::Settings(e)) = build("command", "t", deserializer) else {
            panic!("a missing command was accepted");
        };
        assert_eq!(e.message(), "missing field `command`");
        assert!(e.span().is_some());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn cancellation_terminates_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let (job, pidfile) =
            sh_with_pidfile(r#"sleep 300 & echo "$$ $!" > "$PIDFILE"; wait"#, &dir);
        let ctx = ctx();
        let cancel = ctx.cancel.clone();
        let running = tokio::spawn(async move { run(&job, ctx).await });
        let pids = read_pids(&pidfile, 2).await;

        let started = Instant::now();
        cancel.cancel();
        let err = running.await.unwrap().unwrap_err();
        assert_eq!(err.message, "cancelled: terminated (SIGTERM)");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        for pid in pids {
            assert_dies(pid).await;
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_group_ignoring_sigterm_is_killed_after_the_grace() {
        let dir = tempfile::tempdir().unwrap();
        let script =
            r#"trap "" TERM; sleep 300 & echo "$$ $!" > "$PIDFILE"; echo still here; wait"#;
        let (job, pidfile) = sh_with_pidfile(script, &dir);
        let ctx = ctx();
        let cancel = ctx.cancel.clone();
        let running = tokio::spawn(async move { run(&job, ctx).await });
        let pids = read_pids(&pidfile, 2).await;

        let started = Instant::now();
        cancel.cancel();
        let err = running.await.unwrap().unwrap_err();
        assert_eq!(
            err,
            JobError {
                message: "cancelled: killed (SIGKILL) after 5s".to_owned(),
                output: Some("still here".to_owned()),
            }
        );
        let took = started.elapsed();
        assert!(
            took >= KILL_GRACE && took < KILL_GRACE + Duration::from_secs(3),
            "{took:?}"
        );
        for pid in pids {
            assert_dies(pid).await;
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn dropping_the_run_kills_the_group() {
        let dir = tempfile::tempdir().unwrap();
        // Ignoring TERM shows the drop does not rely on a polite signal.
        let script = r#"trap "" TERM; sleep 300 & echo "$$ $!" > "$PIDFILE"; wait"#;
        let (job, pidfile) = sh_with_pidfile(script, &dir);
        let running = tokio::spawn(async move { job.run(ctx()).await });
        let pids = read_pids(&pidfile, 2).await;

        running.abort();
        assert!(running.await.unwrap_err().is_cancelled());
        for pid in pids {
            assert_dies(pid).await;
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn background_children_do_not_outlive_a_finished_run() {
        // The first sleep holds the pipes open; the second does not, and is
        // killed all the same.
        let script = "sleep 300 & a=$!; sleep 300 >/dev/null 2>&1 & echo $a $!";
        let started = Instant::now();
        let out = run(&sh(script), ctx()).await.unwrap().output.unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        let pids: Vec<libc::pid_t> = out.split_whitespace().map(|p| p.parse().unwrap()).collect();
        assert_eq!(pids.len(), 2, "{out}");
        for pid in pids {
            assert_dies(pid).await;
        }
    }
}
