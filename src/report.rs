//! `runner report`: charts and a one-page summary of the results of runs,
//! written to `<results>/report/`.
//!
//! The inputs are run directories (`metrics.csv`, `config.toml`), sweeps'
//! results directories (`<out>/<name>/`, one directory per run), or
//! experiment files (whose expansion names every run, also those that never
//! started), one or several: [`report`] puts their runs on one page.
//!
//! Runs are grouped as in `summary.csv`: by the keys their ids vary (seed
//! aside) and every other setting that differs between runs of one group,
//! and, with several experiments, by experiment. A group is named by the
//! experiment (when there are several), its `label`, and those keys that
//! the label does not already determine, e.g. `TB-PRT, env.target=2`
//! (docs/reports.md). Runs of different tasks (different `[env]` settings) go on
//! different charts: one chart per task per headline metric
//! ([`DEFAULT_METRICS`] present in the runs' columns, or `--metrics`), with a
//! line per group, the mean over its runs at each step, and a shaded 95%
//! t-interval where at least two runs have a value.
//!
//! Unfinished runs are drawn up to their last row, and their group's line
//! ends in an open circle and says how many runs are complete; failed runs
//! are left out of the charts and the table (as from `summary.csv`) and
//! listed with their error. For an experiment file, a complete run whose
//! directory holds another config than the file's (another budget, other
//! settings) is not complete for this config: its state says how it
//! differs, and its group is named by the differing keys. `report.md` embeds
//! the charts under a table of final values (mean ± 95% interval over the
//! complete runs: the numbers of `summary.csv`) and a table of every run's
//! state.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::output::curves::{line_chart, Curve};
use crate::output::plot::PlotError;
use crate::output::write_atomic;
use crate::sweep::settings::{self, excerpt, OtherConfig, Settings};
use crate::sweep::{
    final_metrics, mean_std_ci, results_dir, spec_settings, verified_status, RunSpec,
};

/// Headline metrics, drawn when a run has the column: the grid's goals and
/// L1 distances, the sequence tasks' modes and log Z bounds, the diffusion
/// energies' bounds and distances.
pub const DEFAULT_METRICS: &[&str] = &[
    "n_goals_found",
    "eval_empirical_l1",
    "eval_exact_l1",
    "num_modes_all",
    "log_z_gap",
    "elbo",
    "eubo",
    "w2",
    "delta_log_z",
];

/// What the y axis of a metric says (with its unit); other columns are
/// labelled by their name.
fn describe(metric: &str) -> &str {
    match metric {
        "n_goals_found" => "goals found (distinct goal states sampled)",
        "eval_empirical_l1" => "L1 to the target, evaluation samples (mean |p - q|)",
        "eval_exact_l1" => "L1 to the target, exact (mean |p - q|)",
        "empirical_l1" => "L1 to the target, training samples (mean |p - q|)",
        "num_modes_all" => "modes found (distinct modes sampled)",
        "num_modes_onpolicy" => "modes among the evaluation samples",
        "log_z_gap" => "|log Z estimate - log Z| (nats)",
        "elbo" => "ELBO (nats)",
        "eubo" => "EUBO (nats)",
        "w2" => "Wasserstein-2 distance to exact samples",
        "delta_log_z" => "log Z - importance-sampling estimate (nats)",
        "loss" => "training loss (mean of the last batches)",
        "teacher_loss" => "teacher loss (mean of the last batches)",
        "log_z" => "learned log Z (nats)",
        other => other,
    }
}

/// What the x column counts.
fn describe_x(column: &str) -> &str {
    match column {
        "step" => "training step",
        "round" => "round",
        "iteration" => "iteration",
        other => other,
    }
}

/// What `runner report` reads: a run directory, a sweep's results
/// directory, or an experiment file (see [`input_kind`]).
const EXPECTED: &str = "a run directory (<out>/<name>/<run id>, with metrics.csv), a sweep's \
                        results directory (<out>/<name>, one directory per run), or an \
                        experiment file (.toml)";

/// Errors of a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Nothing to report at the path.
    #[error("{path}: no results here: expected {EXPECTED}")]
    NoResults {
        /// The path given.
        path: PathBuf,
    },
    /// A file that is no experiment file (a CSV, a picture...).
    #[error("{path}: not a path `runner report` reads: expected {EXPECTED}{hint}")]
    NotReportable {
        /// The path given.
        path: PathBuf,
        /// Which directory to pass instead, where that is clear.
        hint: String,
    },
    /// A `--metrics` name that no run has.
    #[error("--metrics: no run has a column `{name}`; the runs have: {available}")]
    UnknownMetric {
        /// The name asked for.
        name: String,
        /// The columns the runs have.
        available: String,
    },
    /// Reading results or writing the report failed.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        cause: std::io::Error,
    },
    /// Drawing a chart failed.
    #[error(transparent)]
    Plot(#[from] PlotError),
}

/// What a path given to `runner report` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// A directory: a run's or a sweep's results.
    Results,
    /// An experiment file: a `.toml` file, a file without an extension, or
    /// anything that is not a regular file (a pipe).
    Experiment,
}

