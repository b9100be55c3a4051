//! Loading an experiment file: figment layers and precise error messages.
//!
//! Layers, lowest to highest: built-in defaults (serde defaults of the types)
//! < the TOML file < `RUNNER_`-prefixed environment variables (`__` separates
//! levels, e.g. `RUNNER_ENV__HORIZON=16`; only variables whose first level is a
//! top-level key of the experiment are read, so `RUNNER_DATASETS` and
//! unrelated `RUNNER_*` variables are left alone) < `--set KEY=VALUE` flags.

use std::path::{Path, PathBuf};

use figment::error::Kind;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

use super::{keys, Experiment};
use crate::check::{excerpt, Invalid};
use crate::registry::{
    BehaviourConfig, BufferConfig, EnvConfig, LocalSearchConfig, ObjectiveConfig, PolicyConfig,
};

/// Top-level keys of an experiment file (also the keys read from `RUNNER_*`).
pub const TOP_LEVEL_KEYS: &[&str] = &[
    "name",
    "seed",
    "label",
    "device",
    "env",
    "policy",
    "objective",
    "behaviour",
    "buffer",
    "local_search",
    "train",
    "eval",
    "sweep",
    "slurm",
];

/// The top-level keys whose values are scalars; every other one is a table.
const SCALAR_KEYS: &[&str] = &["name", "seed", "label", "device"];

/// The nested keys whose values are tables (maps).
const NESTED_TABLE_KEYS: &[&str] = &["sweep.grid", "sweep.zip"];

/// The keys whose values are tables (structs or maps): the top-level keys
/// other than [`SCALAR_KEYS`], and [`NESTED_TABLE_KEYS`]. Serde would read an
/// array there by position, so [`load`] refuses anything but a table.
pub fn table_keys() -> impl Iterator<Item = &'static str> {
    TOP_LEVEL_KEYS
        .iter()
        .filter(|k| !SCALAR_KEYS.contains(k))
        .chain(NESTED_TABLE_KEYS)
        .copied()
}

/// What a value is, in TOML's words.
fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Dict(..) => "a table",
        Value::Array(..) => "an array",
        Value::String(..) => "a string",
        Value::Bool(..) => "a boolean",
        Value::Char(..) => "a character",
        Value::Num(..) => "a number",
        Value::Empty(..) => "nothing",
    }
}

/// A configuration that cannot be used, with a message naming file and key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The experiment file does not exist or cannot be read.
    #[error("cannot read experiment file {path}: {cause}")]
    Read {
        path: PathBuf,
        // Not `source`: the message carries it, so an error chain printed
        // with `{:#}` names the OS error once.
        cause: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    /// A `--set` argument is malformed.
    #[error("bad --set argument `{arg}`: {why}")]
    BadSet { arg: String, why: String },
    /// Keys, types or values that do not fit the experiment schema.
    #[error("invalid experiment {path}:\n{}", messages.iter().map(|m| format!("  - {m}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        path: PathBuf,
        messages: Vec<String>,
    },
}

/// One `--set KEY=VALUE` override (dotted key path, TOML value syntax; a
/// bare word that is not valid TOML is taken as a string, so `--set
/// behaviour.kind=teacher` works, but a value that starts like an array, a
/// table or a quoted string must be valid TOML).
#[derive(Debug, Clone, PartialEq)]
pub struct SetArg {
    /// Dotted key path, e.g. `env.horizon`.
    pub key: String,
    /// The value, parsed as TOML.
    pub value: toml::Value,
    /// Where the override comes from, as messages name it: `None` for a
    /// `--set` flag, else e.g. "the file's [sweep] table".
    pub origin: Option<&'static str>,
}

impl SetArg {
    /// An override of `key` made by the runner itself (a sweep's values, the
    /// bench's step count), named `origin` in messages.
    pub fn internal(key: &str, value: toml::Value, origin: &'static str) -> Self {
        SetArg {
            key: key.to_string(),
            value,
            origin: Some(origin),
        }
    }
}

