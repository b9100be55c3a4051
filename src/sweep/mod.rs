//! Declarative sweeps: `[sweep]` expands seeds, a parameter grid and zipped
//! values into runs that execute in parallel, and every sweep writes
//! `runs.csv` (one row per run) and `summary.csv` (groups over seeds).
//!
//! A single experiment is a sweep of one run, so every `runner FILE` goes
//! through here. Run directories are the source of truth: each finished run
//! leaves `status.toml` next to its `config.toml` and `metrics.csv`, and the
//! tables are rebuilt from the directories (`runner collect` does only that),
//! which is what makes resuming an interrupted sweep give the same tables.
//! They list every run directory of the experiment, also those of other
//! invocations, each with the status it records itself: a run another
//! runner holds is not a failure here.

pub mod lock;
pub mod settings;
pub mod slurm;
mod tables;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::config::{ConfigError, ExperimentFile, SetArg};
use crate::output::write_atomic;
use crate::plan::{self, Plan};
use crate::train::{self, RunOptions};

pub use tables::{
    collect, describe_rows, final_metrics, mean_std_ci, spec_settings, verified_status, RunRow,
    RunStatus,
};

use std::collections::HashMap;

use crate::config::SWEEP_ORIGIN;

/// One run of a sweep.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// Position in the expansion (the `--index` of a SLURM array task).
    pub index: usize,
    /// Directory name: the varied values, e.g. `behaviour.kind=teacher,seed=2`
    /// (see [`Expansion`] for lists and tables).
    pub id: String,
    /// The id the run had before lists were shortened in ids, when it
    /// differs: a directory under it is this run's ([`results_dir`]) and is
    /// renamed to `id` when the run is next executed.
    pub legacy_id: Option<String>,
    /// The varied keys (seed last) and their values as written in the id.
    pub varied: Vec<(String, String)>,
    /// The resolved plan of this run (its sweep table removed).
    pub plan: Plan,
}

/// Expand `file` (with `sets` applied) into its runs. Every combination is
/// loaded and checked like a file of its own, so a key that does not exist is
/// an error naming it before anything runs.
pub fn expand(file: &Path, sets: &[SetArg]) -> Result<Vec<RunSpec>, ConfigError> {
    expand_file(&ExperimentFile::read(file)?, sets)
}

/// [`expand`] of a file already read: the file is read once, whatever the
/// number of runs.
pub fn expand_file(source: &ExperimentFile, sets: &[SetArg]) -> Result<Vec<RunSpec>, ConfigError> {
    let expansion = Expansion::new(source, sets)?;
    let mut specs = Vec::with_capacity(expansion.len());
    let mut ids = std::collections::HashMap::with_capacity(expansion.len());
    for k in 0..expansion.len() {
        let spec = expansion.spec(k)?;
        if let Some(&first) = ids.get(&spec.id) {
            return Err(expansion.duplicate(&spec.id, first, k));
        }
        ids.insert(spec.id.clone(), k);
        specs.push(spec);
    }
    Ok(specs)
}

/// The first value of `values` that appears again later in it.
fn first_repeat<T: PartialEq>(values: &[T]) -> Option<&T> {
    values
        .iter()
        .enumerate()
        .find(|(i, v)| values[i + 1..].contains(v))
        .map(|(_, v)| v)
}

/// The runs of a sweep before they are resolved: the grid (cartesian, keys
/// in sorted order, the last varying fastest), times the zip groups, times
/// the seeds (fastest). Run `k` is computed directly from `k` (a mixed-radix
/// number), so one run can be resolved without the others ([`Expansion::one`],
/// the `--index` of a SLURM array task).
///
/// A run's id names its varied values, `key=value` joined by `,` (seed
/// last). Scalars are written as they are (strings bare). When a `label`
/// varies, table values and the lists of `sweep.zip` are left out: the label
/// names them. Another list of scalars is written joined by `+`
/// (`["student", "buffer"]`: `student+buffer`) when that is short and plain;
/// any other list or table is its position in the sweep's list and a hash
/// of the value (`2-1f0c3a9b`). The run's `config.toml` holds every value in
/// full.
pub struct Expansion {
    /// The experiment file, read once.
    source: ExperimentFile,
    sets: Vec<SetArg>,
    grid: Vec<(String, Vec<serde_json::Value>)>,
    /// The zipped lists; empty when none has a value.
    zip: Vec<(String, Vec<serde_json::Value>)>,
    /// Length of every zipped list (0: no zip).
    zip_len: usize,
    seeds: Vec<u64>,
    len: usize,
}

