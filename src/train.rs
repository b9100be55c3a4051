//! The one training loop.
//!
//! Per step i: the behaviour's schedule picks the source of the batch
//! (`schedule[i % len]`); the batch is packed once into tensors; the student
//! takes one TB step on it; with a teacher, the teacher then takes one TB step
//! on the same batch towards the teacher reward computed from the student's
//! residuals. Evaluations run at step 0 (before training) and every
//! `steps / n_evals` steps, and each appends a row to `metrics.csv`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{Device, Tensor, Var};

use crate::behaviour::{Source, TeacherConfig};
use crate::config::{DeviceKind, Experiment};
use crate::envs::grid::Grid;
use crate::metrics::{empirical_l1, GridDiscovery};
use crate::objective::tb::{tb_delta, tb_loss, TbConfig};
use crate::objective::PackedBatch;
use crate::optim::Adam;
use crate::output::{fmt_f64, progress_bar, write_atomic, CsvTable};
use crate::policy::mlp::{Mlp, MlpConfig};
use crate::registry::{BehaviourConfig, EnvConfig, ObjectiveConfig, PolicyConfig};
use crate::rng::{self, Rng, Stream};

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A tensor operation failed.
    #[error("tensor error: {0}")]
    Candle(#[from] candle_core::Error),
    /// Results could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The loss became NaN or infinite.
    #[error("non-finite {which} loss ({value}) at training step {step}; try a smaller learning rate (objective.lr, objective.log_z_lr)")]
    NonFiniteLoss {
        which: &'static str,
        value: f32,
        step: u64,
    },
    /// CUDA was asked for in a build without it.
    #[error("device = \"cuda\" needs a runner built with the `cuda` feature: cargo build --release --features cuda")]
    NoCuda,
}

/// The candle device for `kind`.
pub fn make_device(kind: DeviceKind) -> Result<Device, RunError> {
    match kind {
        DeviceKind::Cpu => Ok(Device::Cpu),
        #[cfg(feature = "cuda")]
        DeviceKind::Cuda => Ok(Device::new_cuda(0)?),
        #[cfg(not(feature = "cuda"))]
        DeviceKind::Cuda => Err(RunError::NoCuda),
    }
}

/// Fill in what the file left to defaults (number of steps, metric window),
/// so that the written `config.toml` states every number the run used.
pub fn resolve(exp: &Experiment) -> Experiment {
    let mut exp = exp.clone();
    let EnvConfig::Grid(g) = &exp.env;
    // spec/grid.md "Budgets": x1.5 without local search (always, for now).
    exp.train.steps.get_or_insert(g.base_steps() * 3 / 2);
    exp.eval.window.get_or_insert(g.default_window());
    exp
}

/// A sampler being trained: its network, log Z and optimiser.
struct Sampler {
    net: Mlp,
    log_z: Var,
    opt: Adam,
}

impl Sampler {
    fn new(
        dims: &[usize],
        tb: &TbConfig,
        device: &Device,
        rng: &mut Rng,
    ) -> Result<Self, RunError> {
        let net = Mlp::new(dims, device, rng)?;
        let log_z = Var::from_tensor(&Tensor::new(tb.log_z_init as f32, device)?)?;
        let clip = (tb.clip_grad_norm > 0.0).then_some(tb.clip_grad_norm);
        let opt = Adam::new(
            vec![(net.vars(), tb.lr), (vec![log_z.clone()], tb.log_z_lr)],
            clip,
        )?;
        Ok(Self { net, log_z, opt })
    }

    /// The TB loss graph on `packed` towards `log_reward` `[B]`: (loss, its
    /// value, the residuals `[B]` detached). Fails on a non-finite loss.
    fn residuals(
        &self,
        packed: &PackedBatch,
        log_reward: &Tensor,
        which: &'static str,
        step: u64,
    ) -> Result<(Tensor, f32, Tensor), RunError> {
        let out = self.net.forward(&packed.obs)?; // [N, out]
        let delta = tb_delta(&out, packed, self.log_z.as_tensor(), log_reward)?; // [B]
        let loss = tb_loss(&delta)?;
        let value = loss.to_scalar::<f32>()?;
        if !value.is_finite() {
            return Err(RunError::NonFiniteLoss { which, value, step });
        }
        Ok((loss, value, delta.detach()))
    }

    /// Backpropagate `loss` and take one optimiser step.
    fn update(&mut self, loss: &Tensor) -> Result<(), RunError> {
        let grads = loss.backward()?;
        self.opt.step(&grads)?;
        Ok(())
    }

