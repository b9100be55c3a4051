//! Runs compared by their settings: a resolved config as its leaves, the
//! settings that never tell two runs apart, and the settings that do. The
//! tables (`runs.csv`, `summary.csv`), resume and `runner report` all
//! compare runs this one way.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

/// Settings left out of every comparison of runs: those that never change a
/// run's numbers (its progress bar and checkpoint cadence), and the budget
/// scale, which a resolved config has already applied to `train.steps`
/// (the steps it records are the ones it trains).
pub const UNCOMPARED: &[&str] = &[
    "train.progress",
    "train.checkpoint_every",
    "train.keep_checkpoints",
    "train.budget_scale",
];

/// The settings of a run's budget: its steps, and the evaluation interval
/// that follows them by default on the grid (`steps / n_evals`).
pub const BUDGET_KEYS: &[&str] = &["train.steps", "eval.every"];

/// A run's settings: every leaf of its resolved config as (dotted key, value
/// as the tables write it), arrays as leaves, without [`UNCOMPARED`].
pub type Settings = BTreeMap<String, String>;

/// A value of a config as the tables write it: strings bare, everything
/// else as JSON (as the sweep's own values are written).
pub fn display(v: &toml::Value) -> String {
    match serde_json::to_value(v) {
        Ok(j) => super::display(&j),
        Err(_) => v.to_string(),
    }
}

/// The value at dotted `key` of a config.
pub fn lookup<'a>(config: &'a toml::Table, key: &str) -> Option<&'a toml::Value> {
    let mut parts = key.split('.');
    let mut value = config.get(parts.next()?)?;
    for part in parts {
        value = value.as_table()?.get(part)?;
    }
    Some(value)
}

/// Every leaf of `table` under `prefix`, arrays as leaves.
fn all_leaves(prefix: &str, table: &toml::Table, out: &mut Settings) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(t) => all_leaves(&key, t, out),
            v => {
                out.insert(key, display(v));
            }
        }
    }
}

/// The [`Settings`] of a config.
pub fn settings(config: &toml::Table) -> Settings {
    let mut out = Settings::new();
    all_leaves("", config, &mut out);
    out.retain(|k, _| !UNCOMPARED.contains(&k.as_str()));
    out
}

/// Whether the setting `leaf` is one of `keys`, or inside a table among
/// them, or names a run rather than configures it (`seed`, `name`, the
/// `sweep` table): a grouping by `keys` already tells runs apart by it.
pub fn covered_by(keys: &[String], leaf: &str) -> bool {
    leaf == "seed"
        || leaf == "name"
        || leaf.starts_with("sweep.")
        || keys.iter().any(|k| {
            leaf.strip_prefix(k.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
        })
}

/// The config a run directory holds (`config.toml`), if it can be read.
pub fn read_config(dir: &Path) -> Option<toml::Table> {
    std::fs::read_to_string(dir.join("config.toml"))
        .ok()?
        .parse()
        .ok()
}

/// The keys whose values differ between `a` and `b` (a key that one of them
/// lacks differs), in key order.
pub fn differing(a: &Settings, b: &Settings) -> Vec<String> {
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

/// How the config of a complete run differs from the config a command would
/// run under its id: its settings `have` against the wanted `want`.
#[derive(Debug, Clone, PartialEq)]
pub struct OtherConfig {
    /// The only difference is the budget: `train.steps`, and with them
    /// perhaps `eval.every` ([`BUDGET_KEYS`]).
    pub budget_only: bool,
    /// The keys that differ (`train.steps` first).
    pub keys: Vec<String>,
    /// `complete at another budget: train.steps = 240 (this config: 24000),
    /// eval.every = 48 (this config: 4800)`, or `complete with another config:
    /// ...`, naming up to three keys.
    pub message: String,
}

impl OtherConfig {
    /// `None` when `have` and `want` are the same settings.
    pub fn between(have: &Settings, want: &Settings) -> Option<Self> {
        let mut keys = differing(have, want);
        if keys.is_empty() {
            return None;
        }
        keys.sort_by_key(|k| k != BUDGET_KEYS[0]);
        let budget_only =
            keys[0] == BUDGET_KEYS[0] && keys.iter().all(|k| BUDGET_KEYS.contains(&k.as_str()));
        let shown: Vec<String> = keys
            .iter()
            .take(3)
            .map(|k| {
                let v = |s: &Settings| s.get(k).map_or("(unset)".to_string(), |v| excerpt(v));
                format!("{k} = {} (this config: {})", v(have), v(want))
            })
            .collect();
        let more = match keys.len() {
            n if n > 3 => format!(", and {} more", n - 3),
            _ => String::new(),
        };
        let what = if budget_only {
            "at another budget"
        } else {
            "with another config"
        };
        Some(OtherConfig {
            budget_only,
            message: format!("complete {what}: {}{more}", shown.join(", ")),
            keys,
        })
    }
}

/// A value cut to 40 characters for a message or a name.
pub fn excerpt(v: &str) -> String {
    match v.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &v[..i]),
        None => v.to_string(),
    }
}

