//! The experiment file as the user wrote it: its types (serde + schemars)
//! and its loading. Defaults that depend on the environment, range checks
//! and the rules across components are the plan's (`crate::plan`), which
//! turns an [`Experiment`] into what a run executes.
//!
//! Every field carries a `///` comment: it becomes the description in
//! `schemas/experiment.schema.json`.

pub mod keys;
mod load;
mod sweep;

pub use load::{
    load_file, parse_set, ConfigError, ExperimentFile, KindCheck, SetArg, Sources, SWEEP_ORIGIN,
};
pub use sweep::{SlurmConfig, SweepConfig};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::registry::{
    BehaviourConfig, BufferConfig, EnvConfig, LocalSearchConfig, ObjectiveConfig, PolicyConfig,
};

/// One experiment: a composition of named components and the settings of the
/// training loop. `runner FILE` trains it; the resolved form is written next to
/// the results as `config.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Name of the experiment; results go to `<out>/<name>/<run_id>/`.
    pub name: String,
    /// Seed of every random stream of the run (weights, sampling, evaluation).
    #[serde(default)]
    pub seed: u64,
    /// Free-text label of the run, e.g. a method name; handy as a `sweep.zip`
    /// key so that tables name method variants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Compute device: `cpu` (default) or `cuda` (needs a build with the `cuda` feature).
    #[serde(default)]
    pub device: DeviceKind,
    /// Environment: `kind` and its parameters.
    pub env: EnvConfig,
    /// Policy network: `kind` and its parameters.
    pub policy: PolicyConfig,
    /// Training objective: `kind` and its parameters.
    pub objective: ObjectiveConfig,
    /// Behaviour policy (source of the training batches): `kind` and its parameters.
    pub behaviour: BehaviourConfig,
    /// Replay buffer (optional): `kind` and its parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buffer: Option<BufferConfig>,
    /// Local search (optional): `kind` and its parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_search: Option<LocalSearchConfig>,
    /// Training-loop settings.
    #[serde(default)]
    pub train: TrainConfig,
    /// Evaluation settings.
    #[serde(default)]
    pub eval: EvalConfig,
    /// Seeds and parameter grids expanding this experiment into several runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepConfig>,
    /// Resources of the SLURM job array written by `runner slurm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm: Option<SlurmConfig>,
}

/// Where tensors live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    /// The CPU (bit-for-bit reproducible).
    #[default]
    Cpu,
    /// The first CUDA GPU (requires building with `--features cuda`).
    Cuda,
}

/// How the grid's evaluation obtains the student's terminal distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EvalMethod {
    /// Dynamic programming over every state: the exact distribution, and
    /// evaluation samples drawn from it.
    Exact,
    /// Evaluation samples from rollouts of the policy.
    Rollout,
}

/// Settings of the training loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Number of training steps (one batch and one optimisation step each);
    /// on the sequence tasks, the number of rounds (an online and an offline
    /// batch each). Unset: the paper's budget for the environment
    /// (docs/grid.md "Budgets"; docs/discovery.md task table: qm9str 1000,
    /// sehstr and tfbind8 2000 rounds); the resolved `config.toml` records it.
    /// Either budget is multiplied by `budget_scale`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<u64>,
    /// Multiplies the training budget: `steps` when set, else the default
    /// budget, rounded, at least 1 (e.g. 0.1 for a quick look at a whole
    /// sweep at a tenth of its budgets). Other step counts (`eval.every`,
    /// `objective.lr_milestones`, `train.checkpoint_every`) are not scaled.
    /// The resolved `config.toml` records the scaled `steps` and a scale of 1.
    pub budget_scale: f64,
    /// Trajectories per training batch. Unset: 16 on the grid, 32 on the
    /// sequence tasks (the references').
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    /// Number of evaluations over training (evenly spaced; one more at step
    /// 0), unless `eval.every` is set.
    pub n_evals: usize,
    /// The `loss` column is the mean training loss over this many last steps.
    pub loss_window: usize,
    /// Show the progress on stderr while training: a bar on a terminal,
    /// else a plain line at each evaluation and every 30 seconds
    /// (`RUNNER_PROGRESS_SECS`; docs/cli.md "Progress").
    pub progress: bool,
    /// Write a checkpoint (`checkpoints/` of the run directory: networks,
    /// optimiser moments, RNG streams, buffers) every this many steps
    /// (rounds, iterations) and at the end; an interrupted run resumes from
    /// its last one. 0: only at the end and when interrupted. Unset: at every
    /// evaluation, at least every 1000 steps. Never changes the results.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint_every: Option<u64>,
    /// How many of the latest checkpoints are kept (older ones are removed
    /// when a new one is written). Unset: 2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_checkpoints: Option<usize>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            steps: None,
            budget_scale: 1.0,
            batch_size: None,
            n_evals: 5,
            loss_window: 100,
            progress: true,
            checkpoint_every: None,
            keep_checkpoints: None,
        }
    }
}

/// Settings of the evaluations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Fresh student samples (epsilon = 0) drawn at each evaluation (grid:
    /// `eval_empirical_l1`; sequence tasks: the on-policy metrics). Unset:
    /// 100000 on the grid, 2048 on the sequence tasks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samples: Option<usize>,
    /// Rollouts per network call while drawing evaluation samples (memory and
    /// speed only, never the numbers). Unset: 10000 on the grid, 256 on the
    /// sequence tasks (whose network scores every child of every state).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    /// Evaluate every this many steps (rounds), and after the last. Unset:
    /// steps / `train.n_evals` on the grid; the task table's interval on the
    /// sequence tasks (qm9str 20, sehstr and tfbind8 50).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub every: Option<u64>,
    /// Number of most recent training samples behind `empirical_l1`. Unset: the
    /// environment's default (grid: 10000 for d=2,H<=256 and d=4,H<=16, else 20000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<usize>,
    /// Samples of the last evaluation on the diffusion energies (model and
    /// exact, for every metric including W2). Unset: 10000 (the
    /// reference's); 0: the same `samples` as every evaluation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub final_samples: Option<usize>,
    /// How the grid's evaluation gets the student's terminal distribution:
    /// `exact` computes it by dynamic programming over every state (one
    /// network pass over the (H-1)^d interior states; also gives
    /// `eval_exact_l1`) and draws the `samples` from it; `rollout` samples
    /// them by rolling the policy out. Both give the same distribution of
    /// samples. Unset: `exact` when the (H-1)^d interior states are no more
    /// than the `samples` x d(H-1) states the rollouts would visit at most,
    /// else `rollout`. Grid only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<EvalMethod>,
    /// Write pictures to `plots/` in the run directory: on the grid, PNG
    /// heatmaps of the target density and of each evaluation's empirical
    /// density (even d only; 4-d grids are folded to 2-d as the paper does);
    /// on the diffusion energies, each evaluation's samples (25GMM over the
    /// target's contours, Manywell's (x0, x1) and (x0, x2) marginals against
    /// exact samples).
    pub plot: bool,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            samples: None,
            batch_size: None,
            every: None,
            window: None,
            final_samples: None,
            method: None,
            plot: true,
        }
    }
}
