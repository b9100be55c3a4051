//! The documentation cannot drift from the code. Every command of README.md
//! and docs/**/*.md — a line of a fenced shell block, or an inline code span,
//! that starts with `runner` (or `./target/release/runner`, or `cargo`) — is
//! checked against the real binary:
//!
//! * its subcommand and flags parse (`runner ARGS... --help`: clap parses every
//!   argument before the trailing `--help`, which then stops it before any
//!   work is done), and every flag is one `--help` documents (a hidden flag
//!   kept for old scripts is not documentation);
//! * the experiment files it names, and every argument naming a path of the
//!   repository (`experiments/`, `examples/`, `docs/`...), exist;
//! * its `--set` overrides are valid keys and values for its experiment files
//!   (`runner validate FILES --set ...`, which resolves without running);
//! * `cargo` lines name real test targets (`--test`), features and paths, and
//!   `cargo run -- ARGS` is checked as `runner ARGS`.
//!
//! A command with a placeholder — an upper-case word (`FILE`, `N`, `RUN_DIR`,
//! `F.toml`), `...`, a `[synopsis]` or `<...>` part, or a `$VARIABLE` — is a
//! synopsis: only its subcommand and flags are checked. Every relative link
//! must resolve inside the repository (anchors included), every repository
//! path in inline code must exist, and the book's SUMMARY.md must list every
//! chapter of docs/.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};

mod common;
use common::{root, runner, stderr};

/// Top-level directories of the repository: an argument or inline path that
/// starts with one of these names a file that must exist.
const REPO_DIRS: &[&str] = &[
    "experiments/",
    "examples/",
    "datasets/",
    "docs/",
    "schemas/",
    "scripts/",
    "src/",
    "tests/",
    ".ci/",
];

/// Names under which the docs invoke the binary.
const PROGRAMS: &[&str] = &["runner", "./target/release/runner", "target/release/runner"];

// ---------------------------------------------------------------------------
// Extraction
// ---------------------------------------------------------------------------

/// A command found in a markdown text: its 1-based line and its text.
#[derive(Debug, Clone, PartialEq)]
struct Snippet {
    line: usize,
    text: String,
}

/// Whether a fence's info string marks a shell block (or none at all).
fn is_shell_fence(info: &str) -> bool {
    let lang = info.split([' ', ',', '{']).next().unwrap_or("");
    matches!(lang, "" | "sh" | "bash" | "shell" | "console" | "zsh")
}

/// The fence that a line opens or closes: its character and length, and the
/// info string.
fn fence(line: &str) -> Option<(char, usize, &str)> {
    let t = line.trim_start();
    let c = t.chars().next()?;
    if c != '`' && c != '~' {
        return None;
    }
    let n = t.chars().take_while(|&x| x == c).count();
    (n >= 3).then(|| (c, n, t[n..].trim()))
}

/// Every command of a markdown text: lines of shell-fenced blocks (with `\`
/// continuations joined) and inline code spans outside fences.
fn commands_in(md: &str) -> Vec<Snippet> {
    let mut out = Vec::new();
    let mut prose = String::new();
    let mut open: Option<(char, usize, bool)> = None;
    let mut pending: Option<(usize, String)> = None;
    for (i, line) in md.lines().enumerate() {
        let n = i + 1;
        match (open, fence(line)) {
            (None, Some((c, len, info))) => {
                open = Some((c, len, is_shell_fence(info)));
                prose.push('\n');
                continue;
            }
            (Some((c, len, _)), Some((c2, len2, info)))
                if c2 == c && len2 >= len && info.is_empty() =>
            {
                open = None;
                prose.push('\n');
                continue;
            }
            _ => {}
        }
        match open {
            None => {
                prose.push_str(line);
                prose.push('\n');
            }
            Some((_, _, shell)) => {
                prose.push('\n');
                if !shell {
                    continue;
                }
                let (start, mut text) = pending.take().unwrap_or((n, String::new()));
                text.push_str(line);
                if let Some(head) = text.strip_suffix('\\') {
                    pending = Some((start, format!("{head} ")));
                    continue;
                }
                for c in shell_commands(&text) {
                    out.push(Snippet {
                        line: start,
                        text: c,
                    });
                }
            }
        }
    }
    for (line, span) in code_spans(&prose) {
        for c in shell_commands(&span) {
            out.push(Snippet { line, text: c });
        }
    }
    out.sort_by_key(|s| s.line);
    out
}

