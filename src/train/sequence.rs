//! The sequence-task adapter of the training loop (docs/discovery.md
//! "Training loop"): batches are complete trajectories of the sequence MDP
//! sampled by the SSR policy (or built by local search), the objective any
//! of TB (with the reference's clamps), DB, SubTB, the `recent` buffer replays the last
//! distinct discoveries with fresh uniform-P_B trajectories, and evaluations
//! measure modes, log Z estimates, ELBO/EUBO and reward statistics.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashSet};

use candle_core::Device;

use super::checkpoint::Checkpointed;
use super::draw::{DrawSamples, SampleTable};
use super::evaluate::{Counters, Evaluator};
use super::family::{Draw, Family, Fresh};
use super::local_search::LocalSearch;
use super::replay::Replay;
use super::sampler::Sampler;
use super::{RunError, RunOptions};
use crate::behaviour::teacher::Signals;
use crate::buffer::recent::RecentDiscoveries;
use crate::envs::discrete::{sample_trajectories, DiscreteEnv};
use crate::envs::program::StderrTo;
use crate::envs::sequence::mdp::SeqMdp;
use crate::envs::sequence::mdp::SeqState;
use crate::envs::sequence::oracle::default_cache_dir;
use crate::envs::sequence::task::SeqEnv;
use crate::envs::sequence::traj::{SeqTraj, Transitions};
use crate::metrics::sequence::{evaluate, ExactSet};
use crate::metrics::Metric;
use crate::objective::balance::{Balance, Layout};
use crate::output::fmt_f64;
use crate::plan::sequence::{RecentPlan, SequencePlan};
use crate::plan::Plan;
use crate::policy::ssr::Ssr;
use crate::rng::{self, Rng, Stream, Streams};
use crate::search::back_and_forth::back_and_forth;
use crate::search::BackAndForth;

/// The columns of the sequence tasks' `metrics.csv` between `log_z` and `wall_s`.
pub const SEQ_METRICS: &[&str] = &[
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
];

/// A batch: complete trajectories and log R of their strings.
pub struct SeqBatch {
    trajs: Vec<SeqTraj>,
    log_r: Vec<f64>,
}

/// The tensors of a batch: its transitions, log P_B of each (host), and
/// its states for the flow head.
pub struct SeqPacked {
    transitions: Transitions,
    /// -log P_B of every transition `[B * T]` entry-major (uniform P_B: a
    /// host constant of the balance).
    neg_log_pb: Vec<f64>,
    /// Every state `[B * (T + 1)]` entry-major, for log F(s) (empty without a flow head).
    states: Vec<SeqState>,
}

/// The tensors of `trajs`; with `flow_head`, their states for log F(s).
fn pack(mdp: &SeqMdp, trajs: &[SeqTraj], flow_head: bool) -> candle_core::Result<SeqPacked> {
    Ok(SeqPacked {
        transitions: Transitions::new(mdp, trajs)?,
        neg_log_pb: trajs.iter().flat_map(|t| t.neg_log_pb(mdp)).collect(),
        states: match flow_head {
            true => trajs.iter().flat_map(|t| t.states.clone()).collect(),
            false => Vec::new(),
        },
    })
}

/// The objectives' view of `packed` under `net`: every trajectory has T =
/// L + 1 transitions (the entry-major layout); log P_F from the network,
/// log P_B uniform (host constants), log F(s) from the flow head when packed
/// with states.
fn balance(mdp: &SeqMdp, net: &Ssr, packed: &SeqPacked) -> candle_core::Result<Balance> {
    let tr = &packed.transitions;
    Ok(Balance {
        batch: tr.n_traj,
        layout: Layout::EntryMajor { steps: tr.n_steps },
        log_pf: tr.log_pf(mdp, net)?,
        log_pb: None,
        fixed: packed.neg_log_pb.clone(),
        log_flow: match packed.states.is_empty() {
            false => Some(net.log_flow(mdp, &packed.states)?),
            true => None,
        },
        terminal: vec![true; tr.n_traj],
    })
}

