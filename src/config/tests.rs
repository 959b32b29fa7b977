use super::*;
use crate::schedule::{CatchUp, Overlap, Schedule};

fn env(name: &str) -> Option<String> {
    match name {
        "HEARTBEAT_EVERY" => Some("45s".into()),
        "BAD_EVERY" => Some("3x".into()),
        "OFF" => Some("false".into()),
        "RETRIES" => Some("2".into()),
        "OPS_WEBHOOK_URL" => Some("https://hooks.example.com/services/T0/B0/s3cr3t".into()),
        "OPS_TOKEN" => Some("t0ken-value".into()),
        "BAD_HEADER" => Some("line\nbreak-s3cr3t".into()),
        "PING_TOKEN" => Some("ping-s3cr3t-0123456789".into()),
        "SHORT_TOKEN" => Some("s3cr3t".into()),
        _ => None,
    }
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(Path::new("schedules.toml"), text, &env)
}

/// The problems as printed, one per line.
fn problems(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(_) => panic!("expected problems in:\n{text}"),
        Err(ConfigError::Invalid { problems }) => {
            problems.iter().map(ToString::to_string).collect()
        }
        Err(e) => panic!("unexpected error {e}"),
    }
}

fn parse_at(text: &str, now: chrono::DateTime<chrono::Utc>) -> Result<Config, ConfigError> {
    Config::parse_at(Path::new("schedules.toml"), text, &env, now)
}

fn problems_at(text: &str, now: chrono::DateTime<chrono::Utc>) -> Vec<String> {
    match parse_at(text, now) {
        Err(ConfigError::Invalid { problems }) => {
            problems.iter().map(ToString::to_string).collect()
        }
        other => panic!("expected problems, got {other:?}"),
    }
}