/// Inline code spans of `prose` (fenced lines already blanked): their line
/// and content (line breaks as spaces). A span does not cross a blank line.
fn code_spans(prose: &str) -> Vec<(usize, String)> {
    let b = prose.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'`' {
            i += 1;
            continue;
        }
        let run = b[i..].iter().take_while(|&&c| c == b'`').count();
        let start = i + run;
        let mut j = start;
        let mut close = None;
        while j < b.len() {
            if b[j] == b'\n' && b.get(j + 1) == Some(&b'\n') {
                break;
            }
            if b[j] == b'`' {
                let r = b[j..].iter().take_while(|&&c| c == b'`').count();
                if r == run {
                    close = Some(j);
                    break;
                }
                j += r;
                continue;
            }
            j += 1;
        }
        match close {
            Some(end) => {
                let line = 1 + prose[..i].matches('\n').count();
                out.push((
                    line,
                    prose[start..end].replace('\n', " ").trim().to_string(),
                ));
                i = end + run;
            }
            None => i = start,
        }
    }
    out
}

/// The commands of one shell line: the comment dropped, split at unquoted
/// `|`, `;`, `&&` and `||`, unquoted whitespace collapsed, leading `$ `
/// prompts and `VAR=value` assignments dropped; those whose program is the
/// runner or cargo, with at least one argument.
fn shell_commands(line: &str) -> Vec<String> {
    let mut segments = vec![String::new()];
    let (mut single, mut double) = (false, false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        let seg = segments.last_mut().unwrap();
        let quoted = single || double;
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !quoted && (seg.is_empty() || seg.ends_with(' ')) => break,
            '|' | ';' | '&' if !quoted => {
                if chars.peek() == Some(&c) {
                    chars.next();
                }
                segments.push(String::new());
                continue;
            }
            c if c.is_whitespace() && !quoted => {
                if !seg.is_empty() && !seg.ends_with(' ') {
                    seg.push(' ');
                }
                continue;
            }
            _ => {}
        }
        seg.push(c);
    }
    let is_assignment = |w: &str| {
        w.split_once('=').is_some_and(|(k, _)| {
            !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
    };
    segments
        .iter()
        .filter_map(|seg| {
            let mut s = seg.trim();
            s = s.strip_prefix("$ ").unwrap_or(s);
            while let Some((first, rest)) = s.split_once(' ') {
                if !is_assignment(first) {
                    break;
                }
                s = rest;
            }
            // A bare program name (`runner` in prose) is a name, not a command.
            let (program, _args) = s.split_once(' ')?;
            (PROGRAMS.contains(&program) || program == "cargo").then(|| s.to_string())
        })
        .collect()
}

/// A command's words as a shell splits them (quotes and backslashes), without
/// redirections and their targets.
fn words(cmd: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut has = false;
    let (mut single, mut double) = (false, false);
    let mut chars = cmd.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' if !double => {
                single = !single;
                has = true;
            }
            '"' if !single => {
                double = !double;
                has = true;
            }
            '\\' if !single => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                    has = true;
                }
            }
            c if c.is_whitespace() && !single && !double => {
                if has || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                has = false;
            }
            c => cur.push(c),
        }
    }
    if has || !cur.is_empty() {
        out.push(cur);
    }
    let mut kept = Vec::new();
    let mut it = out.into_iter();
    while let Some(w) = it.next() {
        match w.as_str() {
            ">" | ">>" | "<" | "2>" | "2>>" | "&>" => {
                it.next();
            }
            w if (w.starts_with('>') || w.starts_with("2>") || w.starts_with("&>"))
                && !w.starts_with("<(") => {}
            _ => kept.push(w),
        }
    }
    kept
}

