//! `runner report` end to end: a finished sweep (written at its end), an
//! unfinished one, a single run, a failed run, and bad input.

use std::path::{Path, PathBuf};

mod common;
use common::{cells, runner, stderr, write};

/// Two labelled methods x 2 seeds on a tiny grid, and a third group whose
/// log Z of 1e39 is infinite in f32: its runs fail with a non-finite loss.
const SWEEP: &str = r#"
name = "tiny_report"

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
seeds = [0, 1]

[sweep.zip]
label = ["TB", "Teacher", "Broken"]
"behaviour.kind" = ["on_policy", "teacher", "on_policy"]
"objective.log_z_init" = [0.0, 0.0, 1e39]
"#;

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Width and height of a PNG, decoded (which also checks it is one).
fn png_size(p: &Path) -> (u32, u32) {
    let decoder = png::Decoder::new(std::fs::File::open(p).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    (info.width, info.height)
}

/// The charts exist, are real pictures of 960 x 600 and not tiny files.
fn check_charts(report: &Path, names: &[&str]) {
    for n in names {
        let p = report.join(format!("{n}.png"));
        assert!(p.is_file(), "{} missing", p.display());
        assert!(
            std::fs::metadata(&p).unwrap().len() > 10_000,
            "{n}.png is tiny"
        );
        assert_eq!(png_size(&p), (960, 600), "{n}.png");
    }
}

/// The table row of `group` in report.md, as its cells.
fn table_row(page: &str, group: &str) -> Vec<String> {
    let line = page
        .lines()
        .find(|l| l.starts_with(&format!("| {group} |")))
        .unwrap_or_else(|| panic!("no row for {group} in\n{page}"));
    line.trim_matches('|')
        .split('|')
        .map(|c| c.trim().to_string())
        .collect()
}

/// `mean ± ci` (or a lone mean) of a cell.
fn parse_cell(cell: &str) -> (f64, Option<f64>) {
    let mut parts = cell.split(" ± ");
    let mean = parts.next().unwrap().parse().unwrap();
    (mean, parts.next().map(|c| c.parse().unwrap()))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-3 * b.abs().max(1e-12)
}

fn run_sweep(dir: &Path) -> (PathBuf, PathBuf) {
    let file = write(dir, "r.toml", SWEEP);
    let out = dir.join("out");
    let o = runner()
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .args(["--jobs", "2"])
        .output()
        .unwrap();
    // The Broken group fails; the others complete, and the report is written.
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("report: "),
        "{}",
        stderr(&o)
    );
    (file, out)
}

