//! Helpers shared by the end-to-end tests of the `runner` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root the tests read experiments, goldens and datasets
/// from: the crate root, or `$RUNNER_TEST_ROOT` where a prebuilt test binary
/// runs in another copy of the repository (scripts/gpu-check.sh).
#[allow(dead_code)]
pub fn root() -> PathBuf {
    std::env::var_os("RUNNER_TEST_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// The `runner` binary (`$RUNNER_TEST_BIN` in another copy, as [`root`]),
/// run from the repository root, without overrides leaking in from the
/// caller's environment.
pub fn runner() -> Command {
    let bin = std::env::var_os("RUNNER_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_runner")));
    let mut c = Command::new(bin);
    c.current_dir(root());
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
    root().join("datasets")
}

/// Golden grid runs: d as in the file, H = 8, a 32-wide network, 40 steps
/// (the 16-step local-search schedules twice and a half), 4 evaluations of
/// 300 samples.
#[allow(dead_code)]
pub const GOLDEN_GRID: &[&str] = &[
    "env.horizon=8",
    "policy.hidden=32",
    "train.steps=40",
    "train.n_evals=4",
    "eval.samples=300",
    "eval.batch_size=150",
    "eval.plot=false",
    "train.progress=false",
];

/// Golden sequence runs: 9 rounds of 8 trajectories (the offline batch
/// starts once 10 discoveries exist), a 32-wide network, evaluations every 3
/// rounds.
#[allow(dead_code)]
pub const GOLDEN_SEQ: &[&str] = &[
    "train.steps=9",
    "train.batch_size=8",
    "policy.hidden=32",
    "eval.every=3",
    "eval.samples=64",
    "eval.batch_size=32",
    "train.progress=false",
];

/// Every line of a `metrics.csv` text without its last column (`wall_s`),
/// each ended by a newline: the form of the files in `tests/golden/`.
#[allow(dead_code)]
pub fn golden_form(text: &str) -> String {
    text.lines()
        .map(|l| l.rsplit_once(',').map_or(l, |(head, _)| head))
        .map(|l| format!("{l}\n"))
        .collect()
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

/// The cells of one CSV line (fields with commas are double-quoted).
#[allow(dead_code)]
pub fn cells(line: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted) = (Vec::new(), String::new(), false);
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Send `signal` (a name: `TERM`, `INT`) to process `pid` with `kill`.
#[allow(dead_code)]
pub fn send_signal(pid: u32, signal: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(ok.success(), "kill -{signal} {pid} failed");
}

/// SIGTERM `child` and wait at most `secs` seconds for it to end; panics
/// (naming `what`) when it is still alive then. Returns its exit status.
#[allow(dead_code)]
pub fn terminate_within(
    child: &mut std::process::Child,
    secs: u64,
    what: &str,
) -> std::process::ExitStatus {
    send_signal(child.id(), "TERM");
    let t0 = std::time::Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if t0.elapsed().as_secs() >= secs {
            let _ = child.kill();
            panic!("{what} ignored SIGTERM for {secs} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[allow(dead_code)]
/// Tiny diffusion runs: 3 iterations of 8 trajectories of 5 steps, a 16-wide network.
pub const TINY_DIFFUSION: &[&str] = &[
    "train.steps=3",
    "train.batch_size=8",
    "env.steps=5",
    "policy.hidden=16",
    "policy.harmonics=4",
    "eval.every=2",
    "eval.samples=16",
    "eval.final_samples=24",
    "train.progress=false",
    "objective.lr_milestones=[1,2]",
];

#[allow(dead_code)]
/// Runs `runner score <file> [--set ...]` with `input` on stdin.
pub fn score_stdin(file: &str, sets: &[&str], input: &str) -> std::process::Output {
    use std::io::Write;
    let mut cmd = runner();
    cmd.args(["score", file]);
    for s in sets {
        cmd.args(["--set", s]);
    }
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}
