//! The plan of a run: the experiment resolved into what the trainer executes.
//!
//! [`resolve`] is the one place where an [`Experiment`] (what the user wrote)
//! is checked and completed: every component's ranges, the rules across
//! components, the defaults that depend on the environment (budget, batch
//! sizes, evaluation cadence, buffer sizes, local-search settings) and the
//! schedule. It returns a [`Plan`] whose fields hold no unresolved option and
//! no impossible combination, or an [`Invalid`] naming the key. Code after
//! this point (the trainer, the family adapters) takes the plan and never
//! re-checks it.
//!
//! The environment kind selects the family here, once: [`grid`],
//! [`sequence`] and [`diffusion`] hold what is particular to each.

pub mod diffusion;
pub mod grid;
pub mod sequence;

use std::path::Path;

use crate::behaviour::teacher::{RewardForm, TeacherReward};
use crate::behaviour::{Source, Step, TeacherConfig};
use crate::check::{self, Invalid};
use crate::config::{self, ConfigError, DeviceKind, Experiment, SetArg};
use crate::objective::{ObjectiveDefaults, ObjectiveKind};
use crate::optim::ClipScope;
use crate::registry::{
    BehaviourConfig, BufferConfig, EnvFamily, LocalSearchConfig, ObjectiveConfig, PolicyConfig,
};
use crate::search::BackAndForthConfig;

/// Everything a run executes, resolved.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The experiment with every default filled in: written as the run's
    /// `config.toml` (runnable as is) and compared when a sweep resumes.
    pub resolved: Experiment,
    /// Seed of every random stream.
    pub seed: u64,
    /// Where tensors live.
    pub device: DeviceKind,
    /// Training steps (rounds on the sequence tasks).
    pub steps: u64,
    /// Trajectories per sampled batch.
    pub batch_size: usize,
    /// The batches of step i: `schedule[i % len]` (non-empty, every step non-empty).
    pub schedule: Vec<Step>,
    /// Uniform exploration mixed into training rollouts.
    pub epsilon: f64,
    /// The student's sampler.
    pub student: SamplerPlan,
    /// The teacher's sampler, with a teacher.
    pub teacher: Option<SamplerPlan>,
    /// Learning-rate decay of both samplers.
    pub lr_schedule: LrSchedule,
    /// The teacher reward: the teacher's target and the PER priority.
    pub teacher_reward: TeacherReward,
    /// Evaluation cadence and size.
    pub eval: EvalPlan,
    /// The `loss` columns average this many last batches.
    pub loss_window: usize,
    /// Show the progress on stderr (a bar on a terminal, else lines).
    pub progress: bool,
    /// Checkpoint every this many steps (0: only at the end and when
    /// interrupted); `train.checkpoint_every`, by default the evaluation
    /// interval capped at [`DEFAULT_CHECKPOINT_EVERY`].
    pub checkpoint_every: u64,
    /// Checkpoints kept (`train.keep_checkpoints`, at least 1).
    pub keep_checkpoints: usize,
    /// What a `buffer` source does when the buffer cannot give a batch.
    pub short_buffer: ShortBuffer,
    /// The objective's learning-rate keys, for the advice of a diverging loss.
    pub lr_keys: &'static str,
    /// The keys that set the magnitude of a loss (a reward exponent, log
    /// Z's initial value, an exploration...) with their values, for the
    /// advice of a loss that overflows ([`MAGNITUDE_KEYS`] present in the
    /// resolved experiment).
    pub magnitudes: Vec<(String, f64)>,
    /// What is legal but likely a mistake (a `[buffer]` the schedule never
    /// reads); the command line prints them.
    pub warnings: Vec<Warning>,
    /// What is particular to the environment's family.
    pub family: FamilyPlan,
}

impl Plan {
    /// The run's training cost in units of one fresh student batch (sampled
    /// and trained on), to start a sweep's longest runs first. Only the
    /// order of the runs depends on it, never a result. Per batch: sampling
    /// 0.5, each network trained on it 0.5 (the student, and the teacher when
    /// there is one), so a buffer batch of a student-only run costs 0.5 and
    /// a Teacher run's batch 1.5 (measured on the d=4, H=32 grid: 0.56 and
    /// 1.36 of a TB step; evaluations are not counted).
    pub fn relative_cost(&self) -> f64 {
        let networks = if self.teacher.is_some() { 2.0 } else { 1.0 };
        let per_period: f64 = self
            .schedule
            .iter()
            .flat_map(|step| step.sources())
            .map(|s| {
                let sample = if s.is_fresh() { 0.5 } else { 0.0 };
                let train = if s.trains() { 0.5 * networks } else { 0.0 };
                sample + train
            })
            .sum();
        self.steps as f64 * per_period / self.schedule.len().max(1) as f64
    }
}

/// What a `buffer` source does when the buffer cannot give a batch (it is
/// empty, or below its `min_size`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShortBuffer {
    /// Train on a fresh student batch instead (the grid's buffers).
    Student,
    /// Skip the batch (the sequence tasks' `recent` buffer).
    Skip,
}

/// The environment family of a run and its resolved settings.
#[derive(Debug, Clone)]
pub enum FamilyPlan {
    /// The deceptive gridworld.
    Grid(grid::GridPlan),
    /// A sequence task of the discovery study.
    Sequence(sequence::SequencePlan),
    /// A diffusion sampler on a continuous energy.
    Diffusion(diffusion::DiffusionPlan),
}

impl FamilyPlan {
    /// What a training step of the family is called, in the plural: a
    /// round (an online and an offline batch) on the sequence tasks, an
    /// iteration on the diffusion energies.
    pub fn unit(&self) -> &'static str {
        match self {
            FamilyPlan::Grid(_) => "steps",
            FamilyPlan::Sequence(_) => "rounds",
            FamilyPlan::Diffusion(_) => "iterations",
        }
    }

    /// Where the defaults this family fills in come from, as `runner show`
    /// names them.
    pub fn defaults_origin(&self) -> String {
        match self {
            FamilyPlan::Grid(_) => "grid default (docs/grid.md)".into(),
            FamilyPlan::Sequence(s) => format!("task table ({})", s.task.name()),
            FamilyPlan::Diffusion(_) => "diffusion default (docs/diffusion.md)".into(),
        }
    }
}

/// Step-wise learning-rate decay (PyTorch's `MultiStepLR`): at iteration i
/// every learning rate is multiplied by `gamma^(number of milestones <= i)`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LrSchedule {
    /// Iterations at which the rates are multiplied by `gamma` (increasing).
    pub milestones: Vec<u64>,
    /// The factor.
    pub gamma: f64,
}

impl LrSchedule {
    /// The factor of every learning rate at iteration `i`.
    pub fn scale(&self, i: u64) -> f64 {
        let n = self.milestones.iter().filter(|&&m| m <= i).count();
        self.gamma.powi(n as i32)
    }
}

