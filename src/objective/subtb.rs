//! Sub-trajectory balance (SubTB(lambda), Madan et al., "Learning GFlowNets
//! from partial episodes for improved convergence and stability", arXiv
//! 2209.12782). For every pair of states s_i, s_j (i < j) of a trajectory
//! s_0 -> ... -> s_n = x, the residual of the sub-trajectory between them is
//!
//! delta_ij = log F(s_j) + sum_{t=i}^{j-1} log P_B(s_t | s_{t+1})
//!            - log F(s_i) - sum_{t=i}^{j-1} log P_F(s_{t+1} | s_t),
//!
//! with log F(s_0) = log Z (a learned scalar, as TB's) and log F(s_n) = log
//! R(x); every other log F(s) is the network's flow head. The loss of a
//! trajectory is sum_ij w_ij delta_ij^2 with the geometric weights w_ij =
//! lambda^(j-i) / sum_{i'<j'} lambda^(j'-i') over all its sub-trajectories;
//! the batch loss is their mean. The residual has TB's orientation (positive
//! where the student under-samples), so the whole trajectory alone is TB's
//! residual, and the length-1 pieces alone are DB's residuals negated.
//!
//! All pieces of a batch are computed at once: with u_k = log F(s_k) -
//! sum_{t<k} (log P_F - log P_B) of each state (one cumulative sum over the
//! padded `[B, K - 1]` transitions, K the states of the longest entry),
//! delta_ij = u_j - u_i is one broadcast difference `[B, K, K]`.

use candle_core::{DType, Result, Tensor};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::balance::{f32_tensor, Balance};
use super::{
    is_default_gamma, is_zero, LogZPlan, Objective, ObjectiveDefaults, ObjectiveKind,
    ObjectiveSettings, ObjectiveTable, Pieces, Trained,
};
use crate::check::Invalid;

/// Sub-trajectory balance with a learned log Z (the flow of s_0) and a
/// learned state flow log F(s) (one extra network output). The teacher,
/// when there is one, is trained with the same settings. A key left unset
/// takes the environment's default, as TB's (the sequence tasks' task
/// table, elsewhere the grid's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SubTbConfig {
    /// lambda: the weight of a sub-trajectory of length l is lambda^l
    /// (normalised over the trajectory's sub-trajectories); large values
    /// favour long pieces (TB-like), small ones short pieces (DB-like).
    pub lambda: f64,
    /// Adam learning rate of the policy network (which includes log F).
    /// Unset: 1e-4 on the sequence tasks, else 1e-3.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    /// Adam learning rate of log Z. Unset: 1e-2 on the sequence tasks, else 1e-1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_z_lr: Option<f64>,
    /// Initial value of log Z. Unset: 5 on the sequence tasks, else 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_z_init: Option<f64>,
    /// Clip the global gradient norm (network and log Z together) to this; 0
    /// disables clipping. Unset: 0 on the sequence tasks, else 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clip_grad_norm: Option<f64>,
    /// Clamp log Z to at least this after every optimiser step. Unset: 0 on
    /// the sequence tasks, else no clamp.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_z_min: Option<f64>,
    /// Coupled L2 weight decay (PyTorch's `Adam(weight_decay=..)`) of every
    /// variable, log Z included; 0 disables it.
    #[serde(skip_serializing_if = "is_zero")]
    pub weight_decay: f64,
    /// Iterations at which every learning rate (student and teacher) is
    /// multiplied by `lr_gamma`; empty: constant rates.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lr_milestones: Vec<u64>,
    /// Factor applied at each of `lr_milestones`.
    #[serde(skip_serializing_if = "is_default_gamma")]
    pub lr_gamma: f64,
}

impl Default for SubTbConfig {
    fn default() -> Self {
        Self {
            lambda: 0.9,
            lr: None,
            log_z_lr: None,
            log_z_init: None,
            clip_grad_norm: None,
            log_z_min: None,
            weight_decay: 0.0,
            lr_milestones: Vec::new(),
            lr_gamma: 0.1,
        }
    }
}