/// At the end of a sweep: charts of the grid's headline metrics, and a table
/// whose numbers are those of summary.csv (4 significant digits).
#[test]
fn a_finished_sweep_gets_charts_and_the_summary_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let (_, out) = run_sweep(dir.path());
    let root = out.join("tiny_report");
    let report = root.join("report");
    check_charts(
        &report,
        &["n_goals_found", "eval_empirical_l1", "eval_exact_l1"],
    );
    let page = read(&report.join("report.md"));
    assert!(page.contains("6 run(s)"), "{page}");
    assert!(
        page.contains("4 complete, 2 failed, 0 incomplete"),
        "{page}"
    );
    assert!(
        page.contains("![n_goals_found](n_goals_found.png)"),
        "{page}"
    );
    assert!(page.contains("non-finite student loss"), "{page}");
    // summary.csv: label, n_runs, n_ok, <metric>_mean, _std, _ci95, ...
    let summary = read(&root.join("summary.csv"));
    let header = cells(summary.lines().next().unwrap());
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let mut checked = 0;
    for line in summary.lines().skip(1) {
        let c = cells(line);
        let label = &c[col("label")];
        let row = table_row(&page, label);
        assert_eq!(row[1], format!("{}/{}", c[col("n_ok")], c[col("n_runs")]));
        for (k, m) in ["n_goals_found", "eval_empirical_l1", "eval_exact_l1"]
            .iter()
            .enumerate()
        {
            let cell = &row[2 + k];
            if c[col(&format!("{m}_mean"))].is_empty() {
                assert_eq!(cell, "–", "{label} {m}");
                continue;
            }
            let (mean, ci) = parse_cell(cell);
            let want: f64 = c[col(&format!("{m}_mean"))].parse().unwrap();
            let want_ci: f64 = c[col(&format!("{m}_ci95"))].parse().unwrap();
            assert!(close(mean, want), "{label} {m}: {mean} vs {want}");
            match ci {
                Some(ci) => assert!(close(ci, want_ci), "{label} {m}: ci {ci} vs {want_ci}"),
                None => assert!(want_ci.is_nan(), "{label} {m}: no interval"),
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 6, "two complete groups x three metrics");
}

/// An unfinished sweep (one run interrupted after its first evaluation, one
/// never started) is drawn up to where it is and says so; a single run and
/// an experiment file work too; a failed run is a message, not a panic.
#[test]
fn unfinished_single_and_failed_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (file, out) = run_sweep(dir.path());
    let root = out.join("tiny_report");
    let cut = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            n.contains("Teacher") && n.ends_with("seed=1")
        })
        .unwrap();
    let metrics = read(&cut.join("metrics.csv"));
    let first_two: String = metrics.lines().take(2).map(|l| format!("{l}\n")).collect();
    std::fs::write(cut.join("metrics.csv"), first_two).unwrap();
    std::fs::remove_file(cut.join("status.toml")).unwrap();
    let gone = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().contains("TB") && p.is_dir())
        .unwrap();
    let gone_name = gone.file_name().unwrap().to_string_lossy().to_string();
    std::fs::remove_dir_all(&gone).unwrap();
    std::fs::remove_dir_all(root.join("report")).unwrap();

    // The results directory: the removed run is not there at all.
    let o = runner().arg("report").arg(&root).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    check_charts(&root.join("report"), &["n_goals_found"]);
    let page = read(&root.join("report/report.md"));
    assert!(page.contains("5 run(s)"), "{page}");
    assert!(
        page.contains("incomplete (running or interrupted)"),
        "{page}"
    );
    assert_eq!(table_row(&page, "Teacher")[1], "1/2");

    // The experiment file knows every run: the removed one is "not started".
    let o = runner()
        .args(["report"])
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .args(["--metrics", "n_goals_found,loss"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let page = read(&root.join("report/report.md"));
    assert!(
        page.contains(&format!("| `{gone_name}` | not started |")),
        "{page}"
    );
    check_charts(&root.join("report"), &["n_goals_found", "loss"]);

    // One run: its own report, no band.
    let single = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("status.toml").is_file() && !p.to_string_lossy().contains("Broken"))
        .unwrap();
    let o = runner().arg("report").arg(&single).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    check_charts(&single.join("report"), &["n_goals_found", "eval_exact_l1"]);
    assert!(read(&single.join("report/report.md")).contains("1 run(s)"));

    // A failed run: its error in the page and a warning, exit 0.
    let failed = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("Broken"))
        .unwrap();
    let o = runner().arg("report").arg(&failed).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("every run failed"), "{}", stderr(&o));
    let page = read(&failed.join("report/report.md"));
    assert!(
        page.contains("failed: ") && page.contains("non-finite"),
        "{page}"
    );

    // Bad input: a path without results, an unknown metric.
    let o = runner()
        .arg("report")
        .arg(dir.path().join("nothing"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no results here"), "{}", stderr(&o));
    let o = runner()
        .arg("report")
        .arg(&root)
        .args(["--metrics", "n_goals"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("no run has a column `n_goals`") && e.contains("n_goals_found"),
        "{e}"
    );
}

/// A tiny comparison shaped like the shipped ones: two methods (a label
/// zipped with the behaviour table) on two tasks (a grid over the horizon),
/// one seed.
const TASKS: &str = r#"
name = "tiny_tasks"

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
steps = 20
n_evals = 1
progress = false

[eval]
samples = 100
plot = false

[sweep.grid]
"env.horizon" = [6, 8]

[sweep.zip]
label = ["TB", "Teacher"]
behaviour = [{ kind = "on_policy" }, { kind = "teacher" }]
"#;

/// Every group of a comparison over tasks has its own name (the label and
/// the task's key), and every task its own chart per metric, whose legend
/// names the methods.
#[test]
fn groups_of_several_tasks_get_distinct_names_and_their_own_charts() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "t.toml", TASKS);
    let out = dir.path().join("out");
    let o = runner()
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .args(["--jobs", "2"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let report = out.join("tiny_tasks/report");
    let page = read(&report.join("report.md"));
    for h in [6, 8] {
        for label in ["TB", "Teacher"] {
            assert_eq!(
                table_row(&page, &format!("{label}, env.horizon={h}"))[1],
                "1/1",
                "{page}"
            );
        }
        let chart = format!("n_goals_found_env.horizon={h}");
        check_charts(&report, &[&chart]);
        assert!(
            page.contains(&format!(
                "## n_goals_found: env.horizon={h}\n\n![n_goals_found: env.horizon={h}]({chart}.png)"
            )),
            "{page}"
        );
    }
    assert!(!report.join("n_goals_found.png").exists());
}

/// The group names of the shipped comparison files, from their expansion
/// alone (no run has started): every group is distinct and readable.
#[test]
fn the_shipped_comparisons_name_every_group() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str]); 3] = [
        (
            "rna_compare",
            &[
                "TB-PRT, env.target=1",
                "Teacher-PRT, env.target=1",
                "TB-PRT, env.target=2",
                "Teacher-PRT, env.target=2",
                "TB-PRT, env.target=3",
                "Teacher-PRT, env.target=3",
            ],
        ),
        (
            "diffusion_compare",
            &[
                "on-policy, env.kind=gmm25",
                "PER, env.kind=gmm25",
                "Teacher, env.kind=gmm25",
                "on-policy, env.kind=many_well",
                "PER, env.kind=many_well",
                "Teacher, env.kind=many_well",
            ],
        ),
        (
            "paper_grid_d4_h32",
            &[
                "TB",
                "Teacher",
                "PRT",
                "PRT (pre-fix)",
                "PER",
                "Teacher+PRT",
            ],
        ),
    ];
    for (name, groups) in cases {
        let o = runner()
            .arg("report")
            .arg(format!("experiments/{name}.toml"))
            .arg("--out")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let page = read(&dir.path().join(name).join("report/report.md"));
        let rows: Vec<String> = page
            .lines()
            .skip_while(|l| !l.starts_with("| group |"))
            .skip(2)
            .take_while(|l| l.starts_with("| "))
            .map(|l| l.split(" | ").next().unwrap()[2..].to_string())
            .collect();
        assert_eq!(rows, groups, "{name}:\n{page}");
    }
}