fn utc(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn one_problem(text: &str) -> String {
    let p = problems(text);
    assert_eq!(p.len(), 1, "{p:#?}");
    p.into_iter().next().unwrap()
}

const EXAMPLE: &str = r#"
[defaults]
timezone = "UTC"
retries = "${RETRIES}"

[jobs.nightly-vacuum]
kind = "command"
cron = "0 30 2 * * *"
timezone = "Europe/Berlin"
command = ["psql", "-c", "VACUUM"]

[jobs.heartbeat]
kind = "command"
every = "${HEARTBEAT_EVERY:-30s}"
command = ["true"]
timeout = "10s"
overlap = "queue"
catch_up = "all"
catch_up_window = "1h"
retry_backoff = "1s"
enabled = "${OFF:-true}"
"#;

#[test]
fn the_example_parses_with_defaults_and_env() {
    let c = parse(EXAMPLE).unwrap();
    assert_eq!(
        names(&c).into_iter().collect::<Vec<_>>(),
        ["heartbeat", "nightly-vacuum"]
    );
    let hb = c.job("heartbeat").unwrap();
    assert_eq!(hb.kind, "command");
    assert!(matches!(hb.schedule, Schedule::Every { every } if every == Duration::from_secs(45)));
    assert_eq!(hb.timeout, Duration::from_secs(10));
    assert_eq!(hb.overlap, Overlap::Queue);
    assert_eq!(hb.catch_up, CatchUp::All);
    assert_eq!(hb.catch_up_window, Duration::from_secs(3600));
    assert_eq!(hb.retries, 2, "from [defaults] through ${{RETRIES}}");
    assert_eq!(hb.retry_backoff, Duration::from_secs(1));
    assert!(!hb.enabled);

    let nv = c.job("nightly-vacuum").unwrap();
    assert_eq!(
        nv.timezone,
        "Europe/Berlin".parse::<ops_worker_jobs::tz::Tz>().unwrap()
    );
    assert_eq!(
        nv.timeout,
        Duration::from_secs(600),
        "cron jobs default to 10m"
    );
    assert_eq!(nv.overlap, Overlap::Skip);
    assert_eq!(nv.catch_up, CatchUp::Latest);
    assert_eq!(nv.catch_up_window, Duration::from_secs(86_400));
    assert!(nv.enabled);
}

#[test]
fn interval_timeout_defaults_to_the_interval_capped_at_ten_minutes() {
    let c = parse("[jobs.a]\nkind = \"command\"\nevery = \"30s\"\ncommand = [\"true\"]\n[jobs.b]\nkind = \"command\"\nevery = \"1h\"\ncommand = [\"true\"]\n").unwrap();
    assert_eq!(c.job("a").unwrap().timeout, Duration::from_secs(30));
    assert_eq!(c.job("b").unwrap().timeout, Duration::from_secs(600));
}

#[test]
fn invalid_duration_names_file_line_column_job_and_key() {
    let text = "[jobs.heartbeat]\nkind = \"command\"\nevery = \"3x\"\ncommand = [\"true\"]\n";
    let p = one_problem(text);
    assert!(
        p.starts_with("schedules.toml:3:9: job \"heartbeat\": every: invalid duration \"3x\": "),
        "{p}"
    );
    // The same through ${VAR}: the location is the value that named the variable.
    let p = one_problem(
        "[jobs.heartbeat]\nkind = \"command\"\nevery = \"${BAD_EVERY}\"\ncommand = [\"true\"]\n",
    );
    assert!(
        p.starts_with("schedules.toml:3:9: job \"heartbeat\": every: invalid duration \"3x\""),
        "{p}"
    );
}

#[test]
fn missing_variable_without_default() {
    let p =
        one_problem("[jobs.x]\nkind = \"command\"\nevery = \"${NOPE}\"\ncommand = [\"true\"]\n");
    assert_eq!(
        p,
        "schedules.toml:3:9: job \"x\": every: environment variable NOPE is not set and has no default (write ${NOPE:-default})"
    );
    // In a kind's own settings too.
    let p = one_problem(
        "[jobs.x]\nkind = \"command\"\nevery = \"1s\"\ncommand = [\"echo\", \"${NOPE}\"]\n",
    );
    assert!(
        p.starts_with("schedules.toml:4:20: job \"x\": command: environment variable NOPE"),
        "{p}"
    );
}

#[test]
fn zero_and_sub_second_intervals() {
    let p = one_problem("[jobs.x]\nkind = \"command\"\nevery = \"0s\"\ncommand = [\"true\"]\n");
    assert_eq!(
        p,
        "schedules.toml:3:9: job \"x\": every: invalid interval \"0s\": must be at least 1s"
    );
    let p = one_problem("[jobs.x]\nkind = \"command\"\nevery = \"500ms\"\ncommand = [\"true\"]\n");
    assert!(p.ends_with("must be at least 1s"), "{p}");
    let p = one_problem("[jobs.x]\nkind = \"command\"\nevery = 60\ncommand = [\"true\"]\n");
    assert!(
        p.contains("every: expected a duration string with a unit"),
        "{p}"
    );
}

#[test]
fn unknown_time_zone_and_malformed_cron() {
    let p = one_problem("[jobs.x]\nkind = \"command\"\ncron = \"0 * * * *\"\ntimezone = \"Europe/Berln\"\ncommand = [\"true\"]\n");
    assert!(
        p.starts_with(
            "schedules.toml:4:12: job \"x\": timezone: unknown time zone \"Europe/Berln\""
        ),
        "{p}"
    );
    let p = one_problem("[jobs.x]\nkind = \"command\"\ncron = \"*/5 * *\"\ncommand = [\"true\"]\n");
    assert!(
        p.starts_with("schedules.toml:3:8: job \"x\": cron: invalid cron \"*/5 * *\": expected 5 fields (minute hour"),
        "{p}"
    );
    let p =
        one_problem("[jobs.x]\nkind = \"command\"\ncron = \"99 * * * *\"\ncommand = [\"true\"]\n");
    assert!(
        p.starts_with("schedules.toml:3:8: job \"x\": cron: invalid cron \"99 * * * *\": "),
        "{p}"
    );
}

#[test]
fn unknown_keys_and_kinds() {
    let p = one_problem(
        "[jobs.x]\nkind = \"command\"\nevery = \"1s\"\ncommand = [\"true\"]\ncomand = 1\n",
    );
    assert_eq!(
        p,
        "schedules.toml:5:1: job \"x\": unknown key \"comand\", did you mean \"command\"? (valid keys: kind, every, cron, timezone, timeout, overlap, catch_up, catch_up_window, retries, retry_backoff, retry_abandoned, jitter, enabled, history_retention, keep_last, grace, token, command, env, workdir)"
    );
    let p = one_problem("[jobs.x]\nkind = \"shell\"\nevery = \"1s\"\n");
    assert_eq!(
        p,
        "schedules.toml:2:8: job \"x\": kind: unknown kind \"shell\" (known kinds: command, health, alerts, escalation, metrics, report, push)"
    );
    let p = one_problem(
        "[jobs.x]\nkind = \"command\"\nevery = \"1s\"\ncommand = [\"true\"]\n[surprise]\n",
    );
    assert!(
        p.starts_with("schedules.toml:5:2: unknown top-level key \"surprise\""),
        "{p}"
    );
    let p = one_problem("[defaults]\ncommand = [\"x\"]\n[jobs.x]\nkind = \"command\"\nevery = \"1s\"\ncommand = [\"true\"]\n");
    assert!(
        p.starts_with(
            "schedules.toml:2:1: unknown key \"command\" in [defaults] (valid keys: timezone, "
        ),
        "{p}"
    );
}

/// A misspelt key names every key valid where it stands and the one it
/// most likely misspells, wherever it is; a key it stands for is not also
/// reported missing.
#[test]
fn a_misspelt_key_gets_the_valid_keys_and_a_suggestion() {
    let job_keys = "kind, every, cron, timezone, timeout, overlap, catch_up, catch_up_window, \
                    retries, retry_backoff, retry_abandoned, jitter, enabled, history_retention, keep_last, grace, token";
    // The schedule key misspelt: one problem, not also "missing schedule".
    let p = problems("[jobs.x]\nkind = \"command\"\nevrey = \"1m\"\ncommand = [\"true\"]\n");
    assert_eq!(
        p,
        [format!(
            "schedules.toml:3:1: job \"x\": unknown key \"evrey\", did you mean \"every\"? \
             (valid keys: {job_keys}, command, env, workdir)"
        )]
    );
    let p = problems("[jobs.x]\nkind = \"command\"\ncronn = \"* * * * *\"\ncommand = [\"true\"]\n");
    assert_eq!(p.len(), 1, "{p:#?}");
    assert!(
        p[0].contains("unknown key \"cronn\", did you mean \"cron\"?"),
        "{p:#?}"
    );
    // A key that stands for nothing known still leaves the schedule missing.
    let p = problems("[jobs.x]\nkind = \"command\"\nschedule = \"1m\"\ncommand = [\"true\"]\n");
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(p[0].contains("missing schedule"), "{p:#?}");
    assert!(
        p[1].starts_with(
            "schedules.toml:3:1: job \"x\": unknown key \"schedule\" (valid keys: kind, "
        ),
        "{p:#?}"
    );
    // The kind's own keys, with the kind's list.
    let p = one_problem("[jobs.x]\nkind = \"report\"\ncron = \"0 5 0 * * *\"\nperiode = \"day\"\n");
    assert_eq!(
        p,
        format!(
            "schedules.toml:4:1: job \"x\": unknown key \"periode\", did you mean \"period\"? \
             (valid keys: {job_keys}, period, dir, metrics, notify)"
        )
    );
    // A nested table: a health target's keys, under the key it is in, also
    // when the target is on a line of its own.
    let p = one_problem(
        "[jobs.x]\nkind = \"health\"\nevery = \"1m\"\ntargets = [\n  { name = \"a\", url = \"http://a/\", timout = \"1s\" },\n]\n",
    );
    assert_eq!(
        p,
        "schedules.toml:5:36: job \"x\": targets: unknown key \"timout\", did you mean \"timeout\"? \
         (valid keys: name, url, method, headers, timeout, expect_status, expect_body, expect_json, degraded_after)"
    );
    // A sub-table of its own.
    let p = one_problem(
        "[jobs.x]\nkind = \"escalation\"\nevery = \"1m\"\n\n[jobs.x.policy]\nlevls = []\n",
    );
    assert_eq!(
        p,
        "schedules.toml:6:1: job \"x\": policy: unknown key \"levls\", did you mean \"levels\"? (valid keys: levels, repeat, repeat_after)"
    );
    // A missing key of a kind reads as ours do, under no wrong key.
    let p = one_problem("[jobs.x]\nkind = \"health\"\nevery = \"1m\"\nconcurrency = 2\n");
    assert_eq!(p, "schedules.toml:4:1: job \"x\": missing key \"targets\"");
    // Without a kind: keys that look like a job key, and not "missing kind".
    let p = problems("[jobs.x]\nknd = \"command\"\nevery = \"1m\"\ncommand = [\"true\"]\n");
    assert_eq!(
        p,
        [format!(
            "schedules.toml:2:1: job \"x\": unknown key \"knd\", did you mean \"kind\"? \
             (valid keys: {job_keys}, and the kind's own settings)"
        )]
    );
    // [defaults]
    let p = one_problem("[defaults]\ntimezon = \"UTC\"\n[jobs.x]\nkind = \"command\"\nevery = \"1s\"\ncommand = [\"true\"]\n");
    assert_eq!(
        p,
        "schedules.toml:2:1: unknown key \"timezon\" in [defaults], did you mean \"timezone\"? \
         (valid keys: timezone, timeout, overlap, catch_up, catch_up_window, retries, retry_backoff, \
         retry_abandoned, jitter, enabled, history_retention, keep_last)"
    );
    let p = one_problem("[defaults]\nevery = \"1m\"\n[jobs.x]\nkind = \"command\"\nevery = \"1s\"\ncommand = [\"true\"]\n");
    assert_eq!(
        p,
        "schedules.toml:2:1: \"every\" cannot be set in [defaults]: set it in each job"
    );
    // [notify]: not also "missing key url".
    let p = problems(&format!(
        "{JOB}[notify.a]\ntype = \"webhook\"\nurll = \"http://x/\"\n"
    ));
    assert_eq!(
        p,
        ["schedules.toml:7:1: notify \"a\": unknown key \"urll\", did you mean \"url\"? (valid keys: type, url, format, headers, template, content_type, timeout)"]
    );
    // [people] and [oncall], nested tables too.
    let p = one_problem(&format!(
        "{JOB}[notify.a-hook]\ntype = \"webhook\"\nurl = \"http://a/\"\n\n[people.carol]\nnotfy = [\"a-hook\"]\n"
    ));
    assert_eq!(
        p,
        "schedules.toml:10:1: person \"carol\": unknown key \"notfy\", did you mean \"notify\"? (valid keys: notify)"
    );
    let p = one_problem(&format!(
        "{JOB}{PEOPLE}[oncall.primary]\ntimezone = \"UTC\"\n\
         layers = [{{ members = [\"alice\"], rotaton = \"daily\", handoff = \"2026-11-02T09:00\" }}]\n"
    ));
    assert!(
        p.starts_with("schedules.toml:17:34: oncall \"primary\": layers: unknown key \"rotaton\", did you mean \"rotation\"? (valid keys: members, rotation, handoff, restrict)"),
        "{p}"
    );
    // The top level.
    let p = one_problem("[job.x]\nkind = \"command\"\n[jobs.y]\nkind = \"command\"\nevery = \"1s\"\ncommand = [\"true\"]\n");
    assert!(
        p.starts_with(
            "schedules.toml:1:2: unknown top-level key \"job\", did you mean \"jobs\"? (expected "
        ),
        "{p}"
    );
}

#[test]
fn schedule_must_be_exactly_one_of_every_and_cron() {
    let p = one_problem("[jobs.x]\nkind = \"command\"\nevery = \"1s\"\ncron = \"* * * * *\"\ncommand = [\"true\"]\n");
    assert_eq!(
        p,
        "schedules.toml:4:1: job \"x\": set either \"every\" or \"cron\", not both"
    );
    let p = one_problem("[jobs.x]\nkind = \"command\"\ncommand = [\"true\"]\n");
    assert!(
        p.starts_with("schedules.toml:1:7: job \"x\": missing schedule"),
        "{p}"
    );
    let p = one_problem("[jobs.x]\nevery = \"1s\"\n");
    assert_eq!(p, "schedules.toml:1:7: job \"x\": missing key \"kind\"");
}

#[test]
fn policies_and_numbers_are_checked() {
    let p = one_problem(
        "[jobs.x]\nkind = \"command\"\nevery = \"1s\"\ncommand = [\"true\"]\noverlap = \"never\"\n",
    );
    assert_eq!(p, "schedules.toml:5:11: job \"x\": overlap: invalid value \"never\" (expected one of: skip, queue, allow)");
    let p = one_problem(
        "[jobs.x]\nkind = \"command\"\nevery = \"1s\"\ncommand = [\"true\"]\nretries = -1\n",
    );
    assert_eq!(
        p,
        "schedules.toml:5:11: job \"x\": retries: expected a whole number from 0 to 100"
    );
    let p = one_problem(
        "[jobs.x]\nkind = \"command\"\nevery = \"1s\"\ncommand = [\"true\"]\nenabled = \"maybe\"\n",
    );
    assert_eq!(
        p,
        "schedules.toml:5:11: job \"x\": enabled: expected true or false"
    );
    let p = one_problem(
        "[jobs.x]\nkind = \"command\"\nevery = \"1s\"\ncommand = [\"true\"]\ntimeout = \"0s\"\n",
    );
    assert_eq!(
        p,
        "schedules.toml:5:11: job \"x\": timeout: must be more than 0s"
    );
}

#[test]
fn duplicate_jobs_and_syntax_errors_are_toml_errors_with_a_location() {
    let p = one_problem("[jobs.x]\nkind = \"command\"\nevery = \"1s\"\ncommand = [\"true\"]\n[jobs.x]\nkind = \"command\"\n");
    assert!(p.starts_with("schedules.toml:5:"), "{p}");
    let p = one_problem("[jobs.x]\nkind = \"command\nevery = \"1s\"\n");
    assert!(p.starts_with("schedules.toml:2:"), "{p}");
}

#[test]
fn all_problems_are_reported_together() {
    let p = problems("[jobs.a]\nkind = \"command\"\nevery = \"0s\"\ncommand = [\"true\"]\n[jobs.b]\nkind = \"nope\"\ncron = \"x\"\n");
    assert_eq!(p.len(), 3, "{p:#?}");
}

#[test]
fn empty_file_and_bad_names() {
    let p = one_problem("");
    assert!(p.contains("no jobs"), "{p}");
    let p =
        one_problem("[jobs.\"a b\"]\nkind = \"command\"\nevery = \"1s\"\ncommand = [\"true\"]\n");
    assert!(p.contains("job names may use"), "{p}");
}

const JOB: &str = "[jobs.x]\nkind = \"command\"\nevery = \"1s\"\ncommand = [\"true\"]\n";

#[test]
fn notify_targets_parse_with_defaults_and_env() {
    let text = format!(
        "{JOB}[notify.ops-webhook]\ntype = \"webhook\"\nurl = \"${{OPS_WEBHOOK_URL}}\"\n\n\
         [notify.chat]\ntype = \"webhook\"\nurl = \"http://chat.internal/hook\"\nformat = \"slack\"\n\
         timeout = \"3s\"\nheaders = {{ Authorization = \"Bearer ${{OPS_TOKEN}}\", X-Team = \"ops\" }}\n"
    );
    let c = parse(&text).unwrap();
    let names: Vec<_> = c.notify.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["chat", "ops-webhook"], "in name order");
    let hook = c.notify_target("ops-webhook").unwrap().webhook().unwrap();
    assert_eq!(
        hook.url.expose(),
        "https://hooks.example.com/services/T0/B0/s3cr3t"
    );
    assert_eq!(hook.format, NotifyFormat::Json);
    assert_eq!(
        c.notify_target("ops-webhook").unwrap().timeout,
        DEFAULT_NOTIFY_TIMEOUT
    );
    assert!(hook.headers.is_empty());
    assert_eq!(
        c.notify_target("chat").unwrap().timeout,
        Duration::from_secs(3)
    );
    let chat = c.notify_target("chat").unwrap().webhook().unwrap();
    assert_eq!(chat.format, NotifyFormat::Slack);
    let headers: Vec<_> = chat
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.expose()))
        .collect();
    assert_eq!(
        headers,
        [("Authorization", "Bearer t0ken-value"), ("X-Team", "ops")]
    );
    assert!(c.notify_target("nope").is_none());
    // A file without [notify] has no targets.
    assert!(parse(JOB).unwrap().notify.is_empty());
}

