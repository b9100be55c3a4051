//! Locating and reading the data files of the discovery tasks
//! (`datasets/README.md` describes the files and their formats).
//!
//! The data root is the `--datasets` flag, else `$RUNNER_DATASETS`, else
//! `./datasets` when the working directory has one, else the `datasets/` folder
//! of the source tree the binary was built from (so `cargo run` and
//! `cargo test` work from a fresh clone with nothing set). A missing file is
//! reported with its full path and a pointer to the README.
//!
//! Integrity: a root may hold a `SHA256SUMS` file (`sha256sum` format; the
//! repository's copy has one). A data file listed there whose SHA-256 differs is
//! reported once per process as a warning on stderr, not an error: a user may
//! replace a file on purpose (another parameter set, a re-derived table). What
//! makes a file unusable (a truncated table, a malformed row, a missing column)
//! is an error from the loader naming the file and line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use sha2::{Digest, Sha256};

use thiserror::Error;

/// Environment variable that names the datasets root when no flag is given.
pub const DATASETS_ENV: &str = "RUNNER_DATASETS";

/// Root used when neither the flag nor the environment variable is set and
/// the working directory has such a folder.
pub const DEFAULT_ROOT: &str = "datasets";

/// The source tree's data folder, the last resort of [`resolve_root`].
pub const SOURCE_ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/datasets");

/// The checksum list of a datasets root (`sha256sum` format).
pub const CHECKSUMS_FILE: &str = "SHA256SUMS";

/// A problem finding, reading or parsing a data file.
#[derive(Debug, Error)]
pub enum DataError {
    /// The file does not exist.
    #[error("data file not found: {}\n{hint}", path.display())]
    Missing {
        /// The full path that was looked for.
        path: PathBuf,
        /// Where the root came from and how to obtain the data.
        hint: String,
    },
    /// The path names a directory, not a data file.
    #[error("data file {} is a directory, not a file (see datasets/README.md for the files)", path.display())]
    IsDirectory {
        /// The full path.
        path: PathBuf,
    },
    /// Reading (or writing) the file failed.
    #[error("cannot access {}: {cause}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        /// The OS error (in the message, not a chained source, so it is
        /// printed once).
        cause: std::io::Error,
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
    /// A string that is not a valid object of the task (quoted up to
    /// `check::MAX_ECHO` characters).
    #[error("invalid string {:?}: {message}", crate::check::excerpt(text))]
    BadString {
        /// The offending text.
        text: String,
        /// What is wrong (unknown character, wrong length).
        message: String,
    },
}

/// The datasets root: `flag` (the `--datasets` option) if given, else
/// `$RUNNER_DATASETS` if set and non-empty, else `datasets` relative to the
/// working directory if that is a directory, else [`SOURCE_ROOT`] if that is
/// one, else `datasets` (whose files are then reported missing).
pub fn resolve_root(flag: Option<&Path>) -> PathBuf {
    resolve_root_with(flag, std::env::var_os(DATASETS_ENV))
}

/// [`resolve_root`] with the variable's value `env` given.
fn resolve_root_with(flag: Option<&Path>, env: Option<std::ffi::OsString>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    match env {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => {
            let local = PathBuf::from(DEFAULT_ROOT);
            let source = PathBuf::from(SOURCE_ROOT);
            if !local.is_dir() && source.is_dir() {
                source
            } else {
                local
            }
        }
    }
}

/// `root.join(rel)` if it is an existing file, else [`DataError::Missing`]
/// naming the full path and how the root is chosen ([`DataError::IsDirectory`]
/// for a directory there). The file's checksum is checked against the
/// root's [`CHECKSUMS_FILE`] ([`check_sum`]; a malformed list is an error).
pub fn file(root: &Path, rel: &str) -> Result<PathBuf, DataError> {
    let path = root.join(rel);
    if path.is_dir() {
        return Err(DataError::IsDirectory { path });
    }
    if path.exists() {
        if let Some(warning) = check_sum(root, rel)? {
            crate::console::errln(format_args!("warning: {warning}"));
        }
        return Ok(path);
    }
    let hint = format!(
        "the datasets root {:?} is taken from --datasets, else ${DATASETS_ENV}, else ./{DEFAULT_ROOT}, \
         else the source tree's datasets/; see datasets/README.md for the files",
        root.display().to_string()
    );
    Err(DataError::Missing { path, hint })
}

/// The checksum lists read so far, by root (`None`: the root has none).
type SumLists = HashMap<PathBuf, Option<HashMap<String, String>>>;

