//! The training loop of the biochemical discovery tasks (spec/discovery.md
//! "Training loop"), one round at a time:
//!
//! 1. an online batch of `train.batch_size` complete trajectories from the
//!    schedule's source for this round (student, or teacher; optionally built
//!    by local search); the student trains on it by TB, then the teacher on
//!    the same trajectories towards log r_T + alpha log R; every x never seen
//!    before enters the history and the `recent` buffer;
//! 2. an offline batch of terminal states from the buffer (uniform, PRT or
//!    PER selection), each with a fresh uniform-P_B trajectory; student, then
//!    teacher, train on it (skipped while the buffer holds fewer than
//!    `min_size` entries);
//! 3. every `eval.every` rounds (and at round 0 and after the last) the
//!    student is evaluated and a row is appended to `metrics.csv`.

pub mod batch;

use std::collections::HashSet;
use std::time::Instant;

use candle_core::{Device, Tensor, Var};

use crate::behaviour::{Source, TeacherConfig};
use crate::buffer::recent::RecentDiscoveries;
use crate::buffer::RecentBufferConfig;
use crate::config::Experiment;
use crate::envs::oracle::{default_cache_dir, Task};
use crate::envs::sequence::SeqMdp;
use crate::envs::task::SeqEnv;
use crate::metrics::discovery::{evaluate, ExactSet, SeqEval};
use crate::objective::tb::{tb_loss_clamped, TbConfig};
use crate::optim::Adam;
use crate::output::{fmt_f64, progress_bar, CsvTable};
use crate::policy::ssr::Ssr;
use crate::registry::{
    BehaviourConfig, BufferConfig, EnvConfig, LocalSearchConfig, ObjectiveConfig, PolicyConfig,
};
use crate::rng::{self, Rng, Stream};
use crate::search::{sequence as seq_search, SEQ_ITERATIONS, SEQ_K};
use crate::train::{
    finite, make_device, tail_mean, update_student_and_teacher, RunError, RunOptions, RunSummary,
};

use batch::{host_tensor, rollout, SeqTraj, Transitions};

/// The paper's number of rounds (spec/discovery.md task table).
pub fn paper_rounds(task: Task) -> u64 {
    match task {
        Task::Qm9Str => 1000,
        Task::SehStr | Task::TfBind8 => 2000,
    }
}

/// The paper's evaluation interval in rounds (spec/discovery.md task table).
pub fn paper_eval_every(task: Task) -> u64 {
    match task {
        Task::Qm9Str => 20,
        Task::SehStr | Task::TfBind8 => 50,
    }
}

/// Trajectories per online and offline batch when unset (the reference's 32).
pub const SEQ_BATCH: usize = 32;
/// On-policy evaluation samples when unset (spec: 2048).
pub const SEQ_EVAL_SAMPLES: usize = 2048;
/// Rollouts per network call at evaluation when unset.
pub const SEQ_EVAL_CHUNK: usize = 256;

/// Fill in the sequence-task defaults (rounds, batch sizes, evaluation
/// interval, beta, buffer batch, local-search k and i, schedule).
pub fn resolve(exp: &Experiment) -> Experiment {
    let mut exp = exp.clone();
    let (task, _) = exp.env.sequence().expect("a sequence task");
    let rounds = (paper_rounds(task) as f64 * exp.train.budget_scale)
        .round()
        .max(1.0) as u64;
    exp.train.steps.get_or_insert(rounds);
    let batch_size = *exp.train.batch_size.get_or_insert(SEQ_BATCH);
    exp.eval.samples.get_or_insert(SEQ_EVAL_SAMPLES);
    exp.eval.batch_size.get_or_insert(SEQ_EVAL_CHUNK);
    exp.eval.every.get_or_insert(paper_eval_every(task));
    if let EnvConfig::Qm9Str(c) | EnvConfig::SehStr(c) | EnvConfig::TfBind8(c) = &mut exp.env {
        c.beta.get_or_insert(task.default_beta());
    }
    if let Some(BufferConfig::Recent(b)) = &mut exp.buffer {
        b.batch.get_or_insert(batch_size);
    }
    if let Some(LocalSearchConfig::BackAndForth(l)) = &mut exp.local_search {
        l.iterations.get_or_insert(SEQ_ITERATIONS);
        l.k.get_or_insert(SEQ_K);
    }
    let schedule = exp.schedule();
    match &mut exp.behaviour {
        BehaviourConfig::OnPolicy(b) => b.schedule = Some(schedule),
        BehaviourConfig::Teacher(t) => t.schedule = Some(schedule),
        BehaviourConfig::Gafn(_) => {}
    }
    exp
}