#[test]
fn notify_targets_debug_redacts_urls_and_header_values() {
    let text = format!(
        "{JOB}[notify.hook]\ntype = \"webhook\"\nurl = \"${{OPS_WEBHOOK_URL}}\"\nheaders = {{ Authorization = \"${{OPS_TOKEN}}\" }}\n"
    );
    let c = parse(&text).unwrap();
    for shown in [format!("{c:?}"), format!("{:#?}", c.notify[0])] {
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(!shown.contains("hooks.example.com"), "{shown}");
        assert!(!shown.contains("t0ken"), "{shown}");
        assert!(shown.contains("Authorization"), "{shown}");
        assert!(shown.contains("\"hook\""), "{shown}");
    }
}

#[test]
fn notify_problems_name_the_target_and_key() {
    let cases = [
        (
            "[notify.a]\ntype = \"sms\"\nurl = \"http://x/\"\n",
            "schedules.toml:6:8: notify \"a\": type: unknown type \"sms\" (known types: webhook, email, pagerduty)",
        ),
        (
            "[notify.a]\nurl = \"http://x/\"\n",
            "schedules.toml:5:9: notify \"a\": missing key \"type\" (known types: webhook, email, pagerduty)",
        ),
        (
            "[notify.a]\ntype = \"webhook\"\n",
            "schedules.toml:5:9: notify \"a\": missing key \"url\"",
        ),
        (
            "[notify.a]\ntype = \"webhook\"\nurl = \"http://x/\"\nretries = 3\n",
            "schedules.toml:8:1: notify \"a\": unknown key \"retries\" (valid keys: type, url, format, headers, template, content_type, timeout)",
        ),
        (
            "[notify.a]\ntype = \"webhook\"\nurl = \"http://x/\"\nformat = \"teams\"\n",
            "schedules.toml:8:10: notify \"a\": format: invalid value \"teams\" (expected one of: json, slack, template)",
        ),
        (
            "[notify.a]\ntype = \"webhook\"\nurl = \"http://x/\"\ntimeout = \"0s\"\n",
            "schedules.toml:8:11: notify \"a\": timeout: must be more than 0s and at most 5m",
        ),
        (
            "[notify.a]\ntype = \"webhook\"\nurl = \"http://x/\"\ntimeout = 10\n",
            "schedules.toml:8:11: notify \"a\": timeout: expected a duration string with a unit, such as \"10s\"",
        ),
        (
            "[notify.a]\ntype = \"webhook\"\nurl = 5\n",
            "schedules.toml:7:7: notify \"a\": url: expected a string, found integer",
        ),
        (
            "[notify.a]\ntype = \"webhook\"\nurl = \"http://x/\"\nheaders = { Content-Type = \"text/plain\" }\n",
            "schedules.toml:8:13: notify \"a\": headers: \"Content-Type\" is set by the sender and cannot be overridden",
        ),
        (
            "[notify.a]\ntype = \"webhook\"\nurl = \"http://x/\"\nheaders = { \"X Y\" = \"1\" }\n",
            "schedules.toml:8:13: notify \"a\": headers: invalid header name \"X Y\"",
        ),
        (
            "[notify.a]\ntype = \"webhook\"\nurl = \"http://x/\"\nheaders = \"Authorization: x\"\n",
            "schedules.toml:8:11: notify \"a\": headers: expected a table of header names to values, such as { Authorization = \"Bearer ...\" }",
        ),
        (
            "[notify.\"a b\"]\ntype = \"webhook\"\nurl = \"http://x/\"\n",
            "schedules.toml:5:9: notify \"a b\": target names may use letters, digits, '-', '_' and '.' only",
        ),
        (
            "[notify]\na = 1\n",
            "schedules.toml:6:1: notify \"a\": must be a table: [notify.NAME]",
        ),
    ];
    for (notify, want) in cases {
        let text = format!("{JOB}{notify}");
        assert_eq!(one_problem(&text), want, "in:\n{text}");
    }
    assert_eq!(
        one_problem(&format!("notify = 1\n{JOB}")),
        "schedules.toml:1:1: notify: must be a table of targets: [notify.NAME]"
    );
}