/// The most runs one sweep may expand to: each run resolves its plan and
/// gets a directory (the full expansion of 100,000 runs takes minutes), and a
/// SLURM array rarely allows more tasks.
pub const MAX_RUNS: usize = 100_000;

impl Expansion {
    /// Load `source` with `sets` and check its `[sweep]` table.
    pub fn new(source: &ExperimentFile, sets: &[SetArg]) -> Result<Self, ConfigError> {
        let file = source.path.as_path();
        let (base, _) = plan::load_experiment(source, sets)?;
        let sweep = base.sweep.clone().unwrap_or_default();
        let invalid = |msg: String| ConfigError::Invalid {
            path: file.to_path_buf(),
            messages: vec![msg],
        };
        for key in sweep.grid.keys().chain(sweep.zip.keys()) {
            if key == "seed" || key == "name" || key.starts_with("sweep") {
                return Err(invalid(format!(
                    "`sweep`: `{key}` cannot vary (use `sweep.seeds` for seeds)"
                )));
            }
        }
        if let Some((k, v)) = sweep.grid.iter().find(|(_, v)| v.is_empty()) {
            return Err(invalid(format!(
                "`sweep.grid.\"{k}\"` lists no value ({v:?})"
            )));
        }
        // A value listed twice would run the same run twice, under one id.
        for (k, values) in &sweep.grid {
            if let Some(v) = first_repeat(values) {
                return Err(invalid(format!(
                    "`sweep.grid.\"{k}\"` lists {} twice: each value must appear once",
                    crate::check::excerpt(&display(v))
                )));
            }
        }
        if let Some(seed) = sweep.seeds.as_deref().and_then(first_repeat) {
            return Err(invalid(format!(
                "`sweep.seeds` lists seed {seed} twice: each seed must appear once"
            )));
        }
        let zip_len = sweep.zip.values().map(Vec::len).max().unwrap_or(0);
        if sweep.zip.values().any(|v| v.len() != zip_len) {
            return Err(invalid(format!(
                "`sweep.zip`: every list must have the same length; got {:?}",
                sweep
                    .zip
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.len()))
                    .collect::<Vec<_>>()
            )));
        }
        let seeds = match &sweep.seeds {
            None => vec![base.seed],
            Some(s) if s.is_empty() => {
                return Err(invalid(
                    "`sweep.seeds` lists no seed: list at least one, or remove the key to run \
                     `seed` alone"
                        .into(),
                ))
            }
            Some(s) => s.clone(),
        };
        let grid: Vec<_> = sweep.grid.into_iter().collect();
        let zip: Vec<_> = match zip_len {
            0 => Vec::new(),
            _ => sweep.zip.into_iter().collect(),
        };
        let len = grid
            .iter()
            .map(|(_, v)| v.len())
            .chain([zip_len.max(1), seeds.len()])
            .try_fold(1usize, usize::checked_mul)
            .ok_or_else(|| {
                invalid("`sweep`: the expansion has more runs than can be counted".into())
            })?;
        if len > MAX_RUNS {
            return Err(invalid(format!(
                "`sweep` expands to {len} runs, more than {MAX_RUNS}: list fewer seeds or values, \
                 or split the sweep into several files"
            )));
        }
        Ok(Expansion {
            source: source.clone(),
            sets: sets.to_vec(),
            grid,
            zip,
            zip_len,
            seeds,
            len,
        })
    }

    /// The number of runs.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the expansion has no run (never: a sweep has at least one).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Run `k` (`k < len`) resolved alone: the same run (id, varied values,
    /// plan) as `expand(file, sets)?[k]`, without resolving the others. Only
    /// their ids are computed, to refuse two runs with one id as [`expand`]
    /// does; a value that is invalid only in another run is not seen.
    pub fn one(&self, k: usize) -> Result<RunSpec, ConfigError> {
        self.check_ids()?;
        self.spec(k)
    }

    /// The values of run `k` (`k < len`): grid values in key order, then the
    /// zipped values, and the seed.
    fn combo(&self, k: usize) -> (Vec<(&str, &serde_json::Value)>, u64) {
        let (combo, seed) = self.picks(k);
        (combo.into_iter().map(|(k, v, _)| (k, v)).collect(), seed)
    }

    /// [`Expansion::combo`] with each value's position in its list and
    /// whether it is zipped.
    #[allow(clippy::type_complexity)]
    fn picks(&self, k: usize) -> (Vec<(&str, &serde_json::Value, Position)>, u64) {
        let seed = self.seeds[k % self.seeds.len()];
        let mut rest = k / self.seeds.len();
        let zip_i = match self.zip_len {
            0 => 0,
            n => {
                let i = rest % n;
                rest /= n;
                i
            }
        };
        let mut picks = vec![0; self.grid.len()];
        for (pick, (_, values)) in picks.iter_mut().zip(&self.grid).rev() {
            *pick = rest % values.len();
            rest /= values.len();
        }
        let combo = self
            .grid
            .iter()
            .zip(picks)
            .map(|((key, values), i)| (key.as_str(), &values[i], Position::Grid(i)))
            .chain(
                self.zip
                    .iter()
                    .map(|(key, v)| (key.as_str(), &v[zip_i], Position::Zip(zip_i))),
            )
            .collect();
        (combo, seed)
    }

    /// The id of run `k`, and its id before lists were shortened when that
    /// differs (see [`Expansion`]).
    fn ids(&self, k: usize) -> (String, Option<String>) {
        let (picks, seed) = self.picks(k);
        let labelled = picks.iter().any(|(key, _, _)| *key == "label");
        let seed = seed.to_string();
        let id = id_of(
            picks
                .iter()
                .filter_map(|&(key, value, position)| {
                    Some((key, id_value(value, position, labelled)?))
                })
                .chain([("seed", seed.clone())]),
        );
        let legacy = legacy_run_id(&self.varied(k));
        (id.clone(), (legacy != id).then_some(legacy))
    }

    /// The varied keys and values of run `k` as written in its id (seed last).
    fn varied(&self, k: usize) -> Vec<(String, String)> {
        let (combo, seed) = self.combo(k);
        combo
            .into_iter()
            .map(|(key, value)| (key.to_string(), display(value)))
            .chain([("seed".to_string(), seed.to_string())])
            .collect()
    }

    /// The keys the runs vary (seed last).
    pub fn varied_keys(&self) -> Vec<String> {
        self.varied(0).into_iter().map(|(k, _)| k).collect()
    }

    /// Run `k`, loaded and resolved like a file of its own.
    fn spec(&self, k: usize) -> Result<RunSpec, ConfigError> {
        let mut plan = plan::load_file(&self.source, &self.sets_of(k)?)?;
        plan.resolved.sweep = None;
        let (id, legacy_id) = self.ids(k);
        Ok(RunSpec {
            index: k,
            id,
            legacy_id,
            varied: self.varied(k),
            plan,
        })
    }

    /// The overrides of run `k`: the command's, then the run's values as
    /// `--set`s named [`SWEEP_ORIGIN`].
    pub fn sets_of(&self, k: usize) -> Result<Vec<SetArg>, ConfigError> {
        let (combo, seed) = self.combo(k);
        let mut all_sets = self.sets.clone();
        for (key, value) in &combo {
            let toml_value = toml::Value::try_from(value).map_err(|e| {
                self.invalid(format!(
                    "`sweep`: value {value} of `{key}` is not a TOML value: {e}"
                ))
            })?;
            all_sets.push(SetArg::internal(key, toml_value, SWEEP_ORIGIN));
        }
        all_sets.push(SetArg::internal(
            "seed",
            toml::Value::Integer(seed as i64),
            SWEEP_ORIGIN,
        ));
        Ok(all_sets)
    }

    /// Refuse two runs with one id (the first repeated id in expansion order).
    fn check_ids(&self) -> Result<(), ConfigError> {
        let mut ids = std::collections::HashMap::with_capacity(self.len);
        for k in 0..self.len {
            let (id, _) = self.ids(k);
            if let Some(&first) = ids.get(&id) {
                return Err(self.duplicate(&id, first, k));
            }
            ids.insert(id, k);
        }
        Ok(())
    }

    /// Runs `first` and `second` get the one id `id`: identical zip
    /// positions, or a `label` that leaves table and list values out of run
    /// ids (see [`Expansion`]).
    fn duplicate(&self, id: &str, first: usize, second: usize) -> ConfigError {
        let why = if self.varied(first) == self.varied(second) {
            "two positions of `sweep.zip` hold the same values: each run must differ"
        } else {
            "a `label` leaves table values and zipped lists out of run ids: give each zipped \
             table or list its own `label`"
        };
        self.invalid(format!(
            "`sweep`: two runs get the id `{}`; {why}",
            crate::check::excerpt(id)
        ))
    }

    fn invalid(&self, msg: String) -> ConfigError {
        ConfigError::Invalid {
            path: self.source.path.clone(),
            messages: vec![msg],
        }
    }
}

