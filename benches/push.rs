//! Push benchmark: `push` signals on PostgreSQL through one server process,
//! at a fixed rate, every one of them recorded (docs/performance.md).
//!
//! - `push-signals`: `GET /ping/{job}/{token}` (a success with no start: one
//!   insert of a finished run per signal), `BENCH_RATE` signals a second
//!   (1,000) for `BENCH_SECONDS` (30), over `BENCH_JOBS` push jobs (2,000,
//!   `every = "1s"`).
//!
//! Each job signals once every `BENCH_JOBS / BENCH_RATE` seconds (2), so each
//! signal has a slot of its own (with `every = "1s"` and `grace = "1s"` a
//! signal's slot is the whole second it arrives in, and two signals of one
//! job arrive 2 s apart) and the limiter
//! (10 signals per job per second) never refuses one: what is measured is
//! recording, not the limiter. Two signals landing on one slot would be one
//! run by design (`"recorded": false`); the benchmark counts them and
//! fails if any did.
//!
//! It creates a database of its own, writes a schedules.toml of the push
//! jobs, starts the real server in-process (`http::api_router` +
//! `http::serve` on its own multi-thread runtime, as `ops-worker serve` runs
//! it) and drives it from a separate thread with an open-loop client:
//! `BENCH_CLIENTS` (32) connections, signal `i` due at `start + i / rate` and
//! sent by connection `i % clients`. A signal's latency runs from the
//! instant it was due (not the instant it was sent, so a client that falls
//! behind shows as latency instead of hiding it) to the last byte of the
//! answer. Anything but 200 stops the benchmark. Afterwards it counts the
//! push rows in `job_runs` against the signals answered `"recorded": true`,
//! prints a table (p50 / p99 / max in ms, signals per second achieved, how
//! far the client fell behind, the load average before and after) and drops
//! its database.
//!
//! ```sh
//! cargo bench --bench push
//! BENCH_RATE=2000 BENCH_JOBS=4000 BENCH_SECONDS=60 cargo bench --bench push
//! ```
//!
//! Settings (environment): `BENCH_RATE`, `BENCH_SECONDS`, `BENCH_JOBS`,
//! `BENCH_CLIENTS` as above, `OPS_WORKER_TEST_PG` (admin URL, default
//! `postgres://postgres@127.0.0.1:5432/postgres`).

#[path = "support/latency.rs"]
mod latency;
#[path = "support/pg_database.rs"]
mod pg_database;
#[path = "support/scenarios.rs"]
mod scenarios;
#[path = "support/settings.rs"]
mod settings;
use latency::{load_average, ms, rank};
use pg_database::{pg_connect, PgDatabase, DEFAULT_ADMIN_URL};
use settings::{env, env_number};

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure, Context as _};
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;
use ops_worker::config::Config;
use ops_worker::db::{DatabaseUrl, Db};
use ops_worker::http::{api_router, serve, AppState};
use ops_worker_jobs::reqwest;
use ops_worker_jobs::SystemClock;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The scenarios run when none is named.
const SCENARIOS: &[&str] = &["push-signals"];

/// Every job's token (read through `${PING_TOKEN}`, as an operator would).
const TOKEN: &str = "bench-ping-token-0123456789";
/// Signals before the measured ones (connections and the pool warm), on a
/// job of their own.
const WARM_UP: usize = 50;

struct Settings {
    scenarios: Vec<String>,
    rate: usize,
    seconds: usize,
    jobs: usize,
    clients: usize,
    admin_url: String,
}

fn settings() -> anyhow::Result<Settings> {
    let scenarios = settings::checked(SCENARIOS)?;
    let rate = env_number("BENCH_RATE", 1000)?;
    let jobs = env_number("BENCH_JOBS", 2000)?;
    // A job's signals must be 2 s apart or more: 1 s apart, a signal that
    // arrives a little late shares a slot with the next.
    ensure!(
        jobs >= 2 * rate,
        "BENCH_JOBS ({jobs}) must be at least twice BENCH_RATE ({rate}), so each signal has a slot of its own"
    );
    Ok(Settings {
        scenarios,
        rate,
        seconds: env_number("BENCH_SECONDS", 30)?,
        jobs,
        clients: env_number("BENCH_CLIENTS", 32)?,
        admin_url: env("OPS_WORKER_TEST_PG").unwrap_or_else(|| DEFAULT_ADMIN_URL.to_string()),
    })
}

