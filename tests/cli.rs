//! End-to-end tests of the `runner` binary on tiny configs.

use std::path::{Path, PathBuf};

mod common;
use common::{metrics_without_wall, runner, stderr, write};

/// A tiny teacher experiment: d=2, H=8, 24 steps, 2 evaluations of 500 samples.
const TINY: &str = r#"
name = "tiny"
seed = 5

[env]
kind = "grid"
ndim = 2
horizon = 8

[policy]
kind = "mlp"
hidden = 16

[objective]
kind = "tb"

[behaviour]
kind = "teacher"

[train]
steps = 24
n_evals = 2
progress = false

[eval]
samples = 500
batch_size = 250
"#;

fn experiment_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_experiment_file_validates() {
    let files = experiment_files();
    assert!(files.len() >= 5, "expected the grid experiment files");
    let out = runner().arg("validate").args(&files).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().filter(|l| l.starts_with("ok ")).count(),
        files.len()
    );
    // The paper budget for d=4, H=32 without local search: 16000 x 1.5.
    assert!(
        text.contains("grid_d4_h32_teacher.toml: tb on grid, behaviour teacher, 24000 steps"),
        "{text}"
    );
}

#[test]
fn config_errors_name_file_key_and_allowed_values() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        // (replace, with, expected fragments)
        (
            "horizon = 8",
            "horizn = 8",
            vec![
                "unknown key `env.horizn`",
                "allowed keys here: `ndim`, `horizon`, `beta`",
            ],
        ),
        (
            "kind = \"grid\"",
            "kind = \"grd\"",
            vec!["unknown value `grd` for `env.kind`; allowed: `grid`"],
        ),
        (
            "ndim = 2",
            "ndim = \"two\"",
            vec!["wrong type for `env.ndim`", "expected usize"],
        ),
        (
            "kind = \"teacher\"",
            "kind = \"teacher\"\nschedul = []",
            vec!["unknown key `behaviour.schedul`", "`schedule`"],
        ),
        ("[train]", "[trian]", vec!["unknown key `trian`", "`train`"]),
        ("steps = 24", "steps = -3", vec!["`train.steps`"]),
        (
            "kind = \"teacher\"",
            "kind = \"teacher\"\nepsilon = 2.0",
            vec!["`behaviour.epsilon`: must be in [0, 1]"],
        ),
    ];
    for (from, to, expected) in cases {
        assert!(TINY.contains(from), "{from}");
        let path = write(dir.path(), "bad.toml", &TINY.replacen(from, to, 1));
        let out = runner().arg("validate").arg(&path).output().unwrap();
        assert!(!out.status.success(), "{to} should fail");
        let err = stderr(&out);
        assert!(
            err.contains(&path.display().to_string()),
            "file not named: {err}"
        );
        for e in expected {
            assert!(err.contains(e), "expected `{e}` in:\n{err}");
        }
    }
    // Missing kind, a missing file, bad TOML.
    let path = write(
        dir.path(),
        "nokind.toml",
        &TINY.replacen("kind = \"grid\"\n", "", 1),
    );
    let err = stderr(&runner().arg("validate").arg(&path).output().unwrap());
    assert!(
        err.contains("missing key `env.kind`; allowed kinds: `grid`"),
        "{err}"
    );
    let err = stderr(
        &runner()
            .args(["validate", "no/such.toml"])
            .output()
            .unwrap(),
    );
    assert!(
        err.contains("cannot read experiment file no/such.toml"),
        "{err}"
    );
    let path = write(dir.path(), "syntax.toml", "name = \n");
    let err = stderr(&runner().arg("validate").arg(&path).output().unwrap());
    assert!(err.contains("is not valid TOML"), "{err}");
}

#[test]
fn overrides_name_their_source() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "tiny.toml", TINY);
    let out = runner()
        .arg("validate")
        .arg(&path)
        .args(["--set", "env.ndim=oops"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(
        err.contains("--set env.ndim") && err.contains("wrong type for `env.ndim`"),
        "{err}"
    );
    let out = runner()
        .arg("validate")
        .arg(&path)
        .env("RUNNER_ENV__HORIZN", "3")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(
        err.contains("RUNNER_ENV__HORIZN") && err.contains("unknown key `env.horizn`"),
        "{err}"
    );
    // Unrelated RUNNER_* variables (RUNNER_DATASETS, CI runners' RUNNER_OS) are ignored.
    let out = runner()
        .arg("validate")
        .arg(&path)
        .env("RUNNER_OS", "Linux")
        .env("RUNNER_DATASETS", "/nowhere")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

fn run_tiny(out_dir: &Path, extra: &[&str], envs: &[(&str, &str)]) -> PathBuf {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "tiny.toml", TINY);
    let mut cmd = runner();
    cmd.arg(&path).arg("--out").arg(out_dir).args(extra);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    out_dir.join("tiny")
}

#[test]
fn tiny_run_writes_config_and_metrics() {
    let out = tempfile::tempdir().unwrap();
    let exp_dir = run_tiny(out.path(), &[], &[]);
    let run = exp_dir.join("seed=5");
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    for col in [
        "step",
        "loss",
        "n_goals_found",
        "empirical_l1",
        "eval_empirical_l1",
        "n_reward_calls",
        "wall_s",
    ] {
        assert!(header.contains(&col), "missing column {col}");
    }
    // Rows at step 0, 12 and 24 (n_evals = 2).
    let steps: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(steps, vec!["0", "12", "24"]);
    let last: Vec<&str> = lines[3].split(',').collect();
    let col = |name: &str| last[header.iter().position(|h| *h == name).unwrap()];
    assert_eq!(col("n_reward_calls"), "384"); // 24 steps x 16 trajectories
    assert_eq!(col("n_grad_steps"), "24");
    let l1: f64 = col("eval_empirical_l1").parse().unwrap();
    assert!(l1.is_finite() && l1 > 0.0);
    // The resolved config is runnable as is.
    let cfg = run.join("config.toml");
    let v = runner().arg("validate").arg(&cfg).output().unwrap();
    assert!(v.status.success(), "{}", stderr(&v));
    assert!(std::fs::read_to_string(&cfg)
        .unwrap()
        .contains("window = 10000"));
}

#[test]
fn same_seed_same_bytes_and_overrides_apply() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ra = run_tiny(a.path(), &[], &[]).join("seed=5/metrics.csv");
    let rb = run_tiny(b.path(), &[], &[]).join("seed=5/metrics.csv");
    assert_eq!(metrics_without_wall(&ra), metrics_without_wall(&rb));
    // --set beats the environment, which beats the file.
    let c = tempfile::tempdir().unwrap();
    let rc = run_tiny(
        c.path(),
        &["--set", "seed=6", "--set", "env.horizon=6"],
        &[
            ("RUNNER_ENV__HORIZON", "7"),
            ("RUNNER_TRAIN__BATCH_SIZE", "4"),
        ],
    );
    let cfg = std::fs::read_to_string(rc.join("seed=6/config.toml")).unwrap();
    assert!(
        cfg.contains("horizon = 6") && cfg.contains("batch_size = 4"),
        "{cfg}"
    );
    assert_ne!(
        metrics_without_wall(&ra),
        metrics_without_wall(&rc.join("seed=6/metrics.csv"))
    );
}

