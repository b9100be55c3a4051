//! SLURM job arrays: one array task per run of a sweep
//! (`runner FILE --index $SLURM_ARRAY_TASK_ID`), then `runner collect FILE`.

use std::path::Path;

use super::RunSpec;
use crate::config::SlurmConfig;

/// Quote for a POSIX shell.
fn sh(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The sbatch script of the array running `specs`: task k runs
/// `runner FILE --index k` with the same overrides. `runner`, `file`, `out`
/// and `workdir` should be absolute.
#[allow(clippy::too_many_arguments)]
pub fn script(
    specs: &[RunSpec],
    cfg: &SlurmConfig,
    runner: &Path,
    file: &Path,
    out: &Path,
    workdir: &Path,
    sets: &[String],
    datasets: Option<&Path>,
) -> String {
    let name = specs
        .first()
        .map(|s| s.plan.resolved.name.as_str())
        .unwrap_or("sweep");
    let logs = out.join(name).join("slurm");
    let mut s = String::from("#!/bin/bash\n");
    s.push_str(&format!("#SBATCH --job-name={name}\n"));
    s.push_str(&format!(
        "#SBATCH --array=0-{}%{}\n",
        specs.len().saturating_sub(1),
        cfg.concurrency.max(1)
    ));
    s.push_str(&format!("#SBATCH --output={}/%A_%a.out\n", logs.display()));
    s.push_str(&format!(
        "#SBATCH --cpus-per-task={}\n",
        cfg.cpus_per_task.max(1)
    ));
    s.push_str(&format!("#SBATCH --mem={}\n", cfg.mem));
    s.push_str(&format!("#SBATCH --time={}\n", cfg.time));
    if let Some(p) = &cfg.partition {
        s.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    for e in &cfg.extra {
        s.push_str(&format!("#SBATCH {e}\n"));
    }
    s.push_str(&format!(
        "# {} runs of {}; afterwards: runner collect {}\n",
        specs.len(),
        file.display(),
        file.display()
    ));
    s.push_str("set -euo pipefail\n");
    s.push_str(&format!("cd {}\n", sh(&workdir.display().to_string())));
    let mut cmd = format!(
        "exec {} {} --index \"$SLURM_ARRAY_TASK_ID\" --out {}",
        sh(&runner.display().to_string()),
        sh(&file.display().to_string()),
        sh(&out.display().to_string())
    );
    for set in sets {
        cmd.push_str(&format!(" --set {}", sh(set)));
    }
    if let Some(d) = datasets {
        cmd.push_str(&format!(" --datasets {}", sh(&d.display().to_string())));
    }
    s.push_str(&cmd);
    s.push('\n');
    s
}
