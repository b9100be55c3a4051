//! The gridworld adapter of the training loop (docs/grid.md): batches are
//! packed [`Trajectories`] sampled by the MLP, the objective any of TB, DB,
//! SubTB (GAFN augments TB), replay keeps terminal states or
//! transitions, local search is back-and-forth with teacher-reward scoring
//! for teacher batches, and evaluations measure goals found and L1 errors.

use std::borrow::Cow;
use std::path::PathBuf;

use candle_core::Device;

use super::checkpoint::{self, Checkpointed};
use super::draw::{DrawSamples, SampleTable};
use super::evaluate::{Counters, Evaluator};
use super::family::{Draw, Family, Fresh};
use super::local_search::LocalSearch;
use super::replay::Replay as ReplaySeam;
use super::sampler::Sampler;
use super::{RunError, RunOptions};
use crate::behaviour::gafn::Gafn;
use crate::behaviour::teacher::TeacherReward;
use crate::behaviour::teacher::{signals, Signals};
use crate::buffer::{Priority, ReplayBuffer};
use crate::envs::discrete::{DiscreteEnv, Path};
use crate::envs::grid::Grid;
use crate::envs::Trajectories;
use crate::metrics::grid::{empirical_l1, l1_to_target, sample_from, GridDiscovery};
use crate::metrics::Metric;
use crate::objective::balance::Balance;
use crate::objective::PackedBatch;
use crate::output::{fmt_f64, plot};
use crate::plan::grid::{GridPlan, GridReplay};
use crate::plan::Plan;
use crate::policy::mlp::Mlp;
use crate::rng::{self, Rng, Stream, Streams};
use crate::search::back_and_forth::back_and_forth;
use crate::search::BackAndForth;

/// The columns of the grid's `metrics.csv` between `log_z` and `wall_s`.
pub const GRID_METRICS: &[&str] = &[
    "n_goals_found",
    "empirical_l1",
    "empirical_w_l1",
    "eval_empirical_l1",
    "eval_empirical_w_l1",
    "eval_exact_l1",
    "eval_exact_w_l1",
    "n_reward_calls",
    "n_grad_steps",
];

/// What the objective computations need (shared with the teacher's thread).
struct Model {
    grid: Grid,
    device: Device,
    /// Backward logits from the network rather than the uniform P_B.
    learn_pb: bool,
    /// The network's last output is log F(s) (DB, SubTB, GAFN).
    flow_head: bool,
}

/// The gridworld family of one run.
pub struct GridFamily {
    model: Model,
    /// Widths of the student's and teacher's MLP.
    dims: Vec<usize>,
    batch_size: usize,
    epsilon: f64,
    reward: TeacherReward,
    local_search: Option<BackAndForth>,
    replay: Option<Replay>,
    discovery: GridDiscovery,
    eval_samples: usize,
    eval_chunk: usize,
    /// Evaluate with the exact terminal distribution (else by rollouts).
    exact_eval: bool,
    /// Where heatmaps go (`None`: no plots).
    plots: Option<PathBuf>,
    last_eval_l1: f64,
    /// The last fresh batch came from a rollout, not from local search.
    rolled_out: bool,
    streams: Streams,
}

impl GridFamily {
    /// The family of `plan` (whose family part is `g`); draws the target
    /// heatmap when plots are on.
    pub fn new(
        plan: &Plan,
        g: &GridPlan,
        opts: &RunOptions,
        device: &Device,
    ) -> Result<Self, RunError> {
        let grid = Grid::new(&g.grid);
        let plots = (g.plot && !opts.train_only).then(|| opts.dir.join("plots"));
        if let Some(dir) = &plots {
            plot::target_density(&grid, dir)?;
        }
        let model = Model {
            grid,
            device: device.clone(),
            learn_pb: g.net.learn_pb,
            flow_head: g.flow_head,
        };
        Ok(Self {
            discovery: GridDiscovery::new(&model.grid, g.window),
            replay: g.replay.map(Replay::new),
            dims: model.dims(g.net.hidden, g.net.layers),
            model,
            batch_size: plan.batch_size,
            epsilon: plan.epsilon,
            reward: plan.teacher_reward,
            local_search: g.local_search,
            eval_samples: plan.eval.samples,
            eval_chunk: plan.eval.batch_size,
            exact_eval: g.exact_eval,
            plots,
            last_eval_l1: f64::NAN,
            rolled_out: true,
            streams: Streams::new(plan.seed),
        })
    }

