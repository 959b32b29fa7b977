//! Scheduler benchmark: N jobs `every = "1s"`, all on one grid (all due at
//! the same instant, the worst case), through the production path:
//! `scheduler::arm` -> `Runner` -> `Recorder` -> `Db`, with the system clock,
//! the daemon's runtime and its `info` logging (formatted, written to
//! /dev/null by default). The job itself does nothing.
//!
//! After the run it reads `job_runs` and reports, for the slots of the
//! measured window (the first and last 2 s excluded):
//!
//! - fire lateness: `started_at - scheduled_for`, stamped by the runner when
//!   the timer hands it the slot, before the claim;
//! - start lateness: measured inside the job (`ctx.clock.now() -
//!   ctx.scheduled_for`), so it includes the claim round trip;
//! - finish lateness: `finished_at - scheduled_for` (stamped before the
//!   finishing write);
//! - runs/s, slots without exactly one row (gaps, duplicates), rows with
//!   `missed > 0` or a status other than `success`;
//! - CPU used by this process and by the whole machine during the window.
//!
//! ```sh
//! CARGO_TARGET_DIR=/work/target-bench cargo bench --bench scheduler
//! CARGO_TARGET_DIR=/work/target-bench BENCH_SECS=60 cargo bench --bench scheduler -- pg-1000
//! CARGO_TARGET_DIR=/work/target-bench cargo bench --bench scheduler -- pg-1000 pg-1000-r3 pg-max
//! ```
//!
//! Scenarios, named as arguments or in `BENCH_SCENARIOS` (comma-separated):
//! `pg-N` / `sqlite-N` (N jobs, one worker), `pg-N-rK` (K workers, each
//! with its own pool, recorder and runner arming every job, all live to
//! each other as the heartbeat would make them: every slot is claimed K
//! times and won once), `pg-max` / `pg-max-rK` (the largest job count of
//! 500 ... 8,000 that is sustained: every slot of the window run once,
//! none missed or failed, each recorded finished within a second of its
//! slot). Default: `pg-20`, `pg-1000`, `sqlite-1000`. The claim figure is
//! start minus fire lateness per run: the claim's round trip.
//!
//! Settings (environment): `BENCH_SECS` (20; seconds of slots per
//! scenario, at least 6),
//! `BENCH_POOL` (what `ops-worker run` opens: 16 on PostgreSQL, 2 on
//! SQLite), `BENCH_LOG` (`null`:
//! info logs formatted and written to /dev/null; `stderr`; `off`: no
//! subscriber), `OPS_WORKER_TEST_PG` (admin URL, default
//! `postgres://postgres@127.0.0.1:5432/postgres`). A fresh PostgreSQL
//! database is created and dropped at the end; SQLite uses a temporary file.

#[path = "support/pg_database.rs"]
mod pg_database;
#[path = "support/scenarios.rs"]
mod scenarios;
use pg_database::{PgDatabase, DEFAULT_ADMIN_URL};

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context as _};
use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use diesel_async::SimpleAsyncConnection;
use ops_worker::config::{Config, JobSpec};
use ops_worker::db::{DatabaseUrl, Db, PgUrl, RunStatus};
use ops_worker::runner::{Recorder, Runner};
use ops_worker::schedule::whole_second;
use ops_worker::scheduler::{self, Start};
use ops_worker_jobs::{Clock, Job, JobContext, JobError, JobOutput, SystemClock};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Slots at each end of a scenario left out of the figures (warm-up: the pool
/// opens its connections during the first slot; wind-down).
const EDGE_SLOTS: i64 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    fn prefix(self) -> &'static str {
        match self {
            Backend::Postgres => "pg",
            Backend::Sqlite => "sqlite",
        }
    }
}

#[derive(Debug, Clone)]
struct Scenario {
    name: String,
    jobs: usize,
    /// Workers sharing the database, each with its own pool, recorder and
    /// runner, all arming every job (as `ops-worker run` replicas would).
    replicas: usize,
}

