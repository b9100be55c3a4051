//! The gridworld (docs/grid.md "Environment `grid`").
//!
//! States are integer vectors s in {0..H-1}^d starting at 0. Action i < d
//! increments coordinate i, action d stops. An episode ends at the stop action
//! or as soon as a coordinate reaches H-1.
//!
//! The reward is a family chosen by `env.reward` ([`GridRewardKind`]): the
//! paper's deceptive reward ([`deceptive`], the default) or the hypergrid
//! reward of Bengio et al. 2021 ([`original`]). A family is one file
//! implementing [`GridRewardFamily`] plus its line in the [`grid_rewards!`]
//! registry below (and, when it has keys of its own, their `Option` fields
//! in [`GridConfig`]: flat `[env]` keys keep serde's key paths precise).

use candle_core::{Device, Tensor};
use rand::Rng as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::discrete::{sample_trajectories, DiscreteEnv, Move, Path};
use super::Trajectories;
use crate::check::Invalid;
use crate::objective::{PackedBatch, TransitionIndex, TransitionRow, MASKED_LOGIT};
use crate::rng::Rng;

/// The forward policy a grid rollout needs: a network mapping states to
/// output rows whose first d+1 entries are the forward logits (actions
/// `0..d` increment a coordinate, action d stops). Rows may be wider (a
/// flow head, say); the grid reads only the first d+1 columns.
pub trait GridPolicy {
    /// The output rows of `n` states: `obs` is a u32 `[n, d]` tensor, row
    /// `k` the positions of the d ones of state k's one-hot encoding
    /// (`obs[k, i] = i * H + s_i`, within [`Grid::obs_dim`] = d * H); the
    /// result is an f32 `[n, out]` tensor with `out >= d + 1`.
    fn forward(&self, obs: &Tensor) -> candle_core::Result<Tensor>;

    /// The device of the network (where the observations are sent).
    fn device(&self) -> &Device;
}

/// Largest grid (H^d states) whose terminal set we enumerate for the exact metrics.
pub const MAX_STATES: usize = 1 << 26;

/// Gridworld: d coordinates in 0..H-1, a reward family (`reward`; default
/// the deceptive one: reward high in a ring of small cells near every
/// corner, a deceptive plateau in the middle; docs/grid.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GridConfig {
    /// Number of dimensions d.
    pub ndim: usize,
    /// Side length H: coordinates run over 0..H-1.
    pub horizon: usize,
    /// Reward exponent beta: the reward is R(s)^beta.
    #[serde(default = "default_beta")]
    pub beta: f64,
    /// The reward family R(s): `deceptive` (default; the paper's deceptive
    /// gridworld, fixed constants) or `original` (the hypergrid reward of
    /// Bengio et al. 2021 with `r0`, `r1`, `r2`); docs/grid.md "Reward".
    #[serde(default, skip_serializing_if = "GridRewardKind::is_default")]
    pub reward: GridRewardKind,
    /// `reward = "original"` only: R0, the reward of every state (default
    /// 0.1; finite and > 0). Refused with the deceptive reward.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r0: Option<f64>,
    /// `reward = "original"` only: R1, added where every coordinate has
    /// |s_i/(H-1) - 0.5| > 0.25 (default 0.5; finite and >= 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r1: Option<f64>,
    /// `reward = "original"` only: R2, added where every coordinate has
    /// 0.3 < |s_i/(H-1) - 0.5| < 0.4 (default 2.0; finite and >= 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r2: Option<f64>,
    /// Reproduce the official code's training loss at the edge: the backward
    /// policy of a terminal state with a coordinate at H-1 is uniform over
    /// every coordinate > 0, as if each were a parent, instead of the single
    /// parent that decrements the edge coordinate (default `false`: the true
    /// parent set). It lowers log P_B of every trajectory that ends at the
    /// edge by log(number of nonzero coordinates), so the loss trains such
    /// states towards R / k. Only the losses change (student, teacher, local
    /// search scores); backward trajectories of replayed states still use
    /// the true parents (docs/grid.md "Differences from the official code").
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reference_edge_pb: bool,
}

fn default_beta() -> f64 {
    1.0
}

/// A reward family of the grid: R(s) before the exponent beta.
pub trait GridReward: Send + Sync + std::fmt::Debug {
    /// R(s) of the state `s` of a grid of side `horizon`: finite and > 0.
    fn reward(&self, s: &[u16], horizon: usize) -> f64;
}

/// How a reward family is configured: its own `[env]` keys and its
/// constructor. Registered in [`grid_rewards!`].
pub trait GridRewardFamily: GridReward + Sized + 'static {
    /// The family's own `[env]` keys (fields of [`GridConfig`]); the other
    /// families refuse them.
    const KEYS: &'static [&'static str];

    /// The reward of `cfg`, its keys range-checked (errors name `env.<key>`).
    fn from_config(cfg: &GridConfig) -> Result<Self, Invalid>;

    /// Write the family's defaults of unset keys into `cfg` (so that the
    /// resolved `config.toml` records the values used).
    fn fill_defaults(_cfg: &mut GridConfig) {}
}

