//! Checkpoints and exact resume, end to end: a run killed (SIGKILL, at a
//! moment drawn at random) or stopped (SIGTERM) and then resumed writes the
//! same `metrics.csv` as the run left alone, byte for byte but for the
//! `wall_s` column, on every family.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{metrics_without_wall, runner, stderr};

/// One tiny run of each family with what training changes: a teacher,
/// replay buffers, local search, GAFN's predictor, learning-rate milestones.
const CASES: &[(&str, &str, &[&str])] = &[
    (
        "experiments/grid_d4_h32_teacher_ls_per.toml",
        "grid_d4_h32_teacher_ls_per",
        &[
            "env.ndim=2",
            "env.horizon=8",
            "policy.hidden=16",
            "train.steps=400",
            "eval.every=50",
            "eval.samples=300",
            "eval.plot=false",
            "train.checkpoint_every=20",
        ],
    ),
    (
        "experiments/grid_d4_h32_gafn.toml",
        "grid_d4_h32_gafn",
        &[
            "env.ndim=2",
            "env.horizon=8",
            "policy.hidden=16",
            "train.steps=400",
            "eval.every=50",
            "eval.samples=300",
            "eval.plot=false",
            "train.checkpoint_every=20",
        ],
    ),
    (
        "experiments/tfbind8_teacher_prt.toml",
        "tfbind8_teacher_prt",
        &[
            "policy.hidden=16",
            "train.steps=40",
            "eval.every=10",
            "eval.samples=32",
            "train.checkpoint_every=3",
        ],
    ),
    (
        "experiments/many_well_teacher_mala.toml",
        "many_well_teacher_mala",
        &[
            "train.steps=60",
            "train.batch_size=8",
            "env.steps=5",
            "policy.hidden=16",
            "policy.harmonics=4",
            "eval.every=10",
            "eval.samples=16",
            "eval.final_samples=24",
            "eval.plot=false",
            "objective.lr_milestones=[20,40]",
            "train.checkpoint_every=4",
        ],
    ),
];

fn command(file: &str, out: &Path, sets: &[&str]) -> std::process::Command {
    let mut cmd = runner();
    cmd.arg(file).arg("--out").arg(out);
    for s in sets.iter().chain(&["train.progress=false"]) {
        cmd.args(["--set", s]);
    }
    cmd
}

fn checkpoints(run: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(run.join("checkpoints"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "safetensors"));
    v.sort();
    v
}

/// A number in 0..n from the clock (the moment of a kill is meant to vary).
fn random_below(n: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    nanos % n
}

/// Start `file` and stop it with `signal` once it has written a checkpoint
/// (after a further random delay); returns whether it was stopped midway.
fn start_and_stop(file: &str, out: &Path, run: &Path, sets: &[&str], signal: &str) -> bool {
    let mut child: Child = command(file, out, sets)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while checkpoints(run).is_empty() {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "no checkpoint");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(random_below(60)));
    common::send_signal(child.id(), signal);
    child.wait().unwrap();
    !run.join("status.toml").exists()
}

/// Killed with SIGKILL at a random moment after its first checkpoint, each
/// case resumes from its last checkpoint and ends with the metrics of the
/// uninterrupted run. The resumed run says where it resumed from.
#[test]
fn killed_then_resumed_equals_uninterrupted() {
    for &(file, name, sets) in CASES {
        let whole = tempfile::tempdir().unwrap();
        let o = command(file, whole.path(), sets).output().unwrap();
        assert!(o.status.success(), "{file}: {}", stderr(&o));
        let cut = tempfile::tempdir().unwrap();
        let run = cut.path().join(name).join("seed=0");
        let mut interrupted = false;
        // A run may finish before the kill on a fast machine: try again
        // (each try starts over, as the run is complete).
        for _ in 0..3 {
            if run.exists() {
                std::fs::remove_dir_all(&run).unwrap();
            }
            if start_and_stop(file, cut.path(), &run, sets, "KILL") {
                interrupted = true;
                break;
            }
        }
        assert!(interrupted, "{file}: every run finished before the kill");
        let o = command(file, cut.path(), sets).output().unwrap();
        assert!(o.status.success(), "{file}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("resuming from step"),
            "{file}: {}",
            stderr(&o)
        );
        assert_eq!(
            metrics_without_wall(&whole.path().join(name).join("seed=0/metrics.csv")),
            metrics_without_wall(&run.join("metrics.csv")),
            "{file}"
        );
        // The final checkpoint is kept; at most `keep_checkpoints` (2) are.
        let kept = checkpoints(&run);
        assert!(!kept.is_empty() && kept.len() <= 2, "{kept:?}");
    }
}

/// SIGTERM writes a checkpoint at the step it stops at, so nothing done is
/// lost: the resumed run starts from there and ends like the uninterrupted
/// one. A checkpoint of another config is not resumed: the run starts again.
#[test]
fn sigterm_checkpoints_and_a_changed_config_starts_again() {
    let (file, name, sets) = CASES[0];
    let whole = tempfile::tempdir().unwrap();
    let o = command(file, whole.path(), sets).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let cut = tempfile::tempdir().unwrap();
    let run = cut.path().join(name).join("seed=0");
    let mut sets = sets.to_vec();
    // Checkpoints only at the end: the one found after SIGTERM is its own.
    sets.push("train.checkpoint_every=0");
    let mut child = command(file, cut.path(), &sets)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while std::fs::read_to_string(run.join("metrics.csv")).map_or(true, |t| t.lines().count() < 3) {
        assert!(t0.elapsed() < Duration::from_secs(60), "no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    common::send_signal(child.id(), "TERM");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let kept = checkpoints(&run);
    assert_eq!(kept.len(), 1, "{kept:?}");
    let o = command(file, cut.path(), &sets).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("resuming from step"), "{}", stderr(&o));
    assert_eq!(
        metrics_without_wall(&whole.path().join(name).join("seed=0/metrics.csv")),
        metrics_without_wall(&run.join("metrics.csv")),
    );
    // A changed config (forced over the complete run) starts from step 0.
    let mut changed = sets.clone();
    changed.push("train.loss_window=7");
    let o = command(file, cut.path(), &changed)
        .arg("--force")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("resuming"), "{}", stderr(&o));
}
