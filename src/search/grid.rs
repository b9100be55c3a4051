//! Back-and-forth local search on the grid (docs/grid.md "Back-and-forth
//! local search"): destroy the last part of each trajectory by walking back
//! along a fresh uniform-P_B trajectory, rebuild it with the sampling network
//! (epsilon 0), keep the candidate when it scores strictly higher.

use candle_core::Device;

use super::GridSearch;
use crate::envs::grid::{Grid, GridPolicy, Prefix};
use crate::envs::Trajectories;
use crate::rng::Rng;

/// Refine `batch`: `iterations` rounds of destroy-and-rebuild, keeping per
/// trajectory the candidate whose `score` is strictly higher (the student
/// scores by reward; a teacher by the teacher reward recomputed with the
/// student). Returns the refined batch and the number of reward calls.
pub fn refine<E: From<candle_core::Error>>(
    settings: &GridSearch,
    grid: &Grid,
    net: &impl GridPolicy,
    mut batch: Trajectories,
    score: &mut dyn FnMut(&Trajectories) -> Result<Vec<f64>, E>,
    rng: &mut Rng,
    device: &Device,
) -> Result<(Trajectories, u64), E> {
    let d = grid.ndim;
    let mut best = score(&batch)?;
    let mut calls = 0;
    for _ in 0..settings.iterations {
        let prefixes: Vec<Prefix> = (0..batch.len())
            .map(|b| {
                let n_states = batch.offsets[b + 1] - batch.offsets[b];
                let n_back = (n_states as f64 * settings.back_ratio) as usize;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envs::grid::GridConfig;
    use crate::policy::mlp::Mlp;
    use crate::rng::{stream, Stream};
    use crate::search::BackAndForthConfig;

    /// Local search keeps the better of two trajectories: with a score that
    /// prefers the original batch, nothing changes; with a score that prefers
    /// any candidate, every trajectory is replaced by a valid rebuilt one that
    /// shares its terminal state's backward prefix.
    #[test]
    fn keeps_the_better_trajectory() {
        let dev = Device::Cpu;
        let g = Grid::new(&GridConfig::new(2, 8));
        let net = Mlp::new(&[16, 8, 5], &dev, &mut stream(0, Stream::InitStudent)).unwrap();
        let mut rng = stream(0, Stream::LocalSearch);
        let batch = g.rollout(&net, 6, 0.0, &mut rng, &dev).unwrap();
        let ls = BackAndForthConfig::default().grid().unwrap();
        // Score: 1 for the original batch (first call), 0 for every candidate.
        let mut first = true;
        let mut prefer_old = |t: &Trajectories| {
            let s = if first { 1.0 } else { 0.0 };
            first = false;
            Ok::<_, candle_core::Error>(vec![s; t.len()])
        };
        let (kept, calls) = refine(
            &ls,
            &g,
            &net,
            batch.clone(),
            &mut prefer_old,
            &mut rng,
            &dev,
        )
        .unwrap();
        assert_eq!(kept, batch);
        assert_eq!(calls, 6 * 4);
        // Score by reward: the result is never worse than the original.
        let mut by_reward = |t: &Trajectories| Ok::<_, candle_core::Error>(t.reward.clone());
        let (better, _) =
            refine(&ls, &g, &net, batch.clone(), &mut by_reward, &mut rng, &dev).unwrap();
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
        let g = Grid::new(&GridConfig::new(3, 6));
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