    /// GAFN's objective for the student when the plan has one (`g` the
    /// plan's family part), its networks drawn from the `InitAux` stream.
    pub fn gafn(&self, plan: &Plan, g: &GridPlan) -> Result<Option<Gafn>, RunError> {
        match &g.gafn {
            Some(cfg) => Ok(Some(Gafn::new(
                self.model.grid.obs_dim(),
                cfg,
                &self.model.device,
                &mut rng::stream(plan.seed, Stream::InitAux),
            )?)),
            None => Ok(None),
        }
    }
}

impl Model {
    /// Network widths: d*H one-hot inputs; d+1 forward logits, d backward
    /// logits, and log F(s) for DB, SubTB and GAFN.
    fn dims(&self, hidden: usize, layers: usize) -> Vec<usize> {
        let g = &self.grid;
        let mut dims = vec![g.obs_dim()];
        dims.extend(std::iter::repeat_n(hidden, layers));
        dims.push(g.n_forward_actions() + g.n_backward_actions() + usize::from(self.flow_head));
        dims
    }

    /// The objectives' view of `packed` under `net`.
    fn balance(&self, net: &Mlp, packed: &PackedBatch) -> Result<Balance, RunError> {
        let out = net.forward(&packed.obs)?; // [N, out]
        Ok(packed.balance(&out, self.flow_head)?)
    }
}

/// log(R + 1e-8) of every entry (the reference's guard).
fn log_rewards(trajs: &Trajectories) -> Vec<f64> {
    trajs.reward.iter().map(|r| (r + 1e-8).ln()).collect()
}

impl DrawSamples for GridFamily {
    /// Columns `x0..x{d-1}` (the terminal state's coordinates), `reward`
    /// (R(x)), and `log_pf` (the trajectory's log P_F under the network).
    fn draw_samples(
        &self,
        net: &Mlp,
        n: usize,
        log_pf: bool,
        rng: &mut Rng,
    ) -> Result<SampleTable, RunError> {
        let m = &self.model;
        let d = m.grid.ndim;
        let mut columns: Vec<String> = (0..d).map(|i| format!("x{i}")).collect();
        columns.push("reward".into());
        if log_pf {
            columns.push("log_pf".into());
        }
        let mut rows = Vec::with_capacity(n);
        while rows.len() < n {
            let k = self.eval_chunk.min(n - rows.len());
            let t = m.grid.rollout(net, k, 0.0, rng)?;
            let pf: Option<Vec<f32>> = match log_pf {
                true => {
                    let balance = m.balance(net, &self.pack(&t)?)?;
                    Some(balance.sum_per_entry(&balance.log_pf)?.to_vec1()?)
                }
                false => None,
            };
            for b in 0..t.len() {
                let mut row: Vec<String> = t.terminal(b).iter().map(|c| c.to_string()).collect();
                row.push(fmt_f64(t.reward[b]));
                if let Some(pf) = &pf {
                    row.push(fmt_f64(pf[b] as f64));
                }
                rows.push(row);
            }
        }
        Ok(SampleTable { columns, rows })
    }
}

impl Checkpointed for GridFamily {
    fn save_state(&self) -> Result<Vec<u8>, RunError> {
        let (terminal, transition) = match &self.replay {
            Some(Replay::Terminal(b, ..)) => (Some(b.clone()), None),
            Some(Replay::Transition(b, ..)) => (None, Some(b.clone())),
            None => (None, None),
        };
        checkpoint::encode(&GridState {
            discovery: self.discovery.clone(),
            terminal,
            transition,
            last_eval_l1: self.last_eval_l1,
            rolled_out: self.rolled_out,
            streams: self.streams.clone(),
        })
    }

