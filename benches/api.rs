//! API benchmark: the two reads an operator's console polls, and the
//! console's overview itself, with a large history, on PostgreSQL, through
//! real HTTP:
//!
//! - `api-jobs`: `GET /api/v1/jobs` with 1,000 jobs in schedules.toml;
//! - `api-runs`: `GET /api/v1/jobs/{name}/runs`, a job's runs page, in its
//!   variants (first page, a page 100,000 rows down by cursor, a rare
//!   status, a status with no rows, a one-hour window, a job of ordinary
//!   size);
//! - `console-overview`: the console's `GET /` after signing in as a
//!   browser does (`GET /login`, `POST /login` with the token from the same
//!   origin, the session cookie sent back on every request): the whole
//!   page, and the fragment its script polls every 2.5 s
//!   (`X-Console-Fragment: 1`). Then the page's weight: the HTML and each
//!   stylesheet and script it links, as sent to a client that accepts
//!   gzip, deflate, br and zstd (and whether the server compressed them).
//!
//! It creates a database of its own, writes a schedules.toml of 1,000 jobs
//! (every and cron schedules, several time zones) and one operator token
//! (the API requests carry it as a bearer token), fills `job_runs` with
//! 1,000,000 rows in one `INSERT ... SELECT generate_series` (job-0000 is a
//! hot job run every second, 200,000 rows; the other 999 jobs share the rest,
//! every 5 minutes; 96 % success, the rest failed, timeout, panicked, skipped,
//! abandoned; 1 % manual runs), runs `VACUUM ANALYZE` (the state autovacuum
//! reaches after a fill), starts the real API server in-process
//! (`http::api_router` + `http::serve`, its own multi-thread runtime, as
//! `ops-worker serve` runs it) and measures requests with reqwest from a
//! separate runtime: N sequential requests per variant, then the same mix
//! from C concurrent clients. A request's time runs from sending it to the
//! last byte of its body. It prints a table (p50 / p99 / max in ms, requests
//! per second, the load average before each figure; for `console-overview`
//! also the page weight) and drops its database.
//!
//! ```sh
//! cargo bench --bench api                      # api-jobs, api-runs, console-overview
//! cargo bench --bench api -- api-runs          # one scenario
//! cargo bench --bench api -- console-overview api-jobs
//! BENCH_REQUESTS=500 BENCH_CLIENTS=8 cargo bench --bench api
//! ```
//!
//! Settings (environment): `BENCH_REQUESTS` (200 sequential requests per
//! variant, and as many in the concurrent run), `BENCH_CLIENTS` (8),
//! `BENCH_JOBS` (1,000), `BENCH_ROWS` (1,000,000), `OPS_WORKER_TEST_PG`
//! (admin URL, default `postgres://postgres@127.0.0.1:5432/postgres`).

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
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _};
use chrono::{DateTime, TimeDelta, Utc};
use diesel::sql_types::{BigInt, Text};
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use ops_worker::config::Config;
use ops_worker::db::{DatabaseUrl, Db};
use ops_worker::http::{api_router, serve, AppState};
use ops_worker::schedule::whole_second;
use ops_worker_jobs::reqwest;
use ops_worker_jobs::reqwest::header::{self, HeaderMap, HeaderValue};
use ops_worker_jobs::reqwest::StatusCode;
use ops_worker_jobs::{Clock, SystemClock};
use tokio_util::sync::CancellationToken;

/// The scenarios run when none is named.
const SCENARIOS: &[&str] = &["api-jobs", "api-runs", "console-overview"];

/// The hot job: run every second, a fifth of the history.
const HOT_JOB: &str = "job-0000";
/// How many rows down the deep cursor page starts.
const DEEP_ROWS: i64 = 100_000;
/// The benchmark's `[api.tokens.bench]` (an operator).
const TOKEN: &str = "bench-console-token-0123456789abcdef";
/// What a current browser sends as `Accept-Encoding`.
const BROWSER_ENCODINGS: &str = "gzip, deflate, br, zstd";
/// The header the console's script sends when it polls a page.
const FRAGMENT: (&str, &str) = ("x-console-fragment", "1");
/// Requests before the measured ones of each variant (connections, the
/// server's pool and its prepared statements warm).
const WARM_UP: usize = 10;