#[test]
fn notify_problems_never_show_the_url_or_header_values() {
    let secret_url = "ftp://user:pa55@hooks.example.com/s3cr3t";
    let cases = [
        // Not http(s).
        format!("[notify.a]\ntype = \"webhook\"\nurl = \"{secret_url}\"\n"),
        // Not a URL at all.
        "[notify.a]\ntype = \"webhook\"\nurl = \"hooks.example.com/s3cr3t\"\n".to_string(),
        // A header value that cannot be sent, from the environment.
        "[notify.a]\ntype = \"webhook\"\nurl = \"http://x/\"\nheaders = { Authorization = \"${BAD_HEADER}\" }\n".to_string(),
        // A broken ${ in a value holding a literal token.
        "[notify.a]\ntype = \"webhook\"\nurl = \"https://hooks.example.com/s3cr3t${OPS\"\n".to_string(),
    ];
    for notify in cases {
        let text = format!("{JOB}{notify}");
        let p = one_problem(&text);
        assert!(p.starts_with("schedules.toml:"), "{p}");
        assert!(p.contains("notify \"a\": "), "{p}");
        assert!(!p.contains("s3cr3t"), "{p}");
        assert!(!p.contains("pa55"), "{p}");
        assert!(!p.contains("hooks.example.com"), "{p}");
    }
    let p = one_problem(&format!(
        "{JOB}[notify.a]\ntype = \"webhook\"\nurl = \"{secret_url}\"\n"
    ));
    assert_eq!(
        p,
        "schedules.toml:7:7: notify \"a\": url: must be an http:// or https:// URL"
    );
    // A missing variable names the variable, not the value around it.
    let p = one_problem(&format!(
        "{JOB}[notify.a]\ntype = \"webhook\"\nurl = \"${{NOPE}}\"\n"
    ));
    assert_eq!(
        p,
        "schedules.toml:7:7: notify \"a\": url: environment variable NOPE is not set and has no default (write ${NOPE:-default})"
    );
}

#[test]
fn notify_problems_are_reported_with_the_others() {
    let p = problems("[jobs.a]\nkind = \"command\"\nevery = \"0s\"\ncommand = [\"true\"]\n[notify.n]\ntype = \"webhook\"\nformat = \"sms\"\nurl = \"x\"\n");
    assert_eq!(p.len(), 3, "{p:#?}");
    assert!(p[0].contains("job \"a\""), "{p:#?}");
    assert!(p[1].contains("notify \"n\": format:"), "{p:#?}");
    assert!(p[2].contains("notify \"n\": url: invalid URL"), "{p:#?}");
}

#[test]
fn notify_lists_must_name_declared_targets() {
    let text = "[notify.ops]\ntype = \"webhook\"\nurl = \"http://hooks.example/x\"\n\n[jobs.a]\nkind = \"alerts\"\nevery = \"1m\"\nnotify = [\"ops\", \"pager\"]\n";
    let p = one_problem(text);
    assert_eq!(p, "schedules.toml:8:18: job \"a\": notify: unknown notification target \"pager\" (declared: ops)");
    let p = one_problem("[jobs.a]\nkind = \"alerts\"\nevery = \"1m\"\nnotify = [\"ops\"]\n");
    assert!(
        p.ends_with(
            "unknown notification target \"ops\" (none is declared: add a [notify.NAME] table)"
        ),
        "{p}"
    );
    assert!(parse(&text.replace(", \"pager\"", "")).is_ok());
}