    fn load_state(&mut self, state: &[u8]) -> Result<(), RunError> {
        let s: GridState = checkpoint::decode(state)?;
        match (&mut self.replay, s.terminal, s.transition) {
            (Some(Replay::Terminal(b, ..)), Some(saved), None) => *b = saved,
            (Some(Replay::Transition(b, ..)), None, Some(saved)) => *b = saved,
            (None, None, None) => {}
            _ => {
                return Err(RunError::Checkpoint(
                    "the checkpoint's replay buffer is not this run's".into(),
                ))
            }
        }
        self.discovery = s.discovery;
        self.last_eval_l1 = s.last_eval_l1;
        self.rolled_out = s.rolled_out;
        self.streams = s.streams;
        Ok(())
    }
}

impl Family for GridFamily {
    type Net = Mlp;
    type Batch = Trajectories;
    type Packed = PackedBatch;

    fn new_net(&self, rng: &mut Rng) -> Result<Mlp, RunError> {
        Ok(Mlp::new(&self.dims, &self.model.device, rng)?)
    }

    fn sample(
        &mut self,
        net: &Mlp,
        draw: Draw,
        _student: &Sampler<Mlp>,
    ) -> Result<Fresh<Trajectories>, RunError> {
        let t =
            self.model
                .grid
                .rollout(net, draw.size, self.epsilon, &mut self.streams.sampling)?;
        self.rolled_out = true;
        Ok(Fresh {
            reward_calls: t.len() as u64,
            batch: t,
        })
    }

    fn pack(&self, batch: &Trajectories) -> Result<PackedBatch, RunError> {
        let m = &self.model;
        Ok(m.grid.pack(batch, m.learn_pb, &m.device)?)
    }

    fn n_states(&self, batch: &Trajectories) -> usize {
        batch.n_states()
    }

    fn log_rewards<'b>(&self, batch: &'b Trajectories) -> Cow<'b, [f64]> {
        Cow::Owned(log_rewards(batch))
    }

    fn rewards<'b>(&self, batch: &'b Trajectories) -> Cow<'b, [f64]> {
        Cow::Borrowed(&batch.reward)
    }

    fn balance(&self, net: &Mlp, packed: &PackedBatch) -> Result<Balance, RunError> {
        self.model.balance(net, packed)
    }
}

/// Back-and-forth on each trajectory of the batch, in place: a student's
/// batch scored by its reward, a teacher's by the student's teacher reward
/// (docs/grid.md "Back-and-forth local search").
impl LocalSearch for GridFamily {
    fn refine(
        &mut self,
        net: &Mlp,
        fresh: Fresh<Trajectories>,
        draw: Draw,
        student: &Sampler<Mlp>,
    ) -> Result<Fresh<Trajectories>, RunError> {
        let Some(ls) = &self.local_search else {
            return Ok(fresh);
        };
        let m = &self.model;
        let reward = &self.reward;
        let mut score = |paths: &[Path<Vec<u16>>]| -> Result<Vec<f64>, RunError> {
            let c = m.grid.trajectories(paths);
            if !draw.by_teacher {
                return Ok(c.reward);
            }
            let packed = m.grid.pack(&c, m.learn_pb, &m.device)?;
            let t = student.train_loss(&m.balance(&student.net, &packed)?, &log_rewards(&c))?;
            Ok(signals(&t.pieces, &t.delta.to_vec1()?, reward, &c.reward).per_entry)
        };
        let searched = back_and_forth(
            &m.grid,
            net,
            ls,
            m.grid.paths(&fresh.batch),
            &mut score,
            &mut self.streams.local_search,
        )?;
        self.rolled_out = false;
        Ok(Fresh {
            reward_calls: fresh.reward_calls + searched.proposals.len() as u64,
            batch: m.grid.trajectories(&searched.current),
        })
    }
}

impl ReplaySeam for GridFamily {
    fn replay(&mut self) -> Result<Option<Trajectories>, RunError> {
        Ok(match &self.replay {
            Some(r) => r.sample(&self.model.grid, self.batch_size, &mut self.streams.buffer),
            None => None,
        })
    }

    fn remember(&mut self, batch: Trajectories, fresh: bool, delta: &[f32], signals: &Signals) {
        if let (Some(r), true) = (&mut self.replay, fresh) {
            r.add(&self.model.grid, &batch, delta, signals, self.rolled_out);
        }
    }
}