impl ObjectiveTable for SubTbConfig {
    fn settings(&self) -> ObjectiveSettings {
        let d = ObjectiveDefaults::GENERIC;
        ObjectiveSettings {
            lr: self.lr.unwrap_or(d.lr),
            log_z: Some(LogZPlan {
                init: self.log_z_init.unwrap_or(d.log_z_init),
                lr: self.log_z_lr.unwrap_or(d.log_z_lr),
                min: self.log_z_min.or(d.log_z_min),
            }),
            clip_grad_norm: self.clip_grad_norm.unwrap_or(d.clip_grad_norm),
            weight_decay: self.weight_decay,
            lr_milestones: self.lr_milestones.clone(),
            lr_gamma: self.lr_gamma,
            objective: ObjectiveKind::SubTb(SubTb {
                lambda: self.lambda,
            }),
        }
    }

    fn fill(&mut self, d: &ObjectiveDefaults) {
        self.lr.get_or_insert(d.lr);
        self.log_z_lr.get_or_insert(d.log_z_lr);
        self.log_z_init.get_or_insert(d.log_z_init);
        self.clip_grad_norm.get_or_insert(d.clip_grad_norm);
        self.log_z_min = self.log_z_min.or(d.log_z_min);
    }

    fn check(&self) -> std::result::Result<(), Invalid> {
        // The weights lambda^l / sum are computed in f64: up to 2 they stay
        // finite for trajectories of up to 1000 steps.
        if !(self.lambda > 0.0 && self.lambda <= 2.0) {
            return Err(Invalid::new(
                "objective.lambda",
                format!(
                    "is {}; must be in (0, 2] (lambda^length weights each sub-trajectory)",
                    self.lambda
                ),
            ));
        }
        Ok(())
    }
}

/// Sub-trajectory balance, resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SubTb {
    /// The geometric weight of a sub-trajectory per transition.
    pub lambda: f64,
}

impl Objective for SubTb {
    /// One residual per pair of states of each entry `[B * K * K]` with the
    /// geometric weights; the loss the mean over entries of their weighted
    /// sums of squares.
    fn train(
        &self,
        balance: &Balance,
        log_target: &[f64],
        log_z: Option<&Tensor>,
    ) -> Result<Trained> {
        let lengths = balance.lengths();
        let k = lengths.iter().max().copied().unwrap_or(0) + 1;
        let weights = lambda_weights(&lengths, k, self.lambda);
        subtb_with_weights(balance, log_target, log_z, k, weights)
    }
}

/// The weights `[B, K, K]` of SubTB(lambda): for entry b with n_b
/// transitions, lambda^(j-i) / sum_{i'<j'<=n_b} lambda^(j'-i') where
/// 0 <= i < j <= n_b, else 0.
pub fn lambda_weights(lengths: &[usize], k: usize, lambda: f64) -> Vec<f32> {
    let mut w = vec![0f32; lengths.len() * k * k];
    for (b, &n) in lengths.iter().enumerate() {
        // sum over lengths l = 1..n of (n + 1 - l) pieces of weight lambda^l
        let total: f64 = (1..=n)
            .map(|l| (n + 1 - l) as f64 * lambda.powi(l as i32))
            .sum();
        for i in 0..n {
            for j in i + 1..=n {
                w[(b * k + i) * k + j] = (lambda.powi((j - i) as i32) / total) as f32;
            }
        }
    }
    w
}