/// Parse `KEY=VALUE`.
pub fn parse_set(arg: &str) -> Result<SetArg, ConfigError> {
    let bad = |why: &str| ConfigError::BadSet {
        arg: excerpt(arg),
        why: why.to_string(),
    };
    let (key, raw) = arg
        .split_once('=')
        .ok_or_else(|| bad("expected KEY=VALUE"))?;
    let key = key.trim();
    if let Some(c) = key.chars().find(|c| !c.is_ascii()) {
        let hint = match keys::ascii_spelling(key) {
            Some(k) => format!("; did you mean `{}`{}?", k.path, keys::kinds_note(k)),
            None => String::new(),
        };
        return Err(bad(&format!(
            "keys are ASCII (letters, digits, `_`, `-`, with `.` between levels), \
             and `{}` has {c:?}{hint}",
            excerpt(key)
        )));
    }
    let valid_key = !key.is_empty()
        && key.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
    if !valid_key {
        return Err(bad("KEY must be a dotted path like env.horizon"));
    }
    let raw = raw.trim();
    let digits = raw.strip_prefix(['-', '+']).unwrap_or(raw);
    if !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
        && raw.parse::<i64>().is_err()
    {
        // Not a string: an integer TOML cannot hold.
        return Err(bad(&format!(
            "{raw} is outside the integers a TOML value can hold ({} to {})",
            i64::MIN,
            i64::MAX
        )));
    }
    let value = match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.to_string())),
        Err(e) => match toml_shape(raw) {
            // A bare word: a string.
            None => toml::Value::String(raw.to_string()),
            // It starts like an array, a table or a string: a typo there
            // must not silently become a string.
            Some(shape) => {
                let at = e
                    .span()
                    .map(|s| format!(" at character {}", s.start.saturating_sub(4) + 1))
                    .unwrap_or_default();
                let why = e.message().trim().replace('\n', "; ");
                return Err(bad(&format!(
                    "the value `{}` starts like {shape} but is not valid TOML{at}: {why}{}",
                    excerpt(raw),
                    set_hint(key, raw)
                )));
            }
        },
    };
    Ok(SetArg {
        key: key.to_string(),
        value,
        origin: None,
    })
}

/// What `raw` looks like when it starts like a structured TOML value (an
/// array, an inline table, a quoted string), in a message's words.
fn toml_shape(raw: &str) -> Option<&'static str> {
    match raw.chars().next()? {
        '[' => Some("a TOML array"),
        '{' => Some("a TOML inline table"),
        '"' | '\'' => Some("a quoted string"),
        _ => None,
    }
}

/// The advice for a `--set` value that does not parse: with its bare words
/// quoted, when that makes it valid (`[student]` -> `["student"]`), under
/// the full key path when `key` is a nested key given at the top level
/// (`schedule` -> `behaviour.schedule`).
fn set_hint(key: &str, raw: &str) -> String {
    let full = nested_path(key);
    let fixed = quote_bare_words(raw);
    let parses = fixed != raw && toml::from_str::<toml::Table>(&format!("v = {fixed}")).is_ok();
    let moved = match &full {
        Some(f) => format!(" (`{key}` is the key `{f}`)"),
        None => String::new(),
    };
    let key = full.as_deref().unwrap_or(key);
    if parses {
        let example = format!("{key}={fixed}");
        format!(
            "; words in an array or table are strings and need double quotes, and the \
             shell needs single quotes around the whole argument{moved}: --set {}",
            crate::sweep::slurm::sh(&excerpt(&example))
        )
    } else if raw.starts_with(['[', '{']) {
        // Meant as text: a TOML string in double quotes.
        let quoted = format!("\"{}\"", raw.replace('\\', "\\\\").replace('"', "\\\""));
        format!(
            "{}; to give it as a string, quote it: --set {}",
            if moved.is_empty() {
                String::new()
            } else {
                format!(";{moved}")
            },
            crate::sweep::slurm::sh(&excerpt(&format!("{key}={quoted}")))
        )
    } else if !moved.is_empty() {
        format!(";{moved}")
    } else {
        String::new()
    }
}

/// The one nested key path whose last part is `key`, when `key` is not a
/// top-level key (`schedule` -> `behaviour.schedule`).
fn nested_path(key: &str) -> Option<String> {
    if key.contains('.') || TOP_LEVEL_KEYS.contains(&key) {
        return None;
    }
    match keys::ending_in(key).as_slice() {
        [one] => Some(one.path.clone()),
        _ => None,
    }
}

