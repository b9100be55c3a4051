//! `runner report`: charts and a one-page summary of a run's or a sweep's
//! results, written to `<results>/report/`.
//!
//! The input is a run directory (`metrics.csv`, `config.toml`), a sweep's
//! results directory (`<out>/<name>/`, one directory per run), or the
//! experiment file itself (whose expansion names every run, also those that
//! never started). Runs are grouped as in `summary.csv`: by their id without
//! the seed, named by their `label` when they have one. For each headline
//! metric ([`DEFAULT_METRICS`] present in the runs' columns, or `--metrics`)
//! one PNG shows a line per group, the mean over its runs at each step, and a
//! shaded 95% t-interval where at least two runs have a value. Unfinished
//! runs are drawn up to their last row, and their group's line ends in an open
//! circle and says how many runs are complete; failed runs are left out of
//! the charts and the table (as from `summary.csv`) and listed with their
//! error. `report.md` embeds the charts under a table of final values (mean
//! ± 95% interval over the complete runs: the numbers of `summary.csv`) and a
//! table of every run's state.

use std::path::{Path, PathBuf};

use crate::output::curves::{line_chart, Curve};
use crate::output::plot::PlotError;
use crate::output::write_atomic;
use crate::sweep::{final_metrics, mean_std_ci, run_dir, verified_status, RunSpec};

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

/// Errors of a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Nothing to report at the path.
    #[error(
        "{path}: no results here: expected a run directory (with metrics.csv), a sweep's \
         results directory (<out>/<name>, one directory per run), or an experiment file"
    )]
    NoResults {
        /// The path given.
        path: PathBuf,
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

/// How a run stands.
#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    /// Finished, with a trusted `metrics.csv`.
    Complete,
    /// Finished with an error.
    Failed(String),
    /// Running, interrupted, or not started (no status yet); or a status that
    /// cannot be trusted (why).
    Incomplete(Option<String>),
}

/// One run's results.
#[derive(Debug, Clone)]
struct RunResults {
    /// Directory name (the run id).
    id: String,
    /// The id without its seed: runs with equal keys form a group.
    group: String,
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

/// The id of a run without its seed (`label=TB,seed=2` -> `label=TB`;
/// `seed=2` -> ``): seeds are the last key of an id.
fn group_of(id: &str) -> String {
    match id.rfind("seed=") {
        Some(0) => String::new(),
        Some(i) if id[..i].ends_with(',') && id[i + 5..].parse::<i64>().is_ok() => {
            id[..i - 1].to_string()
        }
        _ => id.to_string(),
    }
}

/// A run's results from its directory; `label` and `budget` from its
/// `config.toml` unless given.
fn load_run(dir: &Path, id: String, label: Option<String>, budget: Option<f64>) -> RunResults {
    let config: Option<toml::Table> = std::fs::read_to_string(dir.join("config.toml"))
        .ok()
        .and_then(|t| t.parse().ok());
    let label = label.or_else(|| {
        config
            .as_ref()
            .and_then(|c| c.get("label")?.as_str().map(str::to_string))
    });
    let budget = budget.or_else(|| {
        config
            .as_ref()
            .and_then(|c| c.get("train")?.get("steps")?.as_integer())
            .map(|s| s as f64)
    });
    let state = match verified_status(dir) {
        Ok(Some(s)) if s.ok => RunState::Complete,
        Ok(Some(s)) => RunState::Failed(s.message),
        Ok(None) => RunState::Incomplete(None),
        Err(why) => RunState::Incomplete(Some(why)),
    };
    let (header, rows) = read_metrics(dir);
    RunResults {
        group: group_of(&id),
        id,
        label,
        state,
        budget,
        header,
        rows,
        finals: final_metrics(dir),
    }
}

/// What `runner report` wrote.
#[derive(Debug, Clone)]
pub struct Report {
    /// `report.md`.
    pub page: PathBuf,
    /// The charts, one per metric drawn.
    pub charts: Vec<PathBuf>,
    /// Runs reported, and how many are complete, failed, incomplete.
    pub counts: (usize, usize, usize, usize),
}

/// Options of a report.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// Metrics to draw (default: [`DEFAULT_METRICS`] that the runs have).
    pub metrics: Option<Vec<String>>,
}

