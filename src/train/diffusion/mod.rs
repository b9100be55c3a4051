//! The diffusion-sampler adapter of the training loop (docs/diffusion.md),
//! over the process of [`process`]:
//! batches are B trajectories of T Gaussian steps — forward rollouts of a
//! policy, or Brownian-bridge backward trajectories of replayed or
//! teacher-sampled terminal states — the objective any of TB (loss 0.5
//! delta^2, as the reference), DB, SubTB (their losses also halved, with a
//! time-conditioned flow head log F(x, t)), the buffer holds terminal states ranked by a priority fixed
//! at insertion, and MALA local search refines buffer samples.

use std::borrow::Cow;
use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;

mod process;

use candle_core::Device;

use super::checkpoint::Checkpointed;
use super::draw::{DrawSamples, SampleTable};
use super::evaluate::{Counters, Evaluator};
use super::family::{Draw, Family, Fresh};
use super::local_search::LocalSearch;
use super::replay::Replay;
use super::sampler::Sampler;
use super::{RunError, RunOptions};
use crate::behaviour::hooks::{SignalGate, Teaching};
use crate::behaviour::teacher::Signals;
use crate::buffer::{Priority, ReplayBuffer};
use crate::envs::diffusion::sde::Paths;
use crate::envs::diffusion::target::{Picture, TargetError};
use crate::metrics::diffusion::{bounds, Bounds};
use crate::metrics::{quantile, Metric};
use crate::objective::balance::Balance;
use crate::objective::tb::tb_residuals;
use crate::output::fmt_f64;
use crate::output::scatter;
use crate::plan::diffusion::{BufferPlan, DiffusionPlan};
use crate::plan::Plan;
use crate::policy::diffusion::{DiffusionNet, DiffusionNetConfig};
use crate::rng::{self, Rng, Stream, Streams};
use crate::search::mala::mala;
use crate::search::MalaConfig;
use process::{PathTensors, Process};

/// The columns of the diffusion energies' `metrics.csv` between
/// `log_z_learned` and `wall_s`.
pub const DIFFUSION_METRICS: &[&str] = &[
    "log_z_is",
    "delta_log_z",
    "elbo",
    "eubo",
    "w2",
    "buffer_size",
    "n_energy_calls",
];

/// r_T of an x below the threshold tau: ln(1e-12 + 1.001) (docs/diffusion.md
/// "Loss and teacher reward").
fn gated_signal() -> f64 {
    (1e-12f64 + 1.001).ln()
}

/// Where a batch came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// A forward rollout of the student (or of the teacher, for a plain
    /// `teacher` source): it may enter the buffer.
    Fresh,
    /// Teacher samples above tau with bridge trajectories (`teacher->buffer`).
    Teacher,
    /// Replayed from the buffer.
    Replay,
}

/// A batch of trajectories and log R of their terminal states.
pub struct DiffBatch {
    origin: Origin,
    /// The trajectories the student's loss is computed on.
    paths: Paths,
    /// log R(x) `[B]`.
    log_r: Vec<f64>,
    /// With a teacher: the entries with log R > tau and fresh bridge
    /// trajectories of their x, for the teacher's loss.
    teacher: Option<(Vec<usize>, Paths)>,
    /// Whether the run's MALA step follows this batch.
    local_search: bool,
}

/// The tensors of a batch: the student's trajectories, and the teacher's
/// (the bridge trajectories of the entries above tau, when there are some).
pub struct DiffPacked {
    paths: PathTensors,
    teacher: Option<Box<DiffPacked>>,
}

/// Terminal states x `[d]` with their log R, unkeyed, ranked by a priority
/// fixed at insertion.
type TerminalBuffer = ReplayBuffer<(), (Vec<f32>, f64)>;

/// What a diffusion run changes while training (its checkpoint state).
#[derive(serde::Serialize, serde::Deserialize)]
struct DiffusionState {
    buffer: Option<TerminalBuffer>,
    tau: Option<f64>,
    seeded: bool,
    iteration: u64,
    energy_calls: u64,
    streams: Streams,
    exact_rng: Rng,
}

