//! Which scenarios a benchmark runs, the same way in each (each includes
//! this file with `#[path]`).

/// The scenarios named as arguments (`cargo bench` passes `--bench`, so
/// arguments starting with `-` are not names), else in `BENCH_SCENARIOS`
/// (comma-separated), else `defaults`.
pub fn named(defaults: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if names.is_empty() {
        if let Ok(list) = std::env::var("BENCH_SCENARIOS") {
            names = list.split(',').map(|s| s.trim().to_string()).collect();
        }
    }
    names.retain(|n| !n.is_empty());
    if names.is_empty() {
        names = defaults.iter().map(|n| n.to_string()).collect();
    }
    names
}
