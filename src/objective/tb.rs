//! Trajectory balance (TB, arXiv 2201.13259):
//! delta(tau) = log R(x) + sum log P_B - log Z - sum log P_F, loss = mean delta^2.

use candle_core::{Result, Tensor};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::balance::{f32_tensor, Balance};
use super::{
    is_default_gamma, is_zero, LogZPlan, Objective, ObjectiveDefaults, ObjectiveKind,
    ObjectiveSettings, ObjectiveTable, Pieces, Trained,
};
use crate::check::Invalid;

/// Trajectory balance with its own learning rate for log Z (docs/grid.md "Policy `mlp`").
/// The teacher, when there is one, is trained with the same settings. A
/// key left unset takes the environment's default: the sequence tasks'
/// from their task table (docs/discovery.md "Policy", "Student objective:
/// TB"), elsewhere the grid's (docs/grid.md); the resolved `config.toml`
/// records the value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TbConfig {
    /// Adam learning rate of the policy network. Unset: 1e-4 on the
    /// sequence tasks, else 1e-3.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    /// Adam learning rate of log Z. Unset: 1e-2 on the sequence tasks, else 1e-1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_z_lr: Option<f64>,
    /// Initial value of log Z. Unset: 5 on the sequence tasks, else 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_z_init: Option<f64>,
    /// Clip the global gradient norm (network and log Z together) to this; 0
    /// disables clipping. Unset: 0 on the sequence tasks (the paper's
    /// effective setting), else 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clip_grad_norm: Option<f64>,
    /// Clamp each trajectory's squared residual to at most this (no gradient
    /// beyond it), as the discovery reference does with 5000; 0 disables it.
    /// Unset: 5000 on the sequence tasks, else 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_clamp: Option<f64>,
    /// Clamp log Z to at least this after every optimiser step (the discovery
    /// reference clamps at 0). Unset: 0 on the sequence tasks, else no clamp.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_z_min: Option<f64>,
    /// Coupled L2 weight decay (PyTorch's `Adam(weight_decay=..)`, not
    /// AdamW) of every variable, log Z included; 0 disables it (the
    /// diffusion reference's 1e-7).
    #[serde(skip_serializing_if = "is_zero")]
    pub weight_decay: f64,
    /// Iterations at which every learning rate (student and teacher) is
    /// multiplied by `lr_gamma`, e.g. `[4000, 8000]` (the diffusion
    /// reference's epochs - 6000 and epochs - 2000); empty: constant rates.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lr_milestones: Vec<u64>,
    /// Factor applied at each of `lr_milestones`.
    #[serde(skip_serializing_if = "is_default_gamma")]
    pub lr_gamma: f64,
}

impl Default for TbConfig {
    fn default() -> Self {
        Self {
            lr: None,
            log_z_lr: None,
            log_z_init: None,
            clip_grad_norm: None,
            loss_clamp: None,
            log_z_min: None,
            weight_decay: 0.0,
            lr_milestones: Vec::new(),
            lr_gamma: 0.1,
        }
    }
}

impl ObjectiveTable for TbConfig {
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
            objective: ObjectiveKind::Tb(Tb {
                loss_clamp: self.loss_clamp.unwrap_or(d.loss_clamp),
            }),
        }
    }

    fn fill(&mut self, d: &ObjectiveDefaults) {
        self.lr.get_or_insert(d.lr);
        self.log_z_lr.get_or_insert(d.log_z_lr);
        self.log_z_init.get_or_insert(d.log_z_init);
        self.clip_grad_norm.get_or_insert(d.clip_grad_norm);
        self.loss_clamp.get_or_insert(d.loss_clamp);
        self.log_z_min = self.log_z_min.or(d.log_z_min);
    }

    fn check(&self) -> std::result::Result<(), Invalid> {
        let clamp = self.settings().objective.loss_clamp();
        if !(clamp.is_finite() && clamp >= 0.0) {
            return Err(Invalid::new(
                "objective.loss_clamp",
                "must be >= 0 (0 disables the clamp)",
            ));
        }
        Ok(())
    }
}

/// Trajectory balance, resolved: the clamp of each squared residual.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tb {
    /// Clamp each squared residual to at most this (0: no clamp).
    pub loss_clamp: f64,
}

impl Objective for Tb {
    /// One residual per entry `[B]`, the loss the mean of their (clamped) squares.
    fn train(
        &self,
        balance: &Balance,
        log_target: &[f64],
        log_z: Option<&Tensor>,
    ) -> Result<Trained> {
        let delta = tb_residuals(balance, log_target, log_z)?;
        let loss = tb_loss_clamped(&delta, self.loss_clamp)?;
        Ok(Trained {
            delta,
            loss,
            pieces: Pieces::Entries,
        })
    }
}