/// Whether a word stands for something the reader fills in: `...`, a
/// synopsis bracket, `<...>`, a shell variable, or an upper-case name
/// (`FILE`, `N`, `RUN_DIR`, the `F` of `experiments/F.toml`).
fn is_placeholder(word: &str) -> bool {
    if word.contains("...")
        || word.contains('…')
        || word.contains('$')
        || word.starts_with('[')
        || word.starts_with('<')
    {
        return true;
    }
    word.split(|c: char| "/=,.:()[]<>'\"{}".contains(c))
        .any(|p| {
            p.starts_with(|c: char| c.is_ascii_uppercase())
                && p.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
}

// ---------------------------------------------------------------------------
// Checking
// ---------------------------------------------------------------------------

/// What `runner [SUB] --help` documents: flag -> whether it takes a value.
type Flags = BTreeMap<String, bool>;

/// The flags of `--help` texts, asked of the binary once per subcommand.
#[derive(Default)]
struct HelpCache {
    flags: HashMap<Option<String>, Flags>,
    subcommands: Option<BTreeSet<String>>,
}

impl HelpCache {
    fn help_text(sub: Option<&str>) -> String {
        let mut cmd = runner();
        if let Some(s) = sub {
            cmd.arg(s);
        }
        let out = cmd.arg("--help").output().unwrap();
        assert!(
            out.status.success(),
            "runner {sub:?} --help: {}",
            stderr(&out)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    fn subcommands(&mut self) -> &BTreeSet<String> {
        self.subcommands.get_or_insert_with(|| {
            let text = Self::help_text(None);
            text.lines()
                .skip_while(|l| l.trim() != "Commands:")
                .skip(1)
                .take_while(|l| !l.trim().is_empty())
                .filter_map(|l| l.split_whitespace().next().map(str::to_string))
                .filter(|s| s != "help")
                .collect()
        })
    }

    fn flags(&mut self, sub: Option<&str>) -> &Flags {
        self.flags
            .entry(sub.map(str::to_string))
            .or_insert_with(|| {
                let mut flags = Flags::new();
                for line in Self::help_text(sub).lines() {
                    let t = line.trim_start();
                    if !t.starts_with('-') {
                        continue;
                    }
                    let head = t.split("  ").next().unwrap();
                    let takes_value = head.contains('<');
                    for tok in head.split([',', ' ']) {
                        if tok.starts_with('-') {
                            flags.insert(tok.to_string(), takes_value);
                        }
                    }
                }
                flags
            })
    }
}

/// The result of checking one command.
#[derive(Debug, Default)]
struct Checked {
    /// What is wrong with it (empty: nothing).
    problems: Vec<String>,
    /// It holds a placeholder: only its subcommand and flags were checked.
    synopsis: bool,
}

/// Files matching `pattern` (relative to the repository root; `*` matches
/// within the last component only).
fn expand(pattern: &str) -> Vec<PathBuf> {
    let root = root();
    if !pattern.contains('*') {
        let p = root.join(pattern);
        return if p.exists() { vec![p] } else { vec![] };
    }
    let (dir, name) = pattern.rsplit_once('/').unwrap_or(("", pattern));
    if dir.contains('*') {
        return vec![];
    }
    let mut out: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| wildcard(name, &p.file_name().unwrap().to_string_lossy()))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// `*`-only wildcard matching.
fn wildcard(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, rest)) => {
            name.starts_with(head)
                && (0..=name.len() - head.len()).any(|k| {
                    name.is_char_boundary(head.len() + k) && wildcard(rest, &name[head.len() + k..])
                })
        }
    }
}

fn names_repo_path(word: &str) -> bool {
    REPO_DIRS.iter().any(|d| word.starts_with(d))
}

/// The features declared in Cargo.toml's `[features]` table.
fn cargo_features() -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    text.lines()
        .skip_while(|l| l.trim() != "[features]")
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with('['))
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim().to_string()))
        .filter(|k| !k.is_empty() && !k.starts_with('#'))
        .collect()
}

