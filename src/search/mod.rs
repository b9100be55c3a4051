//! Local search: back-and-forth refinement of sampled trajectories
//! (spec/grid.md "Back-and-forth local search").

use candle_core::Device;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::envs::grid::{Grid, Prefix};
use crate::envs::Trajectories;
use crate::policy::mlp::Mlp;
use crate::rng::Rng;

pub mod sequence;

/// Back-and-forth local search: destroy the last part of each trajectory by
/// walking back along a fresh uniform-P_B trajectory, rebuild it forward with
/// the sampling network (epsilon 0), keep the candidate if it scores higher.
/// Which batches use it is set by `student+ls` / `teacher+ls` in the behaviour's schedule.
///
/// On the grid, `back_ratio` sets how much is destroyed and each batch is
/// refined in place. On the sequence tasks (spec/discovery.md "Local search"),
/// `k` states are walked back and rebuilt; of a batch of B, B / (iterations+1)
/// trajectories are sampled fresh and every proposal of every iteration is
/// training data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BackAndForthConfig {
    /// Grid: fraction of the states destroyed (floor(n_states * back_ratio) are walked back).
    pub back_ratio: f64,
    /// Destroy-and-rebuild iterations per batch (each costs one reward call
    /// per trajectory). Unset: 4 on the grid, 7 on the sequence tasks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iterations: Option<usize>,
    /// Sequence tasks: steps walked back with P_B and rebuilt with P_F. Unset: 3.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k: Option<usize>,
    /// Sequence tasks: keep a proposal x' when log R(x') > log R(x)
    /// (`deterministic`), or with probability sigmoid(log R(x') - log R(x) +
    /// log q_rev - log q_fwd) (`stochastic`, Metropolis-Hastings style).
    pub acceptance: Acceptance,
}

/// How a local-search proposal is accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Acceptance {
    /// Keep the proposal when it scores strictly higher.
    #[default]
    Deterministic,
    /// Keep it with the Metropolis-Hastings-style probability (sequence tasks).
    Stochastic,
}

/// Iterations on the grid when unset (the reference's default).
pub const GRID_ITERATIONS: usize = 4;
/// Iterations on the sequence tasks when unset (spec/discovery.md: i = 7).
pub const SEQ_ITERATIONS: usize = 7;
/// k on the sequence tasks when unset (spec/discovery.md: k = 3 for qm9, seh, tfbind8).
pub const SEQ_K: usize = 3;

impl Default for BackAndForthConfig {
    fn default() -> Self {
        Self {
            back_ratio: 0.5,
            iterations: None,
            k: None,
            acceptance: Acceptance::Deterministic,
        }
    }
}

impl BackAndForthConfig {
    /// Range checks; `(key, message)` on failure.
    pub fn check(&self) -> Result<(), (String, String)> {
        if !(0.0..=1.0).contains(&self.back_ratio) {
            return Err(("local_search.back_ratio".into(), "must be in [0, 1]".into()));
        }
        if self.iterations == Some(0) {
            return Err((
                "local_search.iterations".into(),
                "must be at least 1".into(),
            ));
        }
        if self.k == Some(0) {
            return Err(("local_search.k".into(), "must be at least 1".into()));
        }
        Ok(())
    }

    /// Checks of the grid: `k` and stochastic acceptance are sequence-task options.
    pub fn check_grid(&self) -> Result<(), (String, String)> {
        if self.k.is_some() {
            return Err((
                "local_search.k".into(),
                "is a sequence-task option; the grid uses `back_ratio`".into(),
            ));
        }
        if self.acceptance != Acceptance::Deterministic {
            return Err((
                "local_search.acceptance".into(),
                "the grid supports `deterministic` only".into(),
            ));
        }
        Ok(())
    }

    /// Checks of the sequence tasks (none beyond `check` so far).
    pub fn check_sequence(&self) -> Result<(), (String, String)> {
        self.check()
    }

