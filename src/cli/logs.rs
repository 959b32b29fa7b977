//! The log filter every command starts with.

/// The log filter: `RUST_LOG` as `target=level` directives separated by
/// commas (`info`, `warn,ops_worker=debug`), else `default`. A `RUST_LOG`
/// that does not parse is reported (the caller prints it once) and `default`
/// applies. Span and field filters (`[run{job=x}]`) are not supported: they
/// need a regex engine, which would cost every process ~200 KiB of code.
pub fn log_filter(default: &str) -> (tracing_subscriber::filter::Targets, Option<String>) {
    let fallback = || default.parse().unwrap_or_default();
    match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => match v.parse() {
            Ok(f) => (f, None),
            Err(e) => (
                fallback(),
                Some(format!(
                    "RUST_LOG={v:?} is not a list of target=level directives ({e}); logging at {default}"
                )),
            ),
        },
        _ => (fallback(), None),
    }
}