/// Compare `root/rel` with its line in `root/SHA256SUMS`. Returns a warning
/// naming the file and both digests when they differ, the first time only
/// (per process and file); `None` when they agree, when the root has no list
/// or the list does not name the file, or when the mismatch was reported
/// before. A list that exists but cannot be read or has a malformed line is
/// an error naming it and the line: a damaged list must not switch the
/// checks off.
pub fn check_sum(root: &Path, rel: &str) -> Result<Option<String>, DataError> {
    static LISTS: OnceLock<Mutex<SumLists>> = OnceLock::new();
    static SEEN: OnceLock<Mutex<HashMap<PathBuf, bool>>> = OnceLock::new();
    let path = root.join(rel);
    let seen = SEEN.get_or_init(Default::default);
    if seen.lock().map_or(true, |s| s.contains_key(&path)) {
        return Ok(None);
    }
    let expected = {
        let Ok(mut lists) = LISTS.get_or_init(Default::default).lock() else {
            return Ok(None);
        };
        let list = match lists.get(root) {
            Some(list) => list,
            // An error is not remembered: every use of the root reports it.
            None => lists
                .entry(root.to_path_buf())
                .or_insert(read_sums(&root.join(CHECKSUMS_FILE))?),
        };
        match list.as_ref().and_then(|l| l.get(rel)) {
            Some(sum) => sum.clone(),
            None => return Ok(None),
        }
    };
    let actual = sha256_hex(&std::fs::read(&path).map_err(|cause| DataError::Io {
        path: path.clone(),
        cause,
    })?);
    let differs = actual != expected;
    if let Ok(mut s) = seen.lock() {
        s.insert(path.clone(), differs);
    }
    Ok(differs.then(|| {
        format!(
            "{} differs from the copy listed in {}: SHA-256 {actual}, expected {expected} \
             (used as is; see datasets/README.md)",
            path.display(),
            root.join(CHECKSUMS_FILE).display()
        )
    }))
}

/// A `sha256sum` list: `<64 hex digits>  <relative path>` (or `*<path>`,
/// binary mode) per line; blank lines and `#` comments are skipped.
/// `Ok(None)` when there is no list; a malformed line is
/// [`DataError::Parse`] naming the list and the line.
fn read_sums(path: &Path) -> Result<Option<HashMap<String, String>>, DataError> {
    if !path.exists() {
        return Ok(None);
    }
    let text = read_text(path)?;
    let mut sums = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: &str| DataError::Parse {
            path: path.to_path_buf(),
            line: i + 1,
            message: format!(
                "{why}; expected `<64 hex digits>  <file>` as `sha256sum` writes it, found {:?}",
                crate::check::excerpt(line)
            ),
        };
        let (sum, name) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        if sum.len() != 64 || !sum.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("the digest is not 64 hexadecimal digits"));
        }
        let name = name.trim_start();
        let name = name.strip_prefix('*').unwrap_or(name);
        if name.is_empty() {
            return Err(bad("no file name after the digest"));
        }
        sums.insert(name.to_string(), sum.to_ascii_lowercase());
    }
    Ok(Some(sums))
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Read a whole file as UTF-8 text.
pub fn read_text(path: &Path) -> Result<String, DataError> {
    std::fs::read_to_string(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        cause: source,
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
                            crate::check::excerpt(&h.join(",")),
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
            message: format!(
                "no column {name:?} in header {}",
                crate::check::excerpt(&header.join(","))
            ),
        })
}

