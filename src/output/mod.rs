//! Results on disk: atomic writes, the metrics CSV, the progress bar, and
//! pictures ([`plot`]: heatmaps of grid densities; [`scatter`]: samples of
//! the diffusion samplers; [`curves`]: metrics over training, for reports).

pub mod curves;
pub mod plot;
pub mod scatter;

use std::io::Write;
use std::path::{Path, PathBuf};

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
    let tmp = dir.join(format!(
        ".{name}.tmp{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
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

    /// Append a row (already formatted cells) and rewrite the file.
    pub fn push(&mut self, cells: &[String]) -> std::io::Result<()> {
        assert_eq!(cells.len(), self.n_cols, "row width must match the header");
        self.text.push_str(&cells.join(","));
        self.text.push('\n');
        write_atomic(&self.path, self.text.as_bytes())
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

/// A progress bar on stderr (hidden when stderr is not a terminal or `enabled` is false).
pub fn progress_bar(len: u64, enabled: bool, label: &str) -> indicatif::ProgressBar {
    if !enabled {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(len),
        indicatif::ProgressDrawTarget::stderr(),
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix} [{elapsed_precise}] {bar:30} {pos}/{len} steps ({per_sec}, eta {eta}) {msg}",
        )
        .expect("valid template"),
    );
    bar.set_prefix(label.to_string());
    bar
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
}
