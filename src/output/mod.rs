//! Results on disk: atomic writes, the metrics CSV, the progress bar, and
//! pictures ([`plot`]: heatmaps of grid densities; [`scatter`]: samples of
//! the diffusion samplers; [`curves`]: metrics over training, for reports).

pub mod curves;
pub mod plot;
pub mod progress;
pub mod scatter;
pub mod tensorboard;

pub use progress::Progress;

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::metrics::{Metric, MetricSink};

/// Write `contents` to `path` atomically: a temporary file in the same
/// directory (named by process and a per-process counter, so two threads
/// never share one), then a rename, so readers never see a half-written
/// file. On any failure the temporary file is removed: a failed write leaves
/// the old file (if any) and nothing else.
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let tmp = dir.join(temp_name(name, COUNTER.fetch_add(1, Ordering::Relaxed), ""));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// The name of the temporary file of an atomic write of `name`:
/// `.NAME.tmpPID_N` (then `suffix`, e.g. `.png` for the encoder), by process
/// and a per-process counter `n`. [`is_temp_name`] recognises it.
pub(crate) fn temp_name(name: &str, n: u64, suffix: &str) -> String {
    format!(".{name}.tmp{}_{n}{suffix}", std::process::id())
}

/// Whether `file` is the name of a temporary file of an atomic write
/// ([`temp_name`]) of `of` (any file when `None`).
pub fn is_temp_name(file: &str, of: Option<&str>) -> bool {
    let Some(rest) = file.strip_prefix('.') else {
        return false;
    };
    let Some(at) = rest.rfind(".tmp") else {
        return false;
    };
    if of.is_some_and(|of| of != &rest[..at]) || at == 0 {
        return false;
    }
    let tail = &rest[at + 4..];
    // `PID_N`, then an optional extension (`.png`).
    let tail = match tail.split_once('.') {
        Some((t, ext)) if !ext.is_empty() && ext.chars().all(|c| c.is_ascii_alphanumeric()) => t,
        Some(_) => return false,
        None => tail,
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    tail.split_once('_')
        .is_some_and(|(pid, n)| digits(pid) && digits(n))
}

/// Remove the temporary files of atomic writes ([`is_temp_name`]; of the
/// file `of` only, when given) in `dir` (and its subdirectories with
/// `recursive`), left by a process that died while writing them, e.g. one
/// killed by the file-size limit or `kill -9`. With `min_age`, younger files
/// are left alone (a write of another process may be under way). Errors
/// are ignored: a stale temporary file is only clutter. Returns how many
/// were removed.
pub fn remove_temp_files(
    dir: &Path,
    of: Option<&str>,
    min_age: Option<std::time::Duration>,
    recursive: bool,
) -> usize {
    let Ok(read) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in read.filter_map(|e| e.ok()) {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if kind.is_dir() {
            if recursive {
                removed += remove_temp_files(&path, of, min_age, true);
            }
            continue;
        }
        let stale = entry
            .file_name()
            .to_str()
            .is_some_and(|n| is_temp_name(n, of))
            && min_age.is_none_or(|age| {
                entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|e| e >= age)
            });
        if stale && std::fs::remove_file(&path).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// A CSV table rewritten atomically after every row, so that after a crash the
/// file holds exactly the rows logged so far.
pub struct CsvTable {
    path: PathBuf,
    text: String,
    n_cols: usize,
}

impl CsvTable {
    /// A table with the given header, not yet written.
    pub fn new(path: PathBuf, header: &[&str]) -> Self {
        Self {
            path,
            text: format!("{}\n", header.join(",")),
            n_cols: header.len(),
        }
    }

    /// The file's text so far (header and rows).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replace the rows with those of `text` (a resumed run's table as
    /// it was at its checkpoint) and rewrite the file. An error when `text`
    /// does not start with this table's header.
    pub fn restore(&mut self, text: &str) -> std::io::Result<()> {
        let header = self.text.lines().next().unwrap_or_default();
        if text.lines().next() != Some(header) {
            return Err(std::io::Error::other(format!(
                "the checkpoint's table has another header than `{header}`"
            )));
        }
        self.text = text.to_string();
        write_atomic(&self.path, self.text.as_bytes())
    }

    /// Append a row (already formatted cells) and rewrite the file.
    pub fn push(&mut self, cells: &[String]) -> std::io::Result<()> {
        assert_eq!(cells.len(), self.n_cols, "row width must match the header");
        self.text.push_str(&cells.join(","));
        self.text.push('\n');
        write_atomic(&self.path, self.text.as_bytes())
    }
}

/// The metrics of a run as a CSV table (`metrics.csv`): the step column, then
/// one column per metric, each value in [`fmt_f64`]'s shortest form (or with
/// the fixed decimals set by [`CsvSink::with_decimals`]) and no data as an
/// empty cell.
pub struct CsvSink {
    table: CsvTable,
    /// The metric columns, after the step column.
    columns: Vec<&'static str>,
    /// Fixed decimals of each metric column; `None`: the shortest form.
    decimals: Vec<Option<usize>>,
}

impl CsvSink {
    /// A sink writing `path` (not yet written) with the columns
    /// `step_column`, then `columns`.
    pub fn new(path: PathBuf, step_column: &str, columns: &[&'static str]) -> Self {
        let header: Vec<&str> = std::iter::once(step_column)
            .chain(columns.iter().copied())
            .collect();
        Self {
            table: CsvTable::new(path, &header),
            columns: columns.to_vec(),
            decimals: vec![None; columns.len()],
        }
    }

    /// The table's text so far (header and rows).
    pub fn text(&self) -> &str {
        self.table.text()
    }

    /// The table's path.
    pub fn path(&self) -> &Path {
        self.table.path()
    }

    /// Go on from the rows of `text` ([`CsvTable::restore`]).
    pub fn restore(&mut self, text: &str) -> std::io::Result<()> {
        self.table.restore(text)
    }

    /// The values of `column` printed with `decimals` decimals (NaN still
    /// as `nan`). Panics when the sink has no such column.
    pub fn with_decimals(mut self, column: &str, decimals: usize) -> Self {
        let i = self
            .columns
            .iter()
            .position(|&c| c == column)
            .unwrap_or_else(|| panic!("no metric column `{column}`"));
        self.decimals[i] = Some(decimals);
        self
    }
}

impl MetricSink for CsvSink {
    /// Append the row and rewrite the file. Panics when the names of `row`
    /// are not the sink's columns in order (its values would land under
    /// other columns' names).
    fn write_row(&mut self, step: u64, row: &[Metric]) -> std::io::Result<()> {
        assert!(
            row.iter().map(|m| m.name).eq(self.columns.iter().copied()),
            "metrics {:?} do not match the columns {:?}",
            row.iter().map(|m| m.name).collect::<Vec<_>>(),
            self.columns
        );
        let cells: Vec<String> =
            std::iter::once(step.to_string())
                .chain(row.iter().zip(&self.decimals).map(|(m, &decimals)| {
                    match (m.value, decimals) {
                        (None, _) => String::new(),
                        (Some(v), Some(d)) if !v.is_nan() => format!("{v:.d$}"),
                        (Some(v), _) => fmt_f64(v),
                    }
                }))
                .collect();
        self.table.push(&cells)
    }
}

/// Deterministic formatting of a metric: shortest round-trip decimal, `nan` for NaN.
pub fn fmt_f64(x: f64) -> String {
    if x.is_nan() {
        "nan".to_string()
    } else {
        format!("{x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write that fails (here the rename: a directory stands at the
    /// target) leaves no temporary file behind.
    #[test]
    fn failed_atomic_write_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("runs.csv");
        std::fs::create_dir(&target).unwrap();
        assert!(write_atomic(&target, b"x").is_err());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        assert_eq!(names, vec!["runs.csv".to_string()]);
        let ok = dir.path().join("a.csv");
        write_atomic(&ok, b"1").unwrap();
        assert_eq!(std::fs::read(&ok).unwrap(), b"1");
    }

    /// The temporary names of atomic writes are recognised (also the
    /// pictures' `.png` ones), nothing else is; removing them leaves the
    /// other files.
    #[test]
    fn stale_temporary_files_are_recognised_and_removed() {
        let name = temp_name("metrics.csv", 7, "");
        assert!(is_temp_name(&name, None) && is_temp_name(&name, Some("metrics.csv")));
        assert!(!is_temp_name(&name, Some("runs.csv")));
        assert!(is_temp_name(".target_density.png.tmp12_3.png", None));
        for other in [
            "metrics.csv",
            ".lock",
            ".tables.lock",
            "x.tmp1_2",
            ".metrics.csv.tmp",
            ".metrics.csv.tmpx_1",
            ".metrics.csv.tmp1_",
            ".tmp1_2",
        ] {
            assert!(!is_temp_name(other, None), "{other}");
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("plots")).unwrap();
        for f in [
            ".metrics.csv.tmp99_0",
            "plots/.a.png.tmp99_1.png",
            "metrics.csv",
            ".lock",
        ] {
            std::fs::write(dir.path().join(f), "x").unwrap();
        }
        assert_eq!(remove_temp_files(dir.path(), None, None, false), 1);
        assert_eq!(remove_temp_files(dir.path(), None, None, true), 1);
        assert!(dir.path().join("metrics.csv").exists() && dir.path().join(".lock").exists());
        // Young files are left alone with a minimum age.
        std::fs::write(dir.path().join(".runs.csv.tmp1_1"), "x").unwrap();
        let hour = std::time::Duration::from_secs(3600);
        assert_eq!(
            remove_temp_files(dir.path(), Some("runs.csv"), Some(hour), false),
            0
        );
        assert_eq!(
            remove_temp_files(dir.path(), Some("runs.csv"), None, false),
            1
        );
    }

    #[test]
    fn csv_rows_and_atomic_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.csv");
        let mut t = CsvTable::new(path.clone(), &["a", "b"]);
        t.push(&["1".into(), fmt_f64(f64::NAN)]).unwrap();
        t.push(&["2".into(), fmt_f64(0.25)]).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "a,b\n1,nan\n2,0.25\n"
        );
        // No temporary file left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    /// Every value in its shortest form (a count without `.0`), no data as an
    /// empty cell, NaN as `nan`, fixed decimals where set.
    #[test]
    fn metric_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        let mut sink = CsvSink::new(path.clone(), "step", &["n", "l1", "eubo", "wall_s"])
            .with_decimals("wall_s", 3);
        let row = |n: f64, l1: f64, eubo: Option<f64>, wall: f64| {
            [
                Metric::new("n", n),
                Metric::new("l1", l1),
                Metric::optional("eubo", eubo),
                Metric::new("wall_s", wall),
            ]
        };
        sink.write_row(0, &row(13.0, f64::NAN, None, 0.25)).unwrap();
        sink.write_row(10, &row(1e21, 0.1 + 0.2, Some(-2.5), 12.0))
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "step,n,l1,eubo,wall_s\n\
             0,13,nan,,0.250\n\
             10,1000000000000000000000,0.30000000000000004,-2.5,12.000\n"
        );
    }

    /// A row whose names are not the columns in order is refused.
    #[test]
    #[should_panic(expected = "do not match the columns")]
    fn metric_names_must_match_the_columns() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = CsvSink::new(dir.path().join("m.csv"), "step", &["a", "b"]);
        let _ = sink.write_row(0, &[Metric::new("b", 1.0), Metric::new("a", 2.0)]);
    }
}
