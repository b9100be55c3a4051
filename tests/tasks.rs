//! A researcher's own sequence task, end to end: a task declared from the
//! TFBind8 table trains exactly as the built-in `tfbind8`; a program serving
//! the same table does too (but for the metrics that need the whole space);
//! and every fault of a reward program stops the run with a message naming
//! the command, the batch and the line, keeps the checkpoint, and lets the
//! same command resume. The program never outlives the run.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

mod common;
use common::{
    cells, golden_form, root, runner, send_signal, stderr, write, GOLDEN_SEQ, TINY_DIFFUSION,
};

/// Runs `file` with the golden sequence sizes into `out`; returns the
/// golden form of its metrics.
fn golden_run(file: &Path, name: &str, out: &Path) -> String {
    let mut cmd = runner();
    cmd.arg(file).arg("--out").arg(out);
    for s in GOLDEN_SEQ {
        cmd.args(["--set", s]);
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(out.join(name).join("seed=0/metrics.csv")).unwrap();
    golden_form(&text)
}

fn golden_tfbind8() -> String {
    std::fs::read_to_string(root().join("tests/golden/tfbind8_teacher_prt.csv")).unwrap()
}

/// The declared table task equals the built-in TFBind8 (the golden of
/// `tfbind8_teacher_prt.toml`), byte for byte.
#[test]
fn a_declared_table_trains_as_the_builtin_task() {
    let out = tempfile::tempdir().unwrap();
    let got = golden_run(
        &root().join("examples/tfbind8_table.toml"),
        "tfbind8_table",
        out.path(),
    );
    assert_eq!(got, golden_tfbind8());
}

/// A program serving the same table: every column equal to the golden but
/// the four that need the whole space, which are empty.
#[test]
fn a_program_serving_the_table_trains_as_the_builtin_task() {
    let out = tempfile::tempdir().unwrap();
    let got = golden_run(
        &root().join("examples/tfbind8_command.toml"),
        "tfbind8_command",
        out.path(),
    );
    let want = golden_tfbind8();
    let header = cells(want.lines().next().unwrap());
    let skipped = ["log_z_gap", "expected_reward_gap", "eubo", "pearson"];
    assert_eq!(got.lines().count(), want.lines().count());
    for (g, w) in got.lines().zip(want.lines()).skip(1) {
        for ((name, g), w) in header.iter().zip(cells(g)).zip(cells(w)) {
            match skipped.contains(&name.as_str()) {
                true => assert_eq!(g, "", "{name} should be empty"),
                false => assert_eq!(g, w, "column {name}"),
            }
        }
    }
    let run = out.path().join("tfbind8_command/seed=0");
    let log = std::fs::read_to_string(run.join("oracle_stderr.log")).unwrap();
    assert!(log.contains("table_oracle: 65536 strings"), "{log}");
}

/// A reward program for strings of `0123` of length 8: r = 0.1 + (number
/// of 3s) / 8. `MODE` in its environment makes it fail at batch `AT`:
/// `crash`, `crash_once` (only while FLAG does not exist; it creates it),
/// `hang`, `short`, `nan`, `garbage`, `stubborn` (ignores SIGTERM and
/// hangs). It writes its pid to `pid` in its directory.
const ORACLE: &str = r#"
import os, signal, sys, time
mode, at = os.environ.get("MODE", ""), int(os.environ.get("AT", "0"))
open("pid", "w").write(str(os.getpid()))
if mode == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
batch, n = [], 0
for line in sys.stdin:
    x = line.strip()
    if x:
        batch.append(x)
        continue
    n += 1
    if n == at:
        if mode == "crash" or (mode == "crash_once" and not os.path.exists("FLAG")):
            open("FLAG", "w").close()
            print("crashing on purpose", file=sys.stderr)
            sys.exit(3)
        if mode in ("hang", "stubborn"):
            time.sleep(600)
        if mode == "short":
            print(0.5)
            sys.stdout.flush()
            sys.exit(0)
    for i, x in enumerate(batch):
        if n == at and i == 1 and mode == "nan":
            print("nan")
        elif n == at and i == 1 and mode == "garbage":
            print("0.5 0.5")
        else:
            print(0.1 + x.count("3") / 8)
    sys.stdout.flush()
    batch = []
"#;

/// An experiment of the program task in a fresh directory, with `extra` lines in `[env]`.
fn program_task(dir: &Path, timeout_s: f64) -> PathBuf {
    write(dir, "oracle.py", ORACLE);
    write(
        dir,
        "own.toml",
        &format!(
            r#"name = "own"
[env]
kind = "sequence"
alphabet = "0123"
length = 8
beta = 4.0
reward = {{ command = ["python3", "oracle.py"], batch = 8, timeout_s = {timeout_s} }}
[policy]
kind = "ssr"
hidden = 16
[objective]
kind = "tb"
[behaviour]
kind = "teacher"
[train]
steps = 12
batch_size = 8
checkpoint_every = 3
progress = false
[eval]
every = 3
samples = 16
"#
        ),
    )
}

fn run_own(file: &Path, out: &Path, mode: &str, at: u32) -> std::process::Output {
    runner()
        .arg(file)
        .arg("--out")
        .arg(out)
        .env("MODE", mode)
        .env("AT", at.to_string())
        .output()
        .unwrap()
}

fn metrics(out: &Path) -> String {
    common::metrics_without_wall(&out.join("own/seed=0/metrics.csv"))
}

/// Each fault stops the run with its message; a rerun resumes from the
/// last checkpoint and ends with the metrics of a run that never failed.
#[test]
fn program_faults_stop_the_run_and_the_same_command_resumes() {
    let clean_dir = tempfile::tempdir().unwrap();
    let file = program_task(clean_dir.path(), 20.0);
    let clean_out = clean_dir.path().join("out");
    let o = run_own(&file, &clean_out, "", 0);
    assert!(o.status.success(), "{}", stderr(&o));
    let clean = metrics(&clean_out);
    assert_eq!(clean.lines().count(), 6, "{clean}");

    let cases = [
        ("crash", "batch 20", "exit status: 3"),
        ("short", "after 1 answers", "its output ended"),
        ("nan", "answer line 2", "not a finite number"),
        ("garbage", "answer line 2", "not a number"),
        ("hang", "batch 20", "no answer within 1 s"),
    ];
    for (mode, batch, why) in cases {
        let dir = tempfile::tempdir().unwrap();
        let file = program_task(dir.path(), 1.0);
        let out = dir.path().join("out");
        let o = run_own(&file, &out, mode, 20);
        let err = stderr(&o);
        assert!(!o.status.success(), "{mode}: {err}");
        assert!(
            err.contains("reward program `python3 oracle.py`"),
            "{mode}: {err}"
        );
        assert!(err.contains(batch), "{mode}: {err}");
        assert!(err.contains(why), "{mode}: {err}");
        let ckpts = std::fs::read_dir(out.join("own/seed=0/checkpoints"))
            .unwrap()
            .count();
        assert!(ckpts > 0, "{mode}: no checkpoint kept");
        if mode == "crash" {
            let log = std::fs::read_to_string(out.join("own/seed=0/oracle_stderr.log")).unwrap();
            assert!(log.contains("crashing on purpose"), "{log}");
        }
        // The same command, the program fixed: resumes and ends as the clean run.
        let o = run_own(&file, &out, "", 0);
        assert!(o.status.success(), "{mode} resume: {}", stderr(&o));
        assert_eq!(metrics(&out), clean, "{mode}: resumed metrics differ");
    }
}

fn alive(pid: u32) -> bool {
    // A zombie is dead for our purpose: its state is Z.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s.split(' ').nth(2).is_none_or(|st| st != "Z"),
        Err(_) => false,
    }
}

