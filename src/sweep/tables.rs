//! `runs.csv` and `summary.csv`, rebuilt from the run directories.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::settings::{self, display, lookup, read_config, OtherConfig, Settings};
use super::{results_dir, varied_keys, RunSpec};
use crate::output::{fmt_f64, write_atomic};

/// Name of the file a finished run leaves in its directory.
pub const STATUS_FILE: &str = "status.toml";

/// How a run ended (`status.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStatus {
    /// Whether the run completed.
    pub ok: bool,
    /// The error of a failed run.
    pub message: String,
    /// Wall time of the run, seconds.
    pub wall_s: f64,
    /// SHA-256 of the run's `metrics.csv` when it completed (resume and the
    /// tables trust a complete run only if the file still has it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_sha256: Option<String>,
}

impl RunStatus {
    /// The status of a failed run.
    pub fn failed(message: String) -> Self {
        RunStatus {
            ok: false,
            message,
            wall_s: f64::NAN,
            metrics_sha256: None,
        }
    }
}

/// The status of the run in `dir`: `Ok(None)` if it has not finished (no
/// status file), `Err(why)` if the status cannot be trusted: the file is not
/// a status, or a complete run's `metrics.csv` is missing or differs from
/// the checksum recorded when it completed (a status without a checksum, from
/// an older runner, needs a `metrics.csv` with at least one row).
pub fn verified_status(dir: &Path) -> Result<Option<RunStatus>, String> {
    if !dir.is_dir() {
        return Ok(None);
    }
    let path = dir.join(STATUS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let status: RunStatus = toml::from_str(&text)
        .map_err(|e| format!("{} is not a run status: {}", path.display(), e.message()))?;
    if !status.ok {
        return Ok(Some(status));
    }
    let metrics = dir.join("metrics.csv");
    let bytes = std::fs::read(&metrics)
        .map_err(|e| format!("marked complete but {}: {e}", metrics.display()))?;
    match &status.metrics_sha256 {
        Some(want) if *want != crate::datasets::sha256_hex(&bytes) => Err(format!(
            "marked complete but {} changed since (SHA-256 differs from the status)",
            metrics.display()
        )),
        None if bytes.iter().filter(|&&b| b == b'\n').count() < 2 => Err(format!(
            "marked complete but {} has no rows",
            metrics.display()
        )),
        _ => Ok(Some(status)),
    }
}

/// The status of the run in `dir` if it finished and can be trusted
/// ([`verified_status`]); an untrusted one counts as not finished.
pub fn read_status(dir: &Path) -> Option<RunStatus> {
    verified_status(dir).ok().flatten()
}

/// One row of `runs.csv`.
#[derive(Debug, Clone)]
pub struct RunRow {
    /// The run id.
    pub id: String,
    /// `None`: the run has not finished (never ran, was interrupted, or is
    /// running).
    pub status: Option<RunStatus>,
    /// The runner holding the run's lock (e.g. `pid 12 on node3`) when it has
    /// no status: the run is running in another process (`running` in
    /// `runs.csv`).
    pub holder: Option<String>,
    /// Final value of every metric (the last row of `metrics.csv`, without
    /// `wall_s`); `None` for an empty cell (a metric without data, such as
    /// `eubo` where no exact samples exist).
    pub metrics: Vec<(String, Option<f64>)>,
    /// A complete run of this command's whose directory holds the results of
    /// another config than the command would run under its id (another
    /// budget, other settings): how they differ. Such a run is not complete
    /// for this command's config (`other_config` in `runs.csv`).
    pub other: Option<OtherConfig>,
}

impl RunRow {
    /// Complete with the config the command would run (not another one).
    pub fn is_ok(&self) -> bool {
        self.status.as_ref().is_some_and(|s| s.ok) && self.other.is_none()
    }
}

/// How the rows stand: `6 runs: 0 ok, 6 complete at another budget, 0
/// failed, 0 incomplete` (runs of another config and runs held by another
/// runner only when there are some).
pub fn describe_rows(rows: &[RunRow]) -> String {
    let count = |f: &dyn Fn(&RunRow) -> bool| rows.iter().filter(|r| f(r)).count();
    let ok = count(&|r| r.is_ok());
    let budget = count(&|r| r.other.as_ref().is_some_and(|o| o.budget_only));
    let other = count(&|r| r.other.as_ref().is_some_and(|o| !o.budget_only));
    let failed = count(&|r| r.status.as_ref().is_some_and(|s| !s.ok));
    let running = count(&|r| r.status.is_none() && r.holder.is_some());
    let mut s = format!("{} runs: {ok} ok", rows.len());
    if budget > 0 {
        s.push_str(&format!(", {budget} complete at another budget"));
    }
    if other > 0 {
        s.push_str(&format!(", {other} complete with another config"));
    }
    s.push_str(&format!(
        ", {failed} failed, {} incomplete",
        rows.len() - ok - budget - other - failed - running
    ));
    if running > 0 {
        s.push_str(&format!(", {running} running in another runner"));
    }
    s
}

/// The last row of `metrics.csv` as (column, value), without `wall_s`.
pub fn final_metrics(dir: &Path) -> Vec<(String, Option<f64>)> {
    let Ok(text) = std::fs::read_to_string(dir.join("metrics.csv")) else {
        return Vec::new();
    };
    let mut lines = text.lines();
    let (Some(header), Some(last)) = (lines.next(), text.lines().last()) else {
        return Vec::new();
    };
    if last == header {
        return Vec::new();
    }
    header
        .split(',')
        .zip(last.split(','))
        .filter(|(h, _)| *h != "wall_s")
        .map(|(h, v)| {
            let value = (!v.is_empty()).then(|| v.parse().unwrap_or(f64::NAN));
            (h.to_string(), value)
        })
        .collect()
}

/// Quote a CSV field when it needs it.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Two-sided 95% Student-t quantiles for 1..=30 degrees of freedom.
const T95: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// (mean, sample std, half-width of the 95% t-interval) of `xs`; NaN where undefined.
pub fn mean_std_ci(xs: &[f64]) -> (f64, f64, f64) {
    let n = xs.len();
    if n == 0 {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let mean = xs.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return (mean, f64::NAN, f64::NAN);
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let std = var.sqrt();
    let t = T95.get(n - 2).copied().unwrap_or(1.96);
    (mean, std, t * std / (n as f64).sqrt())
}

/// Rebuild `runs.csv` and `summary.csv` of the experiment directory
/// `<out>/<name>/` of `specs` from its run directories; returns the rows.
/// The tables list `specs` in expansion order (so they do not depend on which
/// run finished first), then every other run directory there (runs of other
/// invocations: other seeds, other sweep values; see [`other_runs`]).
pub fn collect(out: &Path, specs: &[RunSpec]) -> Result<Vec<RunRow>, (PathBuf, std::io::Error)> {
    collect_with(out, specs, &HashMap::new())
}

/// The status of a run as the tables show it: its directory's own
/// (`status.toml`, when it can be trusted) or, failing that, the one `known`
/// to this process (a failure whose `status.toml` could not be written).
/// The directory wins: another runner may have rerun the run since.
/// A run of `specs` is compared with the config the spec would run
/// (`want`): a complete run of another config says how it differs.
fn row_of(
    dir: &Path,
    id: &str,
    known: &HashMap<String, RunStatus>,
    want: Option<&Settings>,
) -> RunRow {
    let status = read_status(dir).or_else(|| known.get(id).cloned());
    let other = match (&status, want) {
        (Some(s), Some(want)) if s.ok => {
            read_config(dir).and_then(|c| OtherConfig::between(&settings::settings(&c), want))
        }
        _ => None,
    };
    RunRow {
        id: id.to_string(),
        holder: match status {
            None => super::lock::holder(dir),
            Some(_) => None,
        },
        status,
        metrics: final_metrics(dir),
        other,
    }
}

/// The settings of the config `spec` runs.
pub fn spec_settings(spec: &RunSpec) -> Option<Settings> {
    match toml::Value::try_from(&spec.plan.resolved) {
        Ok(toml::Value::Table(t)) => Some(settings::settings(&t)),
        _ => None,
    }
}

/// The rows of `specs` alone, from their directories (see [`row_of`]),
/// without writing anything.
pub fn spec_rows(out: &Path, specs: &[RunSpec], known: &HashMap<String, RunStatus>) -> Vec<RunRow> {
    specs
        .iter()
        .map(|s| {
            row_of(
                &results_dir(out, s),
                &s.id,
                known,
                spec_settings(s).as_ref(),
            )
        })
        .collect()
}

/// The run directories of the experiment directory `root` that are not runs
/// of `specs` (those of other invocations): directories holding a
/// `config.toml`, as (id, directory), in natural order of their ids
/// (`seed=2` before `seed=10`).
pub fn other_runs(root: &Path, specs: &[RunSpec]) -> Vec<(String, PathBuf)> {
    let Ok(read) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let ids: HashSet<&str> = specs
        .iter()
        .flat_map(|s| [Some(s.id.as_str()), s.legacy_id.as_deref()])
        .flatten()
        .collect();
    let mut others: Vec<(String, PathBuf)> = read
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let id = e.file_name().to_str()?.to_string();
            let dir = e.path();
            (!ids.contains(id.as_str()) && dir.join("config.toml").is_file()).then_some((id, dir))
        })
        .collect();
    others.sort_by(|a, b| natural_cmp(&a.0, &b.0));
    others
}