/// `raw` with every bare word outside quotes that is not a TOML value of
/// its own (a number, `true`, `false`, `inf`, `nan`) or a key (followed by
/// `=`) put in double quotes: `[student, buffer]` -> `["student", "buffer"]`.
fn quote_bare_words(raw: &str) -> String {
    let chars: Vec<char> = raw.chars().collect();
    let mut out = String::with_capacity(raw.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' {
            // Copy a quoted string whole (to its closing quote, if any).
            let mut j = i + 1;
            while j < chars.len() && chars[j] != c {
                j += if c == '"' && chars[j] == '\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(chars.len());
            out.extend(&chars[i..end]);
            i = end;
            continue;
        }
        let delim = |c: char| c.is_whitespace() || "[]{},=\"'".contains(c);
        if delim(c) {
            out.push(c);
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && !delim(chars[i]) {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        let is_key = chars[i..]
            .iter()
            .find(|c| !c.is_whitespace())
            .is_some_and(|&c| c == '=');
        let is_value = toml::from_str::<toml::Table>(&format!("v = {word}")).is_ok();
        if is_key || is_value {
            out.push_str(&word);
        } else {
            out.push('"');
            out.push_str(&word);
            out.push('"');
        }
    }
    out
}

impl Provider for SetArg {
    fn metadata(&self) -> Metadata {
        match self.origin {
            None => Metadata::named(format!("--set {}", self.key)),
            Some(origin) => Metadata::named(format!("{origin} (`{}`)", self.key)),
        }
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let value = Value::serialize(&self.value)?;
        let nested = figment::util::nest(&self.key, value);
        let dict = nested
            .into_dict()
            .ok_or_else(|| figment::Error::from(format!("bad key {}", self.key)))?;
        Ok(Profile::Default.collect(dict))
    }
}

/// Where each key of a loaded experiment came from (the file, a variable, a
/// flag), to name it in the messages of checks made after loading.
pub struct Sources {
    path: PathBuf,
    fig: Figment,
}

impl Sources {
    /// Which layer set the value at the dotted `key` (`None`: no layer did,
    /// the value is a default): `file`, `--set`, the environment variable
    /// (`RUNNER_ENV__HORIZON`), or the runner's own origin (`sweep`).
    pub fn origin(&self, key: &str) -> Option<String> {
        let md = self.fig.find_metadata(key)?;
        Some(match layer(md, key) {
            Layer::File(_) => "file".into(),
            Layer::Set => "--set".into(),
            Layer::Env(var) => var,
            Layer::Other(name) => name,
        })
    }

    /// The error of `invalid`, naming the file and where its key was set.
    pub fn invalid(&self, invalid: &Invalid) -> ConfigError {
        let src = source_of(&self.fig, &invalid.key);
        ConfigError::Invalid {
            path: self.path.clone(),
            messages: vec![format!("{src}{invalid}")],
        }
    }
}

/// An experiment file read into memory once: every load of it (each run of
/// a sweep, the thread decision, the check of `runner slurm`) parses this
/// text, so a file that can be read only once (a pipe, `<(...)`) works.
#[derive(Debug, Clone)]
pub struct ExperimentFile {
    /// The path, as messages name it.
    pub path: PathBuf,
    /// Its content.
    pub text: String,
}

impl ExperimentFile {
    /// Read `path` (once).
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            cause: source,
        })?;
        Ok(ExperimentFile {
            path: path.to_path_buf(),
            text,
        })
    }
}

impl Provider for ExperimentFile {
    fn metadata(&self) -> Metadata {
        Metadata::from("TOML file", figment::Source::File(self.path.clone()))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Toml::string(&self.text).data()
    }
}

