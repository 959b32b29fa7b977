//! The `metrics` kind: collects numbers on an interval into
//! `metric_samples`, from read-only SQL queries against ops-worker's own
//! database and from Prometheus text endpoints.
//!
//! Every query and scrape runs at once, each under its own timeout, and
//! fails alone: the samples of the others are still recorded, and the run
//! fails naming what did not work. Samples older than `retention` are pruned
//! by every run.
//!
//! ```toml
//! [jobs.capacity]
//! kind = "metrics"
//! every = "5s"
//! retention = "7d"
//! queries = [
//!   { name = "alerts_open", sql = "SELECT severity, count(*) FROM alerts WHERE status = 'open' GROUP BY severity" },
//!   { name = "job_runs_rows", sql = "SELECT count(*) FROM job_runs", help = "rows in job_runs", labels = { db = "main" } },
//! ]
//! scrape = [
//!   { name = "node", url = "http://node-exporter:9100/metrics", include = ["node_load1", "node_filesystem_avail_bytes"] },
//! ]
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use crate::health::duration_opt;
use crate::prom;
use crate::store::MetricSample;
use crate::{BuildError, Job, JobContext, JobError, JobOutput, Settings};

const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 86_400);
const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_OWN_WINDOW: Duration = Duration::from_secs(3600);
/// The most of an exposition read from one endpoint.
const MAX_SCRAPE_BODY: usize = 16 * 1024 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricsSettings {
    #[serde(default)]
    queries: Vec<Query>,
    #[serde(default)]
    scrape: Vec<Scrape>,
    #[serde(default, deserialize_with = "duration_opt")]
    retention: Option<Duration>,
    /// Record ops-worker's own figures per job (`ops_worker_*`).
    #[serde(default)]
    own: bool,
    /// The window the own figures cover, ending at each collection.
    #[serde(default, deserialize_with = "duration_opt")]
    own_window: Option<Duration>,
}

/// One SQL query: its rows become samples named `name`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    pub name: String,
    pub sql: String,
    /// What the number means, for people reading reports.
    #[serde(default)]
    pub help: Option<String>,
    /// Labels added to every sample of the query.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "duration_opt")]
    pub timeout: Option<Duration>,
}

/// One Prometheus text endpoint: its selected series become samples named
/// `NAME:series`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scrape {
    pub name: String,
    pub url: String,
    /// Series names to keep (`*` wildcards); empty keeps every series.
    #[serde(default)]
    pub include: Vec<String>,
    #[serde(default, deserialize_with = "duration_opt")]
    pub timeout: Option<Duration>,
}