#[test]
fn non_finite_loss_is_a_clear_error() {
    let out = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "tiny.toml", TINY);
    let o = runner()
        .arg(&path)
        .arg("--out")
        .arg(out.path())
        .args(["--set", "objective.log_z_init=1e39"]) // inf as f32
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("non-finite student loss"),
        "{}",
        stderr(&o)
    );
}

#[cfg(not(feature = "cuda"))]
#[test]
fn cuda_without_the_feature_is_a_clear_error() {
    let out = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "tiny.toml", TINY);
    let o = runner()
        .arg(&path)
        .arg("--out")
        .arg(out.path())
        .args(["--set", "device=cuda"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("built with the `cuda` feature"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn schema_file_is_current_and_fully_described() {
    let generated = runner::schema_json();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/experiment.schema.json");
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == generated,
        "schemas/experiment.schema.json is stale: run `cargo run --release -- schema > schemas/experiment.schema.json`"
    );
    // Every property of every object has a description.
    let v: serde_json::Value = serde_json::from_str(&generated).unwrap();
    let mut missing = Vec::new();
    fn walk(v: &serde_json::Value, path: &str, missing: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(serde_json::Value::Object(props)) = m.get("properties") {
                    for (k, p) in props {
                        if k != "kind" && p.get("description").is_none() {
                            missing.push(format!("{path}.{k}"));
                        }
                    }
                }
                for (k, x) in m {
                    walk(x, &format!("{path}/{k}"), missing);
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, path, missing)),
            _ => {}
        }
    }
    walk(&v, "", &mut missing);
    assert!(
        missing.is_empty(),
        "fields without a description: {missing:?}"
    );
}

/// Every experiment file runs a few steps at a small size (the components and
/// schedules it names all work together): grid files on a small grid, the
/// discovery files (qm9, seh, tfbind8) for a few rounds with a small network
/// on the real datasets.
#[test]
fn every_experiment_file_runs_a_few_steps() {
    let out = tempfile::tempdir().unwrap();
    let grid_sets = [
        "env.ndim=2",
        "env.horizon=8",
        "train.steps=34",
        "train.n_evals=1",
        "eval.samples=200",
        "policy.hidden=16",
        "train.progress=false",
    ];
    // 4 rounds: the offline batch starts once 10 discoveries exist (round 1).
    let seq_sets = [
        "train.steps=4",
        "eval.every=2",
        "eval.samples=64",
        "policy.hidden=16",
        "train.progress=false",
    ];
    // No --datasets: the runner finds the repository's own datasets/.
    // The diffusion files run in tests/diffusion.rs.
    let diffusion = |p: &Path| {
        let n = p.file_name().unwrap().to_string_lossy().to_string();
        ["gmm25_", "gmm40_", "funnel_", "many_well_", "diffusion_"]
            .iter()
            .any(|prefix| n.starts_with(prefix))
    };
    for file in experiment_files().into_iter().filter(|f| !diffusion(f)) {
        let grid = file
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("grid_");
        let sets: &[&str] = if grid { &grid_sets } else { &seq_sets };
        let mut cmd = runner();
        cmd.arg(&file).arg("--out").arg(out.path());
        for s in sets {
            cmd.args(["--set", s]);
        }
        let o = cmd.output().unwrap();
        assert!(o.status.success(), "{}: {}", file.display(), stderr(&o));
    }
    // 34 steps cover the 16-step schedules twice; plots were written.
    let plots = out.path().join("grid_d4_h32_teacher_ls_per/seed=0/plots");
    assert!(plots.join("target_density.png").exists());
    assert!(plots.join("empirical_density_step000034.png").exists());
    // A discovery run evaluated at rounds 0, 2 and 4 with every spec column.
    let text =
        std::fs::read_to_string(out.path().join("tfbind8_teacher_prt/seed=0/metrics.csv")).unwrap();
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
    for col in [
        "round",
        "loss",
        "teacher_loss",
        "num_modes_all",
        "num_modes_onpolicy",
        "log_z_est",
        "log_z_gap",
        "elbo",
        "eubo",
        "pearson",
        "expected_reward_gap",
        "mean_reward",
        "n_reward_calls",
        "wall_s",
    ] {
        assert!(rows[0].contains(&col), "missing column {col}");
    }
    let col = |name: &str| rows[0].iter().position(|c| *c == name).unwrap();
    let rounds: Vec<&str> = rows[1..].iter().map(|r| r[col("round")]).collect();
    assert_eq!(rounds, ["0", "2", "4"]);
    // 32 fresh trajectories per round.
    assert_eq!(rows[3][col("n_reward_calls")], "128");
    for r in &rows[1..] {
        for name in ["log_z_est", "elbo", "eubo", "pearson"] {
            let v: f64 = r[col(name)].parse().unwrap();
            assert!(v.is_finite(), "{name} = {v}");
        }
    }
}

#[test]
fn composition_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[train]",
            "[buffer]\nkind = \"transition\"\n[train]",
            "a `transition` buffer needs objective `db`",
        ),
        (
            "kind = \"teacher\"",
            "kind = \"on_policy\"\nschedule = [\"student\", \"buffer\"]",
            "`buffer` and `->buffer` sources need a `[buffer]` table",
        ),
        (
            "kind = \"teacher\"",
            "kind = \"on_policy\"\nschedule = [\"teacher\"]",
            "`teacher` sources need",
        ),
        (
            "kind = \"teacher\"",
            "kind = \"teacher\"\nschedule = [\"student\", \"teacher+ls\"]",
            "`+ls` sources need a `[local_search]` table",
        ),
        (
            "[train]",
            "[buffer]\nkind = \"terminal\"\npriority = \"rewrd\"\n[train]",
            "unknown value `rewrd` for `buffer.priority`",
        ),
    ];
    for (from, to, expected) in cases {
        let path = write(dir.path(), "bad.toml", &TINY.replacen(from, to, 1));
        let err = stderr(&runner().arg("validate").arg(&path).output().unwrap());
        assert!(err.contains(expected), "expected `{expected}` in:\n{err}");
    }
}