/// A sampler's trainable parts and optimiser settings (student or teacher).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplerPlan {
    /// Adam learning rate of the policy network.
    pub lr: f64,
    /// The learned log Z (TB, SubTB); `None` for DB, which learns a state flow.
    pub log_z: Option<LogZPlan>,
    /// Clip the global gradient norm to this.
    pub clip: Option<f64>,
    /// Which variables the clip measures and scales.
    pub clip_scope: ClipScope,
    /// Coupled L2 weight decay of every variable (0: none).
    pub weight_decay: f64,
    /// The objective the sampler is trained with.
    pub objective: ObjectiveKind,
    /// The loss is the objective's times this (1; the diffusion family's
    /// 0.5, its loss being 0.5 delta^2).
    pub loss_scale: f64,
}

impl SamplerPlan {
    /// TB's clamp of each squared residual (0: none; the other objectives
    /// have none): also the clamp of the teacher reward.
    pub fn loss_clamp(&self) -> f64 {
        self.objective.loss_clamp()
    }
}

pub use crate::objective::LogZPlan;

/// When and how the student is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvalPlan {
    /// Every this many steps (and after the last, and at step 0).
    pub every: u64,
    /// Fresh student samples per evaluation.
    pub samples: usize,
    /// Rollouts per network call while evaluating.
    pub batch_size: usize,
}

/// The defaults a family fills in, and how it shapes the teacher reward.
pub(crate) struct FamilyDefaults {
    pub steps: u64,
    pub batch_size: usize,
    pub schedule: Vec<Step>,
    pub eval: EvalPlan,
    pub reward_form: RewardForm,
    /// The squared residual enters the teacher reward times this (1; the
    /// diffusion family's 0.5, its loss 0.5 delta^2).
    pub loss_scale: f64,
    pub short_buffer: ShortBuffer,
    /// The teacher's clip scope when its table leaves it unset.
    pub clip_scope: ClipScope,
}

/// The longest default interval between checkpoints, in steps.
pub const DEFAULT_CHECKPOINT_EVERY: u64 = 1000;

/// Sequence networks at least this wide have products large enough for
/// every core.
pub const WIDE_SSR: usize = 512;

/// Whether `exp` trains large matrix products, enough to use every core: a
/// diffusion sampler's (`[T * B, 256] x [256, 256]`), or a sequence network's
/// at least [`WIDE_SSR`] wide (QM9's 1024). The command line runs other
/// experiments on one thread (their products are too small for a
/// multithreaded gemm to pay). Decided on the experiment as written, before
/// it is resolved (and before any thread starts).
pub fn large_products(exp: &Experiment) -> bool {
    match &exp.policy {
        PolicyConfig::Diffusion(_) => true,
        PolicyConfig::Ssr(p) => p
            .hidden
            .or_else(|| match exp.env.family() {
                Ok(EnvFamily::Sequence(task, _)) => Some(task.spec().hidden),
                _ => None,
            })
            .is_some_and(|h| h >= WIDE_SSR),
        PolicyConfig::Mlp(_) => false,
    }
}

/// Load `path` (with `sets` on top) and resolve it: the checked plan of one run.
pub fn load(path: &Path, sets: &[SetArg]) -> Result<Plan, ConfigError> {
    load_file(&config::ExperimentFile::read(path)?, sets)
}

/// [`load`] of a file already read.
pub fn load_file(file: &config::ExperimentFile, sets: &[SetArg]) -> Result<Plan, ConfigError> {
    let (exp, sources) = load_experiment(file, sets)?;
    resolve(&exp).map_err(|e| sources.invalid(&e))
}

/// The experiment of `file` with `sets`, loaded but not resolved; when it
/// does not load, a component kind its environment refuses is reported
/// before the keys of that component's table.
pub fn load_experiment(
    file: &config::ExperimentFile,
    sets: &[SetArg],
) -> Result<(Experiment, config::Sources), ConfigError> {
    config::load_file(file, sets, |exp| resolve(exp).err())
}

/// Check `exp` and resolve it into a [`Plan`] (see the module documentation).
pub fn resolve(written: &Experiment) -> Result<Plan, Invalid> {
    check_finite(written)?;
    crate::check::path_component("name", &written.name)?;
    written.env.check()?;
    // The one place where the environment kind selects a family.
    let env = written.env.family()?;
    let exp = &with_defaults(written, &env);
    check_components(exp)?;
    check_settings(exp)?;
    let exp = &*explicit_steps_scaled(exp);
    let mut resolved = exp.clone();
    let (family, defaults) = match env {
        EnvFamily::Grid(g) => grid::resolve(exp, g, &mut resolved)?,
        EnvFamily::Sequence(task, c) => sequence::resolve(exp, task, &c, &mut resolved)?,
        EnvFamily::Diffusion(target, c) => diffusion::resolve(exp, target, &c, &mut resolved)?,
    };
    check_schedule(exp, &defaults.schedule)?;
    let warnings = unread_buffer(exp, &defaults.schedule).into_iter().collect();
    if exp.eval.method.is_some() && !matches!(family, FamilyPlan::Grid(_)) {
        return Err(Invalid::new(
            "eval.method",
            "chooses how the grid's terminal distribution is evaluated; the other environments take no `method`: remove it",
        ));
    }
    // The recorded steps are the ones trained: the scale is applied.
    resolved.train.budget_scale = 1.0;
    match &mut resolved.behaviour {
        BehaviourConfig::OnPolicy(b) => b.schedule = Some(defaults.schedule.clone()),
        BehaviourConfig::Teacher(t) => t.schedule = Some(defaults.schedule.clone()),
        BehaviourConfig::Gafn(_) => {}
    }
    let student = sampler_plan(&exp.objective, None, defaults.loss_scale);
    let (epsilon, teacher, teacher_cfg) = match &exp.behaviour {
        BehaviourConfig::OnPolicy(b) => (b.epsilon(), None, TeacherConfig::default()),
        BehaviourConfig::Teacher(t) => {
            let mut plan = sampler_plan(&exp.objective, t.lr, defaults.loss_scale);
            if let Some(c) = t.clip_grad_norm {
                plan.clip = (c > 0.0).then_some(c);
            }
            plan.clip_scope = t.clip_scope.unwrap_or(defaults.clip_scope);
            (t.epsilon(), Some(plan), t.clone())
        }
        BehaviourConfig::Gafn(g) => (g.epsilon, None, TeacherConfig::default()),
    };
    if teacher.is_some_and(|t| t.clip_scope == ClipScope::TimeEncoder)
        && !matches!(exp.policy, PolicyConfig::Diffusion(_))
    {
        return Err(Invalid::new(
            "behaviour.clip_scope",
            "`time_encoder` needs the `diffusion` policy (the only one with a time encoder); allowed here: `all`",
        ));
    }
    let pieces = matches!(student.objective, ObjectiveKind::SubTb(_));
    check_memory(&family, pieces, defaults.batch_size, &defaults.eval)?;
    let checkpoint_every = exp
        .train
        .checkpoint_every
        .unwrap_or(defaults.eval.every.min(DEFAULT_CHECKPOINT_EVERY));
    Ok(Plan {
        seed: exp.seed,
        device: exp.device,
        steps: defaults.steps,
        batch_size: defaults.batch_size,
        schedule: defaults.schedule,
        epsilon,
        student,
        teacher,
        lr_schedule: lr_schedule(&exp.objective),
        teacher_reward: teacher_cfg
            .reward(defaults.reward_form, student.loss_clamp())
            .with_loss_scale(defaults.loss_scale),
        eval: defaults.eval,
        loss_window: exp.train.loss_window,
        progress: exp.train.progress,
        checkpoint_every,
        keep_checkpoints: exp.train.keep_checkpoints.unwrap_or(2),
        short_buffer: defaults.short_buffer,
        lr_keys: exp.objective.table().settings().lr_keys(),
        magnitudes: magnitudes(&resolved),
        warnings,
        family,
        resolved,
    })
}

