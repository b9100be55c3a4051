//! Golden outputs: tiny runs of the experiment files whose `metrics.csv`
//! (every column but `wall_s`) must stay byte-identical across refactors.
//!
//! The expected files in `tests/golden/` were recorded from the code before
//! the training loops were unified (commit 2382e45, the last one with a grid
//! loop and a sequence loop of their own) and are the proof that the
//! restructuring moved no number. To re-record one after a deliberate change
//! of numerics, run `RUNNER_BLESS=1 cargo test --release --test golden`, commit
//! the changed files on their own and say why in the commit message.

use std::path::{Path, PathBuf};

mod common;
use common::{datasets, runner, stderr};

/// Small grid: d as in the file, H = 8, a 32-wide network, 40 steps (the
/// 16-step local-search schedules twice and a half), 4 evaluations of 300 samples.
const GRID: &[&str] = &[
    "env.horizon=8",
    "policy.hidden=32",
    "train.steps=40",
    "train.n_evals=4",
    "eval.samples=300",
    "eval.batch_size=150",
    "eval.plot=false",
    "train.progress=false",
];

/// Small sequence runs: 9 rounds of 8 trajectories (the offline batch starts
/// once 10 discoveries exist), a 32-wide network, evaluations every 3 rounds.
const SEQ: &[&str] = &[
    "train.steps=9",
    "train.batch_size=8",
    "policy.hidden=32",
    "eval.every=3",
    "eval.samples=64",
    "eval.batch_size=32",
    "train.progress=false",
];

/// Runs `experiments/<file>.toml` with `base` and `extra` overrides and
/// compares its metrics with `tests/golden/<case>.csv`.
fn check(case: &str, file: &str, base: &[&str], extra: &[&str], needs_data: bool) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = runner();
    let out = tempfile::tempdir().unwrap();
    cmd.arg(root.join("experiments").join(format!("{file}.toml")))
        .arg("--out")
        .arg(out.path());
    if needs_data {
        cmd.arg("--datasets").arg(datasets());
    }
    for s in base.iter().chain(extra) {
        cmd.args(["--set", s]);
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{case}: {}", stderr(&o));
    let run: PathBuf = out.path().join(file).join("seed=0");
    let got = without_wall(&std::fs::read_to_string(run.join("metrics.csv")).unwrap());
    let golden = root.join("tests/golden").join(format!("{case}.csv"));
    if std::env::var_os("RUNNER_BLESS").is_some() {
        std::fs::write(&golden, &got).unwrap();
        return;
    }
    let want =
        std::fs::read_to_string(&golden).unwrap_or_else(|e| panic!("{}: {e}", golden.display()));
    if got != want {
        let first = got
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "{case}: metrics.csv differs from {} (first at line {}):\n got: {}\nwant: {}",
            golden.display(),
            first + 1,
            got.lines().nth(first).unwrap_or(""),
            want.lines().nth(first).unwrap_or("")
        );
    }
}

/// Every line of a `metrics.csv` without its last column (`wall_s`).
fn without_wall(text: &str) -> String {
    text.lines()
        .map(|l| l.rsplit_once(',').map_or(l, |(head, _)| head))
        .map(|l| format!("{l}\n"))
        .collect()
}

macro_rules! golden {
    ($($case:ident: $file:literal, $base:ident, [$($extra:literal),*], $data:literal;)+) => {
        $(
            #[test]
            fn $case() {
                check(stringify!($case), $file, $base, &[$($extra),*], $data);
            }
        )+
    };
}

golden! {
    grid_tb: "grid_d4_h32_tb", GRID, [], false;
    grid_eps: "grid_d4_h32_eps", GRID, [], false;
    grid_teacher: "grid_d4_h32_teacher", GRID, [], false;
    grid_tb_prt: "grid_d4_h32_tb_prt", GRID, [], false;
    grid_tb_per: "grid_d4_h32_tb_per", GRID, [], false;
    grid_teacher_prt: "grid_d4_h32_teacher_prt", GRID, [], false;
    grid_teacher_per: "grid_d4_h32_teacher_per", GRID, [], false;
    grid_tb_ls: "grid_d4_h32_tb_ls", GRID, [], false;
    grid_tb_ls_per: "grid_d4_h32_tb_ls_per", GRID, [], false;
    grid_teacher_ls: "grid_d4_h32_teacher_ls", GRID, [], false;
    grid_teacher_ls_per: "grid_d4_h32_teacher_ls_per", GRID, [], false;
    grid_db: "grid_d4_h32_db", GRID, [], false;
    grid_db_per: "grid_d4_h32_db_per", GRID, [], false;
    grid_teacher_db: "grid_d4_h32_teacher_db", GRID, [], false;
    grid_teacher_db_per: "grid_d4_h32_teacher_db_per", GRID, [], false;
    grid_gafn: "grid_d4_h32_gafn", GRID, [], false;
    grid_d2_teacher: "grid_d2_h32_teacher", GRID, [], false;
    grid_teacher_loss_buffer: "grid_d4_h32_teacher", GRID, ["buffer.kind=terminal", "buffer.priority=loss", "behaviour.epsilon=0.05"], false;
    tfbind8_teacher_prt: "tfbind8_teacher_prt", SEQ, [], true;
    tfbind8_tb_per: "tfbind8_tb_per", SEQ, [], true;
    tfbind8_teacher_ls: "tfbind8_teacher", SEQ, ["local_search.kind=back_and_forth"], true;
    qm9_teacher_per: "qm9_teacher_per", SEQ, [], true;
    qm9_tb_prt_ls: "qm9_tb_prt", SEQ, ["local_search.kind=back_and_forth"], true;
    qm9_teacher_insert: "qm9_teacher", SEQ, ["env.mdp=insert", "buffer.priority=uniform"], true;
}