/// A value as written in ids and tables: strings bare, numbers as JSON.
fn display(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Where a varied value comes from: its position in a `sweep.grid` list or
/// in the `sweep.zip` lists.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Position {
    Grid(usize),
    Zip(usize),
}

/// Longest list written joined by `+` in a run id (bytes).
const MAX_ID_LIST: usize = 32;

/// How `value` is written in a run id (`None`: left out); see [`Expansion`].
fn id_value(value: &serde_json::Value, position: Position, labelled: bool) -> Option<String> {
    use serde_json::Value;
    let plain = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    };
    let index = match position {
        Position::Grid(i) | Position::Zip(i) => i,
    };
    match value {
        Value::Object(_) if labelled => None,
        Value::Array(_) if labelled && matches!(position, Position::Zip(_)) => None,
        Value::Array(items) => {
            let joined: Option<Vec<String>> = items
                .iter()
                .map(|v| match v {
                    Value::String(s) if plain(s) => Some(s.clone()),
                    Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
                    _ => None,
                })
                .collect();
            match joined.map(|j| j.join("+")) {
                Some(j) if !j.is_empty() && j.len() <= MAX_ID_LIST => Some(j),
                _ => Some(hashed(index, value)),
            }
        }
        Value::Object(_) => Some(hashed(index, value)),
        other => Some(display(other)),
    }
}