/// Check a `cargo` command: `--test`, `--features` and `--path` name real
/// things; `cargo run ... -- ARGS` is checked as `runner ARGS`.
fn check_cargo(args: &[String], cache: &mut HelpCache) -> Checked {
    let mut checked = Checked::default();
    let sub = args.first().map(String::as_str).unwrap_or("");
    let mut i = 1;
    while i < args.len() {
        let a = args[i].as_str();
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a, None),
        };
        let value = || inline.clone().or_else(|| args.get(i + 1).cloned());
        match flag {
            "--" if sub == "run" => {
                let mut words = vec!["runner".to_string()];
                words.extend(args[i + 1..].iter().cloned());
                return check_runner(&words, cache);
            }
            "--test" => {
                let t = value().unwrap_or_default();
                if !root().join("tests").join(format!("{t}.rs")).is_file() {
                    checked
                        .problems
                        .push(format!("`--test {t}`: no tests/{t}.rs"));
                }
            }
            "--features" | "-F" => {
                let features = cargo_features();
                for f in value().unwrap_or_default().split([',', ' ']) {
                    if !f.is_empty() && !features.contains(f) {
                        checked
                            .problems
                            .push(format!("feature `{f}` is not in Cargo.toml"));
                    }
                }
            }
            "--path" => {
                let p = value().unwrap_or_default();
                if !root().join(&p).exists() {
                    checked
                        .problems
                        .push(format!("`--path {p}` does not exist"));
                }
            }
            _ => {}
        }
        i += if inline.is_none() && matches!(flag, "--test" | "--features" | "-F" | "--path") {
            2
        } else {
            1
        };
    }
    checked
}

/// Check one command of the docs (its words, the program first).
fn check_words(words: &[String], cache: &mut HelpCache) -> Checked {
    match words.first().map(String::as_str) {
        Some("cargo") => check_cargo(&words[1..], cache),
        Some(p) if PROGRAMS.contains(&p) => check_runner(words, cache),
        _ => Checked::default(),
    }
}

fn check_command(text: &str, cache: &mut HelpCache) -> Checked {
    check_words(&words(text), cache)
}

