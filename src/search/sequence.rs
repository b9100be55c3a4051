//! Back-and-forth local search on the sequence tasks (docs/discovery.md
//! "Local search").
//!
//! Of a batch of B, b = B / (i+1) trajectories are sampled fresh; then, i
//! times, each current trajectory's x is walked back k steps along a fresh
//! uniform-P_B trajectory and rebuilt k steps forward with P_F (epsilon 0),
//! giving a proposal x'. Every proposal is training data, as a complete
//! trajectory (the kept backward prefix plus the new suffix; the reference
//! trained on the k-step segments only, a bug). A proposal replaces the
//! current trajectory when accepted: deterministically when
//! log R(x') > log R(x), or stochastically with probability
//! sigmoid(log R(x') - log R(x) + log q_rev - log q_fwd), where q_fwd is the
//! probability of walking back to the kept state s (P_B) and rebuilding x'
//! (P_F), and q_rev that of walking back from x' to s and rebuilding x.
//!
//! Acceptance always compares the task reward, also for batches the teacher
//! samples (the reference defines no other score on these tasks).

use crate::envs::sequence::task::SeqError;

type Result<T> = std::result::Result<T, SeqError>;
use rand::Rng as _;

use super::{Acceptance, SeqSearch};
use crate::envs::sequence::task::SeqEnv;
use crate::envs::sequence::traj::{rollout, rollout_from, SeqTraj, SequencePolicy, Transitions};
use crate::rng::Rng;

/// A batch of (at most) `batch` trajectories built by local search with
/// `net`: the fresh samples (with `eps`, from `sampling`) and every proposal
/// (from `ls`). Returns the trajectories, oldest first.
pub fn search(
    cfg: &SeqSearch,
    env: &SeqEnv,
    net: &impl SequencePolicy,
    batch: usize,
    eps: f64,
    sampling: &mut Rng,
    ls: &mut Rng,
) -> Result<Vec<SeqTraj>> {
    let mdp = &env.mdp;
    let iterations = cfg.iterations;
    let n_steps = mdp.n_transitions();
    let k = cfg.k.min(n_steps);
    let b = (batch / (iterations + 1)).max(1);
    let log_r = |ts: &[SeqTraj]| -> Result<Vec<f64>> {
        Ok(env
            .raw_many(ts.iter().map(SeqTraj::x))?
            .into_iter()
            .map(|r| env.log_reward_of_raw(r))
            .collect())
    };
    let mut current = rollout(mdp, net, b, eps, sampling)?;
    let mut current_log_r = log_r(&current)?;
    let mut all = current.clone();
    for _ in 0..iterations {
        // Walk back k steps: the first L+2-k states of a backward trajectory.
        let backs: Vec<Vec<_>> = current
            .iter()
            .map(|t| mdp.sample_backward(t.states.last().expect("complete"), ls))
            .collect();
        let keep = n_steps + 1 - k;
        let prefixes = backs.iter().map(|p| p[..keep].to_vec()).collect();
        let proposals = rollout_from(mdp, net, prefixes, 0.0, ls)?;
        let proposal_log_r = log_r(&proposals)?;
        let accept: Vec<bool> = match cfg.acceptance {
            Acceptance::Deterministic => proposal_log_r
                .iter()
                .zip(&current_log_r)
                .map(|(p, c)| p > c)
                .collect(),
            Acceptance::Stochastic => {
                // log P_F of rebuilding the old x from s: its destroyed suffix.
                let old_suffixes = backs
                    .iter()
                    .map(|p| SeqTraj::from_states(mdp, p[keep - 1..].to_vec()))
                    .collect::<candle_core::Result<Vec<_>>>()?;
                let old_log_pf: Vec<f32> = Transitions::new(mdp, &old_suffixes)?
                    .sum_log_pf(mdp, net)?
                    .detach()
                    .to_vec1()?;
                let mut out = Vec::with_capacity(proposals.len());
                for j in 0..proposals.len() {
                    let segment_pb = |states: &[_]| -> f64 {
                        SeqTraj::from_states(mdp, states.to_vec())
                            .map(|t| t.log_pb(mdp))
                            .unwrap_or(f64::NEG_INFINITY)
                    };
                    let log_q_fwd = segment_pb(&backs[j][keep - 1..]) + proposals[j].sampled_log_pf;
                    let log_q_rev =
                        segment_pb(&proposals[j].states[keep - 1..]) + old_log_pf[j] as f64;
                    let logit = proposal_log_r[j] - current_log_r[j] + log_q_rev - log_q_fwd;
                    let p = 1.0 / (1.0 + (-logit).exp());
                    out.push(ls.random::<f64>() < p);
                }
                out
            }
        };
        for (j, ok) in accept.into_iter().enumerate() {
            if ok {
                current[j] = proposals[j].clone();
                current_log_r[j] = proposal_log_r[j];
            }
        }
        all.extend(proposals);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasets::test_root;
    use crate::envs::sequence::mdp::SeqMdpKind;
    use crate::envs::sequence::oracle::Task;
    use crate::policy::ssr::Ssr;
    use crate::rng::{stream, Stream};
    use candle_core::Device;

    /// On tfbind8 (defaults i = 7, k = 3): b = 32 / 8 = 4 fresh trajectories
    /// plus 7 x 4 proposals, all complete trajectories of L+1 = 9 real
    /// transitions, for both acceptance rules.
    #[test]
    fn local_search_batch_shape_and_monotone_chains() {
        let root = test_root();
        let env = SeqEnv::load(
            Task::TfBind8,
            20.0,
            SeqMdpKind::PrependAppend,
            &root,
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
            let cfg = SeqSearch {
                k: 3,
                iterations: 7,
                acceptance,
            };
            let out = search(
                &cfg,
                &env,
                &net,
                32,
                0.0,
                &mut stream(1, Stream::Sampling),
                &mut stream(1, Stream::LocalSearch),
            )
            .unwrap();
            assert_eq!(out.len(), 32);
            for t in &out {
                assert_eq!(t.chosen.len(), 9);
                assert!(env.mdp.is_terminal(t.states.last().unwrap()));
                // Every step is a real transition.
                assert_eq!(
                    SeqTraj::from_states(&env.mdp, t.states.clone())
                        .unwrap()
                        .chosen,
                    t.chosen
                );
            }
        }
    }
}