/// Datasets root for tests: the repository's own copy, [`SOURCE_ROOT`]
/// (always present, so no data-dependent test is ever skipped).
#[cfg(test)]
pub(crate) fn test_root() -> PathBuf {
    PathBuf::from(SOURCE_ROOT)
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
        // A huge header is quoted cut.
        let wide: Vec<String> = (0..100_000).map(|i| format!("c{i}")).collect();
        std::fs::write(&p, format!("{}\n1\n", wide.join(","))).unwrap();
        let msg = read_csv(&p).unwrap_err().to_string();
        assert!(msg.len() < 1000 && msg.contains(" bytes)"), "{msg}");
    }

    /// Every file of the repository's datasets/ is listed in its SHA256SUMS
    /// and has that digest (the list was written with `sha256sum` when the
    /// files were copied from the team's verified copy).
    #[test]
    fn repository_copy_matches_checksums() {
        let root = test_root();
        let sums = read_sums(&root.join(CHECKSUMS_FILE))
            .unwrap()
            .expect("datasets/SHA256SUMS");
        let mut files = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p.strip_prefix(&root).unwrap().to_string_lossy().to_string();
                    if rel != "README.md" && rel != CHECKSUMS_FILE {
                        files.push(rel);
                    }
                }
            }
        }
        files.sort();
        let mut listed: Vec<&String> = sums.keys().collect();
        listed.sort();
        assert_eq!(files.iter().collect::<Vec<_>>(), listed);
        for (rel, want) in &sums {
            let got = sha256_hex(&std::fs::read(root.join(rel)).unwrap());
            assert_eq!(&got, want, "{rel}");
            assert!(check_sum(&root, rel).unwrap().is_none(), "{rel}");
        }
        // Another copy named by RUNNER_DATASETS (CI points it at the team's
        // verified copy beside the checkout) holds the same bytes.
        let other = std::env::var_os(DATASETS_ENV).filter(|v| !v.is_empty());
        if let Some(shared) = other.map(PathBuf::from).filter(|p| p.is_dir()) {
            for rel in sums.keys() {
                let theirs = shared.join(rel);
                if theirs.is_file() {
                    assert_eq!(
                        sha256_hex(&std::fs::read(theirs).unwrap()),
                        sums[rel],
                        "{rel}"
                    );
                }
            }
        }
    }

    /// SHA-256 of "abc" (FIPS 180-2, appendix B.1); a listed file with
    /// another digest is a warning naming it, given once.
    #[test]
    fn checksum_mismatch_is_one_warning() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.csv"), "abc").unwrap();
        std::fs::write(dir.path().join("b.csv"), "abd").unwrap();
        let good = sha256_hex(b"abc");
        std::fs::write(
            dir.path().join(CHECKSUMS_FILE),
            format!("{good}  a.csv\n{good} *b.csv\n"),
        )
        .unwrap();
        assert!(check_sum(dir.path(), "a.csv").unwrap().is_none());
        let w = check_sum(dir.path(), "b.csv").unwrap().expect("a warning");
        assert!(w.contains("b.csv") && w.contains(&good), "{w}");
        assert!(
            check_sum(dir.path(), "b.csv").unwrap().is_none(),
            "reported once"
        );
        assert!(
            file(dir.path(), "b.csv").is_ok(),
            "a mismatch is not an error"
        );
        assert!(check_sum(dir.path(), "unlisted.csv").unwrap().is_none());
    }

    /// A malformed checksum list is an error naming the list and its line,
    /// for every file of the root (it must not switch the checks off).
    #[test]
    fn malformed_checksum_list_is_an_error() {
        let good = sha256_hex(b"abc");
        for (list, line, why) in [
            ("garbage\n".to_string(), 1, "64 hexadecimal"),
            (
                format!("{good}  a.csv\n\nnot-a-digest  b.csv\n"),
                3,
                "not 64 hexadecimal digits",
            ),
            (format!("{}  a.csv\n", &good[..63]), 1, "64 hexadecimal"),
            (format!("{good}\n"), 1, "no file name"),
            (format!("{good}  *\n"), 1, "no file name"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("a.csv"), "abc").unwrap();
            std::fs::write(dir.path().join(CHECKSUMS_FILE), &list).unwrap();
            for _ in 0..2 {
                let err = file(dir.path(), "a.csv").unwrap_err();
                let msg = err.to_string();
                let at = format!("{}:{line}:", dir.path().join(CHECKSUMS_FILE).display());
                assert!(msg.starts_with(&at), "{list:?}: {msg}");
                assert!(msg.contains(why), "{list:?}: {msg}");
            }
        }
        // Comments, blank lines and CRLF line ends are fine.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.csv"), "abc").unwrap();
        std::fs::write(
            dir.path().join(CHECKSUMS_FILE),
            format!("# sums\r\n\r\n{good}  a.csv\r\n"),
        )
        .unwrap();
        assert!(file(dir.path(), "a.csv").is_ok());
        assert!(check_sum(dir.path(), "a.csv").unwrap().is_none());
    }

    /// A directory where a data file should be is reported as such, not as
    /// missing.
    #[test]
    fn a_directory_is_not_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("tfbind8/all.csv")).unwrap();
        let err = file(dir.path(), "tfbind8/all.csv").unwrap_err();
        assert!(matches!(err, DataError::IsDirectory { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("is a directory") && msg.contains("all.csv"),
            "{msg}"
        );
        assert!(!msg.contains("not found"), "{msg}");
    }

    /// Without flag or variable, the working directory's datasets/ if any,
    /// else the source tree's (this test runs in the crate root, which has it).
    #[test]
    fn default_root_is_the_repository_copy() {
        let r = resolve_root_with(None, None);
        assert!(
            r == Path::new(DEFAULT_ROOT) || r == Path::new(SOURCE_ROOT),
            "{r:?}"
        );
        assert!(r.join("qm9str/rewards.csv").is_file());
        // An empty variable counts as unset; a set one wins over the folders.
        assert_eq!(resolve_root_with(None, Some("".into())), r);
        assert_eq!(
            resolve_root_with(None, Some("/x".into())),
            PathBuf::from("/x")
        );
    }

    #[test]
    fn real_file_resolves() {
        let root = test_root();
        let p = file(&root, "qm9str/modes.csv").unwrap();
        let (h, rows) = read_csv(&p).unwrap();
        assert_eq!(h[0], "x");
        assert_eq!(rows.len(), 805);
    }
}