/// The diffusion family of one run.
pub struct DiffusionFamily {
    process: Process,
    net_cfg: DiffusionNetConfig,
    /// The network has a flow head log F(x, t) (DB, SubTB).
    flow_head: bool,
    batch_size: usize,
    has_teacher: bool,
    buffer: Option<(TerminalBuffer, BufferPlan)>,
    mala: Option<MalaConfig>,
    /// The threshold tau on log R: the 90th percentile over one student
    /// batch drawn before training (set at the first sample).
    tau: Option<f64>,
    /// Whether a fresh batch has entered the buffer yet (the first always does).
    seeded: bool,
    /// The training iteration of the last fresh batch (its exploration).
    iteration: u64,
    /// Energy calls for training (tau batch, fresh batches, MALA).
    energy_calls: u64,
    /// Exact samples for EUBO and W2 `[n, d]`, drawn once before training
    /// (`None` when the target has no exact sampler, or for a training-only run).
    eval_data: Option<Vec<f64>>,
    /// A failure of the target during MALA (which runs where no error can
    /// be returned): the next batch or evaluation returns it.
    failure: Option<TargetError>,
    eval_samples: usize,
    eval_chunk: usize,
    final_samples: usize,
    total_steps: u64,
    plots: Option<PathBuf>,
    streams: Streams,
    exact_rng: Rng,
}

impl DiffusionFamily {
    /// The family of `plan` (whose family part is `d`).
    pub fn new(
        plan: &Plan,
        d: &DiffusionPlan,
        opts: &RunOptions,
        device: &Device,
    ) -> Result<Self, RunError> {
        d.energy.set_run_dir(&opts.dir);
        let mut exact_rng = rng::stream(plan.seed, Stream::ExactSamples);
        let eval_data = match opts.train_only {
            true => None,
            false => d.energy.sample(plan.eval.samples, &mut exact_rng),
        };
        let buffer = d.buffer.map(|b| {
            let prioritized = b.priority != Priority::Uniform;
            (ReplayBuffer::new(b.size, prioritized), b)
        });
        Ok(Self {
            process: Process {
                energy: Arc::clone(&d.energy),
                sde: d.sde,
                device: device.clone(),
            },
            net_cfg: d.net.clone(),
            flow_head: d.flow_head,
            batch_size: plan.batch_size,
            has_teacher: plan.teacher.is_some(),
            buffer,
            mala: d.local_search.clone(),
            tau: None,
            seeded: false,
            iteration: 0,
            energy_calls: 0,
            eval_data,
            failure: None,
            eval_samples: plan.eval.samples,
            eval_chunk: plan.eval.batch_size,
            final_samples: d.final_samples,
            total_steps: plan.steps,
            plots: (d.plot && !opts.train_only).then(|| opts.dir.join("plots")),
            streams: Streams::new(plan.seed),
            exact_rng,
        })
    }

    /// sum log P_F (no gradient, f64) of backward trajectories of `x` `[n, d]` under `net`.
    fn log_weights_backward(
        &mut self,
        net: &DiffusionNet,
        x: &[f64],
    ) -> Result<Vec<f64>, RunError> {
        let d = self.process.sde.dim;
        let mut out = Vec::with_capacity(x.len() / d);
        for chunk in x.chunks(self.eval_chunk * d) {
            let x32: Vec<f32> = chunk.iter().map(|&v| v as f32).collect();
            let paths = self.process.sde.bridge(&x32, &mut self.streams.eval);
            let pt = self.process.tensors(net.uses_langevin(), &paths)?;
            let log_r = self.process.energy.log_reward_batch(chunk)?;
            // log R + sum log P_B - sum log P_F = TB's delta without log Z.
            let balance = self.process.balance(net, &pt)?;
            let delta: Vec<f32> = tb_residuals(&balance, &log_r, None)?.to_vec1()?;
            out.extend(delta.iter().map(|&v| v as f64));
        }
        Ok(out)
    }

    /// `n` evaluation samples of `net` and their log-weights
    /// log R + sum log P_B - sum log P_F.
    fn forward_weights(
        &mut self,
        net: &DiffusionNet,
        n: usize,
    ) -> Result<(Vec<f64>, Vec<f64>), RunError> {
        let mut rng = self.streams.eval.clone();
        let (mut xs, mut w) = (
            Vec::with_capacity(n * self.process.sde.dim),
            Vec::with_capacity(n),
        );
        let mut left = n;
        while left > 0 {
            let m = left.min(self.eval_chunk);
            let (paths, log_pf) = self.process.rollout(net, m, 0.0, &mut rng)?;
            let log_pb = self.process.sde.log_pb(&paths);
            let log_r = self.process.log_rewards_of(paths.terminal())?;
            w.extend((0..m).map(|j| log_r[j] + log_pb[j] - log_pf[j]));
            xs.extend(paths.terminal().iter().map(|&v| v as f64));
            left -= m;
        }
        self.streams.eval = rng;
        Ok((xs, w))
    }

