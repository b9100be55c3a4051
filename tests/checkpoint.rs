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
        assert_tensorboard_matches_metrics(&run);
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
    // The event file of the earlier start is gone: TensorBoard would merge
    // its curves into this run's.
    let events: Vec<_> = std::fs::read_dir(&run)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("tfevents"))
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_tensorboard_matches_metrics(&run);
}

/// The TensorBoard file of a run holds the rows of its `metrics.csv`: one
/// event per row at the row's step, one scalar per non-empty, non-NaN cell
/// under the column's name, equal as f32 (`wall_s` to the CSV's
/// milliseconds). After a resume it has each step once.
fn assert_tensorboard_matches_metrics(run: &Path) {
    let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rows = runner::output::tensorboard::read_dir(run).unwrap();
    let csv: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), csv.len(), "{}", run.display());
    for (event, cells) in rows.iter().zip(&csv) {
        assert_eq!(event.step.to_string(), cells[0]);
        let want: Vec<(String, f32)> = header[1..]
            .iter()
            .zip(&cells[1..])
            .filter(|(_, c)| !c.is_empty() && **c != "nan")
            .map(|(h, c)| (h.to_string(), c.parse::<f64>().unwrap() as f32))
            .collect();
        // wall_s: the CSV rounds it to milliseconds.
        let split = |v: &[(String, f32)]| {
            let (wall, rest): (Vec<_>, Vec<_>) =
                v.iter().cloned().partition(|(t, _)| t == "wall_s");
            (wall[0].1, rest)
        };
        let ((wall, got), (wall_csv, want)) = (split(&event.values), split(&want));
        assert_eq!(got, want, "step {}", event.step);
        assert!((wall - wall_csv).abs() <= 6e-4, "{wall} {wall_csv}");
    }
}

/// `runner sample`: N rows of the family's columns from the latest
/// checkpoint, the same for the same seed and different for another; a
/// sequence sample's `reward` is what `runner score` says of its string;
/// `log_pf` is a log-probability (at most 0 on the discrete families). A
/// directory that is not a run, or a run without checkpoints, is an error
/// saying so. The TensorBoard file of each run matches its metrics.
#[test]
fn samples_of_a_trained_run() {
    let out = tempfile::tempdir().unwrap();
    for (i, &(file, name, sets)) in CASES.iter().enumerate() {
        if i == 1 {
            continue; // GAFN: the grid's columns again
        }
        let o = command(file, out.path(), sets).output().unwrap();
        assert!(o.status.success(), "{file}: {}", stderr(&o));
        let run = out.path().join(name).join("seed=0");
        assert_tensorboard_matches_metrics(&run);
        let sample = |seed: &str| {
            let o = runner()
                .arg("sample")
                .arg(&run)
                .args(["-n", "40", "--seed", seed, "--log-pf"])
                .output()
                .unwrap();
            assert!(o.status.success(), "{file}: {}", stderr(&o));
            String::from_utf8(o.stdout).unwrap()
        };
        let (a, b, c) = (sample("1"), sample("1"), sample("2"));
        assert_eq!(a, b, "{file}: the same seed");
        assert_ne!(a, c, "{file}: another seed");
        let mut lines = a.lines();
        let header = lines.next().unwrap();
        let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
        assert_eq!(rows.len(), 40);
        let want = match name {
            "grid_d4_h32_teacher_ls_per" => "x0,x1,reward,log_pf",
            "tfbind8_teacher_prt" => "x,reward,log_reward,log_pf",
            _ => "x0,x1,x2,x3,x4,x5,x6,x7,x8,x9,x10,x11,x12,x13,x14,x15,x16,x17,x18,x19,x20,x21,x22,x23,x24,x25,x26,x27,x28,x29,x30,x31,log_reward,log_pf",
        };
        assert_eq!(header, want, "{file}");
        let last = rows[0].len() - 1;
        for r in &rows {
            let log_pf: f64 = r[last].parse().unwrap();
            assert!(log_pf.is_finite(), "{file}: {r:?}");
            if !name.starts_with("many_well") {
                assert!(log_pf <= 0.0, "{file}: {r:?}");
            }
        }
        if name == "tfbind8_teacher_prt" {
            // DNA letters, never digits: CSV readers keep them as text.
            for r in &rows {
                assert!(
                    r[0].len() == 8 && r[0].chars().all(|c| "ACGT".contains(c)),
                    "{r:?}"
                );
            }
            let strings: String = rows.iter().map(|r| format!("{}\n", r[0])).collect();
            let list = out.path().join("strings.txt");
            std::fs::write(&list, strings).unwrap();
            let o = runner().args(["score", file]).arg(&list).output().unwrap();
            let scored = String::from_utf8(o.stdout).unwrap();
            let scored: Vec<&str> = scored.lines().skip(1).collect();
            for (r, s) in rows.iter().zip(scored) {
                assert_eq!(s, format!("{},{}", r[0], r[1]));
            }
        }
    }
    // Errors: not a run directory; a run without checkpoints.
    let o = runner().arg("sample").arg(out.path()).output().unwrap();
    assert!(
        !o.status.success() && stderr(&o).contains("is not a run directory"),
        "{}",
        stderr(&o)
    );
    let run = out.path().join("grid_d4_h32_teacher_ls_per/seed=0");
    let o = runner()
        .arg("sample")
        .arg(&run)
        .args(["-n", "1000000000"])
        .output()
        .unwrap();
    assert!(
        !o.status.success() && stderr(&o).contains("ask for 1 to 10000000 samples"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_dir_all(run.join("checkpoints")).unwrap();
    let o = runner().arg("sample").arg(&run).output().unwrap();
    assert!(
        !o.status.success() && stderr(&o).contains("has no checkpoint"),
        "{}",
        stderr(&o)
    );
}
