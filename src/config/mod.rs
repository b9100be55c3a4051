//! The experiment file: its types (serde + schemars) and its loading.
//!
//! Every field carries a `///` comment: it becomes the description in
//! `schemas/experiment.schema.json`.

mod load;

pub use load::{load, parse_set, ConfigError, SetArg};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::behaviour::{discovery_schedule, paper_schedule, Source, TeacherConfig};
use crate::registry::{
    BehaviourConfig, BufferConfig, EnvConfig, LocalSearchConfig, ObjectiveConfig, PolicyConfig,
};
use crate::sweep::slurm::SlurmConfig;
use crate::sweep::SweepConfig;

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

/// Settings of the training loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Number of training steps (one batch and one optimisation step each);
    /// on the sequence tasks, the number of rounds (an online and an offline
    /// batch each). Unset: the paper's budget for the environment
    /// (spec/grid.md "Budgets"; spec/discovery.md task table: qm9str 1000,
    /// sehstr and tfbind8 2000 rounds); the resolved `config.toml` records it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<u64>,
    /// Multiplies the default budget (when `steps` is unset), e.g. 0.1 for a
    /// quick look at a whole sweep at a tenth of the paper's budgets.
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
    /// Show a progress bar on stderr while training (only when stderr is a terminal).
    pub progress: bool,
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
    /// Write PNG heatmaps of the target density and of each evaluation's
    /// empirical density to `plots/` in the run directory (even d only; 4-d
    /// grids are folded to 2-d as the paper does).
    pub plot: bool,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            samples: None,
            batch_size: None,
            every: None,
            window: None,
            plot: true,
        }
    }
}

impl Experiment {
    /// The training-batch schedule: the behaviour's `schedule`, or the
    /// paper's for the configured behaviour, buffer and local search.
    pub fn schedule(&self) -> Vec<Source> {
        let explicit = match &self.behaviour {
            BehaviourConfig::OnPolicy(b) => b.schedule.clone(),
            BehaviourConfig::Teacher(t) => t.schedule.clone(),
            BehaviourConfig::Gafn(_) => None,
        };
        explicit.unwrap_or_else(|| {
            if self.env.sequence().is_some() {
                return discovery_schedule(
                    matches!(self.behaviour, BehaviourConfig::Teacher(_)),
                    self.local_search.is_some(),
                );
            }
            paper_schedule(
                matches!(self.behaviour, BehaviourConfig::Teacher(_)),
                self.buffer.is_some(),
                self.local_search.is_some(),
            )
        })
    }

    /// The teacher-reward settings: the teacher's, or (for PER without a
    /// teacher) the paper's defaults C = 19, alpha = 0, log.
    pub fn teacher_reward(&self) -> TeacherConfig {
        match &self.behaviour {
            BehaviourConfig::Teacher(t) => t.clone(),
            _ => TeacherConfig::default(),
        }
    }

    /// Checks that serde cannot express: value ranges and cross-component rules.
    /// Returns `(key path, message)` for the first violation.
    pub fn check(&self) -> Result<(), (String, String)> {
        let err = |k: &str, m: String| Err((k.to_string(), m));
        match &self.env {
            EnvConfig::Grid(g) => g.check()?,
            EnvConfig::Qm9Str(c) | EnvConfig::SehStr(c) | EnvConfig::TfBind8(c) => c.check()?,
        }
        match &self.policy {
            PolicyConfig::Mlp(p) => p.check()?,
            PolicyConfig::Ssr(p) => p.check()?,
        }
        match &self.objective {
            ObjectiveConfig::Tb(o) => o.check()?,
            ObjectiveConfig::Db(o) => o.check()?,
        }
        match &self.behaviour {
            BehaviourConfig::OnPolicy(b) => b.check()?,
            BehaviourConfig::Teacher(b) => b.check()?,
            BehaviourConfig::Gafn(b) => b.check()?,
        }
        match &self.buffer {
            Some(BufferConfig::Terminal(b)) => b.check()?,
            Some(BufferConfig::Transition(b)) => b.check()?,
            Some(BufferConfig::Recent(b)) => b.check()?,
            None => {}
        }
        match &self.local_search {
            Some(LocalSearchConfig::BackAndForth(l)) => l.check()?,
            None => {}
        }
        self.check_composition()?;
        if self.train.batch_size == Some(0) {
            return err("train.batch_size", "must be at least 1".into());
        }
        if !(self.train.budget_scale.is_finite() && self.train.budget_scale > 0.0) {
            return err("train.budget_scale", "must be a positive number".into());
        }
        if self.train.steps == Some(0) {
            return err("train.steps", "must be at least 1".into());
        }
        if self.train.n_evals == 0 {
            return err("train.n_evals", "must be at least 1".into());
        }
        if self.train.loss_window == 0 {
            return err("train.loss_window", "must be at least 1".into());
        }
        if self.eval.samples == Some(0) || self.eval.batch_size == Some(0) {
            return err(
                "eval",
                "`samples` and `batch_size` must be at least 1".into(),
            );
        }
        if self.eval.every == Some(0) {
            return err("eval.every", "must be at least 1".into());
        }
        if self.eval.window == Some(0) {
            return err("eval.window", "must be at least 1".into());
        }
        Ok(())
    }
}

