//! `runner show`: the resolved experiment (every default filled in, what a
//! run records as its `config.toml`) as TOML, each value followed by where
//! it comes from (docs/cli.md "runner show"):
//!
//! * `# file`, `# --set`, `# RUNNER_ENV__HORIZON` (an environment
//!   variable), `# sweep` (a value of the `[sweep]` table, with `--index`):
//!   the layer that set it;
//! * `# default`: the key's own default, the same on every environment
//!   (`# the file's directory` for a declared task's `env.dir`);
//! * `# task table (tfbind8)`, `# grid default (docs/grid.md)`, `# diffusion
//!   default (docs/diffusion.md)`: filled in by the plan for this
//!   environment.
//!
//! Of a sweep it shows the base (the file without the sweep's values) and
//! says how many runs it has, or run K with `--index K`.

use std::path::Path;

use crate::config::{ConfigError, ExperimentFile, SetArg, Sources};
use crate::plan::{self, Plan};
use crate::sweep::Expansion;

/// The text `runner show` prints for `source` with `sets` (run `index` of
/// a sweep, or its base), results under `out`.
pub fn show(
    source: &ExperimentFile,
    sets: &[SetArg],
    index: Option<usize>,
    out: &Path,
) -> Result<String, ConfigError> {
    let file = source.path.display();
    let expansion = Expansion::new(source, sets)?;
    let n = expansion.len();
    let mut head = vec![format!(
        "# runner show {file}: the resolved experiment (a run's config.toml); after each value,\n\
         # where it comes from: file, --set, RUNNER_* (an environment variable), sweep, default\n\
         # (the key's own), or the environment's defaults (task table, grid or diffusion default)"
    )];
    let (run_sets, dir) = match index {
        Some(k) if k >= n => {
            return Err(ConfigError::Invalid {
                path: source.path.clone(),
                messages: vec![format!(
                    "--index {k} is out of range: the sweep has {n} run(s) (0..{n})"
                )],
            })
        }
        Some(k) => {
            let spec = expansion.one(k)?;
            head.push(format!("# run {k} of {n}: {}", spec.id));
            (expansion.sets_of(k)?, Some(spec.id))
        }
        None if n > 1 => {
            head.push(format!(
                "# a sweep of {n} runs varying {}; below is its base (the file without the \
                 sweep's values); `runner show {file} --index K` shows run K (0..{n})",
                expansion.varied_keys().join(", ")
            ));
            (sets.to_vec(), None)
        }
        None => (sets.to_vec(), Some(expansion.one(0)?.id)),
    };
    let (exp, sources) = plan::load_experiment(source, &run_sets)?;
    let mut plan = plan::resolve(&exp).map_err(|e| {
        let e = sources.invalid(&e);
        match (index, e) {
            (None, ConfigError::Invalid { path, mut messages }) if n > 1 => {
                messages.push(format!(
                    "(the sweep's base alone; `runner show {file} --index K` shows run K)"
                ));
                ConfigError::Invalid { path, messages }
            }
            (_, e) => e,
        }
    })?;
    if index.is_some() {
        plan.resolved.sweep = None;
    }
    let results = out.join(&plan.resolved.name);
    head.push(match &dir {
        Some(id) => format!("# results: {}", results.join(id).display()),
        None => format!("# results: {}/<run id>", results.display()),
    });
    for w in &plan.warnings {
        head.push(format!("# warning: {w}"));
    }
    let loaded = toml::Value::try_from(&exp).ok();
    let body = annotate(&plan, loaded.as_ref(), &sources);
    Ok(format!("{}\n\n{body}", head.join("\n")))
}

/// The resolved experiment's TOML with the origin of every value.
fn annotate(plan: &Plan, loaded: Option<&toml::Value>, sources: &Sources) -> String {
    let text = toml::to_string(&plan.resolved).expect("an experiment serializes to TOML");
    let resolved = toml::Value::try_from(&plan.resolved).ok();
    let filled = plan.family.defaults_origin();
    let origin = |path: &[String]| -> String {
        if let Some(o) = sources.origin(&path.join(".")) {
            return o;
        }
        let get =
            |v: Option<&toml::Value>| path.iter().try_fold(v?, |v, k| v.get(k.as_str())).cloned();
        match get(loaded) {
            // A declared task's `dir` defaults to the file's directory.
            Some(_) if path == ["env", "dir"] => "the file's directory".to_string(),
            Some(v) if Some(&v) == get(resolved.as_ref()).as_ref() => "default".to_string(),
            _ => filled.clone(),
        }
    };
    let mut table: Vec<String> = Vec::new();
    let mut lines: Vec<(String, Option<String>)> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(header) = trimmed
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .filter(|h| !h.starts_with('['))
        {
            table = split_key(header);
            lines.push((line.to_string(), None));
            continue;
        }
        match line.split_once(" = ") {
            Some((key, _)) if !key.starts_with(' ') && !key.is_empty() => {
                let mut path = table.clone();
                path.extend(split_key(key));
                lines.push((line.to_string(), Some(origin(&path))));
            }
            _ => lines.push((line.to_string(), None)),
        }
    }
    let width = lines
        .iter()
        .filter(|(_, o)| o.is_some())
        .map(|(l, _)| l.chars().count())
        .filter(|&w| w <= 48)
        .max()
        .unwrap_or(0);
    lines
        .into_iter()
        .map(|(line, o)| match o {
            Some(o) => format!("{line:<width$}  # {o}"),
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// The parts of a TOML key as written (`a.b`, `"behaviour.kind"`).
fn split_key(key: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in key.trim().chars() {
        match c {
            '"' => quoted = !quoted,
            '.' if !quoted => parts.push(std::mem::take(&mut cur).trim().to_string()),
            c => cur.push(c),
        }
    }
    parts.push(cur.trim().to_string());
    parts
}

#[cfg(test)]
mod tests {
    use super::split_key;

    #[test]
    fn keys_split_outside_quotes() {
        assert_eq!(split_key("sweep.grid"), vec!["sweep", "grid"]);
        assert_eq!(split_key("\"behaviour.kind\""), vec!["behaviour.kind"]);
    }
}