/// What `path` is, for `runner report`: a directory holds results; a
/// regular file with an extension other than `.toml` (`runs.csv`,
/// `metrics.csv`, a PNG) is refused, naming what is expected and, for a file
/// inside a results directory, that directory; anything else that exists is
/// an experiment file. A path that does not exist has no results.
pub fn input_kind(path: &Path) -> Result<InputKind, ReportError> {
    if path.is_dir() {
        return Ok(InputKind::Results);
    }
    if !path.exists() {
        return Err(ReportError::NoResults {
            path: path.to_path_buf(),
        });
    }
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    match extension {
        Some(e) if e != "toml" && path.is_file() => {
            let parent = path.parent().filter(|p| {
                let p = if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                };
                p.join("metrics.csv").is_file()
                    || p.join("runs.csv").is_file()
                    || p.join("config.toml").is_file()
            });
            Err(ReportError::NotReportable {
                path: path.to_path_buf(),
                hint: match parent {
                    Some(p) if !p.as_os_str().is_empty() => {
                        format!("; for these results, pass their directory {}", p.display())
                    }
                    Some(_) => "; for these results, pass their directory .".into(),
                    None => String::new(),
                },
            })
        }
        _ => Ok(InputKind::Experiment),
    }
}

/// How a run stands.
#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    /// Finished, with a trusted `metrics.csv`.
    Complete,
    /// Finished, but with another config than the experiment file reported
    /// would run under its id (another budget, other settings): not complete
    /// for that file's config.
    Elsewhere(OtherConfig),
    /// Finished with an error.
    Failed(String),
    /// Running, interrupted, or not started (no status yet); or a status that
    /// cannot be trusted (why).
    Incomplete(Option<String>),
}

impl RunState {
    /// Complete, with its own config (that of the group it is in).
    fn finished(&self) -> bool {
        matches!(self, RunState::Complete | RunState::Elsewhere(_))
    }
}

/// One run's results.
#[derive(Debug, Clone)]
struct RunResults {
    /// How the report lists it: its directory name (the run id), after its
    /// experiment's name when the report has several experiments.
    id: String,
    /// The run's directory (where its results are or would be).
    dir: PathBuf,
    /// The experiment's name.
    experiment: String,
    /// The run's `label`, if it has one.
    label: Option<String>,
    state: RunState,
    /// Planned training steps (rounds, iterations).
    budget: Option<f64>,
    /// `metrics.csv`: header and rows (empty cells and `nan` as NaN).
    header: Vec<String>,
    rows: Vec<Vec<f64>>,
    /// The last row as the sweep's tables read it (`final_metrics`).
    finals: Vec<(String, Option<f64>)>,
    /// The run's config: its `config.toml`, else the one its spec would run.
    config: Option<toml::Table>,
    /// The settings of `config`.
    settings: Settings,
    /// The keys its id varies (without `seed` and `label`).
    keys: Vec<String>,
    /// The settings of the config the experiment file would run under its
    /// id (runs of an experiment file only).
    want: Option<Settings>,
}

impl RunResults {
    /// The values of column `name` as (x, y), x from the first column.
    fn series(&self, name: &str) -> Vec<(f64, f64)> {
        let Some(c) = self.header.iter().position(|h| h == name) else {
            return Vec::new();
        };
        self.rows
            .iter()
            .filter_map(|r| Some((*r.first()?, *r.get(c)?)))
            .collect()
    }

    /// The final value of `name` as `summary.csv` takes it: `None` for a
    /// missing column or an empty cell, NaN for `nan`.
    fn last(&self, name: &str) -> Option<f64> {
        self.finals
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| *v)
    }

    /// The first column of the last row: the step the run got to.
    fn last_step(&self) -> Option<f64> {
        self.rows.last().and_then(|r| r.first().copied())
    }

    /// The value of the setting (or table) `key`, as the tables write it;
    /// empty where the run has none.
    fn value(&self, key: &str) -> String {
        self.config
            .as_ref()
            .and_then(|c| settings::lookup(c, key))
            .map(settings::display)
            .unwrap_or_default()
    }

    /// The run's task: its `[env]` settings.
    fn task(&self) -> BTreeMap<&str, &str> {
        self.settings
            .iter()
            .filter(|(k, _)| k.starts_with("env."))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

/// Read `dir/metrics.csv` (missing: no rows).
fn read_metrics(dir: &Path) -> (Vec<String>, Vec<Vec<f64>>) {
    let Ok(text) = std::fs::read_to_string(dir.join("metrics.csv")) else {
        return (Vec::new(), Vec::new());
    };
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .map(|h| h.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let rows = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.split(',')
                .map(|v| v.parse().unwrap_or(f64::NAN))
                .collect()
        })
        .collect();
    (header, rows)
}

/// The keys a run id varies: its `key=value` parts whose key the run's
/// config has, without `seed` and `label`.
fn id_keys(id: &str, config: Option<&toml::Table>) -> Vec<String> {
    let Some(config) = config else {
        return Vec::new();
    };
    id.split(',')
        .filter_map(|part| part.split_once('=').map(|(k, _)| k))
        .filter(|k| *k != "seed" && *k != "label" && settings::lookup(config, k).is_some())
        .map(str::to_string)
        .collect()
}

/// A run's results from its directory; for a run of an experiment file,
/// compared with the config its `spec` would run.
fn load_run(dir: &Path, id: String, spec: Option<&RunSpec>) -> RunResults {
    let own = settings::read_config(dir);
    let want = spec.and_then(spec_settings);
    let config = own.clone().or_else(|| {
        spec.and_then(|s| match toml::Value::try_from(&s.plan.resolved) {
            Ok(toml::Value::Table(t)) => Some(t),
            _ => None,
        })
    });
    let text = |key: &str| {
        config
            .as_ref()
            .and_then(|c| c.get(key)?.as_str().map(str::to_string))
    };
    let budget = match spec {
        Some(s) => Some(s.plan.steps as f64),
        None => config
            .as_ref()
            .and_then(|c| settings::lookup(c, "train.steps")?.as_integer())
            .map(|s| s as f64),
    };
    let state = match verified_status(dir) {
        Ok(Some(s)) if s.ok => {
            let other = own
                .as_ref()
                .zip(want.as_ref())
                .and_then(|(c, w)| OtherConfig::between(&settings::settings(c), w));
            other.map_or(RunState::Complete, RunState::Elsewhere)
        }
        Ok(Some(s)) => RunState::Failed(s.message),
        Ok(None) => RunState::Incomplete(None),
        Err(why) => RunState::Incomplete(Some(why)),
    };
    let keys = match spec {
        Some(s) => s
            .varied
            .iter()
            .map(|(k, _)| k.clone())
            .filter(|k| k != "seed" && k != "label")
            .collect(),
        None => id_keys(&id, config.as_ref()),
    };
    let (header, rows) = read_metrics(dir);
    RunResults {
        id,
        dir: dir.to_path_buf(),
        experiment: text("name").unwrap_or_default(),
        label: text("label"),
        state,
        budget,
        header,
        rows,
        finals: final_metrics(dir),
        settings: config.as_ref().map(settings::settings).unwrap_or_default(),
        config,
        keys,
        want,
    }
}

