//! The `[sweep]` and `[slurm]` tables (their execution: `crate::sweep`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Seeds and parameter values to expand one experiment into many runs.
/// Runs = cartesian product of `grid` x the `zip` groups x `seeds`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SweepConfig {
    /// Seeds of every combination (unset: the experiment's `seed`).
    pub seeds: Vec<u64>,
    /// Dotted key -> list of values; every combination of the lists is run.
    pub grid: BTreeMap<String, Vec<serde_json::Value>>,
    /// Dotted key -> list of values; all lists have one length and are paired
    /// (the i-th values go together), not crossed.
    pub zip: BTreeMap<String, Vec<serde_json::Value>>,
}

/// Resources of the SLURM array written by `runner slurm` (flags override these).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SlurmConfig {
    /// Partition to submit to (unset: the cluster's default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// Time limit of one task, `HH:MM:SS` or any `--time` format.
    pub time: String,
    /// CPUs of one task.
    pub cpus_per_task: usize,
    /// Memory of one task, e.g. `4G`.
    pub mem: String,
    /// Array tasks running at once (the `%K` of `--array=0-N%K`).
    pub concurrency: usize,
    /// Extra `#SBATCH` options, e.g. `["--account=lab", "--qos=short"]`.
    pub extra: Vec<String>,
}

impl Default for SlurmConfig {
    fn default() -> Self {
        Self {
            partition: None,
            time: "04:00:00".into(),
            cpus_per_task: 1,
            mem: "4G".into(),
            concurrency: 8,
            extra: Vec::new(),
        }
    }
}
