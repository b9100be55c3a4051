//! Sweeps end to end: expansion, tables, parallel = serial, resume, failures, SLURM.

use std::path::{Path, PathBuf};

mod common;
use common::{cells, runner, stderr, write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A tiny gridworld sweep: 2 behaviours x 2 seeds.
const SWEEP: &str = r#"
name = "tiny_sweep"

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
kind = "on_policy"

[train]
steps = 40
n_evals = 2

[eval]
samples = 300
plot = false

[sweep]
seeds = [1, 2]
grid = { "behaviour.kind" = ["on_policy", "teacher"] }
"#;

fn sweep_run(file: &Path, out: &Path, extra: &[&str]) -> Output {
    runner()
        .arg(file)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn read(p: PathBuf) -> String {
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// runs.csv without its `wall_s` column (the only one that differs between identical runs).
fn runs_without_wall(out: &Path) -> String {
    let text = read(out.join("tiny_sweep/runs.csv"));
    let header = cells(text.lines().next().unwrap());
    let wall = header.iter().position(|h| h == "wall_s").unwrap();
    text.lines()
        .map(|l| {
            let mut c = cells(l);
            c.remove(wall);
            c.join("|")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn expansion_counts_and_ids() {
    let dir = tempfile::tempdir().unwrap();
    let text = SWEEP.replace(
        "grid = { \"behaviour.kind\" = [\"on_policy\", \"teacher\"] }",
        "seeds = [0, 1, 2]\ngrid = { \"behaviour.kind\" = [\"on_policy\", \"teacher\"], \"objective.lr\" = [1e-3, 3e-4] }\nzip = { \"env.ndim\" = [2, 4], \"env.horizon\" = [8, 4] }",
    )
    .replace("seeds = [1, 2]\n", "");
    let file = write(dir.path(), "s.toml", &text);
    let specs = runner::sweep::expand(&file, &[]).unwrap();
    assert_eq!(specs.len(), 2 * 2 * 2 * 3); // grid x zip groups x seeds
    assert_eq!(
        specs[0].id,
        "behaviour.kind=on_policy,objective.lr=0.001,env.horizon=8,env.ndim=2,seed=0"
    );
    assert_eq!(
        specs[1].id,
        "behaviour.kind=on_policy,objective.lr=0.001,env.horizon=8,env.ndim=2,seed=1"
    );
    // Zipped values are paired, not crossed: ndim 4 always goes with horizon 4.
    assert!(specs.iter().all(|s| {
        let runner::registry::EnvConfig::Grid(g) = &s.plan.resolved.env else {
            return false;
        };
        (g.ndim, g.horizon) == (2, 8) || (g.ndim, g.horizon) == (4, 4)
    }));
    let ids: std::collections::HashSet<_> = specs.iter().map(|s| s.id.clone()).collect();
    assert_eq!(ids.len(), specs.len());
    let out = runner().arg("validate").arg(&file).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("24 runs varying behaviour.kind, objective.lr, env.horizon, env.ndim, seed"),
        "{text}"
    );
}

/// `--index K` (a SLURM array task) resolves run K alone, computed from K
/// without the runs before it: the same run (id, varied values, resolved
/// plan) as the K-th of the full expansion, for the first and last runs and
/// runs where each digit of the mixed-radix index (seed, zip, grid keys)
/// wraps. Two runs with one id are refused either way.
#[test]
fn index_resolves_the_same_run_as_the_full_expansion() {
    let dir = tempfile::tempdir().unwrap();
    let text = SWEEP
        .replace(
            "grid = { \"behaviour.kind\" = [\"on_policy\", \"teacher\"] }",
            "seeds = [0, 1, 2, 3, 4]\n\
             grid = { \"behaviour.kind\" = [\"on_policy\", \"teacher\"], \
             \"objective.lr\" = [1e-3, 3e-4, 1e-4], \"train.loss_window\" = [10, 20, 30, 40] }\n\
             zip = { \"env.ndim\" = [2, 3], \"env.horizon\" = [8, 4] }",
        )
        .replace("seeds = [1, 2]\n", "");
    let file = write(dir.path(), "s.toml", &text);
    let specs = runner::sweep::expand(&file, &[]).unwrap();
    assert_eq!(specs.len(), 2 * 3 * 4 * 2 * 5);
    let expansion =
        runner::sweep::Expansion::new(&runner::config::ExperimentFile::read(&file).unwrap(), &[])
            .unwrap();
    assert_eq!(expansion.len(), specs.len());
    for k in [0, 1, 4, 5, 9, 10, 39, 40, 119, 120, 201, 239] {
        let one = expansion.one(k).unwrap();
        let full = &specs[k];
        assert_eq!(one.index, k);
        assert_eq!((&one.id, &one.varied), (&full.id, &full.varied), "run {k}");
        assert_eq!(
            toml::to_string(&one.plan.resolved).unwrap(),
            toml::to_string(&full.plan.resolved).unwrap(),
            "run {k}"
        );
        assert_eq!(format!("{:?}", one.plan), format!("{:?}", full.plan));
    }
    // The CLI: out of range names the number of runs.
    let o = runner()
        .arg(&file)
        .args(["--index", "240", "--out"])
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert!(
        stderr(&o).contains("--index 240 is out of range") && stderr(&o).contains("240 run(s)"),
        "{}",
        stderr(&o)
    );
    // Two runs with one id: refused by the full expansion and by one run alone.
    let dup = write(
        dir.path(),
        "d.toml",
        &SWEEP.replace(
            "grid = { \"behaviour.kind\" = [\"on_policy\", \"teacher\"] }",
            "zip = { \"label\" = [\"a\", \"a\"] }",
        ),
    );
    let full = runner::sweep::expand(&dup, &[]).unwrap_err().to_string();
    let one =
        runner::sweep::Expansion::new(&runner::config::ExperimentFile::read(&dup).unwrap(), &[])
            .unwrap()
            .one(0)
            .unwrap_err()
            .to_string();
    assert!(
        full.contains("two runs get the id `label=a,seed=1`"),
        "{full}"
    );
    assert_eq!(full, one);
}

#[test]
fn unknown_grid_key_is_an_error_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "s.toml",
        &SWEEP.replace("\"behaviour.kind\"", "\"objective.lrr\""),
    );
    let out = tempfile::tempdir().unwrap();
    let o = sweep_run(&file, out.path(), &[]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        // Named as the file's [sweep] table, not as a --set flag.
        err.contains("unknown key `objective.lrr`")
            && err.contains("the file's [sweep] table (`objective.lrr`)")
            && !err.contains("--set"),
        "{err}"
    );
    assert!(!out.path().join("tiny_sweep").exists(), "nothing may run");
    let bad_zip = SWEEP.replace(
        "[sweep]",
        "[sweep]\nzip = { \"env.ndim\" = [2], \"env.horizon\" = [8, 4] }",
    );
    let file = write(dir.path(), "z.toml", &bad_zip);
    let err = stderr(&sweep_run(&file, out.path(), &[]));
    assert!(
        err.contains("every list must have the same length"),
        "{err}"
    );
}

#[test]
fn tables_parallel_equals_serial_and_summary_matches_runs() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "s.toml", SWEEP);
    let (serial, parallel) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let o = sweep_run(&file, serial.path(), &["--jobs", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = sweep_run(&file, parallel.path(), &["--jobs", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        runs_without_wall(serial.path()),
        runs_without_wall(parallel.path())
    );
    let summary = read(serial.path().join("tiny_sweep/summary.csv"));
    assert_eq!(
        summary,
        read(parallel.path().join("tiny_sweep/summary.csv"))
    );

    // runs.csv: one row per run, in expansion order, all ok.
    let runs = read(serial.path().join("tiny_sweep/runs.csv"));
    let lines: Vec<&str> = runs.lines().collect();
    assert!(lines[0].starts_with("run_id,behaviour.kind,seed,status,message,wall_s,step,loss"));
    assert_eq!(lines.len(), 5);
    assert!(lines[1].starts_with("\"behaviour.kind=on_policy,seed=1\",on_policy,1,ok,,"));
    assert!(lines[4].starts_with("\"behaviour.kind=teacher,seed=2\",teacher,2,ok,,"));
    // summary.csv: mean of the two seeds of each group.
    let header = cells(lines[0]);
    let col = header.iter().position(|h| h == "n_goals_found").unwrap();
    let goals = |l: &str| cells(l)[col].parse::<f64>().unwrap();
    let s_lines: Vec<&str> = summary.lines().collect();
    let s_header: Vec<&str> = s_lines[0].split(',').collect();
    assert_eq!(&s_header[..3], &["behaviour.kind", "n_runs", "n_ok"]);
    let mean_col = s_header
        .iter()
        .position(|h| *h == "n_goals_found_mean")
        .unwrap();
    let teacher_row: Vec<&str> = s_lines[2].split(',').collect();
    assert_eq!(&teacher_row[..3], &["teacher", "2", "2"]);
    let mean: f64 = teacher_row[mean_col].parse().unwrap();
    assert_eq!(mean, (goals(lines[3]) + goals(lines[4])) / 2.0);
    // Re-running skips every complete run and rewrites the same tables.
    let o = sweep_run(&file, serial.path(), &["--jobs", "2"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("0 run(s) executed, 4 complete and skipped")
    );
    assert_eq!(runs, read(serial.path().join("tiny_sweep/runs.csv")));
}

#[test]
fn interrupted_then_resumed_equals_uninterrupted() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "s.toml",
        &SWEEP.replace("steps = 40", "steps = 400"),
    );
    let (whole, resumed) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    assert!(sweep_run(&file, whole.path(), &["--jobs", "1"])
        .status
        .success());
    // Kill the sweep once its first run is complete, in the middle of the second.
    let mut child = runner()
        .arg(&file)
        .arg("--out")
        .arg(resumed.path())
        .args(["--jobs", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let first = resumed
        .path()
        .join("tiny_sweep/behaviour.kind=on_policy,seed=1/status.toml");
    let t0 = Instant::now();
    while !first.exists() && t0.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !resumed.path().join("tiny_sweep/runs.csv").exists(),
        "the sweep was killed before its tables"
    );
    let o = sweep_run(&file, resumed.path(), &["--jobs", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        text.contains("complete and skipped") && !text.contains(" 0 complete"),
        "{text}"
    );
    assert_eq!(
        runs_without_wall(whole.path()),
        runs_without_wall(resumed.path())
    );
    assert_eq!(
        read(whole.path().join("tiny_sweep/summary.csv")),
        read(resumed.path().join("tiny_sweep/summary.csv"))
    );
    // A changed config is refused unless --force.
    let o = sweep_run(&file, resumed.path(), &["--set", "train.loss_window=7"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("rerun with --force"), "{}", stderr(&o));
    let o = sweep_run(
        &file,
        resumed.path(),
        &[
            "--set",
            "train.loss_window=7",
            "--force",
            "--set",
            "train.steps=20",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn a_failing_run_is_recorded_and_the_others_complete() {
    let dir = tempfile::tempdir().unwrap();
    // log Z = 1e39 is infinite in f32: that run fails with a non-finite loss.
    let text = SWEEP.replace(
        "grid = { \"behaviour.kind\" = [\"on_policy\", \"teacher\"] }",
        "grid = { \"objective.log_z_init\" = [0.0, 1e39] }",
    );
    let file = write(dir.path(), "s.toml", &text);
    let out = tempfile::tempdir().unwrap();
    let o = sweep_run(&file, out.path(), &["--jobs", "2"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("2 of 4 run(s) failed"),
        "{}",
        stderr(&o)
    );
    let runs = read(out.path().join("tiny_sweep/runs.csv"));
    let ok = runs.lines().filter(|l| l.contains(",ok,")).count();
    let failed: Vec<&str> = runs.lines().filter(|l| l.contains(",failed,")).collect();
    assert_eq!((ok, failed.len()), (2, 2), "{runs}");
    assert!(failed[0].contains("non-finite student loss"), "{runs}");
    let summary = read(out.path().join("tiny_sweep/summary.csv"));
    assert!(
        summary.lines().nth(2).unwrap().starts_with("1e+39,2,0,"),
        "{summary}"
    );
    // --fail-fast: the first failure stops new runs (serially: runs 2 to 4 never start).
    let out = tempfile::tempdir().unwrap();
    let text = text.replace("[0.0, 1e39]", "[1e39, 0.0]");
    let file = write(dir.path(), "f.toml", &text);
    let o = sweep_run(&file, out.path(), &["--jobs", "1", "--fail-fast"]);
    assert!(!o.status.success());
    let runs = read(out.path().join("tiny_sweep/runs.csv"));
    assert_eq!(
        runs.lines().filter(|l| l.contains(",incomplete,")).count(),
        3,
        "{runs}"
    );
}

#[test]
fn slurm_script_and_index_and_collect() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "s.toml",
        &format!("{SWEEP}\n[slurm]\ntime = \"00:10:00\"\nconcurrency = 2\n"),
    );
    let out = tempfile::tempdir().unwrap();
    let o = runner()
        .args(["slurm"])
        .arg(&file)
        .arg("--out")
        .arg(out.path())
        .args(["--mem", "1G"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let script = read(out.path().join("tiny_sweep/slurm.sbatch"));
    assert!(script.contains("#SBATCH --array=0-3%2"), "{script}");
    assert!(script.contains("#SBATCH --time=00:10:00") && script.contains("#SBATCH --mem=1G"));
    assert!(script.contains("--index \"$SLURM_ARRAY_TASK_ID\""));
    // What each array task does: one run by index; then collect builds the tables.
    for k in 0..4 {
        let o = runner()
            .arg(&file)
            .arg("--out")
            .arg(out.path())
            .args(["--index", &k.to_string()])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let o = runner()
        .args(["--index", "9"])
        .arg(&file)
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    assert!(
        stderr(&o).contains("--index 9 is out of range"),
        "{}",
        stderr(&o)
    );
    let o = runner()
        .arg("collect")
        .arg(&file)
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("4 runs: 4 ok, 0 failed, 0 incomplete"));
    let serial = tempfile::tempdir().unwrap();
    assert!(sweep_run(&file, serial.path(), &["--jobs", "1"])
        .status
        .success());
    assert_eq!(
        runs_without_wall(out.path()),
        runs_without_wall(serial.path())
    );

    if let Some(sbatch) = slurm_available() {
        slurm_array_end_to_end(&sbatch, &file, dir.path());
    } else {
        assert!(
            std::env::var_os("RUNNER_REQUIRE_SLURM").is_none(),
            "RUNNER_REQUIRE_SLURM is set but no SLURM controller answers (sinfo)"
        );
        eprintln!("SLURM not available (sinfo does not answer): skipping the real array test; .ci/slurm-setup.sh starts one");
    }
}

/// `sbatch` when a SLURM controller answers on this machine.
fn slurm_available() -> Option<PathBuf> {
    let ok = Command::new("sinfo")
        .arg("-h")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    ok.then(|| PathBuf::from("sbatch"))
}

/// Submit the array to the real SLURM, wait for it, collect, compare with a local sweep.
fn slurm_array_end_to_end(sbatch: &Path, file: &Path, dir: &Path) {
    let out = dir.join("slurm_out");
    let o = runner()
        .arg("slurm")
        .arg(file)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let script = out.join("tiny_sweep/slurm.sbatch");
    let o = Command::new(sbatch)
        .arg("--parsable")
        .arg("--wait")
        .arg(&script)
        .output()
        .unwrap();
    assert!(o.status.success(), "sbatch failed: {}", stderr(&o));
    let o = runner()
        .arg("collect")
        .arg(file)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("4 runs: 4 ok"), "{text}");
    let local = dir.join("local_out");
    assert!(sweep_run(file, &local, &["--jobs", "1"]).status.success());
    assert_eq!(runs_without_wall(&out), runs_without_wall(&local));
    assert!(
        out.join("tiny_sweep/slurm").read_dir().unwrap().count() >= 4,
        "per-task logs"
    );
}

/// A run that cannot record its status is a failure that reaches the exit
/// code and stderr, also under `--index`: here a regular file stands where
/// one run's directory belongs (as "a path component is a file" on a shared
/// disk). The other runs complete, and runs.csv marks the blocked one failed.
/// When not even the tables can be written (the experiment's directory is a
/// file), the runs' own errors are printed all the same.
#[test]
fn a_run_that_cannot_record_its_status_is_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "s.toml", SWEEP);
    let out = dir.path().join("out");
    let blocked = out.join("tiny_sweep").join("behaviour.kind=teacher,seed=2");
    std::fs::create_dir_all(blocked.parent().unwrap()).unwrap();
    std::fs::write(&blocked, "not a directory").unwrap();
    let o = sweep_run(&file, &out, &["--jobs", "2"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("failed: behaviour.kind=teacher,seed=2:") && err.contains("cannot create"),
        "{err}"
    );
    assert!(err.contains("1 of 4 run(s) failed"), "{err}");
    let runs = read(out.join("tiny_sweep/runs.csv"));
    let row = runs
        .lines()
        .find(|l| l.contains("behaviour.kind=teacher,seed=2"))
        .unwrap();
    assert!(row.contains(",failed,"), "{runs}");
    assert_eq!(runs.matches(",ok,").count(), 3, "{runs}");
    // A run that trains but cannot write its status (a directory stands
    // where status.toml goes), alone, as a SLURM array task would run it.
    let status = out
        .join("tiny_sweep")
        .join("behaviour.kind=on_policy,seed=1")
        .join("status.toml");
    std::fs::remove_file(&status).unwrap();
    std::fs::create_dir(&status).unwrap();
    let o = sweep_run(&file, &out, &["--index", "0"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("status could not be written"),
        "{}",
        stderr(&o)
    );
    // Nothing writable at all: the experiment's directory is a file.
    let out2 = dir.path().join("out2");
    std::fs::create_dir_all(&out2).unwrap();
    std::fs::write(out2.join("tiny_sweep"), "a file").unwrap();
    let o = sweep_run(&file, &out2, &["--set", "sweep.seeds=[1]"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("failed: behaviour.kind=on_policy,seed=1:"),
        "{err}"
    );
    assert!(err.contains("the sweep's tables: cannot write"), "{err}");
}

/// Nothing from a config or a flag can add a line to the job script: a
/// newline in `slurm.mem` (file, --set or --mem), a bad `extra` option or
/// an --out with a space (it would reach an `#SBATCH --output=` line) is an
/// error naming it, and no script is written.
#[test]
fn slurm_script_values_cannot_inject_lines() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "s.toml", SWEEP);
    let out = dir.path().join("out");
    let slurm = |args: &[&str], out: &Path| {
        runner()
            .arg("slurm")
            .arg(&file)
            .arg("--out")
            .arg(out)
            .args(args)
            .output()
            .unwrap()
    };
    for (args, want) in [
        (vec!["--mem", "4G\ncurl x | sh"], "slurm.mem"),
        (vec!["--set", "slurm.mem=\"4G\\nrm -rf ~\""], "slurm.mem"),
        (vec!["--time", "1:00; rm"], "slurm.time"),
        (
            vec!["--set", "slurm.extra=[\"--x\\nid\"]"],
            "slurm.extra[0]",
        ),
        (vec!["--partition", "a b"], "slurm.partition"),
    ] {
        let o = slurm(&args, &out);
        assert!(!o.status.success(), "{args:?} accepted");
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    }
    let spaced = dir.path().join("my results");
    let o = slurm(&[], &spaced);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("#SBATCH --output"), "{}", stderr(&o));
    assert!(!out.join("tiny_sweep/slurm.sbatch").exists());
    let o = slurm(
        &["--mem", "8G", "--set", "slurm.extra=[\"--account=lab\"]"],
        &out,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = read(out.join("tiny_sweep/slurm.sbatch"));
    assert!(text.contains("#SBATCH --mem=8G\n#SBATCH") && text.contains("#SBATCH --account=lab\n"));
}

/// Resume trusts a complete run only if its metrics.csv is what it wrote:
/// an emptied metrics.csv or a garbage status.toml makes that run rerun,
/// with a warning naming it, and the tables come out as before.
#[test]
fn resume_verifies_what_it_skips() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "s.toml", SWEEP);
    let out = dir.path().join("out");
    assert!(sweep_run(&file, &out, &["--jobs", "2"]).status.success());
    let before = runs_without_wall(&out);
    let root = out.join("tiny_sweep");
    let a = root.join("behaviour.kind=on_policy,seed=1");
    let header = read(a.join("metrics.csv"))
        .lines()
        .next()
        .unwrap()
        .to_string();
    std::fs::write(a.join("metrics.csv"), header + "\n").unwrap();
    let b = root.join("behaviour.kind=teacher,seed=2");
    std::fs::write(b.join("status.toml"), "ok = tru\n").unwrap();
    let o = sweep_run(&file, &out, &["--jobs", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("warning: rerunning behaviour.kind=on_policy,seed=1: marked complete but"),
        "{err}"
    );
    assert!(
        err.contains("warning: rerunning behaviour.kind=teacher,seed=2:")
            && err.contains("is not a run status"),
        "{err}"
    );
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        text.contains("2 run(s) executed, 2 complete and skipped"),
        "{text}"
    );
    assert_eq!(runs_without_wall(&out), before);
}

/// SIGTERM during a run: the runner stops after the step in progress, exits
/// 130, leaves the run incomplete (no status, no lock) and says so; the
/// same command then resumes it to completion. A second runner on a run
/// directory held by a live one is refused naming the holder.
#[test]
fn sigterm_leaves_an_incomplete_run_that_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let text = SWEEP
        // Far more steps than can finish before the signal arrives.
        .replace("steps = 40", "steps = 10000000")
        .replace("n_evals = 2", "n_evals = 1000000")
        .replace("seeds = [1, 2]", "seeds = [1]")
        .replace(
            "grid = { \"behaviour.kind\" = [\"on_policy\", \"teacher\"] }",
            "",
        );
    let file = write(dir.path(), "s.toml", &text);
    let out = dir.path().join("out");
    let run = out.join("tiny_sweep/seed=1");
    let child = runner()
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while std::fs::read_to_string(run.join("metrics.csv")).map_or(true, |t| t.lines().count() < 3) {
        assert!(t0.elapsed() < Duration::from_secs(60), "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    // While it runs, a second runner may not write the same run.
    let o = sweep_run(&file, &out, &[]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("in use by another runner (pid"),
        "{}",
        stderr(&o)
    );
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(stderr(&o).contains("left incomplete"), "{}", stderr(&o));
    assert!(!run.join("status.toml").exists() && !run.join(".lock").exists());
    let o = sweep_run(
        &file,
        &out,
        &["--set", "train.steps=40", "--set", "train.n_evals=2"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(run.join("status.toml").exists());
}

/// Odd paths: an `--out` that is a symbolic-link loop is a clear error
/// naming the path (exit 1, no panic); a non-UTF-8 `--out` works.
#[cfg(unix)]
#[test]
fn odd_output_paths() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "s.toml", SWEEP);
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::os::unix::fs::symlink(&a, &b).unwrap();
    std::os::unix::fs::symlink(&b, &a).unwrap();
    let o = sweep_run(&file, &a, &["--set", "sweep.seeds=[1]"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("cannot create") && err.contains("symbolic links"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let odd = dir.path().join(std::ffi::OsStr::from_bytes(b"out\xff"));
    let o = sweep_run(&file, &odd, &["--set", "sweep.seeds=[1]"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(odd.join("tiny_sweep/runs.csv").exists());
}

/// This host's name as the run locks write it.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

/// The row of run `id` in `runs.csv` as cells.
fn row_of(runs: &str, id: &str) -> Vec<String> {
    runs.lines()
        .map(cells)
        .find(|c| c[0] == id)
        .unwrap_or_else(|| panic!("no row {id} in\n{runs}"))
}

/// The cell of column `name` in `row` of the table `text`.
fn cell(text: &str, row: &[String], name: &str) -> String {
    let header = cells(text.lines().next().unwrap());
    let i = header.iter().position(|h| h == name).unwrap();
    row[i].clone()
}

/// Two runners on one `--out`: a run held by the other runner (its lock
/// names a live process) is neither run nor failed here. When the other
/// runner is still at it at the end, runs.csv says `running` and names it,
/// and the command says `not run` and exits 1; when the other runner
/// completes it meanwhile, the tables written last say `ok` (they read the
/// run's own status.toml) and the command succeeds.
#[test]
fn a_run_held_by_another_runner_is_not_recorded_as_failed() {
    let dir = tempfile::tempdir().unwrap();
    let text = SWEEP.replace(
        "grid = { \"behaviour.kind\" = [\"on_policy\", \"teacher\"] }",
        "",
    );
    let file = write(dir.path(), "s.toml", &text);
    let hold = |run: &Path| {
        std::fs::create_dir_all(run).unwrap();
        // This test's own process: alive, on this host, not the runner.
        std::fs::write(
            run.join(".lock"),
            format!("{} {}\n", std::process::id(), hostname()),
        )
        .unwrap();
    };
    // Still held at the end.
    let out = dir.path().join("held");
    let held = out.join("tiny_sweep/seed=1");
    hold(&held);
    let o = sweep_run(&file, &out, &["--jobs", "1"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("not run: seed=1:")
            && err.contains(&format!(
                "in use by another runner (pid {}",
                std::process::id()
            ))
            && !err.contains("failed: seed=1"),
        "{err}"
    );
    let runs = read(out.join("tiny_sweep/runs.csv"));
    let row = row_of(&runs, "seed=1");
    assert_eq!(cell(&runs, &row, "status"), "running", "{runs}");
    assert!(
        cell(&runs, &row, "message").contains(&format!("pid {}", std::process::id())),
        "{runs}"
    );
    assert_eq!(cell(&runs, &row_of(&runs, "seed=2"), "status"), "ok");
    assert!(held.join(".lock").exists() && !held.join("status.toml").exists());
    let summary = read(out.join("tiny_sweep/summary.csv"));
    assert!(
        summary.lines().nth(1).unwrap().starts_with("2,1,"),
        "{summary}"
    );

    // Completed by the other runner while this one runs seed=2: the other
    // runner's results are those of a run made beforehand elsewhere.
    let slow = write(
        dir.path(),
        "slow.toml",
        &text.replace("steps = 40", "steps = 3000"),
    );
    let reference = dir.path().join("reference");
    let o = sweep_run(&slow, &reference, &["--set", "sweep.seeds=[1]"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = dir.path().join("completed");
    let held = out.join("tiny_sweep/seed=1");
    hold(&held);
    let child = runner()
        .arg(&slow)
        .arg("--out")
        .arg(&out)
        .args(["--jobs", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Seed 2 starts once seed 1 was refused.
    let second = out.join("tiny_sweep/seed=2/config.toml");
    let t0 = Instant::now();
    while !second.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "seed=2 never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    for f in ["config.toml", "metrics.csv", "status.toml"] {
        std::fs::copy(reference.join("tiny_sweep/seed=1").join(f), held.join(f)).unwrap();
    }
    std::fs::remove_file(held.join(".lock")).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("1 run(s) executed, 1 complete and skipped, 0 failed"),
        "{stdout}"
    );
    let runs = read(out.join("tiny_sweep/runs.csv"));
    assert_eq!(runs.matches(",ok,").count(), 2, "{runs}");
    assert!(!runs.contains("failed"), "{runs}");
}

/// A run completed by another runner between the sweep's plan and its
/// lock is not run again: `execute` finds it complete
/// under the lock and leaves it (and its status) alone.
#[test]
fn a_run_completed_meanwhile_is_not_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "s.toml", SWEEP);
    let out = dir.path().join("out");
    assert!(sweep_run(&file, &out, &["--set", "sweep.seeds=[1]"])
        .status
        .success());
    let specs = runner::sweep::expand(
        &file,
        &[runner::config::parse_set("sweep.seeds=[1]").unwrap()],
    )
    .unwrap();
    let opts = runner::sweep::SweepOptions {
        out: out.clone(),
        jobs: 1,
        fail_fast: false,
        force: false,
        datasets: common::datasets(),
        tables: true,
    };
    let status = runner::sweep::run_dir(&out, &specs[0]).join("status.toml");
    let before = read(status.clone());
    let done = runner::sweep::execute(&specs[0], &opts, true).unwrap();
    assert_eq!(
        done,
        runner::sweep::Executed::NotRun("completed by another runner meanwhile".into())
    );
    assert_eq!(read(status), before);
}

/// The tables of an experiment directory list every run in it, also those
/// of other invocations: `--set seed=0` then `--set seed=1` gives both seeds
/// in runs.csv and one group of two runs in summary.csv. A run of another
/// config (here another learning rate) gets a column of that setting and a
/// group of its own, never a mean with the others. A sweep resumed with more
/// seeds lists the old seeds with the new ones under the same groups.
#[test]
fn tables_list_the_runs_of_every_invocation() {
    let dir = tempfile::tempdir().unwrap();
    let single = SWEEP[..SWEEP.find("[sweep]").unwrap()].to_string();
    let file = write(dir.path(), "one.toml", &single);
    let out = dir.path().join("out");
    for args in [vec!["--set", "seed=0"], vec!["--set", "seed=1"]] {
        let o = sweep_run(&file, &out, &args);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let runs = read(out.join("tiny_sweep/runs.csv"));
    assert!(
        runs.starts_with("run_id,seed,status,message,wall_s,step,"),
        "{runs}"
    );
    assert_eq!(runs.lines().count(), 3, "{runs}");
    for seed in ["0", "1"] {
        let row = row_of(&runs, &format!("seed={seed}"));
        assert_eq!(
            (cell(&runs, &row, "seed"), cell(&runs, &row, "status")),
            (seed.to_string(), "ok".to_string()),
            "{runs}"
        );
    }
    let summary = read(out.join("tiny_sweep/summary.csv"));
    let lines: Vec<&str> = summary.lines().collect();
    assert_eq!(lines.len(), 2, "{summary}");
    assert!(lines[1].starts_with("2,2,"), "{summary}");
    let goals = |seed: &str| {
        cell(
            &runs,
            &row_of(&runs, &format!("seed={seed}")),
            "n_goals_found",
        )
        .parse::<f64>()
        .unwrap()
    };
    let mean_col = cells(lines[0])
        .iter()
        .position(|h| h == "n_goals_found_mean")
        .unwrap();
    assert_eq!(
        cells(lines[1])[mean_col].parse::<f64>().unwrap(),
        (goals("0") + goals("1")) / 2.0
    );
    // `runner collect` writes the same tables.
    let o = runner()
        .arg("collect")
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("2 runs: 2 ok, 0 failed, 0 incomplete"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert_eq!(read(out.join("tiny_sweep/summary.csv")), summary);

    // Another learning rate under another seed: its own column and group.
    let o = sweep_run(
        &file,
        &out,
        &["--set", "seed=2", "--set", "objective.lr=0.0001"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let runs = read(out.join("tiny_sweep/runs.csv"));
    assert!(
        runs.starts_with("run_id,objective.lr,seed,status,"),
        "{runs}"
    );
    assert_eq!(
        cell(&runs, &row_of(&runs, "seed=2"), "objective.lr"),
        "0.0001"
    );
    let default_lr = cell(&runs, &row_of(&runs, "seed=0"), "objective.lr");
    assert_ne!(default_lr, "0.0001");
    assert_eq!(
        cell(&runs, &row_of(&runs, "seed=1"), "objective.lr"),
        default_lr
    );
    let summary = read(out.join("tiny_sweep/summary.csv"));
    let groups: Vec<Vec<String>> = summary.lines().skip(1).map(cells).collect();
    assert_eq!(groups.len(), 2, "{summary}");
    assert_eq!(&groups[0][..3], &["0.0001", "1", "1"], "{summary}");
    assert_eq!(
        &groups[1][..3],
        &[default_lr.as_str(), "2", "2"],
        "{summary}"
    );

    // A sweep, then more seeds: the old runs are listed under their groups.
    let file = write(dir.path(), "s.toml", SWEEP);
    let out = dir.path().join("sweep");
    assert!(sweep_run(&file, &out, &["--jobs", "2"]).status.success());
    let o = sweep_run(&file, &out, &["--set", "sweep.seeds=[3]"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let runs = read(out.join("tiny_sweep/runs.csv"));
    let ids: Vec<String> = runs.lines().skip(1).map(|l| cells(l)[0].clone()).collect();
    assert_eq!(
        ids,
        [
            "behaviour.kind=on_policy,seed=3",
            "behaviour.kind=teacher,seed=3",
            "behaviour.kind=on_policy,seed=1",
            "behaviour.kind=on_policy,seed=2",
            "behaviour.kind=teacher,seed=1",
            "behaviour.kind=teacher,seed=2",
        ],
        "{runs}"
    );
    assert!(
        runs.starts_with("run_id,behaviour.kind,seed,status,"),
        "{runs}"
    );
    let summary = read(out.join("tiny_sweep/summary.csv"));
    let groups: Vec<Vec<String>> = summary.lines().skip(1).map(cells).collect();
    assert_eq!(
        groups.iter().map(|g| g[..3].join(",")).collect::<Vec<_>>(),
        ["on_policy,3,3", "teacher,3,3"],
        "{summary}"
    );
}

/// A run that hits the file-size limit (`ulimit -f`) is not killed without
/// a word by SIGXFSZ: the write fails, the run is recorded as failed naming
/// the file, the command exits 1, and neither its lock nor a temporary file
/// is left. Temporary files a killed runner left in the run directory are
/// removed when the run starts again.
#[cfg(unix)]
#[test]
fn a_file_size_limit_is_a_reported_failure() {
    let dir = tempfile::tempdir().unwrap();
    // About 150 bytes a row, a row every 2 steps: far past a 4-8 KB limit.
    let text = SWEEP[..SWEEP.find("[sweep]").unwrap()]
        // Checkpoints only at the end: the metrics reach the limit first.
        .replace(
            "steps = 40\nn_evals = 2",
            "steps = 2000\ncheckpoint_every = 0",
        )
        .replace("samples = 300", "samples = 50\nevery = 2");
    let file = write(dir.path(), "s.toml", &text);
    let out = dir.path().join("out");
    let run = out.join("tiny_sweep/seed=0");
    std::fs::create_dir_all(run.join("plots")).unwrap();
    let stale = [
        run.join(".metrics.csv.tmp4000000_0"),
        run.join("plots/.target_density.png.tmp4000000_1.png"),
    ];
    for f in &stale {
        std::fs::write(f, "half a file").unwrap();
    }
    let bin = runner().get_program().to_owned();
    let o = Command::new("sh")
        .arg("-c")
        .arg("ulimit -f 8; exec \"$0\" \"$@\"")
        .arg(bin)
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .current_dir(common::root())
        .env_remove("RUNNER_DATASETS")
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    // The metrics' first file past the limit: metrics.csv or the
    // TensorBoard file beside it, whichever grows past 8 KB first.
    let named = |t: &str| t.contains("metrics.csv") || t.contains("events.out.tfevents");
    assert!(
        err.contains("failed: seed=0: cannot write") && named(&err),
        "{err}"
    );
    let status = read(run.join("status.toml"));
    assert!(status.contains("ok = false") && named(&status), "{status}");
    assert!(!run.join(".lock").exists());
    let mut left = Vec::new();
    let mut dirs = vec![out.clone()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.file_name().unwrap().to_string_lossy().contains(".tmp") {
                left.push(p);
            }
        }
    }
    assert!(left.is_empty(), "temporary files left: {left:?}");
    let runs = read(out.join("tiny_sweep/runs.csv"));
    assert_eq!(cell(&runs, &row_of(&runs, "seed=0"), "status"), "failed");
}

/// An interrupted sweep says how many runs it interrupted and how many it
/// never started, and why (not `--fail-fast`).
#[test]
fn an_interrupted_sweep_counts_its_runs() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "s.toml",
        &SWEEP.replace("steps = 40", "steps = 20000"),
    );
    let out = tempfile::tempdir().unwrap();
    let child = runner()
        .arg(&file)
        .arg("--out")
        .arg(out.path())
        .args(["--jobs", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt the first run once it has written its first evaluation.
    let metrics = out
        .path()
        .join("tiny_sweep/behaviour.kind=on_policy,seed=1/metrics.csv");
    let t0 = Instant::now();
    while !metrics.exists() && t0.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        text.contains(
            "0 run(s) executed, 0 complete and skipped, 0 failed, 1 interrupted, \
             3 not started (after the interruption)"
        ),
        "{text}"
    );
    assert!(!text.contains("fail-fast"), "{text}");
    assert!(
        stderr(&o)
            .contains("interrupted: 1 run(s) stopped midway and 3 not started are left incomplete"),
        "{}",
        stderr(&o)
    );
}

/// The SLURM script's requeue: USR1 (what `#SBATCH --signal=B:USR1@GRACE`
/// sends before the time limit) makes the task's runner write a checkpoint
/// and stop, then the script requeues the task (`scontrol requeue JOB_TASK`,
/// here a stand-in that records its arguments) and exits with 130.
#[test]
fn the_slurm_script_checkpoints_and_requeues_at_the_time_limit() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "s.toml", SWEEP);
    let out = dir.path().join("out");
    let o = runner()
        .arg("slurm")
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .args([
            "--set",
            "train.steps=10000000",
            "--set",
            "train.n_evals=1000000",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let script = out.join("tiny_sweep/slurm.sbatch");
    let text = read(script.clone());
    assert!(
        text.contains("#SBATCH --requeue\n#SBATCH --signal=B:USR1@180\n"),
        "{text}"
    );
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let record = dir.path().join("scontrol.args");
    let fake = write(
        &bin,
        "scontrol",
        &format!("#!/bin/sh\necho \"$@\" > '{}'\n", record.display()),
    );
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&fake)
        .status()
        .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let child = Command::new("bash")
        .arg(&script)
        .env("PATH", path)
        .env("SLURM_ARRAY_JOB_ID", "77")
        .env("SLURM_ARRAY_TASK_ID", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let run = out.join("tiny_sweep/behaviour.kind=on_policy,seed=1");
    let t0 = Instant::now();
    while std::fs::read_to_string(run.join("metrics.csv")).map_or(true, |t| t.lines().count() < 3) {
        assert!(t0.elapsed() < Duration::from_secs(60), "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    common::send_signal(child.id(), "USR1");
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert_eq!(read(record).trim(), "requeue 77_0");
    let checkpoints: Vec<_> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .flatten()
        .collect();
    assert!(!checkpoints.is_empty());
    assert!(!run.join("status.toml").exists() && !run.join(".lock").exists());
}

/// Lists in run ids: under a label, a zipped list (a method's schedule) is
/// left out, as a zipped table is; elsewhere a short list of plain values is
/// written joined by `+`, and a long or nested one as its position and a
/// hash. The run's config.toml holds the whole list. A run directory under
/// the id an earlier version gave (the list written out) is adopted: the
/// sweep renames it and skips the complete run.
#[test]
fn list_values_get_short_ids_and_old_directories_are_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let base = SWEEP[..SWEEP.find("[sweep]").unwrap()].to_string()
        + "[buffer]\nkind = \"terminal\"\n\n[sweep]\nseeds = [0]\n";
    let unlabelled = write(
        dir.path(),
        "u.toml",
        &(base.clone()
            + "grid = { \"behaviour.schedule\" = [[\"student\", \"buffer\"], \
               [\"student\", \"buffer\", \"student\", \"student\", \"student\"], \
               [[\"student\", \"buffer\"]]] }\n"),
    );
    let ids: Vec<String> = runner::sweep::expand(&unlabelled, &[])
        .unwrap()
        .iter()
        .map(|s| s.id.clone())
        .collect();
    assert_eq!(ids[0], "behaviour.schedule=student+buffer,seed=0");
    for (id, position) in ids[1..].iter().zip(["1-", "2-"]) {
        let value = id
            .strip_prefix("behaviour.schedule=")
            .and_then(|v| v.strip_suffix(",seed=0"))
            .unwrap();
        assert!(value.starts_with(position) && value.len() == 10, "{id}");
    }

    let labelled = write(
        dir.path(),
        "l.toml",
        &(base
            + "zip = { label = [\"S\", \"SB\"], \"behaviour.schedule\" = [[\"student\"], \
               [\"student\", \"buffer\"]] }\n"),
    );
    let specs = runner::sweep::expand(&labelled, &[]).unwrap();
    assert_eq!(specs[1].id, "label=SB,seed=0");
    assert_eq!(
        specs[1].legacy_id.as_deref(),
        Some("behaviour.schedule=__student_,_buffer__,label=SB,seed=0")
    );
    let out = dir.path().join("out");
    let o = sweep_run(&labelled, &out, &["--set", "train.progress=false"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let root = out.join("tiny_sweep");
    let config = read(root.join("label=SB,seed=0/config.toml"));
    assert!(
        config.contains("schedule = [\"student\", \"buffer\"]"),
        "{config}"
    );
    // Results of an earlier version, under the old id.
    let old = root.join("behaviour.schedule=__student_,_buffer__,label=SB,seed=0");
    std::fs::rename(root.join("label=SB,seed=0"), &old).unwrap();
    let o = runner()
        .arg("collect")
        .arg(&labelled)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("2 runs: 2 ok, 0 failed"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let o = sweep_run(&labelled, &out, &["--set", "train.progress=false"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("0 run(s) executed, 2 complete and skipped"),
        "{}",
        stderr(&o)
    );
    assert!(!old.exists() && root.join("label=SB,seed=0/status.toml").is_file());
}