struct Settings {
    scenarios: Vec<String>,
    requests: usize,
    clients: usize,
    jobs: usize,
    rows: i64,
    admin_url: String,
}

fn settings() -> anyhow::Result<Settings> {
    let scenarios = settings::checked(SCENARIOS)?;
    let jobs = env_number("BENCH_JOBS", 1000)?;
    let rows = env_number("BENCH_ROWS", 1_000_000)? as i64;
    ensure!(
        rows >= 2 * DEEP_ROWS && jobs >= 2,
        "BENCH_ROWS must be at least {} and BENCH_JOBS at least 2",
        2 * DEEP_ROWS
    );
    Ok(Settings {
        scenarios,
        requests: env_number("BENCH_REQUESTS", 200)?,
        clients: env_number("BENCH_CLIENTS", 8)?,
        jobs,
        rows,
        admin_url: env("OPS_WORKER_TEST_PG").unwrap_or_else(|| DEFAULT_ADMIN_URL.to_string()),
    })
}

/// The name of job `i`.
fn job_name(i: usize) -> String {
    format!("job-{i:04}")
}

/// schedules.toml with `jobs` command jobs: the hot job every second, most
/// every 5 minutes, every tenth on a cron in one of three time zones.
fn schedules_toml(jobs: usize) -> String {
    let mut toml = format!("[api.tokens.bench]\nrole = \"operator\"\ntoken = \"{TOKEN}\"\n\n");
    for i in 0..jobs {
        let schedule = match i {
            0 => "every = \"1s\"".to_string(),
            i if i % 10 == 5 => {
                let tz = ["UTC", "Europe/Berlin", "America/New_York"][i % 3];
                format!("cron = \"{} */2 * * *\"\ntimezone = \"{tz}\"", i % 60)
            }
            _ => "every = \"5m\"".to_string(),
        };
        let _ = write!(
            toml,
            "[jobs.{}]\nkind = \"command\"\n{schedule}\ncommand = [\"true\"]\n\n",
            job_name(i)
        );
    }
    toml
}

/// `rows` runs over `jobs` jobs in one statement: the hot job every second
/// back from `base` (a fifth of the rows), the others every 5 minutes,
/// interleaved. Statuses and triggers by a hash of the row number.
fn fill_sql(jobs: usize, rows: i64, base: DateTime<Utc>) -> String {
    let hot = rows / 5;
    let others = jobs - 1;
    let base = base.format("%Y-%m-%d %H:%M:%S");
    format!(
        "\
INSERT INTO job_runs (job_name, kind, scheduled_for, \"trigger\", attempt, worker_id,
                      started_at, finished_at, status, error, output, duration_ms, missed)
SELECT job_name, 'command', sf,
       CASE WHEN h % 100 = 0 THEN 'manual' ELSE 'schedule' END, 1, 'bench-worker',
       sf + interval '3 milliseconds',
       sf + interval '3 milliseconds' + make_interval(secs => dur / 1000.0),
       status,
       CASE WHEN status = 'success' THEN NULL ELSE 'exit status 1: the command failed' END,
       'done', dur, 0
FROM (
    SELECT CASE WHEN g <= {hot} THEN '{HOT_JOB}'
                ELSE 'job-' || lpad((1 + (g - {hot} - 1) % {others})::text, 4, '0') END AS job_name,
           CASE WHEN g <= {hot} THEN TIMESTAMP '{base}' - make_interval(secs => g)
                ELSE TIMESTAMP '{base}' - make_interval(secs => 300 * ((g - {hot} - 1) / {others} + 1))
           END AS sf,
           (g * 7919) % 1000 AS h,
           50 + (g * 104729) % 2000 AS dur,
           CASE WHEN (g * 7919) % 1000 < 30 THEN 'failed'
                WHEN (g * 7919) % 1000 < 35 THEN 'timeout'
                WHEN (g * 7919) % 1000 < 36 THEN 'panicked'
                WHEN (g * 7919) % 1000 < 38 THEN 'skipped'
                WHEN (g * 7919) % 1000 < 39 THEN 'abandoned'
                ELSE 'success' END AS status
    FROM generate_series(1::bigint, {rows}) AS g
) AS s"
    )
}