    /// One TB step on `packed`; returns the loss value.
    fn train_step(
        &mut self,
        packed: &PackedBatch,
        log_reward: &Tensor,
        which: &'static str,
        step: u64,
    ) -> Result<f32, RunError> {
        let (loss, value, _) = self.residuals(packed, log_reward, which, step)?;
        self.update(&loss)?;
        Ok(value)
    }
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Directory of the run's results.
    pub dir: PathBuf,
    /// Training steps done.
    pub steps: u64,
    /// Goals found at the end.
    pub n_goals_found: usize,
    /// Last `eval_empirical_l1`.
    pub eval_empirical_l1: f64,
    /// Wall time of the whole run, seconds.
    pub wall_s: f64,
    /// Mean number of states per training batch (the cost driver).
    pub mean_batch_states: f64,
}

/// Columns of the grid `metrics.csv`.
pub const GRID_COLUMNS: &[&str] = &[
    "step",
    "loss",
    "teacher_loss",
    "log_z",
    "n_goals_found",
    "empirical_l1",
    "empirical_w_l1",
    "eval_empirical_l1",
    "eval_empirical_w_l1",
    "n_reward_calls",
    "n_grad_steps",
    "wall_s",
];

/// Options of one run that are not part of the experiment.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Results root; the run writes to `<out>/<name>/<run_id>/`.
    pub out: PathBuf,
    /// Skip evaluations and outputs (benchmarking): only train.
    pub train_only: bool,
}

/// The directory name of a single run.
pub fn run_id(exp: &Experiment) -> String {
    format!("seed={}", exp.seed)
}