/// A sweep run at half its budget (`train.budget_scale` scales the file's
/// `train.steps`) is, for the file at its own budget, complete at another
/// budget: the report and `runner collect` say so and do not count it
/// complete; the same scale again skips it as complete.
#[test]
fn runs_of_another_budget_are_not_complete_for_this_config() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "b.toml",
        &TASKS.replace("\"env.horizon\" = [6, 8]", "\"env.horizon\" = [8]"),
    );
    let out = dir.path().join("out");
    let half = ["--set", "train.budget_scale=0.5"];
    let o = runner()
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .args(half)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let root = out.join("tiny_tasks");
    let run = root.join("env.horizon=8,label=TB,seed=0");
    let metrics = read(&run.join("metrics.csv"));
    assert!(
        metrics.lines().last().unwrap().starts_with("10,"),
        "half of 20 steps:\n{metrics}"
    );
    let config = read(&run.join("config.toml"));
    assert!(
        config.contains("steps = 10\n") && config.contains("budget_scale = 1.0\n"),
        "{config}"
    );

    // The file at its own budget: 20 steps.
    let o = runner()
        .arg("report")
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("2 run(s): 0 complete, 2 complete at another budget, 0 failed"),
        "{stdout}"
    );
    let page = read(&root.join("report/report.md"));
    assert!(
        page.contains(
            "| `env.horizon=8,label=TB,seed=0` | complete at another budget: train.steps = 10 \
             (this config: 20), eval.every = 10 (this config: 20) | 10 | 20 |"
        ),
        "{page}"
    );
    assert_eq!(table_row(&page, "TB, train.steps=10")[1], "1/1", "{page}");
    let o = runner()
        .arg("collect")
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("2 runs: 0 ok, 2 complete at another budget, 0 failed, 0 incomplete"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let runs = read(&root.join("runs.csv"));
    let header = cells(runs.lines().next().unwrap());
    let row = cells(runs.lines().nth(1).unwrap());
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(row[col("status")], "other_config", "{runs}");
    assert_eq!(row[col("train.steps")], "10", "{runs}");
    assert!(row[col("message")].contains("another budget"), "{runs}");

    // The same scale: the same runs, complete and skipped.
    let o = runner()
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .args(half)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("0 run(s) executed, 2 complete and skipped"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// Several experiments on one report (grouped and named by experiment, run
/// ids after their experiment's name), from results directories and from an
/// experiment file; a CSV is refused with what `runner report` reads.
#[test]
fn several_paths_go_on_one_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let single = TASKS[..TASKS.find("[sweep.grid]").unwrap()].to_string();
    let mut files = Vec::new();
    for (name, kind) in [("tiny_tb", "on_policy"), ("tiny_teacher", "teacher")] {
        let text = single
            .replace("tiny_tasks", name)
            .replace("kind = \"on_policy\"", &format!("kind = \"{kind}\""));
        let file = write(dir.path(), &format!("{name}.toml"), &text);
        let o = runner().arg(&file).arg("--out").arg(&out).output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        files.push(file);
    }
    let o = runner()
        .arg("report")
        .arg(out.join("tiny_tb"))
        .arg(out.join("tiny_teacher"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let report = out.join("reports/tiny_tb+tiny_teacher");
    check_charts(&report, &["n_goals_found"]);
    let page = read(&report.join("report.md"));
    assert!(page.contains("# Report: tiny_tb + tiny_teacher"), "{page}");
    assert_eq!(table_row(&page, "tiny_tb")[1], "1/1", "{page}");
    assert_eq!(table_row(&page, "tiny_teacher")[1], "1/1", "{page}");
    assert!(
        page.contains("| `tiny_tb/seed=0` | complete |")
            && page.contains("| `tiny_teacher/seed=0` | complete |"),
        "{page}"
    );

    // An experiment file and a run directory (also reached through its
    // experiment's directory: listed once), to a directory of one's choice.
    let to = dir.path().join("mine");
    let o = runner()
        .arg("report")
        .arg(&files[0])
        .arg(out.join("tiny_teacher/seed=0"))
        .arg(out.join("tiny_teacher"))
        .arg("--out")
        .arg(&out)
        .arg("--output")
        .arg(&to)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let page = read(&to.join("report.md"));
    assert!(page.contains("2 run(s) in "), "{page}");
    assert_eq!(table_row(&page, "tiny_teacher")[1], "1/1");

    // A CSV: what is expected, and the directory to pass instead.
    let csv = out.join("tiny_tb/runs.csv");
    let o = runner().arg("report").arg(&csv).output().unwrap();
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("not a path `runner report` reads")
            && e.contains("an experiment file (.toml)")
            && e.contains(&format!(
                "pass their directory {}",
                out.join("tiny_tb").display()
            ))
            && !e.contains("TOML"),
        "{e}"
    );
}