/// The scenarios run when none is named.
const DEFAULT_SCENARIOS: &[&str] = &["pg-20", "pg-1000", "sqlite-1000"];

/// Job counts tried in turn by `pg-max` / `pg-max-rK`, until one is not
/// sustained.
const MAX_STEPS: &[usize] = &[500, 750, 1000, 1500, 2000, 2500, 3000, 4000, 6000, 8000];

/// What a scenario name asks for: `BACKEND-JOBS[-rREPLICAS]`, with `max` as
/// JOBS for the ramp of [`MAX_STEPS`].
fn parse_scenario(name: &str) -> anyhow::Result<(Backend, Option<usize>, usize)> {
    let bad = || {
        anyhow::anyhow!(
            "unknown scenario {name:?}: expected pg-N, sqlite-N, pg-N-rK (K workers) or pg-max[-rK]"
        )
    };
    let mut parts = name.split('-');
    let backend = match parts.next() {
        Some("pg") => Backend::Postgres,
        Some("sqlite") => Backend::Sqlite,
        _ => return Err(bad()),
    };
    let jobs = match parts.next() {
        Some("max") => None,
        Some(n) => Some(n.parse::<usize>().map_err(|_| bad())?),
        None => return Err(bad()),
    };
    let replicas = match parts.next() {
        None => 1,
        Some(r) => r
            .strip_prefix('r')
            .and_then(|r| r.parse::<usize>().ok())
            .filter(|r| (1..=8).contains(r))
            .ok_or_else(bad)?,
    };
    if parts.next().is_some() || jobs == Some(0) {
        return Err(bad());
    }
    Ok((backend, jobs, replicas))
}

/// Does nothing; remembers when it started, per slot.
#[derive(Default)]
struct NoopJob {
    /// (slot as Unix seconds, start lateness in µs)
    starts: Mutex<Vec<(i64, i64)>>,
}

#[async_trait]
impl Job for NoopJob {
    async fn run(&self, ctx: JobContext) -> Result<JobOutput, JobError> {
        let late = ctx.clock.now() - ctx.scheduled_for;
        self.starts.lock().unwrap().push((
            ctx.scheduled_for.timestamp(),
            late.num_microseconds().unwrap_or(i64::MAX),
        ));
        Ok(JobOutput::default())
    }
}

struct Settings {
    secs: i64,
    /// `BENCH_POOL`; `None`: each backend's `DatabaseUrl::pool_size`.
    pool: Option<u32>,
    scenarios: Vec<String>,
    admin_url: String,
}

fn settings() -> anyhow::Result<Settings> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let secs: i64 = match env("BENCH_SECS") {
        Some(v) => v.trim().parse().context("BENCH_SECS")?,
        None => 20,
    };
    if secs < 2 * EDGE_SLOTS + 2 {
        bail!("BENCH_SECS must be at least {}", 2 * EDGE_SLOTS + 2);
    }
    let pool = match env("BENCH_POOL") {
        Some(v) => Some(v.trim().parse().context("BENCH_POOL")?),
        None => None,
    };
    let names = scenarios::named(DEFAULT_SCENARIOS);
    for name in &names {
        parse_scenario(name)?;
    }
    Ok(Settings {
        secs,
        pool,
        scenarios: names,
        admin_url: env("OPS_WORKER_TEST_PG").unwrap_or_else(|| DEFAULT_ADMIN_URL.to_string()),
    })
}

