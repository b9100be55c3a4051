//! Back-and-forth local search, written once for every discrete
//! environment ([`DiscreteEnv`]; docs/grid.md "Back-and-forth local search",
//! docs/discovery.md "Local search").
//!
//! Each iteration walks every current trajectory's terminal state x back
//! along a fresh P_B trajectory, keeps its first states (how many: the
//! [`Destroy`] rule), rebuilds the rest forward with the sampling network
//! (epsilon 0) into a proposal, and replaces the current trajectory by the
//! proposal when it is accepted:
//! - `deterministic`: when the proposal's score is strictly higher;
//! - `stochastic` (Metropolis-Hastings style): with probability
//!   sigmoid(score(x') - score(x) + log q_rev - log q_fwd), where q_fwd is
//!   the probability of walking back to the kept state s (P_B) and
//!   rebuilding x' (P_F), and q_rev that of walking back from x' to s and
//!   rebuilding x; the score must then be log R.
//!
//! Draws, all from the local-search stream, per iteration: the backward
//! walks (in batch order), the rebuilding rollout, then one uniform per
//! proposal for stochastic acceptance.

use rand::Rng as _;

use super::Acceptance;
use crate::envs::discrete::{complete_trajectories, DiscreteEnv, Path};
use crate::rng::Rng;

/// How much of a trajectory of n states the walk back destroys.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Destroy {
    /// floor(n * fraction) states (the grid's `back_ratio`).
    Fraction(f64),
    /// k steps, at most n - 1 (the sequence tasks' `k`).
    Steps(usize),
}

impl Destroy {
    /// How many of the n states of a trajectory are kept: at least one.
    pub fn keep(self, n: usize) -> usize {
        let back = match self {
            Destroy::Fraction(r) => (n as f64 * r) as usize,
            Destroy::Steps(k) => k.min(n.saturating_sub(1)),
        };
        n.saturating_sub(back).max(1)
    }
}

/// A run's resolved local search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackAndForth {
    /// How much each walk back destroys.
    pub destroy: Destroy,
    /// Destroy-and-rebuild iterations per batch.
    pub iterations: usize,
    /// How a proposal is accepted.
    pub acceptance: Acceptance,
}

/// Scores a batch of complete trajectories (higher is better).
pub type Score<'a, S, Er> = dyn FnMut(&[Path<S>]) -> Result<Vec<f64>, Er> + 'a;

/// What a search produced.
pub struct Searched<S> {
    /// The current trajectories after the last iteration (one per start).
    pub current: Vec<Path<S>>,
    /// Every proposal, in the order made (iteration-major).
    pub proposals: Vec<Path<S>>,
}