/// The report of the results at `path`: a run directory or a sweep's
/// results directory (see the module documentation).
pub fn report_dir(path: &Path, opts: &ReportOptions) -> Result<Report, ReportError> {
    let no_results = || ReportError::NoResults {
        path: path.to_path_buf(),
    };
    if !path.is_dir() {
        return Err(no_results());
    }
    let name_of = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| p.display().to_string())
    };
    let is_run = |d: &Path| d.join("metrics.csv").is_file() || d.join("config.toml").is_file();
    if is_run(path) {
        let run = load_run(path, name_of(path), None, None);
        let title = experiment_name(path).unwrap_or_else(|| name_of(path));
        return write_report(path, &title, vec![run], opts);
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
    let runs = dirs
        .iter()
        .map(|d| load_run(d, name_of(d), None, None))
        .collect();
    write_report(path, &name_of(path), runs, opts)
}

/// The report of the runs of an expanded experiment under `out`: every run
/// of the expansion, in its order, also those that have not started.
pub fn report_specs(
    specs: &[RunSpec],
    out: &Path,
    opts: &ReportOptions,
) -> Result<Report, ReportError> {
    let Some(first) = specs.first() else {
        return Err(ReportError::NoResults {
            path: out.to_path_buf(),
        });
    };
    let name = &first.plan.resolved.name;
    let root = out.join(name);
    if specs.len() == 1 {
        let dir = run_dir(out, first);
        if !dir.is_dir() {
            return Err(ReportError::NoResults { path: dir });
        }
        return report_dir(&dir, opts);
    }
    let runs = specs
        .iter()
        .map(|s| {
            load_run(
                &run_dir(out, s),
                s.id.clone(),
                s.plan.resolved.label.clone(),
                Some(s.plan.steps as f64),
            )
        })
        .collect();
    write_report(&root, name, runs, opts)
}

/// The experiment name in a run's `config.toml`.
fn experiment_name(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("config.toml")).ok()?;
    let table: toml::Table = text.parse().ok()?;
    table.get("name")?.as_str().map(str::to_string)
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

/// A group of runs: its legend name and members.
struct Group<'a> {
    name: String,
    runs: Vec<&'a RunResults>,
}

impl Group<'_> {
    fn complete(&self) -> impl Iterator<Item = &RunResults> + '_ {
        self.runs
            .iter()
            .copied()
            .filter(|r| r.state == RunState::Complete)
    }

    /// Complete runs of `n` (failed runs are not counted).
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
            true => self.name.clone(),
            false => format!(
                "{} ({} of {} runs complete)",
                self.name,
                self.n_complete(),
                drawn
            ),
        }
    }

    /// The curve of `metric` in palette colour `colour`: at each x, mean and
    /// 95% band over the drawn runs that have a finite value there.
    fn curve(&self, metric: &str, colour: usize) -> Curve {
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
            colour,
        }
    }
}

/// The groups of `runs` in first-seen order.
fn groups<'a>(runs: &'a [RunResults], experiment: &str) -> Vec<Group<'a>> {
    let mut out: Vec<(String, Group<'a>)> = Vec::new();
    for r in runs {
        match out.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, g)) => g.runs.push(r),
            None => {
                let name = match (&r.label, r.group.is_empty()) {
                    (Some(l), _) => l.clone(),
                    (None, true) => experiment.to_string(),
                    (None, false) => r.group.clone(),
                };
                out.push((
                    r.group.clone(),
                    Group {
                        name,
                        runs: vec![r],
                    },
                ));
            }
        }
    }
    out.into_iter().map(|(_, g)| g).collect()
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

