//! The seam of the discrete environments: what a task is ([`DiscreteEnv`]:
//! its states, its forward moves under a policy, its backward policy, its
//! log reward) and the one sampler that drives every such task
//! ([`sample_trajectories`], [`complete_trajectories`]), in the style of
//! torchgfn's `Sampler.sample_trajectories(env, n)`.
//!
//! The gridworld ([`crate::envs::grid::Grid`]) and the sequence tasks
//! ([`crate::envs::sequence::task::SeqEnv`]) implement it; the back-and-forth
//! local search ([`crate::search::back_and_forth`]) is written once on it.
//! How a batch of trajectories becomes the objective's tensors (log P_F,
//! log P_B, log F per transition) stays with each family's adapter in
//! `train::grid` / `train::sequence`, because the two families' networks
//! score states differently (a one-hot MLP over actions; a scorer of
//! (state, child) pairs).

use crate::rng::Rng;

/// One trajectory s0 -> ... -> s_n, complete or not.
#[derive(Debug, Clone, PartialEq)]
pub struct Path<S> {
    /// The states, s0 first (`actions.len() + 1` of them).
    pub states: Vec<S>,
    /// `actions[t]`: the index of the move from `states[t]` to
    /// `states[t + 1]` among the forward actions of `states[t]` (the
    /// environment defines the numbering).
    pub actions: Vec<usize>,
    /// Sum of log P_F of the steps this sampler drew, under the policy
    /// without exploration (0 for a path drawn backwards).
    pub log_pf: f64,
    /// Whether the trajectory is complete (its last state is terminal).
    pub done: bool,
}

impl<S> Path<S> {
    /// The trajectory's last state (its terminal state x once `done`).
    pub fn last(&self) -> &S {
        self.states
            .last()
            .expect("a path has at least its first state")
    }

    /// The first `keep` states (at least one) and the actions between them,
    /// not complete: the prefix a forward sampler continues.
    pub fn truncated(mut self, keep: usize) -> Self {
        let keep = keep.clamp(1, self.states.len());
        self.states.truncate(keep);
        self.actions.truncate(keep - 1);
        self.log_pf = 0.0;
        self.done = false;
        self
    }
}

/// One forward step drawn by [`DiscreteEnv::forward_moves`].
#[derive(Debug, Clone, PartialEq)]
pub struct Move<S> {
    /// Index of the action among the state's forward actions.
    pub action: usize,
    /// The state it leads to.
    pub next: S,
    /// Whether the trajectory is complete after it.
    pub done: bool,
    /// log P_F of the action under the policy without exploration.
    pub log_pf: f64,
}

/// A discrete GFlowNet environment: a DAG of states from one initial state
/// to terminal states, forward moves drawn from a policy network, a backward
/// policy, and the log reward of terminal states.
pub trait DiscreteEnv {
    /// A state.
    type State: Clone;
    /// The policy network, as the environment asks it for action
    /// probabilities (a trait object: one call per step of a whole batch).
    type Policy: ?Sized;
    /// What can fail: the network, or the reward (an oracle program).
    type Error: From<candle_core::Error>;

    /// The initial state s0.
    fn initial_state(&self) -> Self::State;

    /// One forward move from each of `states` (none complete), drawn from
    /// `policy`'s P_F mixed with uniform exploration `eps`, by ONE network
    /// call for the whole batch. Draws come from `rng` in batch order; the
    /// order and number of draws per state are the environment's, and part
    /// of its reproducibility (each implementation documents its own).
    fn forward_moves(
        &self,
        policy: &Self::Policy,
        states: &[&Self::State],
        eps: f64,
        rng: &mut Rng,
    ) -> Result<Vec<Move<Self::State>>, Self::Error>;

    /// A complete trajectory s0 -> x drawn backwards from the backward
    /// policy P_B (uniform over the parents).
    fn sample_backward(&self, x: &Self::State, rng: &mut Rng) -> Path<Self::State>;

    /// log P_B of the transitions of `segment` (consecutive states of one
    /// trajectory; a segment of one state is 0).
    fn log_pb(&self, segment: &[Self::State]) -> f64;

    /// log P_F of each of `paths` (each a segment: it may start anywhere)
    /// under `policy` without exploration: the sum over its transitions.
    fn log_pf_of(
        &self,
        policy: &Self::Policy,
        paths: &[Path<Self::State>],
    ) -> Result<Vec<f64>, Self::Error>;

    /// log R(x) of each terminal state of `xs`.
    fn log_rewards(&self, xs: &[&Self::State]) -> Result<Vec<f64>, Self::Error>;
}