    /// tau: the 90th percentile (linear interpolation) of log R over one
    /// student batch.
    fn threshold(&mut self, student: &DiffusionNet) -> Result<f64, RunError> {
        let mut rng = self.streams.sampling.clone();
        let (paths, _) = self
            .process
            .rollout(student, self.batch_size, 0.0, &mut rng)?;
        self.streams.sampling = rng;
        self.energy_calls += self.batch_size as u64;
        Ok(quantile(
            &self.process.log_rewards_of(paths.terminal())?,
            0.9,
        ))
    }

    /// Bridge trajectories of the entries of `x` with log R > tau, for the teacher.
    fn teacher_part(&mut self, x: &[f32], log_r: &[f64]) -> Option<(Vec<usize>, Paths)> {
        if !self.has_teacher {
            return None;
        }
        let tau = self.tau.unwrap_or(f64::NEG_INFINITY);
        let d = self.process.sde.dim;
        let keep: Vec<usize> = (0..log_r.len()).filter(|&j| log_r[j] > tau).collect();
        let kept: Vec<f32> = keep
            .iter()
            .flat_map(|&j| x[j * d..(j + 1) * d].iter().copied())
            .collect();
        let paths = self.process.sde.bridge(&kept, &mut self.streams.buffer);
        Some((keep, paths))
    }

    /// The batch of `paths`, its teacher part drawn.
    fn batch(&mut self, origin: Origin, paths: Paths, log_r: Vec<f64>, ls: bool) -> DiffBatch {
        let teacher = self.teacher_part(paths.terminal(), &log_r);
        DiffBatch {
            origin,
            paths,
            log_r,
            teacher,
            local_search: ls,
        }
    }

    /// MALA on a buffer batch; every accepted proposal after burn-in enters
    /// the buffer with priority log R.
    fn local_search(&mut self) {
        let (Some(cfg), Some((buf, plan))) = (&self.mala, &mut self.buffer) else {
            return;
        };
        if buf.is_empty() {
            return;
        }
        let start: Vec<f64> = buf
            .sample(plan.batch, &mut self.streams.buffer)
            .into_iter()
            .flat_map(|(x, _)| x.into_iter().map(|v| v as f64))
            .collect();
        let energy = &self.process.energy;
        // The built-in energies never fail; a failing target's first error
        // is kept (its proposals are rejected: NaN log R) and returned by
        // the next batch or evaluation.
        let failure: RefCell<Option<TargetError>> = RefCell::new(None);
        let fail = |e: TargetError| {
            failure.borrow_mut().get_or_insert(e);
        };
        let out = mala(
            energy.dim(),
            &start,
            |x| {
                energy.log_reward(x).unwrap_or_else(|e| {
                    fail(e);
                    f64::NAN
                })
            },
            |x, g| {
                if let Err(e) = energy.grad_log_reward(x, g) {
                    fail(e);
                    g.fill(0.0);
                }
            },
            &cfg.settings(),
            &mut self.streams.local_search,
        );
        self.energy_calls += out.energy_calls;
        if let Some(e) = failure.into_inner() {
            self.failure.get_or_insert(e);
            return;
        }
        let d = energy.dim();
        for (x, &lr) in out.samples.chunks(d).zip(&out.log_r) {
            buf.push((x.iter().map(|&v| v as f32).collect(), lr), lr);
        }
    }