impl Evaluator for GridFamily {
    const STEP_COLUMN: &'static str = "step";
    const METRICS: &'static [&'static str] = GRID_METRICS;

    fn evaluate(
        &mut self,
        step: u64,
        student: &Sampler<Mlp>,
        counters: &Counters,
    ) -> Result<Vec<Metric>, RunError> {
        let m = &self.model;
        // The student's terminal distribution (exact) and samples from it.
        let (exact, terminals) = match self.exact_eval {
            true => {
                let q = m
                    .grid
                    .terminal_distribution(&student.net, self.eval_chunk, &m.device)?;
                let samples = sample_from(&q, self.eval_samples, &mut self.streams.eval);
                (Some(l1_to_target(&m.grid, q.into_iter())), samples)
            }
            false => {
                let mut terminals = Vec::with_capacity(self.eval_samples);
                while terminals.len() < self.eval_samples {
                    let n = self.eval_chunk.min(self.eval_samples - terminals.len());
                    let t = m
                        .grid
                        .rollout(&student.net, n, 0.0, &mut self.streams.eval)?;
                    terminals
                        .extend((0..t.len()).filter_map(|b| m.grid.terminal_index(t.terminal(b))));
                }
                (None, terminals)
            }
        };
        if let Some(dir) = &self.plots {
            plot::empirical_density(&m.grid, &terminals, step, dir)?;
        }
        let (eval_l1, eval_wl1) = empirical_l1(&m.grid, terminals.into_iter());
        let (l1, wl1) = self.discovery.window_l1(&m.grid);
        self.last_eval_l1 = eval_l1;
        Ok(vec![
            Metric::new("n_goals_found", self.discovery.n_goals_found() as f64),
            Metric::new("empirical_l1", l1),
            Metric::new("empirical_w_l1", wl1),
            Metric::new("eval_empirical_l1", eval_l1),
            Metric::new("eval_empirical_w_l1", eval_wl1),
            Metric::optional("eval_exact_l1", exact.map(|(l1, _)| l1)),
            Metric::optional("eval_exact_w_l1", exact.map(|(_, wl1)| wl1)),
            Metric::new("n_reward_calls", counters.reward_calls as f64),
            Metric::new("n_grad_steps", counters.grad_steps as f64),
        ])
    }

    fn observe(&mut self, batch: &Trajectories) {
        self.discovery.record(&self.model.grid, batch);
    }

    fn progress(&self) -> String {
        format!("goals {}", self.discovery.n_goals_found())
    }

    fn headline(&self) -> String {
        format!(
            "goals found {}, eval L1 {}",
            self.discovery.n_goals_found(),
            fmt_f64(self.last_eval_l1)
        )
    }
}

/// The order in which the official code's batched rollout finished the
/// trajectories of `t`, which its buffer followed before the fix: by number
/// of actions (a trajectory of n actions finishes at rollout step n), ties in
/// batch order.
fn finish_order(t: &Trajectories) -> Vec<usize> {
    let mut order: Vec<usize> = (0..t.len()).collect();
    order.sort_by_key(|&b| t.actions_of(b).len()); // stable: ties keep batch order
    order
}

/// A replayed transition: states s and s' (flattened), action, reward (R(x)
/// if s' is terminal, else 0), whether s' is terminal.
type StoredTransition = (Vec<u16>, u32, f64, bool);

/// What a grid run changes while training (its checkpoint state).
#[derive(serde::Serialize, serde::Deserialize)]
struct GridState {
    discovery: GridDiscovery,
    terminal: Option<ReplayBuffer<usize, (Vec<u16>, f64)>>,
    transition: Option<ReplayBuffer<(usize, usize), StoredTransition>>,
    last_eval_l1: f64,
    rolled_out: bool,
    streams: Streams,
}

/// The grid's replay buffer.
enum Replay {
    /// Terminal states keyed by dense index: (state, reward); whether fresh
    /// batches are paired as the official code before its fix.
    Terminal(ReplayBuffer<usize, (Vec<u16>, f64)>, Priority, bool),
    /// Transitions keyed by dense (s, s'), with the batch size of a replay.
    Transition(
        ReplayBuffer<(usize, usize), StoredTransition>,
        Priority,
        usize,
    ),
}

