//! The `metrics` kind on both backends: read-only queries (scalar, labelled,
//! failing, writes refused), scrapes of Prometheus text from local HTTP
//! servers, and retention.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use ops_worker::db::{RunStatus, Trigger};
use ops_worker::runner::{Outcome, RunReport, Slot};
use ops_worker_jobs::store::{HealthCheck, HealthStatus, HealthStore, MetricSample, MetricStore};
use ops_worker_jobs::{Clock, ManualClock, SystemClock};
use wiremock::MockServer;

use crate::fixtures::{runner, spec_from_toml, utc, PastRun};
use crate::helpers::TestDb;
use crate::http::answering;

/// A Prometheus text endpoint on 127.0.0.1, for as long as it lives.
async fn server(status: u16, body: &str) -> MockServer {
    answering(status, "text/plain; version=0.0.4", body).await
}

async fn run(db: &TestDb, toml: &str, clock: Arc<dyn Clock>) -> RunReport {
    let spec = spec_from_toml("m", toml);
    let r = runner(db.db(), clock.clone(), "w1");
    let Outcome::Ran(report) = r.run(Slot::new(&spec, clock.now(), Trigger::Manual)).await else {
        panic!("the run did not happen")
    };
    report
}

/// A stored sample as the tests compare it: name, labels, value.
type Seen<'a> = (String, Vec<(&'a str, &'a str)>, f64);

fn labels(s: &MetricSample) -> Vec<(&str, &str)> {
    s.labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

async fn queries_record_numbers_and_can_never_write(db: &TestDb) {
    let at = Utc::now();
    let check = |service: &str, status| HealthCheck {
        service: service.into(),
        job_name: "health".into(),
        status,
        http_status: None,
        latency_ms: Some(7),
        error: None,
        checked_at: at,
    };
    db.db()
        .record_health(&[
            check("api", HealthStatus::Up),
            check("db", HealthStatus::Down),
        ])
        .await
        .unwrap();
    db.db()
        .record_health(&[check("db", HealthStatus::Down)])
        .await
        .unwrap();

    let toml = r#"
[jobs.m]
kind = "metrics"
every = "5s"
queries = [
  { name = "scalar", sql = "SELECT 42" },
  { name = "fraction", sql = "SELECT 2.5" },
  { name = "failures", sql = "SELECT service, status, consecutive_failures FROM service_health ORDER BY service", labels = { team = "ops" } },
  { name = "broken", sql = "SELECT * FROM no_such_table" },
  { name = "wipe", sql = "DELETE FROM service_health" },
  { name = "sneaky", sql = "SELECT 1; DELETE FROM service_health" },
  { name = "words", sql = "SELECT 'many'" },
]
"#;
    let report = run(db, toml, Arc::new(SystemClock)).await;
    assert_eq!(report.status, RunStatus::Failed, "{report:?}");
    let error = report.error.clone().unwrap();
    for q in ["broken", "wipe", "words"] {
        assert!(error.contains(&format!("query \"{q}\": ")), "{q}: {error}");
    }
    assert!(error.contains("no_such_table"), "{error}");
    assert!(error.contains("must be a number"), "{error}");
    // `sneaky` never runs its DELETE: PostgreSQL prepares one statement and
    // refuses the pair; SQLite reads the first statement and ignores the rest.
    let sneaky_ran = match db.db().backend() {
        ops_worker::db::Backend::Postgres => {
            assert!(error.contains("query \"sneaky\": "), "{error}");
            false
        }
        ops_worker::db::Backend::Sqlite => true,
    };
    let expected = if sneaky_ran { 5 } else { 4 };
    assert_eq!(
        report.output,
        Some(format!("{expected} samples from 7 queries and 0 scrapes")),
        "{report:?}"
    );

    // The writes changed nothing.
    let services = db.db().service_health().await.unwrap();
    assert_eq!(services.len(), 2, "service_health was written to");

    let samples = db.db().metric_samples(None).await.unwrap();
    let mut got: Vec<Seen<'_>> = samples
        .iter()
        .map(|s| (s.name.clone(), labels(s), s.value))
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    assert_eq!(
        got,
        vec![
            (
                "failures".to_string(),
                vec![("service", "api"), ("status", "up"), ("team", "ops")],
                0.0
            ),
            (
                "failures".to_string(),
                vec![("service", "db"), ("status", "down"), ("team", "ops")],
                2.0
            ),
            ("fraction".to_string(), vec![], 2.5),
            ("scalar".to_string(), vec![], 42.0),
        ]
        .into_iter()
        .chain(sneaky_ran.then(|| ("sneaky".to_string(), vec![], 1.0)))
        .collect::<Vec<_>>()
    );
    assert!(samples.iter().all(|s| s.job_name == "m"));
}

async fn a_query_over_its_timeout_fails_alone(db: &TestDb) {
    // A statement that runs for seconds on either backend.
    let slow = match db.db().backend() {
        ops_worker::db::Backend::Postgres => "SELECT 1 FROM pg_sleep(5)",
        ops_worker::db::Backend::Sqlite => {
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) SELECT count(*) FROM c"
        }
    };
    let toml = format!(
        "[jobs.m]\nkind = \"metrics\"\nevery = \"5s\"\nqueries = [\n  {{ name = \"slow\", sql = \"{slow}\", timeout = \"100ms\" }},\n  {{ name = \"fast\", sql = \"SELECT 1\" }},\n]\n"
    );
    let started = std::time::Instant::now();
    let report = run(db, &toml, Arc::new(SystemClock)).await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "the timeout did not stop the wait"
    );
    assert_eq!(report.status, RunStatus::Failed);
    let error = report.error.unwrap();
    assert!(error.starts_with("query \"slow\": "), "{error}");
    assert!(
        error.contains("timed out") || error.contains("statement timeout"),
        "{error}"
    );
    let fast = db.db().metric_samples(Some("fast")).await.unwrap();
    assert_eq!(fast.len(), 1);
}