    /// The target failure kept by [`Self::local_search`], if any.
    fn check_failure(&mut self) -> Result<(), RunError> {
        match self.failure.take() {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// Pictures of `samples` `[n, d]` after `step` steps, as the target's
    /// [`crate::envs::diffusion::target::Target::picture`] says (`exact` `[m, d]`, when the target has them,
    /// under the model's samples of marginal panels).
    fn plot(&self, step: u64, samples: &[f64], exact: Option<&[f64]>) -> Result<(), RunError> {
        let Some(dir) = &self.plots else {
            return Ok(());
        };
        let d = self.process.sde.dim;
        let pairs = |x: &[f64], i: usize, j: usize| -> Vec<[f64; 2]> {
            x.chunks(d).map(|r| [r[i], r[j]]).collect()
        };
        let path = dir.join(format!("samples_{step:06}.png"));
        let energy = &self.process.energy;
        let title = format!("{} samples, step {step}", energy.name());
        match energy.picture() {
            Picture::Density { range } => scatter::samples_over_density(
                &path,
                &title,
                range,
                &|x, y| energy.log_reward(&[x, y]).unwrap_or(f64::NAN),
                &pairs(samples, 0, 1),
            )?,
            Picture::Marginals {
                range,
                pairs: coords,
            } => {
                let coords: Vec<(usize, usize)> = coords
                    .into_iter()
                    .filter(|&(i, j)| i < d && j < d)
                    .collect();
                let labels: Vec<(String, String)> = coords
                    .iter()
                    .map(|&(i, j)| (format!("x{i}"), format!("x{j}")))
                    .collect();
                // (model, exact) points of each panel.
                let data: Vec<[Vec<[f64; 2]>; 2]> = coords
                    .iter()
                    .map(|&(i, j)| {
                        [
                            pairs(samples, i, j),
                            exact.map_or_else(Vec::new, |e| pairs(e, i, j)),
                        ]
                    })
                    .collect();
                let panels: Vec<scatter::MarginalPanel> = labels
                    .iter()
                    .zip(&data)
                    .map(|((xl, yl), [model, exact])| scatter::MarginalPanel {
                        x_label: xl,
                        y_label: yl,
                        model,
                        exact,
                    })
                    .collect();
                scatter::marginals(&path, &title, range, &panels)?
            }
        }
        Ok(())
    }
}

/// The diffusion metrics of one evaluation ([`DIFFUSION_METRICS`]) from the
/// forward log-weights `fwd` of the model's samples and the backward ones
/// `bwd` of exact samples: what needs exact samples (`eubo`, `w2`) or the
/// true log Z (`delta_log_z`) is an empty cell when the target lacks it.
fn diffusion_metrics(
    fwd: &[f64],
    bwd: Option<&[f64]>,
    log_z: Option<f64>,
    w2: Option<f64>,
    buffer_size: usize,
    energy_calls: u64,
) -> Vec<Metric> {
    let Bounds {
        log_z_is,
        elbo,
        eubo,
    } = bounds(fwd, bwd.unwrap_or(&[]));
    vec![
        Metric::new("log_z_is", log_z_is),
        Metric::optional("delta_log_z", log_z.map(|z| z - log_z_is)),
        Metric::new("elbo", elbo),
        Metric::optional("eubo", bwd.map(|_| eubo)),
        Metric::optional("w2", w2),
        Metric::new("buffer_size", buffer_size as f64),
        Metric::new("n_energy_calls", energy_calls as f64),
    ]
}

impl DrawSamples for DiffusionFamily {
    /// Columns `x0..x{d-1}` (the terminal state), `log_reward` (log R(x) =
    /// -E(x)), and `log_pf` (the trajectory's log P_F, Gaussian densities
    /// of its steps).
    fn draw_samples(
        &self,
        net: &DiffusionNet,
        n: usize,
        log_pf: bool,
        rng: &mut Rng,
    ) -> Result<SampleTable, RunError> {
        let d = self.process.sde.dim;
        let mut columns: Vec<String> = (0..d).map(|i| format!("x{i}")).collect();
        columns.push("log_reward".into());
        if log_pf {
            columns.push("log_pf".into());
        }
        let mut rows = Vec::with_capacity(n);
        while rows.len() < n {
            let k = self.eval_chunk.min(n - rows.len());
            let (paths, pf) = self.process.rollout(net, k, 0.0, rng)?;
            let x = paths.terminal();
            let log_r = self.process.log_rewards_of(x)?;
            for j in 0..k {
                let mut row: Vec<String> = x[j * d..(j + 1) * d]
                    .iter()
                    .map(|&v| fmt_f64(v as f64))
                    .collect();
                row.push(fmt_f64(log_r[j]));
                if log_pf {
                    row.push(fmt_f64(pf[j]));
                }
                rows.push(row);
            }
        }
        Ok(SampleTable { columns, rows })
    }
}

impl Checkpointed for DiffusionFamily {
    fn save_state(&self) -> Result<Vec<u8>, RunError> {
        super::checkpoint::encode(&DiffusionState {
            buffer: self.buffer.as_ref().map(|(b, _)| b.clone()),
            tau: self.tau,
            seeded: self.seeded,
            iteration: self.iteration,
            energy_calls: self.energy_calls,
            streams: self.streams.clone(),
            exact_rng: self.exact_rng.clone(),
        })
    }

    fn load_state(&mut self, state: &[u8]) -> Result<(), RunError> {
        let s: DiffusionState = super::checkpoint::decode(state)?;
        super::checkpoint::restore_buffer(self.buffer.as_mut().map(|(b, _)| b), s.buffer)?;
        self.tau = s.tau;
        self.seeded = s.seeded;
        self.iteration = s.iteration;
        self.energy_calls = s.energy_calls;
        self.streams = s.streams;
        self.exact_rng = s.exact_rng;
        Ok(())
    }
}

impl Family for DiffusionFamily {
    type Net = DiffusionNet;
    type Batch = DiffBatch;
    type Packed = DiffPacked;

    fn new_net(&self, rng: &mut Rng) -> Result<DiffusionNet, RunError> {
        let net = DiffusionNet::new(
            &self.net_cfg,
            self.process.sde.dim,
            &self.process.device,
            rng,
        )?;
        Ok(match self.flow_head {
            true => net.with_flow_head()?,
            false => net,
        })
    }

    fn sample(
        &mut self,
        net: &DiffusionNet,
        draw: Draw,
        student: &Sampler<DiffusionNet>,
    ) -> Result<Fresh<DiffBatch>, RunError> {
        let Draw {
            step,
            size: n,
            local_search,
            by_teacher,
        } = draw;
        self.iteration = step;
        self.check_failure()?;
        if self.tau.is_none() {
            self.tau = Some(self.threshold(&student.net)?);
        }
        let mut rng = self.streams.sampling.clone();
        let result = if by_teacher && self.buffer.is_some() {
            // The teacher's samples (no exploration) above tau, as bridge
            // trajectories the student's signal is computed on.
            let (paths, _) = self.process.rollout(net, n, 0.0, &mut rng)?;
            let log_r = self.process.log_rewards_of(paths.terminal())?;
            let tau = self.tau.unwrap_or(f64::NEG_INFINITY);
            let keep: Vec<usize> = (0..n).filter(|&j| log_r[j] > tau).collect();
            let x = paths.select(&keep);
            let bridge = self
                .process
                .sde
                .bridge(x.terminal(), &mut self.streams.buffer);
            let log_r = keep.iter().map(|&j| log_r[j]).collect();
            (Origin::Teacher, bridge, log_r)
        } else {
            let expl = self.net_cfg.exploration_at(self.iteration);
            let (paths, _) = self.process.rollout(net, n, expl, &mut rng)?;
            let log_r = self.process.log_rewards_of(paths.terminal())?;
            (Origin::Fresh, paths, log_r)
        };
        self.streams.sampling = rng;
        self.energy_calls += n as u64;
        let (origin, paths, log_r) = result;
        Ok(Fresh {
            reward_calls: n as u64,
            batch: self.batch(origin, paths, log_r, local_search),
        })
    }

    fn pack(&self, batch: &DiffBatch) -> Result<DiffPacked, RunError> {
        let lgv = self.net_cfg.langevin;
        Ok(DiffPacked {
            paths: self.process.tensors(lgv, &batch.paths)?,
            teacher: match &batch.teacher {
                Some((keep, p)) if !keep.is_empty() => Some(Box::new(DiffPacked {
                    paths: self.process.tensors(lgv, p)?,
                    teacher: None,
                })),
                _ => None,
            },
        })
    }

    fn n_states(&self, batch: &DiffBatch) -> usize {
        batch.paths.batch * (batch.paths.steps + 1)
    }

    fn log_rewards<'b>(&self, batch: &'b DiffBatch) -> Cow<'b, [f64]> {
        Cow::Borrowed(&batch.log_r)
    }

