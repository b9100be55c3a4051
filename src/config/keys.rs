//! Every key path an experiment file can hold, read from its JSON Schema
//! (the same types serde reads), for the suggestions of messages: a key
//! given at the wrong level (`schedule` for `behaviour.schedule`), or spelt
//! with a non-ASCII letter (`objective.λ` for `objective.lambda`).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::Value;

use super::Experiment;

/// One key path and the component kinds that have it (empty: every kind,
/// or a table without kinds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPath {
    /// Dotted path, e.g. `behaviour.schedule`.
    pub path: String,
    /// The `kind`s of the component table that have this key (e.g.
    /// `["subtb"]` for `objective.lambda`); empty where every kind has it.
    pub kinds: Vec<String>,
}

/// Every key path of the experiment file, sorted.
pub fn all() -> &'static [KeyPath] {
    static KEYS: OnceLock<Vec<KeyPath>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let schema =
            serde_json::to_value(schemars::schema_for!(Experiment)).expect("the schema is JSON");
        let defs = schema.get("$defs").cloned().unwrap_or(Value::Null);
        // path -> (kinds that have it, whether some branch has no kind)
        let mut found: BTreeMap<String, (Vec<String>, bool)> = BTreeMap::new();
        walk(&schema, "", None, &defs, &mut found, 0);
        found
            .into_iter()
            .map(|(path, (kinds, any))| KeyPath {
                path,
                kinds: if any { Vec::new() } else { kinds },
            })
            .collect()
    })
}

/// Record the properties of `node` under `prefix` (`kind`: the component
/// kind of the branch being walked).
fn walk(
    node: &Value,
    prefix: &str,
    kind: Option<&str>,
    defs: &Value,
    found: &mut BTreeMap<String, (Vec<String>, bool)>,
    depth: usize,
) {
    if depth > 16 {
        return;
    }
    if let Some(name) = node
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
    {
        if let Some(def) = defs.get(name) {
            walk(def, prefix, kind, defs, found, depth + 1);
        }
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        for branch in node
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let own = branch
                .pointer("/properties/kind/const")
                .and_then(Value::as_str);
            walk(branch, prefix, own.or(kind), defs, found, depth + 1);
        }
    }
    let Some(props) = node.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (name, sub) in props {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        let entry = found.entry(path.clone()).or_default();
        match kind {
            Some(k) if name != "kind" => {
                if !entry.0.iter().any(|x| x == k) {
                    entry.0.push(k.to_string());
                }
            }
            _ => entry.1 = true,
        }
        walk(sub, &path, None, defs, found, depth + 1);
    }
}

/// The key paths whose last part is `name` (`schedule` ->
/// `behaviour.schedule`), excluding `name` itself.
pub fn ending_in(name: &str) -> Vec<&'static KeyPath> {
    all()
        .iter()
        .filter(|k| k.path != name && k.path.rsplit('.').next() == Some(name))
        .collect()
}

/// `key` with its non-ASCII letters spelt out (`objective.λ` ->
/// `objective.lambda`), if that is a key of the experiment file.
pub fn ascii_spelling(key: &str) -> Option<&'static KeyPath> {
    let spelt: String = key.chars().map(spell).collect();
    if spelt == key {
        return None;
    }
    all().iter().find(|k| k.path == spelt)
}

/// A Greek letter (either case) as its ASCII name, the way parameters are
/// spelt in the files (`lambda`, `alpha`, `beta`...); other characters as is.
fn spell(c: char) -> String {
    const NAMES: [&str; 24] = [
        "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
        "lambda", "mu", "nu", "xi", "omicron", "pi", "rho", "sigma", "tau", "upsilon", "phi",
        "chi", "psi", "omega",
    ];
    let lower = c.to_lowercase().next().unwrap_or(c);
    let index = match lower {
        'α'..='ρ' => Some(lower as usize - 'α' as usize),
        // Final sigma (ς) and sigma (σ) are both sigma.
        'ς' | 'σ' => Some(17),
        'τ'..='ω' => Some(lower as usize - 'τ' as usize + 18),
        _ => None,
    };
    match index {
        Some(i) => NAMES[i].to_string(),
        None => c.to_string(),
    }
}

/// How a message names the kinds that have `key`: ` (a key of the `subtb`
/// objective)`, or nothing when every kind has it.
pub fn kinds_note(key: &KeyPath) -> String {
    if key.kinds.is_empty() {
        return String::new();
    }
    let table = key.path.split('.').next().unwrap_or("");
    let kinds = key
        .kinds
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if key.kinds.len() == 1 {
        format!(" (a key of the {kinds} {table})")
    } else {
        format!(" (a key of {table} kinds {kinds})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schema's paths include nested keys, with the kinds that have them.
    #[test]
    fn key_paths_come_from_the_schema() {
        let find = |p: &str| all().iter().find(|k| k.path == p).cloned();
        assert!(find("behaviour.schedule").is_some());
        assert!(find("train.batch_size").is_some_and(|k| k.kinds.is_empty()));
        assert_eq!(find("objective.lambda").unwrap().kinds, vec!["subtb"]);
        assert!(find("objective.lr").unwrap().kinds.len() >= 3);
        let ends: Vec<&str> = ending_in("schedule")
            .iter()
            .map(|k| k.path.as_str())
            .collect();
        assert_eq!(ends, vec!["behaviour.schedule"]);
    }

    /// Greek letters are spelt out when that names a key.
    #[test]
    fn greek_letters_are_spelt_out() {
        assert_eq!(spell('λ'), "lambda");
        assert_eq!(spell('Λ'), "lambda");
        assert_eq!(spell('α'), "alpha");
        assert_eq!(spell('ω'), "omega");
        assert_eq!(spell('τ'), "tau");
        assert_eq!(spell('σ'), "sigma");
        assert_eq!(
            ascii_spelling("objective.λ").map(|k| k.path.as_str()),
            Some("objective.lambda")
        );
        assert_eq!(
            ascii_spelling("behaviour.α").map(|k| k.path.as_str()),
            Some("behaviour.alpha")
        );
        assert!(ascii_spelling("objective.µ").is_none());
        assert!(ascii_spelling("objective.lr").is_none());
    }
}
