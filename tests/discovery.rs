//! End-to-end tests of the discovery tasks (docs/discovery.md) through the
//! `runner` binary, on the repository's own datasets (`datasets/`).

mod common;

use common::{datasets, runner, score_stdin, stderr, terminate_within, write};

/// A tiny Teacher + PRT run on tfbind8: 6 rounds, evaluations at 0, 3, 6.
const TINY: &str = r#"
name = "tiny_tfbind8"
seed = 3

[env]
kind = "tfbind8"

[policy]
kind = "ssr"
hidden = 16

[objective]
kind = "tb"
lr = 1e-4
log_z_lr = 1e-2
log_z_init = 5.0
log_z_min = 0.0
loss_clamp = 5000.0
clip_grad_norm = 0.0

[behaviour]
kind = "teacher"
epsilon = 0.01
alpha = 0.5
lr = 5e-4

[buffer]
kind = "recent"
selection = "prt"

[train]
steps = 6
progress = false

[eval]
every = 3
samples = 64
"#;

/// metrics.csv without its last column (`wall_s`).
fn metrics_without_wall(path: &std::path::Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string() + "\n")
        .collect()
}

/// The same config and seed give the same metrics, bit for bit (wall time
/// aside), and a different seed gives different ones.
#[test]
fn discovery_runs_are_deterministic() {
    let data = datasets();
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "tiny.toml", TINY);
    let run = |out: &str, seed: &str| {
        let o = runner()
            .arg(&file)
            .arg("--datasets")
            .arg(&data)
            .arg("--out")
            .arg(dir.path().join(out))
            .args(["--set", &format!("seed={seed}")])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let id = format!("seed={seed}");
        metrics_without_wall(
            &dir.path()
                .join(out)
                .join("tiny_tfbind8")
                .join(id)
                .join("metrics.csv"),
        )
    };
    let a = run("a", "3");
    let b = run("b", "3");
    let c = run("c", "4");
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(a.lines().count(), 4, "{a}");
}

/// Defaults filled in from the task table and recorded in config.toml:
/// qm9str: beta 20, 1000 rounds (scaled here by budget_scale 0.001 to 1),
/// evaluation every 20 rounds on 2048 samples, batches of 32, schedule
/// student, student, teacher, each followed by a buffer batch; the file's
/// `selection = "prt"` (the older spelling) is recorded as `priority = "reward"`.
#[test]
fn qm9_defaults_are_resolved() {
    let data = datasets();
    let dir = tempfile::tempdir().unwrap();
    let text = TINY
        .replace("kind = \"tfbind8\"", "kind = \"qm9str\"")
        .replace("steps = 6\n", "budget_scale = 0.001\n")
        .replace("every = 3\nsamples = 64\n", "");
    let file = write(dir.path(), "q.toml", &text);
    let o = runner()
        .arg(&file)
        .arg("--datasets")
        .arg(&data)
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let cfg = std::fs::read_to_string(dir.path().join("tiny_tfbind8/seed=3/config.toml")).unwrap();
    for line in [
        "beta = 20.0",
        "steps = 1\n",
        "batch_size = 32",
        "samples = 2048",
        "every = 20",
        r#"schedule = [["student", "buffer"], ["student", "buffer"], ["teacher", "buffer"]]"#,
        r#"priority = "reward""#,
    ] {
        assert!(cfg.contains(line), "`{line}` missing in:\n{cfg}");
    }
    let metrics =
        std::fs::read_to_string(dir.path().join("tiny_tfbind8/seed=3/metrics.csv")).unwrap();
    // Round 0 and the last round (1).
    assert_eq!(metrics.lines().count(), 3, "{metrics}");
}

/// A missing dataset is an error naming the file and datasets/README.md.
#[test]
fn missing_dataset_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "tiny.toml", TINY);
    let o = runner()
        .arg(&file)
        .arg("--datasets")
        .arg(dir.path().join("nowhere"))
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("nowhere/tfbind8/all.csv"), "{err}");
    assert!(err.contains("datasets/README.md"), "{err}");
}

