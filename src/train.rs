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

use crate::behaviour::gafn::{gafn_delta, rnd_loss, Rnd};
use crate::behaviour::{GafnConfig, Source, TeacherConfig};
use crate::buffer::{Priority, ReplayBuffer};
use crate::config::{DeviceKind, Experiment};
use crate::envs::grid::Grid;
use crate::envs::Trajectories;
use crate::metrics::{empirical_l1, GridDiscovery};
use crate::objective::db::{db_delta, db_loss};
use crate::objective::tb::{tb_delta, tb_loss};
use crate::objective::PackedBatch;
use crate::optim::Adam;
use crate::output::{fmt_f64, plot, progress_bar, write_atomic, CsvTable};
use crate::policy::mlp::Mlp;
use crate::registry::{
    BehaviourConfig, BufferConfig, EnvConfig, LocalSearchConfig, ObjectiveConfig, PolicyConfig,
};
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
    /// A dataset of a sequence task is missing or malformed.
    #[error(transparent)]
    Data(#[from] crate::datasets::DataError),
    /// A picture could not be written.
    #[error(transparent)]
    Plot(#[from] crate::output::plot::PlotError),
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

/// Fill in what the file left to defaults (number of steps, metric window,
/// buffer size, schedule), so that the written `config.toml` states every
/// number the run used.
pub fn resolve(exp: &Experiment) -> Experiment {
    let mut exp = exp.clone();
    let g = match &exp.env {
        EnvConfig::Grid(g) => g.clone(),
        _ => return crate::discovery::resolve(&exp),
    };
    // spec/grid.md "Budgets": x1.5 without local search, x2 when the schedule
    // replays from a buffer; then the user's scale.
    let schedule = exp.schedule();
    let mut steps = g.base_steps() as f64;
    if exp.local_search.is_none() {
        steps *= 1.5;
    }
    if schedule.contains(&Source::Buffer) {
        steps *= 2.0;
    }
    let scaled = (steps * exp.train.budget_scale).round().max(1.0) as u64;
    let steps = *exp.train.steps.get_or_insert(scaled);
    exp.eval.window.get_or_insert(g.default_window());
    let batch_size = *exp.train.batch_size.get_or_insert(16);
    exp.eval.samples.get_or_insert(100_000);
    exp.eval.batch_size.get_or_insert(10_000);
    exp.eval
        .every
        .get_or_insert((steps / exp.train.n_evals as u64).max(1));
    if let Some(LocalSearchConfig::BackAndForth(l)) = &mut exp.local_search {
        l.iterations.get_or_insert(crate::search::GRID_ITERATIONS);
    }
    let size = g.default_buffer_size();
    match &mut exp.buffer {
        Some(BufferConfig::Terminal(b)) => {
            b.size.get_or_insert(size);
        }
        Some(BufferConfig::Transition(b)) => {
            b.size.get_or_insert(size);
            b.batch.get_or_insert(batch_size * (g.horizon / 2).max(1));
        }
        Some(BufferConfig::Recent(_)) | None => {}
    }
    match &mut exp.behaviour {
        BehaviourConfig::OnPolicy(b) => b.schedule = Some(schedule),
        BehaviourConfig::Teacher(t) => t.schedule = Some(schedule),
        BehaviourConfig::Gafn(_) => {}
    }
    exp
}

/// A sampler being trained: its network, log Z (TB) and optimiser.
struct Sampler {
    net: Mlp,
    log_z: Option<Var>,
    opt: Adam,
}

impl Sampler {
    /// A fresh sampler; `lr` overrides the objective's network learning rate.
    fn new(
        dims: &[usize],
        objective: &ObjectiveConfig,
        lr: Option<f64>,
        device: &Device,
        rng: &mut Rng,
    ) -> Result<Self, RunError> {
        let net = Mlp::new(dims, device, rng)?;
        let (clip, log_z) = match objective {
            ObjectiveConfig::Tb(tb) => (
                tb.clip_grad_norm,
                Some((
                    Var::from_tensor(&Tensor::new(tb.log_z_init as f32, device)?)?,
                    tb.log_z_lr,
                )),
            ),
            ObjectiveConfig::Db(db) => (db.clip_grad_norm, None),
        };
        let lr = lr.unwrap_or(lr_default(objective));
        let mut groups = vec![(net.vars(), lr)];
        if let Some((z, z_lr)) = &log_z {
            groups.push((vec![z.clone()], *z_lr));
        }
        let opt = Adam::new(groups, (clip > 0.0).then_some(clip))?;
        Ok(Self {
            net,
            log_z: log_z.map(|(z, _)| z),
            opt,
        })
    }

    /// The student's or teacher's residuals on `packed` towards `log_reward`
    /// `[B]`: `[B]` for TB, `[M]` (per transition) for DB.
    fn residuals(&self, packed: &PackedBatch, log_reward: &Tensor) -> Result<Tensor, RunError> {
        let out = self.net.forward(&packed.obs)?; // [N, out]
        Ok(match &self.log_z {
            Some(z) => tb_delta(&out, packed, z.as_tensor(), log_reward)?,
            None => db_delta(&out, packed, log_reward)?,
        })
    }

    /// The objective's loss of residuals.
    fn loss(&self, delta: &Tensor, packed: &PackedBatch) -> Result<Tensor, RunError> {
        Ok(match self.log_z {
            Some(_) => tb_loss(delta)?,
            None => db_loss(delta, packed)?,
        })
    }

    /// Backpropagate `loss` and take one optimiser step.
    fn update(&mut self, loss: &Tensor) -> Result<(), RunError> {
        let grads = loss.backward()?;
        self.opt.step(&grads)?;
        Ok(())
    }

    fn log_z_value(&self) -> Result<f64, RunError> {
        Ok(match &self.log_z {
            Some(z) => z.as_tensor().to_scalar::<f32>()? as f64,
            None => f64::NAN,
        })
    }
}

/// Mean of the last `window` values as f64; NaN when there are none (the
/// `loss` columns of `metrics.csv`).
pub(crate) fn tail_mean(xs: &[f32], window: usize) -> f64 {
    let tail = &xs[xs.len().saturating_sub(window)..];
    if tail.is_empty() {
        f64::NAN
    } else {
        tail.iter().map(|&x| x as f64).sum::<f64>() / tail.len() as f64
    }
}

/// The student's update and the teacher's step (which returns its loss):
/// independent given the student's residuals, so with `parallel` the teacher
/// runs on a second thread while the student updates on this one.
pub(crate) fn update_student_and_teacher(
    parallel: bool,
    student: impl FnOnce() -> Result<(), RunError>,
    teacher: impl FnOnce() -> Result<f32, RunError> + Send,
) -> Result<f32, RunError> {
    if parallel {
        std::thread::scope(|scope| {
            let handle = scope.spawn(teacher);
            student()?;
            handle.join().expect("teacher step panicked")
        })
    } else {
        student()?;
        teacher()
    }
}

/// The objective's network learning rate.
fn lr_default(objective: &ObjectiveConfig) -> f64 {
    match objective {
        ObjectiveConfig::Tb(tb) => tb.lr,
        ObjectiveConfig::Db(db) => db.lr,
    }
}

/// Fail on a NaN or infinite loss.
pub(crate) fn finite(loss: &Tensor, which: &'static str, step: u64) -> Result<f32, RunError> {
    let value = loss.to_scalar::<f32>()?;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(RunError::NonFiniteLoss { which, value, step })
    }
}

/// Teacher rewards of a batch from the student's residuals `delta`: per entry
/// (TB: R_T(delta_b, R_b); DB: the sum over its transitions) and, for DB, per
/// transition (R_T(delta_t, r_t) with r_t = 1, plus R(x) at the last
/// transition, as the reference).
fn teacher_rewards(
    cfg: &TeacherConfig,
    delta: &Tensor,
    trajs: &Trajectories,
    per_transition: bool,
) -> Result<(Vec<f64>, Vec<f64>), RunError> {
    let delta: Vec<f32> = delta.to_vec1()?;
    if !per_transition {
        let per_entry = delta
            .iter()
            .zip(&trajs.reward)
            .map(|(&d, &r)| cfg.teacher_reward(d as f64, r))
            .collect();
        return Ok((per_entry, Vec::new()));
    }
    let mut per_entry = Vec::with_capacity(trajs.len());
    let mut per_t = Vec::with_capacity(delta.len());
    for b in 0..trajs.len() {
        let n = trajs.actions_of(b).len();
        let start = trajs.offsets[b] - b;
        let mut sum = 0.0;
        for (k, &d) in delta[start..start + n].iter().enumerate() {
            let r = 1.0 + if k + 1 == n { trajs.reward[b] } else { 0.0 };
            let rt = cfg.teacher_reward(d as f64, r);
            per_t.push(rt);
            sum += rt;
        }
        per_entry.push(sum);
    }
    Ok((per_entry, per_t))
}

/// log(R + 1e-8) of every entry, `[B]`.
fn log_rewards(trajs: &Trajectories, device: &Device) -> Result<Tensor, RunError> {
    let v: Vec<f32> = trajs
        .reward
        .iter()
        .map(|r| (r + 1e-8).ln() as f32)
        .collect();
    Ok(Tensor::from_vec(v, trajs.len(), device)?)
}

/// GAFN's extra state: the RND pair and the predictor's optimiser.
struct Gafn {
    cfg: GafnConfig,
    rnd: Rnd,
    opt: Adam,
}

/// A replayed transition: states s and s' (flattened), action, reward (R(x)
/// if s' is terminal, else 0), whether s' is terminal.
type StoredTransition = (Vec<u16>, u32, f64, bool);

/// The replay buffer of a run.
enum Replay {
    /// Terminal states keyed by dense index: (state, reward).
    Terminal(ReplayBuffer<usize, (Vec<u16>, f64)>, Priority),
    /// Transitions keyed by dense (s, s'), with the batch size of a replay.
    Transition(
        ReplayBuffer<(usize, usize), StoredTransition>,
        Priority,
        usize,
    ),
}

impl Replay {
    fn new(cfg: &BufferConfig) -> Self {
        match cfg {
            BufferConfig::Terminal(b) => Replay::Terminal(
                ReplayBuffer::new(b.size.expect("resolved"), b.priority != Priority::Uniform),
                b.priority,
            ),
            BufferConfig::Transition(b) => Replay::Transition(
                ReplayBuffer::new(b.size.expect("resolved"), b.priority != Priority::Uniform),
                b.priority,
                b.batch.expect("resolved"),
            ),
            BufferConfig::Recent(_) => unreachable!("config check: `recent` is for sequence tasks"),
        }
    }

    fn priority(&self) -> Priority {
        match self {
            Replay::Terminal(_, p) | Replay::Transition(_, p, _) => *p,
        }
    }

    /// A replayed batch (`None` while the buffer is empty).
    fn sample(&self, grid: &Grid, n: usize, rng: &mut Rng) -> Option<Trajectories> {
        let mut out = Trajectories {
            state_dim: grid.ndim,
            ..Default::default()
        };
        match self {
            Replay::Terminal(buf, _) => {
                for (_, (x, r)) in buf.sample(n, rng) {
                    let p = grid.sample_backward(&x, rng);
                    out.push(&p.states, &p.actions, r);
                }
            }
            Replay::Transition(buf, _, k) => {
                for (_, (s, a, r, terminal)) in buf.sample(*k, rng) {
                    out.push_entry(&s, &[a], r, terminal);
                }
            }
        }
        (!out.is_empty()).then_some(out)
    }

    /// Add a fresh batch with its student residuals and teacher rewards.
    fn add(&mut self, grid: &Grid, trajs: &Trajectories, delta: &[f32], rt: &(Vec<f64>, Vec<f64>)) {
        let d = grid.ndim;
        match self {
            Replay::Terminal(buf, p) => {
                for (b, &d_b) in delta.iter().enumerate().take(trajs.len()) {
                    let x = trajs.terminal(b);
                    let priority = match p {
                        Priority::Uniform => 1.0,
                        Priority::Reward => trajs.reward[b],
                        Priority::Loss => (d_b as f64).powi(2),
                        Priority::TeacherReward => rt.0[b],
                    };
                    buf.add(grid.dense(x), (x.to_vec(), trajs.reward[b]), priority);
                }
            }
            Replay::Transition(buf, p, _) => {
                for b in 0..trajs.len() {
                    let acts = trajs.actions_of(b);
                    let (s0, m0) = (trajs.offsets[b], trajs.offsets[b] - b);
                    for (k, &a) in acts.iter().enumerate() {
                        let last = k + 1 == acts.len();
                        let states = &trajs.states[(s0 + k) * d..(s0 + k + 2) * d];
                        let priority = match p {
                            Priority::Loss => (delta[m0 + k] as f64).powi(2),
                            Priority::TeacherReward => rt.1[m0 + k],
                            _ => 1.0,
                        };
                        let r = if last { trajs.reward[b] } else { 0.0 };
                        let key = (grid.dense(&states[..d]), grid.dense(&states[d..]));
                        buf.add(key, (states.to_vec(), a, r, last), priority);
                    }
                }
            }
        }
    }
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Directory of the run's results.
    pub dir: PathBuf,
    /// Training steps done.
    pub steps: u64,
    /// The run's headline result in words, e.g. `goals found 13` or `modes found 42`.
    pub headline: String,
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
    /// Directory of the run's results.
    pub dir: PathBuf,
    /// Skip evaluations and outputs (benchmarking): only train.
    pub train_only: bool,
    /// Overlap the student's update and the teacher's step on two threads
    /// (off when several runs already share the cores).
    pub parallel_teacher: bool,
    /// Allow the run's own progress bar (a sweep shows one bar for all runs instead).
    pub progress: bool,
    /// Root of the datasets the sequence tasks read (`--datasets`,
    /// `RUNNER_DATASETS` or `datasets/`; see `datasets::resolve_root`).
    pub datasets: PathBuf,
}

/// Train `exp` and write its results.
pub fn run(exp: &Experiment, opts: &RunOptions) -> Result<RunSummary, RunError> {
    let start = Instant::now();
    let exp = resolve(exp);
    let device = make_device(exp.device)?;
    let dir = opts.dir.clone();
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RunError::Io { path, source }
    };
    if !opts.train_only {
        let cfg_path = dir.join("config.toml");
        let text = toml::to_string(&exp).expect("an experiment serializes to TOML");
        write_atomic(&cfg_path, text.as_bytes()).map_err(io(&cfg_path))?;
    }

    let (EnvConfig::Grid(grid_cfg), PolicyConfig::Mlp(mlp_cfg)) = (&exp.env, &exp.policy) else {
        return crate::discovery::run(&exp, opts, start);
    };
    let grid = Grid::new(grid_cfg);
    let is_db = matches!(exp.objective, ObjectiveConfig::Db(_));
    let (epsilon, teacher_cfg, gafn_cfg) = match &exp.behaviour {
        BehaviourConfig::OnPolicy(b) => (b.epsilon, None, None),
        BehaviourConfig::Teacher(t) => (t.epsilon, Some(t.clone()), None),
        BehaviourConfig::Gafn(g) => (g.epsilon, None, Some(g.clone())),
    };
    // Outputs: d+1 forward logits, d backward logits, and log F(s) for DB and GAFN.
    let mut dims = vec![grid.obs_dim()];
    dims.extend(std::iter::repeat_n(mlp_cfg.hidden, mlp_cfg.layers));
    dims.push(
        grid.n_forward_actions()
            + grid.n_backward_actions()
            + usize::from(is_db || gafn_cfg.is_some()),
    );
    let mut student = Sampler::new(
        &dims,
        &exp.objective,
        None,
        &device,
        &mut rng::stream(exp.seed, Stream::InitStudent),
    )?;
    let mut teacher = match &teacher_cfg {
        Some(t) => Some(Sampler::new(
            &dims,
            &exp.objective,
            t.lr,
            &device,
            &mut rng::stream(exp.seed, Stream::InitTeacher),
        )?),
        None => None,
    };
    let mut gafn = match gafn_cfg {
        Some(cfg) => {
            let rnd = Rnd::new(
                grid.obs_dim(),
                &cfg,
                &device,
                &mut rng::stream(exp.seed, Stream::InitAux),
            )?;
            let opt = Adam::new(vec![(rnd.predictor.vars(), cfg.rnd_lr)], None)?;
            Some(Gafn { cfg, rnd, opt })
        }
        None => None,
    };
    let mut replay = exp.buffer.as_ref().map(Replay::new);
    let needs_rt = teacher.is_some()
        || replay
            .as_ref()
            .is_some_and(|r| r.priority() == Priority::TeacherReward);
    let rt_cfg = exp.teacher_reward();
    let local_search = exp.local_search.as_ref().map(|l| match l {
        LocalSearchConfig::BackAndForth(c) => c.clone(),
    });

    let schedule = exp.schedule();
    let steps = exp.train.steps.expect("resolved");
    let batch_size = exp.train.batch_size.expect("resolved");
    let mut sampling_rng = rng::stream(exp.seed, Stream::Sampling);
    let mut eval_rng = rng::stream(exp.seed, Stream::Eval);
    let mut buffer_rng = rng::stream(exp.seed, Stream::Buffer);
    let mut ls_rng = rng::stream(exp.seed, Stream::LocalSearch);
    let mut discovery = GridDiscovery::new(&grid, exp.eval.window.expect("resolved"));
    let mut table = CsvTable::new(dir.join("metrics.csv"), GRID_COLUMNS);
    let mut losses: Vec<f32> = Vec::with_capacity(steps as usize);
    let mut teacher_losses: Vec<f32> = Vec::new();
    let mut n_reward_calls: u64 = 0;
    let mut total_states: u64 = 0;
    let interval = exp.eval.every.expect("resolved");
    let mut last_eval_l1 = f64::NAN;
    let plots = exp.eval.plot && !opts.train_only;
    if plots {
        plot::target_density(&grid, &dir.join("plots"))?;
    }

    let mut evaluate = |step: u64,
                        student: &Sampler,
                        losses: &[f32],
                        teacher_losses: &[f32],
                        discovery: &GridDiscovery,
                        n_reward_calls: u64,
                        eval_rng: &mut Rng|
     -> Result<f64, RunError> {
        let samples = exp.eval.samples.expect("resolved");
        let mut terminals = Vec::with_capacity(samples);
        while terminals.len() < samples {
            let n = exp
                .eval
                .batch_size
                .expect("resolved")
                .min(samples - terminals.len());
            let t = grid.rollout(&student.net, n, 0.0, eval_rng, &device)?;
            terminals.extend((0..t.len()).filter_map(|b| grid.terminal_index(t.terminal(b))));
        }
        if plots {
            plot::empirical_density(&grid, &terminals, step, &dir.join("plots"))?;
        }
        let (eval_l1, eval_wl1) = empirical_l1(&grid, terminals.into_iter());
        let (l1, wl1) = discovery.window_l1(&grid);
        let tail_mean = |xs: &[f32]| tail_mean(xs, exp.train.loss_window);
        table
            .push(&[
                step.to_string(),
                fmt_f64(tail_mean(losses)),
                fmt_f64(tail_mean(teacher_losses)),
                fmt_f64(student.log_z_value()?),
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
    let bar = progress_bar(
        steps,
        exp.train.progress && opts.progress && !opts.train_only,
        &exp.name,
    );
    for i in 0..steps {
        let source = schedule[i as usize % schedule.len()];
        // 1. The batch: replayed, or freshly sampled (and maybe refined).
        let replayed = match (source, &replay) {
            (Source::Buffer, Some(r)) => r.sample(&grid, batch_size, &mut buffer_rng),
            _ => None,
        };
        let fresh = replayed.is_none();
        let trajs = match replayed {
            Some(t) => t,
            None => {
                // An empty buffer falls back to the student.
                let net = match (&teacher, source.teacher()) {
                    (Some(t), true) => &t.net,
                    _ => &student.net,
                };
                let mut t = grid.rollout(net, batch_size, epsilon, &mut sampling_rng, &device)?;
                n_reward_calls += t.len() as u64;
                if let (Some(ls), true) = (&local_search, source.local_search()) {
                    let by_teacher = source.teacher() && teacher.is_some();
                    let mut score = |c: &Trajectories| -> candle_core::Result<Vec<f64>> {
                        if !by_teacher {
                            return Ok(c.reward.clone());
                        }
                        let packed = grid.pack(c, mlp_cfg.learn_pb, &device)?;
                        let delta = student
                            .residuals(&packed, &log_rewards(c, &device).map_err(candle_err)?)
                            .map_err(candle_err)?;
                        Ok(teacher_rewards(&rt_cfg, &delta, c, is_db)
                            .map_err(candle_err)?
                            .0)
                    };
                    let (refined, calls) =
                        ls.refine(&grid, net, t, &mut score, &mut ls_rng, &device)?;
                    t = refined;
                    n_reward_calls += calls;
                }
                discovery.record(&grid, &t);
                t
            }
        };
        total_states += trajs.n_states() as u64;

        // 2. The student's residuals and loss.
        let packed = grid.pack(&trajs, mlp_cfg.learn_pb, &device)?;
        let log_r = log_rewards(&trajs, &device)?; // [B]
        let (delta, loss) = match &gafn {
            Some(g) => {
                let out = student.net.forward(&packed.obs)?; // [N, out]
                let errors = g.rnd.errors(&packed.obs)?; // [N]
                let ri = (errors.detach() * g.cfg.ri_scale)?;
                let (reward, last_row, row_weight) = gafn_inputs(&trajs, &device)?;
                let z = student.log_z.as_ref().expect("gafn uses tb").as_tensor();
                let delta = gafn_delta(&out, &packed, z, &ri, &reward, &last_row, g.cfg.edge_ri)?;
                let loss =
                    (tb_loss(&delta)? + (rnd_loss(&errors, &row_weight)? * g.cfg.ri_loss_weight)?)?;
                (delta, loss)
            }
            None => {
                let delta = student.residuals(&packed, &log_r)?;
                let loss = student.loss(&delta, &packed)?;
                (delta, loss)
            }
        };
        losses.push(finite(&loss, "student", i)?);
        let delta = delta.detach();
        let rt = if needs_rt {
            teacher_rewards(&rt_cfg, &delta, &trajs, is_db)?
        } else {
            (Vec::new(), Vec::new())
        };

        // 3. Updates: the student; the teacher on the same batch towards its
        // reward (the two are independent given the residuals: two threads).
        match (&mut teacher, &mut gafn) {
            (Some(t), _) => {
                let log_rt: Vec<f32> =
                    rt.0.iter()
                        .map(|&r| rt_cfg.teacher_log_reward(r) as f32)
                        .collect();
                let log_rt = Tensor::from_vec(log_rt, trajs.len(), &device)?; // [B]
                let teacher_step = |t: &mut Sampler| -> Result<f32, RunError> {
                    let d = t.residuals(&packed, &log_rt)?;
                    let l = t.loss(&d, &packed)?;
                    let v = finite(&l, "teacher", i)?;
                    t.update(&l)?;
                    Ok(v)
                };
                let tloss = update_student_and_teacher(
                    opts.parallel_teacher,
                    || student.update(&loss),
                    || teacher_step(t),
                )?;
                teacher_losses.push(tloss);
            }
            (None, Some(g)) => {
                let grads = loss.backward()?;
                student.opt.step(&grads)?;
                g.opt.step(&grads)?;
            }
            (None, None) => student.update(&loss)?,
        }

        // 4. Fresh batches enter the buffer.
        if let (Some(r), true) = (&mut replay, fresh) {
            r.add(&grid, &trajs, &delta.to_vec1()?, &rt);
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
        headline: format!(
            "goals found {}, eval L1 {}",
            discovery.n_goals_found(),
            fmt_f64(last_eval_l1)
        ),
        wall_s: start.elapsed().as_secs_f64(),
        mean_batch_states: total_states as f64 / steps as f64,
    })
}

/// A run error inside a candle-typed callback.
fn candle_err(e: RunError) -> candle_core::Error {
    match e {
        RunError::Candle(c) => c,
        other => candle_core::Error::Msg(other.to_string()),
    }
}

/// GAFN inputs of a batch: R(x) `[B]`, the row of each x `[B]`, and the
/// `[B, N]` matrix averaging each entry's states.
fn gafn_inputs(
    trajs: &Trajectories,
    device: &Device,
) -> Result<(Tensor, Tensor, Tensor), RunError> {
    let (b, n) = (trajs.len(), trajs.n_states());
    let reward: Vec<f32> = trajs.reward.iter().map(|&r| r as f32).collect();
    let last: Vec<u32> = trajs.offsets[1..].iter().map(|&o| o as u32 - 1).collect();
    let mut weight = vec![0f32; b * n];
    for e in 0..b {
        let (lo, hi) = (trajs.offsets[e], trajs.offsets[e + 1]);
        for r in lo..hi {
            weight[e * n + r] = 1.0 / (hi - lo) as f32;
        }
    }
    Ok((
        Tensor::from_vec(reward, b, device)?,
        Tensor::from_vec(last, b, device)?,
        Tensor::from_vec(weight, (b, n), device)?,
    ))
}