    fn balance(&self, net: &DiffusionNet, packed: &DiffPacked) -> Result<Balance, RunError> {
        self.process.balance(net, &packed.paths)
    }

    /// The teacher trains on its own bridge trajectories of the entries
    /// above tau (no step when none is); the signal of an entry with log R <
    /// tau is ln(1e-12 + 1.001) (the others keep the objective's r_T, for TB
    /// ln(0.5 delta^2 (1 + C [delta > 0]) + 1.001)).
    fn teaching<'a>(
        &'a self,
        batch: &'a DiffBatch,
        packed: &'a DiffPacked,
    ) -> Teaching<'a, DiffPacked> {
        Teaching {
            gate: Some(SignalGate {
                threshold: self.tau.unwrap_or(f64::NEG_INFINITY),
                signal: gated_signal(),
            }),
            packed: packed.teacher.as_deref(),
            entries: batch.teacher.as_ref().map(|(keep, _)| keep.as_slice()),
        }
    }
}

impl Replay for DiffusionFamily {
    fn replay(&mut self) -> Result<Option<DiffBatch>, RunError> {
        self.check_failure()?;
        let Some((buf, plan)) = &self.buffer else {
            return Ok(None);
        };
        if buf.is_empty() {
            return Ok(None);
        }
        let picked = buf.sample(plan.batch, &mut self.streams.buffer);
        let x: Vec<f32> = picked.iter().flat_map(|(x, _)| x.iter().copied()).collect();
        let log_r = picked.iter().map(|(_, lr)| *lr).collect();
        let paths = self.process.sde.bridge(&x, &mut self.streams.buffer);
        Ok(Some(self.batch(Origin::Replay, paths, log_r, false)))
    }