/// `<index>-<hash>`: a value's position in its list and 8 hex digits of a
/// hash of its JSON text.
fn hashed(index: usize, value: &serde_json::Value) -> String {
    let hash = crate::envs::sequence::oracle::fnv1a(
        crate::envs::sequence::oracle::FNV_OFFSET,
        value.to_string().as_bytes(),
    );
    format!("{index}-{:08x}", hash as u32)
}

/// `k1=v1,k2=v2,seed=S` of the values as written in an id, with characters
/// unsafe in file names replaced by `_`. A file name holds at most 255
/// bytes: an id longer than [`MAX_RUN_ID`] keeps its first `MAX_RUN_ID - 17`
/// characters and ends in a hash of the whole id, so ids stay distinct and
/// stable.
fn id_of<'a>(parts: impl Iterator<Item = (&'a str, String)>) -> String {
    let raw = parts
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let safe: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._=,+-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.len() <= MAX_RUN_ID {
        return safe;
    }
    let hash = crate::envs::sequence::oracle::fnv1a(
        crate::envs::sequence::oracle::FNV_OFFSET,
        raw.as_bytes(),
    );
    format!("{}-{hash:016x}", &safe[..MAX_RUN_ID - 17])
}

/// The id of a run before lists were shortened: every varied value as the
/// tables write it (see [`display`]), whole-table values left out when a
/// `label` varies. Equal to the id of every run without list values.
fn legacy_run_id(varied: &[(String, String)]) -> String {
    let labelled = varied.iter().any(|(k, _)| k == "label");
    id_of(
        varied
            .iter()
            .filter(|(_, v)| !(labelled && v.starts_with('{')))
            .map(|(k, v)| (k.as_str(), v.clone())),
    )
}

/// Longest run id (bytes); see [`id_of`].
pub const MAX_RUN_ID: usize = 200;

/// The plans' warnings that hold for every run of `specs`, each once
/// (with how many runs it concerns). A warning of some runs only is the
/// sweep's design: a `[buffer]` shared between methods that replay and
/// methods that do not is read by the former.
pub fn warnings(specs: &[RunSpec]) -> Vec<String> {
    let Some(first) = specs.first() else {
        return Vec::new();
    };
    first
        .plan
        .warnings
        .iter()
        .filter(|w| {
            specs[1..]
                .iter()
                .all(|s| s.plan.warnings.iter().any(|o| o.key == w.key))
        })
        .map(|w| match specs.len() {
            1 => w.to_string(),
            n => format!("{w} (in all {n} runs)"),
        })
        .collect()
}

/// The keys that vary across `specs` (seed included when several seeds run).
pub fn varied_keys(specs: &[RunSpec]) -> Vec<String> {
    specs
        .first()
        .map(|s| s.varied.iter().map(|(k, _)| k.clone()).collect())
        .unwrap_or_default()
}

/// How to execute a sweep.
#[derive(Debug, Clone)]
pub struct SweepOptions {
    /// Results root: runs go to `<out>/<name>/<run_id>/`.
    pub out: PathBuf,
    /// Runs executing at once.
    pub jobs: usize,
    /// Start no new run after the first failure.
    pub fail_fast: bool,
    /// Rerun complete runs whose resolved config changed (otherwise: refuse).
    pub force: bool,
    /// The datasets root of the sequence tasks (see `datasets::resolve_root`).
    pub datasets: PathBuf,
    /// Rebuild `runs.csv` and `summary.csv` at the end (off for a SLURM
    /// array task: `runner collect` builds them once the array is done).
    pub tables: bool,
}

