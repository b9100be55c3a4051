//! Locating and reading the data files of the discovery tasks
//! (`datasets/README.md` describes the files and their formats).
//!
//! The data root is the `--datasets` flag, else `$RUNNER_DATASETS`, else
//! `./datasets`; a missing file is reported with its full path and a pointer to
//! the README.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// Environment variable that names the datasets root when no flag is given.
pub const DATASETS_ENV: &str = "RUNNER_DATASETS";

/// Root used when neither the flag nor the environment variable is set.
pub const DEFAULT_ROOT: &str = "datasets";

/// A problem finding, reading or parsing a data file.
#[derive(Debug, Error)]
pub enum DataError {
    /// The file does not exist (or is not a regular file).
    #[error("data file not found: {}\n{hint}", path.display())]
    Missing {
        /// The full path that was looked for.
        path: PathBuf,
        /// Where the root came from and how to obtain the data.
        hint: String,
    },
    /// Reading (or writing) the file failed.
    #[error("cannot access {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A malformed line.
    #[error("{}:{line}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number (the header is line 1).
        line: usize,
        /// What is wrong with the line.
        message: String,
    },
    /// The file parses but its content is not what the task needs (a missing
    /// or out-of-order row, a wrong count, an inconsistent layout).
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A string that is not a valid object of the task.
    #[error("invalid string {text:?}: {message}")]
    BadString {
        /// The offending text.
        text: String,
        /// What is wrong (unknown character, wrong length).
        message: String,
    },
}

/// The datasets root: `flag` (the `--datasets` option) if given, else
/// `$RUNNER_DATASETS` if set and non-empty, else `datasets` relative to the
/// working directory.
pub fn resolve_root(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    match std::env::var_os(DATASETS_ENV) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(DEFAULT_ROOT),
    }
}

/// `root.join(rel)` if it is an existing file, else [`DataError::Missing`]
/// naming the full path and how the root is chosen.
pub fn file(root: &Path, rel: &str) -> Result<PathBuf, DataError> {
    let path = root.join(rel);
    if path.is_file() {
        return Ok(path);
    }
    let hint = format!(
        "the datasets root {:?} is taken from --datasets, else ${DATASETS_ENV}, else ./{DEFAULT_ROOT}; \
         see datasets/README.md for the files and how to obtain the data",
        root.display().to_string()
    );
    Err(DataError::Missing { path, hint })
}

/// Read a whole file as UTF-8 text.
pub fn read_text(path: &Path) -> Result<String, DataError> {
    std::fs::read_to_string(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Read a simple CSV file: a header row, comma-separated fields, no quoting.
/// Returns the header and the rows; every row must have as many fields as the
/// header (else [`DataError::Parse`] with the 1-based line number). Blank lines
/// are skipped, `\r\n` line ends and a leading byte-order mark are accepted,
/// and fields are trimmed.
pub fn read_csv(path: &Path) -> Result<(Vec<String>, Vec<Vec<String>>), DataError> {
    let (header, rows) = read_csv_numbered(path)?;
    Ok((header, rows.into_iter().map(|(_, r)| r).collect()))
}

/// [`read_csv`], with each row's 1-based line number (for error messages).
pub fn read_csv_numbered(path: &Path) -> Result<CsvRows, DataError> {
    let text = read_text(path)?;
    parse_csv(path, &text)
}

/// A parsed CSV file: the header and the rows, each with its 1-based line number.
pub type CsvRows = (Vec<String>, Vec<(usize, Vec<String>)>);

/// [`read_csv_numbered`] on text already in memory; `path` only names the
/// source in errors.
pub fn parse_csv(path: &Path, text: &str) -> Result<CsvRows, DataError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let split =
        |line: &str| -> Vec<String> { line.split(',').map(|f| f.trim().to_string()).collect() };
    let mut header: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let fields = split(line);
        match &header {
            None => header = Some(fields),
            Some(h) => {
                if fields.len() != h.len() {
                    return Err(DataError::Parse {
                        path: path.to_path_buf(),
                        line: i + 1,
                        message: format!(
                            "expected {} comma-separated fields ({}), found {}",
                            h.len(),
                            h.join(","),
                            fields.len()
                        ),
                    });
                }
                rows.push((i + 1, fields));
            }
        }
    }
    let header = header.ok_or_else(|| DataError::Parse {
        path: path.to_path_buf(),
        line: 1,
        message: "empty file: expected a header row".into(),
    })?;
    Ok((header, rows))
}

/// Index of column `name` in `header`, or [`DataError::Invalid`].
pub fn column(path: &Path, header: &[String], name: &str) -> Result<usize, DataError> {
    header
        .iter()
        .position(|h| h == name)
        .ok_or_else(|| DataError::Invalid {
            path: path.to_path_buf(),
            message: format!("no column {name:?} in header {}", header.join(",")),
        })
}

/// Datasets root for tests: `$RUNNER_DATASETS`, else `../shared/datasets`
/// relative to the crate if it exists; `None` (the test is skipped) otherwise.
#[cfg(test)]
pub(crate) fn test_root() -> Option<PathBuf> {
    if let Some(v) = std::env::var_os(DATASETS_ENV) {
        if !v.is_empty() {
            return Some(PathBuf::from(v));
        }
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("skipped: no datasets (set {DATASETS_ENV})");
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_root_prefers_flag() {
        let p = Path::new("/some/where");
        assert_eq!(resolve_root(Some(p)), PathBuf::from("/some/where"));
    }

    #[test]
    fn missing_file_names_path_and_readme() {
        let dir = tempfile::tempdir().unwrap();
        let err = file(dir.path(), "qm9str/rewards.csv").unwrap_err();
        let msg = err.to_string();
        let full = dir.path().join("qm9str/rewards.csv");
        assert!(msg.contains(&full.display().to_string()), "{msg}");
        assert!(msg.contains("--datasets"), "{msg}");
        assert!(msg.contains("RUNNER_DATASETS"), "{msg}");
        assert!(msg.contains("./datasets"), "{msg}");
        assert!(msg.contains("datasets/README.md"), "{msg}");
        assert!(matches!(err, DataError::Missing { .. }));
    }

    #[test]
    fn csv_reader_reports_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        std::fs::write(&p, "x,reward\r\n00,1.5\r\n\n01\n").unwrap();
        let err = read_csv(&p).unwrap_err();
        match &err {
            DataError::Parse { line, .. } => assert_eq!(*line, 4),
            e => panic!("unexpected {e:?}"),
        }
        assert!(err.to_string().contains("a.csv:4:"), "{err}");
        std::fs::write(&p, "\u{feff}x,reward\n00, 1.5\n").unwrap();
        let (h, rows) = read_csv(&p).unwrap();
        assert_eq!(h, vec!["x", "reward"]);
        assert_eq!(rows, vec![vec!["00".to_string(), "1.5".to_string()]]);
        assert!(column(&p, &h, "y").is_err());
    }

    #[test]
    fn real_file_resolves() {
        let Some(root) = test_root() else { return };
        let p = file(&root, "qm9str/modes.csv").unwrap();
        let (h, rows) = read_csv(&p).unwrap();
        assert_eq!(h[0], "x");
        assert_eq!(rows.len(), 805);
    }
}
