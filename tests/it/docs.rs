//! The manual cannot drift from the code: every TOML example in README.md
//! and docs/*.md is checked by the real `ops-worker validate`, and every
//! `ops-worker` command line they show is checked by the real command-line
//! parser. The conventions the markdown follows are in docs/development.md
//! ("Examples in the manual are tested"):
//!
//! - ```` ```toml ````: a whole schedules.toml; `validate` exits 0.
//! - `<!-- validate: with ITEM, ... -->` on the line before the fence: a
//!   fragment; each ITEM (`notify NAME`, `person NAME`, `oncall NAME`,
//!   `a job`) gets a minimal stand-in appended.
//! - ```` ```toml invalid ````: `validate` exits 2 and prints the `error:`
//!   lines of the next fenced block (a line ending in `...` is a prefix).

use std::path::{Path, PathBuf};

use clap::error::ErrorKind;
use clap::Parser;
use ops_worker::cli::Cli;

/// Variables the examples use without a default (`${VAR}`), with values
/// that pass validation. A new one in the manual goes here.
const ENV: &[(&str, &str)] = &[
    (
        "OPS_WEBHOOK_URL",
        "https://hooks.example.com/services/T0/B0/ops",
    ),
    (
        "SLACK_WEBHOOK_URL",
        "https://hooks.example.com/services/T0/B0/slack",
    ),
    ("PAGER_TOKEN", "pager-token"),
    ("SEARCH_TOKEN", "search-token"),
    ("OPS_CHAT_WEBHOOK_URL", "https://chat.example.com/hooks/ops"),
    ("ALICE_PAGER_URL", "https://pager.example.com/hooks/alice"),
    ("BOB_PAGER_URL", "https://pager.example.com/hooks/bob"),
    ("SMTP_USERNAME", "ops-worker"),
    ("SMTP_PASSWORD", "smtp-password"),
    ("PAGERDUTY_ROUTING_KEY", "R0UTINGKEY0123456789"),
    ("NTFY_TOKEN", "tk_ntfy"),
    (
        "DISCORD_WEBHOOK_URL",
        "https://discord.com/api/webhooks/1/discord",
    ),
    ("TEAMS_WEBHOOK_URL", "https://teams.example.com/workflows/1"),
    ("TELEGRAM_BOT_TOKEN", "123456:telegram"),
    ("GRAFANA_API_TOKEN", "grafana-token-0123456789"),
    ("BACKUP_PING_TOKEN", "backup-ping-token-0123456789"),
];

