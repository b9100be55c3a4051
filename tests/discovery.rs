//! End-to-end tests of the discovery tasks (docs/discovery.md) through the
//! `runner` binary, on the repository's own datasets (`datasets/`).

mod common;

use common::{datasets, runner, stderr, write};

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
            "kind = \"db\"\n",
            "sequence tasks train with `tb`",
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
            "teacher_reward",
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
