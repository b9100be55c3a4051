//! `runs.csv` and `summary.csv`, rebuilt from the run directories.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{run_dir, varied_keys, RunSpec};
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
    /// `None`: the run has not finished (never ran, or was interrupted).
    pub status: Option<RunStatus>,
    /// Final value of every metric (the last row of `metrics.csv`, without
    /// `wall_s`); `None` for an empty cell (a metric without data, such as
    /// `eubo` where no exact samples exist).
    pub metrics: Vec<(String, Option<f64>)>,
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

/// Rebuild `runs.csv` and `summary.csv` of `specs` under `<out>/<name>/`
/// from the run directories; returns the rows. Rows follow the expansion
/// order, so the tables do not depend on which run finished first.
pub fn collect(out: &Path, specs: &[RunSpec]) -> Result<Vec<RunRow>, (PathBuf, std::io::Error)> {
    collect_with(out, specs, &HashMap::new())
}

/// [`collect`], with the statuses of `known` (by run id) taking the place of
/// what the directories hold: the failures of this process, whose
/// `status.toml` may be the very file that could not be written.
pub fn collect_with(
    out: &Path,
    specs: &[RunSpec],
    known: &HashMap<String, RunStatus>,
) -> Result<Vec<RunRow>, (PathBuf, std::io::Error)> {
    let Some(first) = specs.first() else {
        return Ok(Vec::new());
    };
    let root = out.join(&first.plan.resolved.name);
    let keys = varied_keys(specs);
    let rows: Vec<RunRow> = specs
        .iter()
        .map(|s| {
            let dir = run_dir(out, s);
            RunRow {
                id: s.id.clone(),
                status: known.get(&s.id).cloned().or_else(|| read_status(&dir)),
                metrics: final_metrics(&dir),
            }
        })
        .collect();
    let metric_names: Vec<String> = rows
        .iter()
        .find(|r| !r.metrics.is_empty())
        .map(|r| r.metrics.iter().map(|(k, _)| k.clone()).collect())
        .unwrap_or_default();

    // runs.csv
    let mut text = String::new();
    let mut header = vec!["run_id".to_string()];
    header.extend(keys.iter().cloned());
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
    for (spec, row) in specs.iter().zip(&rows) {
        let mut cells = vec![csv_field(&row.id)];
        cells.extend(spec.varied.iter().map(|(_, v)| csv_field(v)));
        let (status, message, wall) = match &row.status {
            Some(s) if s.ok => ("ok", String::new(), fmt_f64(s.wall_s)),
            Some(s) => ("failed", s.message.clone(), fmt_f64(s.wall_s)),
            None => ("incomplete", String::new(), String::new()),
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

    // summary.csv: groups of the varied keys other than seed, in first-seen order.
    let group_keys: Vec<&String> = keys.iter().filter(|k| *k != "seed").collect();
    let mut groups: Vec<(Vec<String>, Vec<usize>)> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let key: Vec<String> = spec
            .varied
            .iter()
            .filter(|(k, _)| k != "seed")
            .map(|(_, v)| v.clone())
            .collect();
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
    let mut header: Vec<String> = group_keys.iter().map(|k| csv_field(k)).collect();
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