/// What differs between the environments' defaults of the components' keys
/// (the sequence tasks' come from their task table, `sequence::defaults`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ComponentDefaults {
    /// The `[objective]` keys.
    pub objective: ObjectiveDefaults,
    /// The teacher's own learning rate (`None`: the objective's).
    pub teacher_lr: Option<f64>,
    /// The exponent of R in the teacher reward (`behaviour.alpha`).
    pub teacher_alpha: f64,
    /// The exploration of training rollouts (`behaviour.epsilon`).
    pub epsilon: f64,
    /// The `ssr` policy's width (`policy.hidden`), where the family has one.
    pub hidden: Option<usize>,
}

impl ComponentDefaults {
    /// The defaults of the grid and the diffusion energies (docs/grid.md).
    pub const GENERIC: ComponentDefaults = ComponentDefaults {
        objective: ObjectiveDefaults::GENERIC,
        teacher_lr: None,
        teacher_alpha: 0.0,
        epsilon: 0.0,
        hidden: None,
    };
}

/// `exp` with every key whose default depends on the environment filled in
/// ([`ComponentDefaults`]: the objective's optimiser settings, the
/// teacher's learning rate and alpha, the exploration, the `ssr` width), so
/// that a file that leaves them unset gets the environment's paper values
/// and the resolved config records them.
fn with_defaults(exp: &Experiment, env: &EnvFamily) -> Experiment {
    let d = match env {
        EnvFamily::Sequence(task, _) => sequence::defaults(*task),
        EnvFamily::Grid(_) | EnvFamily::Diffusion(..) => ComponentDefaults::GENERIC,
    };
    let mut exp = exp.clone();
    exp.objective.table_mut().fill(&d.objective);
    match &mut exp.behaviour {
        BehaviourConfig::OnPolicy(b) => {
            b.epsilon.get_or_insert(d.epsilon);
        }
        BehaviourConfig::Teacher(t) => {
            t.epsilon.get_or_insert(d.epsilon);
            t.alpha.get_or_insert(d.teacher_alpha);
            t.lr = t.lr.or(d.teacher_lr);
        }
        BehaviourConfig::Gafn(_) => {}
    }
    if let PolicyConfig::Ssr(p) = &mut exp.policy {
        p.hidden = p.hidden.or(d.hidden);
    }
    exp
}

/// Something legal but likely a mistake, found while resolving.
#[derive(Debug, Clone, PartialEq)]
pub struct Warning {
    /// The key it is about (warnings about the same key are the same warning).
    pub key: &'static str,
    /// What is wrong, naming the keys.
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The warning of a `[buffer]` that no step of `schedule` reads: no
/// `buffer` source, and no MALA local search (which refines buffer
/// samples), so the buffer is filled and never replayed. A warning, not an
/// error: a sweep may share one `[buffer]` table between methods that
/// replay and methods that do not (experiments/paper_grid_d4_h32.toml), and
/// no `--set` can remove a table from a file.
fn unread_buffer(exp: &Experiment, schedule: &[Step]) -> Option<Warning> {
    let buffer = exp.buffer.as_ref()?;
    let mala = matches!(exp.local_search, Some(LocalSearchConfig::Mala(_)));
    let reads = schedule
        .iter()
        .flat_map(Step::sources)
        .any(|s| *s == Source::Buffer || (mala && s.local_search()));
    if reads {
        return None;
    }
    let written = toml::Value::try_from(schedule)
        .map(|v| v.to_string())
        .unwrap_or_default();
    Some(Warning {
        key: "buffer",
        message: format!(
            "`[buffer]` (`buffer.kind = \"{}\"`) is never read: `behaviour.schedule` = {} has \
             no `buffer` source, so the buffer is filled but never replayed; add `buffer` to \
             the schedule or remove the `[buffer]` table",
            buffer.kind(),
            crate::check::excerpt(&written)
        ),
    })
}

/// The keys that set the size of one trajectory of `family`, each with its
/// value and a usual value (the paper's d = 4, H = 32 grid; the networks'
/// default widths; the diffusion sampler's 100 steps), in the order
/// [`trajectory_bytes`] reads them.
fn size_keys(family: &FamilyPlan) -> Vec<(&'static str, f64, f64)> {
    let f = |x: usize| x as f64;
    match family {
        FamilyPlan::Grid(g) => vec![
            ("env.ndim", f(g.grid.ndim), 4.0),
            ("env.horizon", f(g.grid.horizon), 32.0),
            (
                "policy.hidden",
                f(g.net.hidden),
                f(crate::policy::mlp::MlpConfig::default().hidden),
            ),
        ],
        FamilyPlan::Sequence(s) => vec![("policy.hidden", f(s.hidden), f(s.task.spec().hidden))],
        FamilyPlan::Diffusion(d) => vec![
            (
                "env.steps",
                f(d.sde.steps),
                f(crate::envs::diffusion::DiffusionEnvConfig::default().steps),
            ),
            (
                "policy.hidden",
                f(d.net.hidden),
                f(crate::policy::diffusion::DiffusionNetConfig::default().hidden),
            ),
        ],
    }
}

/// Bytes of tensors one trajectory of `family` needs while a batch is
/// trained or evaluated (activations and their gradients, about 4 floats per
/// unit; with SubTB's `pieces`, its K x K residuals of the K states of the
/// longest trajectory, about 6 tensors of them), with the [`size_keys`] at
/// `sizes`, computed in f64 so that no size can wrap.
fn trajectory_bytes(family: &FamilyPlan, pieces: bool, sizes: &[f64]) -> f64 {
    let f = |x: usize| x as f64;
    let (states, per_state) = match family {
        FamilyPlan::Grid(_) => {
            let (d, h, hidden) = (sizes[0], sizes[1], sizes[2]);
            (d * (h - 1.0) + 1.0, d * h + 4.0 * hidden)
        }
        FamilyPlan::Sequence(s) => {
            let (k, l) = (f(s.task.k()), f(s.task.length()));
            // Every child of every state is encoded: up to 2k + 1 per step.
            (l + 1.0, (2.0 * k + 1.0) * (l * k + 4.0 * sizes[0]))
        }
        FamilyPlan::Diffusion(d) => (sizes[0] + 1.0, 4.0 * f(d.sde.dim) + 8.0 * sizes[1]),
    };
    let subtb = if pieces {
        6.0 * states * states * 4.0
    } else {
        0.0
    };
    states * per_state * 4.0 * 4.0 + subtb
}

/// The memory a run of `family` holds whatever its batch size, in bytes,
/// computed in f64 so that no size can wrap: each entry is the key that
/// drives it, its value, the bytes and what they hold.
/// - the parameters of the student and a teacher, with their gradients and
///   Adam's two moments (4 f32 copies each; the term that grows with the
///   named key: hidden width, layers, time harmonics);
/// - the diffusion evaluation's exact W2: the dense `n x n` f64 matrix of
///   squared distances between n model and n exact samples.
fn fixed_bytes(family: &FamilyPlan, eval: &EvalPlan) -> Vec<(&'static str, f64, f64, String)> {
    let f = |x: usize| x as f64;
    // Two networks (student, teacher), 4 f32 copies of every parameter.
    let params = |n: f64| 2.0 * 4.0 * 4.0 * n;
    let mut out = Vec::new();
    let nets = "the student's and teacher's parameters with gradients and Adam moments";
    match family {
        FamilyPlan::Grid(g) => {
            let (h, layers) = (f(g.net.hidden), f(g.net.layers));
            let inputs = f(g.grid.ndim) * f(g.grid.horizon);
            out.push((
                "policy.hidden",
                h,
                params(h * h * layers + h * inputs),
                nets.to_string(),
            ));
            out.push((
                "policy.layers",
                layers,
                params(h * h * layers),
                nets.to_string(),
            ));
        }
        FamilyPlan::Sequence(s) => {
            let h = f(s.hidden);
            let inputs = f(s.task.length()) * f(s.task.k());
            out.push((
                "policy.hidden",
                h,
                params(4.0 * h * h + h * inputs),
                nets.to_string(),
            ));
        }
        FamilyPlan::Diffusion(d) => {
            let (h, k) = (f(d.net.hidden), f(d.net.harmonics));
            let joint = f(d.net.joint_layers);
            out.push((
                "policy.hidden",
                h,
                params((5.0 + joint) * h * h),
                nets.to_string(),
            ));
            out.push(("policy.harmonics", k, params(2.0 * k * h), nets.to_string()));
            out.push((
                "policy.joint_layers",
                joint,
                params(joint * h * h),
                nets.to_string(),
            ));
            let (key, n) = if d.final_samples > eval.samples {
                ("eval.final_samples", d.final_samples)
            } else {
                ("eval.samples", eval.samples)
            };
            out.push((
                key,
                f(n),
                8.0 * f(n) * f(n),
                format!("the exact W2 of {n} samples (a dense {n} x {n} f64 distance matrix)"),
            ));
        }
    }
    out
}

/// The machine's memory in bytes (`MemTotal` of /proc/meminfo; 64 GiB
/// where it cannot be read).
fn machine_memory() -> f64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            let line = t.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb * 1024.0)
        })
        .unwrap_or(64.0 * (1u64 << 30) as f64)
}