/// The markdown files of the manual: README.md and docs/*.md.
fn manual() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    paths.sort();
    paths.insert(0, root.join("README.md"));
    paths
        .into_iter()
        .map(|p| {
            let name = p.strip_prefix(root).unwrap().display().to_string();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// A fenced code block.
struct Block {
    /// `file:line` of the opening fence.
    at: String,
    /// The info string: `toml`, `toml invalid`, `sh`, ...
    info: String,
    /// The content, without the fence's indentation.
    text: String,
    /// What a `<!-- validate: ... -->` comment on the line before asks for.
    marker: Option<String>,
}

/// Fenced blocks and the lines outside them, of one file.
fn blocks(file: &str, text: &str) -> (Vec<Block>, Vec<(usize, String)>) {
    let lines: Vec<&str> = text.lines().collect();
    let (mut blocks, mut prose) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < lines.len() {
        let trimmed = lines[i].trim_start();
        let Some(info) = trimmed.strip_prefix("```") else {
            prose.push((i + 1, lines[i].to_string()));
            i += 1;
            continue;
        };
        let indent = lines[i].len() - trimmed.len();
        let marker = i
            .checked_sub(1)
            .and_then(|p| lines[p].trim().strip_prefix("<!-- validate:"))
            .map(|m| m.trim_end_matches("-->").trim().to_string());
        let start = i;
        let mut body = Vec::new();
        i += 1;
        while i < lines.len() && lines[i].trim() != "```" {
            body.push(lines[i].get(indent..).unwrap_or(lines[i].trim_start()));
            i += 1;
        }
        assert!(i < lines.len(), "{file}:{}: unclosed fence", start + 1);
        i += 1;
        blocks.push(Block {
            at: format!("{file}:{}", start + 1),
            info: info.trim().to_string(),
            text: body.join("\n") + "\n",
            marker,
        });
    }
    (blocks, prose)
}

/// The stand-ins a `validate: with ...` marker asks for, as TOML.
fn stand_ins(at: &str, marker: &str) -> String {
    let items = marker
        .strip_prefix("with ")
        .unwrap_or_else(|| panic!("{at}: a validate marker says `with ITEM, ...`: {marker:?}"));
    let mut toml = String::new();
    let mut stand_in_target = false;
    for item in items.split(',').map(str::trim) {
        let words: Vec<&str> = item.split_whitespace().collect();
        match words.as_slice() {
            ["notify", name] => toml.push_str(&format!(
                "\n[notify.{name}]\ntype = \"webhook\"\nurl = \"https://hooks.example.com/{name}\"\n"
            )),
            ["person", name] => {
                stand_in_target = true;
                toml.push_str(&format!(
                    "\n[people.{name}]\nnotify = [\"docs-stand-in\"]\n"
                ));
            }
            ["oncall", name] => {
                stand_in_target = true;
                toml.push_str(&format!(
                    "\n[people.docs-stand-in-{name}]\nnotify = [\"docs-stand-in\"]\n\
                     \n[oncall.{name}]\ntimezone = \"UTC\"\n\
                     layers = [{{ members = [\"docs-stand-in-{name}\"], rotation = \"weekly\", handoff = \"2026-01-05T09:00\" }}]\n"
                ));
            }
            ["a", "job"] => toml.push_str(
                "\n[jobs.docs-stand-in]\nkind = \"command\"\nevery = \"1h\"\ncommand = [\"true\"]\n",
            ),
            _ => panic!("{at}: unknown item {item:?} in a validate marker (notify NAME, person NAME, oncall NAME, a job)"),
        }
    }
    if stand_in_target {
        toml.push_str(
            "\n[notify.docs-stand-in]\ntype = \"webhook\"\nurl = \"https://hooks.example.com/stand-in\"\n",
        );
    }
    toml
}

/// `ops-worker validate` on `text` as ./schedules.toml: exit code, stderr.
fn validate(text: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("schedules.toml"), text).unwrap();
    let mut cmd = crate::cli::bin(dir.path());
    cmd.envs(ENV.iter().copied()).arg("validate");
    let out = cmd.output().unwrap();
    let code = out.status.code().expect("exited normally");
    (code, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Whether `shown` (an `error:` line of the manual) matches `printed`.
fn same_error(shown: &str, printed: &str) -> bool {
    match shown.strip_suffix("...") {
        Some(prefix) => printed.starts_with(prefix),
        None => printed == shown,
    }
}

#[test]
fn docs_every_toml_example_validates() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for (file, text) in manual() {
        let (blocks, prose) = blocks(&file, &text);
        // A marker must sit right before a TOML fence, or it checks nothing.
        for (line, l) in &prose {
            if l.contains("<!-- validate:") {
                let next_is_toml = blocks
                    .iter()
                    .any(|b| b.at == format!("{file}:{}", line + 1) && b.info.starts_with("toml"));
                assert!(
                    next_is_toml,
                    "{file}:{line}: a validate marker not followed by a ```toml fence"
                );
            }
        }
        for (n, b) in blocks.iter().enumerate() {
            let mut words = b.info.split_whitespace();
            if words.next() != Some("toml") {
                continue;
            }
            checked += 1;
            let mut toml = b.text.clone();
            if let Some(marker) = &b.marker {
                toml.push_str(&stand_ins(&b.at, marker));
            }
            let (code, stderr) = validate(&toml);
            match words.next() {
                None if code != 0 => {
                    failures.push(format!("{}: validate exited {code}:\n{stderr}", b.at))
                }
                None => {}
                Some("invalid") => {
                    let shown: Vec<&str> = blocks
                        .get(n + 1)
                        .map(|next| {
                            next.text
                                .lines()
                                .filter(|l| l.starts_with("error:"))
                                .collect()
                        })
                        .unwrap_or_default();
                    let printed: Vec<&str> =
                        stderr.lines().filter(|l| l.starts_with("error:")).collect();
                    if code != 2 {
                        failures.push(format!("{}: an invalid example exited {code}", b.at));
                    } else if shown.is_empty() {
                        failures.push(format!(
                            "{}: an invalid example needs a block with its error: lines next",
                            b.at
                        ));
                    } else if shown.len() != printed.len()
                        || !shown.iter().zip(&printed).all(|(s, p)| same_error(s, p))
                    {
                        failures.push(format!(
                            "{}: the errors shown are not what validate prints:\nshown:\n{}\nprinted:\n{}",
                            b.at,
                            shown.join("\n"),
                            printed.join("\n")
                        ));
                    }
                }
                Some(other) => panic!("{}: unknown toml fence word {other:?}", b.at),
            }
        }
    }
    assert!(checked >= 10, "only {checked} TOML examples found");
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

/// Values for the placeholders the manual writes in command lines.
const PLACEHOLDERS: &[(&str, &str)] = &[
    ("NAME", "heartbeat"),
    ("ID", "42"),
    ("TIME", "2026-11-26T14:00:00Z"),
    ("SCHEDULE", "primary"),
    ("TEXT", "maintenance"),
    ("N", "daily-report"),
    ("PATH", "schedules.toml"),
    ("IP:PORT", "127.0.0.1:9464"),
    ("COMMAND", "run"),
    ("GLOB", "system:service:*"),
    ("BASE", "http://127.0.0.1:8080"),
];

/// The arguments after the program in a command line the manual shows, if
/// it runs ops-worker: `ops-worker ARGS`, `$ ops-worker ARGS`,
/// `cargo run --release -- ARGS`, `docker compose run --rm ops_worker ARGS`.
fn ops_worker_args(line: &str) -> Option<&str> {
    let line = line.trim();
    let line = line.strip_prefix("$ ").unwrap_or(line);
    if let Some(rest) = line.strip_prefix("ops-worker ") {
        return Some(rest);
    }
    if line.starts_with("cargo run") {
        return line.split_once(" -- ").map(|(_, rest)| rest);
    }
    line.strip_prefix("docker compose run --rm ops_worker ")
}

/// Splits `args` into words (quotes group, a `#` word starts a comment),
/// drops `[` `]` around optional parts, substitutes placeholders and
/// expands `a|b` alternatives: every argument list the line stands for.
fn expand(args: &str) -> Result<Vec<Vec<String>>, String> {
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    for c in args.replace("\\|", "|").chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '#') if !in_word => break,
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("unclosed quote".to_string());
    }
    if in_word {
        words.push(word);
    }
    let mut lists: Vec<Vec<String>> = vec![vec!["ops-worker".to_string()]];
    for w in words {
        let w = w.trim_matches(|c| c == '[' || c == ']');
        if w.is_empty() {
            continue;
        }
        let choices: Vec<String> = w
            .split('|')
            .map(|alt| {
                PLACEHOLDERS
                    .iter()
                    .find(|(p, _)| *p == alt)
                    .map_or_else(|| alt.to_string(), |(_, v)| v.to_string())
            })
            .collect();
        if let Some(c) = choices.iter().find(|c| {
            c.len() > 1
                && c.chars()
                    .all(|c| c.is_ascii_uppercase() || c == '_' || c == ':')
        }) {
            return Err(format!("unknown placeholder {c} (add it to PLACEHOLDERS)"));
        }
        lists = lists
            .into_iter()
            .flat_map(|l| {
                choices.iter().map(move |c| {
                    let mut l = l.clone();
                    l.push(c.clone());
                    l
                })
            })
            .collect();
    }
    Ok(lists)
}

#[test]
fn docs_every_command_line_shown_is_accepted() {
    // (where, arguments, complete): code blocks and CLI table rows show
    // whole command lines; a mention in prose may leave an argument out.
    let mut lines: Vec<(String, String, bool)> = Vec::new();
    for (file, text) in manual() {
        let (blocks, prose) = blocks(&file, &text);
        for b in &blocks {
            if b.info.starts_with("toml") || b.info == "json" {
                continue;
            }
            for (k, l) in b.text.lines().enumerate() {
                if let Some(args) = ops_worker_args(l) {
                    lines.push((format!("{} +{}", b.at, k + 1), args.to_string(), true));
                }
            }
        }
        for (line, l) in &prose {
            let table_row = l.starts_with('|');
            for (k, span) in l.split('`').enumerate() {
                // Odd pieces are inside backticks.
                if k % 2 == 0 {
                    continue;
                }
                if let Some(args) = ops_worker_args(span) {
                    let complete = table_row && l.starts_with(&format!("| `{span}`"));
                    lines.push((format!("{file}:{line}"), args.to_string(), complete));
                }
            }
        }
    }
    assert!(
        lines.len() >= 40,
        "only {} command lines found",
        lines.len()
    );
    let mut failures = Vec::new();
    for (at, args, complete) in &lines {
        let lists = match expand(args) {
            Ok(lists) => lists,
            Err(e) => {
                failures.push(format!("{at}: `ops-worker {args}`: {e}"));
                continue;
            }
        };
        for argv in lists {
            let Err(e) = Cli::try_parse_from(&argv) else {
                continue;
            };
            let fine = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => true,
                ErrorKind::MissingRequiredArgument
                | ErrorKind::MissingSubcommand
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => !complete,
                _ => false,
            };
            if !fine {
                failures.push(format!("{at}: {argv:?}: {}", e.render()));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces
/// as hyphens.
fn slug(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn docs_links_point_at_files_and_headings() {
    let manual = manual();
    let anchors = |file: &str| -> Vec<String> {
        let (_, text) = manual.iter().find(|(f, _)| f == file).unwrap();
        let (_, prose) = blocks(file, text);
        prose
            .iter()
            .filter_map(|(_, l)| l.strip_prefix('#'))
            .map(|h| slug(h.trim_start_matches('#').trim()))
            .collect()
    };
    let mut failures = Vec::new();
    for (file, text) in &manual {
        let dir = Path::new(file).parent().unwrap();
        let (_, prose) = blocks(file, text);
        for (line, l) in &prose {
            for target in l.split("](").skip(1).filter_map(|t| t.split(')').next()) {
                if target.starts_with("http") {
                    continue;
                }
                let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
                let linked = if path.is_empty() {
                    file.clone()
                } else {
                    let joined = dir.join(path);
                    // docs/../README.md is README.md
                    let mut parts: Vec<&str> = Vec::new();
                    for c in joined.iter().map(|c| c.to_str().unwrap()) {
                        if c == ".." {
                            parts.pop();
                        } else {
                            parts.push(c);
                        }
                    }
                    parts.join("/")
                };
                if !Path::new(env!("CARGO_MANIFEST_DIR")).join(&linked).exists() {
                    failures.push(format!("{file}:{line}: {target}: no file {linked}"));
                } else if !anchor.is_empty()
                    && manual.iter().any(|(f, _)| *f == linked)
                    && !anchors(&linked).iter().any(|a| a == anchor)
                {
                    failures.push(format!(
                        "{file}:{line}: {target}: no heading #{anchor} in {linked}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// The shipped schedules.toml's commented-out examples (lines starting
/// with `#` and no space) are valid once uncommented, and the one that
/// needs a URL says so until it has one.
#[test]
fn docs_the_shipped_schedules_examples_validate_when_uncommented() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shipped = std::fs::read_to_string(root.join("schedules.toml")).unwrap();
    let examples = shipped
        .lines()
        .filter(|l| l.starts_with('#') && !l.starts_with("# ") && *l != "#")
        .count();
    assert!(examples >= 5, "only {examples} example lines");
    let uncommented: String = shipped
        .lines()
        .map(|l| match l.strip_prefix('#') {
            Some(rest) if !rest.is_empty() && !rest.starts_with(' ') => rest,
            _ => l,
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("schedules.toml"), &uncommented).unwrap();
    let validate = |env: &[(&str, &str)]| {
        let out = crate::cli::bin(dir.path())
            .envs(env.iter().copied())
            .arg("validate")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = validate(&[("API_HEALTH_URL", "http://127.0.0.1:8080/health")]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("  api-health: health every 1m\n"), "{out}");
    let (code, _, err) = validate(&[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("environment variable API_HEALTH_URL is not set"),
        "{err}"
    );
}

/// The README's "Fresh machine" states the Rust version Cargo.toml
/// requires, and keeps to two commands: one runs the worker, one the tests.
#[test]
fn docs_the_fresh_machine_section_states_cargos_rust_version_and_two_commands() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo: toml::Table = std::fs::read_to_string(root.join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let rust_version = cargo["package"]["rust-version"].as_str().unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let start = readme
        .find("\n## Fresh machine")
        .expect("README.md has a \"Fresh machine\" section");
    let section = &readme[start + 1..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let stated = section
        .split("**Rust ")
        .nth(1)
        .and_then(|s| s.split(" or newer").next())
        .expect("the section says \"**Rust X or newer\"");
    assert_eq!(
        stated, rust_version,
        "README.md states Rust {stated}, Cargo.toml's rust-version is {rust_version}"
    );
    let (blocks, _) = blocks("README.md", section);
    let commands: Vec<&str> = blocks
        .iter()
        .flat_map(|b| b.text.lines())
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(
        commands,
        ["cargo run --release -- run", "cargo test --workspace"]
    );
}

/// The backticked variable names (`DATABASE_URL`) at the start of `cell`.
fn variable_names(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| {
            w.len() > 1
                && w.starts_with(|c: char| c.is_ascii_uppercase())
                && w.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .map(str::to_string)
        .collect()
}

/// `.env.example`, the environment tables of docs/configuration.md and
/// docker-compose.yml agree: every variable of the tables is in
/// `.env.example` unless its row says it is "not for .env" (and then
/// neither `.env.example` nor compose has it), every variable compose reads
/// or passes is in `.env.example`, and every one `.env.example` lists is in
/// a table or in compose.
#[test]
fn docs_env_example_the_environment_tables_and_compose_agree() {
    use std::collections::BTreeSet;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |f: &str| std::fs::read_to_string(root.join(f)).unwrap();

    let configuration = read("docs/configuration.md");
    let section = &configuration[configuration
        .find("\n## Environment")
        .expect("docs/configuration.md has an Environment section")..];
    let (mut documented, mut not_for_env) = (BTreeSet::new(), BTreeSet::new());
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let first = row.split('|').nth(1).unwrap();
        let names = variable_names(first);
        if row.contains("Not for .env") || row.contains("not for .env") {
            not_for_env.extend(names);
        } else {
            documented.extend(names);
        }
    }
    assert!(documented.len() >= 15, "{documented:?}");

    let example: BTreeSet<String> = read(".env.example")
        .lines()
        .filter_map(|l| {
            let l = l.strip_prefix('#').unwrap_or(l);
            let (name, _) = l.split_once('=')?;
            (!name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .then(|| name.to_string())
        })
        .collect();
    assert!(example.len() >= 15, "{example:?}");

    // ${VAR} anywhere outside comments, and the upper-case keys of the
    // `environment:` maps (service and volume names are lower case).
    let compose_text = read("docker-compose.yml");
    let mut compose = BTreeSet::new();
    for line in compose_text.lines() {
        let code = line.split(" #").next().unwrap();
        if code.trim_start().starts_with('#') {
            continue;
        }
        for piece in code.split("${").skip(1) {
            let name: String = piece
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            compose.insert(name);
        }
        if let Some((key, _)) = code.trim_start().split_once(':') {
            if !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            {
                compose.insert(key.to_string());
            }
        }
    }
    assert!(compose.len() >= 10, "{compose:?}");

    let mut failures = Vec::new();
    for v in &documented {
        if !example.contains(v) {
            failures.push(format!("{v}: in the environment tables but not in .env.example (add it, or mark its row \"not for .env\")"));
        }
    }
    for v in &not_for_env {
        if example.contains(v) || compose.contains(v) {
            failures.push(format!(
                "{v}: marked \"not for .env\" but .env.example or docker-compose.yml has it"
            ));
        }
    }
    for v in &compose {
        if !example.contains(v) {
            failures.push(format!(
                "{v}: docker-compose.yml reads or passes it, .env.example does not list it"
            ));
        }
    }
    for v in &example {
        if !documented.contains(v) && !compose.contains(v) {
            failures.push(format!("{v}: in .env.example but neither in the environment tables of docs/configuration.md nor in docker-compose.yml"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