/// A step of several batches: the teacher's samples only fill the buffer
/// (`teacher->buffer`), then the student and the teacher train on a buffer
/// batch. 24 steps: 24 x 16 reward calls, 24 optimisation steps, and the
/// resolved config records the schedule as written.
#[test]
fn teacher_fills_the_buffer_then_the_student_trains_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let text = TINY.replacen(
        "kind = \"teacher\"",
        "kind = \"teacher\"\nschedule = [[\"teacher->buffer\", \"buffer\"]]",
        1,
    ) + "\n[buffer]\nkind = \"terminal\"\npriority = \"teacher_reward\"\n";
    let path = write(
        dir.path(),
        "fill.toml",
        &text.replace("name = \"tiny\"", "name = \"fill\""),
    );
    let out = tempfile::tempdir().unwrap();
    let o = runner()
        .arg(&path)
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let run = out.path().join("fill/seed=5");
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    let col = |name: &str| rows[0].iter().position(|c| *c == name).unwrap();
    let last = rows.last().unwrap();
    assert_eq!(last[col("step")], "24");
    assert_eq!(last[col("n_reward_calls")], "384");
    assert_eq!(last[col("n_grad_steps")], "24");
    assert_ne!(last[col("teacher_loss")], "nan");
    let cfg = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        cfg.contains(r#"schedule = [["teacher->buffer", "buffer"]]"#),
        "{cfg}"
    );
}

/// Names become directories, so each must be one plain path component: a
/// name that climbs out of `--out`, is absolute, empty, hidden or has a
/// space is refused before anything is written, from the file, a `--set`
/// flag or `RUNNER_NAME` alike.
#[test]
fn unsafe_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    for name in [
        "../../escape",
        "/tmp/abs",
        "",
        ".hidden",
        "a b",
        "x/y",
        "..",
    ] {
        let o = runner()
            .arg("experiments/grid_d2_h32_tb.toml")
            .arg("--out")
            .arg(&out)
            .args(["--set", &format!("name={name:?}")])
            .output()
            .unwrap();
        assert!(!o.status.success(), "{name:?} accepted");
        let err = stderr(&o);
        assert!(
            err.contains("`name`") || err.contains("name"),
            "{name:?}: {err}"
        );
    }
    let o = runner()
        .arg("experiments/grid_d2_h32_tb.toml")
        .arg("--out")
        .arg(&out)
        .env("RUNNER_NAME", "../escape")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("RUNNER_NAME"), "{}", stderr(&o));
    assert!(!dir.path().join("escape").exists() && !out.exists());
}

/// A NaN or infinity anywhere in a config is refused at validation with its
/// key (not reported later as a diverging loss), and an absurd budget scale
/// is refused with its limit.
#[test]
fn non_finite_and_absurd_numbers_are_refused() {
    for (set, key) in [
        ("behaviour.alpha=nan", "`behaviour.alpha`: is NaN"),
        ("objective.log_z_init=nan", "`objective.log_z_init`"),
        ("objective.lr=inf", "`objective.lr`: is inf"),
        ("env.beta=-inf", "`env.beta`"),
        ("train.budget_scale=1e30", "at most 1000"),
    ] {
        let o = runner()
            .args([
                "validate",
                "experiments/grid_d4_h32_teacher.toml",
                "--set",
                set,
            ])
            .output()
            .unwrap();
        assert!(!o.status.success(), "{set} accepted");
        assert!(stderr(&o).contains(key), "{set}: {}", stderr(&o));
    }
}

/// A table given as an array (serde would read it by position), a number or
/// a string is refused naming the key and what was found, from the file and
/// from `--set` alike.
#[test]
fn every_table_must_be_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string("experiments/grid_d2_h32_tb.toml").unwrap();
    let bad = write(
        dir.path(),
        "a.toml",
        &format!("train = [7, 1.0, 3]\n{base}"),
    );
    let o = runner().args(["validate"]).arg(&bad).output().unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("`train` must be a table"),
        "{}",
        stderr(&o)
    );
    for (set, want) in [
        (
            "train=[7]",
            "`train` must be a table (`[train]` or `train = { ... }`), found an array",
        ),
        ("train=[]", "`train` must be a table"),
        ("sweep=[[0,1,2]]", "`sweep` must be a table"),
        (
            "env=5",
            "`env` must be a table (`[env]` or `env = { ... }`), found a number",
        ),
        ("env=\"grid\"", "found a string"),
        ("sweep.grid=[1]", "`sweep.grid` must be a table"),
    ] {
        let o = runner()
            .args(["validate", "experiments/grid_d2_h32_tb.toml", "--set", set])
            .output()
            .unwrap();
        assert!(!o.status.success(), "{set} accepted");
        assert!(stderr(&o).contains(want), "{set}: {}", stderr(&o));
    }
}

/// Settings that would silently do nothing useful are refused: `--jobs 0`,
/// `bench --steps 0`, a buffer whose `min_size` exceeds its `size`, a local
/// search walking back further than the string is long, an empty
/// `sweep.seeds`.
#[test]
fn silently_useless_settings_are_refused() {
    let cases: [(&[&str], &str); 5] = [
        (
            &["experiments/grid_d2_h32_tb.toml", "--jobs", "0"],
            "--jobs 0",
        ),
        (
            &["bench", "experiments/grid_d2_h32_tb.toml", "--steps", "0"],
            "--steps 0",
        ),
        (
            &[
                "validate",
                "experiments/tfbind8_tb_prt.toml",
                "--set",
                "buffer.min_size=2000",
            ],
            "`buffer.min_size`: is 2000 but buffer.size is 1000",
        ),
        (
            &[
                "validate",
                "experiments/tfbind8_tb.toml",
                "--set",
                "local_search.kind=back_and_forth",
                "--set",
                "local_search.k=9",
            ],
            "`local_search.k`: is 9: at most the task's string length 8",
        ),
        (
            &[
                "validate",
                "experiments/grid_d2_h32_tb.toml",
                "--set",
                "sweep.seeds=[]",
            ],
            "`sweep.seeds` lists no seed",
        ),
    ];
    for (args, want) in cases {
        let o = runner().args(args).output().unwrap();
        assert!(!o.status.success(), "{args:?} accepted");
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    }
}