/// Columns of the discovery `metrics.csv`.
pub const SEQ_COLUMNS: &[&str] = &[
    "round",
    "loss",
    "teacher_loss",
    "log_z",
    "num_modes_all",
    "num_modes_onpolicy",
    "log_z_est",
    "log_z_gap",
    "elbo",
    "eubo",
    "pearson",
    "expected_reward_gap",
    "mean_reward",
    "top100_reward",
    "frac_unique",
    "n_discovered",
    "n_reward_calls",
    "wall_s",
];

/// An SSR sampler trained by TB: network, log Z and optimiser.
struct SeqSampler {
    net: Ssr,
    log_z: Var,
    opt: Adam,
    /// Squared residuals are clamped to this (0: no clamp).
    loss_clamp: f64,
    /// log Z is clamped to at least this after every step.
    log_z_min: Option<f64>,
}

impl SeqSampler {
    fn new(
        feature_dim: usize,
        hidden: usize,
        tb: &TbConfig,
        lr: f64,
        device: &Device,
        rng: &mut Rng,
    ) -> Result<Self, RunError> {
        let net = Ssr::new(feature_dim, hidden, device, rng)?;
        let log_z = Var::from_tensor(&Tensor::new(tb.log_z_init as f32, device)?)?;
        let clip = (tb.clip_grad_norm > 0.0).then_some(tb.clip_grad_norm);
        let opt = Adam::new(
            vec![(net.vars(), lr), (vec![log_z.clone()], tb.log_z_lr)],
            clip,
        )?;
        Ok(Self {
            net,
            log_z,
            opt,
            loss_clamp: tb.loss_clamp,
            log_z_min: tb.log_z_min,
        })
    }

    /// TB residuals `[B]` towards `back` = log R + sum log P_B (`[B]`).
    fn residuals(&self, tr: &Transitions, mdp: &SeqMdp, back: &Tensor) -> Result<Tensor, RunError> {
        let sum_pf = tr.sum_log_pf(mdp, &self.net)?; // [B]
        Ok((back - sum_pf)?.broadcast_sub(self.log_z.as_tensor())?)
    }

    /// One optimiser step on `loss`, then the log Z clamp.
    fn update(&mut self, loss: &Tensor) -> Result<(), RunError> {
        let grads = loss.backward()?;
        self.opt.step(&grads)?;
        if let Some(min) = self.log_z_min {
            let z = self.log_z.as_tensor().to_scalar::<f32>()?;
            if (z as f64) < min {
                self.log_z
                    .set(&Tensor::new(min as f32, self.log_z.device())?)?;
            }
        }
        Ok(())
    }

    fn log_z_value(&self) -> Result<f64, RunError> {
        Ok(self.log_z.as_tensor().to_scalar::<f32>()? as f64)
    }
}

/// Running totals of the training steps of a run.
#[derive(Default)]
struct Tally {
    /// Student loss of every step (online and offline).
    losses: Vec<f32>,
    /// Teacher loss of every step.
    teacher_losses: Vec<f32>,
    /// States over all trained batches (for the benchmark's states per batch).
    states: u64,
    /// Trained batches.
    batches: u64,
}

impl Tally {
    fn add(&mut self, step: &StepResult, trajs: &[SeqTraj]) {
        self.losses.push(step.loss);
        self.teacher_losses.extend(step.teacher_loss);
        self.states += trajs.iter().map(|t| t.states.len() as u64).sum::<u64>();
        self.batches += 1;
    }
}

/// What one training step reports.
struct StepResult {
    loss: f32,
    teacher_loss: Option<f32>,
    /// The student's teacher signal r_T of each trajectory (PER priority).
    signals: Vec<f64>,
}