pub struct MetricsJob {
    queries: Vec<Query>,
    scrapes: Vec<Scrape>,
    retention: Duration,
    /// `Some(window)` when `own = true`.
    own: Option<Duration>,
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`, as Prometheus names metrics.
fn valid_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, as Prometheus names labels.
fn valid_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl MetricsJob {
    pub fn from_settings(_name: &str, settings: Settings<'_>) -> Result<Self, BuildError> {
        let s = MetricsSettings::deserialize(settings)?;
        let invalid = |msg: String| BuildError::Invalid(msg);
        if s.queries.is_empty() && s.scrape.is_empty() && !s.own {
            return Err(invalid(
                "add at least one of queries = [{ name, sql }], scrape = [{ name, url }] or own = true"
                    .into(),
            ));
        }
        if s.own_window.is_some() && !s.own {
            return Err(invalid("own_window: set own = true too".into()));
        }
        let own_window = s.own_window.unwrap_or(DEFAULT_OWN_WINDOW);
        if own_window.is_zero() {
            return Err(invalid("own_window: must be more than 0".into()));
        }
        let mut names = BTreeSet::new();
        for q in &s.queries {
            if !valid_metric_name(&q.name) {
                return Err(invalid(format!(
                    "queries: {:?}: a name is letters, digits, _ and :, not starting with a digit",
                    q.name
                )));
            }
            if !names.insert(q.name.as_str()) {
                return Err(invalid(format!(
                    "queries: the name {:?} is used twice",
                    q.name
                )));
            }
            if q.sql.trim().is_empty() {
                return Err(invalid(format!("queries: {:?}: sql is empty", q.name)));
            }
            if let Some(bad) = q.labels.keys().find(|k| !valid_label_name(k)) {
                return Err(invalid(format!(
                    "queries: {:?}: invalid label name {bad:?}",
                    q.name
                )));
            }
            if q.timeout.is_some_and(|t| t.is_zero()) {
                return Err(invalid(format!(
                    "queries: {:?}: timeout must be more than 0",
                    q.name
                )));
            }
        }
        let mut prefixes = BTreeSet::new();
        for sc in &s.scrape {
            if !valid_metric_name(&sc.name) || sc.name.contains(':') {
                return Err(invalid(format!(
                    "scrape: {:?}: a name is letters, digits and _, not starting with a digit",
                    sc.name
                )));
            }
            if !prefixes.insert(sc.name.as_str()) {
                return Err(invalid(format!(
                    "scrape: the name {:?} is used twice",
                    sc.name
                )));
            }
            let url = reqwest::Url::parse(&sc.url)
                .map_err(|e| invalid(format!("scrape: {:?}: invalid url: {e}", sc.name)))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(invalid(format!(
                    "scrape: {:?}: the url must be http or https",
                    sc.name
                )));
            }
            if sc.timeout.is_some_and(|t| t.is_zero()) {
                return Err(invalid(format!(
                    "scrape: {:?}: timeout must be more than 0",
                    sc.name
                )));
            }
        }
        let retention = s.retention.unwrap_or(DEFAULT_RETENTION);
        if retention.is_zero() {
            return Err(invalid("retention: must be more than 0".into()));
        }
        Ok(MetricsJob {
            queries: s.queries,
            scrapes: s.scrape,
            retention,
            own: s.own.then_some(own_window),
        })
    }

    /// The `help` of query `name`, for reports.
    pub fn help(&self, name: &str) -> Option<&str> {
        self.queries
            .iter()
            .find(|q| q.name == name)
            .and_then(|q| q.help.as_deref())
    }
}

/// One series' value: name, labels (sorted), number.
type Series = (String, Vec<(String, String)>, f64);

/// What one query or scrape gave: its samples, or why it gave none.
struct Collected {
    what: String,
    result: Result<Vec<Series>, String>,
}

#[async_trait]
impl Job for MetricsJob {
    async fn run(&self, ctx: JobContext) -> Result<JobOutput, JobError> {
        let collect = |what: String, result| Collected { what, result };
        let queries = self
            .queries
            .iter()
            .map(|q| async { collect(format!("query {:?}", q.name), run_query(&ctx, q).await) });
        let scrapes = self
            .scrapes
            .iter()
            .map(|s| async { collect(format!("scrape {:?}", s.name), run_scrape(&ctx, s).await) });
        let (mut collected, scraped) = tokio::join!(
            futures::future::join_all(queries),
            futures::future::join_all(scrapes)
        );
        collected.extend(scraped);
        if let Some(window) = self.own {
            collected.push(collect(
                "own figures".to_string(),
                own_figures(&ctx, window).await,
            ));
        }

        let now = ctx.clock.now();
        let mut samples = Vec::new();
        let (mut failures, mut nan) = (Vec::new(), 0usize);
        for c in collected {
            match c.result {
                Ok(series) => {
                    for (name, labels, value) in series {
                        // SQLite cannot store NaN (it reads back as NULL);
                        // a NaN says "no figure", so it is left out on both.
                        if value.is_nan() {
                            nan += 1;
                            continue;
                        }
                        samples.push(MetricSample {
                            job_name: ctx.job.to_string(),
                            name,
                            labels,
                            value,
                            collected_at: now,
                        });
                    }
                }
                Err(e) => failures.push(format!("{}: {e}", c.what)),
            }
        }
        ctx.store
            .record_samples(&samples)
            .await
            .map_err(|e| JobError::new(format!("cannot record samples: {e}")))?;
        let cutoff =
            now - chrono::Duration::from_std(self.retention).unwrap_or(chrono::Duration::MAX);
        let pruned = ctx
            .store
            .prune_samples(cutoff)
            .await
            .map_err(|e| JobError::new(format!("cannot prune samples: {e}")))?;

        let mut summary = format!(
            "{} sample{} from {} quer{} and {} scrape{}",
            samples.len(),
            if samples.len() == 1 { "" } else { "s" },
            self.queries.len(),
            if self.queries.len() == 1 { "y" } else { "ies" },
            self.scrapes.len(),
            if self.scrapes.len() == 1 { "" } else { "s" },
        );
        if nan > 0 {
            summary.push_str(&format!(", {nan} NaN left out"));
        }
        if pruned > 0 {
            summary.push_str(&format!(", {pruned} pruned"));
        }
        if failures.is_empty() {
            Ok(JobOutput {
                output: Some(summary),
            })
        } else {
            Err(JobError {
                message: failures.join("; "),
                output: Some(summary),
            })
        }
    }
}

/// Labels sorted by name; a later value for a name replaces an earlier one.
fn merged(base: &BTreeMap<String, String>, more: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut all = base.clone();
    all.extend(more);
    all.into_iter().collect()
}

async fn run_query(ctx: &JobContext, q: &Query) -> Result<Vec<Series>, String> {
    let timeout = q.timeout.unwrap_or(DEFAULT_QUERY_TIMEOUT);
    let rows = ctx
        .store
        .query_read_only(&q.sql, timeout)
        .await
        .map_err(|e| e.0)?;
    let mut series = Vec::with_capacity(rows.len());
    for row in rows {
        if let Some((bad, _)) = row.labels.iter().find(|(k, _)| !valid_label_name(k)) {
            return Err(format!(
                "column {bad:?} is not a valid label name; alias it (AS name)"
            ));
        }
        series.push((q.name.clone(), merged(&q.labels, row.labels), row.value));
    }
    Ok(series)
}

/// ops-worker's own figures per job over `window`, as samples.
async fn own_figures(ctx: &JobContext, window: Duration) -> Result<Vec<Series>, String> {
    let since =
        ctx.clock.now() - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
    let figures = ctx.store.job_figures(since).await.map_err(|e| e.0)?;
    let mut series = Vec::new();
    for f in figures {
        let job = || vec![("job".to_string(), f.job.clone())];
        for (status, n) in &f.runs {
            series.push((
                "ops_worker_runs".to_string(),
                vec![
                    ("job".to_string(), f.job.clone()),
                    ("status".to_string(), status.clone()),
                ],
                *n as f64,
            ));
        }
        let gauges = [
            (
                "ops_worker_run_duration_ms_max",
                f.duration_ms_max.map(|v| v as f64),
            ),
            ("ops_worker_run_duration_ms_avg", f.duration_ms_avg),
            (
                "ops_worker_lateness_ms_max",
                f.lateness_ms_max.map(|v| v as f64),
            ),
            (
                "ops_worker_last_success_timestamp_seconds",
                f.last_success.map(|t| t.timestamp_millis() as f64 / 1000.0),
            ),
        ];
        for (name, value) in gauges {
            if let Some(v) = value {
                series.push((name.to_string(), job(), v));
            }
        }
    }
    Ok(series)
}

async fn run_scrape(ctx: &JobContext, s: &Scrape) -> Result<Vec<Series>, String> {
    let timeout = s.timeout.unwrap_or(DEFAULT_SCRAPE_TIMEOUT);
    let text = tokio::time::timeout(timeout, fetch(&ctx.http, &s.url))
        .await
        .map_err(|_| format!("timed out after {}", humantime::format_duration(timeout)))??;
    let parsed = prom::parse(&text).map_err(|e| format!("not Prometheus text: {e}"))?;
    Ok(parsed
        .into_iter()
        .filter(|p| s.include.is_empty() || s.include.iter().any(|i| prom::matches(i, &p.name)))
        .map(|p| {
            (
                format!("{}:{}", s.name, p.name),
                merged(&BTreeMap::new(), p.labels),
                p.value,
            )
        })
        .collect())
}

/// GET `url`; a 2xx body of at most [`MAX_SCRAPE_BODY`] as text.
async fn fetch(http: &reqwest::Client, url: &str) -> Result<String, String> {
    let describe = |e: reqwest::Error| crate::health::reason(&e);
    let mut resp = http
        .get(url)
        .header(reqwest::header::ACCEPT, "text/plain;version=0.0.4")
        .send()
        .await
        .map_err(describe)?;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status().as_u16()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(describe)? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_SCRAPE_BODY {
            return Err(format!(
                "the response is larger than {} MiB",
                MAX_SCRAPE_BODY >> 20
            ));
        }
    }
    String::from_utf8(body).map_err(|_| "the response is not UTF-8".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The job from its settings as one line of `key = value` pairs.
    fn job(settings: &str) -> Result<MetricsJob, BuildError> {
        let text = format!("{{ {settings} }}");
        MetricsJob::from_settings("m", toml::de::ValueDeserializer::parse(&text).unwrap())
    }

    #[test]
    fn settings_are_checked() {
        let err = |t: &str| match job(t) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("accepted: {t}"),
        };
        assert!(err("retention = \"1d\"").contains("at least one"));
        assert!(
            err("own_window = \"1h\", queries = [{ name = \"a\", sql = \"SELECT 1\" }]")
                .contains("own = true")
        );
        assert!(job("own = true").unwrap().own == Some(DEFAULT_OWN_WINDOW));
        assert!(err("queries = [{ name = \"1x\", sql = \"SELECT 1\" }]").contains("\"1x\""));
        assert!(err(
            "queries = [{ name = \"a\", sql = \"SELECT 1\" }, { name = \"a\", sql = \"SELECT 2\" }]"
        )
        .contains("used twice"));
        assert!(err("queries = [{ name = \"a\", sql = \" \" }]").contains("sql is empty"));
        assert!(err(
            "queries = [{ name = \"a\", sql = \"SELECT 1\", labels = { \"a-b\" = \"x\" } }]"
        )
        .contains("invalid label name"));
        assert!(err("scrape = [{ name = \"n\", url = \"ftp://x\" }]").contains("http or https"));
        assert!(
            err("queries = [{ name = \"a\", sql = \"SELECT 1\", colour = 1 }]").contains("colour")
        );
        let ok = job("queries = [{ name = \"a\", sql = \"SELECT 1\", help = \"one\" }]").unwrap();
        assert_eq!(ok.retention, DEFAULT_RETENTION);
        assert_eq!(ok.help("a"), Some("one"));
    }

    #[test]
    fn names_follow_prometheus() {
        assert!(valid_metric_name("node:load1_total"));
        assert!(!valid_metric_name("9lives"));
        assert!(!valid_metric_name(""));
        assert!(valid_label_name("_x9"));
        assert!(!valid_label_name("a:b"));
    }

    #[test]
    fn query_labels_are_merged_and_sorted() {
        let base = BTreeMap::from([("z".to_string(), "1".to_string())]);
        assert_eq!(
            merged(
                &base,
                vec![("a".into(), "2".into()), ("z".into(), "3".into())]
            ),
            vec![("a".into(), "2".into()), ("z".into(), "3".into())]
        );
    }
}