/// The smallest memory limit of [`check_memory`], bytes: a login node may
/// validate or prepare (`runner slurm`) runs for larger compute nodes.
const MIN_MEMORY_LIMIT: f64 = 256.0 * (1u64 << 30) as f64;

/// Refuse batches whose tensors cannot fit in memory before anything is
/// allocated (a huge batch would otherwise abort the process in an
/// allocation). The limit is the larger of this machine's memory and 256
/// GiB. The message names the key that drives the estimate: the batch key
/// when a batch of that many usual trajectories (every [`size_keys`] at its
/// usual value) would not fit either, else the size key whose usual value
/// would shrink the batch the most (`env.steps`, `policy.hidden`...); it
/// gives the other factor too.
fn check_memory(
    family: &FamilyPlan,
    pieces: bool,
    batch: usize,
    eval: &EvalPlan,
) -> Result<(), Invalid> {
    let keys = size_keys(family);
    let sizes: Vec<f64> = keys.iter().map(|k| k.1).collect();
    let usual: Vec<f64> = keys.iter().map(|k| k.2).collect();
    let per = trajectory_bytes(family, pieces, &sizes);
    let have = machine_memory().max(MIN_MEMORY_LIMIT);
    let gib = |b: f64| b / (1u64 << 30) as f64;
    for (batch_key, n) in [
        ("train.batch_size", batch),
        ("eval.batch_size", eval.batch_size),
    ] {
        let n = n as f64;
        let need = per * n;
        if need <= have {
            continue;
        }
        // Each size key at its usual value, the others as given.
        let shrunk = |i: usize| {
            let mut s = sizes.clone();
            s[i] = usual[i].min(sizes[i]);
            trajectory_bytes(family, pieces, &s) * n
        };
        let driver = (0..keys.len())
            .filter(|&i| sizes[i] > usual[i])
            .min_by(|&a, &b| shrunk(a).total_cmp(&shrunk(b)));
        let batch_alone = trajectory_bytes(family, pieces, &usual) * n > have;
        let shape = keys
            .iter()
            .map(|(k, v, _)| format!("`{k}` = {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        let estimate = format!(
            "one batch of {n} trajectories (`{batch_key}`) would need about {:.1} GiB of \
             tensors, {} per trajectory ({shape}), above the limit of {:.0} GiB (the larger \
             of this machine's memory and 256 GiB)",
            gib(need),
            human_bytes(per),
            gib(have)
        );
        return Err(match driver {
            Some(i) if !batch_alone => Invalid::new(
                keys[i].0,
                format!(
                    "is {}: {estimate}; lower `{}` or `{batch_key}`",
                    keys[i].1, keys[i].0
                ),
            ),
            _ => Invalid::new(
                batch_key,
                format!("is {n}: {estimate}; lower `{batch_key}`"),
            ),
        });
    }
    // What the run holds whatever its batch: each alone must fit.
    for (key, value, bytes, what) in fixed_bytes(family, eval) {
        if bytes > have {
            return Err(Invalid::new(
                key,
                format!(
                    "is {value}: {what} would need about {:.1} GiB, above the limit of {:.0} GiB \
                     (the larger of this machine's memory and 256 GiB); lower `{key}`",
                    gib(bytes),
                    gib(have)
                ),
            ));
        }
    }
    Ok(())
}

/// A byte count in the largest binary unit that keeps it at least 1.
fn human_bytes(b: f64) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = b;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} {}", units[u])
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// The sampler of `objective`; `lr` overrides its network learning rate;
/// its loss is scaled by `loss_scale`.
fn sampler_plan(objective: &ObjectiveConfig, lr: Option<f64>, loss_scale: f64) -> SamplerPlan {
    let o = objective.table().settings();
    SamplerPlan {
        lr: lr.unwrap_or(o.lr),
        log_z: o.log_z,
        clip: (o.clip_grad_norm > 0.0).then_some(o.clip_grad_norm),
        clip_scope: ClipScope::All,
        weight_decay: o.weight_decay,
        objective: o.objective,
        loss_scale,
    }
}