/// The sequence-task family of one run.
pub struct SequenceFamily {
    env: SeqEnv,
    /// The exact samples' fixed trajectories (none when only training).
    exact: Option<ExactSet>,
    device: Device,
    hidden: usize,
    /// The network has a state-flow head (DB, SubTB).
    flow_head: bool,
    epsilon: f64,
    buffer: Option<(RecentDiscoveries<Vec<u8>>, RecentPlan)>,
    local_search: Option<BackAndForth>,
    /// Every string ever sampled for training.
    history: HashSet<Vec<u8>>,
    /// The modes `history` has reached (indices; [`SeqEnv::modes_of`]).
    modes_found: BTreeSet<u32>,
    eval_samples: usize,
    eval_chunk: usize,
    streams: Streams,
}

impl SequenceFamily {
    /// Load the task of `plan` (whose family part is `s`) from the datasets.
    pub fn new(
        plan: &Plan,
        s: &SequencePlan,
        opts: &RunOptions,
        device: &Device,
    ) -> Result<Self, RunError> {
        let mut exact_rng = rng::stream(plan.seed, Stream::ExactSamples);
        let env = SeqEnv::load(
            s.task,
            s.beta,
            s.mdp,
            &opts.datasets,
            &default_cache_dir(),
            &StderrTo::File(opts.dir.join(crate::envs::program::STDERR_FILE)),
            &mut exact_rng,
        )?;
        if !env.has_exact_constants() {
            static NOTE: std::sync::Once = std::sync::Once::new();
            NOTE.call_once(|| {
                crate::console::errln(format_args!(
                    "note: {}: log Z and E[r] are unknown (a reward from a program, or a space too \
                     large to enumerate), so the metrics that need them are left empty ({})",
                    env.task.name(),
                    match env.exact.is_some() {
                        true => "log_z_gap, expected_reward_gap, eubo",
                        false => "log_z_gap, expected_reward_gap, eubo, pearson",
                    }
                ))
            });
        }
        let exact = match opts.train_only {
            true => None,
            false => ExactSet::new(&env, &mut exact_rng)?,
        };
        Ok(Self {
            env,
            exact,
            device: device.clone(),
            hidden: s.hidden,
            flow_head: s.flow_head,
            epsilon: plan.epsilon,
            buffer: s.buffer.map(|b| (RecentDiscoveries::new(b.size), b)),
            local_search: s.local_search,
            history: HashSet::new(),
            modes_found: BTreeSet::new(),
            eval_samples: plan.eval.samples,
            eval_chunk: plan.eval.batch_size,
            streams: Streams::new(plan.seed),
        })
    }

    /// The batch of `trajs` with log R of their strings.
    fn batch(&self, trajs: Vec<SeqTraj>) -> Result<SeqBatch, RunError> {
        let env = &self.env;
        let log_r = env
            .raw_many(trajs.iter().map(SeqTraj::x))?
            .into_iter()
            .map(|r| env.log_reward_of_raw(r))
            .collect();
        Ok(SeqBatch { trajs, log_r })
    }
}

/// What a sequence run changes while training (its checkpoint state).
#[derive(serde::Serialize, serde::Deserialize)]
struct SequenceState {
    buffer: Option<RecentDiscoveries<Vec<u8>>>,
    /// A reward program's answers (its cache), sorted by string.
    oracle_answers: Option<Vec<(Vec<u8>, f64)>>,
    history: HashSet<Vec<u8>>,
    modes_found: BTreeSet<u32>,
    streams: Streams,
}

