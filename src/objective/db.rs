//! Detailed balance (DB, arXiv 2111.09266), per transition s -> s':
//! delta = log F(s) + log P_F(s'|s) - log F(s') - log P_B(s|s'), with log F(x)
//! replaced by log R(x) at the transition that reaches the terminal state.
//! Loss = sum over transitions of delta^2, averaged over entries
//! (docs/grid.md "Objectives").

use candle_core::{Result, Tensor};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::balance::{f32_tensor, Balance};
use super::{
    is_default_gamma, is_zero, Objective, ObjectiveDefaults, ObjectiveKind, ObjectiveSettings,
    ObjectiveTable, Pieces, Trained,
};

/// Detailed balance with a learned state flow log F(s) (one extra network output).
/// The teacher, when there is one, is trained with the same settings. A key
/// left unset takes the environment's default, as TB's (the sequence tasks'
/// task table, elsewhere the grid's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DbConfig {
    /// Adam learning rate of the policy network (which includes log F).
    /// Unset: 1e-4 on the sequence tasks, else 1e-3.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    /// Clip the global gradient norm to this; 0 disables clipping. Unset: 0
    /// on the sequence tasks, else 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clip_grad_norm: Option<f64>,
    /// Coupled L2 weight decay (PyTorch's `Adam(weight_decay=..)`) of every
    /// variable; 0 disables it.
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

impl Default for DbConfig {
    fn default() -> Self {
        Self {
            lr: None,
            clip_grad_norm: None,
            weight_decay: 0.0,
            lr_milestones: Vec::new(),
            lr_gamma: 0.1,
        }
    }
}

impl ObjectiveTable for DbConfig {
    fn settings(&self) -> ObjectiveSettings {
        let d = ObjectiveDefaults::GENERIC;
        ObjectiveSettings {
            lr: self.lr.unwrap_or(d.lr),
            log_z: None,
            clip_grad_norm: self.clip_grad_norm.unwrap_or(d.clip_grad_norm),
            weight_decay: self.weight_decay,
            lr_milestones: self.lr_milestones.clone(),
            lr_gamma: self.lr_gamma,
            objective: ObjectiveKind::Db(Db),
        }
    }

    fn fill(&mut self, d: &ObjectiveDefaults) {
        self.lr.get_or_insert(d.lr);
        self.clip_grad_norm.get_or_insert(d.clip_grad_norm);
    }
}

/// Detailed balance, resolved (it has no settings beyond the optimiser's).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Db;

impl Objective for Db {
    /// One residual per transition `[M]`; the loss their sum of squares over
    /// the number of entries. DB has no log Z: `log_z` is not read.
    fn train(
        &self,
        balance: &Balance,
        log_target: &[f64],
        _log_z: Option<&Tensor>,
    ) -> Result<Trained> {
        let delta = db_residuals(balance, log_target)?;
        let loss = (delta.sqr()?.sum_all()? / balance.batch as f64)?;
        let (owner, last) = balance.transition_owners();
        Ok(Trained {
            delta,
            loss,
            pieces: Pieces::Transitions { owner, last },
        })
    }
}

/// Per-transition DB residuals `[M]`, in the reference's orientation
/// log F(s) + log P_F - log F(s') - log P_B (the sign its Teacher-DB
/// weighs); log F of the terminal state of an entry is replaced by
/// `log_target` of the entry `[B]`.
pub fn db_residuals(balance: &Balance, log_target: &[f64]) -> Result<Tensor> {
    let log_f = balance.log_flow.as_ref().ok_or_else(|| {
        candle_core::Error::Msg("detailed balance needs the network's state flow log F(s)".into())
    })?; // [N]
    let (src, next, ends) = balance.transition_rows()?; // [M] each
    let f_src = log_f.index_select(&src, 0)?; // [M]
    let f_next = log_f.index_select(&next, 0)?; // [M]
                                                // log R of each transition's entry: [B] -> [M]
    let r_next = balance.per_transition(&f32_tensor(log_target, balance.device())?)?;
    // end flow: log R where the transition ends its entry, else log F(s')
    let end_flow = ((&ends * r_next)? + ((1.0 - &ends)? * f_next)?)?;
    let mut delta = ((f_src + &balance.log_pf)? - end_flow)?;
    if let Some(pb) = &balance.log_pb {
        delta = (delta - pb)?;
    }
    if let Some(fixed) = balance.fixed_tensor()? {
        delta = (delta + fixed)?;
    }
    Ok(delta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envs::grid::fixtures::{batch, grid_2x4, STOPPED};
    use candle_core::Device;

    /// DB on a hand-built trajectory. d=2, H=4:
    /// (0,0) -a0-> (1,0) -a1-> (1,1) -stop-> (1,1).
    /// Outputs: forward logits (0, 0, ln 2) -> P_F = (1/4, 1/4, 1/2); backward
    /// logits unused (uniform P_B); log F(s) = 1, 2, 3, 4 for rows 0..3.
    /// Uniform P_B: (1,0) has 1 parent, (1,1) has 2; stop has P_B = 1.
    /// log R(1,1) = ln(1e-5 + 1e-8) = L.
    /// delta_0 = 1 + ln(1/4) - 2 - 0
    /// delta_1 = 2 + ln(1/4) - 3 + ln 2
    /// delta_2 = 3 + ln(1/2) - L - 0  (terminal: log F(x) -> log R(x))
    #[test]
    fn db_delta_hand_trajectory() {
        let dev = Device::Cpu;
        let g = grid_2x4();
        let t = batch(&g, &[STOPPED]);
        let p = g.pack(&t, false, &dev).unwrap();
        let ln2 = 2f32.ln();
        let rows: Vec<f32> = (1..=4)
            .flat_map(|f| [0.0, 0.0, ln2, 0.0, 0.0, f as f32])
            .collect();
        let out = Tensor::from_vec(rows, (4, 6), &dev).unwrap();
        let l = (1e-5f64 + 1e-8).ln();
        let t = Db
            .train(&p.balance(&out, true).unwrap(), &[l], None)
            .unwrap();
        let delta: Vec<f32> = t.delta.to_vec1().unwrap();
        let l4 = 0.25f64.ln();
        let expected = [
            1.0 + l4 - 2.0,
            2.0 + l4 - 3.0 + 2f64.ln(),
            3.0 + 0.5f64.ln() - l,
        ];
        for (d, e) in delta.iter().zip(expected) {
            assert!((*d as f64 - e).abs() < 1e-4, "{delta:?} vs {expected:?}");
        }
        let loss: f32 = t.loss.to_scalar().unwrap();
        let want: f64 = expected.iter().map(|e| e * e).sum(); // one trajectory
        assert!((loss as f64 - want).abs() < 1e-3, "{loss} vs {want}");
        assert_eq!(
            t.pieces,
            Pieces::Transitions {
                owner: vec![0, 0, 0],
                last: vec![false, false, true]
            }
        );
    }
}
