//! How the HTTP benchmarks (api, push) summarise what they timed: the
//! machine's load average beside each figure, nearest-rank percentiles and
//! milliseconds with one decimal.

use std::time::Duration;

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` writes them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Nearest-rank percentile of sorted `v`.
pub fn rank(v: &[Duration], q: f64) -> Duration {
    let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

pub fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}