/// What `runner report` wrote.
#[derive(Debug, Clone)]
pub struct Report {
    /// `report.md`.
    pub page: PathBuf,
    /// The charts, one per metric and task drawn.
    pub charts: Vec<PathBuf>,
    /// How the runs stand.
    pub counts: Counts,
}

/// How many runs a report shows, by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Every run.
    pub runs: usize,
    /// Complete (with the config reported).
    pub complete: usize,
    /// Complete at another budget than the experiment file's.
    pub other_budget: usize,
    /// Complete with other settings than the experiment file's.
    pub other_config: usize,
    /// Failed.
    pub failed: usize,
    /// Running, interrupted, not started, or untrusted.
    pub incomplete: usize,
}

impl Counts {
    fn of(runs: &[RunResults]) -> Self {
        let mut c = Counts {
            runs: runs.len(),
            ..Counts::default()
        };
        for r in runs {
            match &r.state {
                RunState::Complete => c.complete += 1,
                RunState::Elsewhere(o) if o.budget_only => c.other_budget += 1,
                RunState::Elsewhere(_) => c.other_config += 1,
                RunState::Failed(_) => c.failed += 1,
                RunState::Incomplete(_) => c.incomplete += 1,
            }
        }
        c
    }

    /// `4 complete, 2 complete at another budget, 1 failed, 0 incomplete`
    /// (the runs of another config only when there are some).
    pub fn describe(&self) -> String {
        let mut s = format!("{} complete", self.complete);
        if self.other_budget > 0 {
            s.push_str(&format!(
                ", {} complete at another budget",
                self.other_budget
            ));
        }
        if self.other_config > 0 {
            s.push_str(&format!(
                ", {} complete with another config",
                self.other_config
            ));
        }
        s.push_str(&format!(
            ", {} failed, {} incomplete",
            self.failed, self.incomplete
        ));
        s
    }
}

/// Options of a report.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// Metrics to draw (default: [`DEFAULT_METRICS`] that the runs have).
    pub metrics: Option<Vec<String>>,
    /// The directory to write the report to (default: `<results>/report/`
    /// for one input; see [`report`] for several).
    pub output: Option<PathBuf>,
}

/// Where results are, for [`report`].
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// A run directory or a sweep's results directory.
    Dir(&'a Path),
    /// The runs of an expanded experiment file, under the results root `out`.
    Specs {
        /// The expansion.
        specs: &'a [RunSpec],
        /// The results root (`--out`).
        out: &'a Path,
    },
}

/// The runs of one source.
struct Loaded {
    /// The experiment's name (or the directory's).
    title: String,
    /// The results directory (a run's or an experiment's).
    root: PathBuf,
    runs: Vec<RunResults>,
}

/// The name of a path's last component.
fn name_of(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| p.display().to_string())
}

/// The runs of a run directory or of a sweep's results directory.
fn load_dir(path: &Path) -> Result<Loaded, ReportError> {
    let no_results = || ReportError::NoResults {
        path: path.to_path_buf(),
    };
    if !path.is_dir() {
        return Err(no_results());
    }
    let is_run = |d: &Path| d.join("metrics.csv").is_file() || d.join("config.toml").is_file();
    if is_run(path) {
        let run = load_run(path, name_of(path), None);
        let title = match run.experiment.is_empty() {
            true => name_of(path),
            false => run.experiment.clone(),
        };
        return Ok(Loaded {
            title,
            root: path.to_path_buf(),
            runs: vec![run],
        });
    }
    let read = std::fs::read_dir(path).map_err(|cause| ReportError::Io {
        path: path.to_path_buf(),
        cause,
    })?;
    let mut dirs: Vec<PathBuf> = read
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() && is_run(p))
        .collect();
    if dirs.is_empty() {
        return Err(no_results());
    }
    // The sweep's order (runs.csv) when it is known, else by name.
    dirs.sort();
    let order = runs_csv_order(&path.join("runs.csv"));
    dirs.sort_by_key(|d| {
        let id = name_of(d);
        order.iter().position(|o| *o == id).unwrap_or(usize::MAX)
    });
    Ok(Loaded {
        title: name_of(path),
        root: path.to_path_buf(),
        runs: dirs.iter().map(|d| load_run(d, name_of(d), None)).collect(),
    })
}

/// The runs of an expanded experiment under `out`: every run of the
/// expansion, in its order, also those that have not started; one run alone
/// is reported from its own directory.
fn load_specs(specs: &[RunSpec], out: &Path) -> Result<Loaded, ReportError> {
    let Some(first) = specs.first() else {
        return Err(ReportError::NoResults {
            path: out.to_path_buf(),
        });
    };
    let name = first.plan.resolved.name.clone();
    if let [spec] = specs {
        let dir = results_dir(out, spec);
        if !dir.is_dir() {
            return Err(ReportError::NoResults { path: dir });
        }
        return Ok(Loaded {
            title: name,
            runs: vec![load_run(&dir, name_of(&dir), Some(spec))],
            root: dir,
        });
    }
    Ok(Loaded {
        runs: specs
            .iter()
            .map(|s| load_run(&results_dir(out, s), s.id.clone(), Some(s)))
            .collect(),
        root: out.join(&name),
        title: name,
    })
}