impl Experiment {
    /// Rules across components: which buffer goes with which objective, what
    /// the schedule may name.
    fn check_composition(&self) -> Result<(), (String, String)> {
        let err = |k: &str, m: &str| Err((k.to_string(), m.to_string()));
        if self.env.sequence().is_some() {
            return self.check_sequence_composition();
        }
        if let PolicyConfig::Ssr(_) = self.policy {
            return err(
                "policy.kind",
                "`ssr` scores the children of sequence states; the grid uses `mlp`",
            );
        }
        if let Some(BufferConfig::Recent(_)) = self.buffer {
            return err(
                "buffer.kind",
                "`recent` is the sequence tasks' replay; on the grid use `terminal` or `transition`",
            );
        }
        if let Some(LocalSearchConfig::BackAndForth(l)) = &self.local_search {
            l.check_grid()?;
        }
        let db = matches!(self.objective, ObjectiveConfig::Db(_));
        match (&self.buffer, db) {
            (Some(BufferConfig::Terminal(_)), true) => {
                return err(
                    "buffer.kind",
                    "objective `db` replays transitions: use `kind = \"transition\"`",
                )
            }
            (Some(BufferConfig::Transition(_)), false) => {
                return err(
                    "buffer.kind",
                    "a `transition` buffer needs objective `db`; use `kind = \"terminal\"`",
                )
            }
            _ => {}
        }
        if let BehaviourConfig::Gafn(_) = self.behaviour {
            if db {
                return err(
                    "objective.kind",
                    "behaviour `gafn` trains with edge-augmented TB: use objective `tb`",
                );
            }
            if self.buffer.is_some() || self.local_search.is_some() {
                return err(
                    "behaviour.kind",
                    "behaviour `gafn` uses no `[buffer]` and no `[local_search]`",
                );
            }
        }
        let schedule = self.schedule();
        if schedule.is_empty() {
            return err("behaviour.schedule", "must list at least one source");
        }
        let teacher = matches!(self.behaviour, BehaviourConfig::Teacher(_));
        for s in &schedule {
            if s.teacher() && !teacher {
                return err(
                    "behaviour.schedule",
                    "`teacher` sources need `behaviour.kind = \"teacher\"`",
                );
            }
            if *s == Source::Buffer && self.buffer.is_none() {
                return err(
                    "behaviour.schedule",
                    "`buffer` sources need a `[buffer]` table",
                );
            }
            if s.local_search() && self.local_search.is_none() {
                return err(
                    "behaviour.schedule",
                    "`+ls` sources need a `[local_search]` table",
                );
            }
        }
        if !schedule.iter().any(|s| s.is_fresh()) {
            return err(
                "behaviour.schedule",
                "needs at least one sampling source besides `buffer`",
            );
        }
        Ok(())
    }
}

impl Experiment {
    /// Composition rules of the sequence tasks (spec/discovery.md).
    fn check_sequence_composition(&self) -> Result<(), (String, String)> {
        let err = |k: &str, m: &str| Err((k.to_string(), m.to_string()));
        if !matches!(self.policy, PolicyConfig::Ssr(_)) {
            return err(
                "policy.kind",
                "sequence tasks use the `ssr` policy (encoder + pair scorer)",
            );
        }
        // Decision: DB/SubTB and GAFN exist for the grid only so far; say so
        // rather than train something else.
        if !matches!(self.objective, ObjectiveConfig::Tb(_)) {
            return err(
                "objective.kind",
                "sequence tasks train with `tb` (db is implemented for the grid only)",
            );
        }
        if let BehaviourConfig::Gafn(_) = self.behaviour {
            return err(
                "behaviour.kind",
                "sequence tasks support `on_policy` and `teacher` (gafn is implemented for the grid only)",
            );
        }
        match &self.buffer {
            Some(BufferConfig::Recent(_)) | None => {}
            Some(_) => return err(
                "buffer.kind",
                "sequence tasks replay with `kind = \"recent\"` (the last distinct discoveries)",
            ),
        }
        if let Some(LocalSearchConfig::BackAndForth(l)) = &self.local_search {
            l.check_sequence()?;
        }
        let schedule = self.schedule();
        if schedule.is_empty() {
            return err("behaviour.schedule", "must list at least one source");
        }
        let teacher = matches!(self.behaviour, BehaviourConfig::Teacher(_));
        for s in &schedule {
            if *s == Source::Buffer {
                return err(
                    "behaviour.schedule",
                    "sequence tasks replay every round after the online batch: the schedule lists only `student`, `teacher`, `student+ls`, `teacher+ls`",
                );
            }
            if s.teacher() && !teacher {
                return err(
                    "behaviour.schedule",
                    "`teacher` sources need `behaviour.kind = \"teacher\"`",
                );
            }
            if s.local_search() && self.local_search.is_none() {
                return err(
                    "behaviour.schedule",
                    "`+ls` sources need a `[local_search]` table",
                );
            }
        }
        Ok(())
    }
}