fn wait_for_pid(dir: &Path) -> u32 {
    let t = Instant::now();
    loop {
        if let Ok(s) = std::fs::read_to_string(dir.join("pid")) {
            if let Ok(p) = s.trim().parse() {
                return p;
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the program never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_dead(pid: u32, what: &str) {
    let t = Instant::now();
    while alive(pid) {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{what}: program {pid} outlived the runner"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGTERM to the runner, and kill -9 of the runner, both end the program,
/// also one that ignores SIGTERM.
#[test]
fn the_program_never_outlives_the_run() {
    for signal in ["TERM", "KILL"] {
        let dir = tempfile::tempdir().unwrap();
        let file = program_task(dir.path(), 300.0);
        let mut child = runner()
            .arg(&file)
            .arg("--out")
            .arg(dir.path().join("out"))
            .env("MODE", "stubborn")
            .env("AT", "2")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = wait_for_pid(dir.path());
        std::thread::sleep(Duration::from_millis(300));
        send_signal(child.id(), signal);
        let _ = child.wait();
        // SIGTERM: the runner stops waiting for the batch at once, ends the
        // program (SIGTERM, then SIGKILL after 2 s) and leaves the run
        // incomplete; kill -9: the kernel ends the program.
        wait_dead(pid, signal);
        if signal == "TERM" {
            let run = dir.path().join("out/own/seed=0");
            assert!(
                !run.join("status.toml").exists(),
                "an interrupted run is not finished"
            );
        }
    }
}

/// `runner score` of a declared task: the table's values, and the program's.
#[test]
fn score_works_for_declared_tasks() {
    for file in [
        "examples/tfbind8_table.toml",
        "examples/tfbind8_command.toml",
    ] {
        let o = common::score_stdin(file, &[], "00000000\nAAAAAAAB\n");
        assert!(o.status.success(), "{file}: {}", stderr(&o));
        // The first rows of datasets/tfbind8/all.csv, as 32-bit floats; the
        // declared alphabet `0123` has digits, so strings are printed in
        // the letters A, B, C, D (docs/tasks-alphabets.md) and read in both.
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            "x,reward\nAAAAAAAA,0.5247495174407959\nAAAAAAAB,0.36651134490966797\n",
            "{file}"
        );
    }
}

/// The example with a computed reward runs end to end; its modes file is read.
#[test]
fn the_motif_example_runs_end_to_end() {
    let out = tempfile::tempdir().unwrap();
    let mut cmd = runner();
    cmd.arg("examples/motif_command.toml")
        .arg("--out")
        .arg(out.path());
    for s in GOLDEN_SEQ {
        cmd.args(["--set", s]);
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("are left empty"), "{}", stderr(&o));
    let run = out.path().join("motif_command/seed=0");
    let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(text.lines().count(), 5, "{text}");
    // The motifs' own rewards: r = exp(0) = 1 at a motif, exp(-1) one letter off.
    let o = runner()
        .args(["score", "examples/motif_command.toml"])
        .arg(common::write(out.path(), "x.txt", "ACGTACGT\nACGTACGA\n"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let want = format!("x,reward\nACGTACGT,1\nACGTACGA,{}\n", (-1f64).exp());
    assert_eq!(String::from_utf8_lossy(&o.stdout), want);
}

/// The energy example (a program with its gradient, MALA on a PER buffer,
/// the Teacher) runs end to end; `runner score` gives log R of points; MALA
/// is refused for a program without a gradient, naming the key.
#[test]
fn the_energy_example_runs_end_to_end() {
    let out = tempfile::tempdir().unwrap();
    let mut cmd = runner();
    cmd.arg("examples/energy_command.toml")
        .arg("--out")
        .arg(out.path());
    for s in TINY_DIFFUSION {
        cmd.args(["--set", s]);
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text =
        std::fs::read_to_string(out.path().join("energy_command/seed=0/metrics.csv")).unwrap();
    assert_eq!(text.lines().count(), 4, "{text}");
    let header = cells(text.lines().next().unwrap());
    let last = cells(text.lines().last().unwrap());
    // No exact samples, no true log Z: those cells are empty.
    for col in ["delta_log_z", "eubo", "w2"] {
        let i = header.iter().position(|h| h == col).unwrap();
        assert_eq!(last[i], "", "{col}");
    }
    // log R at a mode: log(1/4) + log N(0; 0, I) = -ln 4 - ln 2π, plus the

    let o = runner()
        .args(["score", "examples/energy_command.toml"])
        .arg(common::write(out.path(), "p.txt", "4 4\n4, -4\n"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let mode = -(4f64).ln() - (2.0 * std::f64::consts::PI).ln()
        + (1.0 + 2.0 * (-32f64).exp() + (-64f64).exp()).ln();
    for line in text.lines().skip(1) {
        let v: f64 = line.rsplit(',').next().unwrap().parse().unwrap();
        assert!((v - mode).abs() < 1e-12, "{line} vs {mode}");
    }
    let o = runner()
        .args(["score", "examples/energy_command.toml"])
        .arg(common::write(out.path(), "bad.txt", "4 4 4\n"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("bad.txt:1"), "{}", stderr(&o));
    assert!(stderr(&o).contains("3 coordinates"), "{}", stderr(&o));
    // Without a gradient MALA is refused before anything runs.
    let o = runner()
        .args([
            "validate",
            "examples/energy_command.toml",
            "--set",
            "env.gradient=false",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("local_search"), "{}", stderr(&o));
}

/// The bit-sequence benchmark runs end to end: modes within the threshold,
/// Pearson on its test set, and the columns that need the whole space empty.
#[test]
fn bitseq_runs_end_to_end() {
    let out = tempfile::tempdir().unwrap();
    let mut cmd = runner();
    cmd.arg("experiments/bitseq_teacher.toml")
        .arg("--out")
        .arg(out.path());
    for s in GOLDEN_SEQ {
        cmd.args(["--set", s]);
    }
    // n = 16 bits in words of 4, 3 modes: a mode is reached within 8 bits.
    for s in ["env.n=16", "env.n_modes=3", "env.threshold=8"] {
        cmd.args(["--set", s]);
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text =
        std::fs::read_to_string(out.path().join("bitseq_teacher/seed=0/metrics.csv")).unwrap();
    let header = cells(text.lines().next().unwrap());
    let last = cells(text.lines().last().unwrap());
    let col = |name: &str| last[header.iter().position(|h| h == name).unwrap()].clone();
    for empty in ["log_z_gap", "expected_reward_gap", "eubo"] {
        assert_eq!(col(empty), "", "{empty}");
    }
    let p: f64 = col("pearson").parse().unwrap();
    assert!(p.is_finite() && p.abs() <= 1.0, "{p}");
    // 16 bits within 8 of one of 3 modes: almost every sample reaches one.
    let modes: f64 = col("num_modes_all").parse().unwrap();
    assert!((1.0..=3.0).contains(&modes), "{modes}");
    // runner score: r(x) = exp(-d/n) lies in [e^-1, 1].
    let o = runner()
        .args([
            "score",
            "experiments/bitseq_tb.toml",
            "--set",
            "env.n=16",
            "--set",
            "env.n_modes=3",
        ])
        .arg(common::write(out.path(), "b.txt", "0000\nffff\n"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    for line in text.lines().skip(1) {
        let r: f64 = line.split(',').nth(1).unwrap().parse().unwrap();
        assert!(((-1f64).exp()..=1.0).contains(&r), "{line}");
    }
}