/// The student's TB step on `trajs` (log R of each in `log_r`), then the
/// teacher's on the same trajectories towards its reward (on a second thread
/// when `parallel`).
#[allow(clippy::too_many_arguments)]
fn train_step(
    env: &SeqEnv,
    student: &mut SeqSampler,
    teacher: Option<&mut SeqSampler>,
    signal_cfg: &TeacherConfig,
    trajs: &[SeqTraj],
    log_r: &[f64],
    parallel: bool,
    round: u64,
    device: &Device,
) -> Result<StepResult, RunError> {
    let mdp = &env.mdp;
    let tr = Transitions::new(mdp, trajs)?;
    let log_pb: Vec<f64> = trajs.iter().map(|t| t.log_pb(mdp)).collect();
    let back: Vec<f64> = log_r.iter().zip(&log_pb).map(|(r, b)| r + b).collect();
    let back_t = host_tensor(&back, device)?; // [B]
    let delta = student.residuals(&tr, mdp, &back_t)?; // [B]
    let loss = tb_loss_clamped(&delta, student.loss_clamp)?;
    let value = finite(&loss, "student", round)?;
    let deltas: Vec<f32> = delta.detach().to_vec1()?;
    let signals: Vec<f64> = deltas
        .iter()
        .map(|&d| signal_cfg.discovery_signal(d as f64, student.loss_clamp))
        .collect();
    let teacher_loss = match teacher {
        None => {
            student.update(&loss)?;
            None
        }
        Some(t) => {
            let t_back: Vec<f64> = signals
                .iter()
                .zip(log_r)
                .zip(&log_pb)
                .map(|((&s, &r), &pb)| signal_cfg.discovery_log_reward(s, r) + pb)
                .collect();
            let t_back = host_tensor(&t_back, device)?; // [B]
            let teacher_step = |t: &mut SeqSampler| -> Result<f32, RunError> {
                let d = t.residuals(&tr, mdp, &t_back)?;
                let l = tb_loss_clamped(&d, t.loss_clamp)?;
                let v = finite(&l, "teacher", round)?;
                t.update(&l)?;
                Ok(v)
            };
            Some(update_student_and_teacher(
                parallel,
                || student.update(&loss),
                || teacher_step(t),
            )?)
        }
    };
    Ok(StepResult {
        loss: value,
        teacher_loss,
        signals,
    })
}