/// The report of the results at `path`: a run directory or a sweep's
/// results directory (see the module documentation).
pub fn report_dir(path: &Path, opts: &ReportOptions) -> Result<Report, ReportError> {
    report(&[Source::Dir(path)], opts)
}

/// The report of the runs of an expanded experiment under `out`: every run
/// of the expansion, in its order, also those that have not started.
pub fn report_specs(
    specs: &[RunSpec],
    out: &Path,
    opts: &ReportOptions,
) -> Result<Report, ReportError> {
    report(&[Source::Specs { specs, out }], opts)
}

/// The report of the runs of every source on one page (see the module
/// documentation), written to `opts.output`: by default the `report/`
/// directory of the one source's results, and for several sources
/// `<their common parent>/reports/<name>+<name>.../`. A run directory given
/// twice (or inside two sources) is reported once.
pub fn report(sources: &[Source<'_>], opts: &ReportOptions) -> Result<Report, ReportError> {
    let loaded: Vec<Loaded> = sources
        .iter()
        .map(|s| match s {
            Source::Dir(p) => load_dir(p),
            Source::Specs { specs, out } => load_specs(specs, out),
        })
        .collect::<Result<_, _>>()?;
    let mut titles: Vec<String> = Vec::new();
    for l in &loaded {
        if !titles.contains(&l.title) {
            titles.push(l.title.clone());
        }
    }
    let roots: Vec<PathBuf> = loaded.iter().map(|l| l.root.clone()).collect();
    let dir = match (&opts.output, loaded.as_slice()) {
        (Some(dir), _) => dir.clone(),
        (None, [one]) => one.root.join("report"),
        (None, _) => common_parent(&roots)
            .join("reports")
            .join(safe_name(&titles.join("+"))),
    };
    let mut runs: Vec<RunResults> = Vec::new();
    let mut seen: Vec<PathBuf> = Vec::new();
    for r in loaded.into_iter().flat_map(|l| l.runs) {
        // The same run reached twice (its own directory and its sweep's).
        let dir = std::fs::canonicalize(&r.dir).unwrap_or(r.dir.clone());
        if !seen.contains(&dir) {
            seen.push(dir);
            runs.push(r);
        }
    }
    let experiments = distinct(runs.iter().map(|r| r.experiment.as_str()));
    if experiments.len() > 1 {
        for r in &mut runs {
            r.id = format!("{}/{}", r.experiment, r.id);
        }
    }
    write_report(&dir, &titles.join(" + "), &roots, runs, opts)
}

/// The values of `items` in first-seen order, once each.
fn distinct<'a>(items: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

/// The longest common leading directory of `paths` (`.` when none).
fn common_parent(paths: &[PathBuf]) -> PathBuf {
    let mut common: Vec<std::path::Component> = match paths.first() {
        Some(p) => p
            .parent()
            .map(|p| p.components().collect())
            .unwrap_or_default(),
        None => Vec::new(),
    };
    for p in paths.iter().skip(1) {
        let n = common
            .iter()
            .zip(p.components())
            .take_while(|(a, b)| *a == b)
            .count();
        common.truncate(n);
    }
    match common.is_empty() {
        true => PathBuf::from("."),
        false => common.iter().collect(),
    }
}

/// `text` as a file name: characters other than letters, digits and
/// `._=,+-` as `_`, at most 100 bytes.
fn safe_name(text: &str) -> String {
    let safe: String = text
        .chars()
        .map(
            |c| match c.is_ascii_alphanumeric() || "._=,+-".contains(c) {
                true => c,
                false => '_',
            },
        )
        .collect();
    safe.chars().take(100).collect()
}

/// The run ids of `runs.csv` in its order (empty without the file).
fn runs_csv_order(path: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines().skip(1).filter_map(first_csv_field).collect()
}

/// The first field of a CSV line (quoted or not).
fn first_csv_field(line: &str) -> Option<String> {
    let Some(rest) = line.strip_prefix('"') else {
        return line.split(',').next().map(str::to_string);
    };
    let mut out = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if chars.peek() == Some(&'"') => {
                out.push('"');
                chars.next();
            }
            '"' => return Some(out),
            c => out.push(c),
        }
    }
    None
}

/// A group of runs: its names and members.
struct Group<'a> {
    /// The name in the table of final values: distinct among the groups.
    name: String,
    /// The name in a chart's legend: the name without the task's keys
    /// (the chart names the task), distinct among the chart's groups.
    legend_name: String,
    /// Index into the tasks.
    task: usize,
    /// Palette colour: one per legend name, so that a method keeps its
    /// colour on every task's chart.
    colour: usize,
    runs: Vec<&'a RunResults>,
}