    /// Refine `batch`: `iterations` rounds of destroy-and-rebuild, keeping per
    /// trajectory the candidate whose `score` is strictly higher (the student
    /// scores by reward; a teacher by the teacher reward recomputed with the
    /// student). Returns the refined batch and the number of reward calls.
    pub fn refine(
        &self,
        grid: &Grid,
        net: &Mlp,
        mut batch: Trajectories,
        score: &mut dyn FnMut(&Trajectories) -> candle_core::Result<Vec<f64>>,
        rng: &mut Rng,
        device: &Device,
    ) -> candle_core::Result<(Trajectories, u64)> {
        let d = grid.ndim;
        let mut best = score(&batch)?;
        let mut calls = 0;
        for _ in 0..self.iterations.unwrap_or(GRID_ITERATIONS) {
            let prefixes: Vec<Prefix> = (0..batch.len())
                .map(|b| {
                    let n_states = batch.offsets[b + 1] - batch.offsets[b];
                    let n_back = (n_states as f64 * self.back_ratio) as usize;
                    let mut back = grid.sample_backward(batch.terminal(b), rng);
                    let keep = n_states.saturating_sub(n_back).max(1);
                    back.states.truncate(keep * d);
                    back.actions.truncate(keep - 1);
                    back
                })
                .collect();
            let candidates = grid.rollout_from(net, prefixes, 0.0, rng, device)?;
            calls += candidates.len() as u64;
            let cand_score = score(&candidates)?;
            let mut next = Trajectories {
                state_dim: d,
                ..Default::default()
            };
            for b in 0..batch.len() {
                let (src, s) = if cand_score[b] > best[b] {
                    (&candidates, cand_score[b])
                } else {
                    (&batch, best[b])
                };
                let range = src.offsets[b]..src.offsets[b + 1];
                next.push(
                    &src.states[range.start * d..range.end * d],
                    src.actions_of(b),
                    src.reward[b],
                );
                best[b] = s;
            }
            batch = next;
        }
        Ok((batch, calls))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envs::grid::GridConfig;
    use crate::rng::{stream, Stream};

    /// Local search keeps the better of two trajectories: with a score that
    /// prefers the original batch, nothing changes; with a score that prefers
    /// any candidate, every trajectory is replaced by a valid rebuilt one that
    /// shares its terminal state's backward prefix.
    #[test]
    fn keeps_the_better_trajectory() {
        let dev = Device::Cpu;
        let g = Grid::new(&GridConfig {
            ndim: 2,
            horizon: 8,
            beta: 1.0,
        });
        let net = Mlp::new(&[16, 8, 5], &dev, &mut stream(0, Stream::InitStudent)).unwrap();
        let mut rng = stream(0, Stream::LocalSearch);
        let batch = g.rollout(&net, 6, 0.0, &mut rng, &dev).unwrap();
        let ls = BackAndForthConfig::default();
        // Score: 1 for the original batch (first call), 0 for every candidate.
        let mut first = true;
        let mut prefer_old = |t: &Trajectories| {
            let s = if first { 1.0 } else { 0.0 };
            first = false;
            Ok(vec![s; t.len()])
        };
        let (kept, calls) = ls
            .refine(&g, &net, batch.clone(), &mut prefer_old, &mut rng, &dev)
            .unwrap();
        assert_eq!(kept, batch);
        assert_eq!(calls, 6 * 4);
        // Score by reward: the result is never worse than the original.
        let mut by_reward = |t: &Trajectories| Ok(t.reward.clone());
        let (better, _) = ls
            .refine(&g, &net, batch.clone(), &mut by_reward, &mut rng, &dev)
            .unwrap();
        for b in 0..batch.len() {
            assert!(better.reward[b] >= batch.reward[b]);
            // Every kept trajectory is a valid path from 0 ending where its reward says.
            let x = better.terminal(b);
            assert_eq!(better.reward[b], g.reward(x));
            assert_eq!(better.state(better.offsets[b]), &[0, 0]);
        }
    }

    /// A backward trajectory runs from 0 to x through valid parents.
    #[test]
    fn backward_trajectories_are_valid() {
        let g = Grid::new(&GridConfig {
            ndim: 3,
            horizon: 6,
            beta: 1.0,
        });
        let mut rng = stream(1, Stream::Buffer);
        for x in [[2u16, 0, 3], [5, 1, 1], [0, 0, 0]] {
            let p = g.sample_backward(&x, &mut rng);
            let n = p.states.len() / 3;
            assert_eq!(&p.states[..3], &[0, 0, 0]);
            assert_eq!(&p.states[(n - 1) * 3..], &x);
            assert_eq!(p.actions.len(), n - 1);
            // Ends with stop unless a coordinate is at H-1.
            assert_eq!(*p.actions.last().unwrap() == 3, x.iter().all(|&c| c < 5));
            for t in 0..n - 1 {
                let (s, s2) = (&p.states[t * 3..t * 3 + 3], &p.states[t * 3 + 3..t * 3 + 6]);
                let a = p.actions[t] as usize;
                if a == 3 {
                    assert_eq!(s, s2);
                } else {
                    assert_eq!(s2[a], s[a] + 1);
                }
            }
        }
    }
}