/// SubTB with any weights `[B, K, K]` of the pieces (entry b, from state i
/// to state j): the residuals `[B * K * K]` (u_j - u_i, see the module
/// documentation) and the loss sum w delta^2 / B. Entries must start at s_0
/// (their first flow is log Z); an entry that does not end at a terminal
/// state keeps the network's flow at its last state.
pub fn subtb_with_weights(
    balance: &Balance,
    log_target: &[f64],
    log_z: Option<&Tensor>,
    k: usize,
    weights: Vec<f32>,
) -> Result<Trained> {
    let msg = |m: &str| candle_core::Error::Msg(format!("sub-trajectory balance needs {m}"));
    let log_z = log_z.ok_or_else(|| msg("a learned log Z"))?;
    let log_f = balance
        .log_flow
        .as_ref()
        .ok_or_else(|| msg("the network's state flow log F(s)"))?; // [N]
    if k < 2 {
        return Err(msg("entries of at least one transition"));
    }
    let (b_dim, dev) = (balance.batch, balance.device());
    let ratio = balance.log_ratio()?; // [M]
    let (m, n) = (ratio.dim(0)?, log_f.dim(0)?);
    // Host indices of the padded layouts; padding reads the appended zero.
    let mut t_idx = vec![m as u32; b_dim * (k - 1)];
    let mut s_idx = vec![n as u32; b_dim * k];
    let (mut interior, mut start, mut end) = (
        vec![0f32; b_dim * k],
        vec![0f32; b_dim * k],
        vec![0f32; b_dim * k],
    );
    for (b, (pos, rows)) in balance
        .transition_positions()
        .iter()
        .zip(balance.state_rows())
        .enumerate()
    {
        let nb = pos.len();
        for (t, &p) in pos.iter().enumerate() {
            t_idx[b * (k - 1) + t] = p as u32;
        }
        for (s, &r) in rows.iter().enumerate() {
            s_idx[b * k + s] = r as u32;
        }
        start[b * k] = 1.0;
        let terminal = balance.terminal[b];
        for s in 1..=nb {
            if s < nb || !terminal {
                interior[b * k + s] = 1.0;
            }
        }
        if terminal {
            end[b * k + nb] = 1.0;
        }
    }
    let zero = Tensor::zeros(1, DType::F32, dev)?;
    let t_idx = Tensor::from_vec(t_idx, b_dim * (k - 1), dev)?;
    let s_idx = Tensor::from_vec(s_idx, b_dim * k, dev)?;
    let padded = Tensor::cat(&[&ratio, &zero], 0)?
        .index_select(&t_idx, 0)?
        .reshape((b_dim, k - 1))?; // [B, K-1]
    let prefix = Tensor::cat(
        &[
            &Tensor::zeros((b_dim, 1), DType::F32, dev)?,
            &padded.cumsum(1)?,
        ],
        1,
    )?; // [B, K]: sum_{t<k} (log P_F - log P_B)
    let mask = |v: Vec<f32>| Tensor::from_vec(v, (b_dim, k), dev);
    let flows = Tensor::cat(&[log_f, &zero], 0)?
        .index_select(&s_idx, 0)?
        .reshape((b_dim, k))?; // [B, K]
    let log_r = f32_tensor(log_target, dev)?.unsqueeze(1)?; // [B, 1]
    let f = ((flows * mask(interior)?)?
        + mask(start)?.broadcast_mul(log_z)?
        + mask(end)?.broadcast_mul(&log_r)?)?; // [B, K]
    let u = (f - prefix)?; // [B, K]
                           // delta[b, i, j] = u[b, j] - u[b, i]
    let delta = u.unsqueeze(1)?.broadcast_sub(&u.unsqueeze(2)?)?; // [B, K, K]
    let w = Tensor::from_vec(weights.clone(), (b_dim, k, k), dev)?;
    let loss = ((delta.sqr()? * w)?.sum_all()? / b_dim as f64)?;
    Ok(Trained {
        delta: delta.flatten_all()?,
        loss,
        pieces: Pieces::SubTrajectories { k, weights },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objective::balance::Layout;
    use crate::objective::db::Db;
    use crate::objective::tb::Tb;
    use candle_core::Device;

    /// Weights picking one set of pieces: `keep(i, j, n)` for each entry.
    fn pick(lengths: &[usize], k: usize, keep: impl Fn(usize, usize, usize) -> bool) -> Vec<f32> {
        let mut w = vec![0f32; lengths.len() * k * k];
        for (b, &n) in lengths.iter().enumerate() {
            for i in 0..n {
                for j in i + 1..=n {
                    if keep(i, j, n) {
                        w[(b * k + i) * k + j] = 1.0;
                    }
                }
            }
        }
        w
    }

    /// A hand batch of two 2-step trajectories in the entry-major layout
    /// (the sequence tasks'): log P_F network parts, log P_B as host
    /// constants, flows of the 3 states of each entry.
    /// Entry 0: log P_F = (-1, -2), log P_B = (-0.5, 0), flows (7, 3, 9).
    /// Entry 1: log P_F = (-0.25, -0.75), log P_B = (0, -1), flows (7, 1, 9).
    fn hand(dev: &Device) -> Balance {
        Balance {
            batch: 2,
            layout: Layout::EntryMajor { steps: 2 },
            log_pf: Tensor::new(&[-1f32, -2.0, -0.25, -0.75], dev).unwrap(),
            log_pb: None,
            // fixed = -log P_B
            fixed: vec![0.5, 0.0, 0.0, 1.0],
            log_flow: Some(Tensor::new(&[7f32, 3.0, 9.0, 7.0, 1.0, 9.0], dev).unwrap()),
            terminal: vec![true, true],
        }
    }

    /// With log Z = 2 and log R = (1, -1): TB's residuals by hand are
    /// log R + sum log P_B - log Z - sum log P_F:
    /// entry 0: 1 - 0.5 - 2 + 3 = 1.5; entry 1: -1 - 1 - 2 + 1 = -3.
    /// SubTB with the whole trajectory only gives the same residuals at
    /// (0, 2) and the same loss (1.5^2 + 3^2) / 2 = 5.625.
    #[test]
    fn subtb_of_the_whole_trajectory_is_tb() {
        let dev = Device::Cpu;
        let b = hand(&dev);
        let z = Tensor::new(2f32, &dev).unwrap();
        let target = [1.0, -1.0];
        let tb = Tb { loss_clamp: 0.0 }.train(&b, &target, Some(&z)).unwrap();
        let tb_delta: Vec<f32> = tb.delta.to_vec1().unwrap();
        assert_eq!(tb_delta, vec![1.5, -3.0]);
        let w = pick(&[2, 2], 3, |i, j, n| i == 0 && j == n);
        let sub = subtb_with_weights(&b, &target, Some(&z), 3, w).unwrap();
        let d: Vec<f32> = sub.delta.to_vec1().unwrap();
        assert!(
            (d[2] - 1.5).abs() < 1e-6 && (d[9 + 2] + 3.0).abs() < 1e-6,
            "{d:?}"
        );
        let (l_tb, l_sub): (f32, f32) =
            (tb.loss.to_scalar().unwrap(), sub.loss.to_scalar().unwrap());
        assert!((l_tb - 5.625).abs() < 1e-5 && (l_sub - 5.625).abs() < 1e-5);
    }

    /// With log Z equal to the network's flow of s_0 (7), SubTB with the
    /// length-1 pieces only is DB: DB's residuals by hand, log F(s) + log
    /// P_F - log F(s') - log P_B (log F(x) = log R at the last step):
    /// entry 0: 7 - 1 - 3 + 0.5 = 3.5, 3 - 2 - 1 - 0 = 0;
    /// entry 1: 7 - 0.25 - 1 - 0 = 5.75, 1 - 0.75 + 1 + 1 = 2.25;
    /// SubTB's are the same negated; loss (3.5^2 + 5.75^2 + 2.25^2) / 2.
    #[test]
    fn subtb_of_single_transitions_is_db() {
        let dev = Device::Cpu;
        let b = hand(&dev);
        let z = Tensor::new(7f32, &dev).unwrap();
        let target = [1.0, -1.0];
        let db = Db.train(&b, &target, None).unwrap();
        let db_delta: Vec<f32> = db.delta.to_vec1().unwrap();
        assert_eq!(db_delta, vec![3.5, 0.0, 5.75, 2.25]);
        let w = pick(&[2, 2], 3, |i, j, _| j == i + 1);
        let sub = subtb_with_weights(&b, &target, Some(&z), 3, w).unwrap();
        let d: Vec<f32> = sub.delta.to_vec1().unwrap();
        for (b, i, want) in [(0, 0, 3.5f32), (0, 1, 0.0), (1, 0, 5.75), (1, 1, 2.25)] {
            let got = d[(b * 3 + i) * 3 + i + 1];
            assert!((got + want).abs() < 1e-5, "{b} {i}: {got} vs -{want}");
        }
        let want = (3.5f32 * 3.5 + 5.75 * 5.75 + 2.25 * 2.25) / 2.0;
        let (l_db, l_sub): (f32, f32) =
            (db.loss.to_scalar().unwrap(), sub.loss.to_scalar().unwrap());
        assert!((l_db - want).abs() < 1e-4 && (l_sub - want).abs() < 1e-4);
    }

    /// SubTB(lambda = 0.5) by hand on entry 0 of the hand batch (log Z = 2,
    /// log R = 1): u = log F - prefix sums of (log P_F - log P_B) =
    /// (2, 3 - (-0.5), 1 - (-2.5)) = (2, 3.5, 3.5); pieces (0,1) = 1.5,
    /// (1,2) = 0, (0,2) = 1.5 with weights 0.5, 0.5, 0.25 over 1.25.
    /// Entry 1 (log R = -1): u = (2, 1 - (-0.25), -1 - 0) = (2, 1.25, -1)
    /// -> pieces -0.75, -2.25, -3.
    #[test]
    fn subtb_lambda_weights_by_hand() {
        let dev = Device::Cpu;
        let b = hand(&dev);
        let z = Tensor::new(2f32, &dev).unwrap();
        let t = SubTb { lambda: 0.5 }
            .train(&b, &[1.0, -1.0], Some(&z))
            .unwrap();
        let (w1, w2) = (0.5 / 1.25, 0.25 / 1.25);
        let e0 = w1 * (1.5f64.powi(2) + 0.0) + w2 * 1.5f64.powi(2);
        let e1 = w1 * (0.75f64.powi(2) + 2.25f64.powi(2)) + w2 * 3f64.powi(2);
        let loss: f32 = t.loss.to_scalar().unwrap();
        assert!((loss as f64 - (e0 + e1) / 2.0).abs() < 1e-5, "{loss}");
        let w = lambda_weights(&[2, 1], 3, 0.5);
        assert!((w[1] - 0.4).abs() < 1e-7 && (w[2] - 0.2).abs() < 1e-7 && w[3] == 0.0);
        // entry 1 of length 1: its only piece (0, 1) has weight 1
        assert_eq!(w[9 + 1], 1.0);
        assert_eq!(w[9..].iter().sum::<f32>(), 1.0);
    }

    /// The time-major layout (the diffusion sampler's) gives the same
    /// objectives as the entry-major one on the same batch.
    #[test]
    fn time_major_layout_agrees() {
        let dev = Device::Cpu;
        let e = hand(&dev);
        // [B, T] -> [T, B]; states [B, T+1] -> [T+1, B]
        let t = Balance {
            batch: 2,
            layout: Layout::TimeMajor { steps: 2 },
            log_pf: Tensor::new(&[-1f32, -0.25, -2.0, -0.75], &dev).unwrap(),
            log_pb: None,
            fixed: vec![0.5, 0.0, 0.0, 1.0],
            log_flow: Some(Tensor::new(&[7f32, 7.0, 3.0, 1.0, 9.0, 9.0], &dev).unwrap()),
            terminal: vec![true, true],
        };
        let z = Tensor::new(2f32, &dev).unwrap();
        let target = [1.0, -1.0];
        for obj in [
            &Tb { loss_clamp: 0.0 } as &dyn Objective,
            &Db,
            &SubTb { lambda: 0.9 },
        ] {
            let a: f32 = obj
                .train(&e, &target, Some(&z))
                .unwrap()
                .loss
                .to_scalar()
                .unwrap();
            let b: f32 = obj
                .train(&t, &target, Some(&z))
                .unwrap()
                .loss
                .to_scalar()
                .unwrap();
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        let d: Vec<f32> = Db
            .train(&t, &target, None)
            .unwrap()
            .delta
            .to_vec1()
            .unwrap();
        assert_eq!(d, vec![3.5, 5.75, 0.0, 2.25]);
    }
}
