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