fn check_runner(words: &[String], cache: &mut HelpCache) -> Checked {
    let mut checked = Checked::default();
    let args = &words[1..];
    let sub = args
        .first()
        .filter(|a| cache.subcommands().contains(a.as_str()))
        .cloned();
    let rest = &args[usize::from(sub.is_some())..];
    let flags = cache.flags(sub.as_deref()).clone();
    let shown = sub
        .as_deref()
        .map_or("runner".to_string(), |s| format!("runner {s}"));

    // Every flag is one `--help` documents.
    for a in rest {
        let a = a.trim_start_matches('[').trim_end_matches(']');
        if a.len() < 2 || !a.starts_with('-') || a == "--" || a.parse::<f64>().is_ok() {
            continue;
        }
        let name = a.split_once('=').map_or(a, |(f, _)| f);
        if !flags.contains_key(name) {
            checked
                .problems
                .push(format!("flag `{name}` is not in `{shown} --help`"));
        }
    }
    if args.iter().any(|w| is_placeholder(w)) {
        checked.synopsis = true;
        return checked;
    }

    // The real parser accepts every argument.
    let out = runner().args(args).arg("--help").output().unwrap();
    if !out.status.success() {
        let err = stderr(&out);
        checked.problems.push(format!(
            "does not parse: {}",
            err.lines().find(|l| !l.trim().is_empty()).unwrap_or("")
        ));
    }

    // Positionals, `--set` values and other flag values.
    let (mut positionals, mut sets, mut values, mut datasets) = (vec![], vec![], vec![], None);
    let mut i = 0;
    while i < rest.len() {
        let a = &rest[i];
        if a.starts_with('-') && a.len() > 1 && a != "--" {
            let (name, inline) = match a.split_once('=') {
                Some((f, v)) => (f, Some(v.to_string())),
                None => (a.as_str(), None),
            };
            if flags.get(name).copied().unwrap_or(false) {
                // `--set=KEY=VALUE` carries its value, `--set KEY=VALUE` takes the next word.
                i += if inline.is_some() { 1 } else { 2 };
                let v = inline
                    .or_else(|| rest.get(i - 1).cloned())
                    .unwrap_or_default();
                match name {
                    "--set" => sets.push(v),
                    "--datasets" => datasets = Some(v),
                    "--out" | "-o" | "--output" | "--script" => {}
                    _ => values.push(v),
                }
                continue;
            }
        } else {
            positionals.push(a.clone());
        }
        i += 1;
    }

    // The experiment files it names exist.
    let experiment_args: Vec<&String> = match sub.as_deref() {
        None | Some("slurm" | "collect" | "score") => positionals.iter().take(1).collect(),
        Some("validate" | "bench") => positionals.iter().collect(),
        Some("report") => positionals
            .iter()
            .take(1)
            .filter(|p| p.ends_with(".toml"))
            .collect(),
        _ => vec![],
    };
    let mut files = Vec::new();
    for p in &experiment_args {
        let found = expand(p);
        if found.is_empty() {
            checked.problems.push(format!(
                "names `{p}`, which is not a file of the repository"
            ));
        } else if !p.ends_with(".toml") {
            checked
                .problems
                .push(format!("`{p}` is not an experiment file (.toml)"));
        }
        files.extend(found);
    }
    for w in positionals.iter().chain(&values) {
        if names_repo_path(w) && !experiment_args.contains(&w) && expand(w).is_empty() {
            checked.problems.push(format!(
                "names `{w}`, which does not exist in the repository"
            ));
        }
    }

    // Its overrides are valid for its files.
    if !files.is_empty() && checked.problems.is_empty() {
        let mut cmd = runner();
        cmd.arg("validate").args(&files);
        for s in &sets {
            cmd.args(["--set", s]);
        }
        if let Some(d) = &datasets {
            cmd.args(["--datasets", d]);
        }
        let out = cmd.output().unwrap();
        if !out.status.success() {
            checked.problems.push(format!(
                "`runner validate` refuses it: {}",
                stderr(&out).trim().replace('\n', " | ")
            ));
        }
    }
    checked
}

// ---------------------------------------------------------------------------
// Files, links and headings
// ---------------------------------------------------------------------------

/// README.md and every markdown file under docs/, sorted.
fn markdown_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "md") {
                out.push(p);
            }
        }
    }
    let mut out = vec![root().join("README.md")];
    walk(&root().join("docs"), &mut out);
    out.sort();
    out
}

fn rel(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}

/// The text outside fenced blocks (fenced lines blanked, line numbers kept).
fn prose_of(md: &str) -> String {
    let mut out = String::new();
    let mut open: Option<(char, usize)> = None;
    for line in md.lines() {
        match (open, fence(line)) {
            (None, Some((c, n, _))) => open = Some((c, n)),
            (Some((c, n)), Some((c2, n2, info))) if c == c2 && n2 >= n && info.is_empty() => {
                open = None
            }
            (None, None) => out.push_str(line),
            _ => {}
        }
        out.push('\n');
    }
    out
}

/// The text with inline code spans blanked (so that a link inside code is
/// not a link).
fn without_code(prose: &str) -> String {
    let mut out = prose.to_string();
    let b = prose.as_bytes();
    let mut i = 0;
    let mut blank = Vec::new();
    while i < b.len() {
        if b[i] != b'`' {
            i += 1;
            continue;
        }
        let run = b[i..].iter().take_while(|&&c| c == b'`').count();
        match prose[i + run..].find(&"`".repeat(run)) {
            Some(k) => {
                blank.push((i, i + run + k + run));
                i += run + k + run;
            }
            None => i += run,
        }
    }
    for (s, e) in blank.into_iter().rev() {
        let repl: String = prose[s..e]
            .chars()
            .map(|c| if c == '\n' { '\n' } else { ' ' })
            .collect();
        out.replace_range(s..e, &repl);
    }
    out
}