/// One request to time: what the table calls it, its path and a header
/// of its own.
struct Variant {
    name: &'static str,
    path: String,
    header: Option<(&'static str, &'static str)>,
}

struct Figures {
    scenario: &'static str,
    variant: String,
    clients: usize,
    requests: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
    per_second: f64,
    bytes: usize,
    load: String,
}

/// One GET (with `header`, if any), timed to the last byte of its body,
/// and the body's length; anything but 200 stops the benchmark.
async fn get(
    client: &reqwest::Client,
    url: &str,
    header: Option<(&str, &str)>,
) -> anyhow::Result<(Duration, usize)> {
    let started = Instant::now();
    let mut req = client.get(url);
    if let Some((name, value)) = header {
        req = req.header(name, value);
    }
    let resp = req.send().await.with_context(|| format!("GET {url}"))?;
    let status = resp.status();
    let body = resp
        .bytes()
        .await
        .with_context(|| format!("GET {url}: reading the body"))?;
    let took = started.elapsed();
    if !status.is_success() {
        bail!("GET {url}: {status}: {}", String::from_utf8_lossy(&body));
    }
    Ok((took, body.len()))
}

/// A GET's JSON body (reqwest here has no `json` feature).
async fn json<T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    url: &str,
) -> anyhow::Result<T> {
    let body = client
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    serde_json::from_slice(&body).with_context(|| format!("GET {url}: not the JSON expected"))
}

/// `requests` requests spread over `clients` clients, each taking the
/// variants in turn; the latencies of all and the wall time.
async fn measure(
    client: &reqwest::Client,
    base: &str,
    variants: &[Variant],
    requests: usize,
    clients: usize,
) -> anyhow::Result<(Vec<Duration>, Duration, usize)> {
    let started = Instant::now();
    let tasks = (0..clients).map(|c| async move {
        let mut out = Vec::new();
        let mut bytes = 0;
        let mut i = c;
        while i < requests {
            let v = &variants[i % variants.len()];
            let (took, len) = get(client, &format!("{base}{}", v.path), v.header).await?;
            out.push(took);
            bytes = len;
            i += clients;
        }
        anyhow::Ok((out, bytes))
    });
    let mut all = Vec::with_capacity(requests);
    let mut bytes = 0;
    for r in futures::future::join_all(tasks).await {
        let (times, len) = r?;
        all.extend(times);
        bytes = len;
    }
    let wall = started.elapsed();
    all.sort_unstable();
    Ok((all, wall, bytes))
}

async fn figures(
    scenario: &'static str,
    variant: String,
    client: &reqwest::Client,
    base: &str,
    variants: &[Variant],
    settings: &Settings,
    clients: usize,
) -> anyhow::Result<Figures> {
    for v in variants.iter().cycle().take(WARM_UP.max(variants.len())) {
        get(client, &format!("{base}{}", v.path), v.header).await?;
    }
    let load = load_average();
    let (times, wall, bytes) = measure(client, base, variants, settings.requests, clients).await?;
    Ok(Figures {
        scenario,
        variant,
        clients,
        requests: times.len(),
        p50: rank(&times, 0.50),
        p99: rank(&times, 0.99),
        max: *times.last().expect("at least one request"),
        per_second: times.len() as f64 / wall.as_secs_f64(),
        bytes,
        load,
    })
}