/// Messages say what is wrong once and in the user's terms: a misspelled
/// command gets a suggestion, an OS error is printed once.
#[test]
fn messages_are_not_misleading() {
    let o = runner()
        .args(["valdate", "experiments/grid_d2_h32_tb.toml"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("did you mean `runner validate`?"),
        "{}",
        stderr(&o)
    );
    let o = runner()
        .args(["validate", "experiments/grid_d2_h32_tb.toml"])
        .args(["--set", "seed=18446744073709551615"])
        .output()
        .unwrap();
    assert!(
        stderr(&o).contains("outside the integers a TOML value can hold"),
        "{}",
        stderr(&o)
    );
    let o = runner().arg("/nonexistent/x.toml").output().unwrap();
    let err = stderr(&o);
    assert!(!o.status.success());
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");
}

/// Sizes are checked before anything is allocated: a batch whose tensors
/// could not fit is refused naming the key and the memory it would need.
#[test]
fn huge_sizes_are_refused_before_allocating() {
    for (file, set) in [
        (
            "experiments/grid_d4_h32_tb.toml",
            "train.batch_size=1000000000000",
        ),
        ("experiments/qm9_tb.toml", "eval.batch_size=100000000"),
        (
            "experiments/many_well_teacher.toml",
            "train.batch_size=10000000",
        ),
    ] {
        let o = runner()
            .args(["validate", file, "--set", set])
            .output()
            .unwrap();
        assert!(!o.status.success(), "{set} accepted");
        let err = stderr(&o);
        let key = set.split('=').next().unwrap();
        assert!(
            err.contains(&format!("`{key}`")) && err.contains("GiB"),
            "{err}"
        );
    }
    // Memory that does not grow with the batch: the networks and the exact
    // W2's n x n matrix (src/plan/mod.rs, fixed_bytes).
    for (set, key) in [
        ("policy.harmonics=1000000000", "policy.harmonics"),
        ("eval.samples=200000", "eval.samples"),
    ] {
        let err = refused("experiments/gmm25_on_policy.toml", &[set]);
        assert!(
            err.contains(&format!("`{key}`")) && err.contains("GiB"),
            "{err}"
        );
    }
    let o = runner()
        .args(["validate", "experiments/grid_d4_h32_tb.toml"])
        .args(["--set", "env.ndim=4294967297", "--set", "env.horizon=2"])
        .output()
        .unwrap();
    assert!(
        !o.status.success() && stderr(&o).contains("too large"),
        "{}",
        stderr(&o)
    );
}

/// The compatibility switches exist where the official code had the
/// behaviour; elsewhere they are refused, naming the key.
#[test]
fn compatibility_switches_are_refused_where_they_mean_nothing() {
    for (file, set, expected) in [
        (
            "experiments/gmm25_per.toml",
            "buffer.pre_fix_pairing=true",
            "`buffer.pre_fix_pairing`: reproduces a bug of the official gridworld code",
        ),
        (
            "experiments/qm9_tb_prt.toml",
            "buffer.pre_fix_pairing=true",
            "unknown key `buffer.pre_fix_pairing`",
        ),
        (
            "experiments/grid_d4_h32_db_per.toml",
            "buffer.pre_fix_pairing=true",
            "unknown key `buffer.pre_fix_pairing`",
        ),
    ] {
        let out = runner()
            .args(["validate", file, "--set", set])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{file} {set}");
        let err = stderr(&out);
        assert!(
            err.contains(expected),
            "{file}: expected `{expected}` in:\n{err}"
        );
    }
}

/// `runner validate FILE --set ...`: its stderr, asserting that it failed.
fn refused(file: &str, sets: &[&str]) -> String {
    let mut cmd = runner();
    cmd.args(["validate", file]);
    for s in sets {
        cmd.args(["--set", s]);
    }
    let o = cmd.output().unwrap();
    assert!(!o.status.success(), "{sets:?} accepted");
    stderr(&o)
}

/// Values that run to the end but mean nothing are refused naming their
/// key: a learning rate above 10 (the network saturates and its
/// evaluations freeze), a negative reward exponent in the teacher reward.
#[test]
fn absurd_rates_and_exponents_are_refused() {
    for (file, set, want) in [
        (
            "experiments/grid_d4_h32_teacher.toml",
            "objective.lr=1e10",
            "`objective.lr`: is 1e10; at most 10",
        ),
        (
            "experiments/grid_d4_h32_teacher.toml",
            "objective.log_z_lr=1e3",
            "`objective.log_z_lr`: is 1e3; at most 10",
        ),
        (
            "experiments/qm9_teacher_prt.toml",
            "behaviour.lr=20",
            "`behaviour.lr`: is 2e1; at most 10",
        ),
        (
            "experiments/grid_d4_h32_gafn.toml",
            "behaviour.rnd_lr=1e5",
            "`behaviour.rnd_lr`",
        ),
        (
            "experiments/gmm25_on_policy.toml",
            "env.t_scale=1e300",
            "`env.t_scale`: is 1e300; must be in [1e-6, 1e6]",
        ),
        (
            "experiments/grid_d4_h32_teacher.toml",
            "behaviour.alpha=-1",
            "`behaviour.alpha`: is -1; must be >= 0",
        ),
        (
            "experiments/grid_d4_h32_gafn.toml",
            "behaviour.ri_loss_weight=-1",
            "`behaviour.ri_loss_weight`: must be >= 0",
        ),
        (
            "experiments/grid_d4_h32_tb.toml",
            "policy.layers=0",
            "`policy.layers`: must be at least 1",
        ),
    ] {
        let err = refused(file, &[set]);
        assert!(err.contains(want), "{set}: {err}");
        assert!(
            err.contains(&format!("--set {}", set.split('=').next().unwrap())),
            "{err}"
        );
    }
}

/// A run whose network stops changing (a learning rate that saturates it:
/// every gradient zero) fails at the evaluation that shows it, naming the
/// learning-rate keys, instead of finishing with frozen evaluations.
#[test]
fn a_network_that_stops_changing_fails_the_run() {
    let out = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "tiny.toml", TINY);
    let o = runner()
        .arg(&path)
        .arg("--out")
        .arg(out.path())
        .args([
            "--set",
            "objective.lr=1",
            "--set",
            "behaviour.kind=on_policy",
        ])
        .args(["--set", "train.steps=2000", "--set", "train.n_evals=4"])
        .args(["--set", "eval.samples=100", "--set", "eval.plot=false"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("the student network stopped changing")
            && err.contains("bit for bit")
            && err.contains("objective.lr, objective.log_z_lr"),
        "{err}"
    );
    let status = std::fs::read_to_string(out.path().join("tiny/seed=5/status.toml")).unwrap();
    assert!(status.contains("stopped changing"), "{status}");
}

/// A loss that overflows before any update is not blamed on the learning
/// rate: the very large value is named.
#[test]
fn an_overflow_names_its_cause() {
    let out = tempfile::tempdir().unwrap();
    let o = runner()
        .args(["experiments/gmm25_on_policy.toml", "--out"])
        .arg(out.path())
        .args([
            "--set",
            "policy.exploration=1e300",
            "--set",
            "train.steps=2",
        ])
        .args(["--set", "train.batch_size=8", "--set", "eval.samples=50"])
        .args(["--set", "eval.final_samples=0", "--set", "eval.plot=false"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("non-finite student loss")
            && err.contains("learning rate is not the cause")
            && err.contains("`policy.exploration` = 1e300 is very large"),
        "{err}"
    );
    assert!(!err.contains("try a smaller learning rate"), "{err}");
}

/// A `--set` value that starts like a TOML array, table or string must
/// parse: the error shows the value and why; bare words in an array get a
/// corrected example under the full key; a non-ASCII key is explained.
#[test]
fn set_values_are_parsed_or_refused_with_advice() {
    let file = "experiments/grid_d2_h32_tb.toml";
    let err = refused(file, &["label=[1,2"]);
    assert!(
        err.contains("bad --set argument `label=[1,2`: the value `[1,2` starts like a TOML array")
            && err.contains("expected `]`"),
        "{err}"
    );
    let err = refused(file, &["schedule=[student]"]);
    assert!(
        err.contains(r#"--set 'behaviour.schedule=["student"]'"#)
            && err.contains("`schedule` is the key `behaviour.schedule`"),
        "{err}"
    );
    let err = refused(file, &["schedule=\"student\""]);
    assert!(err.contains("did you mean `behaviour.schedule`?"), "{err}");
    let err = refused(file, &["objective.λ=0.9"]);
    assert!(
        err.contains("keys are ASCII")
            && err.contains("did you mean `objective.lambda` (a key of the `subtb` objective)?"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(file).unwrap();
    let path = write(
        dir.path(),
        "greek.toml",
        &text.replace("[objective]\n", "[objective]\nλ = 0.9\n"),
    );
    assert!(text.contains("[objective]\n"));
    let err = stderr(&runner().arg("validate").arg(&path).output().unwrap());
    assert!(
        err.contains("is not valid TOML") && err.contains("did you mean `objective.lambda`"),
        "{err}"
    );
}

/// A bad schedule source names the key, its position and the allowed
/// sources (not serde's "did not match any variant of untagged enum").
#[test]
fn schedule_errors_name_the_key_and_the_sources() {
    let file = "experiments/grid_d2_h32_tb.toml";
    for (set, want) in [
        (
            r#"behaviour.schedule=["studnt"]"#,
            "unknown value `studnt` for `behaviour.schedule[0]`; allowed: `student`, `teacher`",
        ),
        (
            r#"behaviour.schedule=["student", ["buffer", "techer"]]"#,
            "unknown value `techer` for `behaviour.schedule[1][1]`",
        ),
        (
            "behaviour.schedule=[1]",
            "wrong type for `behaviour.schedule[0]`: found signed int `1`, expected a source (`student`",
        ),
    ] {
        let err = refused(file, &[set]);
        assert!(err.contains(want), "{set}: {err}");
        assert!(!err.contains("untagged"), "{err}");
    }
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string("experiments/grid_d2_h32_teacher.toml").unwrap();
    let path = write(
        dir.path(),
        "s.toml",
        &text.replace(
            "\"student\", \"student\", \"teacher\"",
            "\"student\", \"sudent\", \"teacher\"",
        ),
    );
    assert!(text.contains("\"student\", \"student\", \"teacher\""));
    let err = stderr(&runner().arg("validate").arg(&path).output().unwrap());
    assert!(
        err.contains(&format!(
            "{}: unknown value `sudent` for `behaviour.schedule[1]`",
            path.display()
        )),
        "{err}"
    );
}

/// A file that can be read only once (a pipe) is read once: validating,
/// running and writing a SLURM script from `<(cat FILE)` work.
#[test]
fn a_pipe_is_read_once() {
    let bin = std::env::var_os("RUNNER_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_runner")));
    let dir = tempfile::tempdir().unwrap();
    let tiny = write(dir.path(), "tiny.toml", TINY);
    let sweep = write(
        dir.path(),
        "sweep.toml",
        &format!("{TINY}\n[sweep]\nseeds = [1, 2]\n"),
    );
    let out = dir.path().join("out");
    for cmd in [
        format!("{} validate <(cat {})", bin.display(), tiny.display()),
        format!("{} validate <(cat {})", bin.display(), sweep.display()),
        format!(
            "{} <(cat {}) --out {} --set train.steps=4",
            bin.display(),
            tiny.display(),
            out.display()
        ),
        format!(
            "{} slurm <(cat {}) --out {}",
            bin.display(),
            sweep.display(),
            out.display()
        ),
    ] {
        let o = std::process::Command::new("bash")
            .args(["-c", &cmd])
            .current_dir(common::root())
            .output()
            .unwrap();
        assert!(o.status.success(), "{cmd}: {}", stderr(&o));
    }
}

/// A seed or a grid value listed twice is named as such, not as a clash of
/// zipped tables.
#[test]
fn repeated_sweep_values_are_named() {
    let file = "experiments/grid_d2_h32_tb.toml";
    let err = refused(file, &["sweep.seeds=[0, 1, 0]"]);
    assert!(
        err.contains("`sweep.seeds` lists seed 0 twice: each seed must appear once"),
        "{err}"
    );
    assert!(!err.contains("zipped"), "{err}");
    let err = refused(file, &["sweep.grid={\"env.horizon\" = [8, 16, 8]}"]);
    assert!(
        err.contains("`sweep.grid.\"env.horizon\"` lists 8 twice"),
        "{err}"
    );
    let err = refused(
        file,
        &["sweep.zip={\"env.horizon\" = [8, 8], \"env.ndim\" = [2, 2]}"],
    );
    assert!(
        err.contains("two positions of `sweep.zip` hold the same values"),
        "{err}"
    );
}

/// SLURM time limits follow SLURM's forms, from a flag or the file.
#[test]
fn slurm_times_are_checked() {
    let out = tempfile::tempdir().unwrap();
    for (time, ok) in [
        ("99:99:99:99", false),
        ("1-24:00:00", false),
        ("10:60", false),
        ("48:00:00", true),
        ("2-12:30", true),
        ("90", true),
    ] {
        let o = runner()
            .args([
                "slurm",
                "experiments/grid_d2_h32_tb.toml",
                "--time",
                time,
                "--out",
            ])
            .arg(out.path())
            .output()
            .unwrap();
        assert_eq!(o.status.success(), ok, "{time}: {}", stderr(&o));
        if !ok {
            let err = stderr(&o);
            assert!(
                err.contains("`slurm.time`")
                    && err.contains("is not a SLURM time")
                    && err.contains("MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS"),
                "{err}"
            );
        }
    }
}

/// The hint after `runner slurm` repeats the invocation's --out and --set,
/// in its output and in the script.
#[test]
fn the_collect_hint_repeats_out_and_set() {
    let out = tempfile::tempdir().unwrap();
    let o = runner()
        .args(["slurm", "experiments/grid_d2_h32_tb.toml", "--out"])
        .arg(out.path())
        .args(["--set", "sweep.seeds=[1,2]", "--set", "label=a b"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let want = format!(
        "runner collect 'experiments/grid_d2_h32_tb.toml' --out '{}' --set 'sweep.seeds=[1,2]' --set 'label=a b'",
        out.path().display()
    );
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains(&want), "{text}");
    let script = std::fs::read_to_string(out.path().join("grid_d2_h32_tb/slurm.sbatch")).unwrap();
    assert!(
        script.contains("# 2 runs of ")
            && script.contains("--set 'sweep.seeds=[1,2]' --set 'label=a b'\n"),
        "{script}"
    );
}

/// Echoed input is cut: a 10 MB line in a TOML file, in `runner score`'s
/// input or a long `--set` value gives a message of a few hundred bytes.
#[test]
fn huge_input_is_not_echoed_whole() {
    let dir = tempfile::tempdir().unwrap();
    let long = "x".repeat(10_000_000);
    let toml = write(dir.path(), "long.toml", &format!("name = \"x\"\n{long}\n"));
    let err = stderr(&runner().arg("validate").arg(&toml).output().unwrap());
    assert!(
        err.contains("is not valid TOML") && err.contains(" bytes)"),
        "{err}"
    );
    assert!(err.len() < 3000, "{} bytes", err.len());
    let strings = write(dir.path(), "s.txt", &format!("00000000\n{long}\n"));
    let o = runner()
        .args(["score", "experiments/tfbind8_tb.toml"])
        .arg(&strings)
        .output()
        .unwrap();
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("s.txt:2") && err.contains("longer than 4096 bytes"),
        "{err}"
    );
    assert!(err.len() < 3000, "{} bytes", err.len());
    let set = format!("label=[{}", "y".repeat(100_000));
    let err = refused("experiments/grid_d2_h32_tb.toml", &[&set]);
    assert!(err.contains("(100007 bytes)"), "{err}");
    assert!(err.len() < 3000, "{} bytes", err.len());
    let set = format!("env.kind={}", "z".repeat(100_000));
    let err = refused("experiments/grid_d2_h32_tb.toml", &[&set]);
    assert!(
        err.contains("unknown value `zzz") && err.len() < 3000,
        "{err}"
    );
}

/// A damaged datasets root: a garbage SHA256SUMS is an error naming the list
/// and its line (it must not switch the checks off), and a directory where
/// a data file belongs is "a directory", not "not found".
#[test]
fn damaged_datasets_roots_are_named() {
    let root = tempfile::tempdir().unwrap();
    let src = common::datasets().join("tfbind8");
    std::fs::create_dir_all(root.path().join("tfbind8")).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, root.path().join("tfbind8").join(p.file_name().unwrap())).unwrap();
    }
    let score = || {
        runner()
            .args(["score", "experiments/tfbind8_tb.toml", "--datasets"])
            .arg(root.path())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    assert!(score().status.success(), "{}", stderr(&score()));
    std::fs::write(
        root.path().join("SHA256SUMS"),
        "# sums\nthis is not a checksum list\n",
    )
    .unwrap();
    let o = score();
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(
        err.contains(&format!("{}:2:", root.path().join("SHA256SUMS").display()))
            && err.contains("64 hexadecimal digits"),
        "{err}"
    );
    std::fs::remove_file(root.path().join("SHA256SUMS")).unwrap();
    let all = root.path().join("tfbind8/all.csv");
    std::fs::remove_file(&all).unwrap();
    std::fs::create_dir(&all).unwrap();
    let err = stderr(&score());
    assert!(
        err.contains(&format!("{} is a directory", all.display())) && !err.contains("not found"),
        "{err}"
    );
}

/// A write to a closed pipe or a full disk is an exit status, not a panic:
/// 141 (a shell's SIGPIPE status) without a message for `| head`, 1 with the
/// error for `> /dev/full`.
#[test]
fn failed_writes_to_stdout_are_exit_statuses() {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let o = runner()
        .args(["validate", "experiments/grid_d4_h32_tb.toml"])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(141), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let o = runner().arg("schema").stdout(full).output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot write to standard output") && !err.contains("panicked"),
        "{err}"
    );
}

/// Outside training nothing checks a request to stop, so SIGTERM ends the
/// command at once: validating a 100,000-run sweep (minutes of expansion)
/// and waiting to open a FIFO nobody writes.
#[test]
fn sigterm_ends_long_commands_at_once() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let seeds: Vec<String> = (0..1000).map(|s| s.to_string()).collect();
    let steps: Vec<String> = (1..=100).map(|s| s.to_string()).collect();
    let huge = write(
        dir.path(),
        "huge.toml",
        &format!(
            "{TINY}\n[sweep]\nseeds = [{}]\ngrid = {{ \"train.steps\" = [{}] }}\n",
            seeds.join(", "),
            steps.join(", ")
        ),
    );
    let fifo = dir.path().join("fifo.toml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    for (file, what) in [
        (&huge, "validate of 100,000 runs"),
        (&fifo, "validate of a FIFO"),
    ] {
        let mut child = runner()
            .arg("validate")
            .arg(file)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(700));
        let status = common::terminate_within(&mut child, 10, what);
        assert_eq!(status.signal(), Some(15), "{what}: {status:?}");
    }
    // One run more than the limit is refused before any is resolved.
    let seeds: Vec<String> = (0..100_001).map(|s| s.to_string()).collect();
    let over = write(
        dir.path(),
        "over.toml",
        &format!("{TINY}\n[sweep]\nseeds = [{}]\n", seeds.join(", ")),
    );
    let err = stderr(&runner().arg("validate").arg(&over).output().unwrap());
    assert!(err.contains("100001 runs, more than 100000"), "{err}");
}