/// Markdown links and images `[text](target)` of a text: (line, target).
fn links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(k) = text[from..].find("](") {
        let start = from + k + 2;
        let Some(end) = text[start..].find(')') else {
            break;
        };
        let target = text[start..start + end].trim();
        let target = target.split_whitespace().next().unwrap_or("");
        out.push((1 + text[..start].matches('\n').count(), target.to_string()));
        from = start + end;
    }
    out
}

/// The anchors of a markdown file's headings, as GitHub and mdBook make them.
fn anchors(md: &str) -> BTreeSet<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = BTreeSet::new();
    for line in prose_of(md).lines() {
        let t = line.trim_start();
        if !t.starts_with('#') {
            continue;
        }
        let text = t.trim_start_matches('#');
        if !text.starts_with(' ') {
            continue;
        }
        let slug = slug(text.trim().trim_end_matches('#').trim());
        let n = seen.entry(slug.clone()).or_insert(0);
        out.insert(if *n == 0 {
            slug.clone()
        } else {
            format!("{slug}-{n}")
        });
        *n += 1;
    }
    out
}

/// A heading's anchor: lower case, letters, digits, `_` and `-` kept,
/// whitespace to `-`, everything else dropped.
fn slug(heading: &str) -> String {
    heading
        .chars()
        .filter_map(|c| {
            if c.is_alphanumeric() || c == '_' || c == '-' {
                Some(c.to_lowercase().collect::<String>())
            } else if c.is_whitespace() {
                Some("-".to_string())
            } else {
                None
            }
        })
        .collect()
}

/// `path` with `.` and `..` resolved without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

/// Every command of the README and the book parses, names real files and
/// valid `--set` keys; synopses with placeholders have real flags.
#[test]
fn documented_commands_parse_and_name_real_files_and_keys() {
    let mut cache = HelpCache::default();
    let (mut problems, mut full, mut synopses) = (Vec::new(), Vec::new(), Vec::new());
    for file in markdown_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for s in commands_in(&text) {
            let c = check_command(&s.text, &mut cache);
            let at = format!("{}:{}", rel(&file), s.line);
            let line = format!("{at}: {}", s.text);
            match c.synopsis {
                true => synopses.push(line),
                false => full.push(line),
            }
            problems.extend(
                c.problems
                    .iter()
                    .map(|p| format!("{at}: `{}`: {p}", s.text)),
            );
        }
    }
    println!("checked in full:\n  {}", full.join("\n  "));
    println!(
        "synopses (flags checked only):\n  {}",
        synopses.join("\n  ")
    );
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(
        full.len() >= 40,
        "only {} complete commands found: is the extractor broken?",
        full.len()
    );
    assert!(
        synopses.len() >= 10,
        "only {} synopses found",
        synopses.len()
    );
}