/// The variants of the runs page, their cursor and window taken from the
/// filled table.
async fn runs_variants(
    url: &str,
    jobs: usize,
    base: DateTime<Utc>,
) -> anyhow::Result<Vec<Variant>> {
    #[derive(diesel::QueryableByName)]
    struct Cursor {
        #[diesel(sql_type = BigInt)]
        secs: i64,
        #[diesel(sql_type = BigInt)]
        id: i64,
        #[diesel(sql_type = Text)]
        job_name: String,
    }
    let mut conn = pg_connect(url).await?;
    let deep: Cursor = diesel::sql_query(format!(
        "SELECT EXTRACT(EPOCH FROM scheduled_for)::bigint AS secs, id, job_name FROM job_runs \
         WHERE job_name = '{HOT_JOB}' ORDER BY scheduled_for DESC, id DESC \
         OFFSET {} LIMIT 1",
        DEEP_ROWS - 1
    ))
    .get_result(&mut conn)
    .await
    .context("finding the deep cursor")?;
    ensure!(deep.job_name == HOT_JOB);
    let hour = |h: i64| (base - TimeDelta::hours(h)).format("%Y-%m-%dT%H:%M:%SZ");
    let runs = |job: &str| format!("/api/v1/jobs/{job}/runs");
    let v = |name, path| Variant {
        name,
        path,
        header: None,
    };
    Ok(vec![
        v("first page", runs(HOT_JOB)),
        v(
            "100,000 rows down (cursor)",
            format!("{}?cursor={}.{}", runs(HOT_JOB), deep.secs, deep.id),
        ),
        v(
            "status=skipped (0.2 % of rows)",
            format!("{}?status=skipped", runs(HOT_JOB)),
        ),
        v(
            "status=running (no rows)",
            format!("{}?status=running", runs(HOT_JOB)),
        ),
        v(
            "one hour, 30 h ago",
            format!("{}?since={}&until={}", runs(HOT_JOB), hour(31), hour(30)),
        ),
        v(
            "ordinary job, status=failed",
            format!("{}?status=failed", runs(&job_name(jobs / 2))),
        ),
    ])
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
        "ops-worker API benchmark: {} jobs, {} rows in job_runs, {} requests per variant, \
         {} concurrent clients, {} cores",
        settings.jobs,
        settings.rows,
        settings.requests,
        settings.clients,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    let pg = server_rt.block_on(PgDatabase::create(&settings.admin_url))?;
    let url = DatabaseUrl::parse(Some(&pg.url))?;
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let config_path = dir.path().join("schedules.toml");
    std::fs::write(&config_path, schedules_toml(settings.jobs))?;
    let config = Arc::new(Config::load(&config_path)?);
    ensure!(config.jobs.len() == settings.jobs, "schedules.toml jobs");

    let base = whole_second(SystemClock.now());
    let (addr, stop, server, _keep) = server_rt.block_on(async {
        let db = Db::connect(&url, url.pool_size()).await?;
        db.migrate().await?;
        let mut conn = pg_connect(&pg.url).await?;
        let started = Instant::now();
        conn.batch_execute(&fill_sql(settings.jobs, settings.rows, base))
            .await
            .context("filling job_runs")?;
        let filled = started.elapsed();
        conn.batch_execute("VACUUM ANALYZE job_runs").await?;
        println!(
            "filled job_runs: {} rows in {:.1} s, VACUUM ANALYZE {:.1} s; load average {}",
            settings.rows,
            filled.as_secs_f64(),
            (started.elapsed() - filled).as_secs_f64(),
            load_average()
        );
        // No sender: the config does not change during the benchmark.
        let (keep, configs) = tokio::sync::watch::channel(config.clone());
        let state = AppState::new(db, configs, Arc::new(SystemClock));
        let stop = CancellationToken::new();
        let (addr, server) = serve("127.0.0.1:0".parse()?, api_router(state), stop.clone()).await?;
        anyhow::Ok((addr, stop, server, keep))
    })?;
    let base_url = format!("http://{addr}");
    let variants = server_rt.block_on(runs_variants(&pg.url, settings.jobs, base))?;

    let (results, weights) = client_rt.block_on(async {
        let mut bearer = HeaderMap::new();
        bearer.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {TOKEN}"))?,
        );
        let client = ops_worker_jobs::health::http_client_builder()
            .timeout(Duration::from_secs(30))
            .default_headers(bearer)
            .build()?;
        // What is measured is what was asked for.
        let jobs: Vec<serde_json::Value> =
            json(&client, &format!("{base_url}/api/v1/jobs")).await?;
        ensure!(
            jobs.len() == settings.jobs,
            "GET /api/v1/jobs: {} jobs",
            jobs.len()
        );
        ensure!(
            jobs.iter().all(|j| j["last_run"].is_string()),
            "GET /api/v1/jobs: a job without its last run"
        );
        for v in &variants {
            let page: serde_json::Value = json(&client, &format!("{base_url}{}", v.path)).await?;
            let items = page["items"].as_array().map_or(0, |a| a.len());
            ensure!(
                items > 0 || v.path.contains("status=running"),
                "{}: an empty page",
                v.name
            );
        }

        let mut results = Vec::new();
        let mut weights = None;
        for scenario in &settings.scenarios {
            let (name, client, mine): (&'static str, _, Vec<Variant>) = match scenario.as_str() {
                "api-jobs" => (
                    "api-jobs",
                    client.clone(),
                    vec![Variant {
                        name: "GET /api/v1/jobs",
                        path: "/api/v1/jobs".to_string(),
                        header: None,
                    }],
                ),
                "api-runs" => (
                    "api-runs",
                    client.clone(),
                    variants
                        .iter()
                        .map(|v| Variant {
                            name: v.name,
                            path: v.path.clone(),
                            header: v.header,
                        })
                        .collect(),
                ),
                _ => {
                    let browser = sign_in(&base_url).await?;
                    check_overview(&browser, &base_url, settings.jobs).await?;
                    weights = Some(page_weight(&browser, &base_url).await?);
                    (
                        "console-overview",
                        browser,
                        vec![
                            Variant {
                                name: "GET / (the page)",
                                path: "/".to_string(),
                                header: None,
                            },
                            Variant {
                                name: "GET / (the fragment the script polls)",
                                path: "/".to_string(),
                                header: Some(FRAGMENT),
                            },
                        ],
                    )
                }
            };
            for v in &mine {
                let f = figures(
                    name,
                    v.name.to_string(),
                    &client,
                    &base_url,
                    std::slice::from_ref(v),
                    &settings,
                    1,
                )
                .await?;
                print_row(&f);
                results.push(f);
            }
            let all = if mine.len() == 1 {
                mine[0].name.to_string()
            } else {
                "all of the above in turn".to_string()
            };
            let f = figures(
                name,
                all,
                &client,
                &base_url,
                &mine,
                &settings,
                settings.clients,
            )
            .await?;
            print_row(&f);
            results.push(f);
        }
        anyhow::Ok((results, weights))
    })?;

    stop.cancel();
    server_rt.block_on(server)?;
    drop(server_rt);
    drop(pg);
    println!();
    println!(
        "| scenario | request | clients | requests | p50 / p99 / max (ms) | requests/s | body bytes | load average before |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for f in &results {
        println!(
            "| {} | {} | {} | {} | {} / {} / {} | {:.0} | {} | {} |",
            f.scenario,
            f.variant,
            f.clients,
            f.requests,
            ms(f.p50),
            ms(f.p99),
            ms(f.max),
            f.per_second,
            f.bytes,
            f.load
        );
    }
    if let Some(w) = &weights {
        print_weights(w);
    }
    Ok(())
}