impl DrawSamples for SequenceFamily {
    /// Columns `x` (the string, in the task's letters:
    /// docs/tasks-alphabets.md), `reward` (the oracle's raw r(x), as
    /// `runner score` prints it), `log_reward` (the training log R(x), after
    /// exponent and scale), and `log_pf` (the sampled trajectory's log P_F;
    /// the string's own probability sums over its trajectories).
    fn draw_samples(
        &self,
        net: &Ssr,
        n: usize,
        log_pf: bool,
        rng: &mut Rng,
    ) -> Result<SampleTable, RunError> {
        let env = &self.env;
        let mut columns: Vec<String> = vec!["x".into(), "reward".into(), "log_reward".into()];
        if log_pf {
            columns.push("log_pf".into());
        }
        let mut rows = Vec::with_capacity(n);
        while rows.len() < n {
            let k = self.eval_chunk.min(n - rows.len());
            let trajs = sample_trajectories(env, net, k, 0.0, rng)?;
            let raw = env.raw_many(trajs.iter().map(SeqTraj::x))?;
            for (t, r) in trajs.iter().zip(raw) {
                let mut row = vec![
                    env.task.to_letters(t.x()),
                    fmt_f64(r),
                    fmt_f64(env.log_reward_of_raw(r)),
                ];
                if log_pf {
                    row.push(fmt_f64(t.log_pf));
                }
                rows.push(row);
            }
        }
        Ok(SampleTable { columns, rows })
    }
}

impl Checkpointed for SequenceFamily {
    fn save_state(&self) -> Result<Vec<u8>, RunError> {
        super::checkpoint::encode(&SequenceState {
            buffer: self.buffer.as_ref().map(|(b, _)| b.clone()),
            oracle_answers: self.env.oracle.saved_answers(),
            history: self.history.clone(),
            modes_found: self.modes_found.clone(),
            streams: self.streams.clone(),
        })
    }

    fn load_state(&mut self, state: &[u8]) -> Result<(), RunError> {
        let s: SequenceState = super::checkpoint::decode(state)?;
        super::checkpoint::restore_buffer(self.buffer.as_mut().map(|(b, _)| b), s.buffer)?;
        if let Some(answers) = s.oracle_answers {
            self.env.oracle.restore_answers(answers);
        }
        self.history = s.history;
        self.modes_found = s.modes_found;
        self.streams = s.streams;
        Ok(())
    }
}

impl Family for SequenceFamily {
    type Net = Ssr;
    type Batch = SeqBatch;
    type Packed = SeqPacked;

    fn new_net(&self, rng: &mut Rng) -> Result<Ssr, RunError> {
        let net = Ssr::new(self.env.mdp.feature_dim(), self.hidden, &self.device, rng)?;
        Ok(match self.flow_head {
            true => net.with_flow_head(rng)?,
            false => net,
        })
    }

    fn sample(
        &mut self,
        net: &Ssr,
        draw: Draw,
        _student: &Sampler<Ssr>,
    ) -> Result<Fresh<SeqBatch>, RunError> {
        let trajs = sample_trajectories(
            &self.env,
            net,
            draw.size,
            self.epsilon,
            &mut self.streams.sampling,
        )?;
        Ok(Fresh {
            reward_calls: trajs.len() as u64,
            batch: self.batch(trajs)?,
        })
    }

    fn pack(&self, batch: &SeqBatch) -> Result<SeqPacked, RunError> {
        Ok(pack(&self.env.mdp, &batch.trajs, self.flow_head)?)
    }

    fn n_states(&self, batch: &SeqBatch) -> usize {
        batch.trajs.iter().map(|t| t.states.len()).sum()
    }

    fn log_rewards<'b>(&self, batch: &'b SeqBatch) -> Cow<'b, [f64]> {
        Cow::Borrowed(&batch.log_r)
    }

    fn balance(&self, net: &Ssr, packed: &SeqPacked) -> Result<Balance, RunError> {
        Ok(balance(&self.env.mdp, net, packed)?)
    }
}

/// Of a batch of B, B / (iterations + 1) trajectories are sampled fresh;
/// the batch is those and every proposal of every iteration (docs/discovery.md
/// "Local search"). Proposals are accepted by the task reward, also in a
/// teacher's batch (the reference defines no other score on these tasks).
impl LocalSearch for SequenceFamily {
    fn search_start(&self, batch: usize) -> usize {
        match &self.local_search {
            Some(ls) => (batch / (ls.iterations + 1)).max(1),
            None => batch,
        }
    }