/// The daemon's logging (`ops-worker run`: text, `info` unless RUST_LOG).
fn init_logging() -> anyhow::Result<&'static str> {
    let mode = std::env::var("BENCH_LOG").unwrap_or_else(|_| "null".to_string());
    let (filter, _) = ops_worker::cli::log_filter("info");
    let logs = tracing_subscriber::fmt::layer().with_ansi(false);
    let registry = tracing_subscriber::registry().with(filter);
    match mode.as_str() {
        "off" => Ok("off"),
        "stderr" => {
            registry.with(logs.with_writer(std::io::stderr)).init();
            Ok("text to stderr")
        }
        "null" => {
            let null = std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/null")
                .context("opening /dev/null")?;
            registry.with(logs.with_writer(Mutex::new(null))).init();
            Ok("text to /dev/null")
        }
        other => bail!("BENCH_LOG must be null, stderr or off, not {other:?}"),
    }
}

fn main() -> anyhow::Result<()> {
    let settings = settings()?;
    let logging = init_logging()?;
    // As in src/main.rs: a multi-thread runtime, one worker per core.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("ops-worker")
        .build()?;
    println!(
        "ops-worker scheduler benchmark: {} s of slots per scenario ({} edge slots excluded at each end), \
         pool {}, logs {}, {} cores",
        settings.secs,
        EDGE_SLOTS,
        settings
            .pool
            .map_or("of each backend's default".to_string(), |n| n.to_string()),
        logging,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    let needs_pg = settings
        .scenarios
        .iter()
        .any(|s| matches!(parse_scenario(s), Ok((Backend::Postgres, ..))));
    let pg = if needs_pg {
        Some(runtime.block_on(PgDatabase::create(&settings.admin_url))?)
    } else {
        None
    };
    let sqlite_dir = tempfile::tempdir().context("creating a temporary directory")?;
    let mut results = Vec::new();
    let mut ramps = Vec::new();
    for name in &settings.scenarios {
        let (backend, jobs, replicas) = parse_scenario(name)?;
        let steps = match jobs {
            Some(n) => vec![n],
            None => MAX_STEPS.to_vec(),
        };
        let mut sustained = None;
        for n in steps {
            let scenario = Scenario {
                name: match replicas {
                    1 => format!("{}-{n}", backend.prefix()),
                    r => format!("{}-{n}-r{r}", backend.prefix()),
                },
                jobs: n,
                replicas,
            };
            let url = match backend {
                Backend::Postgres => DatabaseUrl::parse(Some(&pg.as_ref().expect("created").url))?,
                Backend::Sqlite => {
                    DatabaseUrl::Sqlite(sqlite_dir.path().join(format!("{}.db", scenario.name)))
                }
            };
            let result = runtime.block_on(run_scenario(&scenario, &url, &settings))?;
            result.print_detail();
            let held = result.sustained();
            results.push(result);
            if jobs.is_some() {
                continue;
            }
            if !held {
                break;
            }
            sustained = Some(n);
        }
        if jobs.is_none() {
            ramps.push((name.clone(), sustained));
        }
    }
    drop(runtime);
    drop(pg);
    println!();
    print_table(&results);
    for (name, sustained) in ramps {
        match sustained {
            Some(n) => println!(
                "{name}: {n} jobs every 1 s sustained (the largest of {MAX_STEPS:?} with every slot run \
                 once, on time to the second, and recorded)"
            ),
            None => println!("{name}: not even {} jobs sustained", MAX_STEPS[0]),
        }
    }
    Ok(())
}

/// A spec as schedules.toml would give it for `every = "1s"` (so every
/// default comes from the real config code), around `job`.
fn spec(name: String, job: Arc<dyn Job>) -> anyhow::Result<Arc<JobSpec>> {
    let toml = "[jobs.bench]\nkind = \"command\"\nevery = \"1s\"\ncommand = [\"true\"]\n";
    let config = Config::parse(Path::new("bench.toml"), toml, &|_| None)?;
    let base = config.job("bench").context("the bench job")?;
    Ok(Arc::new(JobSpec {
        name,
        kind: "noop".to_string(),
        schedule: base.schedule.clone(),
        schedule_at: base.schedule_at,
        timezone: base.timezone,
        timeout: base.timeout,
        overlap: base.overlap,
        catch_up: base.catch_up,
        catch_up_window: base.catch_up_window,
        retries: base.retries,
        retry_backoff: base.retry_backoff,
        jitter: base.jitter,
        retry_abandoned: false,
        fingerprint: String::new(),
        enabled: base.enabled,
        retention: base.retention,
        push: None,
        job,
    }))
}

/// CPU time used so far: (this process, whole machine busy, whole machine
/// total), in clock ticks.
fn cpu_ticks() -> (u64, u64, u64) {
    let own = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the parenthesised command name; utime and stime
            // are fields 14 and 15 of the line.
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    let (busy, total) = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            let line = s.lines().next()?;
            let v: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            let total: u64 = v.iter().take(8).sum();
            let idle = v.get(3)? + v.get(4)?;
            Some((total - idle, total))
        })
        .unwrap_or((0, 0));
    (own, busy, total)
}