/// Captured from node_exporter 1.8 (trimmed), with a histogram from a Go
/// client and a NaN summary quantile.
const EXPOSITION: &str = r#"# HELP node_load1 1m load average.
# TYPE node_load1 gauge
node_load1 0.21
# HELP node_filesystem_avail_bytes Filesystem space available to non-root users in bytes.
# TYPE node_filesystem_avail_bytes gauge
node_filesystem_avail_bytes{device="/dev/sda1",fstype="ext4",mountpoint="/"} 4.1759875072e+10
node_filesystem_avail_bytes{device="tmpfs",fstype="tmpfs",mountpoint="/run"} 8.28407808e+08
# HELP node_network_receive_bytes_total Network device statistic receive_bytes.
# TYPE node_network_receive_bytes_total counter
node_network_receive_bytes_total{device="eth0"} 1.234567e+06
# HELP go_gc_duration_seconds A summary of the pause duration of garbage collection cycles.
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0"} NaN
go_gc_duration_seconds_sum 0.000123
go_gc_duration_seconds_count 3
"#;

async fn scrapes_keep_the_selected_series(db: &TestDb) {
    let servers = [
        server(200, EXPOSITION).await,
        server(500, "oops").await,
        server(200, "this is { not prometheus\n").await,
    ];
    let [exporter, failing, garbage] = servers.each_ref().map(MockServer::address);
    let toml = format!(
        r#"
[jobs.m]
kind = "metrics"
every = "5s"
scrape = [
  {{ name = "node", url = "http://{exporter}/metrics", include = ["node_load1", "node_filesystem_*_bytes", "go_gc_duration_seconds"] }},
  {{ name = "all", url = "http://{exporter}/metrics" }},
  {{ name = "down", url = "http://{failing}/metrics" }},
  {{ name = "junk", url = "http://{garbage}/metrics" }},
]
"#
    );
    let report = run(db, &toml, Arc::new(SystemClock)).await;
    assert_eq!(report.status, RunStatus::Failed, "{report:?}");
    let error = report.error.clone().unwrap();
    assert!(error.contains("scrape \"down\": HTTP 500"), "{error}");
    assert!(
        error.contains("scrape \"junk\": not Prometheus text: line 1"),
        "{error}"
    );
    // node: 1 + 2 (the NaN quantile is left out); all: 6 of 7.
    assert_eq!(
        report.output.as_deref(),
        Some("9 samples from 0 queries and 4 scrapes, 2 NaN left out"),
        "{report:?}"
    );

    let samples = db.db().metric_samples(None).await.unwrap();
    let node: Vec<_> = samples
        .iter()
        .filter(|s| s.name.starts_with("node:"))
        .map(|s| (s.name.as_str(), labels(s), s.value))
        .collect();
    let mut node = node;
    node.sort_by(|a, b| a.0.cmp(b.0).then(a.1.cmp(&b.1)));
    assert_eq!(
        node,
        vec![
            (
                "node:node_filesystem_avail_bytes",
                vec![
                    ("device", "/dev/sda1"),
                    ("fstype", "ext4"),
                    ("mountpoint", "/")
                ],
                41_759_875_072.0
            ),
            (
                "node:node_filesystem_avail_bytes",
                vec![
                    ("device", "tmpfs"),
                    ("fstype", "tmpfs"),
                    ("mountpoint", "/run")
                ],
                828_407_808.0
            ),
            ("node:node_load1", vec![], 0.21),
        ]
    );
    let all: Vec<_> = samples
        .iter()
        .filter(|s| s.name.starts_with("all:"))
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(all.len(), 6, "{all:?}");
    assert!(all.contains(&"all:go_gc_duration_seconds_count"));
}