/// Compare two strings with their runs of digits as numbers.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn chunks(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push((bytes[start].is_ascii_digit(), &s[start..i]));
                start = i;
            }
        }
        out
    }
    let (ca, cb) = (chunks(a), chunks(b));
    for (x, y) in ca.iter().zip(&cb) {
        let o = match (x, y) {
            ((true, x), (true, y)) => {
                let (x, y) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
                x.len().cmp(&y.len()).then_with(|| x.cmp(y))
            }
            ((_, x), (_, y)) => x.cmp(y),
        };
        if o.is_ne() {
            return o;
        }
    }
    ca.len().cmp(&cb.len()).then_with(|| a.cmp(b))
}

/// Remove the temporary files of `runs.csv` and `summary.csv` that a runner
/// killed while writing them left in `root` (a minute old at least: one
/// being written by another runner right now is left alone).
fn remove_stale_table_temps(root: &Path) {
    let min_age = std::time::Duration::from_secs(60);
    for table in ["runs.csv", "summary.csv"] {
        crate::output::remove_temp_files(root, Some(table), Some(min_age), false);
    }
}

/// A run listed in the tables, before its row is written.
struct Listed<'a> {
    row: RunRow,
    /// The run of `specs` (`None`: a run of another invocation).
    spec: Option<&'a RunSpec>,
    /// The run's resolved config: its `config.toml`, else the spec's.
    config: Option<toml::Table>,
    /// The settings of the config the spec would run (`None`: another
    /// invocation's run).
    want: Option<Settings>,
}

