//! Golden outputs: tiny runs of the experiment files whose `metrics.csv`
//! (every column but `wall_s`) must stay byte-identical across refactors.
//!
//! The expected files in `tests/golden/` were recorded from the code before
//! the training loops were unified (commit 2382e45, the last one with a grid
//! loop and a sequence loop of their own) and are the proof that the
//! restructuring moved no number. `seh_tb_per` (a 16-wide network, 3 rounds)
//! was added later; its bytes equal those of 2382e45's binary (checked when
//! it was recorded, with fresh constants caches). To re-record one after a deliberate change
//! of numerics, run `RUNNER_BLESS=1 cargo test --release --test golden`, commit
//! the changed files on their own and say why in the commit message.

use std::path::PathBuf;

mod common;
use common::{datasets, golden_form, root, runner, stderr, GOLDEN_GRID, GOLDEN_SEQ};

/// The golden sizes (their meaning is in tests/common).
const GRID: &[&str] = GOLDEN_GRID;
const SEQ: &[&str] = GOLDEN_SEQ;

/// Runs `experiments/<file>.toml` with `base` and `extra` overrides and
/// compares its metrics with `tests/golden/<case>.csv`.
fn check(case: &str, file: &str, base: &[&str], extra: &[&str], needs_data: bool) {
    let root = root();
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
    let got = golden_form(&std::fs::read_to_string(run.join("metrics.csv")).unwrap());
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
    grid_teacher_rollout_eval: "grid_d4_h32_teacher", GRID, ["eval.method=rollout"], false;
    grid_teacher_loss_buffer: "grid_d4_h32_teacher", GRID, ["buffer.kind=terminal", "buffer.priority=loss", "behaviour.epsilon=0.05"], false;
    grid_tb_prt_pre_fix: "grid_d4_h32_tb_prt", GRID, ["buffer.pre_fix_pairing=true"], false;
    grid_tb_reference_edge_pb: "grid_d4_h32_tb", GRID, ["env.reference_edge_pb=true"], false;
    tfbind8_teacher_prt: "tfbind8_teacher_prt", SEQ, [], true;
    tfbind8_tb_per: "tfbind8_tb_per", SEQ, [], true;
    tfbind8_teacher_ls: "tfbind8_teacher", SEQ, ["local_search.kind=back_and_forth"], true;
    qm9_teacher_per: "qm9_teacher_per", SEQ, [], true;
    qm9_tb_prt_ls: "qm9_tb_prt", SEQ, ["local_search.kind=back_and_forth"], true;
    qm9_teacher_insert: "qm9_teacher", SEQ, ["env.mdp=insert", "buffer.priority=uniform"], true;
    seh_tb_per: "seh_tb_per", SEQ, ["train.steps=3", "policy.hidden=16", "eval.every=1"], true;
}

/// The compatibility switches change the numbers (their goldens differ from
/// the defaults' from the first trained row on) and are recorded in the run's
/// config.toml only when on.
#[test]
fn compatibility_switches_change_the_run_and_are_recorded() {
    let golden = |case: &str| {
        std::fs::read_to_string(root().join("tests/golden").join(format!("{case}.csv"))).unwrap()
    };
    assert_ne!(golden("grid_tb_prt_pre_fix"), golden("grid_tb_prt"));
    assert_ne!(golden("grid_tb_reference_edge_pb"), golden("grid_tb"));
    for (set, key, on) in [
        (
            "buffer.pre_fix_pairing=true",
            "pre_fix_pairing = true",
            true,
        ),
        (
            "env.reference_edge_pb=true",
            "reference_edge_pb = true",
            true,
        ),
        ("buffer.pre_fix_pairing=false", "pre_fix_pairing", false),
    ] {
        let out = tempfile::tempdir().unwrap();
        let o = runner()
            .arg(root().join("experiments/grid_d4_h32_tb_prt.toml"))
            .arg("--out")
            .arg(out.path())
            .args([
                "--set",
                set,
                "--set",
                "train.steps=2",
                "--set",
                "env.horizon=4",
            ])
            .args(["--set", "eval.samples=10", "--set", "eval.plot=false"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{set}: {}", stderr(&o));
        let config =
            std::fs::read_to_string(out.path().join("grid_d4_h32_tb_prt/seed=0/config.toml"))
                .unwrap();
        assert_eq!(config.contains(key), on, "{set}:\n{config}");
    }
}