impl Group<'_> {
    fn complete(&self) -> impl Iterator<Item = &RunResults> + '_ {
        self.runs.iter().copied().filter(|r| r.state.finished())
    }

    /// Complete runs (of the group's config, as its name says; failed runs
    /// are not counted).
    fn n_complete(&self) -> usize {
        self.complete().count()
    }

    /// Runs drawn: all but the failed ones.
    fn drawn(&self) -> impl Iterator<Item = &RunResults> + '_ {
        self.runs
            .iter()
            .copied()
            .filter(|r| !matches!(r.state, RunState::Failed(_)))
    }

    /// The legend text: the name, and how many runs are complete when not all are.
    fn legend(&self) -> String {
        let drawn = self.drawn().count();
        match self.n_complete() == drawn {
            true => self.legend_name.clone(),
            false => format!(
                "{} ({} of {} runs complete)",
                self.legend_name,
                self.n_complete(),
                drawn
            ),
        }
    }

    /// The curve of `metric`: at each x, mean and 95% band over the drawn
    /// runs that have a finite value there.
    fn curve(&self, metric: &str) -> Curve {
        let mut pts: Vec<(f64, f64)> = self
            .drawn()
            .flat_map(|r| r.series(metric))
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut points = Vec::new();
        let mut i = 0;
        while i < pts.len() {
            let x = pts[i].0;
            let ys: Vec<f64> = pts[i..]
                .iter()
                .take_while(|p| p.0 == x)
                .map(|p| p.1)
                .collect();
            i += ys.len();
            let (mean, _, ci) = mean_std_ci(&ys);
            let band = (ys.len() >= 2 && ci.is_finite()).then_some((mean - ci, mean + ci));
            points.push((x, mean, band));
        }
        Curve {
            label: self.legend(),
            points,
            partial: self.n_complete() < self.drawn().count(),
            colour: self.colour,
        }
    }
}

/// A task: runs with the same `[env]` settings, drawn on charts of their own.
struct Task {
    /// The `[env]` settings that tell it from the other tasks, `k=v, ...`
    /// (empty when there is one task).
    name: String,
    /// The x column of its runs (`step`, `round`, `iteration`).
    x_column: String,
}

/// The groups of `runs` in first-seen order, and the tasks they belong to.
///
/// Runs are grouped by experiment (when there are several), `label`, the
/// keys their ids vary (seed aside), and every setting that differs between
/// runs equal in all of these or between a run and the config its
/// experiment file would run (`settings::distinguishing`, as `summary.csv`
/// groups). A group is named by the experiment (when there are several),
/// the label, and `key=value` for each of those keys whose value the
/// experiment and label do not determine, or in which the group's runs
/// differ from their experiment file; with nothing to name, by `fallback`.
fn groups<'a>(runs: &'a [RunResults], fallback: &str) -> (Vec<Group<'a>>, Vec<Task>) {
    let several = distinct(runs.iter().map(|r| r.experiment.as_str())).len() > 1;
    let identity = |r: &RunResults| -> (String, String) {
        (
            if several {
                r.experiment.clone()
            } else {
                String::new()
            },
            r.label.clone().unwrap_or_default(),
        )
    };
    let mut keys: Vec<String> = Vec::new();
    for k in runs.iter().flat_map(|r| r.keys.iter()) {
        if !keys.contains(k) {
            keys.push(k.clone());
        }
    }
    let primary = |r: &RunResults| -> Vec<String> { keys.iter().map(|k| r.value(k)).collect() };
    let by_keys: Vec<((String, String), Vec<String>)> =
        runs.iter().map(|r| (identity(r), primary(r))).collect();
    let extra = settings::distinguishing(
        &by_keys,
        &runs.iter().map(|r| Some(&r.settings)).collect::<Vec<_>>(),
        &runs.iter().map(|r| r.want.as_ref()).collect::<Vec<_>>(),
        |leaf| leaf == "label" || settings::covered_by(&keys, leaf),
    );
    // The budget first: the settings that follow it (the grid's default
    // `eval.every`) are then determined by it.
    let mut extra: Vec<String> = extra.into_iter().collect();
    extra.sort_by_key(|k| k != settings::BUDGET_KEYS[0]);
    let all_keys: Vec<String> = keys.iter().cloned().chain(extra).collect();
    // Whether the value of `k` is equal in all runs equal in the experiment,
    // the label and the keys `given`.
    let determined = |k: &str, given: &[&str]| {
        let mut seen: Vec<(Vec<String>, String)> = Vec::new();
        runs.iter().all(|r| {
            let (e, l) = identity(r);
            let ctx: Vec<String> = [e, l]
                .into_iter()
                .chain(given.iter().map(|g| r.value(g)))
                .collect();
            let v = r.value(k);
            match seen.iter().find(|(c, _)| *c == ctx) {
                Some((_, w)) => *w == v,
                None => {
                    seen.push((ctx, v));
                    true
                }
            }
        })
    };
    // Named in every group: the keys the experiment, the label and the keys
    // named before do not determine.
    let mut named: Vec<&str> = Vec::new();
    for k in &all_keys {
        if !determined(k, &named) {
            named.push(k);
        }
    }
    // Named in a group whose runs differ from their experiment file: the
    // first key that differs, and the others it does not determine.
    let from_file = |r: &RunResults| -> Vec<&str> {
        let Some(want) = &r.want else {
            return Vec::new();
        };
        let differing: Vec<&str> = all_keys
            .iter()
            .map(String::as_str)
            .filter(|k| !named.contains(k) && want.get(*k) != r.settings.get(*k))
            .collect();
        let Some((&first, rest)) = differing.split_first() else {
            return Vec::new();
        };
        let given: Vec<&str> = named.iter().copied().chain([first]).collect();
        [first]
            .into_iter()
            .chain(rest.iter().copied().filter(|k| !determined(k, &given)))
            .collect()
    };

    // Tasks: the [env] settings of each run.
    let mut task_of: Vec<BTreeMap<&str, &str>> = Vec::new();
    let task_index: Vec<usize> = runs
        .iter()
        .map(|r| {
            let t = r.task();
            match task_of.iter().position(|u| *u == t) {
                Some(i) => i,
                None => {
                    task_of.push(t);
                    task_of.len() - 1
                }
            }
        })
        .collect();
    let task_keys: Vec<&str> = {
        let mut ks: Vec<&str> = task_of.iter().flat_map(|t| t.keys().copied()).collect();
        ks.sort();
        ks.dedup();
        ks.retain(|k| task_of.iter().any(|t| t.get(k) != task_of[0].get(k)));
        // The kind first.
        ks.sort_by_key(|k| *k != "env.kind");
        ks
    };
    let tasks: Vec<Task> = task_of
        .iter()
        .enumerate()
        .map(|(i, t)| Task {
            name: task_keys
                .iter()
                .filter_map(|k| Some(format!("{k}={}", excerpt(t.get(k)?))))
                .collect::<Vec<_>>()
                .join(", "),
            x_column: runs
                .iter()
                .zip(&task_index)
                .filter(|(_, &ti)| ti == i)
                .find_map(|(r, _)| r.header.first().cloned())
                .unwrap_or_else(|| "step".into()),
        })
        .collect();

    let mut out: Vec<(Vec<String>, Group<'a>)> = Vec::new();
    let mut legends: Vec<String> = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        let (experiment, label) = identity(r);
        let values: Vec<String> = all_keys.iter().map(|k| r.value(k)).collect();
        let key: Vec<String> = [experiment.clone(), label.clone()]
            .into_iter()
            .chain(values.iter().cloned())
            .collect();
        if let Some((_, g)) = out.iter_mut().find(|(k, _)| *k == key) {
            g.runs.push(r);
            continue;
        }
        let mut parts: Vec<String> = [experiment, label]
            .into_iter()
            .filter(|p| !p.is_empty())
            .collect();
        let mut legend_parts = parts.clone();
        let shown = from_file(r);
        for (k, v) in all_keys.iter().zip(&values) {
            if named.contains(&k.as_str()) || shown.contains(&k.as_str()) {
                let part = format!("{k}={}", excerpt(v));
                if !(k.starts_with("env.") && tasks.len() > 1) {
                    legend_parts.push(part.clone());
                }
                parts.push(part);
            }
        }
        let name_or = |p: Vec<String>| match p.is_empty() {
            true => fallback.to_string(),
            false => p.join(", "),
        };
        let legend_name = name_or(legend_parts);
        let colour = match legends.iter().position(|l| *l == legend_name) {
            Some(c) => c,
            None => {
                legends.push(legend_name.clone());
                legends.len() - 1
            }
        };
        out.push((
            key,
            Group {
                name: name_or(parts),
                legend_name,
                task: task_index[i],
                colour,
                runs: vec![r],
            },
        ));
    }
    (out.into_iter().map(|(_, g)| g).collect(), tasks)
}

