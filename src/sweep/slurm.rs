//! SLURM job arrays: one array task per run of a sweep
//! (`runner FILE --index $SLURM_ARRAY_TASK_ID`), then `runner collect FILE`.

use std::path::Path;

use super::RunSpec;
use crate::config::SlurmConfig;

/// Quote for a POSIX shell.
pub fn sh(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// `s` with control characters (line breaks included) shown as `?`, for a
/// comment line of the script.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The command that collects the runs of `file` once the array is done,
/// with the invocation's `--out` and `--set` flags (without them `collect`
/// would look for other runs, or for none), every argument quoted.
pub fn collect_command(file: &Path, out: &Path, sets: &[String]) -> String {
    let mut cmd = format!(
        "runner collect {} --out {}",
        sh(&file.display().to_string()),
        sh(&out.display().to_string())
    );
    for set in sets {
        cmd.push_str(&format!(" --set {}", sh(set)));
    }
    cmd
}

/// What the requeue part of the script does, as its comment.
const REQUEUE_COMMENT: &str = "\
# SLURM sends USR1 to this shell `requeue_grace` seconds before the time
# limit: the runner is asked to stop (SIGTERM), writes a checkpoint and exits
# 130, and the task is requeued; it resumes from the checkpoint. A SIGTERM
# of scancel reaches the runner directly: it stops the same way, and the task
# is not requeued.
";

/// The end of the script with requeue: wait for the runner (again after
/// the signal interrupted the wait), requeue the task when it stopped at
/// the limit, and exit with the runner's status.
const REQUEUE_TAIL: &str = "\
pid=$!
set +e
wait \"$pid\"
status=$?
if [ \"$near_limit\" = 1 ] && [ \"$status\" -gt 128 ]; then
    while kill -0 \"$pid\" 2>/dev/null; do sleep 1; done
    wait \"$pid\"
    status=$?
fi
if [ \"$near_limit\" = 1 ] && [ \"$status\" = 130 ]; then
    scontrol requeue \"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}\"
fi
exit \"$status\"
";

/// The sbatch script of the array running `specs`: task k runs
/// `runner FILE --index k` with the same overrides. `runner`, `file`, `out`
/// and `workdir` should be absolute. Every path and override on the command
/// line is single-quoted; `cfg` must have passed [`SlurmConfig::check`]. The
/// log directory goes into an `#SBATCH --output=` line, where quoting is not
/// available: an `out` with spaces, quotes or control characters is an error.
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
) -> Result<String, String> {
    let name = specs
        .first()
        .map(|s| s.plan.resolved.name.as_str())
        .unwrap_or("sweep");
    let logs = out.join(name).join("slurm");
    let logs_text = logs.display().to_string();
    if logs_text
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "'\"\\$`".contains(c))
    {
        return Err(format!(
            "the SLURM log directory {logs_text:?} has spaces, quotes or control characters, \
             which an #SBATCH --output line cannot carry; choose an --out without them"
        ));
    }
    let mut s = String::from("#!/bin/bash\n");
    s.push_str(&format!("#SBATCH --job-name={name}\n"));
    s.push_str(&format!(
        "#SBATCH --array=0-{}%{}\n",
        specs.len().saturating_sub(1),
        cfg.concurrency.max(1)
    ));
    s.push_str(&format!("#SBATCH --output={logs_text}/%A_%a.out\n"));
    s.push_str(&format!(
        "#SBATCH --cpus-per-task={}\n",
        cfg.cpus_per_task.max(1)
    ));
    s.push_str(&format!("#SBATCH --mem={}\n", cfg.mem));
    s.push_str(&format!("#SBATCH --time={}\n", cfg.time));
    if let Some(p) = &cfg.partition {
        s.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    if cfg.requeue_grace > 0 {
        s.push_str("#SBATCH --requeue\n");
        s.push_str(&format!("#SBATCH --signal=B:USR1@{}\n", cfg.requeue_grace));
    }
    for e in &cfg.extra {
        s.push_str(&format!("#SBATCH {e}\n"));
    }
    s.push_str(&format!(
        "# {} runs of {}; afterwards: {}\n",
        specs.len(),
        printable(&file.display().to_string()),
        printable(&collect_command(file, out, sets))
    ));
    s.push_str("set -euo pipefail\n");
    s.push_str(&format!("cd {}\n", sh(&workdir.display().to_string())));
    let mut cmd = format!(
        "{} {} --index \"$SLURM_ARRAY_TASK_ID\" --out {}",
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
    if cfg.requeue_grace == 0 {
        s.push_str(&format!("exec {cmd}\n"));
        return Ok(s);
    }
    s.push_str(&format!("{}\n", REQUEUE_COMMENT.trim_end()));
    s.push_str("near_limit=0\n");
    s.push_str("trap 'near_limit=1; kill -TERM \"$pid\" 2>/dev/null || true' USR1\n");
    s.push_str(&format!("{cmd} &\n"));
    s.push_str(REQUEUE_TAIL);
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The collect hint repeats the results root and every override, quoted.
    #[test]
    fn collect_command_repeats_out_and_sets() {
        let c = collect_command(
            Path::new("e x.toml"),
            Path::new("/scratch/r"),
            &["seed=1".into(), "label=it's".into()],
        );
        assert_eq!(
            c,
            "runner collect 'e x.toml' --out '/scratch/r' --set 'seed=1' --set 'label=it'\\''s'"
        );
    }
}