/// The extractor finds fenced and inline commands (not those of other
/// languages), and the checker refuses a made-up flag, a hidden flag, a
/// missing file, an unknown `--set` key and a bad value, but passes a good
/// command and a synopsis with real flags.
#[test]
fn the_checker_refuses_made_up_flags_files_and_keys() {
    let md = "Run `runner validate FILE --bogus-flag` or `runner FILE --jobs N`.\n\
              A span over two lines: `runner experiments/grid_d4_h32_tb.toml\n--set seed=2`.\n\
              \n\
              ```sh\n\
              runner experiments/grid_d4_h32_tb.toml --jobz 2     # a made-up flag\n\
              printf 'x\\n' | runner experiments/no_such_file.toml\n\
              runner validate experiments/grid_d4_h32_tb.toml \\\n  --set env.horizn=16\n\
              runner bench experiments/grid_d4_h32_tb.toml --peak\n\
              runner sample RUN --seed x\n\
              cargo test --release --test no_such_test\n\
              RUNNER_X=1 cargo run --release -- experiments/grid_d4_h32_tb.toml --set seed=3 --jobs 2\n\
              ```\n\
              \n\
              ```toml\n\
              runner = \"not a command\"\n\
              ```\n\
              \n\
              ```text\n\
              runner -> program: not a command either\n\
              ```\n";
    let found: Vec<(usize, String)> = commands_in(md)
        .into_iter()
        .map(|s| (s.line, s.text))
        .collect();
    let expect = [
        (1, "runner validate FILE --bogus-flag"),
        (1, "runner FILE --jobs N"),
        (2, "runner experiments/grid_d4_h32_tb.toml --set seed=2"),
        (6, "runner experiments/grid_d4_h32_tb.toml --jobz 2"),
        (7, "runner experiments/no_such_file.toml"),
        (
            8,
            "runner validate experiments/grid_d4_h32_tb.toml --set env.horizn=16",
        ),
        (10, "runner bench experiments/grid_d4_h32_tb.toml --peak"),
        (11, "runner sample RUN --seed x"),
        (12, "cargo test --release --test no_such_test"),
        (
            13,
            "cargo run --release -- experiments/grid_d4_h32_tb.toml --set seed=3 --jobs 2",
        ),
    ];
    let expect: Vec<(usize, String)> = expect.iter().map(|(l, t)| (*l, t.to_string())).collect();
    assert_eq!(found, expect);

    let mut cache = HelpCache::default();
    let mut check = |t: &str| check_command(t, &mut cache);
    let refused = |c: &Checked, what: &str| {
        assert!(
            c.problems.iter().any(|p| p.contains(what)),
            "expected a problem naming {what}: {:?}",
            c.problems
        )
    };
    let c = check(&expect[0].1);
    assert!(c.synopsis);
    refused(&c, "--bogus-flag");
    let c = check(&expect[1].1);
    assert!(c.synopsis && c.problems.is_empty(), "{c:?}");
    let c = check(&expect[2].1);
    assert!(!c.synopsis && c.problems.is_empty(), "{c:?}");
    refused(&check(&expect[3].1), "--jobz");
    refused(&check(&expect[4].1), "no_such_file.toml");
    refused(&check(&expect[5].1), "env.horizn");
    refused(&check(&expect[6].1), "--peak");
    // Upper-case RUN is a placeholder: the synopsis' flags are real.
    assert!(check(&expect[7].1).problems.is_empty());
    refused(&check("runner sample results/x --seed x"), "does not parse");
    refused(&check(&expect[8].1), "no_such_test");
    let c = check(&expect[9].1);
    assert!(!c.synopsis && c.problems.is_empty(), "{c:?}");
    refused(
        &check("cargo run --release -- experiments/grid_d4_h32_tb.toml --set seed=x"),
        "seed",
    );
    refused(
        &check("cargo build --features no_such_feature"),
        "no_such_feature",
    );
    refused(
        &check("runner score examples/no_such.toml"),
        "examples/no_such.toml",
    );
    refused(
        &check("runner validate experiments/no_such_*.toml"),
        "no_such_*",
    );
}

/// CI (`.ci/run`) runs the README's test command: the README keeps it as a
/// line of a shell block, and the script runs that same line.
#[test]
fn the_readme_keeps_the_test_command_ci_runs() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(
        commands_in(&readme)
            .iter()
            .any(|s| s.text == "cargo test --release"),
        "README.md lost its fenced `cargo test --release` line"
    );
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    assert!(ci.lines().any(|l| l.trim() == "cargo test --release"));
}