async fn retention_prunes_old_samples_in_batches(db: &TestDb) {
    let now = utc("2026-06-10T12:00:00Z");
    let sample = |at: DateTime<Utc>, i: usize| MetricSample {
        job_name: "m".into(),
        name: "old".into(),
        labels: vec![("i".into(), i.to_string())],
        value: i as f64,
        collected_at: at,
    };
    // More than one delete batch past the 7-day default, one just inside it.
    let stale: Vec<_> = (0..12_001)
        .map(|i| sample(now - TimeDelta::days(8), i))
        .collect();
    db.db().record_samples(&stale).await.unwrap();
    let kept = sample(now - TimeDelta::days(7) + TimeDelta::seconds(1), 0);
    db.db()
        .record_samples(std::slice::from_ref(&kept))
        .await
        .unwrap();

    let toml = "[jobs.m]\nkind = \"metrics\"\nevery = \"5s\"\nqueries = [{ name = \"one\", sql = \"SELECT 1\" }]\n";
    let report = run(db, toml, Arc::new(ManualClock::new(now))).await;
    assert_eq!(report.status, RunStatus::Success, "{report:?}");
    assert_eq!(
        report.output.as_deref(),
        Some("1 sample from 1 query and 0 scrapes, 12001 pruned")
    );
    let old = db.db().metric_samples(Some("old")).await.unwrap();
    assert_eq!(old, vec![kept]);
    assert_eq!(db.db().metric_samples(Some("one")).await.unwrap().len(), 1);
}