/// What a sweep did.
#[derive(Debug, Clone, Default)]
pub struct SweepReport {
    /// Runs executed now.
    pub ran: usize,
    /// Complete runs with an unchanged config, skipped.
    pub skipped: usize,
    /// Runs that failed (now or before), with their messages.
    pub failed: Vec<(String, String)>,
    /// Runs stopped midway by an interruption (Ctrl-C, SIGTERM): left
    /// incomplete, not failed.
    pub interrupted: usize,
    /// Runs not executed here because another runner held them, and that
    /// were not complete (with this config) at the end, with why; a run
    /// another runner completed meanwhile counts as skipped, one it failed as
    /// failed.
    pub not_run: Vec<(String, String)>,
    /// Runs never started: after a failure with `--fail-fast`, or after an
    /// interruption.
    pub not_started: usize,
    /// The experiment's results directory (holding runs.csv and summary.csv).
    pub dir: PathBuf,
    /// Why `runs.csv` / `summary.csv` could not be written, if so (the runs'
    /// own failures are in `failed` all the same).
    pub table_error: Option<String>,
}

/// Why a sweep could not start.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// Complete results exist for a different config.
    #[error("results in {} come from a different config than this run would use ({} run(s)); rerun with --force to overwrite them, or use another --out", dirs.first().map(|d| d.display().to_string()).unwrap_or_default(), dirs.len())]
    Changed { dirs: Vec<PathBuf> },
    /// The worker threads could not be started.
    #[error("cannot start {0} worker threads: {1}")]
    Pool(usize, String),
}

/// The directory of a run.
pub fn run_dir(out: &Path, spec: &RunSpec) -> PathBuf {
    out.join(&spec.plan.resolved.name).join(&spec.id)
}

/// The directory holding the results of a run: [`run_dir`], or the
/// directory of its legacy id ([`RunSpec::legacy_id`]) when only that one
/// exists.
pub fn results_dir(out: &Path, spec: &RunSpec) -> PathBuf {
    let dir = run_dir(out, spec);
    match &spec.legacy_id {
        Some(legacy) if !dir.exists() => {
            let old = out.join(&spec.plan.resolved.name).join(legacy);
            if old.is_dir() {
                old
            } else {
                dir
            }
        }
        _ => dir,
    }
}

/// Rename the directory of a run's legacy id to its id, when only the old
/// one exists and no runner holds it, so that the run resumes or is skipped
/// as before.
fn adopt_legacy_dir(out: &Path, spec: &RunSpec) {
    let old = results_dir(out, spec);
    let dir = run_dir(out, spec);
    if old != dir && lock::holder(&old).is_none() {
        if let Err(e) = std::fs::rename(&old, &dir) {
            crate::console::errln(format_args!(
                "warning: cannot rename {} to {}: {e}",
                old.display(),
                dir.display()
            ));
        }
    }
}

/// The resolved config text a run writes; resuming compares it.
fn resolved_text(spec: &RunSpec) -> String {
    toml::to_string(&spec.plan.resolved).expect("an experiment serializes to TOML")
}