/// The server processes serving the benchmark's pool (PostgreSQL only), to
/// charge their CPU time to the scenario.
async fn pg_backends(url: &PgUrl) -> anyhow::Result<Vec<i32>> {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Pid {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }
    let mut conn = url.establish().await?;
    let rows: Vec<Pid> = diesel::sql_query(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .load(&mut conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.pid).collect())
}

/// utime + stime of these processes, in clock ticks (0 for one that is gone).
fn ticks_of(pids: &[i32]) -> u64 {
    pids.iter()
        .filter_map(|pid| {
            let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .sum()
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

async fn sleep_until(t: DateTime<Utc>) {
    if let Ok(left) = (t - Utc::now()).to_std() {
        tokio::time::sleep(left).await;
    }
}

struct Stats {
    p50: i64,
    p95: i64,
    p99: i64,
    max: i64,
}

impl Stats {
    fn of(mut v: Vec<i64>) -> Stats {
        v.sort_unstable();
        let rank = |q: f64| {
            if v.is_empty() {
                0
            } else {
                let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
                v[i]
            }
        };
        Stats {
            p50: rank(0.50),
            p95: rank(0.95),
            p99: rank(0.99),
            max: v.last().copied().unwrap_or(0),
        }
    }

    fn cells(&self) -> String {
        format!(
            "{} / {} / {} / {}",
            ms(self.p50),
            ms(self.p95),
            ms(self.p99),
            ms(self.max)
        )
    }
}

fn ms(us: i64) -> String {
    if us.abs() >= 100_000 {
        format!("{:.0}", us as f64 / 1000.0)
    } else {
        format!("{:.2}", us as f64 / 1000.0)
    }
}

struct Outcome {
    name: String,
    jobs: usize,
    replicas: usize,
    /// Runs of the window per worker, in worker order.
    shares: Vec<usize>,
    /// Start minus fire lateness of each run: what the claim cost it.
    claim: Stats,
    /// Rows of the window other than `success`, by status.
    failures: std::collections::BTreeMap<String, usize>,
    window_slots: i64,
    expected: usize,
    rows: usize,
    gaps: usize,
    duplicates: usize,
    missed_rows: usize,
    not_success: usize,
    fire: Stats,
    start: Stats,
    finish: Stats,
    first_slot_fire_max: i64,
    /// The latest fires of the window: (lateness µs, slot, job).
    worst: Vec<(i64, DateTime<Utc>, String)>,
    own_cpu: f64,
    /// PostgreSQL: the CPU of the server processes serving the pool.
    db_cpu: Option<f64>,
    machine_cpu: f64,
    load: String,
}

impl Outcome {
    /// Whether the machine kept up: every slot of the window ran exactly
    /// once, none was counted missed or failed, and every run was recorded
    /// finished within a second of its slot, before the next one.
    fn sustained(&self) -> bool {
        self.gaps == 0
            && self.duplicates == 0
            && self.missed_rows == 0
            && self.not_success == 0
            && self.finish.max < 1_000_000
    }

    fn runs_per_s(&self) -> f64 {
        self.rows as f64 / self.window_slots as f64
    }

    /// CPU time per run in µs, from cores busy.
    fn per_run_us(&self, cores: f64) -> f64 {
        cores * 1e6 / self.runs_per_s().max(1.0)
    }

    /// "worker / server / machine" cores; the server only on PostgreSQL.
    fn cpu_cells(&self) -> String {
        let db = self.db_cpu.map_or("-".to_string(), |c| format!("{c:.2}"));
        format!("{:.2} / {db} / {:.2}", self.own_cpu, self.machine_cpu)
    }

    fn per_run_cells(&self) -> String {
        let db = self
            .db_cpu
            .map_or("-".to_string(), |c| format!("{:.0}", self.per_run_us(c)));
        format!("{:.0} / {db}", self.per_run_us(self.own_cpu))
    }

    fn print_detail(&self) {
        println!(
            "{}: {} jobs, {} worker(s), window {} slots: {} of {} expected rows, {:.0} runs/s, {} gaps, \
             {} duplicates, {} rows with missed > 0, {} not success {:?}, sustained: {}; lateness ms \
             p50/p95/p99/max: fire {}, start {}, finish {}; claim ms p50/p95/p99/max {}; runs per worker \
             {:?}; first slot fire max {} ms; CPU cores worker / database server / machine: {} \
             (µs per run worker / server: {}); load average before {}",
            self.name,
            self.jobs,
            self.replicas,
            self.window_slots,
            self.rows,
            self.expected,
            self.runs_per_s(),
            self.gaps,
            self.duplicates,
            self.missed_rows,
            self.not_success,
            self.failures,
            if self.sustained() { "yes" } else { "no" },
            self.fire.cells(),
            self.start.cells(),
            self.finish.cells(),
            self.claim.cells(),
            self.shares,
            ms(self.first_slot_fire_max),
            self.cpu_cells(),
            self.per_run_cells(),
            self.load,
        );
        let worst: Vec<String> = self
            .worst
            .iter()
            .map(|(late, slot, job)| format!("{} ms {job} @{}", ms(*late), slot.format("%H:%M:%S")))
            .collect();
        println!("  latest fires: {}", worst.join(", "));
    }
}

fn print_table(results: &[Outcome]) {
    println!(
        "| scenario | runs/s | gaps | missed > 0 | fire lateness ms p50 / p95 / p99 / max \
         | start lateness ms p50 / p95 / p99 / max | claim ms p50 / p99 | finish lateness ms p99 / max \
         | CPU cores: worker / PG server / machine | CPU µs per run: worker / PG server |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in results {
        println!(
            "| {} | {:.0} | {} | {} | {} | {} | {} / {} | {} / {} | {} | {} |",
            r.name,
            r.runs_per_s(),
            r.gaps + r.duplicates,
            r.missed_rows,
            r.fire.cells(),
            r.start.cells(),
            ms(r.claim.p50),
            ms(r.claim.p99),
            ms(r.finish.p99),
            ms(r.finish.max),
            r.cpu_cells(),
            r.per_run_cells(),
        );
    }
}

async fn run_scenario(
    scenario: &Scenario,
    url: &DatabaseUrl,
    settings: &Settings,
) -> anyhow::Result<Outcome> {
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let pool = settings.pool.unwrap_or_else(|| url.pool_size());
    let db = Db::connect(url, pool)
        .await
        .with_context(|| format!("connecting to {}", url.redacted()))?;
    db.migrate().await?;
    if let DatabaseUrl::Postgres(url) = url {
        // Each scenario starts from an empty table (and reads back only its
        // own rows).
        let mut conn = url.establish().await?;
        conn.batch_execute("TRUNCATE job_runs").await?;
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // One pool, recorder and runner per worker, as separate processes have.
    let ids: Vec<String> = match scenario.replicas {
        1 => vec!["bench".to_string()],
        n => (1..=n).map(|i| format!("bench-r{i}")).collect(),
    };
    let mut workers = Vec::with_capacity(ids.len());
    for id in &ids {
        let db = Db::connect(url, pool).await?;
        let recorder = Arc::new(Recorder::new(db));
        let runner = Arc::new(Runner::new(recorder.clone(), clock.clone(), id.clone()));
        // What the heartbeat would read from `workers`: every worker live.
        runner.peers().set(ids.clone());
        let flusher = {
            let recorder = recorder.clone();
            tokio::spawn(async move { recorder.flush_loop().await })
        };
        workers.push((recorder, runner, flusher));
    }

    let mut jobs = Vec::with_capacity(scenario.jobs);
    let mut specs = Vec::with_capacity(scenario.jobs);
    for i in 0..scenario.jobs {
        let job = Arc::new(NoopJob::default());
        specs.push(spec(format!("{}.{i:04}", scenario.name), job.clone())?);
        jobs.push(job);
    }

    // Arm every job with the same start, as the daemon does: one grid, all
    // due at the same instants, the first one second after the anchor.
    let stop = CancellationToken::new();
    let runs = TaskTracker::new();
    let armed_at = clock.now();
    let first_slot = whole_second(armed_at) + TimeDelta::seconds(1);
    let last_slot = first_slot + TimeDelta::seconds(settings.secs - 1);
    let window = (
        first_slot + TimeDelta::seconds(EDGE_SLOTS),
        last_slot - TimeDelta::seconds(EDGE_SLOTS),
    );
    let loops: Vec<_> = workers
        .iter()
        .flat_map(|(_, runner, _)| {
            specs.iter().map(|spec| {
                scheduler::arm(
                    spec.clone(),
                    runner.clone(),
                    Start {
                        last_slot: None,
                        armed_at,
                    },
                    stop.clone(),
                    runs.clone(),
                )
            })
        })
        .collect();

    // CPU over the measured window: from half a second before its first slot
    // to half a second before the first slot after it.
    sleep_until(window.0 - TimeDelta::milliseconds(700)).await;
    let backends = match url {
        DatabaseUrl::Postgres(url) => pg_backends(url).await?,
        DatabaseUrl::Sqlite(_) => Vec::new(),
    };
    sleep_until(window.0 - TimeDelta::milliseconds(500)).await;
    let (cpu_start, db_start) = (cpu_ticks(), ticks_of(&backends));
    sleep_until(window.1 + TimeDelta::milliseconds(500)).await;
    let (cpu_end, db_end) = (cpu_ticks(), ticks_of(&backends));
    // Stop half a second after the last slot, as `ops-worker run` on SIGTERM.
    sleep_until(last_slot + TimeDelta::milliseconds(500)).await;
    stop.cancel();
    for (_, runner, _) in &workers {
        runner.stop();
    }
    for l in loops {
        l.await?;
    }
    runs.close();
    if tokio::time::timeout(Duration::from_secs(60), runs.wait())
        .await
        .is_err()
    {
        bail!("{}: runs still going 60 s after the stop", scenario.name);
    }
    for (recorder, _, flusher) in &workers {
        flusher.abort();
        if !recorder.flush().await {
            bail!("{}: the database refused held records", scenario.name);
        }
    }
    drop(workers);

    let tps = ticks_per_second();
    let window_secs = (window.1 - window.0).num_milliseconds() as f64 / 1000.0 + 1.0;
    let own_cpu = (cpu_end.0 - cpu_start.0) as f64 / tps / window_secs;
    let db_cpu =
        (!backends.is_empty()).then(|| db_end.saturating_sub(db_start) as f64 / tps / window_secs);
    let machine_cpu = if cpu_end.2 > cpu_start.2 {
        (cpu_end.1 - cpu_start.1) as f64 / (cpu_end.2 - cpu_start.2) as f64
            * std::thread::available_parallelism().map_or(1, |n| n.get()) as f64
    } else {
        0.0
    };

    let prefix = format!("{}.", scenario.name);
    let records: Vec<_> = db
        .history(None, i64::MAX)
        .await?
        .into_iter()
        .filter(|r| r.job_name.starts_with(&prefix))
        .collect();
    drop(db);

    let in_window = |t: DateTime<Utc>| t >= window.0 && t <= window.1;
    let window_slots = (window.1 - window.0).num_seconds() + 1;
    let mut per_slot: HashMap<(&str, i64), usize> = HashMap::new();
    let (mut fire, mut finish) = (Vec::new(), Vec::new());
    let (mut rows, mut missed_rows, mut not_success) = (0, 0, 0);
    let mut first_slot_fire_max = 0;
    let mut worst = Vec::new();
    let mut fires: HashMap<(&str, i64), i64> = HashMap::new();
    let mut shares: HashMap<&str, usize> = HashMap::new();
    let mut failures: std::collections::BTreeMap<String, usize> = Default::default();
    for r in &records {
        let late = |t: DateTime<Utc>| (t - r.scheduled_for).num_microseconds().unwrap_or(i64::MAX);
        if r.scheduled_for == first_slot {
            first_slot_fire_max = first_slot_fire_max.max(late(r.started_at));
        }
        if !in_window(r.scheduled_for) {
            continue;
        }
        rows += 1;
        *per_slot
            .entry((r.job_name.as_str(), r.scheduled_for.timestamp()))
            .or_default() += 1;
        fire.push(late(r.started_at));
        fires.insert(
            (r.job_name.as_str(), r.scheduled_for.timestamp()),
            late(r.started_at),
        );
        *shares.entry(r.worker_id.as_str()).or_default() += 1;
        worst.push((late(r.started_at), r.scheduled_for, r.job_name.clone()));
        if let Some(f) = r.finished_at {
            finish.push(late(f));
        }
        missed_rows += usize::from(r.missed > 0);
        if r.status != RunStatus::Success {
            not_success += 1;
            *failures.entry(r.status.to_string()).or_default() += 1;
        }
    }
    let (mut gaps, mut duplicates) = (0, 0);
    for spec in &specs {
        for k in 0..window_slots {
            let slot = (window.0 + TimeDelta::seconds(k)).timestamp();
            match per_slot.get(&(spec.name.as_str(), slot)).copied() {
                None => gaps += 1,
                Some(1) => {}
                Some(_) => duplicates += 1,
            }
        }
    }
    worst.sort_unstable_by_key(|w| std::cmp::Reverse(w.0));
    worst.truncate(8);
    let (mut start, mut claim) = (Vec::new(), Vec::new());
    for (job, spec) in jobs.iter().zip(&specs) {
        for (slot, late) in job.starts.lock().unwrap().iter().copied() {
            if slot < window.0.timestamp() || slot > window.1.timestamp() {
                continue;
            }
            start.push(late);
            // From the runner's stamp to the job's start: the claim round
            // trip (and, with several workers, a winning backup's delay).
            if let Some(fired) = fires.get(&(spec.name.as_str(), slot)) {
                claim.push(late - fired);
            }
        }
    }
    let shares = ids
        .iter()
        .map(|id| shares.get(id.as_str()).copied().unwrap_or(0))
        .collect();
    Ok(Outcome {
        name: scenario.name.clone(),
        jobs: scenario.jobs,
        replicas: scenario.replicas,
        shares,
        claim: Stats::of(claim),
        failures,
        window_slots,
        expected: scenario.jobs * window_slots as usize,
        rows,
        gaps,
        duplicates,
        missed_rows,
        not_success,
        fire: Stats::of(fire),
        start: Stats::of(start),
        finish: Stats::of(finish),
        first_slot_fire_max,
        worst,
        own_cpu,
        db_cpu,
        machine_cpu,
        load,
    })
}