async fn own_figures_need_no_sql(db: &TestDb) {
    let now = utc("2026-06-10T12:00:00Z");
    let min = |m: i64| now - TimeDelta::minutes(m);
    let ms = TimeDelta::milliseconds;
    // (job, slot, trigger, lateness ms, status, duration ms)
    let runs = [
        (
            "a",
            min(120),
            Trigger::Schedule,
            999,
            RunStatus::Success,
            999,
        ), // before the window
        ("a", min(30), Trigger::Schedule, 40, RunStatus::Success, 100),
        ("a", min(20), Trigger::CatchUp, 250, RunStatus::Failed, 300),
        (
            "a",
            min(10),
            Trigger::Schedule,
            5_000,
            RunStatus::Skipped,
            0,
        ),
        ("a", min(5), Trigger::Manual, 9_000, RunStatus::Success, 200),
        ("b", min(1), Trigger::Schedule, 5, RunStatus::Success, 10),
    ];
    for (job, slot, trigger, late_ms, status, duration_ms) in runs {
        PastRun {
            job,
            slot,
            trigger,
            late_ms,
            status,
            duration_ms,
            missed: 0,
            jitter_ms: None,
        }
        .record(db.db())
        .await;
    }
    // A jittered run that started 45 s after its slot, 44.99 s of which were
    // its jitter: 10 ms late.
    PastRun {
        job: "c",
        slot: min(2),
        trigger: Trigger::Schedule,
        late_ms: 45_000,
        status: RunStatus::Success,
        duration_ms: 7,
        missed: 0,
        jitter_ms: Some(44_990),
    }
    .record(db.db())
    .await;

    let toml = "[jobs.m]\nkind = \"metrics\"\nevery = \"5s\"\nown = true\n";
    let report = run(db, toml, Arc::new(ManualClock::new(now))).await;
    assert_eq!(report.status, RunStatus::Success, "{report:?}");
    let mut got: Vec<Seen<'_>> = Vec::new();
    let samples = db.db().metric_samples(None).await.unwrap();
    for s in &samples {
        // The metrics run itself (manual, at `now`) is in the window too.
        if labels(s).contains(&("job", "m")) {
            continue;
        }
        got.push((s.name.clone(), labels(s), s.value));
    }
    got.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    // Of the jittered job, its lateness is the point.
    let c = [("job", "c")];
    let c_lateness = got
        .iter()
        .find(|s| s.0 == "ops_worker_lateness_ms_max" && s.1 == c)
        .map(|s| s.2);
    assert_eq!(c_lateness, Some(10.0), "{got:?}");
    got.retain(|s| !s.1.contains(&c[0]));
    let last_success_a = (min(5) + ms(9_000) + ms(200)).timestamp_millis() as f64 / 1000.0;
    let last_success_b = (min(1) + ms(5) + ms(10)).timestamp_millis() as f64 / 1000.0;
    let e = |n: &str, l: Vec<(&'static str, &'static str)>, v: f64| (n.to_string(), l, v);
    let mut want = vec![
        e(
            "ops_worker_last_success_timestamp_seconds",
            vec![("job", "a")],
            last_success_a,
        ),
        e("ops_worker_lateness_ms_max", vec![("job", "a")], 250.0),
        e("ops_worker_run_duration_ms_avg", vec![("job", "a")], 200.0),
        e("ops_worker_run_duration_ms_max", vec![("job", "a")], 300.0),
        e(
            "ops_worker_runs",
            vec![("job", "a"), ("status", "failed")],
            1.0,
        ),
        e(
            "ops_worker_runs",
            vec![("job", "a"), ("status", "skipped")],
            1.0,
        ),
        e(
            "ops_worker_runs",
            vec![("job", "a"), ("status", "success")],
            2.0,
        ),
        e(
            "ops_worker_last_success_timestamp_seconds",
            vec![("job", "b")],
            last_success_b,
        ),
        e("ops_worker_lateness_ms_max", vec![("job", "b")], 5.0),
        e("ops_worker_run_duration_ms_avg", vec![("job", "b")], 10.0),
        e("ops_worker_run_duration_ms_max", vec![("job", "b")], 10.0),
        e(
            "ops_worker_runs",
            vec![("job", "b"), ("status", "success")],
            1.0,
        ),
    ];
    want.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    assert_eq!(got, want);
}

crate::backend_tests!(
    queries_record_numbers_and_can_never_write,
    a_query_over_its_timeout_fails_alone,
    scrapes_keep_the_selected_series,
    retention_prunes_old_samples_in_batches,
    own_figures_need_no_sql,
);