/// A number with 4 significant digits (scientific below 1e-3 or from 1e6).
pub fn sig4(x: f64) -> String {
    if !x.is_finite() {
        return if x.is_nan() {
            "nan".into()
        } else {
            format!("{x}")
        };
    }
    if x == 0.0 {
        return "0".into();
    }
    let a = x.abs();
    if !(1e-3..1e6).contains(&a) {
        return format!("{x:.3e}");
    }
    let decimals = (3 - a.log10().floor() as i32).max(0) as usize;
    format!("{x:.decimals$}")
}

/// The columns of `runs` but the first (x) and `wall_s`, in first-seen order.
fn columns<'a>(runs: impl Iterator<Item = &'a RunResults>) -> Vec<&'a str> {
    distinct(
        runs.flat_map(|r| r.header.iter().skip(1))
            .map(String::as_str)
            .filter(|h| *h != "wall_s"),
    )
}

/// Draw the charts and write `report.md` into `dir`.
fn write_report(
    dir: &Path,
    title: &str,
    roots: &[PathBuf],
    runs: Vec<RunResults>,
    opts: &ReportOptions,
) -> Result<Report, ReportError> {
    let all_columns = columns(runs.iter());
    if let Some(asked) = &opts.metrics {
        if let Some(m) = asked.iter().find(|m| !all_columns.contains(&m.as_str())) {
            return Err(ReportError::UnknownMetric {
                name: m.clone(),
                available: all_columns.join(", "),
            });
        }
    }
    // The metrics of a set of columns: those asked for, else the headline ones.
    let metrics_in = |cols: &[&str]| -> Vec<String> {
        match &opts.metrics {
            Some(asked) => asked
                .iter()
                .filter(|m| cols.contains(&m.as_str()))
                .cloned()
                .collect(),
            None => DEFAULT_METRICS
                .iter()
                .filter(|m| cols.contains(m))
                .map(|m| m.to_string())
                .collect(),
        }
    };
    let metrics = metrics_in(&all_columns);
    let (groups, tasks) = groups(&runs, title);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |cause| ReportError::Io { path, cause }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut charts = Vec::new();
    let mut sections = String::new();
    let several = tasks.len() > 1;
    for m in &metrics {
        for (t, task) in tasks.iter().enumerate() {
            let in_task: Vec<&Group> = groups.iter().filter(|g| g.task == t).collect();
            let task_columns = columns(in_task.iter().flat_map(|g| g.runs.iter().copied()));
            if !metrics_in(&task_columns).contains(m) {
                continue;
            }
            let (heading, file, chart_title) = match several {
                false => (m.clone(), format!("{m}.png"), format!("{m}: {title}")),
                true => {
                    let slug = match safe_name(&task.name) {
                        s if s.len() <= 60 => s,
                        _ => format!("task{}", t + 1),
                    };
                    (
                        format!("{m}: {}", task.name),
                        format!("{m}_{slug}.png"),
                        format!("{m}: {title}, {}", task.name),
                    )
                }
            };
            let curves: Vec<Curve> = in_task
                .iter()
                .map(|g| g.curve(m))
                .filter(|c| !c.points.is_empty())
                .collect();
            sections.push_str(&format!("\n## {heading}\n\n"));
            if curves.is_empty() {
                sections.push_str("No run has a value yet.\n");
                continue;
            }
            let path = dir.join(&file);
            line_chart(
                &path,
                &chart_title,
                describe_x(&task.x_column),
                describe(m),
                &curves,
            )?;
            sections.push_str(&format!(
                "![{heading}]({file})\n\n{}: mean over each group's runs{}.\n",
                describe(m),
                if in_task.iter().any(|g| g.drawn().count() > 1) {
                    ", shaded: 95% t-interval over the runs"
                } else {
                    ""
                }
            ));
            charts.push(path);
        }
    }
    let counts = Counts::of(&runs);
    let n_not_started = runs
        .iter()
        .filter(|r| r.state == RunState::Incomplete(None) && r.rows.is_empty())
        .count();
    let mut page = format!(
        "# Report: {title}\n\n{} run(s) in {}: {}{}. Written by `runner report`.\n",
        runs.len(),
        roots
            .iter()
            .map(|r| format!("`{}`", r.display()))
            .collect::<Vec<_>>()
            .join(", "),
        counts.describe(),
        match n_not_started {
            0 => String::new(),
            n => format!(" ({n} not started)"),
        }
    );
    page.push_str(&summary_table(&groups, &metrics));
    page.push_str(&sections);
    let x_columns = distinct(tasks.iter().map(|t| t.x_column.as_str()));
    let x_column = match x_columns.as_slice() {
        [one] => one.to_string(),
        _ => x_columns.join(" / "),
    };
    page.push_str(&runs_table(&runs, &x_column));
    let page_path = dir.join("report.md");
    write_atomic(&page_path, page.as_bytes()).map_err(io(&page_path))?;
    Ok(Report {
        page: page_path,
        charts,
        counts,
    })
}

