//! End-to-end tests of the diffusion family (docs/diffusion.md): every
//! experiment file runs a few iterations at a tiny size, the same seed gives
//! the same bytes, and wrong compositions are errors naming their keys.

mod common;

use std::path::{Path, PathBuf};

use common::{metrics_without_wall, runner, stderr, write, TINY_DIFFUSION};

/// The diffusion experiment files.
fn diffusion_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            n.ends_with(".toml")
                && ["gmm25_", "gmm40_", "funnel_", "many_well_", "diffusion_"]
                    .iter()
                    .any(|prefix| n.starts_with(prefix))
        })
        .collect();
    files.sort();
    files
}

fn run(file: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut cmd = runner();
    cmd.arg(file).arg("--out").arg(out);
    for s in TINY_DIFFUSION.iter().chain(extra) {
        cmd.args(["--set", s]);
    }
    cmd.output().unwrap()
}

/// Every diffusion file (the sweep included) runs 3 iterations: metrics at
/// iterations 0, 2 and 3 with every column, finite bounds, pictures written.
#[test]
fn every_diffusion_file_runs_three_iterations() {
    let out = tempfile::tempdir().unwrap();
    let files = diffusion_files();
    assert_eq!(files.len(), 15, "{files:?}");
    for file in &files {
        let o = run(file, out.path(), &[]);
        assert!(o.status.success(), "{}: {}", file.display(), stderr(&o));
    }
    let text =
        std::fs::read_to_string(out.path().join("many_well_teacher_mala/seed=0/metrics.csv"))
            .unwrap();
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
    // The columns, in the file's order.
    let header = "iteration,loss,teacher_loss,log_z_learned,log_z_is,delta_log_z,elbo,eubo,w2,buffer_size,n_energy_calls,wall_s";
    assert_eq!(text.lines().next().unwrap(), header);
    let col = |name: &str| rows[0].iter().position(|c| *c == name).unwrap();
    let its: Vec<&str> = rows[1..].iter().map(|r| r[col("iteration")]).collect();
    assert_eq!(its, ["0", "2", "3"]);
    for r in &rows[1..] {
        for name in ["log_z_is", "elbo", "eubo", "w2"] {
            let v: f64 = r[col(name)].parse().unwrap();
            assert!(v.is_finite(), "{name} = {v}");
        }
        let (elbo, eubo): (f64, f64) = (
            r[col("elbo")].parse().unwrap(),
            r[col("eubo")].parse().unwrap(),
        );
        assert!(elbo < eubo, "ELBO {elbo} >= EUBO {eubo}");
    }
    // Iteration 0 seeded the buffer with the first batch (8) and MALA added
    // its accepted proposals; energy calls: the tau batch, then 8 per fresh batch and MALA's.
    let buffer: usize = rows[3][col("buffer_size")].parse().unwrap();
    assert!(buffer > 8, "buffer {buffer}");
    for (run, pic) in [
        ("gmm25_teacher/seed=0", "samples_000003.png"),
        ("many_well_per/seed=0", "samples_000002.png"),
    ] {
        assert!(
            out.path().join(run).join("plots").join(pic).exists(),
            "{run}/{pic}"
        );
    }
    // The sweep wrote its comparison table.
    assert!(out.path().join("diffusion_compare/summary.csv").exists());
}

/// The funnel (on-policy, with the Langevin policy, which evaluates the
/// target's gradient) and the 40GMM (the Teacher) run end to end at a tiny
/// size: every metric is a finite number (both have exact samples and
/// log Z = 0, so `delta_log_z` is exactly -`log_z_is`), and each evaluation
/// draws its picture (the funnel's marginal panels, the 40GMM's density).
#[test]
fn funnel_and_gmm40_run_end_to_end() {
    let out = tempfile::tempdir().unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    for (file, extra, run_dir) in [
        (
            "funnel_on_policy.toml",
            &["policy.langevin=true"][..],
            "funnel_on_policy/seed=0",
        ),
        ("gmm40_teacher.toml", &[][..], "gmm40_teacher/seed=0"),
    ] {
        let o = run(&dir.join(file), out.path(), extra);
        assert!(o.status.success(), "{file}: {}", stderr(&o));
        let text = std::fs::read_to_string(out.path().join(run_dir).join("metrics.csv")).unwrap();
        let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
        let col = |name: &str| rows[0].iter().position(|c| *c == name).unwrap();
        assert_eq!(rows.len(), 4, "{text}");
        for r in &rows[1..] {
            let v = |name: &str| -> f64 { r[col(name)].parse().unwrap() };
            for name in ["log_z_is", "delta_log_z", "elbo", "eubo", "w2"] {
                assert!(v(name).is_finite(), "{file}: {name} = {}", r[col(name)]);
            }
            assert_eq!(v("delta_log_z"), -v("log_z_is"), "{file}");
        }
        for pic in ["samples_000000.png", "samples_000003.png"] {
            let path = out.path().join(run_dir).join("plots").join(pic);
            assert!(path.exists(), "{}", path.display());
        }
    }
}