/// Train a resolved sequence-task experiment (called by `train::run`, which
/// has written `config.toml`).
pub fn run(exp: &Experiment, opts: &RunOptions, start: Instant) -> Result<RunSummary, RunError> {
    let device = make_device(exp.device)?;
    let dir = opts.dir.clone();
    let (task, env_cfg) = exp.env.sequence().expect("a sequence task");
    let PolicyConfig::Ssr(ssr_cfg) = &exp.policy else {
        unreachable!("config check: sequence tasks use `ssr`")
    };
    let ObjectiveConfig::Tb(tb) = &exp.objective else {
        unreachable!("config check: sequence tasks use `tb`")
    };
    let mut exact_rng = rng::stream(exp.seed, Stream::ExactSamples);
    let env = SeqEnv::load(
        task,
        env_cfg,
        &opts.datasets,
        &default_cache_dir(),
        &mut exact_rng,
    )?;
    let exact = if opts.train_only {
        None
    } else {
        ExactSet::new(&env, &mut exact_rng)?
    };
    let (epsilon, teacher_cfg) = match &exp.behaviour {
        BehaviourConfig::OnPolicy(b) => (b.epsilon, None),
        BehaviourConfig::Teacher(t) => (t.epsilon, Some(t.clone())),
        BehaviourConfig::Gafn(_) => unreachable!("config check: no gafn on sequence tasks"),
    };
    let feature_dim = env.mdp.feature_dim();
    let mut student = SeqSampler::new(
        feature_dim,
        ssr_cfg.hidden,
        tb,
        tb.lr,
        &device,
        &mut rng::stream(exp.seed, Stream::InitStudent),
    )?;
    let mut teacher = match &teacher_cfg {
        Some(t) => Some(SeqSampler::new(
            feature_dim,
            ssr_cfg.hidden,
            tb,
            t.lr.unwrap_or(tb.lr),
            &device,
            &mut rng::stream(exp.seed, Stream::InitTeacher),
        )?),
        None => None,
    };
    let signal_cfg = exp.teacher_reward();
    let buffer_cfg: Option<RecentBufferConfig> = match &exp.buffer {
        Some(BufferConfig::Recent(b)) => Some(b.clone()),
        _ => None,
    };
    let mut buffer = buffer_cfg
        .as_ref()
        .map(|b| RecentDiscoveries::<Vec<u8>>::new(b.size));
    let local_search = exp.local_search.as_ref().map(|l| match l {
        LocalSearchConfig::BackAndForth(c) => c.clone(),
    });

    let schedule = exp.schedule();
    let rounds = exp.train.steps.expect("resolved");
    let batch_size = exp.train.batch_size.expect("resolved");
    let every = exp.eval.every.expect("resolved");
    let mut sampling_rng = rng::stream(exp.seed, Stream::Sampling);
    let mut eval_rng = rng::stream(exp.seed, Stream::Eval);
    let mut buffer_rng = rng::stream(exp.seed, Stream::Buffer);
    let mut ls_rng = rng::stream(exp.seed, Stream::LocalSearch);
    let mut history: HashSet<Vec<u8>> = HashSet::new();
    let mut modes_found = 0usize;
    let mut tally = Tally::default();
    let mut n_reward_calls: u64 = 0;
    let mut table = CsvTable::new(dir.join("metrics.csv"), SEQ_COLUMNS);
    let io = |source| RunError::Io {
        path: dir.join("metrics.csv"),
        source,
    };
    let tail_mean = |xs: &[f32]| tail_mean(xs, exp.train.loss_window);
    let mut evaluate_row = |round: u64,
                            student: &SeqSampler,
                            losses: &[f32],
                            teacher_losses: &[f32],
                            modes_found: usize,
                            n_discovered: usize,
                            n_reward_calls: u64,
                            eval_rng: &mut Rng|
     -> Result<SeqEval, RunError> {
        let e = evaluate(
            &env,
            &student.net,
            exp.eval.samples.expect("resolved"),
            exp.eval.batch_size.expect("resolved"),
            exact.as_ref(),
            eval_rng,
        )?;
        table
            .push(&[
                round.to_string(),
                fmt_f64(tail_mean(losses)),
                fmt_f64(tail_mean(teacher_losses)),
                fmt_f64(student.log_z_value()?),
                modes_found.to_string(),
                e.num_modes_onpolicy.to_string(),
                fmt_f64(e.log_z_est),
                fmt_f64(e.log_z_gap),
                fmt_f64(e.elbo),
                fmt_f64(e.eubo),
                fmt_f64(e.pearson),
                fmt_f64(e.expected_reward_gap),
                fmt_f64(e.mean_reward),
                fmt_f64(e.top100_reward),
                fmt_f64(e.frac_unique),
                n_discovered.to_string(),
                n_reward_calls.to_string(),
                format!("{:.3}", start.elapsed().as_secs_f64()),
            ])
            .map_err(io)?;
        Ok(e)
    };

    if !opts.train_only {
        evaluate_row(0, &student, &[], &[], 0, 0, 0, &mut eval_rng)?;
    }
    let bar = progress_bar(
        rounds,
        exp.train.progress && opts.progress && !opts.train_only,
        &exp.name,
    );
    let log_r_of = |trajs: &[SeqTraj]| -> Vec<f64> {
        trajs
            .iter()
            .map(|t| env.log_reward_of_raw(env.raw(t.x())))
            .collect()
    };
    for round in 0..rounds {
        // 1. The online batch.
        let source = schedule[round as usize % schedule.len()];
        let net = match (&teacher, source.teacher()) {
            (Some(t), true) => &t.net,
            _ => &student.net,
        };
        let online = match (&local_search, source) {
            (Some(ls), Source::StudentLs | Source::TeacherLs) => seq_search::search(
                ls,
                &env,
                net,
                batch_size,
                epsilon,
                &mut sampling_rng,
                &mut ls_rng,
            )?,
            _ => rollout(&env.mdp, net, batch_size, epsilon, &mut sampling_rng)?,
        };
        n_reward_calls += online.len() as u64;
        let log_r = log_r_of(&online);
        for t in &online {
            if history.insert(t.x().to_vec()) && env.is_mode(t.x()) {
                modes_found += 1;
            }
        }
        let step = train_step(
            &env,
            &mut student,
            teacher.as_mut(),
            &signal_cfg,
            &online,
            &log_r,
            opts.parallel_teacher,
            round,
            &device,
        )?;
        tally.add(&step, &online);
        if let Some(buf) = &mut buffer {
            for ((t, &lr), &s) in online.iter().zip(&log_r).zip(&step.signals) {
                if !buf.record(t.x().to_vec(), lr.exp(), s) {
                    buf.update_signal(t.x(), s);
                }
            }
        }

        // 2. The offline batch from the recent discoveries.
        if let (Some(buf), Some(cfg)) = (&mut buffer, &buffer_cfg) {
            let picked: Option<Vec<Vec<u8>>> = buf
                .select(
                    cfg.batch.expect("resolved"),
                    cfg.selection,
                    cfg.min_size,
                    &mut buffer_rng,
                )
                .map(|v| v.into_iter().map(|d| d.x.clone()).collect());
            if let Some(xs) = picked {
                let offline = xs
                    .iter()
                    .map(|x| {
                        let states = env
                            .mdp
                            .sample_backward(&SeqEnv::terminal(x), &mut buffer_rng);
                        SeqTraj::from_states(&env.mdp, states)
                    })
                    .collect::<candle_core::Result<Vec<_>>>()?;
                let log_r = log_r_of(&offline);
                let step = train_step(
                    &env,
                    &mut student,
                    teacher.as_mut(),
                    &signal_cfg,
                    &offline,
                    &log_r,
                    opts.parallel_teacher,
                    round,
                    &device,
                )?;
                tally.add(&step, &offline);
                for (x, &s) in xs.iter().zip(&step.signals) {
                    buf.update_signal(x.as_slice(), s);
                }
            }
        }

        bar.inc(1);
        let done = round + 1;
        if !opts.train_only && (done % every == 0 || done == rounds) {
            bar.set_message(format!("modes {modes_found}"));
            evaluate_row(
                done,
                &student,
                &tally.losses,
                &tally.teacher_losses,
                modes_found,
                history.len(),
                n_reward_calls,
                &mut eval_rng,
            )?;
        }
    }
    bar.finish_and_clear();
    Ok(RunSummary {
        dir,
        steps: rounds,
        headline: format!("modes found {modes_found}, distinct x {}", history.len()),
        wall_s: start.elapsed().as_secs_f64(),
        mean_batch_states: tally.states as f64 / tally.batches.max(1) as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envs::sequence::{SeqMdpKind, SeqState};
    use crate::rng::stream;

    fn sampler(log_z_init: f64, log_z_min: Option<f64>) -> SeqSampler {
        let tb = TbConfig {
            lr: 1e-4,
            log_z_lr: 1e-2,
            log_z_init,
            clip_grad_norm: 0.0,
            loss_clamp: 5000.0,
            log_z_min,
        };
        SeqSampler::new(
            4,
            8,
            &tb,
            tb.lr,
            &Device::Cpu,
            &mut stream(0, Stream::InitStudent),
        )
        .unwrap()
    }

    /// TB on a hand trajectory with k = 2, L = 2: "" -> "1" -> "10" -> leaf.
    /// log P_B: "1" has one parent, "10" two ("0" and "1"), the leaf one:
    /// sum = -ln 2. log P_F from the network's rows: child 1 of the root,
    /// child 2 of "1" (children "01", "11", "10": the append of 1 merges with
    /// the prepend), and 0 for the leaf step. delta = log R - ln 2 - log Z -
    /// sum log P_F; the teacher signal is log(20 min(delta^2, 5000) + 1.001)
    /// when delta > 0 (spec/discovery.md "Student objective: TB").
    #[test]
    fn tb_residual_and_teacher_signal_on_a_hand_trajectory() {
        let mdp = SeqMdp::new(SeqMdpKind::PrependAppend, 2, 2).unwrap();
        let s = sampler(5.0, Some(0.0));
        let states = vec![
            SeqState::root(),
            SeqState::inner(vec![1]),
            SeqState::inner(vec![1, 0]),
            SeqMdp::leaf_of(vec![1, 0]),
        ];
        let traj = SeqTraj::from_states(&mdp, states.clone()).unwrap();
        assert_eq!(traj.chosen, vec![1, 2, 0]);
        assert!((traj.log_pb(&mdp) + 2f64.ln()).abs() < 1e-12);
        let parents = states[..3].to_vec();
        let children: Vec<_> = parents.iter().map(|p| mdp.children(p)).collect();
        let rows: Vec<Vec<f32>> = s
            .net
            .log_pf_all(&mdp, &parents, &children)
            .unwrap()
            .to_vec2()
            .unwrap();
        assert_eq!(rows[2][0], 0.0);
        let sum_pf = rows[0][1] as f64 + rows[1][2] as f64;
        for log_r in [10.0, 100.0, -3.0] {
            let tr = Transitions::new(&mdp, std::slice::from_ref(&traj)).unwrap();
            let back = host_tensor(&[log_r - 2f64.ln()], &Device::Cpu).unwrap();
            let delta: Vec<f32> = s.residuals(&tr, &mdp, &back).unwrap().to_vec1().unwrap();
            let expected = log_r - 2f64.ln() - 5.0 - sum_pf;
            assert!(
                (delta[0] as f64 - expected).abs() < 1e-4,
                "{delta:?} vs {expected}"
            );
            let t = TeacherConfig::default();
            let l = (expected * expected).min(5000.0);
            let weight = if expected > 0.0 { 20.0 } else { 1.0 };
            let r_t = t.discovery_signal(expected, 5000.0);
            assert!((r_t - (weight * l + 1.001).ln()).abs() < 1e-12);
            // Teacher target: log r_T + alpha log R.
            let a = TeacherConfig { alpha: 0.5, ..t };
            assert!((a.discovery_log_reward(r_t, log_r) - (r_t.ln() + 0.5 * log_r)).abs() < 1e-12);
        }
    }

    /// The clamped loss: min(delta^2, 5000) with no gradient beyond; the
    /// mean over entries (1 + 5000) / 2 for residuals 1 and 100.
    #[test]
    fn clamped_loss_has_no_gradient_beyond_the_clamp() {
        let z = Var::new(&[1f32, 100.0], &Device::Cpu).unwrap();
        let loss = tb_loss_clamped(z.as_tensor(), 5000.0).unwrap();
        assert_eq!(loss.to_scalar::<f32>().unwrap(), 2500.5);
        let g: Vec<f32> = loss.backward().unwrap().get(&z).unwrap().to_vec1().unwrap();
        // d/dz (z^2 / 2) = z for the first entry, 0 for the clamped one.
        assert_eq!(g, vec![1.0, 0.0]);
    }

    /// log Z is clamped to >= 0 after a step that pushes it below.
    #[test]
    fn log_z_is_clamped_after_the_step() {
        let mdp = SeqMdp::new(SeqMdpKind::PrependAppend, 2, 2).unwrap();
        let mut s = sampler(0.0, Some(0.0));
        let traj = rollout(&mdp, &s.net, 4, 0.0, &mut stream(0, Stream::Sampling)).unwrap();
        let tr = Transitions::new(&mdp, &traj).unwrap();
        // back = -50: delta about -50 < 0 (delta^2 below the clamp), so the gradient lowers log Z.
        let back = host_tensor(&[-50.0; 4], &Device::Cpu).unwrap();
        let loss = tb_loss_clamped(&s.residuals(&tr, &mdp, &back).unwrap(), 5000.0).unwrap();
        s.update(&loss).unwrap();
        assert_eq!(s.log_z_value().unwrap(), 0.0);
        let mut free = sampler(0.0, None);
        let loss = tb_loss_clamped(&free.residuals(&tr, &mdp, &back).unwrap(), 5000.0).unwrap();
        free.update(&loss).unwrap();
        assert!(free.log_z_value().unwrap() < 0.0);
    }
}