/// Train `exp` and write its results.
pub fn run(exp: &Experiment, opts: &RunOptions) -> Result<RunSummary, RunError> {
    let exp = resolve(exp);
    let start = Instant::now();
    let device = make_device(exp.device)?;
    let dir = opts.out.join(&exp.name).join(run_id(&exp));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RunError::Io { path, source }
    };
    if !opts.train_only {
        let cfg_path = dir.join("config.toml");
        let text = toml::to_string(&exp).expect("an experiment serializes to TOML");
        write_atomic(&cfg_path, text.as_bytes()).map_err(io(&cfg_path))?;
    }

    let EnvConfig::Grid(grid_cfg) = &exp.env;
    let PolicyConfig::Mlp(mlp_cfg) = &exp.policy;
    let ObjectiveConfig::Tb(tb_cfg) = &exp.objective;
    let (epsilon, teacher_cfg): (f64, Option<&TeacherConfig>) = match &exp.behaviour {
        BehaviourConfig::OnPolicy(b) => (b.epsilon, None),
        BehaviourConfig::Teacher(t) => (t.epsilon, Some(t)),
    };
    let grid = Grid::new(grid_cfg);
    let dims = network_dims(&grid, mlp_cfg);
    let mut student = Sampler::new(
        &dims,
        tb_cfg,
        &device,
        &mut rng::stream(exp.seed, Stream::InitStudent),
    )?;
    let mut teacher = match teacher_cfg {
        Some(_) => Some(Sampler::new(
            &dims,
            tb_cfg,
            &device,
            &mut rng::stream(exp.seed, Stream::InitTeacher),
        )?),
        None => None,
    };
    let schedule = exp.schedule();
    let steps = exp.train.steps.expect("resolved");
    let batch_size = exp.train.batch_size;
    let mut sampling_rng = rng::stream(exp.seed, Stream::Sampling);
    let mut eval_rng = rng::stream(exp.seed, Stream::Eval);
    let mut discovery = GridDiscovery::new(&grid, exp.eval.window.expect("resolved"));
    let mut table = CsvTable::new(dir.join("metrics.csv"), GRID_COLUMNS);
    let mut losses: Vec<f32> = Vec::with_capacity(steps as usize);
    let mut teacher_losses: Vec<f32> = Vec::new();
    let mut n_reward_calls: u64 = 0;
    let mut total_states: u64 = 0;
    let interval = (steps / exp.train.n_evals as u64).max(1);
    let mut last_eval_l1 = f64::NAN;

    let mut evaluate = |step: u64,
                        student: &Sampler,
                        losses: &[f32],
                        teacher_losses: &[f32],
                        discovery: &GridDiscovery,
                        n_reward_calls: u64,
                        eval_rng: &mut Rng|
     -> Result<f64, RunError> {
        let mut terminals = Vec::with_capacity(exp.eval.samples);
        while terminals.len() < exp.eval.samples {
            let n = exp.eval.batch_size.min(exp.eval.samples - terminals.len());
            let t = grid.rollout(&student.net, n, 0.0, eval_rng, &device)?;
            terminals.extend((0..t.len()).filter_map(|b| grid.terminal_index(t.terminal(b))));
        }
        let (eval_l1, eval_wl1) = empirical_l1(&grid, terminals.into_iter());
        let (l1, wl1) = discovery.window_l1(&grid);
        let tail_mean = |xs: &[f32]| {
            let tail = &xs[xs.len().saturating_sub(exp.train.loss_window)..];
            if tail.is_empty() {
                f64::NAN
            } else {
                tail.iter().map(|&x| x as f64).sum::<f64>() / tail.len() as f64
            }
        };
        let log_z = student.log_z.as_tensor().to_scalar::<f32>()? as f64;
        table
            .push(&[
                step.to_string(),
                fmt_f64(tail_mean(losses)),
                fmt_f64(tail_mean(teacher_losses)),
                fmt_f64(log_z),
                discovery.n_goals_found().to_string(),
                fmt_f64(l1),
                fmt_f64(wl1),
                fmt_f64(eval_l1),
                fmt_f64(eval_wl1),
                n_reward_calls.to_string(),
                losses.len().to_string(),
                format!("{:.3}", start.elapsed().as_secs_f64()),
            ])
            .map_err(io(&dir.join("metrics.csv")))?;
        Ok(eval_l1)
    };

    if !opts.train_only {
        last_eval_l1 = evaluate(0, &student, &[], &[], &discovery, 0, &mut eval_rng)?;
    }
    let bar = progress_bar(steps, exp.train.progress && !opts.train_only, &exp.name);
    for i in 0..steps {
        let source = schedule[i as usize % schedule.len()];
        let behaviour_net = match (source, &teacher) {
            (Source::Teacher, Some(t)) => &t.net,
            _ => &student.net,
        };
        let trajs = grid.rollout(
            behaviour_net,
            batch_size,
            epsilon,
            &mut sampling_rng,
            &device,
        )?;
        n_reward_calls += trajs.len() as u64;
        total_states += trajs.n_states() as u64;
        discovery.record(&grid, &trajs);

        let packed = grid.pack(&trajs, mlp_cfg.learn_pb, &device)?;
        let log_r: Vec<f32> = trajs
            .reward
            .iter()
            .map(|r| (r + 1e-8).ln() as f32)
            .collect();
        let log_r = Tensor::from_vec(log_r, trajs.len(), &device)?; // [B]
        let (loss, value, delta) = student.residuals(&packed, &log_r, "student", i)?;
        losses.push(value);
        match (teacher.as_mut(), teacher_cfg) {
            (Some(t), Some(cfg)) => {
                let delta: Vec<f32> = delta.to_vec1()?;
                let log_rt: Vec<f32> = delta
                    .iter()
                    .zip(&trajs.reward)
                    .map(|(&d, &r)| cfg.teacher_log_reward(d as f64, r) as f32)
                    .collect();
                let log_rt = Tensor::from_vec(log_rt, trajs.len(), &device)?; // [B]
                                                                              // The student's update and the teacher's step are independent
                                                                              // given the student's residuals: run them on two threads.
                                                                              // The student's update and the teacher's step are independent
                                                                              // given the student's residuals: run them on two threads.
                let tloss = std::thread::scope(|scope| {
                    let teacher_step = scope.spawn(|| t.train_step(&packed, &log_rt, "teacher", i));
                    student.update(&loss)?;
                    teacher_step.join().expect("teacher step panicked")
                })?;
                teacher_losses.push(tloss);
            }
            _ => student.update(&loss)?,
        }

        bar.inc(1);
        let done = i + 1;
        if !opts.train_only && (done % interval == 0 || done == steps) {
            bar.set_message(format!("goals {}", discovery.n_goals_found()));
            last_eval_l1 = evaluate(
                done,
                &student,
                &losses,
                &teacher_losses,
                &discovery,
                n_reward_calls,
                &mut eval_rng,
            )?;
        }
    }
    bar.finish_and_clear();
    Ok(RunSummary {
        dir,
        steps,
        n_goals_found: discovery.n_goals_found(),
        eval_empirical_l1: last_eval_l1,
        wall_s: start.elapsed().as_secs_f64(),
        mean_batch_states: total_states as f64 / steps as f64,
    })
}

/// `[obs_dim, hidden x layers, d+1 forward logits + d backward logits]`.
fn network_dims(grid: &Grid, cfg: &MlpConfig) -> Vec<usize> {
    let mut dims = vec![grid.obs_dim()];
    dims.extend(std::iter::repeat_n(cfg.hidden, cfg.layers));
    dims.push(grid.n_forward_actions() + grid.n_backward_actions());
    dims
}