/// The name of job `i`.
fn job_name(i: usize) -> String {
    format!("push-{i:05}")
}

/// schedules.toml with `jobs` push jobs every second, and the warm-up job.
fn schedules_toml(jobs: usize) -> String {
    let mut toml = String::new();
    for name in (0..jobs).map(job_name).chain(["warm-up".to_string()]) {
        let _ = write!(
            toml,
            "[jobs.{name}]\nkind = \"push\"\nevery = \"1s\"\ngrace = \"1s\"\ntoken = \"${{PING_TOKEN}}\"\n\n"
        );
    }
    toml
}

/// One signal; whether it made a run (`"recorded"` in the answer). Anything
/// but 200 stops the benchmark.
async fn signal(client: &reqwest::Client, url: &str) -> anyhow::Result<bool> {
    let resp = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = resp.status();
    let body = resp
        .bytes()
        .await
        .with_context(|| format!("GET {url}: reading the body"))?;
    if !status.is_success() {
        bail!("GET {url}: {status}: {}", String::from_utf8_lossy(&body));
    }
    let answer: serde_json::Value = serde_json::from_slice(&body)
        .with_context(|| format!("GET {url}: not the JSON expected"))?;
    answer["recorded"]
        .as_bool()
        .with_context(|| format!("GET {url}: no \"recorded\" in {answer}"))
}

struct Figures {
    signals: usize,
    recorded: usize,
    rows: i64,
    p50: Duration,
    p99: Duration,
    max: Duration,
    per_second: f64,
    behind: Duration,
    load_before: String,
    load_after: String,
}

/// Drives `settings.rate` signals a second for `settings.seconds` seconds
/// against `base`; the latencies, how many made a run, the wall time and
/// how far behind its schedule the client sent at worst.
async fn drive(
    client: &reqwest::Client,
    base: &str,
    settings: &Settings,
) -> anyhow::Result<(Vec<Duration>, usize, Duration, Duration)> {
    let total = settings.rate * settings.seconds;
    let step = Duration::from_secs(1) / settings.rate as u32;
    let start = Instant::now() + Duration::from_millis(100);
    let tasks = (0..settings.clients).map(|c| async move {
        let mut times = Vec::with_capacity(total / settings.clients + 1);
        let mut recorded = 0;
        let mut behind = Duration::ZERO;
        let mut i = c;
        while i < total {
            let due = start + step * i as u32;
            tokio::time::sleep_until(due).await;
            behind = behind.max(Instant::now() - due);
            let url = format!("{base}/ping/{}/{TOKEN}", job_name(i % settings.jobs));
            if signal(client, &url).await? {
                recorded += 1;
            }
            times.push(Instant::now() - due);
            i += settings.clients;
        }
        anyhow::Ok((times, recorded, behind))
    });
    let mut all = Vec::with_capacity(total);
    let mut recorded = 0;
    let mut behind = Duration::ZERO;
    for r in futures::future::join_all(tasks).await {
        let (times, n, b) = r?;
        all.extend(times);
        recorded += n;
        behind = behind.max(b);
    }
    let wall = Instant::now() - start;
    all.sort_unstable();
    Ok((all, recorded, wall, behind))
}

/// The push rows in `job_runs` of the measured jobs.
async fn push_rows(url: &str) -> anyhow::Result<i64> {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let mut conn = pg_connect(url).await?;
    let c: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM job_runs \
         WHERE \"trigger\" = 'push' AND status = 'success' AND job_name <> 'warm-up'",
    )
    .get_result(&mut conn)
    .await
    .context("counting the push rows")?;
    Ok(c.n)
}