/// Load and layer an experiment file: what the user wrote, with serde's
/// defaults; types, unknown keys and unknown kinds are checked here, values
/// and combinations by the plan (`crate::plan::load`).
///
/// `kinds` judges the component kinds of the experiment with its component
/// tables cut down to their `kind`: when loading fails, a kind it refuses is
/// reported first (the plan passes its resolution; config does not know
/// which environment takes which kinds).
pub fn load_file(
    file: &ExperimentFile,
    sets: &[SetArg],
    kinds: KindCheck,
) -> Result<(Experiment, Sources), ConfigError> {
    let path = file.path.as_path();
    if let Err(e) = toml::from_str::<toml::Table>(&file.text) {
        return Err(ConfigError::Syntax {
            path: path.to_path_buf(),
            message: syntax_message(&file.text, &e),
        });
    }
    let env = Env::prefixed("RUNNER_")
        .split("__")
        .filter(|k| {
            let first = k.as_str().split('.').next().unwrap_or("");
            TOP_LEVEL_KEYS.iter().any(|t| t.eq_ignore_ascii_case(first))
        })
        .lowercase(true);
    let mut fig = Figment::new().merge(file.clone()).merge(env);
    for s in sets {
        fig = fig.merge(s.clone());
    }
    let invalid = |messages| ConfigError::Invalid {
        path: path.to_path_buf(),
        messages,
    };
    // serde would fill a struct from an array by position (`train = [7, 1.0]`
    // as steps and budget_scale): every table must be a table.
    let wrong: Vec<String> = table_keys()
        .filter_map(|key| {
            let v = fig.find_value(key).ok()?;
            (!matches!(v, Value::Dict(..))).then(|| {
                format!(
                    "{}`{key}` must be a table (`[{key}]` or `{key} = {{ ... }}`), found {}",
                    source_of(&fig, key),
                    kind_name(&v)
                )
            })
        })
        .collect();
    if !wrong.is_empty() {
        return Err(invalid(wrong));
    }
    let mut exp: Experiment = match fig.extract() {
        Ok(exp) => exp,
        Err(errs) => {
            // A kind the environment refuses explains the keys its table
            // does not know (`behaviour.kind = "gafn"` in a sequence file
            // with a teacher's `schedule`): its refusal comes first, and the
            // errors inside that table are left out.
            let refused = refused_kind(&fig, kinds);
            let table = refused.as_ref().and_then(|r| r.key.split('.').next());
            let mut messages: Vec<String> = refused
                .iter()
                .map(|r| format!("{}{r}", source_of(&fig, &r.key)))
                .collect();
            messages.extend(
                errs.into_iter()
                    .filter(|e| table.is_none() || e.path.first().map(String::as_str) != table)
                    .map(|e| describe(&fig, e)),
            );
            return Err(invalid(messages));
        }
    };
    // A declared task's files and program are found from the experiment
    // file's directory (recorded as an absolute `env.dir`).
    let file_dir = path.parent().unwrap_or(Path::new("."));
    match &mut exp.env {
        crate::registry::EnvConfig::Sequence(c) => c.set_base_dir(file_dir),
        crate::registry::EnvConfig::Energy(c) => c.set_base_dir(file_dir),
        _ => {}
    }
    let sources = Sources {
        path: path.to_path_buf(),
        fig,
    };
    Ok((exp, sources))
}

/// A judge of an experiment's component kinds (see [`load_file`]): the
/// refusal, if any.
pub type KindCheck = fn(&Experiment) -> Option<Invalid>;

/// The component tables whose `kind` the environment may refuse.
const REFUSABLE: &[&str] = &["policy", "objective", "behaviour", "buffer", "local_search"];

/// The environment's refusal of a component's kind (`behaviour.kind`:
/// "gafn is implemented for the grid only"), found by resolving the
/// experiment with each of [`REFUSABLE`]'s tables cut down to its `kind`;
/// `None` when that experiment loads and its kinds are accepted, or when it
/// does not load (the errors are then the table's own).
fn refused_kind(fig: &Figment, kinds: KindCheck) -> Option<Invalid> {
    let mut dict = fig.extract::<Dict>().ok()?;
    for table in REFUSABLE {
        if let Some(Value::Dict(tag, d)) = dict.get(*table) {
            let kind: Dict = d
                .iter()
                .filter(|(k, _)| *k == "kind")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let tag = *tag;
            dict.insert(table.to_string(), Value::Dict(tag, kind));
        }
    }
    let exp: Experiment = Figment::from(Serialized::defaults(dict)).extract().ok()?;
    let e = kinds(&exp)?;
    let table = e.key.strip_suffix(".kind")?;
    REFUSABLE.contains(&table).then_some(e)
}

/// The layer a value came from.
enum Layer {
    /// The experiment file.
    File(PathBuf),
    /// A `--set` flag.
    Set,
    /// An environment variable, by name.
    Env(String),
    /// The runner itself (a sweep's values, the bench's steps), as named.
    Other(String),
}

/// The layer of the value at `key` whose metadata is `md`.
fn layer(md: &Metadata, key: &str) -> Layer {
    match &md.source {
        Some(figment::Source::File(p)) => Layer::File(p.clone()),
        _ if md.name.starts_with("--set") => Layer::Set,
        _ if md.name.contains("environment") => {
            let keys: Vec<&str> = key.split('.').collect();
            Layer::Env(format!("RUNNER_{}", keys.join("__").to_uppercase()))
        }
        _ => Layer::Other(match md.name.strip_prefix(SWEEP_ORIGIN) {
            Some(_) => "sweep".to_string(),
            None => md.name.to_string(),
        }),
    }
}