/// The objective `exp` names, resolved (for the families' composition rules).
pub(crate) fn objective_kind(exp: &Experiment) -> ObjectiveKind {
    exp.objective.table().settings().objective
}

/// The learning-rate decay of `objective`.
fn lr_schedule(objective: &ObjectiveConfig) -> LrSchedule {
    let o = objective.table().settings();
    LrSchedule {
        milestones: o.lr_milestones,
        gamma: o.lr_gamma,
    }
}

/// Largest learning rate of any optimiser. Adam moves every parameter by
/// about its learning rate per step whatever the gradient's size, so a rate
/// far above the paper's (1e-4 to 1e-1) saturates the network in a step or
/// two: its gradients become exactly zero and its evaluations freeze while
/// the loss still moves with log Z.
pub const MAX_LR: f64 = 10.0;

/// Every learning rate (the objective's, the teacher's own, GAFN's
/// predictor's) is at most [`MAX_LR`], naming the key.
fn check_learning_rates(exp: &Experiment) -> Result<(), Invalid> {
    let o = exp.objective.table().settings();
    let mut rates = vec![("objective.lr", o.lr)];
    if let Some(z) = o.log_z {
        rates.push(("objective.log_z_lr", z.lr));
    }
    match &exp.behaviour {
        BehaviourConfig::Teacher(t) => rates.extend(t.lr.map(|lr| ("behaviour.lr", lr))),
        BehaviourConfig::Gafn(g) => rates.push(("behaviour.rnd_lr", g.rnd_lr)),
        BehaviourConfig::OnPolicy(_) => {}
    }
    for (key, lr) in rates {
        if lr > MAX_LR {
            return Err(Invalid::new(
                key,
                format!(
                    "is {lr:e}; at most {MAX_LR}: Adam moves every parameter by about the \
                     learning rate at each step, so a larger one saturates the network at once \
                     (its gradients become zero and its evaluations stop changing); the \
                     paper's rates are 1e-4 to 1e-1"
                ),
            ));
        }
    }
    Ok(())
}

/// The keys whose values set the magnitude of a loss, besides the learning
/// rates: named when a loss overflows (see `train::watch`).
pub const MAGNITUDE_KEYS: &[&str] = &[
    "policy.exploration",
    "objective.log_z_init",
    "env.beta",
    "env.t_scale",
    "behaviour.c",
    "behaviour.alpha",
    "behaviour.beta_teacher",
    "behaviour.ri_scale",
];

/// The [`MAGNITUDE_KEYS`] of `resolved` with their values (those it has).
fn magnitudes(resolved: &Experiment) -> Vec<(String, f64)> {
    let Ok(value) = toml::Value::try_from(resolved) else {
        return Vec::new();
    };
    MAGNITUDE_KEYS
        .iter()
        .filter_map(|key| {
            let v = key.split('.').try_fold(&value, |v, part| v.get(part))?;
            let x = match v {
                toml::Value::Float(f) => *f,
                toml::Value::Integer(i) => *i as f64,
                _ => return None,
            };
            Some((key.to_string(), x))
        })
        .collect()
}

/// Largest `train.budget_scale`: a thousand times the paper's budgets.
pub const MAX_BUDGET_SCALE: f64 = 1000.0;

/// Every float of the experiment, at any depth, is finite: a NaN or an
/// infinity is refused with its key, whatever the field, before any range
/// check could let it through (NaN fails no comparison).
fn check_finite(exp: &Experiment) -> Result<(), Invalid> {
    fn walk(key: &str, v: &toml::Value) -> Result<(), Invalid> {
        match v {
            toml::Value::Float(f) if !f.is_finite() => Err(Invalid::new(
                key,
                format!("is {f}; must be a finite number"),
            )),
            toml::Value::Table(t) => t.iter().try_for_each(|(k, v)| {
                let key = if key.is_empty() {
                    k.clone()
                } else {
                    format!("{key}.{k}")
                };
                walk(&key, v)
            }),
            toml::Value::Array(a) => a
                .iter()
                .enumerate()
                .try_for_each(|(i, v)| walk(&format!("{key}[{i}]"), v)),
            _ => Ok(()),
        }
    }
    match toml::Value::try_from(exp) {
        Ok(v) => walk("", &v),
        Err(e) => Err(Invalid::new(
            "",
            format!("cannot be represented as TOML: {e}"),
        )),
    }
}

/// Every component's own range checks (the environment's come first, in
/// [`resolve`]).
fn check_components(exp: &Experiment) -> Result<(), Invalid> {
    if let Some(slurm) = &exp.slurm {
        slurm.check()?;
    }
    match &exp.policy {
        PolicyConfig::Mlp(p) => p.check()?,
        PolicyConfig::Ssr(p) => p.check()?,
        PolicyConfig::Diffusion(p) => p.check()?,
    }
    let objective = exp.objective.table();
    objective.settings().check()?;
    objective.check()?;
    check_learning_rates(exp)?;
    match &exp.behaviour {
        BehaviourConfig::OnPolicy(b) => b.check()?,
        BehaviourConfig::Teacher(b) => b.check()?,
        BehaviourConfig::Gafn(b) => b.check()?,
    }
    match &exp.buffer {
        Some(BufferConfig::Terminal(b)) => b.check()?,
        Some(BufferConfig::Transition(b)) => b.check()?,
        Some(BufferConfig::Recent(b)) => b.check()?,
        None => {}
    }
    match &exp.local_search {
        Some(LocalSearchConfig::BackAndForth(l)) => l.check(),
        Some(LocalSearchConfig::Mala(l)) => l.check(),
        None => Ok(()),
    }
}

/// Ranges of the `[train]` and `[eval]` tables.
fn check_settings(exp: &Experiment) -> Result<(), Invalid> {
    let (t, e) = (&exp.train, &exp.eval);
    check::nonzero("train.batch_size", t.batch_size)?;
    check::positive("train.budget_scale", t.budget_scale)?;
    if t.budget_scale > MAX_BUDGET_SCALE {
        return Err(Invalid::new(
            "train.budget_scale",
            format!("is {:e}; at most {MAX_BUDGET_SCALE}", t.budget_scale),
        ));
    }
    check::nonzero("train.steps", t.steps)?;
    check::nonzero("train.n_evals", Some(t.n_evals))?;
    check::nonzero("train.loss_window", Some(t.loss_window))?;
    check::nonzero("train.keep_checkpoints", t.keep_checkpoints)?;
    check::nonzero("eval.samples", e.samples)?;
    check::nonzero("eval.batch_size", e.batch_size)?;
    check::nonzero("eval.every", e.every)?;
    check::nonzero("eval.window", e.window)
}