    fn refine(
        &mut self,
        net: &Ssr,
        fresh: Fresh<SeqBatch>,
        _draw: Draw,
        _student: &Sampler<Ssr>,
    ) -> Result<Fresh<SeqBatch>, RunError> {
        let Some(ls) = &self.local_search else {
            return Ok(fresh);
        };
        let SeqBatch { trajs, log_r } = fresh.batch;
        let mut start = Some(log_r);
        let env = &self.env;
        let mut score = |paths: &[SeqTraj]| -> Result<Vec<f64>, RunError> {
            match start.take() {
                Some(log_r) => Ok(log_r),
                None => Ok(env.log_rewards(&paths.iter().map(|p| p.last()).collect::<Vec<_>>())?),
            }
        };
        let searched = back_and_forth(
            env,
            net,
            ls,
            trajs.clone(),
            &mut score,
            &mut self.streams.local_search,
        )?;
        let mut all = trajs;
        all.extend(searched.proposals);
        Ok(Fresh {
            reward_calls: all.len() as u64,
            batch: self.batch(all)?,
        })
    }
}

impl Replay for SequenceFamily {
    fn replay(&mut self) -> Result<Option<SeqBatch>, RunError> {
        let Some((buf, cfg)) = &self.buffer else {
            return Ok(None);
        };
        let Some(picked) = buf.select(
            cfg.batch,
            cfg.priority,
            cfg.min_size,
            &mut self.streams.buffer,
        ) else {
            return Ok(None);
        };
        let mdp = &self.env.mdp;
        let trajs = picked
            .into_iter()
            .map(|d| {
                let states = mdp.sample_backward(&SeqEnv::terminal(&d.x), &mut self.streams.buffer);
                SeqTraj::from_states(mdp, states)
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Some(self.batch(trajs)?))
    }

    /// A never-seen x enters the buffer with its reward and signal; an x seen
    /// before (every replayed one) gets its latest signal.
    fn remember(&mut self, batch: SeqBatch, _fresh: bool, _delta: &[f32], signals: &Signals) {
        let Some((buf, _)) = &mut self.buffer else {
            return;
        };
        for ((t, &lr), &s) in batch.trajs.iter().zip(&batch.log_r).zip(&signals.per_entry) {
            if !buf.record(t.x().to_vec(), lr.exp(), s) {
                buf.update_signal(t.x(), s);
            }
        }
    }
}

impl Evaluator for SequenceFamily {
    const STEP_COLUMN: &'static str = "round";
    const METRICS: &'static [&'static str] = SEQ_METRICS;

    fn evaluate(
        &mut self,
        _step: u64,
        student: &Sampler<Ssr>,
        counters: &Counters,
    ) -> Result<Vec<Metric>, RunError> {
        let e = evaluate(
            &self.env,
            &student.net,
            self.eval_samples,
            self.eval_chunk,
            self.exact.as_ref(),
            &mut self.streams.eval,
        )?;
        Ok(vec![
            Metric::new("num_modes_all", self.modes_found.len() as f64),
            Metric::new("num_modes_onpolicy", e.num_modes_onpolicy as f64),
            Metric::new("log_z_est", e.log_z_est),
            // No data where log Z and E[r] are unknown (a reward program).
            Metric::optional("log_z_gap", e.log_z_gap),
            Metric::new("elbo", e.elbo),
            // No data where the task has no exact samples (L14_RNA2/3, sEH
            // at another beta).
            Metric::optional("eubo", e.eubo),
            Metric::optional("pearson", e.pearson),
            Metric::optional("expected_reward_gap", e.expected_reward_gap),
            Metric::new("mean_reward", e.mean_reward),
            Metric::new("top100_reward", e.top100_reward),
            Metric::new("frac_unique", e.frac_unique),
            Metric::new("n_discovered", self.history.len() as f64),
            Metric::new("n_reward_calls", counters.reward_calls as f64),
        ])
    }

