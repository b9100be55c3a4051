//! The CUDA engine against the CPU engine (built only with `--features cuda`;
//! docs/cuda.md). Every family runs a few steps with `device = "cuda"` and
//! with `device = "cpu"`, and the two `metrics.csv` agree column by column.
//!
//! Without a usable GPU (no driver, or the link-time stub driver of
//! `.ci/cuda-setup.sh`) the GPU tests print that they are skipped and pass;
//! with `RUNNER_REQUIRE_CUDA=1` (scripts/gpu-check.sh) a missing GPU is a
//! failure. The CPU path of a CUDA build is checked everywhere: it must give
//! the golden bytes of the CPU build.
//!
//! Tolerance: a value may differ from the CPU's by 1e-3 of the largest
//! magnitude in its column, or by 1e-3 where that magnitude is below one
//! (derived columns near zero, such as a log Z gap, inherit the absolute
//! error of the large numbers they are differences of). Both engines start from the same parameters (drawn
//! on the host from our own streams) and sample actions and noise on the host
//! from the same streams, so they differ only by the order of f32 sums: cuBLAS
//! and candle's CUDA reductions against the CPU's gemm and loops, with TF32
//! off (candle's default), about 1e-6 relative per product. A few Adam steps
//! grow that, but 1e-3 stays three orders above it, and far below what a wrong
//! kernel or a missing mask gives (differences of order one). Discrete columns
//! (goals, modes, counts) must then agree exactly, which they do unless a
//! host draw falls within ~1e-6 of a probability boundary; the runs are short
//! (a few thousand draws) to keep that unlikely.

mod common;

use std::path::{Path, PathBuf};

use common::{golden_form, root, runner, stderr, GOLDEN_GRID, GOLDEN_SEQ, TINY_DIFFUSION};

/// Three rounds of 8 trajectories with a 32-wide network, one evaluation.
const SEQ_SETS: &[&str] = &[
    "train.steps=3",
    "train.batch_size=8",
    "policy.hidden=32",
    "eval.every=3",
    "eval.samples=64",
    "train.progress=false",
];

/// One short run of each family (and of the sequence tasks with and without
/// exact samples, the bit sequences, the funnel): the case, the experiment
/// file, its overrides.
const CASES: &[(&str, &str, &[&str])] = &[
    (
        "grid",
        "grid_d4_h32_teacher",
        &[
            "env.horizon=8",
            "policy.hidden=32",
            "train.steps=10",
            "train.n_evals=1",
            "eval.samples=300",
            "eval.plot=false",
            "train.progress=false",
        ],
    ),
    ("qm9", "qm9_teacher_prt", SEQ_SETS),
    ("seh", "seh_teacher_prt", SEQ_SETS),
    ("diffusion", "many_well_teacher", TINY_DIFFUSION),
    ("funnel", "funnel_teacher", TINY_DIFFUSION),
    (
        "bitseq",
        "bitseq_teacher",
        &[
            "train.steps=3",
            "train.batch_size=8",
            "policy.hidden=32",
            "eval.every=3",
            "eval.samples=64",
            "train.progress=false",
            "env.n=16",
            "env.n_modes=3",
        ],
    ),
];

/// The part of the error that says no GPU can be used.
const NO_GPU: &str = "no usable CUDA GPU";

/// Runs `experiments/<file>.toml` on `device` into `out`; the run directory,
/// or the runner's stderr.
fn run(file: &str, device: &str, sets: &[&str], out: &Path) -> Result<PathBuf, String> {
    let mut cmd = runner();
    cmd.arg(root().join("experiments").join(format!("{file}.toml")))
        .arg("--out")
        .arg(out)
        .args(["--set", &format!("device={device}")]);
    for s in sets {
        cmd.args(["--set", s]);
    }
    let o = cmd.output().unwrap();
    match o.status.success() {
        true => Ok(out.join(file).join("seed=0")),
        false => Err(stderr(&o)),
    }
}

/// After a failed CUDA run: a skip (printed) when its stderr says no GPU can
/// be used and `RUNNER_REQUIRE_CUDA` is not set, a failure otherwise.
fn skip_without_gpu(test: &str, stderr: &str) {
    if !stderr.contains(NO_GPU) {
        panic!("{test}: the CUDA run failed:\n{stderr}");
    }
    if std::env::var_os("RUNNER_REQUIRE_CUDA").is_some() {
        panic!("{test}: RUNNER_REQUIRE_CUDA is set but {stderr}");
    }
    eprintln!(
        "{test}: skipped, no usable CUDA GPU here ({})",
        stderr.trim()
    );
}