/// The options off in the paper's runs work end to end: learned variance,
/// the Langevin parametrisation, decaying exploration, MALA without
/// adaptation, a uniform buffer.
#[test]
fn optional_components_run() {
    let out = tempfile::tempdir().unwrap();
    let file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/many_well_teacher_mala.toml");
    let o = run(
        &file,
        out.path(),
        &[
            "policy.learned_variance=true",
            "policy.langevin=true",
            "policy.exploration=0.2",
            "policy.exploration_decay=2",
            "local_search.adapt=false",
            "buffer.priority=uniform",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text =
        std::fs::read_to_string(out.path().join("many_well_teacher_mala/seed=0/metrics.csv"))
            .unwrap();
    let last: Vec<f64> = text
        .lines()
        .last()
        .unwrap()
        .split(',')
        .skip(4)
        .take(5)
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(last.iter().all(|v| v.is_finite()), "{last:?}");
}

/// The same seed gives the same metrics, bit for bit (wall time aside); another seed differs.
#[test]
fn same_seed_same_bytes() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/gmm25_teacher.toml");
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    for (dir, seed) in [(&a, "seed=0"), (&b, "seed=0"), (&c, "seed=1")] {
        let o = run(&file, dir.path(), &[seed]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let m = |d: &tempfile::TempDir, s: &str| {
        metrics_without_wall(&d.path().join(format!("gmm25_teacher/seed={s}/metrics.csv")))
    };
    assert_eq!(m(&a, "0"), m(&b, "0"));
    assert_ne!(m(&a, "0"), m(&c, "1"));
}

/// Wrong compositions name their key and the allowed kinds.
#[test]
fn composition_errors_name_keys_and_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let base = "name = \"d\"\n[env]\nkind = \"many_well\"\n[policy]\nkind = \"diffusion\"\n\
                [objective]\nkind = \"tb\"\n[behaviour]\nkind = \"teacher\"\n[buffer]\nkind = \"terminal\"\n";
    let cases = [
        (
            "kind = \"diffusion\"",
            "kind = \"ssr\"",
            "policy.kind",
            "the `diffusion` policy",
        ),
        (
            "kind = \"tb\"",
            "kind = \"subtb\"\nlambda = 5.0",
            "objective.lambda",
            "must be in (0, 2]",
        ),
        (
            "kind = \"terminal\"",
            "kind = \"recent\"",
            "buffer.kind",
            "`kind = \"terminal\"`",
        ),
        (
            "kind = \"teacher\"",
            "kind = \"teacher\"\nepsilon = 0.1",
            "behaviour.epsilon",
            "policy.exploration",
        ),
        (
            "[buffer]\nkind = \"terminal\"\n",
            "",
            "buffer",
            "through the buffer",
        ),
        (
            "[buffer]",
            "[local_search]\nkind = \"back_and_forth\"\n[buffer]",
            "local_search.kind",
            "use `mala`",
        ),
    ];
    for (from, to, key, expected) in cases {
        let path = write(dir.path(), "bad.toml", &base.replacen(from, to, 1));
        let err = stderr(&runner().arg("validate").arg(&path).output().unwrap());
        assert!(
            err.contains(key) && err.contains(expected),
            "expected `{key}` / `{expected}` in:\n{err}"
        );
    }
    // MALA on the grid.
    let grid = "name = \"g\"\n[env]\nkind = \"grid\"\nndim = 2\nhorizon = 8\n[policy]\nkind = \"mlp\"\n\
                [objective]\nkind = \"tb\"\n[behaviour]\nkind = \"on_policy\"\n[local_search]\nkind = \"mala\"\n";
    let path = write(dir.path(), "grid_mala.toml", grid);
    let err = stderr(&runner().arg("validate").arg(&path).output().unwrap());
    assert!(
        err.contains("local_search.kind") && err.contains("`mala` is for the diffusion"),
        "{err}"
    );
    // A diverging run reports a non-finite loss with its iteration.
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/gmm25_on_policy.toml");
    let o = run(&file, dir.path(), &["objective.log_z_init=1e30"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("non-finite student loss"),
        "{}",
        stderr(&o)
    );
}
