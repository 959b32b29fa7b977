//! The log filter every command starts with.

use tracing_subscriber::filter::{LevelFilter, Targets};

/// The log filter: `RUST_LOG` as directives separated by commas, each a
/// level (`info`) or `target=level` (`warn,ops_worker=debug`), else
/// `default`. A `RUST_LOG` that does not read that way is reported (the
/// caller prints it once) and `default` applies. Span and field filters
/// (`[run{job=x}]`) are not supported: they need a regex engine, which would
/// cost every process ~200 KiB of code.
pub fn log_filter(default: &str) -> (Targets, Option<String>) {
    let fallback = || default.parse().unwrap_or_default();
    match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => match parse(&v) {
            Ok(f) => (f, None),
            Err(e) => (
                fallback(),
                Some(format!(
                    "RUST_LOG={v:?} is not a list of level or target=level directives ({e}); logging at {default}"
                )),
            ),
        },
        _ => (fallback(), None),
    }
}

/// Parses `RUST_LOG` strictly. `Targets`' own parser accepts any text: a
/// directive without `=` that is not a level becomes a *target* enabled at
/// every level (`debug[x`, `warning`, `verbose`), and everything before `=`
/// is taken as a literal target (`[span]=debug` enables the target
/// "[span]"; ` ops_worker=debug`, with the space, " ops_worker"). No event
/// has such a target, and a filter without a bare level enables nothing
/// else, so those values turned every line off without a word. Here each
/// directive must be a level, or a target that is a module path
/// (`ops_worker::runner`) with a level; only then does `Targets` build the
/// filter from the trimmed directives.
fn parse(value: &str) -> Result<Targets, String> {
    const LEVELS: &str = "off, error, warn, info, debug, trace";
    let mut directives = Vec::new();
    for d in value.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        match d.split_once('=') {
            Some((target, level)) => {
                let target = target.trim();
                if !is_module_path(target) {
                    return Err(format!(
                        "{target:?} is not a target (a module path such as ops_worker::runner); span and field filters are not supported"
                    ));
                }
                let level = level.trim();
                if level.is_empty() || level.parse::<LevelFilter>().is_err() {
                    return Err(format!("{level:?} is not a level ({LEVELS})"));
                }
                directives.push(format!("{target}={level}"));
            }
            None if d.parse::<LevelFilter>().is_ok() => directives.push(d.to_string()),
            None => {
                return Err(format!(
                    "{d:?} is neither a level ({LEVELS}) nor target=level"
                ))
            }
        }
    }
    if directives.is_empty() {
        return Err("no directive".to_string());
    }
    directives.join(",").parse().map_err(|e| format!("{e}"))
}

/// `ops_worker`, `ops_worker::runner`, `hyper_util`: what `module_path!()`
/// gives, which is every target ops-worker and its libraries log with.
fn is_module_path(target: &str) -> bool {
    target.split("::").all(|segment| {
        !segment.is_empty()
            && segment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_module_targets_are_accepted() {
        for ok in [
            "info",
            "WARN",
            "warn,ops_worker=debug",
            " info , ops_worker::runner = trace ",
            "hyper_util=off,info,",
        ] {
            assert!(parse(ok).is_ok(), "{ok}: {:?}", parse(ok).err());
        }
        // The trimmed directive is the one that applies.
        let f = parse("off, ops_worker=debug").unwrap();
        assert!(f.would_enable("ops_worker::runner", &tracing::Level::DEBUG));
        assert!(!f.would_enable("hyper", &tracing::Level::ERROR));
    }

    #[test]
    fn what_targets_would_take_as_a_target_that_matches_nothing_is_refused() {
        for (bad, why) in [
            ("debug[x", "\"debug[x\" is neither a level"),
            ("[span]=debug", "\"[span]\" is not a target"),
            ("ops_worker[{job}]=debug", "is not a target"),
            ("warning", "\"warning\" is neither a level"),
            ("ops_worker", "\"ops_worker\" is neither a level"),
            ("ops_worker=loud", "\"loud\" is not a level"),
            ("ops_worker=", "\"\" is not a level"),
            ("=debug", "\"\" is not a target"),
            ("a=b=c", "is not a level"),
            (",", "no directive"),
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
