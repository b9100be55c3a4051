//! Trajectories of the sequence tasks: batched sampling with a forward
//! policy ([`SequencePolicy`], the SSR network in the runs), backward
//! trajectories, and the tensors of a TB step.
//!
//! Every complete trajectory of the sequence MDPs has exactly L+1
//! transitions (docs/discovery.md), so a batch of B trajectories is a dense
//! `[B, L+1]` grid of transitions: no padding and no masks are needed; the
//! per-parent child lists are padded inside [`SequencePolicy::log_pf_all`].

use candle_core::{Result, Tensor};
use rand::Rng as _;

#[cfg(test)]
use crate::envs::discrete::DiscreteEnv;
use crate::envs::discrete::{Move, Path};
use crate::envs::sequence::mdp::{SeqMdp, SeqState};
use crate::rng::Rng;

/// The forward policy a sequence rollout needs: log P_F over the ordered
/// unique children of each state of a batch.
pub trait SequencePolicy {
    /// Log-probabilities of every child of every parent.
    ///
    /// `children[i]` is the ordered unique children of `parents[i]`
    /// (`mdp.children(&parents[i])`), non-empty. Returns an f32
    /// `[n_parents, max_children]` tensor whose entry `(i, j)` is
    /// `log P_F(children[i][j] | parents[i])` for `j < children[i].len()`; the
    /// padding entries are about [`crate::objective::MASKED_LOGIT`] (`exp`
    /// of a row is the distribution over the children, zero on the padding).
    fn log_pf_all(
        &self,
        mdp: &SeqMdp,
        parents: &[SeqState],
        children: &[Vec<SeqState>],
    ) -> Result<Tensor>;

    /// log P_F of the chosen child of each transition: `[n_parents]`, entry
    /// `i` being `log P_F(children[i][chosen[i]] | parents[i])`, differentiable
    /// (the entries of [`SequencePolicy::log_pf_all`] at `chosen`). Errors
    /// when `chosen` has the wrong length or an index is out of range.
    fn log_pf_chosen(
        &self,
        mdp: &SeqMdp,
        parents: &[SeqState],
        children: &[Vec<SeqState>],
        chosen: &[usize],
    ) -> Result<Tensor>;
}

/// One trajectory root -> ... -> x of a sequence MDP: the discrete
/// environments' [`Path`], whose `actions[t]` is the index of `states[t+1]`
/// among `mdp.children(&states[t])` and whose `log_pf` sums the steps a
/// rollout sampled (0 for a backward trajectory).
pub type SeqTraj = Path<SeqState>;