fn print_row(f: &Figures) {
    println!(
        "{} {}: {} client(s), {} requests: p50 {} ms, p99 {} ms, max {} ms, {:.0} requests/s; load average before {}",
        f.scenario,
        f.variant,
        f.clients,
        f.requests,
        ms(f.p50),
        ms(f.p99),
        ms(f.max),
        f.per_second,
        f.load
    );
}

/// A browser's client, signed in to the console as a browser signs in:
/// `GET /login` (the form), `POST /login` with the token, from the same
/// origin (the sign-in form carries no CSRF field: the cross-site check
/// guards it, `src/http/console/session.rs`), then the session cookie on
/// every request. No redirects followed, `Accept-Encoding` as a browser's.
async fn sign_in(base: &str) -> anyhow::Result<reqwest::Client> {
    let browser = |headers: HeaderMap| {
        ops_worker_jobs::health::http_client_builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(headers)
            .build()
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::ACCEPT_ENCODING,
        HeaderValue::from_static(BROWSER_ENCODINGS),
    );
    let visitor = browser(headers.clone())?;
    let login = format!("{base}/login");
    let resp = visitor.get(&login).send().await?;
    ensure!(
        resp.status() == StatusCode::OK,
        "GET /login: {}",
        resp.status()
    );
    let headers_in = resp.headers().clone();
    let form = text(&headers_in, &resp.bytes().await?)?;
    ensure!(
        form.contains(r#"action="/login""#) && form.contains(r#"name="token""#),
        "GET /login: no sign-in form"
    );
    let resp = visitor
        .post(&login)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ORIGIN, base)
        .header("sec-fetch-site", "same-origin")
        .body(format!("token={TOKEN}"))
        .send()
        .await?;
    let status = resp.status();
    let to = resp.headers().get(header::LOCATION).cloned();
    ensure!(
        status == StatusCode::SEE_OTHER && to.as_ref().is_some_and(|l| l == "/"),
        "POST /login: {status}, to {to:?}, not 303 to /"
    );
    let session = resp
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|c| c.to_str().ok())
        .filter_map(|c| c.split(';').next())
        .find(|c| c.trim().starts_with("ops_console=") && c.trim().len() > "ops_console=".len())
        .context("POST /login: no session cookie")?
        .trim()
        .to_string();
    headers.insert(header::COOKIE, HeaderValue::from_str(&session)?);
    Ok(browser(headers)?)
}