/// Hold `<root>/.tables.lock` (an OS file lock, released when the process
/// ends, however it ends) while the tables are read and written, so that
/// of two runners finishing together the later one also reads the run
/// directories last. Where the lock cannot be had (no such directory yet, a
/// file system without locks) the tables are written without it.
fn lock_tables(root: &Path) -> Option<std::fs::File> {
    std::fs::create_dir_all(root).ok()?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(root.join(TABLES_LOCK))
        .ok()?;
    file.lock().ok()?;
    Some(file)
}

/// Name of the file [`lock_tables`] locks in an experiment directory.
pub const TABLES_LOCK: &str = ".tables.lock";

/// [`collect`], with the statuses of `known` (by run id) standing in for
/// statuses the run directories lack or that cannot be trusted: the
/// failures of this process, whose `status.toml` may be the very file that
/// could not be written.
///
/// Columns: the run id, the keys varied by `specs` (seed last), the status,
/// the message, the wall time and every final metric. A run of another
/// invocation gets the values of its own `config.toml` for those keys; and
/// every setting whose value differs between two runs that the varied keys
/// would put in one group (e.g. `objective.lr` of `--set seed=0 --set
/// objective.lr=1e-3` next to `--set seed=1`) becomes a column too, and a
/// grouping key of `summary.csv`, so runs of different configs are never
/// averaged together.
pub fn collect_with(
    out: &Path,
    specs: &[RunSpec],
    known: &HashMap<String, RunStatus>,
) -> Result<Vec<RunRow>, (PathBuf, std::io::Error)> {
    let Some(first) = specs.first() else {
        return Ok(Vec::new());
    };
    let root = out.join(&first.plan.resolved.name);
    let _lock = lock_tables(&root);
    remove_stale_table_temps(&root);
    let mut listed: Vec<Listed> = specs
        .iter()
        .map(|s| {
            let dir = results_dir(out, s);
            let want = spec_settings(s);
            Listed {
                row: row_of(&dir, &s.id, known, want.as_ref()),
                config: read_config(&dir).or_else(|| {
                    match toml::Value::try_from(&s.plan.resolved) {
                        Ok(toml::Value::Table(t)) => Some(t),
                        _ => None,
                    }
                }),
                spec: Some(s),
                want,
            }
        })
        .collect();
    for (id, dir) in other_runs(&root, specs) {
        listed.push(Listed {
            row: row_of(&dir, &id, known, None),
            config: read_config(&dir),
            spec: None,
            want: None,
        });
    }

    // The varied keys' values of every run: a spec's as in its id; another
    // run's from its config, written as a spec with an equal config value
    // writes it (so that equal values fall into one group).
    let keys = varied_keys(specs);
    let mut as_written: Vec<HashMap<String, String>> = vec![HashMap::new(); keys.len()];
    for l in &listed {
        if let (Some(spec), Some(config)) = (l.spec, &l.config) {
            for (i, (key, shown)) in spec.varied.iter().enumerate() {
                if let (Some(map), Some(v)) = (as_written.get_mut(i), lookup(config, key)) {
                    map.entry(display(v)).or_insert_with(|| shown.clone());
                }
            }
        }
    }
    let mut values: Vec<Vec<String>> = listed
        .iter()
        .map(|l| match l.spec {
            Some(spec) => spec.varied.iter().map(|(_, v)| v.clone()).collect(),
            None => keys
                .iter()
                .zip(&as_written)
                .map(|(key, map)| {
                    let v = l.config.as_ref().and_then(|c| lookup(c, key));
                    let v = v.map(display).unwrap_or_default();
                    map.get(&v).cloned().unwrap_or(v)
                })
                .collect(),
        })
        .collect();

    // Settings that differ inside a group of the varied keys (without
    // seed), or between a run and the config its spec would run.
    let seed_col = keys.iter().position(|k| k == "seed");
    let group_of = |vals: &[String]| -> Vec<String> {
        vals.iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != seed_col)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let flat: Vec<Option<Settings>> = listed
        .iter()
        .map(|l| l.config.as_ref().map(settings::settings))
        .collect();
    let groups_of: Vec<Vec<String>> = values.iter().map(|v| group_of(v)).collect();
    let extra = settings::distinguishing(
        &groups_of,
        &flat.iter().map(Option::as_ref).collect::<Vec<_>>(),
        &listed.iter().map(|l| l.want.as_ref()).collect::<Vec<_>>(),
        |leaf| settings::covered_by(&keys, leaf),
    );
    // Columns: the varied keys but seed, the differing settings, seed.
    let mut columns: Vec<String> = keys.iter().filter(|k| *k != "seed").cloned().collect();
    columns.extend(extra.iter().cloned());
    columns.extend(seed_col.map(|_| "seed".to_string()));
    for (i, vals) in values.iter_mut().enumerate() {
        let mut row: Vec<String> = group_of(vals);
        row.extend(extra.iter().map(|key| {
            flat[i]
                .as_ref()
                .and_then(|f| f.get(key).cloned())
                .unwrap_or_default()
        }));
        row.extend(seed_col.map(|c| vals[c].clone()));
        *vals = row;
    }
    let n_group = columns.len() - usize::from(seed_col.is_some());
    let rows: Vec<RunRow> = listed.into_iter().map(|l| l.row).collect();
    let metric_names: Vec<String> = rows
        .iter()
        .find(|r| !r.metrics.is_empty())
        .map(|r| r.metrics.iter().map(|(k, _)| k.clone()).collect())
        .unwrap_or_default();

    // runs.csv
    let mut text = String::new();
    let mut header = vec!["run_id".to_string()];
    header.extend(columns.iter().cloned());
    header.extend(["status", "message", "wall_s"].map(String::from));
    header.extend(metric_names.iter().cloned());
    text.push_str(
        &header
            .iter()
            .map(|h| csv_field(h))
            .collect::<Vec<_>>()
            .join(","),
    );
    text.push('\n');
    for (vals, row) in values.iter().zip(&rows) {
        let mut cells = vec![csv_field(&row.id)];
        cells.extend(vals.iter().map(|v| csv_field(v)));
        let (status, message, wall) = match (&row.status, &row.holder) {
            (Some(s), _) if s.ok => match &row.other {
                None => ("ok", String::new(), fmt_f64(s.wall_s)),
                Some(o) => ("other_config", o.message.clone(), fmt_f64(s.wall_s)),
            },
            (Some(s), _) => ("failed", s.message.clone(), fmt_f64(s.wall_s)),
            (None, Some(holder)) => (
                "running",
                format!("in use by another runner ({holder})"),
                String::new(),
            ),
            (None, None) => ("incomplete", String::new(), String::new()),
        };
        cells.extend([status.to_string(), csv_field(&message), wall]);
        for name in &metric_names {
            let v = row
                .metrics
                .iter()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| *v);
            cells.push(v.map(fmt_f64).unwrap_or_default());
        }
        text.push_str(&cells.join(","));
        text.push('\n');
    }
    let path = root.join("runs.csv");
    write_atomic(&path, text.as_bytes()).map_err(|e| (path.clone(), e))?;

    // summary.csv: groups of the columns other than seed, in first-seen order.
    let mut groups: Vec<(&[String], Vec<usize>)> = Vec::new();
    for (i, vals) in values.iter().enumerate() {
        let key = &vals[..n_group];
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(i),
            None => groups.push((key, vec![i])),
        }
    }
    let summarised: Vec<&String> = metric_names
        .iter()
        .filter(|m| *m != "step" && *m != "round")
        .collect();
    let mut text = String::new();
    let mut header: Vec<String> = columns[..n_group].iter().map(|k| csv_field(k)).collect();
    header.extend(["n_runs", "n_ok"].map(String::from));
    for m in &summarised {
        header.extend([format!("{m}_mean"), format!("{m}_std"), format!("{m}_ci95")]);
    }
    text.push_str(&header.join(","));
    text.push('\n');
    for (values, members) in &groups {
        let ok: Vec<&RunRow> = members
            .iter()
            .map(|&i| &rows[i])
            .filter(|r| r.status.as_ref().is_some_and(|s| s.ok))
            .collect();
        let mut cells: Vec<String> = values.iter().map(|v| csv_field(v)).collect();
        cells.extend([members.len().to_string(), ok.len().to_string()]);
        for m in &summarised {
            let xs: Vec<f64> = ok
                .iter()
                .filter_map(|r| {
                    r.metrics
                        .iter()
                        .find(|(k, _)| k == *m)
                        .and_then(|(_, v)| *v)
                })
                .collect();
            if xs.is_empty() {
                // No run of the group has a value (e.g. no exact samples).
                cells.extend([String::new(), String::new(), String::new()]);
            } else {
                let (mean, std, ci) = mean_std_ci(&xs);
                cells.extend([fmt_f64(mean), fmt_f64(std), fmt_f64(ci)]);
            }
        }
        text.push_str(&cells.join(","));
        text.push('\n');
    }
    let path = root.join("summary.csv");
    write_atomic(&path, text.as_bytes()).map_err(|e| (path.clone(), e))?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// mean/std/95% interval by hand: xs = 1, 2, 3, 4 -> mean 2.5,
    /// sample var = (2.25 + 0.25 + 0.25 + 2.25) / 3 = 5/3, t(3 df) = 3.182.
    #[test]
    fn statistics_by_hand() {
        let (m, s, c) = mean_std_ci(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(m, 2.5);
        assert!((s - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert!((c - 3.182 * s / 2.0).abs() < 1e-12);
        let (m, s, c) = mean_std_ci(&[7.0]);
        assert_eq!(m, 7.0);
        assert!(s.is_nan() && c.is_nan());
        assert!(mean_std_ci(&[]).0.is_nan());
    }

    /// An empty metrics cell (a metric without data) stays empty: `None`,
    /// not NaN, so the tables leave it empty too.
    #[test]
    fn empty_metric_cells_stay_empty() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("metrics.csv"),
            "round,eubo,pearson,wall_s\n0,,nan,0.1\n5,,0.5,1.0\n",
        )
        .unwrap();
        let m = final_metrics(dir.path());
        assert_eq!(m[0], ("round".to_string(), Some(5.0)));
        assert_eq!(m[1], ("eubo".to_string(), None));
        assert_eq!(m[2], ("pearson".to_string(), Some(0.5)));
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn csv_quoting() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
    }
}