/// Search from the complete trajectories `current` with `policy`; `score`
/// scores a batch of complete trajectories (log R for stochastic
/// acceptance). Returns the final current trajectories and every proposal.
pub fn back_and_forth<E, Er>(
    env: &E,
    policy: &E::Policy,
    cfg: &BackAndForth,
    mut current: Vec<Path<E::State>>,
    score: &mut Score<'_, E::State, Er>,
    rng: &mut Rng,
) -> Result<Searched<E::State>, Er>
where
    E: DiscreteEnv,
    Er: From<E::Error>,
{
    let mut best = score(&current)?;
    let mut all = Vec::with_capacity(current.len() * cfg.iterations);
    for _ in 0..cfg.iterations {
        let backs: Vec<Path<E::State>> = current
            .iter()
            .map(|p| env.sample_backward(p.last(), rng))
            .collect();
        let keep: Vec<usize> = current
            .iter()
            .map(|p| cfg.destroy.keep(p.states.len()))
            .collect();
        let prefixes = backs
            .iter()
            .zip(&keep)
            .map(|(b, &k)| b.clone().truncated(k))
            .collect();
        let proposals = complete_trajectories(env, policy, prefixes, 0.0, rng)?;
        let proposed = score(&proposals)?;
        let accept: Vec<bool> = match cfg.acceptance {
            Acceptance::Deterministic => proposed.iter().zip(&best).map(|(p, c)| p > c).collect(),
            Acceptance::Stochastic => {
                // The destroyed part of each walk back: from the kept state s to x.
                let old: Vec<Path<E::State>> = backs
                    .iter()
                    .zip(&keep)
                    .map(|(b, &k)| Path {
                        states: b.states[k - 1..].to_vec(),
                        actions: b.actions[k - 1..].to_vec(),
                        log_pf: 0.0,
                        done: true,
                    })
                    .collect();
                let old_log_pf = env.log_pf_of(policy, &old)?;
                let mut out = Vec::with_capacity(proposals.len());
                for j in 0..proposals.len() {
                    let k = keep[j];
                    let log_q_fwd = env.log_pb(&backs[j].states[k - 1..]) + proposals[j].log_pf;
                    let log_q_rev = env.log_pb(&proposals[j].states[k - 1..]) + old_log_pf[j];
                    let logit = proposed[j] - best[j] + log_q_rev - log_q_fwd;
                    let p = 1.0 / (1.0 + (-logit).exp());
                    out.push(rng.random::<f64>() < p);
                }
                out
            }
        };
        for (j, ok) in accept.into_iter().enumerate() {
            if ok {
                current[j] = proposals[j].clone();
                best[j] = proposed[j];
            }
        }
        all.extend(proposals);
    }
    Ok(Searched {
        current,
        proposals: all,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasets::test_root;
    use crate::envs::discrete::DiscreteEnv;
    use crate::envs::grid::{Grid, GridConfig};
    use crate::envs::sequence::mdp::SeqMdpKind;
    use crate::envs::sequence::oracle::Task;
    use crate::envs::sequence::task::SeqEnv;
    use crate::envs::sequence::traj::SeqTraj;
    use crate::policy::mlp::Mlp;
    use crate::policy::ssr::Ssr;
    use crate::rng::{stream, Stream};
    use crate::search::BackAndForthConfig;
    use candle_core::Device;

    /// The kept states: the grid's floor rule with at least one state; the
    /// sequence rule k, at most n - 1.
    #[test]
    fn keep_rules() {
        assert_eq!(Destroy::Fraction(0.5).keep(9), 5); // 9 - floor(4.5)
        assert_eq!(Destroy::Fraction(1.0).keep(3), 1);
        assert_eq!(Destroy::Fraction(0.0).keep(3), 3);
        assert_eq!(Destroy::Steps(3).keep(10), 7);
        assert_eq!(Destroy::Steps(12).keep(10), 1);
    }

    /// On the grid: with a score that prefers the starting batch nothing
    /// changes; scored by reward, the result is never worse, and every kept
    /// trajectory is a valid path from 0 to its terminal state.
    #[test]
    fn grid_keeps_the_better_trajectory() {
        let g = Grid::new(&GridConfig::new(2, 8));
        let net = Mlp::new(
            &[16, 8, 5],
            &Device::Cpu,
            &mut stream(0, Stream::InitStudent),
        )
        .unwrap();
        let mut rng = stream(0, Stream::LocalSearch);
        let batch = g.rollout(&net, 6, 0.0, &mut rng).unwrap();
        let ls = BackAndForthConfig::default().grid().unwrap();
        // Score: 1 for the starting batch (first call), 0 for every proposal.
        let mut first = true;
        let mut prefer_old = |t: &[Path<Vec<u16>>]| {
            let s = if first { 1.0 } else { 0.0 };
            first = false;
            Ok::<_, candle_core::Error>(vec![s; t.len()])
        };
        let out =
            back_and_forth(&g, &net, &ls, g.paths(&batch), &mut prefer_old, &mut rng).unwrap();
        assert_eq!(g.trajectories(&out.current), batch);
        assert_eq!(out.proposals.len(), 6 * 4);
        let mut by_reward = |t: &[Path<Vec<u16>>]| {
            Ok::<_, candle_core::Error>(t.iter().map(|p| g.reward(p.last())).collect())
        };
        let out = back_and_forth(&g, &net, &ls, g.paths(&batch), &mut by_reward, &mut rng).unwrap();
        let better = g.trajectories(&out.current);
        for b in 0..batch.len() {
            assert!(better.reward[b] >= batch.reward[b]);
            assert_eq!(better.reward[b], g.reward(better.terminal(b)));
            assert_eq!(better.state(better.offsets[b]), &[0, 0]);
        }
    }

    /// A grid backward trajectory runs from 0 to x through valid parents,
    /// ending with the stop action unless a coordinate is at H-1.
    #[test]
    fn grid_backward_trajectories_are_valid() {
        let g = Grid::new(&GridConfig::new(3, 6));
        let mut rng = stream(1, Stream::Buffer);
        for x in [vec![2u16, 0, 3], vec![5, 1, 1], vec![0, 0, 0]] {
            let p = g.sample_backward(&x, &mut rng);
            assert_eq!(p.states[0], vec![0, 0, 0]);
            assert_eq!(p.last(), &x);
            assert_eq!(p.actions.len() + 1, p.states.len());
            assert_eq!(*p.actions.last().unwrap() == 3, x.iter().all(|&c| c < 5));
            for (w, &a) in p.states.windows(2).zip(&p.actions) {
                if a == 3 {
                    assert_eq!(w[0], w[1]);
                } else {
                    assert_eq!(w[1][a], w[0][a] + 1);
                }
            }
        }
    }

    /// On tfbind8 (defaults i = 7, k = 3), from 4 fresh trajectories: 7 x 4
    /// proposals, all complete trajectories of L+1 = 9 real transitions, for
    /// both acceptance rules.
    #[test]
    fn sequence_proposals_are_complete_trajectories() {
        let env = SeqEnv::load(
            Task::TfBind8,
            20.0,
            SeqMdpKind::PrependAppend,
            &test_root(),
            &std::env::temp_dir(),
            &crate::envs::program::StderrTo::Inherit,
            &mut stream(0, Stream::Eval),
        )
        .unwrap();
        let net = Ssr::new(
            env.mdp.feature_dim(),
            16,
            &Device::Cpu,
            &mut stream(0, Stream::InitStudent),
        )
        .unwrap();
        for acceptance in [Acceptance::Deterministic, Acceptance::Stochastic] {
            let cfg = BackAndForth {
                destroy: Destroy::Steps(3),
                iterations: 7,
                acceptance,
            };
            let start = crate::envs::discrete::sample_trajectories(
                &env,
                &net,
                4,
                0.0,
                &mut stream(1, Stream::Sampling),
            )
            .unwrap();
            let mut score =
                |p: &[SeqTraj]| env.log_rewards(&p.iter().map(|t| t.last()).collect::<Vec<_>>());
            let out = back_and_forth(
                &env,
                &net,
                &cfg,
                start,
                &mut score,
                &mut stream(1, Stream::LocalSearch),
            )
            .unwrap();
            assert_eq!(out.proposals.len(), 28);
            for t in out.proposals.iter().chain(&out.current) {
                assert_eq!(t.actions.len(), 9);
                assert!(t.done && env.mdp.is_terminal(t.last()));
                assert_eq!(
                    SeqTraj::from_states(&env.mdp, t.states.clone())
                        .unwrap()
                        .actions,
                    t.actions
                );
            }
        }
    }
}