/// Components that do not fit the sequence tasks are refused with the key
/// and what is allowed.
#[test]
fn sequence_composition_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "kind = \"ssr\"\nhidden = 16",
            "kind = \"mlp\"",
            "sequence tasks use the `ssr` policy",
        ),
        (
            "kind = \"tb\"\nlr = 1e-4\nlog_z_lr = 1e-2\nlog_z_init = 5.0\nlog_z_min = 0.0\nloss_clamp = 5000.0\n",
            "kind = \"subtb\"\nloss_clamp = 5000.0\n",
            "loss_clamp",
        ),
        (
            "kind = \"recent\"\nselection = \"prt\"",
            "kind = \"terminal\"",
            "sequence tasks replay with `kind = \"recent\"`",
        ),
        (
            "lr = 5e-4",
            "lr = 5e-4\nschedule = [\"buffer\"]",
            "needs at least one sampling source besides `buffer`",
        ),
        (
            "kind = \"tfbind8\"",
            "kind = \"tfbind9\"",
            "qm9str",
        ),
        (
            "selection = \"prt\"",
            "selection = \"top\"",
            "allowed: `uniform`, `prt`, `per`",
        ),
    ];
    for (from, to, expected) in cases {
        assert!(TINY.contains(from), "{from}");
        let path = write(dir.path(), "bad.toml", &TINY.replacen(from, to, 1));
        let err = stderr(&runner().arg("validate").arg(&path).output().unwrap());
        assert!(err.contains(expected), "expected `{expected}` in:\n{err}");
    }
    // And the grid refuses the sequence-only components.
    let grid = "name = \"g\"\n[env]\nkind = \"grid\"\nndim = 2\nhorizon = 8\n[policy]\nkind = \"ssr\"\n[objective]\nkind = \"tb\"\n[behaviour]\nkind = \"on_policy\"\n";
    let path = write(dir.path(), "grid.toml", grid);
    let err = stderr(&runner().arg("validate").arg(&path).output().unwrap());
    assert!(err.contains("the grid uses `mlp`"), "{err}");
}

/// `runner score` on the 900 ViennaRNA 2.8.0 test vectors
/// (rna/duplex_test_vectors.csv), one call per target through the target
/// switch: `x,reward,energy` in input order, energy within 0.01 kcal/mol and
/// reward (the fitness) within 1e-9.
#[test]
fn score_reproduces_rna_test_vectors() {
    let text = std::fs::read_to_string(datasets().join("rna/duplex_test_vectors.csv")).unwrap();
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    for target in 1..=3 {
        let task = format!("L14_RNA{target}");
        let mine: Vec<&Vec<&str>> = rows.iter().filter(|r| r[0] == task).collect();
        assert!(mine.len() >= 250, "{task}: {}", mine.len());
        let input: String = mine.iter().map(|r| format!("{}\n", r[1])).collect();
        let set = format!("env.target={target}");
        let o = score_stdin("experiments/rna1_tb.toml", &[&set], &input);
        assert!(o.status.success(), "{}", stderr(&o));
        let out = String::from_utf8(o.stdout).unwrap();
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some("x,reward,energy"));
        let got: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
        assert_eq!(got.len(), mine.len());
        for (g, r) in got.iter().zip(&mine) {
            assert_eq!(g[0], r[1]);
            let (reward, energy): (f64, f64) = (g[1].parse().unwrap(), g[2].parse().unwrap());
            let (fitness, want): (f64, f64) = (r[3].parse().unwrap(), r[2].parse().unwrap());
            assert!((energy - want).abs() <= 0.01 + 1e-9, "{r:?}: {energy}");
            assert!((reward - fitness).abs() <= 1e-9, "{r:?}: {reward}");
        }
    }
}