/// A tiny run of the original hypergrid reward (d=2, H=8, 8 steps): it
/// trains, evaluates (4 goals, the exact L1 finite) and records the reward
/// family and its constants in the resolved config.
#[test]
fn grid_original_reward_runs_end_to_end() {
    let out = tempfile::tempdir().unwrap();
    let o = runner()
        .arg("experiments/grid_d4_h32_original_tb.toml")
        .arg("--out")
        .arg(out.path())
        .args(["--set", "env.ndim=2", "--set", "env.horizon=8"])
        .args(["--set", "train.steps=8", "--set", "train.n_evals=1"])
        .args(["--set", "eval.samples=200", "--set", "policy.hidden=16"])
        .args(["--set", "train.progress=false", "--set", "eval.plot=false"])
        .args(["--set", "env.r2=3.0"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let run = out.path().join("grid_d4_h32_original_tb/seed=0");
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    for want in ["reward = \"original\"", "r0 = 0.1", "r1 = 0.5", "r2 = 3.0"] {
        assert!(config.contains(want), "{want}:\n{config}");
    }
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    let col = |name: &str| rows[0].iter().position(|c| *c == name).unwrap();
    assert_eq!(rows.len(), 3, "{csv}");
    for r in &rows[1..] {
        let l1: f64 = r[col("eval_exact_l1")].parse().unwrap();
        assert!(l1.is_finite() && l1 > 0.0, "{csv}");
        let found: usize = r[col("n_goals_found")].parse().unwrap();
        assert!(found <= 4, "{csv}");
    }
}

/// The reward keys' errors name the key: an unknown family lists the
/// allowed ones, a key of `original` is refused under the deceptive
/// reward, an unknown key lists the allowed keys, and R0 must be > 0.
#[test]
fn grid_reward_config_errors() {
    let validate = |file: &str, set: &str| {
        let o = runner()
            .args(["validate", file, "--set", set])
            .output()
            .unwrap();
        assert!(!o.status.success(), "{set}");
        stderr(&o)
    };
    let tb = "experiments/grid_d4_h32_tb.toml";
    let original = "experiments/grid_d4_h32_original_tb.toml";
    let e = validate(tb, "env.reward=hyper");
    assert!(
        e.contains("unknown value `hyper` for `env.reward`; allowed: `deceptive`, `original`"),
        "{e}"
    );
    let e = validate(tb, "env.r0=0.2");
    assert!(
        e.contains("`env.r0`: is a key of `reward = \"original\"` only"),
        "{e}"
    );
    let e = validate(original, "env.r3=1.0");
    assert!(
        e.contains("unknown key `env.r3`") && e.contains("`r2`"),
        "{e}"
    );
    for bad in ["0", "-0.5"] {
        let e = validate(original, &format!("env.r0={bad}"));
        assert!(
            e.contains("`env.r0`: must be a finite number > 0"),
            "{bad}: {e}"
        );
    }
    // Non-finite numbers are refused by the loader's check of every
    // number, naming the key (the family's own check is a unit test).
    let e = validate(original, "env.r0=nan");
    assert!(e.contains("`env.r0`: is NaN"), "{e}");
    let e = validate(original, "env.r0=inf");
    assert!(e.contains("`env.r0`: is inf"), "{e}");
    let e = validate(original, "env.r1=-1");
    assert!(e.contains("`env.r1`: must be a finite number >= 0"), "{e}");
    let o = runner().args(["validate", original]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

/// `runner score` on grid experiments: states as coordinates, one a line,
/// from a file or stdin; `x,reward,log_reward` with R before beta; every
/// bad line is an error naming `file:line`, with no partial output.
#[test]
fn score_grid_states_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let score = |file: &str, input: &str| {
        let path = write(dir.path(), "states.txt", input);
        let o = runner().args(["score", file]).arg(&path).output().unwrap();
        (o, path.display().to_string())
    };
    let original = "experiments/grid_d4_h32_original_tb.toml";
    let (o, _) = score(original, "0,0,31,5\n\n 5, 5,26 ,4 \n15,15,15,15\n");
    assert!(o.status.success(), "{}", stderr(&o));
    let row = |x: &str, r: f64| format!("\"{x}\",{r},{}\n", r.ln());
    let want = format!(
        "x,reward,log_reward\n{}{}{}",
        row("0,0,31,5", 0.1 + 0.5),
        row("5,5,26,4", 0.1 + 0.5 + 2.0),
        row("15,15,15,15", 0.1)
    );
    assert_eq!(String::from_utf8(o.stdout).unwrap(), want);
    assert!(want.contains("\"0,0,31,5\",0.6,"), "{want}");
    // The deceptive reward, on stdin; beta does not enter.
    let o = common::score_stdin(
        "experiments/grid_d4_h32_tb.toml",
        &["env.beta=3"],
        "4,4,4,4\n0,0,0,0\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[1].starts_with("\"4,4,4,4\",2.00001"), "{out}");
    assert!(lines[2].starts_with("\"0,0,0,0\",0.0000"), "{out}");
    // Errors, each naming the file and the line.
    for (input, want) in [
        (
            "0,0,31\n",
            ":1: `0,0,31` has 3 coordinates; this grid has env.ndim = 4",
        ),
        (
            "0,0,0,0\n0,0,32,0\n",
            ":2: coordinate 3 is 32, outside 0..=31 (env.horizon = 32)",
        ),
        ("0,-1,0,0\n", ":1: coordinate 2 is -1, outside 0..=31"),
        ("0,a,0,0\n", ":1: coordinate 2 `a` is not an integer"),
        ("0,0,1.5,0\n", ":1: coordinate 3 `1.5` is not an integer"),
        ("0,0,,0\n", ":1: coordinate 3 `` is not an integer"),
    ] {
        let (o, path) = score(original, input);
        let e = stderr(&o);
        assert!(
            !o.status.success() && e.contains(&format!("{path}{want}")),
            "{input:?}: {e}"
        );
        assert!(o.stdout.is_empty(), "no partial output: {input:?}");
    }
}

/// `train.budget_scale` scales a `train.steps` the file sets, as it does the
/// default budget: 300 iterations at 0.05 are 15, and a scaled default is
/// the default's share.
#[test]
fn budget_scale_scales_the_files_steps() {
    for (file, scale, want) in [
        (
            "experiments/diffusion_compare.toml",
            "0.05",
            "15 iterations",
        ),
        ("experiments/grid_d4_h32_tb.toml", "0.01", "240 steps"),
    ] {
        let o = runner()
            .args(["validate", file, "--set"])
            .arg(format!("train.budget_scale={scale}"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(text.contains(&format!(", {want}")), "{file}: {text}");
    }
}

/// A hand-written TFBind8 file with SubTB and the Teacher and none of the
/// optimiser keys.
const HAND_TFBIND8: &str = r#"
name = "hand"

[env]
kind = "tfbind8"

[policy]
kind = "ssr"

[objective]
kind = "subtb"

[behaviour]
kind = "teacher"

[train]
steps = 3
"#;

/// The value and the origin of `key = value  # origin` in `runner show`'s
/// output (the first such line).
fn shown<'a>(text: &'a str, key: &str) -> (&'a str, &'a str) {
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no `{key}` in:\n{text}"));
    let (value, origin) = line.rsplit_once("  # ").unwrap();
    (value[key.len() + 3..].trim(), origin)
}

/// The lines of the table `[name]` in `runner show`'s output.
fn shown_table(text: &str, name: &str) -> String {
    text.split(&format!("[{name}]\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("no [{name}] in:\n{text}"))
        .split("\n\n")
        .next()
        .unwrap()
        .to_string()
}

/// `runner show` prints the resolved config (the run's config.toml) with
/// the origin of every value: the file, `--set`, an environment variable,
/// the key's default, the task table; of a sweep its runs and its base, or
/// run K; `runner --help` lists it.
#[test]
fn show_prints_the_resolved_config_with_origins() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "hand.toml", HAND_TFBIND8);
    let o = runner()
        .args(["show"])
        .arg(&path)
        .args(["--set", "seed=4", "--out", "/r"])
        .env("RUNNER_EVAL__SAMPLES", "64")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains("# results: /r/hand/seed=4"), "{text}");
    assert_eq!(shown(&text, "seed"), ("4", "--set"));
    assert_eq!(shown(&text, "device"), ("\"cpu\"", "default"));
    let objective = shown_table(&text, "objective");
    assert_eq!(shown(&objective, "kind"), ("\"subtb\"", "file"));
    assert_eq!(shown(&objective, "lambda"), ("0.9", "default"));
    for (key, value) in [
        ("lr", "0.0001"),
        ("log_z_lr", "0.01"),
        ("log_z_init", "5.0"),
        ("clip_grad_norm", "0.0"),
        ("log_z_min", "0.0"),
    ] {
        assert_eq!(
            shown(&objective, key),
            (value, "task table (tfbind8)"),
            "{key}"
        );
    }
    let behaviour = shown_table(&text, "behaviour");
    assert_eq!(shown(&behaviour, "lr"), ("0.0005", "task table (tfbind8)"));
    assert_eq!(shown(&behaviour, "alpha"), ("0.5", "task table (tfbind8)"));
    assert_eq!(
        shown(&behaviour, "epsilon"),
        ("0.01", "task table (tfbind8)")
    );
    let policy = shown_table(&text, "policy");
    assert_eq!(shown(&policy, "hidden"), ("128", "task table (tfbind8)"));
    assert_eq!(shown(&shown_table(&text, "train"), "steps"), ("3", "file"));
    assert_eq!(
        shown(&shown_table(&text, "eval"), "samples"),
        ("64", "RUNNER_EVAL__SAMPLES")
    );
    // What a run records: the shown text without its comments.
    let out = tempfile::tempdir().unwrap();
    let quick = ["--set", "train.batch_size=4", "--set", "eval.samples=8"];
    let cfg = |args: &[&str]| {
        let o = runner().arg("show").arg(&path).args(args).output().unwrap();
        String::from_utf8(o.stdout)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split("  # ").next().unwrap().trim_end().to_string() + "\n")
            .collect::<String>()
    };
    let o = runner()
        .arg(&path)
        .args(quick)
        .args(["--set", "policy.hidden=8", "--set", "train.progress=false"])
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let recorded = std::fs::read_to_string(out.path().join("hand/seed=0/config.toml")).unwrap();
    let mut args = quick.to_vec();
    args.extend(["--set", "policy.hidden=8", "--set", "train.progress=false"]);
    assert_eq!(cfg(&args).trim_start(), recorded);
    // A sweep: its runs and its base, or run K.
    let file = "experiments/grid_d4_h32_compare.toml";
    let o = runner().args(["show", file]).output().unwrap();
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.contains("# a sweep of 20 runs varying behaviour.kind")
            && text.contains("--index K` shows run K (0..20)")
            && text.contains("[sweep]"),
        "{text}"
    );
    let o = runner()
        .args(["show", file, "--index", "6"])
        .output()
        .unwrap();
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains("# run 6 of 20: "), "{text}");
    assert_eq!(shown(&text, "seed"), ("1", "sweep"));
    assert_eq!(shown(&text, "label"), ("\"PRT\"", "sweep"));
    assert!(!text.contains("[sweep]"), "{text}");
    let o = runner()
        .args(["show", file, "--index", "20"])
        .output()
        .unwrap();
    assert!(
        !o.status.success() && stderr(&o).contains("--index 20 is out of range"),
        "{}",
        stderr(&o)
    );
    let help = runner().arg("--help").output().unwrap();
    assert!(
        String::from_utf8_lossy(&help.stdout).contains("show "),
        "{}",
        String::from_utf8_lossy(&help.stdout)
    );
}