const PEOPLE: &str = "[notify.a-hook]\ntype = \"webhook\"\nurl = \"http://a.internal/hook\"\n\n\
                      [people.alice]\nnotify = [\"a-hook\"]\n\n\
                      [people.bob]\nnotify = [\"a-hook\"]\n\n";

#[test]
fn people_and_oncall_schedules_parse() {
    let c = parse(&format!(
        "{JOB}{PEOPLE}[oncall.primary]\ntimezone = \"Europe/Berlin\"\n\
         layers = [{{ members = [\"alice\", \"bob\"], rotation = \"weekly\", handoff = \"2026-11-02T09:00\" }}]\n"
    ))
    .unwrap();
    let names: Vec<_> = c.people.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["alice", "bob"]);
    assert_eq!(c.people[0].notify, ["a-hook"]);
    let primary = c.oncall_schedule("primary").unwrap();
    // Week 1 from Monday 2 November 09:00 Berlin is alice's, week 2 bob's.
    let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc();
    assert_eq!(
        primary.who(at("2026-11-03T12:00:00Z")).as_deref(),
        Some("alice")
    );
    assert_eq!(
        primary.who(at("2026-11-09T08:00:00Z")).as_deref(),
        Some("bob")
    );
    assert_eq!(primary.who(at("2026-11-01T12:00:00Z")), None);
}

#[test]
fn people_and_oncall_problems_point_at_their_lines() {
    // A person naming an undeclared target.
    let p = one_problem(&format!(
        "{JOB}[notify.a-hook]\ntype = \"webhook\"\nurl = \"http://a/\"\n\n[people.carol]\nnotify = [\"pager\"]\n"
    ));
    assert_eq!(
        p,
        "schedules.toml:10:11: person \"carol\": notify: unknown notification target \"pager\""
    );
    // A schedule naming an undeclared person.
    let p = one_problem(&format!(
        "{JOB}{PEOPLE}[oncall.primary]\ntimezone = \"UTC\"\n\
         layers = [{{ members = [\"alice\", \"zed\"], rotation = \"daily\", handoff = \"2026-11-02T09:00\" }}]\n"
    ));
    assert!(
        p.starts_with("schedules.toml:15:9: oncall \"primary\": unknown person \"zed\""),
        "{p}"
    );
    // A key serde does not know, and a bad time, at their own lines.
    let p = one_problem(&format!(
        "{JOB}{PEOPLE}[oncall.primary]\ntimezone = \"UTC\"\ncolour = 1\n\
         layers = [{{ members = [\"alice\"], rotation = \"daily\", handoff = \"2026-11-02T09:00\" }}]\n"
    ));
    assert_eq!(
        p,
        "schedules.toml:17:1: oncall \"primary\": unknown key \"colour\" (valid keys: timezone, layers, overrides)"
    );
    let p = one_problem(&format!(
        "{JOB}{PEOPLE}[oncall.primary]\ntimezone = \"UTC\"\n\
         layers = [{{ members = [\"alice\"], rotation = \"daily\", handoff = \"2026-11-02T25:00\" }}]\n"
    ));
    assert!(p.starts_with("schedules.toml:17:"), "{p}");
    assert!(p.contains("oncall \"primary\""), "{p}");
}

const PRIMARY: &str = "[oncall.primary]\ntimezone = \"UTC\"\n\
                       layers = [{ members = [\"alice\"], rotation = \"daily\", handoff = \"2026-11-02T09:00\" }]\n\n";