/// Per-trajectory TB residuals `[B]`: log_target + sum log P_B - log Z -
/// sum log P_F (no log Z term without `log_z`: the log-weight of the
/// trajectory, as the evaluations use it). The network parts are summed per
/// entry on the device; the host constants per entry in f64, into the
/// target.
pub fn tb_residuals(
    balance: &Balance,
    log_target: &[f64],
    log_z: Option<&Tensor>,
) -> Result<Tensor> {
    // sum over each trajectory of log P_F - log P_B: [M] -> [B]
    let ratio = match &balance.log_pb {
        Some(pb) => (&balance.log_pf - pb)?,
        None => balance.log_pf.clone(),
    };
    let sum = balance.sum_per_entry(&ratio)?; // [B]
    let target: Vec<f64> = match balance.fixed.is_empty() {
        true => log_target.to_vec(),
        false => log_target
            .iter()
            .zip(balance.fixed_per_entry())
            .map(|(r, f)| r - f)
            .collect(),
    };
    // delta = log R + sum log P_B - sum log P_F - log Z
    let delta = (f32_tensor(&target, balance.device())? - sum)?;
    match log_z {
        Some(z) => delta.broadcast_sub(z),
        None => Ok(delta),
    }
}

/// TB loss: mean of delta^2 over the batch.
pub fn tb_loss(delta: &Tensor) -> Result<Tensor> {
    delta.sqr()?.mean_all()
}

/// TB loss with each squared residual clamped: mean of min(delta^2, clamp)
/// (`clamp` <= 0: no clamp). A clamped entry contributes the constant, so no
/// gradient (docs/discovery.md "Student objective: TB").
pub fn tb_loss_clamped(delta: &Tensor, clamp: f64) -> Result<Tensor> {
    if clamp <= 0.0 {
        return tb_loss(delta);
    }
    let sq = delta.sqr()?; // [B]
    let keep = sq.lt(clamp)?.to_dtype(sq.dtype())?.detach(); // [B], 1 where below the clamp
    let clamped = ((&sq * &keep)? + ((1.0 - &keep)? * clamp)?)?;
    clamped.mean_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envs::grid::fixtures::{batch, grid_2x4, EDGE, STOPPED};
    use candle_core::Device;

    /// TB on a hand-built trajectory with hand-picked logits.
    /// d=2, H=4: (0,0) -a0-> (1,0) -a1-> (1,1) -stop-> (1,1).
    /// Network output = zeros except logit 2 (stop) = ln 2 in every row:
    /// softmax over 3 actions = (1/4, 1/4, 1/2), so
    /// sum log P_F = ln(1/4) + ln(1/4) + ln(1/2) = -5 ln 2.
    /// Uniform P_B: (1,0) has 1 parent, (1,1) has 2, stop step 1: sum = -ln 2.
    /// R(1,1): u = |2/3 - 1| = 1/3 > 0.2 in both coords, not in (0.6,0.8):
    /// R = -0.1 + 0.1 + 1e-5 = 1e-5; log R uses R + 1e-8.
    /// delta = ln(1e-5 + 1e-8) - ln 2 - log Z + 5 ln 2, with log Z = 0.5.
    #[test]
    fn tb_delta_hand_trajectory() {
        let dev = Device::Cpu;
        let g = grid_2x4();
        let t = batch(&g, &[STOPPED]);
        let p = g.pack(&t, false, &dev).unwrap();
        let ln2 = 2f32.ln();
        let out = Tensor::new(&[[0f32, 0.0, ln2, 0.0, 0.0]; 4], &dev).unwrap();
        let log_z = Tensor::new(0.5f32, &dev).unwrap();
        let log_r = (1e-5f64 + 1e-8).ln();
        let delta: Vec<f32> =
            tb_residuals(&p.balance(&out, false).unwrap(), &[log_r], Some(&log_z))
                .unwrap()
                .to_vec1()
                .unwrap();
        let expected = (1e-5f64 + 1e-8).ln() - 2f64.ln() - 0.5 + 5.0 * 2f64.ln();
        assert!(
            (delta[0] as f64 - expected).abs() < 1e-5,
            "{delta:?} vs {expected}"
        );
        let loss: f32 = tb_loss(&Tensor::new(&[1f32, -3.0], &dev).unwrap())
            .unwrap()
            .to_scalar()
            .unwrap();
        assert_eq!(loss, 5.0);
    }

    /// A learned P_B with zero backward logits equals the uniform P_B.
    #[test]
    fn learned_pb_with_flat_logits_is_uniform() {
        let dev = Device::Cpu;
        let g = grid_2x4();
        let t = batch(&g, &[EDGE, (&[0, 0, 0, 0], &[2])]);
        let out = Tensor::zeros((t.n_states(), 5), candle_core::DType::F32, &dev).unwrap();
        let z = Tensor::new(0f32, &dev).unwrap();
        let delta = |learned: bool| -> Vec<f32> {
            let b = g
                .pack(&t, learned, &dev)
                .unwrap()
                .balance(&out, false)
                .unwrap();
            tb_residuals(&b, &[0.0, 0.0], Some(&z))
                .unwrap()
                .to_vec1()
                .unwrap()
        };
        let (fixed, learned) = (delta(false), delta(true));
        for (a, b) in fixed.iter().zip(&learned) {
            assert!((a - b).abs() < 1e-5, "{fixed:?} {learned:?}");
        }
    }
}