    /// The buffer's rules (docs/diffusion.md "Behaviour policies"): the
    /// first fresh batch enters whole; later fresh batches enter, above tau,
    /// only without a teacher and not on a local-search iteration; teacher
    /// batches enter whole (already above tau); replays change nothing.
    fn remember(&mut self, batch: DiffBatch, _fresh: bool, _delta: &[f32], signals: &Signals) {
        let tau = self.tau.unwrap_or(f64::NEG_INFINITY);
        let first = !self.seeded && batch.origin == Origin::Fresh;
        if let Some((buf, plan)) = &mut self.buffer {
            let add = match batch.origin {
                Origin::Replay => false,
                Origin::Teacher => true,
                Origin::Fresh => first || (!self.has_teacher && !batch.local_search),
            };
            if add {
                let d = batch.paths.dim;
                let x = batch.paths.terminal();
                for j in 0..batch.log_r.len() {
                    let lr = batch.log_r[j];
                    if first || batch.origin == Origin::Teacher || lr > tau {
                        let priority = match plan.priority {
                            Priority::Reward => lr,
                            _ => signals.per_entry[j],
                        };
                        buf.push((x[j * d..(j + 1) * d].to_vec(), lr), priority);
                    }
                }
            }
        }
        if batch.origin == Origin::Fresh {
            self.seeded = true;
        }
    }
}

/// MALA on a buffer batch after the iteration's batch is remembered
/// (docs/diffusion.md "Local search"); a failure of the target is reported
/// at once.
impl LocalSearch for DiffusionFamily {
    fn search_buffer(&mut self) -> Result<(), RunError> {
        self.local_search();
        self.check_failure()
    }
}