/// The final values of every group: mean ± 95% interval of each metric's
/// last row over the group's complete runs (the numbers of `summary.csv`).
fn summary_table(groups: &[Group<'_>], metrics: &[String]) -> String {
    let mut t = String::from(
        "\n## Final values\n\nLast row of each complete run's `metrics.csv`: mean ± 95% \
         t-interval over a group's complete runs (one run: its value).\n\n| group | complete |",
    );
    for m in metrics {
        t.push_str(&format!(" {m} |"));
    }
    t.push_str("\n|---|---|");
    t.push_str(&"---|".repeat(metrics.len()));
    t.push('\n');
    for g in groups {
        t.push_str(&format!(
            "| {} | {}/{} |",
            g.name.replace('|', "\\|"),
            g.n_complete(),
            g.runs.len()
        ));
        for m in metrics {
            let xs: Vec<f64> = g.complete().filter_map(|r| r.last(m)).collect();
            let cell = match mean_std_ci(&xs) {
                _ if xs.is_empty() => "–".to_string(),
                (mean, _, ci) if ci.is_finite() => format!("{} ± {}", sig4(mean), sig4(ci)),
                (mean, ..) => sig4(mean),
            };
            t.push_str(&format!(" {cell} |"));
        }
        t.push('\n');
    }
    t
}

/// Every run's state: complete, complete with another config (how), failed
/// (with its error), or how far it got.
fn runs_table(runs: &[RunResults], x_column: &str) -> String {
    let mut t =
        format!("\n## Runs\n\n| run | state | last {x_column} | budget |\n|---|---|---|---|\n");
    for r in runs {
        let state = match &r.state {
            RunState::Complete => "complete".to_string(),
            RunState::Elsewhere(o) => o.message.clone(),
            RunState::Failed(m) => format!("failed: {}", m.replace('\n', " ")),
            RunState::Incomplete(None) if r.rows.is_empty() => "not started".to_string(),
            RunState::Incomplete(None) => "incomplete (running or interrupted)".to_string(),
            RunState::Incomplete(Some(why)) => format!("incomplete: {why}"),
        };
        let fmt = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v}"));
        t.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            r.id,
            state.replace('|', "\\|"),
            fmt(r.last_step()),
            fmt(r.budget)
        ));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_csv_fields() {
        assert_eq!(sig4(16.666666), "16.67");
        assert_eq!(sig4(246.6), "246.6");
        assert_eq!(sig4(0.012346), "0.01235");
        assert_eq!(sig4(1.6e-6), "1.600e-6");
        assert_eq!(sig4(24000.0), "24000");
        assert_eq!(first_csv_field("\"a,b\"\"c\",x").as_deref(), Some("a,b\"c"));
        assert_eq!(first_csv_field("plain,x").as_deref(), Some("plain"));
    }

    /// A run of experiment `name` with the config `toml` and `metric` ys at
    /// steps 0, 10, 20...; its id varies `keys`.
    fn run(id: &str, config: &str, keys: &[&str], ys: &[f64], state: RunState) -> RunResults {
        let config: toml::Table = toml::from_str(config).unwrap();
        RunResults {
            id: id.into(),
            dir: PathBuf::from(id),
            experiment: config["name"].as_str().unwrap().into(),
            label: config
                .get("label")
                .and_then(|l| l.as_str())
                .map(String::from),
            state,
            budget: Some(20.0),
            header: vec!["step".into(), "m".into()],
            rows: ys
                .iter()
                .enumerate()
                .map(|(i, &y)| vec![10.0 * i as f64, y])
                .collect(),
            finals: vec![("m".into(), ys.last().copied())],
            settings: settings::settings(&config),
            config: Some(config),
            keys: keys.iter().map(|k| k.to_string()).collect(),
            want: None,
        }
    }

    /// Two seeds of one group: the curve's mean and band at each step by
    /// hand (values 2 and 4: mean 3, sample std sqrt(2), t(1 df) = 12.706,
    /// half-width 12.706 * sqrt(2) / sqrt(2) = 12.706).
    #[test]
    fn curve_mean_and_band_by_hand() {
        let c = "name = \"x\"\nlabel = \"TB\"\n";
        let runs = vec![
            run(
                "label=TB,seed=0",
                c,
                &[],
                &[0.0, 2.0, 5.0],
                RunState::Complete,
            ),
            run(
                "label=TB,seed=1",
                c,
                &[],
                &[0.0, 4.0],
                RunState::Incomplete(None),
            ),
            run(
                "label=TB,seed=2",
                c,
                &[],
                &[9.0],
                RunState::Failed("NaN loss".into()),
            ),
        ];
        let (g, tasks) = groups(&runs, "x");
        assert_eq!((g.len(), tasks.len()), (1, 1));
        let c = g[0].curve("m");
        assert!(c.partial);
        assert_eq!(c.label, "TB (1 of 2 runs complete)");
        assert_eq!(c.points[0], (0.0, 0.0, Some((0.0, 0.0))));
        let (x, mean, band) = c.points[1];
        assert_eq!((x, mean), (10.0, 3.0));
        let (lo, hi) = band.unwrap();
        assert!((lo - (3.0 - 12.706)).abs() < 1e-9 && (hi - (3.0 + 12.706)).abs() < 1e-9);
        assert_eq!(c.points[2], (20.0, 5.0, None));
        // The table: complete runs only.
        let t = summary_table(&g, &["m".into()]);
        assert!(t.contains("| TB | 1/3 | 5.000 |"), "{t}");
    }

    /// Groups are named by the label and the keys it does not determine;
    /// keys the label determines (the method's table) stay out; runs of
    /// other `[env]` settings are other tasks, whose charts name them, so
    /// their legends leave the env keys out and keep one colour per method.
    #[test]
    fn group_names_are_distinct_and_tasks_apart() {
        let cfg = |label: &str, kind: &str, target: u32| {
            format!(
                "name = \"cmp\"\nlabel = \"{label}\"\n[env]\nkind = \"rna\"\ntarget = {target}\n\
                 [behaviour]\nkind = \"{kind}\"\n"
            )
        };
        let keys = ["env.target", "behaviour"];
        let mut runs = Vec::new();
        for target in [1, 2] {
            for (label, kind) in [("TB-PRT", "on_policy"), ("Teacher-PRT", "teacher")] {
                for seed in 0..2 {
                    runs.push(run(
                        &format!("env.target={target},label={label},seed={seed}"),
                        &cfg(label, kind, target),
                        &keys,
                        &[1.0, 2.0],
                        RunState::Complete,
                    ));
                }
            }
        }
        let (g, tasks) = groups(&runs, "cmp");
        let names: Vec<&str> = g.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "TB-PRT, env.target=1",
                "Teacher-PRT, env.target=1",
                "TB-PRT, env.target=2",
                "Teacher-PRT, env.target=2"
            ]
        );
        let legends: Vec<(&str, usize, usize)> = g
            .iter()
            .map(|g| (g.legend_name.as_str(), g.task, g.colour))
            .collect();
        assert_eq!(
            legends,
            [
                ("TB-PRT", 0, 0),
                ("Teacher-PRT", 0, 1),
                ("TB-PRT", 1, 0),
                ("Teacher-PRT", 1, 1)
            ]
        );
        let task_names: Vec<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(task_names, ["env.target=1", "env.target=2"]);
    }

    /// Without a label, the varied keys name the group; a setting that
    /// differs inside a group of the varied keys (another budget) is named
    /// too; a run alone is named by the fallback.
    #[test]
    fn unlabelled_groups_and_differing_settings() {
        let cfg = |lr: &str, steps: u32| {
            format!("name = \"s\"\n[objective]\nlr = {lr}\n[train]\nsteps = {steps}\n")
        };
        let runs = vec![
            run(
                "objective.lr=0.001,seed=0",
                &cfg("0.001", 40),
                &["objective.lr"],
                &[1.0],
                RunState::Complete,
            ),
            run(
                "objective.lr=0.001,seed=1",
                &cfg("0.001", 20),
                &["objective.lr"],
                &[1.0],
                RunState::Complete,
            ),
            run(
                "objective.lr=0.01,seed=0",
                &cfg("0.01", 40),
                &["objective.lr"],
                &[1.0],
                RunState::Complete,
            ),
        ];
        let (g, _) = groups(&runs, "s");
        let names: Vec<&str> = g.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "objective.lr=0.001, train.steps=40",
                "objective.lr=0.001, train.steps=20",
                "objective.lr=0.01, train.steps=40"
            ]
        );
        let (g, _) = groups(&runs[..1], "s");
        assert_eq!(g[0].name, "s");
    }

    /// A CSV is refused, naming what is expected and the results directory
    /// it is in; a TOML file, or a path without an extension, is an
    /// experiment file.
    #[test]
    fn input_kinds() {
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join("runs.csv");
        std::fs::write(&runs, "run_id\n").unwrap();
        let e = input_kind(&runs).unwrap_err().to_string();
        assert!(
            e.contains("not a path `runner report` reads")
                && e.contains("experiment file (.toml)")
                && e.contains(&format!("pass their directory {}", dir.path().display())),
            "{e}"
        );
        let file = dir.path().join("x.toml");
        std::fs::write(&file, "").unwrap();
        assert_eq!(input_kind(&file).unwrap(), InputKind::Experiment);
        assert_eq!(input_kind(dir.path()).unwrap(), InputKind::Results);
        assert!(input_kind(&dir.path().join("none"))
            .unwrap_err()
            .to_string()
            .contains("no results here"));
    }
}