/// Every relative link of the README and the book resolves to a file inside
/// the repository, with an existing heading for its anchor; every repository
/// path in inline code exists; nothing points outside the repository.
#[test]
fn links_and_repository_paths_resolve() {
    let root = root();
    let mut problems = Vec::new();
    let mut anchor_cache: HashMap<PathBuf, BTreeSet<String>> = HashMap::new();
    for file in markdown_files() {
        let md = std::fs::read_to_string(&file).unwrap();
        let at = |line: usize| format!("{}:{line}", rel(&file));
        if md.contains("../shared") {
            problems.push(format!("{}: mentions ../shared", rel(&file)));
        }
        let prose = prose_of(&md);
        for (line, target) in links(&without_code(&prose)) {
            if target.starts_with("http://")
                || target.starts_with("https://")
                || target.starts_with("mailto:")
            {
                continue;
            }
            let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let resolved = if path.is_empty() {
                file.clone()
            } else if path.starts_with('/') {
                problems.push(format!("{}: absolute link `{target}`", at(line)));
                continue;
            } else {
                normalize(&file.parent().unwrap().join(path))
            };
            if !resolved.starts_with(&root) {
                problems.push(format!(
                    "{}: `{target}` points outside the repository",
                    at(line)
                ));
                continue;
            }
            if !resolved.exists() {
                problems.push(format!("{}: `{target}`: no such file", at(line)));
                continue;
            }
            if !anchor.is_empty() {
                let set = anchor_cache.entry(resolved.clone()).or_insert_with(|| {
                    anchors(&std::fs::read_to_string(&resolved).unwrap_or_default())
                });
                if !set.contains(anchor) {
                    problems.push(format!(
                        "{}: `{target}`: no heading with anchor `{anchor}` in {}",
                        at(line),
                        rel(&resolved)
                    ));
                }
            }
        }
        for (line, span) in code_spans(&prose) {
            let p = span.trim_end_matches([':', ',', ';']);
            if p.contains(char::is_whitespace) || !names_repo_path(p) || is_placeholder(p) {
                continue;
            }
            let exists = match p.find('*') {
                Some(k) => root.join(&p[..p[..k].rfind('/').unwrap_or(0)]).is_dir(),
                None => root.join(p).exists(),
            };
            if !exists {
                problems.push(format!("{}: `{p}` does not exist", at(line)));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The book: `docs/book.toml` takes docs/ itself as its source, and
/// `docs/SUMMARY.md` lists every chapter of docs/ (each once, each existing).
#[test]
fn the_book_lists_every_chapter() {
    let docs = root().join("docs");
    let book = std::fs::read_to_string(docs.join("book.toml")).unwrap();
    assert!(book.contains("[book]") && book.lines().any(|l| l.replace(' ', "") == "src=\".\""));
    let summary = std::fs::read_to_string(docs.join("SUMMARY.md")).unwrap();
    let listed: Vec<String> = links(&summary).into_iter().map(|(_, t)| t).collect();
    let unique: BTreeSet<&String> = listed.iter().collect();
    assert_eq!(
        unique.len(),
        listed.len(),
        "a chapter listed twice: {listed:?}"
    );
    for t in &listed {
        assert!(
            docs.join(t).is_file(),
            "SUMMARY.md lists {t}, which does not exist"
        );
    }
    let mut missing = Vec::new();
    for e in std::fs::read_dir(&docs).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().to_string();
        if name.ends_with(".md") && name != "SUMMARY.md" && !unique.contains(&name) {
            missing.push(name);
        }
    }
    assert!(
        missing.is_empty(),
        "chapters missing from docs/SUMMARY.md: {missing:?}"
    );
}

/// Anchors are made as GitHub and mdBook make them (a repeated heading gets
/// `-1`), and links inside code are not links.
#[test]
fn anchors_and_links_are_read_as_the_renderers_read_them() {
    let md = "# Title\n\n## Bit sequences (`kind = \"bitseq\"`; not a task)\n\n### `wall_s`\n\n\
              ## Title\n\n```toml\n# not a heading\n```\n\nSee [a](b.md#c) and `[not](a link)`.\n";
    let got: Vec<String> = anchors(md).into_iter().collect();
    assert_eq!(
        got,
        [
            "bit-sequences-kind--bitseq-not-a-task",
            "title",
            "title-1",
            "wall_s"
        ]
    );
    let found: Vec<(usize, String)> = links(&without_code(&prose_of(md)));
    assert_eq!(found, [(13, "b.md#c".to_string())]);
}