/// A `metrics.csv` as its header and rows of cells, `wall_s` dropped.
fn table(dir: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let mut lines = text.lines().map(|l| {
        let cells: Vec<String> = l.split(',').map(str::to_string).collect();
        cells[..cells.len() - 1].to_vec()
    });
    let header = lines.next().unwrap();
    (header, lines.collect())
}

/// The largest difference between two metric tables relative to each
/// column's largest magnitude (at least one), and the column where it is; panics when the
/// tables differ in shape, or a cell is a number in one and not the other.
fn max_relative_difference(case: &str, cpu: &Path, gpu: &Path) -> (f64, String) {
    let (h1, r1) = table(cpu);
    let (h2, r2) = table(gpu);
    assert_eq!(h1, h2, "{case}: headers differ");
    assert_eq!(r1.len(), r2.len(), "{case}: row counts differ");
    let mut worst = (0.0, String::new());
    for (j, name) in h1.iter().enumerate() {
        let parse = |s: &str| s.parse::<f64>().ok().filter(|v| v.is_finite());
        let scale = r1
            .iter()
            .filter_map(|r| parse(&r[j]))
            .fold(0f64, |m, v| m.max(v.abs()))
            .max(1.0);
        for (a, b) in r1.iter().zip(&r2) {
            match (parse(&a[j]), parse(&b[j])) {
                (Some(x), Some(y)) => {
                    let rel = (x - y).abs() / scale;
                    if rel > worst.0 {
                        worst = (rel, name.clone());
                    }
                }
                _ => assert_eq!(a[j], b[j], "{case}: column {name} differs in kind"),
            }
        }
    }
    worst
}

/// Every family gives the CPU's metrics on CUDA within the tolerance of the
/// module's documentation. Prints one line per case (scripts/gpu-check.sh
/// collects them).
#[test]
fn cuda_matches_cpu_on_every_family() {
    let out = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (case, file, sets) in CASES {
        let gpu_out = out.path().join(format!("{case}-cuda"));
        let gpu = match run(file, "cuda", sets, &gpu_out) {
            Ok(dir) => dir,
            Err(e) => {
                skip_without_gpu("cuda_matches_cpu_on_every_family", &e);
                return;
            }
        };
        let cpu_out = out.path().join(format!("{case}-cpu"));
        let cpu = run(file, "cpu", sets, &cpu_out).unwrap_or_else(|e| panic!("{case}: {e}"));
        let (rel, column) = max_relative_difference(case, &cpu, &gpu);
        let ok = rel <= 1e-3;
        eprintln!(
            "agreement {case} ({file}): max relative difference {rel:.2e} in {column}: {}",
            if ok { "ok" } else { "FAILED" }
        );
        if !ok {
            failures.push(format!("{case}: {rel:.2e} in {column}"));
        }
    }
    assert!(failures.is_empty(), "beyond 1e-3: {failures:?}");
}

/// Without a GPU, `device = "cuda"` is one clear error naming the key and
/// the way out; with one, the run succeeds.
#[test]
fn cuda_without_a_gpu_is_a_clear_error() {
    let out = tempfile::tempdir().unwrap();
    let (_, file, sets) = CASES[0];
    match run(file, "cuda", sets, out.path()) {
        Ok(_) => eprintln!("cuda_without_a_gpu_is_a_clear_error: a GPU is here; nothing to check"),
        Err(e) => {
            assert!(e.contains("device = \"cuda\""), "{e}");
            assert!(e.contains("device = \"cpu\""), "{e}");
            skip_without_gpu("cuda_without_a_gpu_is_a_clear_error", &e);
        }
    }
}

/// The CPU path of a CUDA build gives the golden bytes of the CPU build
/// (tests/golden.rs), grid and sequence.
#[test]
fn cuda_build_on_cpu_gives_the_golden_metrics() {
    for (case, file, sizes) in [
        ("grid_teacher", "grid_d4_h32_teacher", GOLDEN_GRID),
        ("qm9_teacher_per", "qm9_teacher_per", GOLDEN_SEQ),
    ] {
        let out = tempfile::tempdir().unwrap();
        let dir = run(file, "cpu", sizes, out.path()).unwrap_or_else(|e| panic!("{case}: {e}"));
        let got = golden_form(&std::fs::read_to_string(dir.join("metrics.csv")).unwrap());
        let want = std::fs::read_to_string(root().join("tests/golden").join(format!("{case}.csv")))
            .unwrap();
        assert!(
            got == want,
            "{case}: the CUDA build's CPU metrics differ from the golden file"
        );
    }
}