/// What a schedule may name, for every family: teacher sources need a
/// teacher, buffer sources a buffer, `+ls` sources a local search, and at
/// least one source must sample fresh trajectories.
fn check_schedule(exp: &Experiment, schedule: &[Step]) -> Result<(), Invalid> {
    let err = |m: &str| Err(Invalid::new("behaviour.schedule", m));
    if schedule.is_empty() || schedule.iter().any(|s| s.sources().is_empty()) {
        return err("must list at least one source, and every step at least one");
    }
    let teacher = matches!(exp.behaviour, BehaviourConfig::Teacher(_));
    let sources = || schedule.iter().flat_map(Step::sources);
    for s in sources() {
        if s.teacher() && !teacher {
            return err("`teacher` sources need `behaviour.kind = \"teacher\"`");
        }
        if s.needs_buffer() && exp.buffer.is_none() {
            return err("`buffer` and `->buffer` sources need a `[buffer]` table");
        }
        if s.local_search() && exp.local_search.is_none() {
            return err("`+ls` sources need a `[local_search]` table");
        }
    }
    if !sources().any(|s: &Source| s.is_fresh()) {
        return err("needs at least one sampling source besides `buffer`");
    }
    Ok(())
}

/// The `[local_search]` table of a discrete family (grid, sequence tasks):
/// `back_and_forth` or none; `mala` is refused with the allowed kind.
pub(crate) fn back_and_forth(exp: &Experiment) -> Result<Option<&BackAndForthConfig>, Invalid> {
    match &exp.local_search {
        Some(LocalSearchConfig::BackAndForth(l)) => Ok(Some(l)),
        Some(LocalSearchConfig::Mala(_)) => Err(Invalid::new(
            "local_search.kind",
            "this environment uses `back_and_forth` (`mala` is for the diffusion energies)",
        )),
        None => Ok(None),
    }
}

/// The schedule the behaviour's table gives, if any.
pub(crate) fn explicit_schedule(exp: &Experiment) -> Option<Vec<Step>> {
    match &exp.behaviour {
        BehaviourConfig::OnPolicy(b) => b.schedule.clone(),
        BehaviourConfig::Teacher(t) => t.schedule.clone(),
        BehaviourConfig::Gafn(_) => None,
    }
}

/// The budget `base` scaled by `train.budget_scale`, at least 1.
pub(crate) fn scaled_steps(exp: &Experiment, base: f64) -> u64 {
    (base * exp.train.budget_scale).round().max(1.0) as u64
}