/// A `[buffer]` that the schedule never reads is a warning naming both
/// keys (not an error: a sweep may share one buffer table between methods
/// that replay and methods that do not, and no experiment file gets it);
/// `priority` takes its documented values only, the older `selection`
/// its own (`prt`, `per`), and not both at once.
#[test]
fn unread_buffers_warn_and_priorities_are_checked() {
    let file = "experiments/tfbind8_teacher_prt.toml";
    let o = runner()
        .args([
            "validate",
            file,
            "--set",
            r#"behaviour.schedule=["student", "teacher"]"#,
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("warning: experiments/tfbind8_teacher_prt.toml: `[buffer]`")
            && err.contains("`behaviour.schedule` = [\"student\", \"teacher\"]")
            && err.contains("never read"),
        "{err}"
    );
    let o = runner().args(["validate", file]).output().unwrap();
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
    let files = experiment_files();
    let o = runner().arg("validate").args(&files).output().unwrap();
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
    let err = refused(file, &["buffer.priority=prt"]);
    assert!(
        err.contains("unknown value `prt` for `buffer.priority`")
            && err.contains("`reward`, `loss`, `teacher_reward`"),
        "{err}"
    );
    let err = refused(file, &["buffer.selection=per"]);
    assert!(
        err.contains("`buffer.selection`") && err.contains("`buffer.priority`"),
        "{err}"
    );
    let err = refused(
        "experiments/grid_d4_h32_tb_prt.toml",
        &["buffer.priority=per"],
    );
    assert!(err.contains("unknown value `per`"), "{err}");
}

/// A component kind the environment refuses is named before the keys of
/// its table that the kind does not know (`gafn` has no `schedule`).
#[test]
fn a_refused_kind_comes_before_its_tables_keys() {
    for (file, set, want) in [
        (
            "experiments/tfbind8_teacher_prt.toml",
            "behaviour.kind=gafn",
            "gafn is implemented for the grid only",
        ),
        (
            "experiments/many_well_teacher.toml",
            "behaviour.kind=gafn",
            "gafn is implemented for the grid only",
        ),
        (
            "experiments/qm9_teacher_prt.toml",
            "buffer.kind=transition",
            "sequence tasks replay with `kind = \"recent\"`",
        ),
    ] {
        let err = refused(file, &[set]);
        assert!(
            err.contains(want) && !err.contains("unknown key"),
            "{file} {set}: {err}"
        );
    }
}

/// Without a terminal, a run names its directory at the start and prints
/// a plain progress line at every evaluation, counted in its own unit; a
/// sweep prints one per finished run and ends with none running.
#[test]
fn progress_lines_without_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "tiny.toml", TINY);
    let out = tempfile::tempdir().unwrap();
    let o = runner()
        .arg(&path)
        .arg("--out")
        .arg(out.path())
        .args(["--set", "train.progress=true"])
        .env("RUNNER_PROGRESS_SECS", "0")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    let run = out.path().join("tiny/seed=5");
    assert_eq!(
        lines[0],
        format!("tiny: writing to {}", run.display()),
        "{err}"
    );
    assert!(lines[1].starts_with("tiny: 12/24 steps (50%)"), "{err}");
    assert!(lines[1].contains("goals"), "{err}");
    assert!(lines[2].starts_with("tiny: 24/24 steps (100%)"), "{err}");
    // A sequence task counts rounds.
    let o = runner()
        .arg(write(dir.path(), "hand.toml", HAND_TFBIND8))
        .arg("--out")
        .arg(out.path())
        .args(["--set", "policy.hidden=8", "--set", "train.batch_size=4"])
        .args(["--set", "eval.samples=8", "--set", "eval.every=3"])
        .env("RUNNER_PROGRESS_SECS", "0")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("hand: 3/3 rounds (100%)"),
        "{}",
        stderr(&o)
    );
    // A sweep counts runs, and its last line has none running.
    let o = runner()
        .arg(&path)
        .arg("--out")
        .arg(out.path())
        .args(["--set", "sweep.seeds=[1, 2]", "--jobs", "1"])
        .env("RUNNER_PROGRESS_SECS", "0")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.starts_with(&format!(
            "tiny: 2 of 2 runs to run (0 complete), writing to {}",
            out.path().join("tiny").display()
        )),
        "{err}"
    );
    assert!(
        err.contains("tiny: 1/2 runs (50%)") && !err.contains(" steps ("),
        "{err}"
    );
    let last = err
        .lines()
        .rfind(|l| l.starts_with("tiny: 2/2 runs"))
        .unwrap();
    assert!(last.ends_with("; 0 running, 0 failed"), "{err}");
}
