//! Metrics of the discovery tasks (docs/discovery.md "Evaluation"), computed
//! for the student with epsilon = 0.
//!
//! With the log-weight of a trajectory w = log R(x) + sum log P_B - sum log P_F
//! (scaled reward):
//! - `log_z_est` = logsumexp(w) - log N over N on-policy samples; its gap to
//!   the exact log Z (scaled) is `log_z_gap`; `elbo` = mean w;
//! - `eubo` = mean w over the exact samples (one uniform-P_B trajectory each);
//! - `pearson` = correlation of sum log P_F and ln max(r, 0.001) over the exact
//!   samples' trajectories (all of them, not the reference's last 128);
//! - `expected_reward_gap` = `|mean max(r, 0.001) over the samples - E_p[r]|`.

use std::collections::HashMap;

use crate::envs::sequence::task::SeqError;

type Result<T> = std::result::Result<T, SeqError>;

use super::{log_mean_exp, mean, pearson};
use crate::envs::discrete::{sample_trajectories, DiscreteEnv};
use crate::envs::sequence::task::{log_raw, SeqEnv};
use crate::envs::sequence::traj::{SeqTraj, SequencePolicy};
use crate::rng::Rng;

/// One evaluation of the student.
#[derive(Debug, Clone, PartialEq)]
pub struct SeqEval {
    /// Distinct modes among the on-policy samples.
    pub num_modes_onpolicy: usize,
    /// logsumexp(w) - log N over the samples.
    pub log_z_est: f64,
    /// |log_z_est - log Z (scaled)| (`None` when log Z is unknown: a
    /// reward served by a program).
    pub log_z_gap: Option<f64>,
    /// Mean w over the samples.
    pub elbo: f64,
    /// Mean w over the exact samples (`None` without exact samples: an empty cell).
    pub eubo: Option<f64>,
    /// Correlation of sum log P_F and ln max(r, 0.001) over the exact samples
    /// (`None` without).
    pub pearson: Option<f64>,
    /// `|mean max(r, 0.001) - E_p[r]|` over the samples (`None` when E_p[r]
    /// is unknown).
    pub expected_reward_gap: Option<f64>,
    /// Mean raw reward r(x) of the samples.
    pub mean_reward: f64,
    /// Mean raw reward of the 100 best distinct samples.
    pub top100_reward: f64,
    /// Fraction of distinct strings among the samples.
    pub frac_unique: f64,
}

/// The exact samples' data fixed for a run: one uniform-P_B trajectory per
/// exact sample (drawn once, so every evaluation scores the same set) and
/// their raw rewards.
pub struct ExactSet {
    trajs: Vec<SeqTraj>,
    raw: Vec<f64>,
}

impl ExactSet {
    /// Backward trajectories of `env`'s exact samples (`None` without them).
    pub fn new(env: &SeqEnv, rng: &mut Rng) -> Result<Option<Self>> {
        let Some(xs) = &env.exact else {
            return Ok(None);
        };
        let trajs = xs
            .iter()
            .map(|x| {
                let states = env.mdp.sample_backward(&SeqEnv::terminal(x), rng);
                SeqTraj::from_states(&env.mdp, states)
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        let raw = env.raw_many(xs.iter().map(Vec::as_slice))?;
        Ok(Some(Self { trajs, raw }))
    }
}

/// Sum log P_F of each trajectory under `net`, in chunks of `chunk` (no gradient is taken).
fn sum_log_pf(
    env: &SeqEnv,
    net: &(impl SequencePolicy + 'static),
    trajs: &[SeqTraj],
    chunk: usize,
) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(trajs.len());
    for part in trajs.chunks(chunk.max(1)) {
        out.extend(env.log_pf_of(net, part)?);
    }
    Ok(out)
}

/// Evaluate the student `net` on `n` fresh samples (epsilon 0, drawn in
/// chunks of `chunk` rollouts from `rng`) and on the exact set.
pub fn evaluate(
    env: &SeqEnv,
    net: &(impl SequencePolicy + 'static),
    n: usize,
    chunk: usize,
    exact: Option<&ExactSet>,
    rng: &mut Rng,
) -> Result<SeqEval> {
    let mut samples = Vec::with_capacity(n);
    while samples.len() < n {
        let m = chunk.max(1).min(n - samples.len());
        samples.extend(sample_trajectories(env, net, m, 0.0, rng)?);
    }
    let raw: Vec<f64> = env.raw_many(samples.iter().map(SeqTraj::x))?;
    let w: Vec<f64> = samples
        .iter()
        .zip(&raw)
        .map(|(t, &r)| env.log_reward_of_raw(r) + env.log_pb(&t.states) - t.log_pf)
        .collect();
    let log_z_est = log_mean_exp(&w);
    let exact_constants = env.has_exact_constants();
    // Each distinct string's value, taken from `raw` (no second oracle call).
    let distinct: HashMap<&[u8], f64> = samples
        .iter()
        .map(SeqTraj::x)
        .zip(raw.iter().copied())
        .collect();
    let mut best: Vec<f64> = distinct.values().copied().collect();
    best.sort_by(|a, b| b.total_cmp(a));
    best.truncate(100);
    let floored: Vec<f64> = raw
        .iter()
        .map(|r| r.max(crate::envs::sequence::oracle::REWARD_FLOOR))
        .collect();
    let (eubo, pearson_r) = match exact {
        Some(e) => {
            let lpf = sum_log_pf(env, net, &e.trajs, chunk)?;
            let we: Vec<f64> = e
                .trajs
                .iter()
                .zip(&e.raw)
                .zip(&lpf)
                .map(|((t, &r), lpf)| env.log_reward_of_raw(r) + env.log_pb(&t.states) - lpf)
                .collect();
            let logr: Vec<f64> = e.raw.iter().map(|&r| log_raw(r)).collect();
            // On a test set (not samples of the target) the EUBO means nothing.
            let eubo = env.exact_is_target.then(|| mean(&we));
            (eubo, Some(pearson(&lpf, &logr)))
        }
        None => (None, None),
    };
    Ok(SeqEval {
        num_modes_onpolicy: {
            let (mut hit, mut near) = (std::collections::BTreeSet::new(), Vec::new());
            for x in distinct.keys() {
                env.modes_of(x, &mut near);
                hit.extend(near.iter().copied());
            }
            hit.len()
        },
        log_z_est,
        log_z_gap: exact_constants.then(|| (log_z_est - env.constants.log_z_scaled).abs()),
        elbo: mean(&w),
        eubo,
        pearson: pearson_r,
        expected_reward_gap: exact_constants
            .then(|| (mean(&floored) - env.constants.expected_reward).abs()),
        mean_reward: mean(&raw),
        top100_reward: mean(&best),
        frac_unique: distinct.len() as f64 / samples.len().max(1) as f64,
    })
}