/// The settings that tell runs apart beyond the group each run is in
/// (`groups[i]`, e.g. the values of the keys a sweep varies): every key
/// whose value differs between two runs of one group, or between a run and
/// its `references[i]` (the config this command would run under its id),
/// except the keys `covered` by the grouping. Runs without settings
/// (`None`) take no part.
pub fn distinguishing<G: std::hash::Hash + Eq>(
    groups: &[G],
    runs: &[Option<&Settings>],
    references: &[Option<&Settings>],
    covered: impl Fn(&str) -> bool,
) -> BTreeSet<String> {
    let mut first_in_group: HashMap<&G, usize> = HashMap::new();
    let mut out = BTreeSet::new();
    for (i, run) in runs.iter().enumerate() {
        let Some(run) = run else { continue };
        let g = *first_in_group.entry(&groups[i]).or_insert(i);
        let bases = [runs[g], references.get(i).copied().flatten()];
        for base in bases.into_iter().flatten() {
            out.extend(differing(run, base).into_iter().filter(|k| !covered(k)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(pairs: &[(&str, &str)]) -> Settings {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Leaves of a config: nested keys dotted, arrays whole, strings bare,
    /// the uncompared settings left out.
    #[test]
    fn settings_of_a_config() {
        let c: toml::Table = toml::from_str(
            "name = \"x\"\n[train]\nsteps = 40\nprogress = false\nbudget_scale = 0.5\n\
             [behaviour]\nschedule = [\"student\", \"buffer\"]\n",
        )
        .unwrap();
        assert_eq!(
            settings(&c),
            s(&[
                ("behaviour.schedule", r#"["student","buffer"]"#),
                ("name", "x"),
                ("train.steps", "40"),
            ])
        );
    }

    /// Another budget alone, or other settings, each named with both values.
    #[test]
    fn other_configs_say_how_they_differ() {
        let want = s(&[("train.steps", "24000"), ("objective.lr", "0.001")]);
        assert_eq!(OtherConfig::between(&want, &want), None);
        let o = OtherConfig::between(
            &s(&[("train.steps", "240"), ("objective.lr", "0.001")]),
            &want,
        )
        .unwrap();
        assert!(o.budget_only);
        assert_eq!(
            o.message,
            "complete at another budget: train.steps = 240 (this config: 24000)"
        );
        let o = OtherConfig::between(
            &s(&[
                ("train.steps", "240"),
                ("eval.every", "48"),
                ("objective.lr", "0.001"),
            ]),
            &s(&[
                ("train.steps", "24000"),
                ("eval.every", "4800"),
                ("objective.lr", "0.001"),
            ]),
        )
        .unwrap();
        assert!(o.budget_only);
        assert_eq!(
            o.message,
            "complete at another budget: train.steps = 240 (this config: 24000), \
             eval.every = 48 (this config: 4800)"
        );
        let o = OtherConfig::between(&s(&[("train.steps", "24000")]), &want).unwrap();
        assert!(!o.budget_only);
        assert_eq!(
            o.message,
            "complete with another config: objective.lr = (unset) (this config: 0.001)"
        );
    }

    /// A setting that differs inside a group, or from a run's reference,
    /// tells runs apart; one that differs only between groups does not.
    #[test]
    fn distinguishing_settings() {
        let a = s(&[("k", "1"), ("lr", "1"), ("steps", "10")]);
        let b = s(&[("k", "2"), ("lr", "1"), ("steps", "20")]);
        let c = s(&[("k", "2"), ("lr", "3"), ("steps", "20")]);
        let covered = |k: &str| k == "k";
        let none = [None, None, None];
        let got = distinguishing(&[1, 2, 2], &[Some(&a), Some(&b), Some(&c)], &none, covered);
        assert_eq!(got.into_iter().collect::<Vec<_>>(), ["lr"]);
        let want = s(&[("k", "1"), ("lr", "1"), ("steps", "99")]);
        let got = distinguishing(&[1], &[Some(&a)], &[Some(&want)], covered);
        assert_eq!(got.into_iter().collect::<Vec<_>>(), ["steps"]);
    }
}