#[test]
fn escalation_references_must_be_declared() {
    let job = |notify: &str| {
        format!(
            "{PEOPLE}{PRIMARY}[jobs.escalate]\nkind = \"escalation\"\nevery = \"30s\"\n\
             policy = {{ levels = [\n  {{ after = \"5m\", notify = [\"oncall:primary\"] }},\n  \
             {{ after = \"15m\", notify = {notify} }},\n] }}\n"
        )
    };
    let c = parse(&job(r#"["person:bob", "a-hook"]"#)).unwrap();
    // The config is the directory escalation resolves references through.
    use ops_worker_jobs::Directory;
    let at = chrono::DateTime::parse_from_rfc3339("2026-11-03T12:00:00Z")
        .unwrap()
        .to_utc();
    assert_eq!(c.on_call("primary", at).as_deref(), Some("alice"));
    assert_eq!(c.on_call("nobody", at), None);
    assert_eq!(c.person_targets("bob"), ["a-hook"]);
    assert!(c.person_targets("zed").is_empty());

    for (notify, want) in [
        (
            r#"["oncall:secondary"]"#,
            r#"schedules.toml:20:30: job "escalate": notify: unknown on-call schedule "secondary" in "oncall:secondary" (declare it: [oncall.secondary])"#,
        ),
        (
            r#"["a-hook", "person:zed"]"#,
            r#"schedules.toml:20:40: job "escalate": notify: unknown person "zed" in "person:zed" (declare it: [people.zed])"#,
        ),
        (
            r#"["pager"]"#,
            r#"schedules.toml:20:30: job "escalate": notify: unknown notification target "pager" (declared: a-hook)"#,
        ),
    ] {
        assert_eq!(one_problem(&job(notify)), want);
    }
    // The kind's own checks point into the job too.
    let p = one_problem(&job(r#"["a-hook"], after2 = 1"#));
    assert!(p.contains("job \"escalate\""), "{p}");
}

#[test]
fn the_repositorys_schedules_toml_is_valid() {
    let text = include_str!("../../schedules.toml");
    let c = Config::parse(Path::new("schedules.toml"), text, &|_| None).unwrap();
    let enabled: Vec<_> = c
        .jobs
        .iter()
        .filter(|j| j.enabled)
        .map(|j| j.name.as_str())
        .collect();
    assert!(
        !enabled.contains(&"escalate"),
        "escalation is off until asked for"
    );
    assert!(c.oncall_schedule("primary").is_some());
    let on = Config::parse(Path::new("schedules.toml"), text, &|v| {
        (v == "ESCALATION_ENABLED").then(|| "true".to_string())
    })
    .unwrap();
    assert!(on.job("escalate").unwrap().enabled);
}

#[test]
fn the_hash_is_the_files_sha256() {
    let c = parse("[jobs.a]\nkind = \"command\"\nevery = \"1m\"\ncommand = [\"true\"]\n").unwrap();
    // printf '[jobs.a]\nkind = "command"\nevery = "1m"\ncommand = ["true"]\n' | sha256sum
    assert_eq!(
        c.hash,
        "3b35851ee1d5e276529585de70edeb534475b2132fbc15d643a701113a6b2bd3"
    );
}

#[test]
fn retry_abandoned_defaults_to_every_kind_but_command() {
    let c = parse(
        "[jobs.cmd]\nkind = \"command\"\nevery = \"1m\"\ncommand = [\"true\"]\n\n\
         [jobs.cmd-yes]\nkind = \"command\"\nevery = \"1m\"\ncommand = [\"true\"]\nretry_abandoned = true\n\n\
         [jobs.alerts]\nkind = \"alerts\"\nevery = \"1m\"\n",
    )
    .unwrap();
    let flag = |name: &str| c.job(name).unwrap().retry_abandoned;
    assert_eq!(
        (flag("cmd"), flag("cmd-yes"), flag("alerts")),
        (false, true, true)
    );
    let c = parse(
        "[defaults]\nretry_abandoned = false\n\n[jobs.alerts]\nkind = \"alerts\"\nevery = \"1m\"\n",
    )
    .unwrap();
    assert!(!c.job("alerts").unwrap().retry_abandoned);
    let p =
        one_problem("[jobs.a]\nkind = \"alerts\"\nevery = \"1m\"\nretry_abandoned = \"maybe\"\n");
    assert!(
        p.starts_with("schedules.toml:4:19: job \"a\": retry_abandoned: "),
        "{p}"
    );
}

/// What a reload compares: a job's settings, wherever it sits in the file.
#[test]
fn fingerprints_follow_settings_not_places() {
    let fp = |text: &str, job: &str| parse(text).unwrap().job(job).unwrap().fingerprint.clone();
    let a = "[jobs.a]\nkind = \"command\"\nevery = \"5s\"\ncommand = [\"true\"]\n";
    let b = "[jobs.b]\nkind = \"command\"\nevery = \"5s\"\ncommand = [\"echo\", \"b\"]\n";
    let moved = format!("# a comment\n\n{b}\n{a}");
    assert_eq!(fp(&format!("{a}{b}"), "a"), fp(&moved, "a"));
    assert_eq!(fp(&format!("{a}{b}"), "b"), fp(&moved, "b"));
    // The same job in another table layout (inline array spacing).
    let spaced = "[jobs.a]\ncommand = [ \"true\" ]\nevery = \"5s\"\nkind = \"command\"\n";
    assert_eq!(fp(a, "a"), fp(spaced, "a"));
    for changed in [
        a.replace("5s", "6s"),
        a.replace("\"true\"", "\"false\""),
        format!("{a}timeout = \"2s\"\n"),
        format!("[defaults]\nretries = 1\n{a}"),
        format!("{a}env = {{ X = \"1\" }}\n"),
    ] {
        assert_ne!(fp(a, "a"), fp(&changed, "a"), "{changed}");
    }
    // `${VAR}` counts by its value.
    let from_env = a.replace("\"5s\"", "\"${HEARTBEAT_EVERY}\"");
    assert_eq!(fp(&from_env, "a"), fp(&a.replace("5s", "45s"), "a"));
}

#[test]
fn history_retention_and_keep_last_default_and_inherit_from_defaults() {
    let job = |name: &str| format!("[jobs.{name}]\nkind = \"alerts\"\nevery = \"1m\"\n");
    let c = parse(&job("a")).unwrap();
    let thirty_days = Retention {
        max_age: Duration::from_secs(30 * 86_400),
        keep_last: None,
    };
    assert_eq!(c.job("a").unwrap().retention, thirty_days);
    assert_eq!(c.default_retention, thirty_days);

    let c = parse(&format!(
        "[defaults]\nhistory_retention = \"7d\"\nkeep_last = 100\n\n{}\n{}history_retention = \"36h\"\nkeep_last = \"${{RETRIES}}\"\n",
        job("inherits"),
        job("own"),
    ))
    .unwrap();
    let week_100 = Retention {
        max_age: Duration::from_secs(7 * 86_400),
        keep_last: Some(100),
    };
    assert_eq!(c.job("inherits").unwrap().retention, week_100);
    assert_eq!(
        c.default_retention, week_100,
        "for jobs no longer in the file"
    );
    assert_eq!(
        c.job("own").unwrap().retention,
        Retention {
            max_age: Duration::from_secs(36 * 3600),
            keep_last: Some(2),
        }
    );
}

#[test]
fn invalid_history_retention_and_keep_last_are_reported_where_they_are() {
    let job = "[jobs.a]\nkind = \"alerts\"\nevery = \"1m\"\n";
    assert_eq!(
        one_problem(&format!("{job}history_retention = \"59m\"\n")),
        "schedules.toml:4:21: job \"a\": history_retention: must be at least 1h"
    );
    assert!(
        one_problem(&format!("{job}history_retention = \"soon\"\n")).starts_with(
            "schedules.toml:4:21: job \"a\": history_retention: invalid duration \"soon\""
        )
    );
    assert!(
        one_problem(&format!("{job}history_retention = 30\n")).starts_with(
            "schedules.toml:4:21: job \"a\": history_retention: expected a duration string"
        )
    );
    for bad in ["0", "-3", "\"many\"", "4294967296"] {
        assert_eq!(
            one_problem(&format!("{job}keep_last = {bad}\n")),
            "schedules.toml:4:13: job \"a\": keep_last: expected a whole number from 1 to 4294967295",
            "{bad}"
        );
    }
    // In [defaults]: reported once, at the value, not for each job inheriting it.
    assert_eq!(
        problems(&format!(
            "[defaults]\nhistory_retention = \"10m\"\nkeep_last = 0\n\n{job}\n[jobs.b]\nkind = \"alerts\"\nevery = \"1m\"\n"
        )),
        [
            "schedules.toml:2:21: history_retention: must be at least 1h",
            "schedules.toml:3:13: keep_last: expected a whole number from 1 to 4294967295",
        ]
    );
}

#[test]
fn jitter_parses_from_the_job_or_defaults() {
    let c = parse(
        "[defaults]\njitter = \"5s\"\n\n\
         [jobs.a]\nkind = \"command\"\nevery = \"1m\"\ncommand = [\"true\"]\njitter = \"59s 999ms\"\n\n\
         [jobs.b]\nkind = \"command\"\ncron = \"0 0 2 * * *\"\ntimezone = \"Europe/Berlin\"\ncommand = [\"true\"]\n\n\
         [jobs.c]\nkind = \"command\"\nevery = \"1m\"\ncommand = [\"true\"]\njitter = \"0s\"\n",
    )
    .unwrap();
    let jitter = |name: &str| c.job(name).unwrap().jitter;
    assert_eq!(jitter("a"), Duration::from_millis(59_999));
    assert_eq!(jitter("b"), Duration::from_secs(5), "from [defaults]");
    assert_eq!(jitter("c"), Duration::ZERO);
    // Without the key, none.
    let c = parse(EXAMPLE).unwrap();
    assert_eq!(c.job("heartbeat").unwrap().jitter, Duration::ZERO);
    assert_eq!(
        c.job("heartbeat").unwrap().slot_jitter(chrono::Utc::now()),
        None
    );
    // A daily job may have nearly a day of it.
    let c = parse(
        "[jobs.d]\nkind = \"command\"\ncron = \"0 0 3 * * *\"\ncommand = [\"true\"]\njitter = \"23h 59m\"\n",
    )
    .unwrap();
    assert_eq!(c.job("d").unwrap().jitter, Duration::from_secs(86_340));
}

#[test]
fn jitter_must_be_shorter_than_the_time_between_slots() {
    let job = |schedule: &str, jitter: &str| {
        format!("[jobs.a]\nkind = \"command\"\n{schedule}\ncommand = [\"true\"]\njitter = \"{jitter}\"\n")
    };
    assert_eq!(
        one_problem(&job("every = \"1m\"", "1m")),
        "schedules.toml:5:10: job \"a\": jitter: 1m must be shorter than the interval (1m)"
    );
    // Cron: the shortest gap between fire times (here 10 of 60 minutes).
    let at = utc("2026-11-24T10:05:00Z");
    let cron = job("cron = \"0 0,10 * * * *\"", "10m");
    assert_eq!(
        problems_at(&cron, at),
        ["schedules.toml:5:10: job \"a\": jitter: 10m must be shorter than the shortest time between two fire times (10m after 2026-11-24 11:00:00 UTC)"]
    );
    assert!(parse_at(&job("cron = \"0 0,10 * * * *\"", "9m 59s"), at).is_ok());
    // Twice a day in Berlin is 12 h apart, but 1 h when 02:00 happens twice.
    let berlin = "cron = \"0 0 2,14 * * *\"\ntimezone = \"Europe/Berlin\"";
    let text = job(berlin, "2h");
    assert_eq!(
        problems_at(&text, at),
        ["schedules.toml:6:10: job \"a\": jitter: 2h must be shorter than the shortest time between two fire times (1h after 2027-10-31 02:00:00 CEST)"]
    );
    assert!(parse_at(&job(berlin, "59m"), at).is_ok());
    // From [defaults]: reported at the default, for the job it does not fit.
    let p = one_problem(
        "[defaults]\njitter = \"2m\"\n\n[jobs.slow]\nkind = \"command\"\nevery = \"1h\"\ncommand = [\"true\"]\n\n\
         [jobs.fast]\nkind = \"command\"\nevery = \"1m\"\ncommand = [\"true\"]\n",
    );
    assert_eq!(
        p,
        "schedules.toml:2:10: job \"fast\": jitter: 2m must be shorter than the interval (1m)"
    );
}

#[test]
fn jitter_must_be_a_duration_in_whole_milliseconds() {
    let job = |jitter: &str| {
        format!("[jobs.a]\nkind = \"command\"\nevery = \"1m\"\ncommand = [\"true\"]\njitter = {jitter}\n")
    };
    assert_eq!(
        one_problem(&job("\"1500us\"")),
        "schedules.toml:5:10: job \"a\": jitter: 1ms 500us is not a whole number of milliseconds"
    );
    let p = one_problem(&job("\"soon\""));
    assert!(
        p.starts_with("schedules.toml:5:10: job \"a\": jitter: invalid duration \"soon\": "),
        "{p}"
    );
    let p = one_problem(&job("30"));
    assert_eq!(
        p,
        "schedules.toml:5:10: job \"a\": jitter: expected a duration string with a unit, such as \"30s\" or \"5m\""
    );
}

#[test]
fn cron_that_never_fires_is_an_error_at_its_value() {
    let p =
        one_problem("[jobs.x]\nkind = \"command\"\ncron = \"0 0 30 2 *\"\ncommand = [\"true\"]\n");
    assert_eq!(
        p,
        "schedules.toml:3:8: job \"x\": cron \"0 0 30 2 *\" never fires: day 30 does not exist in February"
    );
}

/// A health job's timeout leaves room for its slowest target (plus 2s to
/// record the checks): the default grows to fit, a shorter one set by hand
/// (in the job or in [defaults]) is warned about at its value.
#[test]
fn a_health_jobs_timeout_leaves_room_for_its_targets() {
    let health = |extra: &str, target_timeout: &str| {
        format!(
            "[jobs.h]\nkind = \"health\"\nevery = \"1s\"\n{extra}targets = [{{ name = \"api\", url = \"http://127.0.0.1:9/\"{target_timeout} }}]\n"
        )
    };
    // The default: the interval (1s), raised to the target's 1s plus 2s.
    let c = parse(&health("", ", timeout = \"1s\"")).unwrap();
    assert_eq!(c.jobs[0].timeout, Duration::from_secs(3));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    // The targets' default timeout is 5s.
    let c = parse(&health("", "")).unwrap();
    assert_eq!(c.jobs[0].timeout, Duration::from_secs(7));
    // A long interval keeps its own default.
    let c = parse(&health("", "").replace("every = \"1s\"", "every = \"1m\"")).unwrap();
    assert_eq!(c.jobs[0].timeout, Duration::from_secs(60));
    // Set by hand and too short: kept, and warned about.
    let c = parse(&health("timeout = \"1s\"\n", ", timeout = \"1s\"")).unwrap();
    assert_eq!(c.jobs[0].timeout, Duration::from_secs(1));
    let w: Vec<String> = c.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        w,
        ["schedules.toml:4:11: job \"h\": timeout 1s leaves no room: target \"api\" may take up to 1s \
          (its timeout), and when a target hangs the whole run times out: no check is recorded, and the \
          job counts as failing instead of the service as down; set it to at least 3s"]
    );
    // Enough room: no warning.
    let c = parse(&health("timeout = \"3s\"\n", ", timeout = \"1s\"")).unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    // From [defaults]: the warning points there.
    let c = parse(&format!(
        "[defaults]\ntimeout = \"2s\"\n\n{}",
        health("", ", timeout = \"1s\"")
    ))
    .unwrap();
    let w: Vec<String> = c.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with("schedules.toml:2:11: job \"h\": timeout 2s leaves no room"),
        "{w:?}"
    );
    // Other kinds have nothing to wait on.
    let c = parse("[jobs.x]\nkind = \"command\"\nevery = \"1s\"\ncommand = [\"true\"]\n").unwrap();
    assert_eq!(c.jobs[0].timeout, Duration::from_secs(1));
}

#[test]
fn api_tokens_and_public_url() {
    let job = "[jobs.a]\nkind = \"command\"\nevery = \"1m\"\ncommand = [\"true\"]\n";
    let ok = format!(
        "{job}[api]\npublic_url = \"https://ops.example.com/\"\n[api.tokens.grafana]\nrole = \"viewer\"\ntoken = \"${{OPS_WEBHOOK_URL}}\"\n[api.tokens.alice]\nrole = \"operator\"\nsha256 = \"{}\"\n",
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    );
    let config = parse(&ok).unwrap();
    assert_eq!(
        config.api.public_url.as_deref(),
        Some("https://ops.example.com")
    );
    let names: Vec<_> = config
        .api
        .tokens
        .iter()
        .map(|t| (&*t.name, t.role))
        .collect();
    assert_eq!(
        names,
        vec![("alice", Role::Operator), ("grafana", Role::Viewer)]
    );
    // The token itself is kept nowhere, not even in Debug.
    assert!(!format!("{config:?}").contains("s3cr3t"));

    let bad = format!(
        "{job}[api]\npublic_url = \"ftp://x\"\n[api.tokens.a]\nrole = \"admin\"\ntoken = \"0123456789abcdef\"\n[api.tokens.b]\nrole = \"viewer\"\ntoken = \"short\"\n[api.tokens.c]\nrole = \"viewer\"\nsha256 = \"abc\"\n[api.tokens.d]\nrole = \"viewer\"\n[api.tokens.e]\nrole = \"viewer\"\ntokn = \"0123456789abcdef\"\n"
    );
    let p = problems(&bad);
    let expect = [
        "schedules.toml:6:14: api.public_url: must be an http:// or https:// URL",
        "schedules.toml:8:8: api token \"a\": role: unknown variant `admin`, expected `viewer` or `operator`",
        "schedules.toml:12:9: api token \"b\": token: a token must have at least 16 characters",
        "schedules.toml:15:10: api token \"c\": sha256: expected 64 hex digits",
        "schedules.toml:16:13: api token \"d\": missing key \"token\"",
        "schedules.toml:20:1: api token \"e\": unknown key \"tokn\", did you mean \"token\"?",
    ];
    assert_eq!(p.len(), expect.len(), "{p:#?}");
    for (got, want) in p.iter().zip(expect) {
        assert!(
            got.starts_with(want),
            "{got}\n  does not start with\n{want}"
        );
    }
    // A misspelt [api] key.
    let p = problems(&format!("{job}[api]\npublic_ur = \"https://x\"\n"));
    assert!(
        p[0].contains("unknown key \"public_ur\" in [api], did you mean \"public_url\"?"),
        "{p:?}"
    );
}

#[test]
fn a_push_job_reads_grace_and_token_and_keeps_only_the_digest() {
    let c = parse(
        "[jobs.backup]\nkind = \"push\"\ncron = \"0 2 * * *\"\ntimezone = \"Europe/Berlin\"\n\
         grace = \"15m\"\ntoken = \"${PING_TOKEN}\"\ntimeout = \"2h\"\n",
    )
    .unwrap();
    let job = c.job("backup").unwrap();
    let push = job.push.as_ref().expect("a push job");
    assert_eq!(push.grace, Duration::from_secs(900));
    assert_eq!(job.timeout, Duration::from_secs(7200));
    assert!(push.token_matches("ping-s3cr3t-0123456789"));
    assert!(!push.token_matches("ping-s3cr3t-012345678"));
    assert!(!format!("{job:?}").contains("s3cr3t"), "{job:?}");
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    // grace defaults to 5 minutes; other kinds have no push settings.
    let c = parse(
        "[jobs.p]\nkind = \"push\"\nevery = \"1h\"\ntoken = \"${PING_TOKEN}\"\n\
         [jobs.c]\nkind = \"command\"\nevery = \"1h\"\ncommand = [\"true\"]\n",
    )
    .unwrap();
    assert_eq!(
        c.job("p").unwrap().push.as_ref().unwrap().grace,
        DEFAULT_GRACE
    );
    assert!(c.job("c").unwrap().push.is_none());
}

#[test]
fn push_problems_name_the_place_and_never_the_token() {
    let p = one_problem("[jobs.backup]\nkind = \"push\"\nevery = \"1h\"\n");
    assert!(
        p.starts_with("schedules.toml:1:7: job \"backup\": missing key \"token\""),
        "{p}"
    );
    let p =
        one_problem("[jobs.backup]\nkind = \"push\"\nevery = \"1h\"\ntoken = \"${SHORT_TOKEN}\"\n");
    assert!(
        p.starts_with(
            "schedules.toml:4:9: job \"backup\": token: a token must have at least 16 characters"
        ),
        "{p}"
    );
    assert!(!p.contains("s3cr3t"), "{p}");
    let p = one_problem(
        "[jobs.backup]\nkind = \"push\"\nevery = \"1h\"\ntoken = \"${PING_TOKEN}\"\ngrace = \"0s\"\n",
    );
    assert!(
        p.starts_with(
            "schedules.toml:5:9: job \"backup\": grace: must be a whole number of seconds"
        ),
        "{p}"
    );
    let p = one_problem(
        "[jobs.c]\nkind = \"command\"\nevery = \"1h\"\ncommand = [\"true\"]\ngrace = \"1m\"\n",
    );
    assert!(
        p.starts_with(
            "schedules.toml:5:1: job \"c\": grace: \"grace\" is a key of kind \"push\" only"
        ),
        "{p}"
    );
    // The kind has no settings of its own.
    let p = one_problem(
        "[jobs.backup]\nkind = \"push\"\nevery = \"1h\"\ntoken = \"${PING_TOKEN}\"\ncommand = [\"true\"]\n",
    );
    assert!(p.contains("unknown"), "{p}");
    // A token written in the file works, with a warning.
    let c =
        parse("[jobs.p]\nkind = \"push\"\nevery = \"1h\"\ntoken = \"literal-token-0123456789\"\n")
            .unwrap();
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(
        !c.warnings[0].to_string().contains("literal-token"),
        "{:?}",
        c.warnings
    );
}

#[test]
fn a_push_job_refuses_the_keys_of_running_a_slot_here() {
    let job = "[jobs.nightly]\nkind = \"push\"\ncron = \"0 2 * * *\"\ntoken = \"${PING_TOKEN}\"\n";
    for (key, value) in [
        ("jitter", "\"30s\""),
        ("retries", "2"),
        ("overlap", "\"queue\""),
        ("catch_up", "\"all\""),
        ("catch_up_window", "\"1h\""),
        ("retry_backoff", "\"1s\""),
        ("retry_abandoned", "false"),
        // Refused as not applying, not also as a bad value.
        ("jitter", "\"soon\""),
    ] {
        assert_eq!(
            problems(&format!("{job}{key} = {value}\n")),
            [format!(
                "schedules.toml:5:1: job \"nightly\": {key}: push jobs run elsewhere; {key} does not apply"
            )]
        );
    }
    // [defaults] sets them for the jobs that run here; a push job takes none.
    let c = parse(&format!(
        "[defaults]\njitter = \"30s\"\nretries = 3\noverlap = \"queue\"\ncatch_up = \"all\"\n\n{job}\n\
         [jobs.c]\nkind = \"command\"\ncron = \"0 3 * * *\"\ncommand = [\"true\"]\n"
    ))
    .unwrap();
    let policies = |name: &str| {
        let j = c.job(name).unwrap();
        (j.jitter, j.retries, j.overlap, j.catch_up)
    };
    assert_eq!(
        policies("nightly"),
        (Duration::ZERO, 0, Overlap::Skip, CatchUp::Latest)
    );
    assert_eq!(
        policies("c"),
        (Duration::from_secs(30), 3, Overlap::Queue, CatchUp::All)
    );
}

#[test]
fn api_ack_link_ttl() {
    let job = "[jobs.a]\nkind = \"command\"\nevery = \"1m\"\ncommand = [\"true\"]\n";
    let c = parse(&format!("{job}[api]\nack_link_ttl = \"2h\"\n")).unwrap();
    assert_eq!(c.api.ack_link_ttl, Some(Duration::from_secs(7200)));
    assert_eq!(parse(job).unwrap().api.ack_link_ttl, None);
    let p = problems(&format!("{job}[api]\nack_link_ttl = \"soon\"\n"));
    assert!(
        p[0].starts_with("schedules.toml:6:16: api.ack_link_ttl: invalid duration \"soon\""),
        "{p:?}"
    );
    let p = problems(&format!("{job}[api]\nack_link_ttl = \"0s\"\n"));
    assert_eq!(
        p,
        ["schedules.toml:6:16: api.ack_link_ttl: must be longer than 0s"]
    );
}
