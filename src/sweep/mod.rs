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
pub mod slurm;
mod tables;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::config::{self, ConfigError, ExperimentFile, SetArg};
use crate::output::write_atomic;
use crate::plan::{self, Plan};
use crate::train::{self, RunOptions};

pub use tables::{collect, final_metrics, mean_std_ci, verified_status, RunStatus};

use std::collections::HashMap;

use crate::config::SWEEP_ORIGIN;

/// One run of a sweep.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// Position in the expansion (the `--index` of a SLURM array task).
    pub index: usize,
    /// Directory name: the varied values, e.g. `behaviour.kind=teacher,seed=2`.
    pub id: String,
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
        let (base, _) = config::load_file(source, sets)?;
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
            .map(|((key, values), i)| (key.as_str(), &values[i]))
            .chain(self.zip.iter().map(|(key, v)| (key.as_str(), &v[zip_i])))
            .collect();
        (combo, seed)
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
        let varied = self.varied(k);
        Ok(RunSpec {
            index: k,
            id: run_id(&varied),
            varied,
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
            let id = run_id(&self.varied(k));
            if let Some(&first) = ids.get(&id) {
                return Err(self.duplicate(&id, first, k));
            }
            ids.insert(id, k);
        }
        Ok(())
    }

    /// Runs `first` and `second` get the one id `id`: identical zip
    /// positions, or a `label` that leaves table values out of run ids (see
    /// `run_id`).
    fn duplicate(&self, id: &str, first: usize, second: usize) -> ConfigError {
        let why = if self.varied(first) == self.varied(second) {
            "two positions of `sweep.zip` hold the same values: each run must differ"
        } else {
            "a `label` leaves table values out of run ids: give each zipped table its own `label`"
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

/// `k1=v1,k2=v2,seed=S`, with characters unsafe in file names replaced by `_`.
/// When a `label` varies, whole-table values (e.g. a zipped `behaviour =
/// [{ kind = ... }, ...]`) are left out of the id: the label names them.
fn run_id(varied: &[(String, String)]) -> String {
    let labelled = varied.iter().any(|(k, _)| k == "label");
    let raw = varied
        .iter()
        .filter(|(_, v)| !(labelled && v.starts_with('{')))
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
    // A file name holds at most 255 bytes: a longer id keeps its first
    // MAX_RUN_ID - 17 characters and ends in a hash of the whole id, so ids
    // stay distinct and stable.
    if safe.len() <= MAX_RUN_ID {
        return safe;
    }
    let hash = crate::envs::sequence::oracle::fnv1a(
        crate::envs::sequence::oracle::FNV_OFFSET,
        raw.as_bytes(),
    );
    format!("{}-{hash:016x}", &safe[..MAX_RUN_ID - 17])
}

/// Longest run id (bytes); see [`run_id`].
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

/// Whether the run in `dir` has the resolved config of `spec`.
fn same_config(dir: &Path, spec: &RunSpec) -> bool {
    std::fs::read_to_string(dir.join("config.toml")).ok() == Some(resolved_text(spec))
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
    use super::{run_id, MAX_RUN_ID};

    /// Ids longer than a file name allows are cut and end in a hash of the
    /// whole id: distinct ids stay distinct.
    #[test]
    fn long_run_ids_fit_a_file_name() {
        let a = "x".repeat(300);
        let b = format!("{}y", "x".repeat(299));
        let ia = run_id(&v(&[("label", &a), ("seed", "0")]));
        let ib = run_id(&v(&[("label", &b), ("seed", "0")]));
        assert_eq!(ia.len(), MAX_RUN_ID);
        assert_eq!(ib.len(), MAX_RUN_ID);
        assert_ne!(ia, ib);
        assert!(ia.starts_with("label=xxx"));
        assert_eq!(run_id(&v(&[("seed", "0")])), "seed=0");
    }

    fn v(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Unsafe characters become `_`; a labelled zipped table is named by its
    /// label only; without a label the table stays in the id.
    #[test]
    fn run_ids() {
        assert_eq!(
            run_id(&v(&[("env.horizon", "8"), ("seed", "1")])),
            "env.horizon=8,seed=1"
        );
        let table = r#"{"kind":"teacher","lr":0.0005}"#;
        assert_eq!(
            run_id(&v(&[
                ("behaviour", table),
                ("label", "Teacher-PRT"),
                ("seed", "0")
            ])),
            "label=Teacher-PRT,seed=0"
        );
        assert_eq!(
            run_id(&v(&[("behaviour", table), ("seed", "0")])),
            "behaviour=__kind___teacher_,_lr__0.0005_,seed=0"
        );
        // Arrays (e.g. a zipped schedule) always stay.
        assert_eq!(
            run_id(&v(&[
                ("behaviour.schedule", r#"["student"]"#),
                ("label", "TB")
            ])),
            "behaviour.schedule=__student__,label=TB"
        );
    }
}