/// Draw the charts and write `report.md` under `root/report/`.
fn write_report(
    root: &Path,
    title: &str,
    runs: Vec<RunResults>,
    opts: &ReportOptions,
) -> Result<Report, ReportError> {
    let columns: Vec<&str> = {
        let mut seen: Vec<&str> = Vec::new();
        for h in runs.iter().flat_map(|r| r.header.iter().skip(1)) {
            if h != "wall_s" && !seen.contains(&h.as_str()) {
                seen.push(h);
            }
        }
        seen
    };
    let metrics: Vec<String> = match &opts.metrics {
        Some(asked) => {
            for m in asked {
                if !columns.contains(&m.as_str()) {
                    return Err(ReportError::UnknownMetric {
                        name: m.clone(),
                        available: columns.join(", "),
                    });
                }
            }
            asked.clone()
        }
        None => DEFAULT_METRICS
            .iter()
            .filter(|m| columns.contains(m))
            .map(|m| m.to_string())
            .collect(),
    };
    let x_column = runs
        .iter()
        .find_map(|r| r.header.first().cloned())
        .unwrap_or_else(|| "step".into());
    let groups = groups(&runs, title);
    let dir = root.join("report");
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |cause| ReportError::Io { path, cause }
    };
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let mut charts = Vec::new();
    let mut sections = String::new();
    for m in &metrics {
        let curves: Vec<Curve> = groups
            .iter()
            .enumerate()
            .map(|(i, g)| g.curve(m, i))
            .filter(|c| !c.points.is_empty())
            .collect();
        sections.push_str(&format!("\n## {m}\n\n"));
        if curves.is_empty() {
            sections.push_str("No run has a value yet.\n");
            continue;
        }
        let path = dir.join(format!("{m}.png"));
        line_chart(
            &path,
            &format!("{m}: {title}"),
            describe_x(&x_column),
            describe(m),
            &curves,
        )?;
        sections.push_str(&format!(
            "![{m}]({m}.png)\n\n{}: mean over each group's runs{}.\n",
            describe(m),
            if groups.iter().any(|g| g.drawn().count() > 1) {
                ", shaded: 95% t-interval over the runs"
            } else {
                ""
            }
        ));
        charts.push(path);
    }
    let n_complete = runs
        .iter()
        .filter(|r| r.state == RunState::Complete)
        .count();
    let n_failed = runs
        .iter()
        .filter(|r| matches!(r.state, RunState::Failed(_)))
        .count();
    let n_incomplete = runs.len() - n_complete - n_failed;
    let n_not_started = runs
        .iter()
        .filter(|r| r.state == RunState::Incomplete(None) && r.rows.is_empty())
        .count();
    let mut page = format!(
        "# Report: {title}\n\n{} run(s) in `{}`: {n_complete} complete, {n_failed} failed, \
         {n_incomplete} incomplete{}. Written by `runner report`.\n",
        runs.len(),
        root.display(),
        match n_not_started {
            0 => String::new(),
            n => format!(" ({n} not started)"),
        }
    );
    page.push_str(&summary_table(&groups, &metrics));
    page.push_str(&sections);
    page.push_str(&runs_table(&runs, &x_column));
    let page_path = dir.join("report.md");
    write_atomic(&page_path, page.as_bytes()).map_err(io(&page_path))?;
    Ok(Report {
        page: page_path,
        charts,
        counts: (runs.len(), n_complete, n_failed, n_incomplete),
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
            g.name,
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

/// Every run's state: complete, failed (with its error), or how far it got.
fn runs_table(runs: &[RunResults], x_column: &str) -> String {
    let mut t =
        format!("\n## Runs\n\n| run | state | last {x_column} | budget |\n|---|---|---|---|\n");
    for r in runs {
        let state = match &r.state {
            RunState::Complete => "complete".to_string(),
            RunState::Failed(m) => format!("failed: {}", m.replace('|', "\\|").replace('\n', " ")),
            RunState::Incomplete(None) if r.rows.is_empty() => "not started".to_string(),
            RunState::Incomplete(None) => "incomplete (running or interrupted)".to_string(),
            RunState::Incomplete(Some(why)) => format!("incomplete: {}", why.replace('|', "\\|")),
        };
        let fmt = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v}"));
        t.push_str(&format!(
            "| `{}` | {state} | {} | {} |\n",
            r.id,
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
    fn groups_drop_the_seed() {
        assert_eq!(group_of("label=TB,seed=2"), "label=TB");
        assert_eq!(group_of("seed=0"), "");
        assert_eq!(group_of("env.horizon=8"), "env.horizon=8");
        assert_eq!(group_of("a=seed=x"), "a=seed=x");
    }

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

    /// Two seeds of one group: the curve's mean and band at each step by
    /// hand (values 2 and 4: mean 3, sample std sqrt(2), t(1 df) = 12.706,
    /// half-width 12.706 * sqrt(2) / sqrt(2) = 12.706).
    #[test]
    fn curve_mean_and_band_by_hand() {
        let run = |id: &str, ys: &[f64], state: RunState| RunResults {
            id: id.into(),
            group: group_of(id),
            label: Some("TB".into()),
            state,
            budget: Some(20.0),
            header: vec!["step".into(), "m".into()],
            rows: ys
                .iter()
                .enumerate()
                .map(|(i, &y)| vec![10.0 * i as f64, y])
                .collect(),
            finals: vec![("m".into(), ys.last().copied())],
        };
        let runs = vec![
            run("label=TB,seed=0", &[0.0, 2.0, 5.0], RunState::Complete),
            run("label=TB,seed=1", &[0.0, 4.0], RunState::Incomplete(None)),
            run(
                "label=TB,seed=2",
                &[9.0],
                RunState::Failed("NaN loss".into()),
            ),
        ];
        let g = groups(&runs, "x");
        assert_eq!(g.len(), 1);
        let c = g[0].curve("m", 0);
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
}