/// The registry of reward families: `Variant(Type) = "name"`, the first
/// one the default. Generates [`GridRewardKind`], the value of `env.reward`.
macro_rules! grid_rewards {
    (
        $( $(#[$vmeta:meta])* $variant:ident($ty:ty) = $name:literal ),+ $(,)?
    ) => {
        /// The reward family of the grid (`env.reward`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
        pub enum GridRewardKind {
            $( $(#[$vmeta])* #[serde(rename = $name)] $variant, )+
        }

        impl GridRewardKind {
            /// Every accepted value of `env.reward`, the default first.
            pub const NAMES: &'static [&'static str] = &[$($name),+];
            const ALL: &'static [GridRewardKind] = &[$(GridRewardKind::$variant),+];

            /// The name of this family, as `env.reward` spells it.
            pub fn name(self) -> &'static str {
                match self { $( Self::$variant => $name, )+ }
            }

            /// The family's own `[env]` keys.
            pub fn keys(self) -> &'static [&'static str] {
                match self { $( Self::$variant => <$ty as GridRewardFamily>::KEYS, )+ }
            }

            /// The reward of `cfg` (its keys checked).
            pub fn build(self, cfg: &GridConfig) -> Result<Box<dyn GridReward>, Invalid> {
                match self {
                    $( Self::$variant => Ok(Box::new(<$ty as GridRewardFamily>::from_config(cfg)?)), )+
                }
            }

            fn fill_defaults(self, cfg: &mut GridConfig) {
                match self { $( Self::$variant => <$ty as GridRewardFamily>::fill_defaults(cfg), )+ }
            }
        }

        impl Default for GridRewardKind {
            fn default() -> Self {
                Self::ALL[0]
            }
        }
    };
}

pub mod deceptive;
pub mod original;

grid_rewards! {
    /// The paper's deceptive gridworld (docs/grid.md "Reward"); no keys.
    Deceptive(deceptive::Deceptive) = "deceptive",
    /// The hypergrid reward of Bengio et al. 2021: R0 + R1 [outer] + R2 [band]
    /// (keys `r0`, `r1`, `r2`).
    Original(original::Original) = "original",
}

impl GridRewardKind {
    /// Whether this is the default family (not written to `config.toml`).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// The keys of [`GridConfig`] that every reward family has.
const COMMON_KEYS: &[&str] = &["ndim", "horizon", "beta", "reward", "reference_edge_pb"];

impl GridConfig {
    /// The grid of `ndim` x `horizon` with every other key at its default
    /// (the deceptive reward, beta 1).
    pub fn new(ndim: usize, horizon: usize) -> Self {
        GridConfig {
            ndim,
            horizon,
            beta: default_beta(),
            reward: GridRewardKind::default(),
            r0: None,
            r1: None,
            r2: None,
            reference_edge_pb: false,
        }
    }

    /// The reward-family keys that are set (read from the serialised
    /// config: an unset key is not written), in the order of the fields.
    fn family_keys_set(&self) -> Vec<String> {
        let Ok(toml::Value::Table(t)) = toml::Value::try_from(self) else {
            return Vec::new();
        };
        t.keys()
            .filter(|k| !COMMON_KEYS.contains(&k.as_str()))
            .cloned()
            .collect()
    }

    /// The reward family of this config, built (after [`GridConfig::check`]).
    pub fn build_reward(&self) -> Result<Box<dyn GridReward>, Invalid> {
        self.reward.build(self)
    }

    /// Fill the reward family's defaults of its unset keys (the resolved config).
    pub fn fill_reward_defaults(&mut self) {
        let kind = self.reward;
        kind.fill_defaults(self);
    }

    /// The reward keys: every family key that is set belongs to the chosen
    /// family, and the family accepts their values.
    fn check_reward(&self) -> Result<(), Invalid> {
        let chosen = self.reward;
        for key in self.family_keys_set() {
            if chosen.keys().contains(&key.as_str()) {
                continue;
            }
            let owners: Vec<String> = GridRewardKind::ALL
                .iter()
                .filter(|f| f.keys().contains(&key.as_str()))
                .map(|f| format!("`reward = \"{}\"`", f.name()))
                .collect();
            return Err(Invalid::new(
                format!("env.{key}"),
                format!(
                    "is a key of {} only; the `{}` reward has {} (docs/grid.md \"Reward\")",
                    owners.join(", "),
                    chosen.name(),
                    match chosen.keys() {
                        [] => "no keys of its own".to_string(),
                        ks => format!(
                            "the keys {}",
                            ks.iter()
                                .map(|k| format!("`env.{k}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    }
                ),
            ));
        }
        self.build_reward().map(|_| ())
    }

    /// Range checks.
    pub fn check(&self) -> Result<(), Invalid> {
        let err = |k: &str, m: String| Err(Invalid::new(k, m));
        if self.ndim == 0 {
            return err("env.ndim", "must be at least 1".into());
        }
        if self.horizon < 2 || self.horizon > u16::MAX as usize {
            return err("env.horizon", format!("must be in 2..={}", u16::MAX));
        }
        // In f64 from the start: no integer cast can wrap a huge ndim.
        let states = (self.horizon as f64).powf(self.ndim as f64);
        if states > MAX_STATES as f64 {
            return err(
                "env",
                format!(
                    "a grid of H^d = {states:e} states is too large to enumerate for the exact metrics (limit {MAX_STATES})"
                ),
            );
        }
        if !self.beta.is_finite() || self.beta <= 0.0 {
            return err("env.beta", "must be a positive number".into());
        }
        self.check_reward()
    }

    /// The paper's training budget before the x1.5 (no local search) and x2
    /// (buffer) factors: docs/grid.md "Budgets".
    pub fn base_steps(&self) -> u64 {
        match self.ndim {
            2 if self.horizon <= 256 => 4000,
            2 => 8000,
            4 if self.horizon <= 16 => 4000,
            4 => 16000,
            _ => 4000,
        }
    }

    /// Default replay capacity: int(0.1 (H-1+d) (H-1)^(d-1)) (docs/grid.md "Replay buffer").
    pub fn default_buffer_size(&self) -> usize {
        let h1 = (self.horizon - 1) as f64;
        ((0.1 * (h1 + self.ndim as f64) * h1.powi(self.ndim as i32 - 1)) as usize).max(1)
    }

    /// Default number of recent training samples behind `empirical_l1` (docs/grid.md "Metrics").
    pub fn default_window(&self) -> usize {
        match (self.ndim, self.horizon) {
            (2, h) if h <= 256 => 10_000,
            (4, h) if h <= 16 => 10_000,
            _ => 20_000,
        }
    }
}

/// The gridworld with its enumerated terminal set.
pub struct Grid {
    /// Number of dimensions d.
    pub ndim: usize,
    /// Side length H.
    pub horizon: usize,
    /// Reward exponent.
    pub beta: f64,
    /// The reward family: R(s) before the exponent.
    family: Box<dyn GridReward>,
    /// Dense state index -> index in the terminal set (`u32::MAX`: not terminal-reachable).
    terminal_index: Vec<u32>,
    /// Unnormalised reward R(x) of every state of the terminal set.
    pub terminal_reward: Vec<f64>,
    /// p(x) = R(x) / sum R over the terminal set.
    pub true_density: Vec<f64>,
    /// Dense state index -> is a goal (a terminal state whose reward is the
    /// maximum over the terminal set).
    is_goal: Vec<bool>,
    /// Number of goals.
    pub n_goals: usize,
    /// The losses' P_B at the edge as the official code (`GridConfig::reference_edge_pb`).
    pub reference_edge_pb: bool,
}

impl Grid {
    /// Build the grid and enumerate its terminal set (all states with at most
    /// one coordinate at H-1). `cfg` must have passed [`GridConfig::check`]
    /// (a reward key it refuses panics here).
    pub fn new(cfg: &GridConfig) -> Self {
        let (d, h) = (cfg.ndim, cfg.horizon);
        let n = h.pow(d as u32);
        let family = cfg
            .build_reward()
            .unwrap_or_else(|e| panic!("an unchecked grid config: {e}"));
        let mut grid = Grid {
            ndim: d,
            horizon: h,
            beta: cfg.beta,
            family,
            terminal_index: vec![u32::MAX; n],
            terminal_reward: Vec::new(),
            true_density: Vec::new(),
            is_goal: vec![false; n],
            n_goals: 0,
            reference_edge_pb: cfg.reference_edge_pb,
        };
        let mut s = vec![0u16; d];
        for idx in 0..n {
            let mut rest = idx;
            for c in s.iter_mut() {
                *c = (rest % h) as u16;
                rest /= h;
            }
            let at_edge = s.iter().filter(|&&c| c as usize == h - 1).count();
            if at_edge < 2 {
                grid.terminal_index[idx] = grid.terminal_reward.len() as u32;
                grid.terminal_reward.push(grid.reward(&s));
            }
        }
        // Goals: the terminal states whose reward is the maximum over the
        // terminal set (docs/grid.md "Reward": the same states as the maximum
        // over all states whenever a goal has no coordinate at H-1, as the
        // deceptive ring and the original band never do).
        let max = grid
            .terminal_reward
            .iter()
            .cloned()
            .fold(f64::MIN, f64::max);
        for (idx, &t) in grid.terminal_index.iter().enumerate() {
            if t != u32::MAX && grid.terminal_reward[t as usize] >= max {
                grid.is_goal[idx] = true;
            }
        }
        grid.n_goals = grid.is_goal.iter().filter(|&&g| g).count();
        let z: f64 = grid.terminal_reward.iter().sum();
        grid.true_density = grid.terminal_reward.iter().map(|r| r / z).collect();
        grid
    }

    /// The reward R(s)^beta of the configured family (docs/grid.md "Reward").
    pub fn reward(&self, s: &[u16]) -> f64 {
        self.family.reward(s, self.horizon).powf(self.beta)
    }

    /// Size of the observation: d one-hot vectors of length H.
    pub fn obs_dim(&self) -> usize {
        self.ndim * self.horizon
    }

    /// Forward actions: d increments and stop.
    pub fn n_forward_actions(&self) -> usize {
        self.ndim + 1
    }

    /// Backward actions: d decrements.
    pub fn n_backward_actions(&self) -> usize {
        self.ndim
    }

    /// Dense index of a state (coordinate 0 varies fastest).
    pub fn dense(&self, s: &[u16]) -> usize {
        s.iter()
            .rev()
            .fold(0, |acc, &c| acc * self.horizon + c as usize)
    }

    /// Index of `s` in the terminal set, if it belongs to it.
    pub fn terminal_index(&self, s: &[u16]) -> Option<usize> {
        let i = self.terminal_index[self.dense(s)];
        (i != u32::MAX).then_some(i as usize)
    }

    /// The states of the terminal set, in the order of `true_density`.
    pub fn terminal_states(&self) -> impl Iterator<Item = Vec<u16>> + '_ {
        (0..self.terminal_index.len())
            .filter(|&i| self.terminal_index[i] != u32::MAX)
            .map(|mut i| {
                (0..self.ndim)
                    .map(|_| {
                        let c = (i % self.horizon) as u16;
                        i /= self.horizon;
                        c
                    })
                    .collect()
            })
    }

    /// Whether `s` is a goal (maximal reward).
    pub fn is_goal(&self, s: &[u16]) -> bool {
        self.is_goal[self.dense(s)]
    }

    /// The observation of `s` (d one-hot vectors of length H, concatenated)
    /// as the positions of its d ones: `out[i] = i * H + s_i`.
    fn write_obs(&self, s: &[u16], out: &mut [u32]) {
        for (i, (o, &c)) in out.iter_mut().zip(s).enumerate() {
            *o = (i * self.horizon) as u32 + c as u32;
        }
    }

    /// Valid backward actions (parents) of `s`: decrement i where s_i > 0,
    /// except that a state with a coordinate j at H-1 has only the parent
    /// s - e_j (any other parent would itself have been terminal).
    fn parent_mask(&self, s: &[u16], out: &mut [bool]) {
        let edge = s.iter().position(|&c| c as usize == self.horizon - 1);
        for (i, (o, &c)) in out.iter_mut().zip(s).enumerate() {
            *o = c > 0 && edge.is_none_or(|j| j == i);
        }
    }

    /// Number of parents of `s` (uniform P_B is 1 / this).
    pub fn n_parents(&self, s: &[u16]) -> usize {
        match s.iter().any(|&c| c as usize == self.horizon - 1) {
            true => 1,
            false => s.iter().filter(|&&c| c > 0).count(),
        }
    }

    /// The forward logits `[n, d+1]` (host, row-major) of the states whose
    /// one-hot positions are `obs` `[n, d]`: the first d+1 outputs of `policy`.
    fn forward_logits(
        &self,
        policy: &(impl GridPolicy + ?Sized),
        obs: &[u32],
        device: &Device,
    ) -> candle_core::Result<Vec<f32>> {
        let n = obs.len() / self.ndim;
        let x = Tensor::from_slice(obs, (n, self.ndim), device)?; // one-hot positions [n, d]
        policy
            .forward(&x)?
            .narrow(1, 0, self.n_forward_actions())?
            .contiguous()?
            .flatten_all()?
            .to_vec1()
    }

    /// The forward policy at `s` from its logits `row` `[d+1]`, unnormalised:
    /// `out[i]` = exp(l_i - max l) for the valid actions (stop, and increments
    /// of coordinates below H-1), 0 for the others; returns their sum, the
    /// softmax's normaliser (the masked softmax is `out / z`).
    fn softmax_weights(&self, s: &[u16], row: &[f32], out: &mut [f64]) -> f64 {
        let d = self.ndim;
        let mut max = f64::MIN;
        for (i, p) in out.iter_mut().enumerate() {
            let valid = i == d || (s[i] as usize) < self.horizon - 1;
            *p = if valid {
                row[i] as f64
            } else {
                f64::NEG_INFINITY
            };
            max = max.max(*p);
        }
        let mut z = 0.0;
        for p in out.iter_mut() {
            *p = (*p - max).exp();
            z += *p;
        }
        z
    }

    /// The exact terminal distribution of `policy` (epsilon 0, the
    /// evaluation's sampler) over the terminal set, in the order of
    /// `true_density`, by dynamic programming instead of sampling: the
    /// probability that a rollout visits each state, pushed through the
    /// states in increasing dense index (every transition increments a
    /// coordinate, so a state's parents come before it). An interior state
    /// (no coordinate at H-1) ends with the policy's stop probability; an
    /// edge state (one coordinate at H-1) ends every rollout that reaches it,
    /// as in [`Grid::rollout`]. One network call per `chunk` interior
    /// states; (H-1)^d rows in all, H^d f64 of memory.
    pub fn terminal_distribution(
        &self,
        policy: &impl GridPolicy,
        chunk: usize,
        device: &Device,
    ) -> candle_core::Result<Vec<f64>> {
        let (d, h, a_dim) = (self.ndim, self.horizon, self.n_forward_actions());
        let n = self.terminal_index.len(); // H^d
        let strides: Vec<usize> = (0..d).map(|i| h.pow(i as u32)).collect();
        let mut reach = vec![0f64; n]; // P(a rollout visits s), by dense index
        reach[0] = 1.0;
        let mut out = vec![0f64; self.terminal_reward.len()];
        // The interior states awaiting their logits: dense indices, and the
        // states themselves flat `[m, d]` (no allocation per state).
        let (mut pending, mut states) = (Vec::with_capacity(chunk), Vec::with_capacity(chunk * d));
        let mut obs = Vec::with_capacity(chunk * d);
        let mut probs = vec![0f64; a_dim];
        let mut s = vec![0u16; d];
        let mut flush = |pending: &mut Vec<usize>,
                         states: &mut Vec<u16>,
                         obs: &mut Vec<u32>,
                         reach: &mut [f64],
                         out: &mut [f64]|
         -> candle_core::Result<()> {
            if pending.is_empty() {
                return Ok(());
            }
            let logits = self.forward_logits(policy, obs, device)?; // [m, d+1]
            for (k, (&idx, st)) in pending.iter().zip(states.chunks_exact(d)).enumerate() {
                let z = self.softmax_weights(st, &logits[k * a_dim..(k + 1) * a_dim], &mut probs);
                let p = reach[idx];
                out[self.terminal_index[idx] as usize] += p * probs[d] / z;
                for (i, stride) in strides.iter().enumerate() {
                    reach[idx + stride] += p * probs[i] / z;
                }
            }
            pending.clear();
            states.clear();
            obs.clear();
            Ok(())
        };
        for idx in 0..n {
            let mut rest = idx;
            for c in s.iter_mut() {
                *c = (rest % h) as u16;
                rest /= h;
            }
            if s.iter().all(|&c| (c as usize) < h - 1) {
                let at = obs.len();
                obs.resize(at + d, 0);
                self.write_obs(&s, &mut obs[at..]);
                states.extend_from_slice(&s);
                pending.push(idx);
                if pending.len() == chunk {
                    flush(&mut pending, &mut states, &mut obs, &mut reach, &mut out)?;
                }
            }
        }
        flush(&mut pending, &mut states, &mut obs, &mut reach, &mut out)?;
        // Edge states: every rollout reaching one stops there (reach is final
        // now: all interior states have been pushed).
        for (idx, &t) in self.terminal_index.iter().enumerate() {
            let mut rest = idx;
            let edge = (0..d).any(|_| {
                let c = rest % h;
                rest /= h;
                c == h - 1
            });
            if edge && t != u32::MAX {
                out[t as usize] += reach[idx];
            }
        }
        Ok(out)
    }

    /// `n` complete trajectories sampled by `policy` from s0 with
    /// exploration `eps` (the one discrete sampler,
    /// [`sample_trajectories`]; this grid's draws in [`Grid::forward_moves`]),
    /// packed with their rewards.
    pub fn rollout(
        &self,
        policy: &(dyn GridPolicy + 'static),
        n: usize,
        eps: f64,
        rng: &mut Rng,
    ) -> candle_core::Result<Trajectories> {
        Ok(self.trajectories(&sample_trajectories(self, policy, n, eps, rng)?))
    }

    /// The batch of the complete `paths`, with the reward of each terminal state.
    pub fn trajectories(&self, paths: &[Path<Vec<u16>>]) -> Trajectories {
        let mut out = Trajectories {
            state_dim: self.ndim,
            ..Default::default()
        };
        for p in paths {
            out.push_path(p, self.reward(p.last()));
        }
        out
    }

    /// The trajectories of a batch of complete trajectories, as paths.
    pub fn paths(&self, t: &Trajectories) -> Vec<Path<Vec<u16>>> {
        (0..t.len())
            .map(|b| Path {
                states: (t.offsets[b]..t.offsets[b + 1])
                    .map(|i| t.state(i).to_vec())
                    .collect(),
                actions: t.actions_of(b).iter().map(|&a| a as usize).collect(),
                log_pf: 0.0,
                done: true,
            })
            .collect()
    }
}

/// The gridworld as a discrete environment: states are the coordinate
/// vectors; action i < d increments coordinate i, action d stops (the
/// trajectory repeats its last state, as the reference does); P_B is uniform
/// over the parents.
impl DiscreteEnv for Grid {
    type State = Vec<u16>;
    type Policy = dyn GridPolicy + 'static;
    type Error = candle_core::Error;

    fn initial_state(&self) -> Vec<u16> {
        vec![0; self.ndim]
    }

    /// The forward logits are the policy's first d+1 outputs; its action
    /// distribution is mixed with uniform, p = (1 - eps) softmax + eps /
    /// (d+1), and one uniform `f64` per state picks the action by inverse
    /// CDF. A move ends the trajectory when it stops or brings a coordinate
    /// to H-1. One network call: `[n, d] -> [n, out]`.
    fn forward_moves(
        &self,
        policy: &(dyn GridPolicy + 'static),
        states: &[&Vec<u16>],
        eps: f64,
        rng: &mut Rng,
    ) -> candle_core::Result<Vec<Move<Vec<u16>>>> {
        let (d, a_dim) = (self.ndim, self.n_forward_actions());
        let mut obs = vec![0u32; states.len() * d];
        for (s, o) in states.iter().zip(obs.chunks_mut(d.max(1))) {
            self.write_obs(s, o);
        }
        let logits = self.forward_logits(policy, &obs, policy.device())?; // [n, d+1]
        let mut probs = vec![0f64; a_dim];
        let mut out = Vec::with_capacity(states.len());
        for (&s, row) in states.iter().zip(logits.chunks(a_dim)) {
            let z = self.softmax_weights(s, row, &mut probs);
            let u: f64 = rng.random();
            let mut acc = 0.0;
            let mut action = a_dim - 1;
            for (i, p) in probs.iter().enumerate() {
                acc += (1.0 - eps) * p / z + eps / a_dim as f64;
                if u < acc {
                    action = i;
                    break;
                }
            }
            let mut next = s.clone();
            let done = if action == d {
                true
            } else {
                next[action] += 1;
                next[action] as usize == self.horizon - 1
            };
            out.push(Move {
                action,
                next,
                done,
                log_pf: (probs[action] / z).ln(),
            });
        }
        Ok(out)
    }

    /// A stop action last if x has no coordinate at H-1, then uniformly
    /// chosen parents down to 0, one `random_range` draw per decrement
    /// (docs/grid.md "Backward trajectory generation").
    fn sample_backward(&self, x: &Vec<u16>, rng: &mut Rng) -> Path<Vec<u16>> {
        let d = self.ndim;
        let mut rev_states: Vec<Vec<u16>> = vec![x.clone()];
        let mut rev_actions: Vec<usize> = Vec::new();
        if x.iter().all(|&c| (c as usize) < self.horizon - 1) {
            rev_states.push(x.clone());
            rev_actions.push(d);
        }
        let mut s = x.clone();
        let mut mask = vec![false; d];
        while s.iter().any(|&c| c > 0) {
            self.parent_mask(&s, &mut mask);
            let n = mask.iter().filter(|&&m| m).count();
            let pick = rng.random_range(0..n);
            let i = mask
                .iter()
                .enumerate()
                .filter(|(_, &m)| m)
                .nth(pick)
                .map(|(i, _)| i)
                .expect("a non-zero state has a parent");
            s[i] -= 1;
            rev_states.push(s.clone());
            rev_actions.push(i);
        }
        rev_states.reverse();
        rev_actions.reverse();
        Path {
            states: rev_states,
            actions: rev_actions,
            log_pf: 0.0,
            done: true,
        }
    }

    /// The stop step has backward probability 1; an increment into s' has
    /// 1 / (number of parents of s').
    fn log_pb(&self, segment: &[Vec<u16>]) -> f64 {
        segment
            .windows(2)
            .map(|w| match w[0] == w[1] {
                true => 0.0,
                false => -(self.n_parents(&w[1]) as f64).ln(),
            })
            .sum()
    }

    /// The masked log-softmax of the forward logits at each action taken,
    /// summed per path; one network call for every state of every path.
    fn log_pf_of(
        &self,
        policy: &(dyn GridPolicy + 'static),
        paths: &[Path<Vec<u16>>],
    ) -> candle_core::Result<Vec<f64>> {
        let (d, a_dim) = (self.ndim, self.n_forward_actions());
        let mut obs = Vec::new();
        for p in paths {
            for s in &p.states[..p.actions.len()] {
                let at = obs.len();
                obs.resize(at + d, 0u32);
                self.write_obs(s, &mut obs[at..]);
            }
        }
        if obs.is_empty() {
            return Ok(vec![0.0; paths.len()]);
        }
        let logits = self.forward_logits(policy, &obs, policy.device())?; // [n, d+1]
        let mut rows = logits.chunks(a_dim);
        let mut probs = vec![0f64; a_dim];
        Ok(paths
            .iter()
            .map(|p| {
                p.states
                    .iter()
                    .zip(&p.actions)
                    .map(|(s, &a)| {
                        let row = rows.next().expect("one row per transition");
                        let z = self.softmax_weights(s, row, &mut probs);
                        (probs[a] / z).ln()
                    })
                    .sum()
            })
            .collect())
    }

    /// ln R(x)^beta.
    fn log_rewards(&self, xs: &[&Vec<u16>]) -> candle_core::Result<Vec<f64>> {
        Ok(xs.iter().map(|x| self.reward(x).ln()).collect())
    }
}

impl Grid {
    /// Tensors of a batch for the objectives: one row per state of the packed
    /// batch, forward-action masks, and per-transition gather indices. The
    /// backward policy is uniform over the parents (or learned over them),
    /// or over every nonzero coordinate with `reference_edge_pb`.
    pub fn pack(
        &self,
        trajs: &Trajectories,
        learn_pb: bool,
        device: &Device,
    ) -> candle_core::Result<PackedBatch> {
        let (d, a_dim) = (self.ndim, self.n_forward_actions());
        let (bsz, n) = (trajs.len(), trajs.n_states());
        let mut obs = vec![0u32; n * d];
        let mut fwd_mask = vec![0f32; n * a_dim];
        let mut bwd_mask = vec![0f32; n * d];
        let mut parents = vec![false; d];
        let mut n_parents = vec![0usize; n];
        for i in 0..n {
            let s = trajs.state(i);
            self.write_obs(s, &mut obs[i * d..(i + 1) * d]);
            for (j, &c) in s.iter().enumerate() {
                if c as usize == self.horizon - 1 {
                    fwd_mask[i * a_dim + j] = MASKED_LOGIT;
                }
            }
            match self.reference_edge_pb {
                // The official loss: every nonzero coordinate, even at the edge.
                true => parents.iter_mut().zip(s).for_each(|(p, &c)| *p = c > 0),
                false => self.parent_mask(s, &mut parents),
            }
            n_parents[i] = parents.iter().filter(|&&p| p).count();
            for (j, &p) in parents.iter().enumerate() {
                if !p {
                    bwd_mask[i * d + j] = MASKED_LOGIT;
                }
            }
        }
        let m = trajs.actions.len();
        let mut t = TransitionIndex::with_capacity(bsz, m);
        for b in 0..bsz {
            let start = trajs.offsets[b];
            let acts = trajs.actions_of(b);
            for (k, &a) in acts.iter().enumerate() {
                let row = start + k;
                let last = k + 1 == acts.len();
                let stop = a as usize == d;
                // The backward step of the stop action has probability 1.
                let log_pb = if stop {
                    0.0
                } else {
                    -(n_parents[row + 1] as f32).ln()
                };
                t.push(TransitionRow {
                    traj: b,
                    row,
                    action: a,
                    a_dim,
                    b_dim: d,
                    stop,
                    log_pb,
                    ends_entry: last && trajs.terminated[b],
                    // GAFN augments the backward factor into every state but
                    // the final state of an edge-terminated trajectory.
                    augmentable: !(stop || last && trajs.terminated[b]),
                });
            }
        }
        t.into_packed(
            Tensor::from_vec(obs, (n, d), device)?,
            Tensor::from_vec(fwd_mask, (n, a_dim), device)?,
            learn_pb.then_some((bwd_mask, n, d)),
            device,
        )
    }
}

/// Hand-built batches shared by the unit tests of the objectives.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::{Grid, GridConfig};
    use crate::envs::Trajectories;

    /// The d=2, H=4 grid.
    pub fn grid_2x4() -> Grid {
        Grid::new(&GridConfig::new(2, 4))
    }

    /// A batch of the given trajectories `(states, actions)` on `grid_2x4`.
    pub fn batch(grid: &Grid, trajs: &[(&[u16], &[u32])]) -> Trajectories {
        let mut t = Trajectories {
            state_dim: 2,
            ..Default::default()
        };
        for (states, actions) in trajs {
            t.push(states, actions, grid.reward(&states[states.len() - 2..]));
        }
        t
    }

    /// (0,0) -a0-> (1,0) -a1-> (1,1) -stop-> (1,1).
    pub const STOPPED: (&[u16], &[u32]) = (&[0, 0, 1, 0, 1, 1, 1, 1], &[0, 1, 2]);
    /// (0,0) -a0-> (1,0) -a1-> (1,1) -a0-> (2,1) -a0-> (3,1): ends at the edge.
    pub const EDGE: (&[u16], &[u32]) = (&[0, 0, 1, 0, 1, 1, 2, 1, 3, 1], &[0, 1, 0, 0]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test policy: one linear layer on the one-hot observation (the sum
    /// of the weight rows at the d positions), weights U(-1, 1) from `rng`.
    struct OneHotLinear {
        /// `[obs_dim, out]`.
        w: Tensor,
    }

    impl OneHotLinear {
        fn new(obs_dim: usize, out: usize, rng: &mut Rng) -> Self {
            let w: Vec<f32> = (0..obs_dim * out)
                .map(|_| rng.random_range(-1.0f32..1.0))
                .collect();
            let w = Tensor::from_vec(w, (obs_dim, out), &Device::Cpu).unwrap();
            Self { w }
        }
    }

    impl GridPolicy for OneHotLinear {
        fn forward(&self, obs: &Tensor) -> candle_core::Result<Tensor> {
            let (n, d) = obs.dims2()?;
            let out = self.w.dim(1)?;
            self.w
                .index_select(&obs.flatten_all()?, 0)? // [n * d, out]
                .reshape((n, d, out))?
                .sum(1) // [n, out]
        }

        fn device(&self) -> &Device {
            self.w.device()
        }
    }

    fn grid(d: usize, h: usize) -> Grid {
        Grid::new(&GridConfig::new(d, h))
    }

    /// A dimension that would wrap in a 32-bit cast (2^32 + 1 -> 1) is
    /// still measured as H^d = 2^(2^32 + 1) states and refused.
    #[test]
    fn huge_ndim_does_not_wrap() {
        let c = GridConfig::new(4_294_967_297, 2);
        let e = c.check().unwrap_err();
        assert!(e.to_string().contains("too large"), "{e}");
    }

    /// Goal counts of docs/grid.md "Environment `grid`".
    #[test]
    fn goal_counts_match_spec() {
        for (d, h, goals) in [
            (2, 32, 36),
            (2, 64, 144),
            (2, 256, 2601),
            (4, 16, 81),
            (4, 32, 1296),
        ] {
            assert_eq!(grid(d, h).n_goals, goals, "d={d} H={h}");
        }
    }

    /// Hand-computed rewards on d=2, H=32 (u = |2 s/31 - 1|).
    #[test]
    fn reward_values() {
        let g = grid(2, 32);
        // s = (0,0): u = 1 > 0.2 both -> -0.1 + 0.1 + 1e-5.
        assert!((g.reward(&[0, 0]) - 1e-5).abs() < 1e-12);
        // s = (15,15): u = 1/31 < 0.2 -> 0.1 + 1e-5 (the deceptive middle).
        assert!((g.reward(&[15, 15]) - 0.10001).abs() < 1e-12);
        // s = (4,4): u = 23/31 = 0.742 in (0.6, 0.8) -> -0.1 + 2 + 0.1 + 1e-5 = 2.00001.
        assert!((g.reward(&[4, 4]) - 2.00001).abs() < 1e-12);
        assert!(g.is_goal(&[4, 4]) && !g.is_goal(&[15, 15]));
        // Mixed: (4, 15) -> only the middle term: 0.10001.
        assert!((g.reward(&[4, 15]) - 0.10001).abs() < 1e-12);
        // beta = 2 squares it.
        let g2 = Grid::new(&GridConfig {
            beta: 2.0,
            ..GridConfig::new(2, 32)
        });
        assert!((g2.reward(&[4, 4]) - 2.00001f64.powi(2)).abs() < 1e-9);
    }

    /// The reward keys: the deceptive reward refuses `r0`..`r2` naming the
    /// key and its family; the original one checks their ranges; the
    /// resolved config records the original's defaults and nothing for
    /// the deceptive reward.
    #[test]
    fn reward_keys_are_checked() {
        let key_of = |c: GridConfig| c.check().unwrap_err();
        let e = key_of(GridConfig {
            r1: Some(0.5),
            ..GridConfig::new(2, 8)
        });
        assert_eq!(e.key, "env.r1");
        assert!(
            e.message.contains("`reward = \"original\"`")
                && e.message.contains("`deceptive` reward has no keys"),
            "{e}"
        );
        let original = |r0, r1, r2| GridConfig {
            reward: GridRewardKind::Original,
            r0,
            r1,
            r2,
            ..GridConfig::new(2, 8)
        };
        assert!(original(None, None, None).check().is_ok());
        assert!(original(Some(1e-9), Some(0.0), Some(0.0)).check().is_ok());
        for (c, key) in [
            (original(Some(0.0), None, None), "env.r0"),
            (original(Some(-0.1), None, None), "env.r0"),
            (original(Some(f64::NAN), None, None), "env.r0"),
            (original(Some(f64::INFINITY), None, None), "env.r0"),
            (original(None, Some(-1.0), None), "env.r1"),
            (original(None, None, Some(f64::INFINITY)), "env.r2"),
        ] {
            assert_eq!(key_of(c).key, key);
        }
        let mut c = original(Some(0.3), None, None);
        c.fill_reward_defaults();
        assert_eq!((c.r0, c.r1, c.r2), (Some(0.3), Some(0.5), Some(2.0)));
        let mut d = GridConfig::new(2, 8);
        d.fill_reward_defaults();
        assert_eq!(d, GridConfig::new(2, 8));
        // The default family is not written out; `original` is.
        let text = toml::to_string(&d).unwrap();
        assert!(!text.contains("reward") && !text.contains("r0"), "{text}");
        let text = toml::to_string(&c).unwrap();
        assert!(
            text.contains("reward = \"original\"") && text.contains("r0 = 0.3"),
            "{text}"
        );
        assert_eq!(GridRewardKind::NAMES, &["deceptive", "original"]);
    }

    /// Probability of every complete path from `s` (carrying `p`) by brute
    /// force, one network call per state: the terminal distribution's
    /// definition, independent of the dense-order sweep.
    fn paths(g: &Grid, net: &impl GridPolicy, s: &mut Vec<u16>, p: f64, out: &mut [f64]) {
        let d = g.ndim;
        let mut obs = vec![0u32; d];
        g.write_obs(s, &mut obs);
        let logits = g.forward_logits(net, &obs, &Device::Cpu).unwrap();
        let mut w = vec![0f64; d + 1];
        let z = g.softmax_weights(s, &logits, &mut w);
        out[g.terminal_index(s).unwrap()] += p * w[d] / z;
        for i in 0..d {
            if w[i] == 0.0 {
                continue;
            }
            s[i] += 1;
            let q = p * w[i] / z;
            if s[i] as usize == g.horizon - 1 {
                out[g.terminal_index(s).unwrap()] += q; // the edge ends it
            } else {
                paths(g, net, s, q, out);
            }
            s[i] -= 1;
        }
    }

    /// The dynamic programme equals the sum over all paths (d=2, H=4 and
    /// d=3, H=3, a random one-layer test policy, chunks of 1, 5 and all), sums
    /// to 1, and puts mass on every terminal state.
    #[test]
    fn terminal_distribution_is_the_sum_over_paths() {
        for (d, h) in [(2, 4), (3, 3)] {
            let g = grid(d, h);
            let mut rng = crate::rng::stream(3, crate::rng::Stream::InitStudent);
            let net = OneHotLinear::new(g.obs_dim(), 2 * d + 1, &mut rng);
            let mut want = vec![0f64; g.true_density.len()];
            paths(&g, &net, &mut vec![0; d], 1.0, &mut want);
            for chunk in [1, 5, 10_000] {
                let got = g.terminal_distribution(&net, chunk, &Device::Cpu).unwrap();
                for (a, b) in got.iter().zip(&want) {
                    assert!(
                        (a - b).abs() < 1e-12,
                        "d={d} H={h} chunk {chunk}: {a} vs {b}"
                    );
                }
                assert!((got.iter().sum::<f64>() - 1.0).abs() < 1e-12);
                assert!(got.iter().all(|&p| p > 0.0));
            }
        }
    }

    /// Rollouts (epsilon 0) land on the terminal states with the exact
    /// distribution's frequencies: 200,000 rollouts on d=2, H=4, every state
    /// within 4.5 standard errors (about 1 in 150,000 per state by chance).
    #[test]
    fn rollouts_follow_the_terminal_distribution() {
        let g = grid(2, 4);
        let mut rng = crate::rng::stream(4, crate::rng::Stream::InitStudent);
        let net = OneHotLinear::new(g.obs_dim(), 5, &mut rng);
        let q = g.terminal_distribution(&net, 64, &Device::Cpu).unwrap();
        let n = 200_000;
        let mut counts = vec![0usize; q.len()];
        let mut rng = crate::rng::stream(5, crate::rng::Stream::Eval);
        let t = g.rollout(&net, n, 0.0, &mut rng).unwrap();
        for b in 0..t.len() {
            counts[g.terminal_index(t.terminal(b)).unwrap()] += 1;
        }
        for (c, p) in counts.iter().zip(&q) {
            let se = (p * (1.0 - p) / n as f64).sqrt();
            assert!((*c as f64 / n as f64 - p).abs() < 4.5 * se, "{c} vs {p}");
        }
    }

    /// The grid as a discrete environment: the sampler's recorded log P_F
    /// equals [`DiscreteEnv::log_pf_of`]'s recomputation and the exact
    /// terminal distribution's per-path product; log P_B of hand paths.
    #[test]
    fn path_probabilities() {
        let g = grid(2, 4);
        let net = OneHotLinear::new(
            g.obs_dim(),
            3,
            &mut crate::rng::stream(3, crate::rng::Stream::InitStudent),
        );
        let mut rng = crate::rng::stream(3, crate::rng::Stream::Sampling);
        let paths = sample_trajectories(&g, &net, 16, 0.0, &mut rng).unwrap();
        let lpf = g.log_pf_of(&net, &paths).unwrap();
        for (p, l) in paths.iter().zip(&lpf) {
            assert!(p.done);
            assert_eq!(p.log_pf, *l);
        }
        // (0,0) -> (1,0) -> (1,1) -> stop: (1,0) has one parent, (1,1) two,
        // the stop step probability 1: log P_B = ln 1/2.
        let s = |a: u16, b: u16| vec![a, b];
        let inner = [s(0, 0), s(1, 0), s(1, 1), s(1, 1)];
        assert!((g.log_pb(&inner) - 0.5f64.ln()).abs() < 1e-15);
        // (1,1) -> (1,2) -> (1,3): (1,2) has two parents; (1,3) is at the
        // edge H-1 = 3, so its only parent is (1,2).
        assert!((g.log_pb(&[s(1, 1), s(1, 2), s(1, 3)]) - 0.5f64.ln()).abs() < 1e-15);
        // log P_F by hand at s0 for the path (0,0) -> stop: ln softmax(stop).
        let logits: Vec<f32> = net
            .forward(&Tensor::new(&[[0u32, 4]], &Device::Cpu).unwrap())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let lse = logits.iter().map(|&l| (l as f64).exp()).sum::<f64>().ln();
        let stop = Path {
            states: vec![s(0, 0), s(0, 0)],
            actions: vec![2],
            log_pf: 0.0,
            done: true,
        };
        let got = g.log_pf_of(&net, &[stop]).unwrap()[0];
        assert!((got - (logits[2] as f64 - lse)).abs() < 1e-12, "{got}");
    }

    /// Terminal set: states with at most one coordinate at H-1; density sums to 1.
    #[test]
    fn terminal_set_and_density() {
        let g = grid(2, 8);
        assert_eq!(g.terminal_reward.len(), 64 - 1); // only (7,7) excluded
        assert!(g.terminal_index(&[7, 7]).is_none());
        assert!(g.terminal_index(&[7, 3]).is_some());
        let total: f64 = g.true_density.iter().sum();
        assert!((total - 1.0).abs() < 1e-12);
    }

    #[test]
    fn parents() {
        let g = grid(3, 8);
        assert_eq!(g.n_parents(&[0, 0, 0]), 0);
        assert_eq!(g.n_parents(&[1, 0, 2]), 2);
        // A coordinate at H-1: the only parent decrements it.
        assert_eq!(g.n_parents(&[7, 3, 2]), 1);
    }

    /// `reference_edge_pb` changes exactly one factor of a hand batch: the
    /// edge-terminated (0,0) -> (1,0) -> (1,1) -> (2,1) -> (3,1) on d=2, H=4.
    /// Its last state (3,1) has one parent, (2,1) (log P_B = 0); the official
    /// loss counts both nonzero coordinates (log P_B = -ln 2). The other
    /// factors, (1,0): 1 parent, (1,1): 2, (2,1): 2, are the same either way.
    #[test]
    fn reference_edge_pb_changes_only_the_edge_factor() {
        let log_pb = |reference: bool| -> Vec<f32> {
            let g = Grid::new(&GridConfig {
                reference_edge_pb: reference,
                ..GridConfig::new(2, 4)
            });
            let t = fixtures::batch(&g, &[fixtures::EDGE, fixtures::STOPPED]);
            let p = g.pack(&t, false, &Device::Cpu).unwrap();
            let crate::objective::LogPb::Fixed(pb) = &p.log_pb else {
                panic!("uniform P_B")
            };
            pb.to_vec1().unwrap()
        };
        let ln2 = -(2f32.ln());
        // EDGE: 4 transitions, then STOPPED: 3 (its stop step has P_B = 1).
        assert_eq!(log_pb(false), vec![0.0, ln2, ln2, 0.0, 0.0, ln2, 0.0]);
        assert_eq!(log_pb(true), vec![0.0, ln2, ln2, ln2, 0.0, ln2, 0.0]);
    }

    #[test]
    fn pack_hand_trajectory() {
        // d=2, H=4: (0,0) -a0-> (1,0) -a1-> (1,1) -stop-> (1,1).
        let g = grid(2, 4);
        let mut t = Trajectories {
            state_dim: 2,
            ..Default::default()
        };
        t.push(&[0, 0, 1, 0, 1, 1, 1, 1], &[0, 1, 2], g.reward(&[1, 1]));
        let p = g.pack(&t, false, &Device::Cpu).unwrap();
        assert_eq!(p.obs.dims(), &[4, 2]);
        let obs: Vec<u32> = p.obs.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(obs, vec![0, 4, 1, 4, 1, 5, 1, 5]); // i * H + s_i
        let idx: Vec<u32> = p.pf_index.to_vec1().unwrap();
        assert_eq!(idx, vec![0, 3 + 1, 6 + 2]);
        // log P_B: (1,0) has 1 parent, (1,1) has 2, stop step has prob 1.
        let crate::objective::LogPb::Fixed(pb) = &p.log_pb else {
            panic!()
        };
        let pb: Vec<f32> = pb.to_vec1().unwrap();
        assert_eq!(pb[0], 0.0);
        assert!((pb[1] + 2f32.ln()).abs() < 1e-6 && pb[2] == 0.0);
        let ends: Vec<f32> = p.ends_entry.to_vec1().unwrap();
        assert_eq!(ends, vec![0.0, 0.0, 1.0]);
    }
}