fn main() -> anyhow::Result<()> {
    let settings = settings()?;
    // The server's runtime, as src/main.rs builds it: one worker per core.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("ops-worker")
        .build()?;
    // The clients' own thread, so they do not take the server's workers.
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    println!(
        "ops-worker push benchmark: {} signals/s for {} s over {} push jobs, {} connections, {} cores",
        settings.rate,
        settings.seconds,
        settings.jobs,
        settings.clients,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    let pg = server_rt.block_on(PgDatabase::create(&settings.admin_url))?;
    let url = DatabaseUrl::parse(Some(&pg.url))?;
    let env = |v: &str| (v == "PING_TOKEN").then(|| TOKEN.to_string());
    let config = Arc::new(Config::parse(
        Path::new("schedules.toml"),
        &schedules_toml(settings.jobs),
        &env,
    )?);
    ensure!(
        config.jobs.len() == settings.jobs + 1,
        "schedules.toml jobs"
    );

    let (addr, stop, server, _keep) = server_rt.block_on(async {
        let db = Db::connect(&url, url.pool_size()).await?;
        db.migrate().await?;
        // No sender: the config does not change during the benchmark.
        let (keep, configs) = tokio::sync::watch::channel(config.clone());
        let state = AppState::new(db, configs, Arc::new(SystemClock));
        let stop = CancellationToken::new();
        let (addr, server) = serve("127.0.0.1:0".parse()?, api_router(state), stop.clone()).await?;
        anyhow::Ok((addr, stop, server, keep))
    })?;
    let base_url = format!("http://{addr}");

    let mut results = Vec::new();
    for scenario in &settings.scenarios {
        let f = client_rt.block_on(async {
            let client = ops_worker_jobs::health::http_client_builder()
                .timeout(Duration::from_secs(30))
                .pool_max_idle_per_host(settings.clients)
                .build()?;
            // Warm-up on a job of its own: 10 a second, under the limiter.
            for _ in 0..WARM_UP {
                let url = format!("{base_url}/ping/warm-up/{TOKEN}");
                signal(&client, &url).await?;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let load_before = load_average();
            let (times, recorded, wall, behind) = drive(&client, &base_url, &settings).await?;
            let load_after = load_average();
            let rows = push_rows(&pg.url).await?;
            anyhow::Ok(Figures {
                signals: times.len(),
                recorded,
                rows,
                p50: rank(&times, 0.50),
                p99: rank(&times, 0.99),
                max: *times.last().expect("at least one signal"),
                per_second: times.len() as f64 / wall.as_secs_f64(),
                behind,
                load_before,
                load_after,
            })
        })?;
        println!(
            "{scenario}: {} signals, {} recorded, {} rows: p50 {} ms, p99 {} ms, max {} ms, {:.0} signals/s, \
             client at most {} ms behind; load average {} before, {} after",
            f.signals,
            f.recorded,
            f.rows,
            ms(f.p50),
            ms(f.p99),
            ms(f.max),
            f.per_second,
            ms(f.behind),
            f.load_before,
            f.load_after
        );
        results.push((scenario.clone(), f));
    }

    stop.cancel();
    server_rt.block_on(server)?;
    drop(server_rt);
    drop(pg);
    println!();
    println!(
        "| scenario | rate (/s) | signals | recorded / rows | p50 / p99 / max (ms) | signals/s achieved | client behind at most (ms) | load average before / after |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (scenario, f) in &results {
        println!(
            "| {scenario} | {} | {} | {} / {} | {} / {} / {} | {:.0} | {} | {} / {} |",
            settings.rate,
            f.signals,
            f.recorded,
            f.rows,
            ms(f.p50),
            ms(f.p99),
            ms(f.max),
            f.per_second,
            ms(f.behind),
            f.load_before,
            f.load_after
        );
    }
    for (scenario, f) in &results {
        ensure!(
            f.recorded == f.signals && f.rows == f.signals as i64,
            "{scenario}: {} signals, {} answered recorded, {} rows in job_runs: not every signal was recorded",
            f.signals,
            f.recorded,
            f.rows
        );
    }
    Ok(())
}