/// `n` complete trajectories from s0 sampled by `policy` with exploration
/// `eps` (see [`complete_trajectories`]).
pub fn sample_trajectories<E: DiscreteEnv>(
    env: &E,
    policy: &E::Policy,
    n: usize,
    eps: f64,
    rng: &mut Rng,
) -> Result<Vec<Path<E::State>>, E::Error> {
    let start = Path {
        states: vec![env.initial_state()],
        actions: Vec::new(),
        log_pf: 0.0,
        done: false,
    };
    complete_trajectories(env, policy, vec![start; n], eps, rng)
}

/// Complete every path of `prefixes` that is not complete: at each step all
/// unfinished paths move once, by one call of [`DiscreteEnv::forward_moves`]
/// for all of them (in batch order), until every path is complete.
pub fn complete_trajectories<E: DiscreteEnv>(
    env: &E,
    policy: &E::Policy,
    mut paths: Vec<Path<E::State>>,
    eps: f64,
    rng: &mut Rng,
) -> Result<Vec<Path<E::State>>, E::Error> {
    loop {
        let active: Vec<usize> = (0..paths.len()).filter(|&b| !paths[b].done).collect();
        if active.is_empty() {
            return Ok(paths);
        }
        let moves = {
            let states: Vec<&E::State> = active.iter().map(|&b| paths[b].last()).collect();
            env.forward_moves(policy, &states, eps, rng)?
        };
        debug_assert_eq!(moves.len(), active.len());
        for (&b, m) in active.iter().zip(moves) {
            let p = &mut paths[b];
            p.actions.push(m.action);
            p.states.push(m.next);
            p.log_pf += m.log_pf;
            p.done = m.done;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{stream, Stream};
    use rand::Rng as _;

    /// A chain 0 -> 1 -> ... -> `len`: from each state one may step by 1 or
    /// by 2 (not past `len`), each with probability 1/2 when both exist.
    struct Chain {
        len: u32,
    }

    impl DiscreteEnv for Chain {
        type State = u32;
        type Policy = ();
        type Error = candle_core::Error;

        fn initial_state(&self) -> u32 {
            0
        }

        fn forward_moves(
            &self,
            _policy: &(),
            states: &[&u32],
            _eps: f64,
            rng: &mut Rng,
        ) -> candle_core::Result<Vec<Move<u32>>> {
            Ok(states
                .iter()
                .map(|&&s| {
                    let two = s + 2 <= self.len;
                    let action = match two {
                        true => rng.random_range(0..2),
                        false => 0,
                    };
                    let next = s + 1 + action as u32;
                    Move {
                        action,
                        next,
                        done: next == self.len,
                        log_pf: if two { 0.5f64.ln() } else { 0.0 },
                    }
                })
                .collect())
        }

        fn sample_backward(&self, _x: &u32, _rng: &mut Rng) -> Path<u32> {
            unimplemented!("not used by these tests")
        }

        fn log_pb(&self, _segment: &[u32]) -> f64 {
            0.0
        }

        fn log_pf_of(&self, _policy: &(), paths: &[Path<u32>]) -> candle_core::Result<Vec<f64>> {
            Ok(paths.iter().map(|p| p.log_pf).collect())
        }

        fn log_rewards(&self, xs: &[&u32]) -> candle_core::Result<Vec<f64>> {
            Ok(xs.iter().map(|&&x| x as f64).collect())
        }
    }

    /// Every sampled path is a complete walk of the chain whose log P_F is
    /// ln 1/2 per two-way step; unfinished paths of mixed lengths are
    /// completed together, and complete ones are left as they are.
    #[test]
    fn completes_every_path_in_batch() {
        let env = Chain { len: 5 };
        let mut rng = stream(0, Stream::Sampling);
        let paths = sample_trajectories(&env, &(), 7, 0.0, &mut rng).unwrap();
        assert_eq!(paths.len(), 7);
        for p in &paths {
            assert!(p.done);
            assert_eq!(p.states[0], 0);
            assert_eq!(*p.last(), 5);
            assert_eq!(p.actions.len() + 1, p.states.len());
            let two_way = p.states[..p.states.len() - 1]
                .iter()
                .filter(|&&s| s + 2 <= 5)
                .count();
            assert_eq!(p.log_pf, two_way as f64 * 0.5f64.ln());
            for (w, &a) in p.states.windows(2).zip(&p.actions) {
                assert_eq!(w[1], w[0] + 1 + a as u32);
            }
        }
        // A complete path stays as it is; a truncated one is continued.
        let kept = paths[0].clone();
        let cut = paths[1].clone().truncated(2);
        assert_eq!(cut.states, paths[1].states[..2].to_vec());
        let out = complete_trajectories(&env, &(), vec![kept.clone(), cut], 0.0, &mut rng).unwrap();
        assert_eq!(out[0], kept);
        assert!(out[1].done);
        assert_eq!(&out[1].states[..2], &paths[1].states[..2]);
    }
}