/// A GET's status, headers and body, read whole.
async fn get_whole(
    client: &reqwest::Client,
    url: &str,
    header: Option<(&str, &str)>,
) -> anyhow::Result<(StatusCode, HeaderMap, Vec<u8>)> {
    let mut req = client.get(url);
    if let Some((name, value)) = header {
        req = req.header(name, value);
    }
    let resp = req.send().await.with_context(|| format!("GET {url}"))?;
    let (status, headers) = (resp.status(), resp.headers().clone());
    Ok((status, headers, resp.bytes().await?.to_vec()))
}

/// A body as text, gunzipped when the server sent it gzipped (it does for
/// a browser's `Accept-Encoding`).
fn text(headers: &HeaderMap, body: &[u8]) -> anyhow::Result<String> {
    match headers.get(header::CONTENT_ENCODING).map(|v| v.as_bytes()) {
        None => Ok(String::from_utf8_lossy(body).into_owned()),
        Some(b"gzip") => {
            let mut out = String::new();
            std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(body), &mut out)?;
            Ok(out)
        }
        Some(other) => anyhow::bail!("a body in {}", String::from_utf8_lossy(other)),
    }
}

/// What is measured is the signed-in overview of every job: the page with
/// one row per job and the session's sign-out form, and the fragment
/// (marked as one) with the same rows and no page around them.
async fn check_overview(client: &reqwest::Client, base: &str, jobs: usize) -> anyhow::Result<()> {
    let url = format!("{base}/");
    for fragment in [false, true] {
        let what = if fragment { "the fragment" } else { "the page" };
        let (status, headers, body) = get_whole(client, &url, fragment.then_some(FRAGMENT)).await?;
        ensure!(status == StatusCode::OK, "GET / ({what}): {status}");
        let html = text(&headers, &body)?;
        let rows = html.matches(r#"<tr id="job-"#).count();
        ensure!(rows == jobs, "GET / ({what}): {rows} job rows, not {jobs}");
        let marked = headers.get(FRAGMENT.0).is_some_and(|v| v == FRAGMENT.1);
        ensure!(
            marked == fragment && html.contains("<html") != fragment,
            "GET / ({what}): a fragment was asked for {fragment}, marked {marked}"
        );
        ensure!(
            fragment || (html.contains("bench · operator") && html.contains(r#"name="csrf""#)),
            "GET /: not signed in as bench"
        );
    }
    Ok(())
}

/// One response's weight: what it is, its bytes as sent, its
/// `Content-Encoding`.
struct Weight {
    what: String,
    bytes: usize,
    encoding: Option<String>,
}

/// What a browser loads for the overview (the page, then each stylesheet
/// and script it links), and the fragment its script then polls.
struct PageWeight {
    parts: Vec<Weight>,
    fragment: Weight,
}

async fn page_weight(client: &reqwest::Client, base: &str) -> anyhow::Result<PageWeight> {
    let weigh = |what: String, headers: &HeaderMap, body: &[u8]| Weight {
        what,
        bytes: body.len(),
        encoding: headers
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    };
    let (_, headers, page) = get_whole(client, &format!("{base}/"), None).await?;
    let mut out = vec![weigh("GET / (HTML)".to_string(), &headers, &page)];
    for asset in linked_assets(&text(&headers, &page)?) {
        let (status, headers, body) = get_whole(client, &format!("{base}{asset}"), None).await?;
        ensure!(status == StatusCode::OK, "GET {asset}: {status}");
        out.push(weigh(format!("GET {asset}"), &headers, &body));
    }
    ensure!(out.len() >= 3, "GET /: links no stylesheet or no script");
    let (_, headers, fragment) = get_whole(client, &format!("{base}/"), Some(FRAGMENT)).await?;
    Ok(PageWeight {
        parts: out,
        fragment: weigh(
            "GET / (the fragment polled every 2.5 s)".to_string(),
            &headers,
            &fragment,
        ),
    })
}

/// The same-origin stylesheets (`<link rel="stylesheet" href>`) and
/// scripts (`<script src>`) a page links, in order.
fn linked_assets(html: &str) -> Vec<String> {
    let attr = |tag: &str, name: &str| {
        let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        Some(tag[start..].split('"').next()?.to_string())
    };
    let mut out = Vec::new();
    for (open, name) in [("<link ", "href"), ("<script ", "src")] {
        for (at, _) in html.match_indices(open) {
            let tag = html[at..].split('>').next().unwrap_or("");
            if open == "<link " && !tag.contains(r#"rel="stylesheet""#) {
                continue;
            }
            if let Some(url) = attr(tag, name).filter(|u| u.starts_with('/')) {
                out.push((at, url));
            }
        }
    }
    out.sort();
    out.into_iter().map(|(_, url)| url).collect()
}

fn print_weights(w: &PageWeight) {
    let row = |w: &Weight| {
        println!(
            "| {} | {} | {} |",
            w.what,
            w.bytes,
            w.encoding.as_deref().unwrap_or("none")
        )
    };
    println!();
    println!("| console-overview: what a browser loads | bytes | Content-Encoding |");
    println!("|---|---|---|");
    w.parts.iter().for_each(row);
    let total: usize = w.parts.iter().map(|p| p.bytes).sum();
    println!("| total (page, stylesheets, scripts) | {total} | |");
    row(&w.fragment);
}