/// How messages name a value set by a sweep's expansion (the origin of
/// its [`SetArg::internal`] values).
pub const SWEEP_ORIGIN: &str = "the file's [sweep] table";

/// Where a key's value came from, as a prefix: `"file.toml: "`, `"--set x: "`...
fn source_of(fig: &Figment, key: &str) -> String {
    let mut key = key.to_string();
    // A missing key has no source; name the nearest enclosing table's.
    loop {
        if let Some(md) = fig.find_metadata(&key) {
            return match layer(md, &key) {
                Layer::File(p) => format!("{}: ", p.display()),
                Layer::Env(var) => format!("environment variable {var}: "),
                Layer::Set | Layer::Other(_) => format!("{}: ", md.name),
            };
        }
        match key.rsplit_once('.') {
            Some((parent, _)) => key = parent.to_string(),
            None => return String::new(),
        }
    }
}

/// One figment error as a sentence naming the source, the key path and the
/// allowed values. Errors inside a component table are re-derived from the
/// selected variant's own struct to recover the exact key (see `registry`).
fn describe(fig: &Figment, err: figment::Error) -> String {
    let first = err.path.first().cloned().unwrap_or_default();
    let in_component = component_kinds(&first).is_some();
    let is_kind_error = err.path.len() == 2 && err.path[1] == "kind";
    if in_component && !is_kind_error {
        if let Some(msgs) = diagnose_component(fig, &first) {
            return msgs;
        }
    }
    sentence(fig, &err.path, &err.kind)
}