impl Replay {
    fn new(plan: GridReplay) -> Self {
        match plan {
            GridReplay::Terminal {
                size,
                priority,
                pre_fix_pairing,
            } => Replay::Terminal(
                ReplayBuffer::new(size, priority != Priority::Uniform),
                priority,
                pre_fix_pairing,
            ),
            GridReplay::Transition {
                size,
                priority,
                batch,
            } => Replay::Transition(
                ReplayBuffer::new(size, priority != Priority::Uniform),
                priority,
                batch,
            ),
        }
    }

    /// A replayed batch (`None` while the buffer is empty): terminal states
    /// with fresh backward trajectories, or single transitions.
    fn sample(&self, grid: &Grid, n: usize, rng: &mut Rng) -> Option<Trajectories> {
        let mut out = Trajectories {
            state_dim: grid.ndim,
            ..Default::default()
        };
        match self {
            Replay::Terminal(buf, ..) => {
                for (x, r) in buf.sample(n, rng) {
                    out.push_path(&grid.sample_backward(&x, rng), r);
                }
            }
            Replay::Transition(buf, _, k) => {
                for (s, a, r, terminal) in buf.sample(*k, rng) {
                    out.push_entry(&s, &[a], r, terminal);
                }
            }
        }
        (!out.is_empty()).then_some(out)
    }

