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

use super::Experiment;
use crate::check::Invalid;
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

/// One `--set KEY=VALUE` override (dotted key path, TOML value syntax; a value
/// that is not valid TOML is taken as a string, so `--set behaviour.kind=teacher` works).
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
        arg: arg.to_string(),
        why: why.to_string(),
    };
    let (key, raw) = arg
        .split_once('=')
        .ok_or_else(|| bad("expected KEY=VALUE"))?;
    let key = key.trim();
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
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    Ok(SetArg {
        key: key.to_string(),
        value,
        origin: None,
    })
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
    /// The error of `invalid`, naming the file and where its key was set.
    pub fn invalid(&self, invalid: &Invalid) -> ConfigError {
        let src = source_of(&self.fig, &invalid.key);
        ConfigError::Invalid {
            path: self.path.clone(),
            messages: vec![format!("{src}{invalid}")],
        }
    }
}

/// Load and layer an experiment file: what the user wrote, with serde's
/// defaults; types, unknown keys and unknown kinds are checked here, values
/// and combinations by the plan (`crate::plan::load`).
pub fn load(path: &Path, sets: &[SetArg]) -> Result<(Experiment, Sources), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        cause: source,
    })?;
    if let Err(e) = toml::from_str::<toml::Table>(&text) {
        return Err(ConfigError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string().trim().to_string(),
        });
    }
    let env = Env::prefixed("RUNNER_")
        .split("__")
        .filter(|k| {
            let first = k.as_str().split('.').next().unwrap_or("");
            TOP_LEVEL_KEYS.iter().any(|t| t.eq_ignore_ascii_case(first))
        })
        .lowercase(true);
    let mut fig = Figment::new().merge(Toml::file_exact(path)).merge(env);
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
    let exp: Experiment = fig
        .extract()
        .map_err(|errs| invalid(errs.into_iter().map(|e| describe(&fig, e)).collect()))?;
    let sources = Sources {
        path: path.to_path_buf(),
        fig,
    };
    Ok((exp, sources))
}

/// Where a key's value came from, as a prefix: `"file.toml: "`, `"--set x: "`...
fn source_of(fig: &Figment, key: &str) -> String {
    let mut key = key.to_string();
    // A missing key has no source; name the nearest enclosing table's.
    loop {
        if let Some(md) = fig.find_metadata(&key) {
            let keys: Vec<String> = key.split('.').map(str::to_string).collect();
            return match &md.source {
                Some(figment::Source::File(p)) => format!("{}: ", p.display()),
                _ if md.name.starts_with("--set") => format!("{}: ", md.name),
                _ if md.name.contains("environment") => format!(
                    "environment variable RUNNER_{}: ",
                    keys.join("__").to_uppercase()
                ),
                _ => format!("{}: ", md.name),
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
    let list = |xs: &[&str]| {
        xs.iter()
            .map(|x| format!("`{x}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match kind {
        Kind::UnknownField(field, allowed) => {
            let full = if path.last() == Some(field) {
                key.clone()
            } else if key.is_empty() {
                field.clone()
            } else {
                format!("{key}.{field}")
            };
            format!(
                "{}unknown key `{full}`; allowed keys here: {}",
                source_of(fig, &full),
                list(allowed)
            )
        }
        Kind::UnknownVariant(v, allowed) => {
            format!(
                "{src}unknown value `{v}` for `{key}`; allowed: {}",
                list(allowed)
            )
        }
        Kind::InvalidType(actual, expected) => {
            format!("{src}wrong type for `{key}`: found {actual}, expected {expected}")
        }
        Kind::InvalidValue(actual, expected) => {
            format!("{src}invalid value for `{key}`: found {actual}, expected {expected}")
        }
        Kind::MissingField(f) => {
            let full = if key.is_empty() {
                f.to_string()
            } else {
                format!("{key}.{f}")
            };
            format!("{src}missing key `{full}`")
        }
        other => format!("{src}`{key}`: {other}"),
    }
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
            "{}unknown value `{kind}` for `{key}.kind`; allowed: {allowed}",
            source_of(fig, &format!("{key}.kind"))
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