/// `exp` with `train.budget_scale` applied to `train.steps` when the file
/// sets them: the scale multiplies any budget, the file's as the default
/// one (which each family scales where it computes it, [`scaled_steps`]).
fn explicit_steps_scaled(exp: &Experiment) -> std::borrow::Cow<'_, Experiment> {
    match exp.train.steps {
        Some(steps) if exp.train.budget_scale != 1.0 => {
            let mut scaled = exp.clone();
            scaled.train.steps = Some(scaled_steps(exp, steps as f64));
            std::borrow::Cow::Owned(scaled)
        }
        _ => std::borrow::Cow::Borrowed(exp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid_exp(extra: &str) -> Experiment {
        let text = format!(
            "name = \"t\"\n[env]\nkind = \"grid\"\nndim = 2\nhorizon = 8\n[policy]\nkind = \"mlp\"\n\
             [objective]\nkind = \"tb\"\n[behaviour]\nkind = \"teacher\"\n{extra}"
        );
        toml::from_str(&text).unwrap()
    }

    /// The paper's grid defaults land in the plan and the resolved config:
    /// d = 2, H = 8 has a budget of 4000 x 1.5 steps (docs/grid.md "Budgets").
    #[test]
    fn grid_defaults_are_resolved() {
        let plan = resolve(&grid_exp("")).unwrap();
        assert_eq!(plan.steps, 6000);
        assert_eq!(plan.batch_size, 16);
        assert_eq!(plan.eval.every, 1200);
        assert_eq!(plan.resolved.train.steps, Some(6000));
        assert!(plan.teacher.is_some());
        assert_eq!(plan.schedule.len(), 4);
    }

    /// `train.budget_scale` multiplies the file's `train.steps` as it does
    /// the default budget, and the resolved config records the steps trained
    /// with a scale of 1, so that it runs as is to the same budget.
    #[test]
    fn budget_scale_scales_any_budget() {
        let plan = resolve(&grid_exp("[train]\nsteps = 300\nbudget_scale = 0.05\n")).unwrap();
        assert_eq!(plan.steps, 15);
        assert_eq!(plan.resolved.train.steps, Some(15));
        assert_eq!(plan.resolved.train.budget_scale, 1.0);
        assert_eq!(resolve(&plan.resolved).unwrap().steps, 15);
        let plan = resolve(&grid_exp("[train]\nsteps = 3\nbudget_scale = 0.01\n")).unwrap();
        assert_eq!(plan.steps, 1, "at least one step");
        let plan = resolve(&grid_exp("[train]\nbudget_scale = 0.1\n")).unwrap();
        assert_eq!(plan.steps, 600, "a tenth of the default 6000");
        assert_eq!(resolve(&plan.resolved).unwrap().steps, 600);
    }

    /// Diffusion samplers and sequence networks at least `WIDE_SSR` wide
    /// (the default 1024) have large products; the grid's MLP and a
    /// narrower SSR do not.
    #[test]
    fn large_products_are_diffusion_and_wide_sequence_networks() {
        let exp = |env: &str, policy: &str| -> Experiment {
            toml::from_str(&format!(
                "name = \"t\"\n[env]\nkind = \"{env}\"\n[policy]\n{policy}\n\
                 [objective]\nkind = \"tb\"\n[behaviour]\nkind = \"on_policy\""
            ))
            .unwrap()
        };
        assert!(!large_products(&grid_exp("")));
        assert!(large_products(&exp("gmm25", "kind = \"diffusion\"")));
        assert!(large_products(&exp("many_well", "kind = \"diffusion\"")));
        assert!(large_products(&exp("qm9str", "kind = \"ssr\"")));
        let wide = format!("kind = \"ssr\"\nhidden = {WIDE_SSR}");
        assert!(large_products(&exp("tfbind8", &wide)));
        let narrow = format!("kind = \"ssr\"\nhidden = {}", WIDE_SSR - 1);
        assert!(!large_products(&exp("tfbind8", &narrow)));
    }

    /// The cost that orders a sweep's runs: a Teacher run's batch costs 1.5
    /// student batches (sampled 0.5, two networks trained 0.5 each); PRT's
    /// schedule [student, buffer] costs (1 + 0.5) / 2 per step.
    #[test]
    fn relative_cost_counts_sampling_and_trained_networks() {
        let teacher = resolve(&grid_exp("[train]\nsteps = 100")).unwrap();
        assert_eq!(teacher.relative_cost(), 150.0);
        let prt =
            grid_exp("[train]\nsteps = 100\n[buffer]\nkind = \"terminal\"\npriority = \"reward\"");
        let mut prt = prt;
        prt.behaviour =
            toml::from_str("kind = \"on_policy\"\nschedule = [\"student\", \"buffer\"]").unwrap();
        assert_eq!(resolve(&prt).unwrap().relative_cost(), 75.0);
    }

    /// A combination that no family supports is an error naming the key and
    /// the allowed kinds, not a panic later.
    #[test]
    fn unsupported_combinations_are_rejected_with_their_key() {
        let mut exp = grid_exp("");
        exp.policy = PolicyConfig::Ssr(Default::default());
        let e = resolve(&exp).unwrap_err();
        assert_eq!(e.key, "policy.kind");
        assert!(e.message.contains("`mlp`"), "{e}");
        let e = resolve(&grid_exp("[buffer]\nkind = \"recent\"")).unwrap_err();
        assert_eq!(e.key, "buffer.kind");
        let e = resolve(&grid_exp("schedule = [\"student\", []]")).unwrap_err();
        assert_eq!(e.key, "behaviour.schedule");
        let e = resolve(&grid_exp("schedule = [[\"teacher->buffer\", \"buffer\"]]")).unwrap_err();
        assert!(e.message.contains("need a `[buffer]`"), "{e}");
    }

    /// A diverging loss advises the objective's own keys: DB has no log Z.
    #[test]
    fn divergence_advice_names_the_objectives_keys() {
        let keys = |o: ObjectiveConfig| o.table().settings().lr_keys();
        assert_eq!(
            keys(ObjectiveConfig::Db(Default::default())),
            "objective.lr"
        );
        assert!(keys(ObjectiveConfig::Tb(Default::default())).contains("log_z_lr"));
        assert!(keys(ObjectiveConfig::SubTb(Default::default())).contains("log_z_lr"));
    }

    /// The grid's evaluation method: unset is exact where the interior
    /// states are no more than the rollouts' states (d=2, H=8: 49 <= 100000
    /// x 14), rollout where not (1 sample: 49 > 14), recorded either way;
    /// `method` off the grid is an error.
    #[test]
    fn grid_eval_method_is_chosen_and_checked() {
        let exact = |p: &Plan| match &p.family {
            FamilyPlan::Grid(g) => g.exact_eval,
            _ => unreachable!(),
        };
        let plan = resolve(&grid_exp("")).unwrap();
        assert!(exact(&plan));
        assert_eq!(plan.resolved.eval.method, Some(config::EvalMethod::Exact));
        let plan = resolve(&grid_exp("[eval]\nsamples = 1")).unwrap();
        assert!(!exact(&plan));
        assert_eq!(plan.resolved.eval.method, Some(config::EvalMethod::Rollout));
        let plan = resolve(&grid_exp("[eval]\nsamples = 1\nmethod = \"exact\"")).unwrap();
        assert!(exact(&plan));
        let text = "name = \"t\"\n[env]\nkind = \"qm9str\"\n[policy]\nkind = \"ssr\"\n\
                    [objective]\nkind = \"tb\"\n[behaviour]\nkind = \"on_policy\"\n\
                    [eval]\nmethod = \"rollout\"";
        let e = resolve(&toml::from_str(text).unwrap()).unwrap_err();
        assert_eq!(e.key, "eval.method");
    }
    /// A batch too large for memory is blamed on the key that drives the
    /// estimate: the per-trajectory size key (`env.steps`, `policy.hidden`)
    /// when usual trajectories would fit, else the batch key; the message
    /// names both.
    #[test]
    fn memory_refusals_name_the_driving_key() {
        let diffusion = |extra: &str| -> Experiment {
            toml::from_str(&format!(
                "name = \"t\"\n[env]\nkind = \"gmm25\"\n{extra}\n[policy]\nkind = \"diffusion\"\n\
                 [objective]\nkind = \"tb\"\n[behaviour]\nkind = \"on_policy\""
            ))
            .unwrap()
        };
        let e = resolve(&diffusion("steps = 1000000000")).unwrap_err();
        assert_eq!(e.key, "env.steps", "{e}");
        assert!(e.message.contains("`train.batch_size`"), "{e}");
        assert!(
            e.message
                .contains("lower `env.steps` or `train.batch_size`"),
            "{e}"
        );
        let mut exp = grid_exp("");
        exp.policy = toml::from_str("kind = \"mlp\"\nhidden = 1000000").unwrap();
        exp.env = toml::from_str("kind = \"grid\"\nndim = 4\nhorizon = 32").unwrap();
        let e = resolve(&exp).unwrap_err();
        assert_eq!(e.key, "policy.hidden", "{e}");
        assert!(e.message.contains("`eval.batch_size`"), "{e}");
        let e = resolve(&grid_exp("[train]\nbatch_size = 1000000000000")).unwrap_err();
        assert_eq!(e.key, "train.batch_size", "{e}");
        assert!(e.message.contains("lower `train.batch_size`"), "{e}");
        let e = resolve(&grid_exp("[eval]\nbatch_size = 1000000000000")).unwrap_err();
        assert_eq!(e.key, "eval.batch_size", "{e}");
        // The horizon drives the trajectories of a long grid.
        let mut exp = grid_exp("");
        exp.env = toml::from_str("kind = \"grid\"\nndim = 2\nhorizon = 8000").unwrap();
        exp.eval.method = Some(config::EvalMethod::Rollout);
        let e = resolve(&exp).unwrap_err();
        assert_eq!(e.key, "env.horizon", "{e}");
        // What does not grow with the batch: the networks' parameters
        // (2 x 1e9 x 256 weights of the time encoder alone: 2 networks x 4
        // copies x 4 bytes x 5.1e11 = 16 TiB) and the exact W2's matrix
        // (8 x 200000^2 bytes = 298 GiB, above the 256 GiB floor).
        let mut exp = diffusion("");
        exp.policy = toml::from_str("kind = \"diffusion\"\nharmonics = 1000000000").unwrap();
        let e = resolve(&exp).unwrap_err();
        assert_eq!(e.key, "policy.harmonics", "{e}");
        assert!(e.message.contains("Adam moments"), "{e}");
        let e = resolve(&diffusion("[eval]\nsamples = 200000")).unwrap_err();
        assert_eq!(e.key, "eval.samples", "{e}");
        assert!(e.message.contains("200000 x 200000 f64"), "{e}");
        let e = resolve(&diffusion("[eval]\nfinal_samples = 200000")).unwrap_err();
        assert_eq!(e.key, "eval.final_samples", "{e}");
        // The paper's sizes pass (2000 evaluation samples: 32 MB).
        assert!(resolve(&diffusion("")).is_ok());
    }

    /// Learning rates above MAX_LR are refused with their key; the paper's
    /// pass.
    #[test]
    fn absurd_learning_rates_are_refused() {
        assert!(resolve(&grid_exp("lr = 5e-4")).is_ok());
        assert!(resolve(&grid_exp("lr = 10.0")).is_ok());
        assert_eq!(
            resolve(&grid_exp("lr = 11.0")).unwrap_err().key,
            "behaviour.lr"
        );
        let mut exp = grid_exp("");
        exp.objective = toml::from_str("kind = \"tb\"\nlr = 1e10").unwrap();
        let e = resolve(&exp).unwrap_err();
        assert_eq!(e.key, "objective.lr");
        assert!(e.message.contains("is 1e10; at most 10"), "{e}");
        exp.objective = toml::from_str("kind = \"subtb\"\nlog_z_lr = 100.0").unwrap();
        assert_eq!(resolve(&exp).unwrap_err().key, "objective.log_z_lr");
        let mut exp = grid_exp("");
        exp.behaviour = toml::from_str("kind = \"gafn\"\nrnd_lr = 1e3").unwrap();
        assert_eq!(resolve(&exp).unwrap_err().key, "behaviour.rnd_lr");
    }

    fn seq_exp(env: &str, objective: &str, behaviour: &str) -> Experiment {
        toml::from_str(&format!(
            "name = \"t\"\n[env]\nkind = \"{env}\"\n[policy]\nkind = \"ssr\"\n\
             [objective]\nkind = \"{objective}\"\n[behaviour]\nkind = \"{behaviour}\""
        ))
        .unwrap()
    }

    /// A sequence file that leaves the optimiser, teacher, exploration and
    /// width unset gets the task table's values (docs/discovery.md), for
    /// every objective, recorded in the resolved config; the grid keeps its
    /// own defaults.
    #[test]
    fn sequence_defaults_come_from_the_task_table() {
        for objective in ["tb", "db", "subtb"] {
            let plan = resolve(&seq_exp("tfbind8", objective, "teacher")).unwrap();
            for (name, s) in [
                ("student", plan.student),
                ("teacher", plan.teacher.unwrap()),
            ] {
                assert_eq!(s.clip, None, "{objective} {name}");
                if objective != "db" {
                    let z = s.log_z.unwrap();
                    assert_eq!((z.init, z.lr, z.min), (5.0, 1e-2, Some(0.0)), "{objective}");
                }
            }
            assert_eq!(plan.student.lr, 1e-4, "{objective}");
            assert_eq!(plan.teacher.unwrap().lr, 5e-4, "{objective}");
            assert_eq!(plan.teacher_reward.alpha, 0.5);
            assert_eq!(plan.epsilon, 0.01);
            assert_eq!(
                plan.student.loss_clamp(),
                if objective == "tb" { 5000.0 } else { 0.0 }
            );
            let FamilyPlan::Sequence(s) = &plan.family else {
                unreachable!()
            };
            assert_eq!(s.hidden, 128);
            let recorded = toml::to_string(&plan.resolved).unwrap();
            for line in ["lr = 0.0001\n", "clip_grad_norm = 0.0\n", "lr = 0.0005\n"] {
                assert!(recorded.contains(line), "{line} in {recorded}");
            }
        }
        let plan = resolve(&seq_exp("sehstr", "tb", "on_policy")).unwrap();
        assert_eq!(plan.epsilon, 0.05);
        let FamilyPlan::Sequence(s) = &plan.family else {
            unreachable!()
        };
        assert_eq!(s.hidden, 1024);
        // An explicit value stays.
        let mut exp = seq_exp("tfbind8", "tb", "teacher");
        exp.objective = toml::from_str("kind = \"tb\"\nlr = 3e-4\nlog_z_min = -5.0").unwrap();
        let plan = resolve(&exp).unwrap();
        assert_eq!(plan.student.lr, 3e-4);
        assert_eq!(plan.student.log_z.unwrap().min, Some(-5.0));
        // The grid: Adam 1e-3, log Z from 0 at 1e-1, clip 1, no clamps.
        let plan = resolve(&grid_exp("")).unwrap();
        let z = plan.student.log_z.unwrap();
        assert_eq!((plan.student.lr, plan.student.clip), (1e-3, Some(1.0)));
        assert_eq!((z.init, z.lr, z.min), (0.0, 1e-1, None));
        assert_eq!((plan.epsilon, plan.teacher_reward.alpha), (0.0, 0.0));
        assert_eq!(plan.teacher.unwrap().lr, 1e-3);
    }

    /// The paper's sequence files give the task table's values explicitly:
    /// without those keys they resolve to the same config.
    #[test]
    fn the_paper_files_set_the_task_tables_values() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        for name in ["tfbind8_teacher_prt", "qm9_subtb_teacher_prt", "seh_tb_per"] {
            let text =
                std::fs::read_to_string(root.join(format!("experiments/{name}.toml"))).unwrap();
            let stripped: String = text
                .lines()
                .filter(|l| {
                    let key = l.split('=').next().unwrap_or("").trim();
                    !matches!(
                        key,
                        "lr" | "log_z_lr"
                            | "log_z_init"
                            | "log_z_min"
                            | "loss_clamp"
                            | "clip_grad_norm"
                            | "epsilon"
                            | "alpha"
                            | "hidden"
                    )
                })
                .map(|l| format!("{l}\n"))
                .collect();
            assert_ne!(stripped, text);
            let full = resolve(&toml::from_str(&text).unwrap()).unwrap();
            let bare = resolve(&toml::from_str(&stripped).unwrap()).unwrap();
            assert_eq!(
                toml::to_string(&full.resolved).unwrap(),
                toml::to_string(&bare.resolved).unwrap(),
                "{name}"
            );
        }
    }

    /// A `[buffer]` no step reads is a warning naming the keys; a `buffer`
    /// source, or MALA (which refines buffer samples), reads it.
    #[test]
    fn unread_buffers_are_warned_about() {
        let exp = grid_exp("schedule = [\"student\", \"teacher\"]\n[buffer]\nkind = \"terminal\"");
        let w = resolve(&exp).unwrap().warnings;
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].key, "buffer");
        assert!(
            w[0].message
                .contains("`behaviour.schedule` = [\"student\", \"teacher\"]")
                && w[0].message.contains("`[buffer]`"),
            "{}",
            w[0]
        );
        assert!(resolve(&grid_exp("[buffer]\nkind = \"terminal\""))
            .unwrap()
            .warnings
            .is_empty());
        let mala: Experiment = toml::from_str(
            "name = \"t\"\n[env]\nkind = \"gmm25\"\n[policy]\nkind = \"diffusion\"\n\
             [objective]\nkind = \"tb\"\n[behaviour]\nkind = \"on_policy\"\n\
             schedule = [\"student\", \"student+ls\"]\n\
             [buffer]\nkind = \"terminal\"\n[local_search]\nkind = \"mala\"",
        )
        .unwrap();
        assert!(resolve(&mala).unwrap().warnings.is_empty());
    }

    /// The values that set a loss's magnitude are recorded for the advice
    /// of a loss that overflows.
    #[test]
    fn magnitudes_are_recorded() {
        let plan = resolve(&grid_exp("alpha = 0.5")).unwrap();
        let get = |k: &str| {
            plan.magnitudes
                .iter()
                .find(|(key, _)| key == k)
                .map(|x| x.1)
        };
        assert_eq!(get("behaviour.alpha"), Some(0.5));
        assert_eq!(get("env.beta"), Some(1.0));
        assert_eq!(get("policy.exploration"), None);
    }
}