    /// Add a fresh batch with its student residuals (per transition, for a
    /// transition buffer) and teacher signals;
    /// `rolled_out`: the batch is a rollout's, not refined by local search
    /// (the official code's pre-fix pairing applied to those only).
    fn add(
        &mut self,
        grid: &Grid,
        trajs: &Trajectories,
        delta: &[f32],
        signals: &Signals,
        rolled_out: bool,
    ) {
        let d = grid.ndim;
        match self {
            Replay::Terminal(buf, p, pre_fix) => {
                let order = (*pre_fix && rolled_out).then(|| finish_order(trajs));
                // Entry b: the state of trajectory order[b], the reward and
                // priority of trajectory b (the same one without pre-fix).
                for b in 0..trajs.len() {
                    let x = trajs.terminal(order.as_ref().map_or(b, |o| o[b]));
                    let priority = match p {
                        Priority::Uniform => 1.0,
                        Priority::Reward => trajs.reward[b],
                        Priority::Loss => signals.entry_loss[b],
                        Priority::TeacherReward => signals.per_entry[b],
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
                            Priority::TeacherReward => signals.per_transition[m0 + k],
                            Priority::Uniform | Priority::Reward => 1.0,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envs::grid::GridConfig;
    use candle_core::Tensor;

    /// The buffer's pairing on a hand batch (d=2, H=8; u_i = |2 s_i / 7 - 1|,
    /// docs/grid.md "Reward") of A = (0,0) -> (1,0) -> (2,0) -> (3,0) ->
    /// (3,1) -> stop (5 actions; u = (1/7, 5/7): the middle, R = 0.10001) and
    /// B = (0,0) -> (1,0) -> (1,1) -> stop (3 actions; u = (5/7, 5/7): a goal,
    /// R = 2.00001), with PRT priorities. Fixed, each state keeps its own
    /// reward; pre-fix, the states enter in finish order (B first) with the
    /// rewards in batch order, so the goal holds 0.10001 and the middle
    /// state 2.00001. A batch refined by local search keeps batch order.
    #[test]
    fn pre_fix_pairing_swaps_rewards_in_finish_order() {
        let grid = Grid::new(&GridConfig::new(2, 8));
        let mut t = Trajectories {
            state_dim: 2,
            ..Default::default()
        };
        t.push(
            &[0, 0, 1, 0, 2, 0, 3, 0, 3, 1, 3, 1],
            &[0, 0, 0, 1, 2],
            grid.reward(&[3, 1]),
        );
        t.push(&[0, 0, 1, 0, 1, 1, 1, 1], &[0, 1, 2], grid.reward(&[1, 1]));
        let (r_a, r_b) = (t.reward[0], t.reward[1]);
        assert!((r_a - 0.10001).abs() < 1e-12 && (r_b - 2.00001).abs() < 1e-12);
        assert_eq!(finish_order(&t), vec![1, 0]);
        let stored = |pre_fix: bool, rolled_out: bool| -> Vec<(Vec<u16>, f64, f64)> {
            let mut r = Replay::new(GridReplay::Terminal {
                size: 8,
                priority: Priority::Reward,
                pre_fix_pairing: pre_fix,
            });
            r.add(&grid, &t, &[0.0, 0.0], &Signals::default(), rolled_out);
            let Replay::Terminal(buf, ..) = &r else {
                unreachable!()
            };
            buf.iter()
                .map(|(_, (x, rew), p)| (x.clone(), *rew, p))
                .collect()
        };
        let own = vec![(vec![3, 1], r_a, r_a), (vec![1, 1], r_b, r_b)];
        assert_eq!(stored(false, true), own);
        assert_eq!(stored(true, false), own);
        assert_eq!(
            stored(true, true),
            vec![(vec![1, 1], r_a, r_a), (vec![3, 1], r_b, r_b)]
        );
    }

    /// Every objective on a 2-step hand trajectory of the grid (d=2, H=4):
    /// (0,0) -a0-> (1,0) -stop-> (1,0), through the grid's own packing.
    /// Outputs of every row: forward logits (0, 0, ln 2) -> P_F = (1/4, 1/4,
    /// 1/2), zero backward logits (uniform P_B: (1,0) has one parent, the
    /// stop step probability 1, so log P_B = 0, 0), log F = 1, 2, 3 for
    /// rows 0..2. With log Z = 0.5 and log R = -2:
    /// TB = -2 - 0.5 + 3 ln 2; DB = (1 - 2 ln 2 - 2, 2 - ln 2 + 2);
    /// SubTB(0.5): u = (0.5, 2 + 2 ln 2, -2 + 3 ln 2), pieces
    /// (0,1) = 1.5 + 2 ln 2, (1,2) = -4 + ln 2, (0,2) = TB, weights 0.4, 0.4, 0.2.
    #[test]
    fn every_objective_on_a_two_step_hand_trajectory() {
        use crate::envs::grid::fixtures::{batch, grid_2x4};
        use crate::objective::db::Db;
        use crate::objective::subtb::SubTb;
        use crate::objective::tb::Tb;
        use crate::objective::Objective;
        let dev = Device::Cpu;
        let g = grid_2x4();
        let t = batch(&g, &[(&[0, 0, 1, 0, 1, 0], &[0, 2])]);
        let ln2 = 2f64.ln();
        let rows: Vec<f32> = (1..=3)
            .flat_map(|f| [0.0, 0.0, ln2 as f32, 0.0, 0.0, f as f32])
            .collect();
        let out = Tensor::from_vec(rows, (3, 6), &dev).unwrap();
        let b = g
            .pack(&t, false, &dev)
            .unwrap()
            .balance(&out, true)
            .unwrap();
        let z = Tensor::new(0.5f32, &dev).unwrap();
        let close = |a: &[f32], b: &[f64]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (*x as f64 - y).abs() < 1e-5)
        };
        let tb_want = -2.5 + 3.0 * ln2;
        let tb: Vec<f32> = (Tb { loss_clamp: 0.0 })
            .train(&b, &[-2.0], Some(&z))
            .unwrap()
            .delta
            .to_vec1()
            .unwrap();
        assert!(close(&tb, &[tb_want]), "{tb:?}");
        let db: Vec<f32> = Db
            .train(&b, &[-2.0], None)
            .unwrap()
            .delta
            .to_vec1()
            .unwrap();
        assert!(close(&db, &[-1.0 - 2.0 * ln2, 4.0 - ln2]), "{db:?}");
        let sub = SubTb { lambda: 0.5 }.train(&b, &[-2.0], Some(&z)).unwrap();
        let d: Vec<f32> = sub.delta.to_vec1().unwrap();
        let pieces = [1.5 + 2.0 * ln2, -4.0 + ln2, tb_want];
        assert!(close(&[d[1], d[5], d[2]], &pieces), "{d:?}");
        let want = 0.4 * (pieces[0].powi(2) + pieces[1].powi(2)) + 0.2 * pieces[2].powi(2);
        let loss: f32 = sub.loss.to_scalar().unwrap();
        assert!((loss as f64 - want).abs() < 1e-4, "{loss} vs {want}");
    }
}
