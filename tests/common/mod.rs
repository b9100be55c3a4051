//! Helpers shared by the end-to-end tests of the `runner` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `runner` binary, run from the crate root, without overrides leaking in
/// from the caller's environment.
pub fn runner() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_runner"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c.env_remove("RUNNER_ENV__HORIZON");
    // The repository's own datasets/ (the default lookup), not a caller's copy.
    c.env_remove("RUNNER_DATASETS");
    c
}

/// A command's stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Write `text` to `dir/name` and return the path.
#[allow(dead_code)]
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// The datasets root of the discovery tests: the repository's own copy.
#[allow(dead_code)]
pub fn datasets() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("datasets")
}

/// The lines of a `metrics.csv` without their last column (`wall_s`).
#[allow(dead_code)]
pub fn metrics_without_wall(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}