impl Evaluator for DiffusionFamily {
    const STEP_COLUMN: &'static str = "iteration";
    const LOG_Z_COLUMN: &'static str = "log_z_learned";
    const METRICS: &'static [&'static str] = DIFFUSION_METRICS;

    fn evaluate(
        &mut self,
        step: u64,
        student: &Sampler<DiffusionNet>,
        _counters: &Counters,
    ) -> Result<Vec<Metric>, RunError> {
        let last = step == self.total_steps && self.final_samples > 0;
        let n = if last {
            self.final_samples
        } else {
            self.eval_samples
        };
        self.check_failure()?;
        let exact = match last {
            true => self.process.energy.sample(n, &mut self.exact_rng),
            false => self.eval_data.clone(),
        };
        let (samples, fwd) = self.forward_weights(&student.net, n)?;
        let bwd = match &exact {
            Some(x) => Some(self.log_weights_backward(&student.net, x)?),
            None => None,
        };
        let d = self.process.sde.dim;
        let w2 = exact
            .as_ref()
            .map(|x| crate::metrics::assignment::w2(&samples, x, d));
        self.plot(step, &samples, exact.as_deref())?;
        Ok(diffusion_metrics(
            &fwd,
            bwd.as_deref(),
            self.process.energy.log_z(),
            w2,
            self.buffer.as_ref().map_or(0, |(b, _)| b.len()),
            self.energy_calls,
        ))
    }

    fn progress(&self) -> String {
        format!(
            "buffer {}",
            self.buffer.as_ref().map_or(0, |(b, _)| b.len())
        )
    }

    fn headline(&self) -> String {
        format!("energy calls {}", self.energy_calls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::behaviour::teacher::RewardForm;
    use crate::behaviour::TeacherConfig;
    use crate::envs::diffusion::target::Target;
    use crate::train::family::Family;

    fn family(steps: usize, energy: Arc<dyn Target>) -> DiffusionFamily {
        DiffusionFamily {
            process: Process {
                sde: crate::envs::diffusion::sde::Sde {
                    steps,
                    dim: energy.dim(),
                    t_scale: 1.0,
                },
                device: Device::Cpu,
                energy,
            },
            net_cfg: DiffusionNetConfig {
                hidden: 8,
                harmonics: 2,
                ..Default::default()
            },
            flow_head: false,
            batch_size: 4,
            has_teacher: true,
            buffer: None,
            mala: None,
            tau: None,
            seeded: false,
            iteration: 0,
            energy_calls: 0,
            eval_data: None,
            failure: None,
            eval_samples: 4,
            eval_chunk: 4,
            final_samples: 0,
            total_steps: 1,
            plots: None,
            streams: Streams::new(0),
            exact_rng: rng::stream(0, Stream::ExactSamples),
        }
    }

    /// The teacher signal on hand values: r_T = ln(0.5 delta^2 * 20 + 1.001)
    /// for delta > 0, ln(0.5 delta^2 + 1.001) for delta < 0, and the gate
    /// ln(1e-12 + 1.001) below tau; the teacher's target ln r_T + 0.5 log R
    /// (docs/diffusion.md "Loss and teacher reward").
    #[test]
    fn teacher_signal_and_tau_gate() {
        let mut f = family(2, Arc::new(crate::envs::diffusion::gmm25::Gmm25));
        f.tau = Some(-4.0);
        let reward = TeacherConfig {
            alpha: Some(0.5),
            ..TeacherConfig::default()
        }
        .reward(RewardForm::LogSpace, 0.0)
        .with_loss_scale(0.5);
        let batch = DiffBatch {
            origin: Origin::Fresh,
            paths: Paths::zeros(2, 3, 2),
            log_r: vec![-1.0, -2.0, -5.0],
            teacher: None,
            local_search: false,
        };
        let mut s = crate::behaviour::teacher::signals(
            &crate::objective::Pieces::Entries,
            &[2.0, -2.0, 2.0],
            &reward,
            &f.rewards(&batch),
        );
        let packed = f.pack(&batch).unwrap();
        let teaching = f.teaching(&batch, &packed);
        teaching.gate.unwrap().apply(&mut s, &batch.log_r);
        let want = [
            (0.5f64 * 4.0 * 20.0 + 1.001).ln(),
            (0.5f64 * 4.0 + 1.001).ln(),
            (1e-12f64 + 1.001).ln(),
        ];
        for (a, b) in s.per_entry.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
        let t =
            crate::behaviour::hooks::teacher_targets(&reward, &s, &batch.log_r, teaching.entries);
        assert!((t[0] - (want[0].ln() - 0.5)).abs() < 1e-12);
    }

    /// Without exact samples the EUBO and W2 are empty cells, without a true
    /// log Z `delta_log_z` is; with both, every value is there (the forward
    /// log-weights ln 1 and ln 3 give log Z_IS = ln 2).
    #[test]
    fn metrics_a_target_lacks_are_empty_cells() {
        let fwd = [0.0, 3f64.ln()];
        let bare = diffusion_metrics(&fwd, None, None, None, 7, 11);
        let names: Vec<&str> = bare.iter().map(|m| m.name).collect();
        assert_eq!(names, DIFFUSION_METRICS);
        let value = |row: &[Metric], name: &str| row.iter().find(|m| m.name == name).unwrap().value;
        for name in ["delta_log_z", "eubo", "w2"] {
            assert_eq!(value(&bare, name), None, "{name}");
        }
        assert!((value(&bare, "log_z_is").unwrap() - 2f64.ln()).abs() < 1e-12);
        assert_eq!(value(&bare, "buffer_size"), Some(7.0));
        assert_eq!(value(&bare, "n_energy_calls"), Some(11.0));
        let full = diffusion_metrics(&fwd, Some(&[1.0, 2.0]), Some(1.0), Some(0.5), 0, 0);
        assert!((value(&full, "delta_log_z").unwrap() - (1.0 - 2f64.ln())).abs() < 1e-12);
        assert_eq!(value(&full, "eubo"), Some(1.5));
        assert_eq!(value(&full, "w2"), Some(0.5));
    }
}