/// `runner score` on the other tasks: qm9str values are its table's
/// (qm9str/rewards.csv rows `00000,8.592599868774414`, `aaaaa,...`), a file
/// argument works like stdin, and bad input is an error naming its line.
#[test]
fn score_other_tasks_and_errors() {
    // Strings are printed in the task's letters (qm9str: A..K for the
    // data files' 0..a) and read in either form.
    let o = score_stdin("experiments/qm9_tb.toml", &[], "00000\n\n  AAAAB \n");
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    assert_eq!(
        out,
        "x,reward\nAAAAA,8.592599868774414\nAAAAB,8.550861358642578\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "x.txt", "00000000\nTTTTTTTT\nACGT0123\n");
    let o = runner()
        .args(["score", "experiments/tfbind8_tb.toml"])
        .arg(&file)
        .output()
        .unwrap();
    let e = stderr(&o);
    assert!(
        !o.status.success() && e.contains("x.txt:3") && e.contains("'0'") && e.contains("\"ACGT\""),
        "a string mixing the two forms is refused: {e}"
    );
    let file = write(dir.path(), "x.txt", "00000000\nTTTTTTTT\n");
    let o = runner()
        .args(["score", "experiments/tfbind8_tb.toml"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(out.starts_with("x,reward\nAAAAAAAA,0.5247495"), "{out}");
    assert!(out.contains("\nTTTTTTTT,"), "{out}");
    assert_eq!(out.lines().count(), 3);
    let o = score_stdin("experiments/seh_tb.toml", &[], "000000\n0000000\n");
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("<stdin>:2") && e.contains("length 7"), "{e}");
    assert!(o.stdout.is_empty(), "no partial output");
    let o = score_stdin("experiments/rna1_tb.toml", &[], "GGGGGCCCCGCGCT\n");
    let e = stderr(&o);
    assert!(
        !o.status.success() && e.contains("<stdin>:1") && e.contains("'T'"),
        "{e}"
    );
    // A diffusion energy scores points: log R of 25GMM at the origin is
    // twice the log of one axis' mixture (1/5) sum_c N(0; c, 0.3), whose
    // centre term dominates (the others are e^-25/0.6 and e^-100/0.6 of it).
    let o = score_stdin("experiments/gmm25_db.toml", &[], "0 0\n");
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    let axis = 0.2 / (2.0 * std::f64::consts::PI * 0.3).sqrt()
        * (1.0 + 2.0 * (-25.0f64 / 0.6).exp() + 2.0 * (-100.0f64 / 0.6).exp());
    let got: f64 = out
        .lines()
        .nth(1)
        .unwrap()
        .rsplit(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((got - 2.0 * axis.ln()).abs() < 1e-12, "{out}");
    let o = score_stdin("experiments/gmm25_db.toml", &[], "0 0 0\n");
    let e = stderr(&o);
    assert!(
        !o.status.success() && e.contains("<stdin>:1") && e.contains("2-dimensional"),
        "{e}"
    );
    let o = score_stdin("experiments/rna_compare.toml", &[], "");
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains("varies the task"), "{e}");
    // A line without end (/dev/zero) is refused after MAX_LINE bytes, not
    // read until the memory runs out.
    let o = runner()
        .args(["score", "experiments/qm9_tb.toml", "/dev/zero"])
        .output()
        .unwrap();
    let e = stderr(&o);
    assert!(
        o.status.code() == Some(1) && e.contains("/dev/zero:1") && e.contains("longer than 4096"),
        "{e}"
    );
}

/// A SIGTERM ends `runner score` at once, even in the middle of a long
/// input: nothing there would check a request to stop cleanly.
#[test]
fn sigterm_ends_score_at_once() {
    let mut child = runner()
        .args(["score", "experiments/rna1_tb.toml"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The input is never closed: the command would wait for it forever.
    let _stdin = child.stdin.take();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let status = terminate_within(&mut child, 10, "runner score");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(15), "{status:?}");
}

/// A tiny Teacher-PRT run on each RNA target: targets 2 and 3 have no exact
/// samples, so their `eubo` and `pearson` cells are empty (not a crash);
/// target 1's are numbers. A target outside 1..3 and a beta without an info
/// row are clear errors.
#[test]
fn rna_targets_train() {
    let dir = tempfile::tempdir().unwrap();
    for target in 1..=3 {
        let o = runner()
            .arg("experiments/rna1_teacher_prt.toml")
            .arg("--out")
            .arg(dir.path().join(target.to_string()))
            .args(["--set", &format!("env.target={target}")])
            .args(["--set", "train.steps=3", "--set", "eval.every=3"])
            .args(["--set", "eval.samples=32", "--set", "policy.hidden=16"])
            .args(["--set", "train.progress=false"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let m = std::fs::read_to_string(
            dir.path()
                .join(target.to_string())
                .join("rna1_teacher_prt/seed=0/metrics.csv"),
        )
        .unwrap();
        let header: Vec<&str> = m.lines().next().unwrap().split(',').collect();
        let last: Vec<&str> = m.lines().last().unwrap().split(',').collect();
        let cell = |name: &str| last[header.iter().position(|h| *h == name).unwrap()];
        if target == 1 {
            assert!(cell("eubo").parse::<f64>().is_ok(), "{m}");
        } else {
            assert_eq!((cell("eubo"), cell("pearson")), ("", ""), "{m}");
        }
        assert!(cell("log_z_gap").parse::<f64>().is_ok(), "{m}");
    }
    for (set, want) in [
        ("env.target=4", "env.target"),
        ("env.beta=41.5", "no row for env.beta = 41.5"),
    ] {
        let o = runner()
            .arg("experiments/rna1_tb.toml")
            .arg("--out")
            .arg(dir.path())
            .args(["--set", set, "--set", "train.steps=1"])
            .output()
            .unwrap();
        assert!(!o.status.success());
        assert!(stderr(&o).contains(want), "{}", stderr(&o));
    }
}

/// A damaged data file: a copy of the datasets whose tfbind8/all.csv lost
/// its second half (cut inside a row) fails with an error naming the file
/// and the line, and the checksum list's mismatch is reported as a warning
/// naming the file.
#[test]
fn truncated_data_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    std::fs::create_dir_all(root.join("tfbind8")).unwrap();
    for f in ["tfbind8/modes.csv", "SHA256SUMS"] {
        std::fs::copy(datasets().join(f), root.join(f)).unwrap();
    }
    let full = std::fs::read(datasets().join("tfbind8/all.csv")).unwrap();
    let cut = full.len() / 2 + 3;
    std::fs::write(root.join("tfbind8/all.csv"), &full[..cut]).unwrap();
    let file = write(dir.path(), "tiny.toml", TINY);
    let o = runner()
        .arg(&file)
        .arg("--datasets")
        .arg(&root)
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("warning:") && err.contains("all.csv differs"),
        "{err}"
    );
    assert!(err.contains("all.csv:"), "names file and line: {err}");
}