/// Execute `specs` (skipping complete, unchanged runs), then rebuild the tables.
pub fn run_sweep(specs: &[RunSpec], opts: &SweepOptions) -> Result<SweepReport, SweepError> {
    // Ctrl-C / SIGTERM: no new run starts, running ones stop after a step.
    let _graceful = crate::interrupt::Graceful::enter();
    // Plan: which runs are complete with an unchanged config.
    let mut todo = Vec::new();
    let mut changed = Vec::new();
    let mut skipped = 0;
    for spec in specs {
        adopt_legacy_dir(&opts.out, spec);
        let dir = run_dir(&opts.out, spec);
        let complete = match tables::verified_status(&dir) {
            Ok(s) => s.is_some_and(|s| s.ok),
            Err(why) => {
                crate::console::errln(format_args!("warning: rerunning {}: {why}", spec.id));
                false
            }
        };
        match (complete, same_config(&dir, spec)) {
            (true, true) => skipped += 1,
            (true, false) if !opts.force => changed.push(dir),
            _ => todo.push(spec),
        }
    }
    if !changed.is_empty() {
        return Err(SweepError::Changed { dirs: changed });
    }
    let single = specs.len() == 1;
    let name = specs
        .first()
        .map(|s| s.plan.resolved.name.as_str())
        .unwrap_or("sweep");
    // Where the results go, before anything runs (the last line says it again).
    if let (true, Some(spec)) = (single && !todo.is_empty(), specs.first()) {
        crate::console::errln(format_args!(
            "{name}: writing to {}",
            run_dir(&opts.out, spec).display()
        ));
    } else if !todo.is_empty() {
        crate::console::errln(format_args!(
            "{name}: {} of {} runs to run ({skipped} complete), writing to {}",
            todo.len(),
            specs.len(),
            opts.out.join(name).display()
        ));
    }
    let mut bar = crate::output::Progress::new(todo.len() as u64, !single, name, "runs");
    let failures: Mutex<Vec<(usize, String, String)>> = Mutex::new(Vec::new());
    let not_run: Mutex<Vec<(usize, &RunSpec, String)>> = Mutex::new(Vec::new());
    let stop = AtomicBool::new(false);
    let running = AtomicUsize::new(0);
    let ran = AtomicUsize::new(0);
    let not_started = AtomicUsize::new(0);
    let interrupted = AtomicUsize::new(0);
    // The words after the bar's counts, also once runs have ended.
    let status = || {
        format!(
            "{} running, {} failed",
            running.load(Ordering::SeqCst),
            failures.lock().map(|f| f.len()).unwrap_or(0)
        )
    };
    // Several jobs start the longest runs first (`Plan::relative_cost`;
    // stable, so equal runs keep their expansion order): the last runs to
    // finish are short ones, and the workers finish at about the same time.
    // One job runs in expansion order.
    if opts.jobs > 1 {
        todo.sort_by(|a, b| b.plan.relative_cost().total_cmp(&a.plan.relative_cost()));
    }
    // Runs execute on `jobs` threads of their own, taking the next run in
    // that order. Not a rayon pool: a run's own parallel kernels (the
    // diffusion samplers, the sEH enumeration) would run in it, and a rayon
    // worker waiting inside them may start another whole run in the
    // meantime, so more than `jobs` runs would be alive at once.
    let next = AtomicUsize::new(0);
    let work = || {
        while let Some(spec) = todo.get(next.fetch_add(1, Ordering::SeqCst)) {
            if stop.load(Ordering::SeqCst) || crate::interrupt::requested() {
                not_started.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            running.fetch_add(1, Ordering::SeqCst);
            bar.set_message(status());
            let result = execute(spec, opts, single);
            running.fetch_sub(1, Ordering::SeqCst);
            match result {
                Ok(Executed::Ran) => {
                    ran.fetch_add(1, Ordering::SeqCst);
                }
                // Another runner's: neither run nor failed here.
                Ok(Executed::NotRun(why)) => {
                    if let Ok(mut n) = not_run.lock() {
                        n.push((spec.index, spec, why));
                    }
                }
                // Left incomplete, not failed: a resume reruns it.
                Err(_) if crate::interrupt::requested() => {
                    interrupted.fetch_add(1, Ordering::SeqCst);
                }
                Err(message) => {
                    ran.fetch_add(1, Ordering::SeqCst);
                    if let Ok(mut f) = failures.lock() {
                        f.push((spec.index, spec.id.clone(), message));
                    }
                    if opts.fail_fast {
                        stop.store(true, Ordering::SeqCst);
                    }
                }
            }
            bar.inc(1);
            bar.event(status());
        }
    };
    std::thread::scope(|scope| {
        for i in 0..opts.jobs.max(1) {
            std::thread::Builder::new()
                .name(format!("run-{i}"))
                .spawn_scoped(scope, work)
                .map_err(|e| SweepError::Pool(opts.jobs, e.to_string()))?;
        }
        Ok::<(), SweepError>(())
    })?;
    bar.finish();
    let dir = opts.out.join(
        specs
            .first()
            .map(|s| s.plan.resolved.name.as_str())
            .unwrap_or("sweep"),
    );
    // This process's failures are known whatever the directories hold (a
    // status that could not be written is one of them): they go into the
    // tables and the report where a directory has no status to say otherwise.
    let mut failures = failures.into_inner().unwrap_or_default();
    failures.sort();
    let known: HashMap<String, RunStatus> = failures
        .iter()
        .map(|(_, id, message)| (id.clone(), RunStatus::failed(message.clone())))
        .collect();
    let (rows, table_error) = if opts.tables {
        match tables::collect_with(&opts.out, specs, &known) {
            Ok(rows) => (rows, None),
            Err((path, e)) => (
                tables::spec_rows(&opts.out, specs, &known),
                Some(format!("cannot write {}: {e}", path.display())),
            ),
        }
    } else {
        (tables::spec_rows(&opts.out, specs, &known), None)
    };
    // Failures of earlier invocations that were not rerun, and of other
    // runners, from the directories (the rows of `specs` come first).
    let mut failed: Vec<(String, String)> = failures
        .into_iter()
        .map(|(_, id, message)| (id, message))
        .collect();
    for r in rows.iter().take(specs.len()) {
        if let Some(s) = r.status.as_ref().filter(|s| !s.ok) {
            if !known.contains_key(&r.id) {
                failed.push((r.id.clone(), s.message.clone()));
            }
        }
    }
    // Runs another runner held: done if their directory ended complete with
    // this config, failed (above) if it failed there, otherwise not run.
    let mut not_run = not_run.into_inner().unwrap_or_default();
    not_run.sort_by_key(|(index, _, _)| *index);
    let mut held = Vec::new();
    for (_, spec, why) in not_run {
        let row = rows.iter().find(|r| r.id == spec.id);
        match row.and_then(|r| r.status.as_ref()) {
            Some(s) if s.ok && same_config(&run_dir(&opts.out, spec), spec) => skipped += 1,
            Some(s) if s.ok => held.push((
                spec.id.clone(),
                format!(
                    "{} holds complete results of a different config, written by another \
                     runner; rerun with --force to overwrite them",
                    run_dir(&opts.out, spec).display()
                ),
            )),
            Some(_) => {}
            None => held.push((spec.id.clone(), why)),
        }
    }
    Ok(SweepReport {
        ran: ran.load(Ordering::SeqCst),
        skipped,
        failed,
        interrupted: interrupted.load(Ordering::SeqCst),
        not_run: held,
        not_started: not_started.load(Ordering::SeqCst),
        dir,
        table_error,
    })
}

/// Whether the run in `dir` has the resolved config of `spec`: the same
/// text, or a config written before `train.budget_scale` was applied to the
/// recorded steps (equal to it but for the scale it records).
fn same_config(dir: &Path, spec: &RunSpec) -> bool {
    let Ok(text) = std::fs::read_to_string(dir.join("config.toml")) else {
        return false;
    };
    let want = resolved_text(spec);
    if text == want {
        return true;
    }
    let unscaled = |t: &str| -> Option<toml::Table> {
        let mut c: toml::Table = t.parse().ok()?;
        if let Some(toml::Value::Table(train)) = c.get_mut("train") {
            train.insert("budget_scale".into(), toml::Value::Float(1.0));
        }
        Some(c)
    };
    matches!((unscaled(&text), unscaled(&want)), (Some(a), Some(b)) if a == b)
}

/// What [`execute`] did with a run it did not fail.
#[derive(Debug, Clone, PartialEq)]
pub enum Executed {
    /// The run ran to completion here.
    Ran,
    /// The run was left alone: another runner holds its lock, or completed
    /// it since the sweep was planned; why.
    NotRun(String),
}

/// Run one spec and record its status; `Err(message)` when it failed. The
/// run holds its directory's lock ([`lock::RunLock`]) meanwhile; a run
/// directory held by another process is left alone ([`Executed::NotRun`]:
/// not a failure of this run, whose status is the other runner's to
/// record), as is one another runner completed since the sweep was planned;
/// an interrupted run (Ctrl-C, SIGTERM) is left incomplete: no status is
/// written.
pub fn execute(spec: &RunSpec, opts: &SweepOptions, single: bool) -> Result<Executed, String> {
    let dir = run_dir(&opts.out, spec);
    let _lock = match lock::RunLock::acquire(&dir) {
        Ok(lock) => lock,
        Err(lock::LockError::Held(holder)) => {
            return Ok(Executed::NotRun(
                train::RunError::Locked {
                    dir: dir.clone(),
                    holder,
                }
                .to_string(),
            ))
        }
        Err(lock::LockError::Io(message)) => return Err(message),
    };
    // The plan was made before the lock: another runner may have completed
    // the run in between (it held the lock then).
    if tables::read_status(&dir).is_some_and(|s| s.ok) {
        if same_config(&dir, spec) {
            return Ok(Executed::NotRun(
                "completed by another runner meanwhile".into(),
            ));
        }
        if !opts.force {
            return Ok(Executed::NotRun(format!(
                "{} holds complete results of a different config, written by another runner \
                 meanwhile; rerun with --force to overwrite them",
                dir.display()
            )));
        }
    }
    // Temporary files of a runner that died while writing them (killed,
    // or a write that ended the process): nobody else writes here now.
    crate::output::remove_temp_files(&dir, None, None, true);
    // A stale status must not mark a rerun as complete if it is killed.
    let status_path = dir.join(tables::STATUS_FILE);
    match std::fs::remove_file(&status_path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound && status_path.is_file() => {
            return Err(format!(
                "cannot remove the previous {}: {e}",
                status_path.display()
            ))
        }
        _ => {}
    }
    let run_opts = RunOptions {
        dir: dir.clone(),
        train_only: false,
        parallel_teacher: opts.jobs <= 1,
        progress: single,
        datasets: opts.datasets.clone(),
    };
    let result = train::run(&spec.plan, &run_opts);
    if let Err(e @ train::RunError::Interrupted { .. }) = &result {
        return Err(e.to_string());
    }
    let status = match &result {
        Ok(s) => RunStatus {
            ok: true,
            message: String::new(),
            wall_s: s.wall_s,
            metrics_sha256: std::fs::read(dir.join("metrics.csv"))
                .ok()
                .map(|b| crate::datasets::sha256_hex(&b)),
        },
        Err(e) => RunStatus::failed(e.to_string()),
    };
    let text = toml::to_string(&status).expect("status serializes");
    if let Err(e) = write_atomic(&status_path, text.as_bytes()) {
        // The run cannot be recorded, so it is a failure, and its own
        // error (if any) is kept.
        let what = match &result {
            Ok(_) => "the run completed".to_string(),
            Err(err) => err.to_string(),
        };
        return Err(format!(
            "{what}; its status could not be written to {}: {e}",
            status_path.display()
        ));
    }
    result.map(|_| Executed::Ran).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::{id_of, id_value, legacy_run_id, Position, MAX_RUN_ID};
    use serde_json::json;

    fn v(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Ids longer than a file name allows are cut and end in a hash of the
    /// whole id: distinct ids stay distinct.
    #[test]
    fn long_run_ids_fit_a_file_name() {
        let a = "x".repeat(300);
        let b = format!("{}y", "x".repeat(299));
        let ia = legacy_run_id(&v(&[("label", &a), ("seed", "0")]));
        let ib = legacy_run_id(&v(&[("label", &b), ("seed", "0")]));
        assert_eq!(ia.len(), MAX_RUN_ID);
        assert_eq!(ib.len(), MAX_RUN_ID);
        assert_ne!(ia, ib);
        assert!(ia.starts_with("label=xxx"));
        assert_eq!(id_of([("seed", "0".to_string())].into_iter()), "seed=0");
    }

    /// Scalars are written as they are, unsafe characters as `_` (the ids of
    /// scalar sweeps are those of every earlier version); tables and zipped
    /// lists are left out under a label; other lists are joined by `+` when
    /// short and plain, else their position and a hash.
    #[test]
    fn run_ids() {
        let zip = Position::Zip(1);
        let grid = Position::Grid(2);
        assert_eq!(id_value(&json!(8), grid, false).unwrap(), "8");
        assert_eq!(id_value(&json!(0.0003), grid, true).unwrap(), "0.0003");
        assert_eq!(id_value(&json!("a b"), zip, true).unwrap(), "a b");
        assert_eq!(
            legacy_run_id(&v(&[("env.horizon", "8"), ("label", "a b"), ("seed", "1")])),
            "env.horizon=8,label=a_b,seed=1"
        );
        let table = json!({"kind": "teacher", "lr": 0.0005});
        assert_eq!(id_value(&table, zip, true), None);
        let hashed = id_value(&table, zip, false).unwrap();
        assert!(hashed.starts_with("1-") && hashed.len() == 10, "{hashed}");
        assert_ne!(
            id_value(&json!({"kind": "teacher"}), zip, false).unwrap(),
            hashed
        );
        let schedule = json!(["student", "buffer"]);
        assert_eq!(id_value(&schedule, zip, true), None);
        assert_eq!(id_value(&schedule, zip, false).unwrap(), "student+buffer");
        // In the grid a label does not name the list.
        assert_eq!(id_value(&schedule, grid, true).unwrap(), "student+buffer");
        assert_eq!(
            id_value(&json!([4000, 8000]), grid, false).unwrap(),
            "4000+8000"
        );
        // Nested, long or unplain lists: position and hash.
        for long in [
            json!([["student", "buffer"], ["teacher", "buffer"]]),
            json!(["student", "student", "teacher", "teacher", "student+ls"]),
            json!(["a,b"]),
            json!([]),
        ] {
            let id = id_value(&long, grid, false).unwrap();
            assert!(id.starts_with("2-") && id.len() == 10, "{long}: {id}");
        }
    }
}