fn sentence(fig: &Figment, path: &[String], kind: &Kind) -> String {
    let key = path.join(".");
    let src = source_of(fig, &key);
    // As the user writes it: `behaviour.schedule[0]`, not `behaviour.schedule.0`.
    let shown = display_path(path);
    let list = |xs: &[&str]| {
        xs.iter()
            .map(|x| format!("`{x}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match kind {
        Kind::UnknownField(field, allowed) => {
            let (full, shown) = if path.last() == Some(field) {
                (key.clone(), shown)
            } else if key.is_empty() {
                (field.clone(), field.clone())
            } else {
                (format!("{key}.{field}"), format!("{shown}.{field}"))
            };
            // A nested key given at the top level: name where it belongs.
            let hint = match nested_path(&full) {
                Some(p) => format!("; `{full}` belongs in a table: did you mean `{p}`?"),
                None => String::new(),
            };
            format!(
                "{}unknown key `{}`; allowed keys here: {}{hint}",
                source_of(fig, &full),
                excerpt(&shown),
                list(allowed)
            )
        }
        Kind::UnknownVariant(v, allowed) => {
            format!(
                "{src}unknown value `{}` for `{shown}`; allowed: {}",
                excerpt(v),
                list(allowed)
            )
        }
        Kind::InvalidType(actual, expected) => {
            let actual = excerpt(&actual.to_string());
            format!("{src}wrong type for `{shown}`: found {actual}, expected {expected}")
        }
        Kind::InvalidValue(actual, expected) => {
            let actual = excerpt(&actual.to_string());
            format!("{src}invalid value for `{shown}`: found {actual}, expected {expected}")
        }
        Kind::MissingField(f) => {
            let full = if key.is_empty() {
                f.to_string()
            } else {
                format!("{shown}.{f}")
            };
            format!("{src}missing key `{full}`")
        }
        other => format!("{src}`{shown}`: {}", excerpt(&other.to_string())),
    }
}

/// A key path as the user writes it: array positions in brackets
/// (`behaviour.schedule[0]`).
fn display_path(path: &[String]) -> String {
    let mut out = String::new();
    for part in path {
        if !out.is_empty() && !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()) {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    out
}

/// The accepted kinds of the component table `key` (`None`: not a component).
fn component_kinds(key: &str) -> Option<&'static [&'static str]> {
    Some(match key {
        "env" => EnvConfig::KINDS,
        "policy" => PolicyConfig::KINDS,
        "objective" => ObjectiveConfig::KINDS,
        "behaviour" => BehaviourConfig::KINDS,
        "buffer" => BufferConfig::KINDS,
        "local_search" => LocalSearchConfig::KINDS,
        _ => return None,
    })
}

/// Re-check the component table `key` against its selected variant alone.
fn diagnose_component(fig: &Figment, key: &str) -> Option<String> {
    let kinds = component_kinds(key)?;
    let allowed = kinds
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let src = source_of(fig, key);
    let Ok(mut table) = fig.focus(key).extract::<Dict>() else {
        return Some(format!(
            "{src}`{key}` must be a table with a `kind` key; allowed kinds: {allowed}"
        ));
    };
    let kind = match table.remove("kind") {
        None => {
            return Some(format!(
                "{src}missing key `{key}.kind`; allowed kinds: {allowed}"
            ))
        }
        Some(Value::String(_, k)) => k,
        Some(other) => {
            return Some(format!(
                "{}wrong type for `{key}.kind`: found {:?}, expected one of {allowed}",
                source_of(fig, &format!("{key}.kind")),
                other.to_actual()
            ))
        }
    };
    let sub = Figment::from(Serialized::defaults(table.clone()));
    let checked = match key {
        "env" => EnvConfig::check_table(&kind, &sub),
        "policy" => PolicyConfig::check_table(&kind, &sub),
        "objective" => ObjectiveConfig::check_table(&kind, &sub),
        "behaviour" => BehaviourConfig::check_table(&kind, &sub),
        "buffer" => BufferConfig::check_table(&kind, &sub),
        _ => LocalSearchConfig::check_table(&kind, &sub),
    };
    match checked {
        None => Some(format!(
            "{}unknown value `{}` for `{key}.kind`; allowed: {allowed}",
            source_of(fig, &format!("{key}.kind")),
            excerpt(&kind)
        )),
        Some(Ok(())) => None,
        Some(Err(errs)) => Some(
            errs.into_iter()
                .map(|e| {
                    let mut path = vec![key.to_string()];
                    path.extend(e.path.iter().cloned());
                    // figment reports a bad unit-variant string without its
                    // key; recover the key holding that string.
                    if let (true, Kind::UnknownVariant(v, _)) = (e.path.is_empty(), &e.kind) {
                        let holder = table
                            .iter()
                            .find(|(_, val)| matches!(val, Value::String(_, s) if s == v));
                        if let Some((k, _)) = holder {
                            path.push(k.clone());
                        }
                    }
                    sentence(fig, &path, &e.kind)
                })
                .collect::<Vec<_>>()
                .join("\n  - "),
        ),
    }
}

/// The message of a TOML syntax error in `text`: the parser's own (the line,
/// a caret, what is wrong) with every line cut to [`excerpt`]'s length, and
/// for a key with a non-ASCII letter (`λ = 0.9`), that keys are ASCII and
/// the key it may mean (`lambda`).
fn syntax_message(text: &str, e: &toml::de::Error) -> String {
    let mut message = e
        .to_string()
        .trim()
        .lines()
        .map(excerpt)
        .collect::<Vec<_>>()
        .join("\n");
    let Some(span) = e.span() else {
        return message;
    };
    let start = span.start.min(text.len());
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    let key = line.split('=').next().unwrap_or("").trim();
    if let Some(c) = key.chars().find(|c| !c.is_ascii()) {
        // The table the line is in: the last `[header]` above it.
        let table = text[..line_start]
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| l.starts_with('[') && !l.starts_with("[["))
            .map(|l| l.trim_matches(['[', ']']).trim().to_string());
        let full = match table {
            Some(t) if !t.is_empty() => format!("{t}.{key}"),
            _ => key.to_string(),
        };
        let hint = match keys::ascii_spelling(&full) {
            Some(k) => format!("; did you mean `{}`{}?", k.path, keys::kinds_note(k)),
            None => String::new(),
        };
        message.push_str(&format!(
            "\nkeys are ASCII (letters, digits, `_`, `-`), and `{}` has {c:?}{hint}",
            excerpt(key)
        ));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn why(arg: &str) -> String {
        match parse_set(arg) {
            Err(ConfigError::BadSet { why, .. }) => why,
            other => panic!("{arg}: {other:?}"),
        }
    }

    /// Bare words are strings; a value that starts like an array, a table
    /// or a quoted string and does not parse is an error showing the value
    /// and the parser's reason.
    #[test]
    fn set_values_that_start_like_toml_must_parse() {
        let v = |arg: &str| parse_set(arg).unwrap().value;
        assert_eq!(
            v("behaviour.kind=teacher"),
            toml::Value::String("teacher".into())
        );
        assert_eq!(v("label=a[1"), toml::Value::String("a[1".into()));
        assert_eq!(v("env.horizon=8"), toml::Value::Integer(8));
        assert!(matches!(v("sweep.seeds=[0, 1]"), toml::Value::Array(a) if a.len() == 2));
        for (arg, want) in [
            (
                "label=[1,2",
                "the value `[1,2` starts like a TOML array but is not valid TOML",
            ),
            ("label=[1,2", "expected `]`"),
            ("env={kind = grid", "starts like a TOML inline table"),
            ("label=\"abc", "starts like a quoted string"),
            ("label='abc", "starts like a quoted string"),
        ] {
            let w = why(arg);
            assert!(w.contains(want), "{arg}: {w}");
        }
    }

    /// Bare words in an array get a corrected, shell-quoted example, under
    /// the full key when a nested key was given at the top level.
    #[test]
    fn bare_words_in_arrays_get_a_quoted_example() {
        let w = why("schedule=[student]");
        assert!(
            w.contains("--set 'behaviour.schedule=[\"student\"]'"),
            "{w}"
        );
        assert!(
            w.contains("`schedule` is the key `behaviour.schedule`"),
            "{w}"
        );
        let w = why("behaviour.schedule=[student, [teacher->buffer, buffer]]");
        assert!(
            w.contains(r#"--set 'behaviour.schedule=["student", ["teacher->buffer", "buffer"]]'"#),
            "{w}"
        );
        let w = why("behaviour={kind = teacher, c = 19}");
        assert!(
            w.contains(r#"--set 'behaviour={kind = "teacher", c = 19}'"#),
            "{w}"
        );
        // Nothing to quote: the value as a string.
        let w = why("label=[draft] run");
        assert!(
            w.contains(r#"quote it: --set 'label="[draft] run"'"#),
            "{w}"
        );
        assert!(parse_set(r#"label="[draft] run""#).is_ok());
        assert_eq!(
            quote_bare_words("[1, true, \"a b\", x]"),
            "[1, true, \"a b\", \"x\"]"
        );
    }

    /// A key with a non-ASCII letter says keys are ASCII and spells it out
    /// where that is a key.
    #[test]
    fn non_ascii_keys_are_explained() {
        let w = why("objective.λ=0.9");
        assert!(w.contains("keys are ASCII"), "{w}");
        assert!(w.contains("did you mean `objective.lambda`"), "{w}");
        assert!(w.contains("`subtb`"), "{w}");
        let w = why("objective.µ=0.9");
        assert!(
            w.contains("keys are ASCII") && !w.contains("did you mean"),
            "{w}"
        );
    }

    /// A huge argument is quoted cut, with its length.
    #[test]
    fn huge_set_arguments_are_cut_in_messages() {
        let arg = format!("label=[{}", "x".repeat(100_000));
        let e = parse_set(&arg).unwrap_err().to_string();
        assert!(e.len() < 2000, "{} bytes", e.len());
        assert!(e.contains("bytes)"), "{e}");
    }

    /// Array positions read as the user writes them.
    #[test]
    fn paths_show_array_positions_in_brackets() {
        let p = |xs: &[&str]| display_path(&xs.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(p(&["behaviour", "schedule", "0"]), "behaviour.schedule[0]");
        assert_eq!(
            p(&["behaviour", "schedule", "2", "1"]),
            "behaviour.schedule[2][1]"
        );
        assert_eq!(p(&["sweep", "seeds"]), "sweep.seeds");
    }

    /// An experiment file is read once: loading parses the text in memory.
    #[test]
    fn an_experiment_file_is_parsed_from_memory() {
        let file = ExperimentFile {
            path: PathBuf::from("/nonexistent/x.toml"),
            text: "name = \"x\"\n[env]\nkind = \"grid\"\nndim = 2\nhorizon = 8\n\
                   [policy]\nkind = \"mlp\"\n[objective]\nkind = \"tb\"\n\
                   [behaviour]\nkind = \"on_policy\"\nepsilon = 3.0\n"
                .into(),
        };
        let (exp, sources) = load_file(&file, &[], |_| None).unwrap();
        assert_eq!(exp.name, "x");
        // Messages still name the path.
        let e = sources.invalid(&Invalid::new("behaviour.epsilon", "must be in [0, 1]"));
        assert!(
            e.to_string()
                .contains("/nonexistent/x.toml: `behaviour.epsilon`"),
            "{e}"
        );
    }
}