    fn observe(&mut self, batch: &SeqBatch) {
        let mut near = Vec::new();
        for t in &batch.trajs {
            if self.history.insert(t.x().to_vec()) {
                self.env.modes_of(t.x(), &mut near);
                self.modes_found.extend(near.iter().copied());
            }
        }
    }

    fn progress(&self) -> String {
        format!("modes {}", self.modes_found.len())
    }

    fn headline(&self) -> String {
        let program = match self.env.oracle.distinct_calls() {
            Some(n) => format!(", {n} distinct strings scored by the reward program"),
            None => String::new(),
        };
        format!(
            "modes found {}, distinct x {}{program}",
            self.modes_found.len(),
            self.history.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::behaviour::teacher::RewardForm;
    use crate::behaviour::TeacherConfig;
    use crate::envs::sequence::mdp::{SeqMdpKind, SeqState};
    use crate::envs::sequence::traj::rollout;
    use crate::objective::db::Db;
    use crate::objective::subtb::SubTb;
    use crate::objective::tb::{tb_loss_clamped, tb_residuals, Tb};
    use crate::objective::{Objective, ObjectiveKind};
    use crate::plan::{LogZPlan, SamplerPlan};
    use crate::rng::stream;
    use candle_core::{Tensor, Var};

    fn sampler(log_z_init: f64, log_z_min: Option<f64>) -> Sampler<Ssr> {
        let plan = SamplerPlan {
            lr: 1e-4,
            log_z: Some(LogZPlan {
                init: log_z_init,
                lr: 1e-2,
                min: log_z_min,
            }),
            clip: None,
            clip_scope: crate::optim::ClipScope::All,
            weight_decay: 0.0,
            objective: ObjectiveKind::Tb(Tb { loss_clamp: 5000.0 }),
            loss_scale: 1.0,
        };
        let net = Ssr::new(4, 8, &Device::Cpu, &mut stream(0, Stream::InitStudent)).unwrap();
        Sampler::new(net, &plan, &Device::Cpu).unwrap()
    }

    /// TB on a hand trajectory with k = 2, L = 2: "" -> "1" -> "10" -> leaf.
    /// log P_B: "1" has one parent, "10" two ("0" and "1"), the leaf one:
    /// sum = -ln 2. log P_F from the network's rows: child 1 of the root,
    /// child 2 of "1" (children "01", "11", "10": the append of 1 merges with
    /// the prepend), and 0 for the leaf step. delta = log R - ln 2 - log Z -
    /// sum log P_F; the teacher signal is log(20 min(delta^2, 5000) + 1.001)
    /// when delta > 0 (docs/discovery.md "Student objective: TB").
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
        assert_eq!(traj.actions, vec![1, 2, 0]);
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
            let p = pack(&mdp, std::slice::from_ref(&traj), false).unwrap();
            let b = balance(&mdp, &s.net, &p).unwrap();
            let delta: Vec<f32> = tb_residuals(&b, &[log_r], s.log_z())
                .unwrap()
                .to_vec1()
                .unwrap();
            let expected = log_r - 2f64.ln() - 5.0 - sum_pf;
            assert!(
                (delta[0] as f64 - expected).abs() < 1e-4,
                "{delta:?} vs {expected}"
            );
            let t = TeacherConfig {
                alpha: Some(0.5),
                ..TeacherConfig::default()
            }
            .reward(RewardForm::LogSpace, 5000.0);
            let l = (expected * expected).min(5000.0);
            let weight = if expected > 0.0 { 20.0 } else { 1.0 };
            let r_t = t.of(expected, log_r.exp());
            assert!((r_t - (weight * l + 1.001).ln()).abs() < 1e-12);
            // Teacher target: log r_T + alpha log R.
            assert!((t.log_target(r_t, log_r) - (r_t.ln() + 0.5 * log_r)).abs() < 1e-12);
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
        let p = pack(&mdp, &traj, false).unwrap();
        // log R = -50: delta about -50 < 0 (delta^2 below the clamp), so the gradient lowers log Z.
        let loss = s
            .train_loss(&balance(&mdp, &s.net, &p).unwrap(), &[-50.0; 4])
            .unwrap()
            .loss;
        s.update(&loss).unwrap();
        assert_eq!(s.log_z_value().unwrap(), 0.0);
        let mut free = sampler(0.0, None);
        let loss = free
            .train_loss(&balance(&mdp, &free.net, &p).unwrap(), &[-50.0; 4])
            .unwrap()
            .loss;
        free.update(&loss).unwrap();
        assert!(free.log_z_value().unwrap() < 0.0);
    }

    /// Every objective on a 2-step hand trajectory of the sequence MDP
    /// (k = 2, L = 1: "" -> "1" -> leaf, log P_B 0 at both steps: "1" has
    /// one parent, the leaf one) under a network with a flow head: with p_0
    /// = log P_F("1" | ""), p_1 = 0 (the leaf is the only child), F_0, F_1
    /// the head's flows, log Z = 2, log R = 3:
    /// TB = 3 - 2 - p_0; DB = (F_0 + p_0 - F_1, F_1 + 0 - 3);
    /// SubTB(0.5): pieces (0,1) = F_1 - p_0 - 2, (1,2) = 3 - F_1, (0,2) = TB,
    /// weights (0.4, 0.4, 0.2).
    #[test]
    fn every_objective_on_a_two_step_hand_trajectory() {
        let mdp = SeqMdp::new(SeqMdpKind::PrependAppend, 2, 1).unwrap();
        let net = Ssr::new(2, 8, &Device::Cpu, &mut stream(0, Stream::InitStudent))
            .unwrap()
            .with_flow_head(&mut stream(0, Stream::InitAux))
            .unwrap();
        let states = vec![
            SeqState::root(),
            SeqState::inner(vec![1]),
            SeqMdp::leaf_of(vec![1]),
        ];
        let traj = SeqTraj::from_states(&mdp, states.clone()).unwrap();
        let rows: Vec<Vec<f32>> = net
            .log_pf_all(&mdp, &states[..1], &[mdp.children(&states[0])])
            .unwrap()
            .to_vec2()
            .unwrap();
        let p0 = rows[0][traj.actions[0]] as f64;
        let f: Vec<f32> = net.log_flow(&mdp, &states).unwrap().to_vec1().unwrap();
        let (f0, f1) = (f[0] as f64, f[1] as f64);
        let b = balance(&mdp, &net, &pack(&mdp, &[traj], true).unwrap()).unwrap();
        let z = Tensor::new(2f32, &Device::Cpu).unwrap();
        let close =
            |a: &[f32], b: &[f64]| a.iter().zip(b).all(|(x, y)| (*x as f64 - y).abs() < 1e-5);
        let tb: Vec<f32> = Tb { loss_clamp: 0.0 }
            .train(&b, &[3.0], Some(&z))
            .unwrap()
            .delta
            .to_vec1()
            .unwrap();
        assert!(close(&tb, &[1.0 - p0]), "{tb:?}");
        let db: Vec<f32> = Db.train(&b, &[3.0], None).unwrap().delta.to_vec1().unwrap();
        assert!(close(&db, &[f0 + p0 - f1, f1 - 3.0]), "{db:?}");
        let sub = SubTb { lambda: 0.5 }.train(&b, &[3.0], Some(&z)).unwrap();
        let d: Vec<f32> = sub.delta.to_vec1().unwrap();
        let pieces = [f1 - p0 - 2.0, 3.0 - f1, 1.0 - p0];
        assert!(close(&[d[1], d[5], d[2]], &pieces), "{d:?}");
        let want = 0.4 * (pieces[0].powi(2) + pieces[1].powi(2)) + 0.2 * pieces[2].powi(2);
        let loss: f32 = sub.loss.to_scalar().unwrap();
        assert!((loss as f64 - want).abs() < 1e-4, "{loss} vs {want}");
    }
}