impl Path<SeqState> {
    /// The trajectory through `states` (each a child of the previous one;
    /// complete when the last is a leaf). Errors when a state is not a
    /// child of its predecessor.
    pub fn from_states(mdp: &SeqMdp, states: Vec<SeqState>) -> Result<Self> {
        let actions = states
            .windows(2)
            .map(|w| {
                mdp.children(&w[0])
                    .iter()
                    .position(|c| c == &w[1])
                    .ok_or_else(|| {
                        candle_core::Error::Msg(format!(
                            "sequence trajectory: {:?} is not a child of {:?}",
                            w[1], w[0]
                        ))
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        let done = states.last().is_some_and(|s| s.leaf);
        Ok(Self {
            states,
            actions,
            log_pf: 0.0,
            done,
        })
    }

    /// The terminal string x.
    pub fn x(&self) -> &[u8] {
        &self.last().content
    }

    /// Sum of log P_B over the trajectory (uniform backward policy).
    pub fn log_pb(&self, mdp: &SeqMdp) -> f64 {
        segment_log_pb(mdp, &self.states)
    }

    /// -log P_B of each transition, in order (uniform backward policy).
    pub fn neg_log_pb<'a>(&'a self, mdp: &'a SeqMdp) -> impl Iterator<Item = f64> + 'a {
        self.states.windows(2).map(|w| -mdp.log_pb(&w[0], &w[1]))
    }
}

/// Sum of log P_B over the transitions of consecutive states `segment`.
pub fn segment_log_pb(mdp: &SeqMdp, segment: &[SeqState]) -> f64 {
    segment.windows(2).map(|w| mdp.log_pb(&w[0], &w[1])).sum()
}

/// A trajectory root -> x drawn backwards from the uniform P_B
/// ([`SeqMdp::sample_backward`]).
pub fn sample_backward(mdp: &SeqMdp, x: &SeqState, rng: &mut Rng) -> SeqTraj {
    SeqTraj::from_states(mdp, mdp.sample_backward(x, rng))
        .expect("a backward trajectory steps from parent to child")
}

/// Sum of log P_F of each of `paths` (all with the same number of
/// transitions) under `net`, summed in f32 on the network's device as the
/// objectives sum it; no gradient is kept.
pub fn paths_log_pf(
    mdp: &SeqMdp,
    net: &(impl SequencePolicy + ?Sized),
    paths: &[SeqTraj],
) -> Result<Vec<f64>> {
    let sums: Vec<f32> = Transitions::new(mdp, paths)?
        .sum_log_pf(mdp, net)?
        .detach()
        .to_vec1()?;
    Ok(sums.into_iter().map(f64::from).collect())
}

/// The sequence MDP alone, every string rewarded 1: sampling needs no
/// oracle, and the unit tests use this.
#[cfg(test)]
pub(crate) struct Unrewarded<'a>(pub &'a SeqMdp);

#[cfg(test)]
impl DiscreteEnv for Unrewarded<'_> {
    type State = SeqState;
    type Policy = dyn SequencePolicy + 'static;
    type Error = candle_core::Error;

    fn initial_state(&self) -> SeqState {
        SeqState::root()
    }

    fn forward_moves(
        &self,
        policy: &(dyn SequencePolicy + 'static),
        states: &[&SeqState],
        eps: f64,
        rng: &mut Rng,
    ) -> Result<Vec<Move<SeqState>>> {
        forward_moves(self.0, policy, states, eps, rng)
    }

    fn sample_backward(&self, x: &SeqState, rng: &mut Rng) -> SeqTraj {
        sample_backward(self.0, x, rng)
    }

    fn log_pb(&self, segment: &[SeqState]) -> f64 {
        segment_log_pb(self.0, segment)
    }

    fn log_pf_of(
        &self,
        policy: &(dyn SequencePolicy + 'static),
        paths: &[SeqTraj],
    ) -> Result<Vec<f64>> {
        paths_log_pf(self.0, policy, paths)
    }

    fn log_rewards(&self, xs: &[&SeqState]) -> Result<Vec<f64>> {
        Ok(vec![0.0; xs.len()])
    }
}

/// `n` trajectories of the MDP alone sampled by `net` (unit tests).
#[cfg(test)]
pub(crate) fn rollout(
    mdp: &SeqMdp,
    net: &(impl SequencePolicy + 'static),
    n: usize,
    eps: f64,
    rng: &mut Rng,
) -> Result<Vec<SeqTraj>> {
    crate::envs::discrete::sample_trajectories(&Unrewarded(mdp), net, n, eps, rng)
}

/// One forward move from each of `states` (none a leaf) with the network
/// `net`: each draws a child, uniformly with probability `eps`, else from
/// P_F. One network call for the batch. Draws per state, in batch order:
/// one `f64` for the epsilon test (only when `eps > 0`), then one `f64` for
/// the child (a `random_range` draw for a uniform child).
pub fn forward_moves(
    mdp: &SeqMdp,
    net: &(impl SequencePolicy + ?Sized),
    states: &[&SeqState],
    eps: f64,
    rng: &mut Rng,
) -> Result<Vec<Move<SeqState>>> {
    let parents: Vec<SeqState> = states.iter().map(|&s| s.clone()).collect();
    let children: Vec<Vec<SeqState>> = parents.iter().map(|s| mdp.children(s)).collect();
    let log_pf: Vec<Vec<f32>> = net.log_pf_all(mdp, &parents, &children)?.to_vec2()?; // [n, w]
    Ok(children
        .into_iter()
        .zip(&log_pf)
        .map(|(kids, row)| {
            let m = kids.len();
            let pick = if eps > 0.0 && rng.random::<f64>() < eps {
                rng.random_range(0..m)
            } else {
                categorical(&row[..m], rng.random::<f64>())
            };
            let next = kids
                .into_iter()
                .nth(pick)
                .expect("pick < number of children");
            Move {
                action: pick,
                done: next.leaf,
                next,
                log_pf: row[pick] as f64,
            }
        })
        .collect())
}

/// The index drawn by inverse CDF from log-probabilities `log_p` with a
/// uniform `u` in [0, 1) (the last index if rounding leaves `u` above the total).
fn categorical(log_p: &[f32], u: f64) -> usize {
    let mut acc = 0.0;
    for (i, &l) in log_p.iter().enumerate() {
        acc += (l as f64).exp();
        if u < acc {
            return i;
        }
    }
    log_p.len() - 1
}

/// The transitions of a batch, flattened trajectory-major (`[B, T]`, T the
/// common number of transitions), ready for [`SequencePolicy::log_pf_chosen`].
pub struct Transitions {
    parents: Vec<SeqState>,
    children: Vec<Vec<SeqState>>,
    chosen: Vec<usize>,
    /// Number of trajectories B.
    pub n_traj: usize,
    /// Transitions per trajectory T.
    pub n_steps: usize,
}

impl Transitions {
    /// The transitions of `trajs`; errors when their lengths differ.
    pub fn new(mdp: &SeqMdp, trajs: &[SeqTraj]) -> Result<Self> {
        let n_steps = trajs.first().map_or(0, |t| t.actions.len());
        let mut out = Self {
            parents: Vec::with_capacity(trajs.len() * n_steps),
            children: Vec::with_capacity(trajs.len() * n_steps),
            chosen: Vec::with_capacity(trajs.len() * n_steps),
            n_traj: trajs.len(),
            n_steps,
        };
        for t in trajs {
            if t.actions.len() != n_steps {
                return Err(candle_core::Error::Msg(format!(
                    "sequence batch: trajectories of {} and {} transitions",
                    n_steps,
                    t.actions.len()
                )));
            }
            for (s, &c) in t.states.iter().zip(&t.actions) {
                out.parents.push(s.clone());
                out.children.push(mdp.children(s));
                out.chosen.push(c);
            }
        }
        Ok(out)
    }

    /// log P_F of every transition under `net`: `[B * T]` entry-major,
    /// differentiable.
    pub fn log_pf(&self, mdp: &SeqMdp, net: &(impl SequencePolicy + ?Sized)) -> Result<Tensor> {
        net.log_pf_chosen(mdp, &self.parents, &self.children, &self.chosen) // [B*T]
    }

    /// Sum of log P_F of each trajectory under `net`: `[B]`, differentiable.
    pub fn sum_log_pf(&self, mdp: &SeqMdp, net: &(impl SequencePolicy + ?Sized)) -> Result<Tensor> {
        let per = self.log_pf(mdp, net)?; // [B*T]
        per.reshape((self.n_traj, self.n_steps))?.sum(1) // [B]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envs::sequence::mdp::SeqMdpKind;
    use crate::objective::MASKED_LOGIT;
    use crate::rng::{stream, Stream};
    use candle_core::Device;

    /// A test policy: each child gets a fixed score from its content and
    /// leaf flag; log P_F is the log-softmax of the scores over the parent's
    /// children, computed on the host.
    struct ContentScore;

    impl ContentScore {
        fn score(c: &SeqState) -> f64 {
            let h = c.content.iter().fold(u64::from(c.leaf) * 5, |h, &x| {
                h.wrapping_mul(7).wrapping_add(u64::from(x) + 1)
            });
            (h % 13) as f64 * 0.25
        }
    }

    impl SequencePolicy for ContentScore {
        fn log_pf_all(
            &self,
            _mdp: &SeqMdp,
            parents: &[SeqState],
            children: &[Vec<SeqState>],
        ) -> Result<Tensor> {
            let w = children.iter().map(Vec::len).max().unwrap_or(0);
            let mut out = vec![MASKED_LOGIT; parents.len() * w]; // [n, w]
            for (row, kids) in out.chunks_mut(w.max(1)).zip(children) {
                let scores: Vec<f64> = kids.iter().map(Self::score).collect();
                let max = scores.iter().copied().fold(f64::MIN, f64::max);
                let lse = max + scores.iter().map(|x| (x - max).exp()).sum::<f64>().ln();
                for (o, x) in row.iter_mut().zip(&scores) {
                    *o = (x - lse) as f32;
                }
            }
            Tensor::from_vec(out, (parents.len(), w), &Device::Cpu)
        }

        fn log_pf_chosen(
            &self,
            mdp: &SeqMdp,
            parents: &[SeqState],
            children: &[Vec<SeqState>],
            chosen: &[usize],
        ) -> Result<Tensor> {
            let all: Vec<Vec<f32>> = self.log_pf_all(mdp, parents, children)?.to_vec2()?;
            assert_eq!(all.len(), chosen.len());
            let v: Vec<f32> = all.iter().zip(chosen).map(|(row, &c)| row[c]).collect();
            Tensor::from_vec(v, chosen.len(), &Device::Cpu) // [n]
        }
    }

    #[test]
    fn categorical_inverse_cdf() {
        let lp = [0.25f32.ln(), 0.25f32.ln(), 0.5f32.ln()];
        assert_eq!(categorical(&lp, 0.0), 0);
        assert_eq!(categorical(&lp, 0.3), 1);
        assert_eq!(categorical(&lp, 0.6), 2);
        assert_eq!(categorical(&lp, 0.999_999_9), 2);
    }

    /// Rollouts are complete (L+1 transitions, leaf last), consistent with
    /// `from_states`, and their recorded log P_F equals the policy's
    /// recomputation through `Transitions`.
    #[test]
    fn rollouts_are_complete_and_consistent() {
        let mdp = SeqMdp::new(SeqMdpKind::PrependAppend, 4, 3).unwrap();
        let net = ContentScore;
        let trajs = rollout(&mdp, &net, 5, 0.0, &mut stream(0, Stream::Sampling)).unwrap();
        assert_eq!(trajs.len(), 5);
        for t in &trajs {
            assert_eq!(t.actions.len(), 4);
            assert!(mdp.is_terminal(t.states.last().unwrap()));
            assert_eq!(
                &SeqTraj::from_states(&mdp, t.states.clone())
                    .unwrap()
                    .actions,
                &t.actions
            );
        }
        let tr = Transitions::new(&mdp, &trajs).unwrap();
        let sums: Vec<f32> = tr.sum_log_pf(&mdp, &net).unwrap().to_vec1().unwrap();
        for (t, s) in trajs.iter().zip(sums) {
            assert!((t.log_pf - s as f64).abs() < 1e-4);
        }
        // P_B of a hand path: "" -> "1" -> "12" -> "312" -> leaf:
        // |"12"| has 2 parents (ln 1/2), "312" has 2 (ln 1/2), "1" and the leaf 1.
        let path = vec![
            SeqState::root(),
            SeqState::inner(vec![1]),
            SeqState::inner(vec![1, 2]),
            SeqState::inner(vec![3, 1, 2]),
            SeqMdp::leaf_of(vec![3, 1, 2]),
        ];
        let t = SeqTraj::from_states(&mdp, path).unwrap();
        assert!((t.log_pb(&mdp) - 2.0 * 0.5f64.ln()).abs() < 1e-12);
        // Children of "1": prepends "01","11","21","31", then the appends
        // "10","12","13" ("1"+"1" merged with the prepend), so "12" is index 5;
        // "312" is prepend 3 of "12" (index 3); the leaf is the only child.
        assert_eq!(t.actions, vec![1, 5, 3, 0]);
    }
}
