//! Detailed balance (DB, arXiv 2111.09266), per transition s -> s':
//! delta = log F(s) + log P_F(s'|s) - log F(s') - log P_B(s|s'), with log F(x)
//! replaced by log R(x) at the transition that reaches the terminal state.
//! Loss = sum over transitions of delta^2, averaged over entries
//! (docs/grid.md "Objectives").

use candle_core::{Result, Tensor};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::PackedBatch;
use crate::check::Invalid;
use crate::flops::matmul;

/// Detailed balance with a learned state flow log F(s) (one extra network output).
/// The teacher, when there is one, is trained with the same settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DbConfig {
    /// Adam learning rate of the policy network (which includes log F).
    pub lr: f64,
    /// Clip the global gradient norm to this; 0 disables clipping.
    pub clip_grad_norm: f64,
}

impl Default for DbConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            clip_grad_norm: 1.0,
        }
    }
}

impl DbConfig {
    /// Range checks.
    pub fn check(&self) -> std::result::Result<(), Invalid> {
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Invalid::new("objective.lr", "must be a positive number"));
        }
        if !(self.clip_grad_norm.is_finite() && self.clip_grad_norm >= 0.0) {
            return Err(Invalid::new(
                "objective.clip_grad_norm",
                "must be >= 0 (0 disables clipping)",
            ));
        }
        Ok(())
    }
}

/// Per-transition DB residuals `[M]`.
///
/// `out`: `[N, out]` with log F(s) as the last column; `log_reward`: `[B]`,
/// used at the transitions that end their entry.
pub fn db_delta(out: &Tensor, batch: &PackedBatch, log_reward: &Tensor) -> Result<Tensor> {
    let last = out.dim(1)? - 1;
    let log_f = out.narrow(1, last, 1)?.squeeze(1)?.contiguous()?; // [N]
    let f_src = log_f.index_select(&batch.src_row, 0)?; // [M]
    let f_next = log_f.index_select(&batch.next_row, 0)?; // [M]
                                                          // log R of each transition's entry: [B, M]^T [B, 1] -> [M]
    let r_next = matmul(&batch.segment.t()?, &log_reward.unsqueeze(1)?)?.squeeze(1)?;
    // end flow: log R where the transition ends its entry, else log F(s')
    let ends = &batch.ends_entry;
    let end_flow = ((ends * r_next)? + ((1.0 - ends)? * f_next)?)?;
    ((f_src + batch.log_pf(out)?)? - end_flow)? - batch.log_pb(out)?
}

/// DB loss: sum of delta^2 over transitions, divided by the number of entries.
pub fn db_loss(delta: &Tensor, batch: &PackedBatch) -> Result<Tensor> {
    delta.sqr()?.sum_all()? / batch.batch as f64
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
        let log_r = Tensor::new(&[l as f32], &dev).unwrap();
        let delta: Vec<f32> = db_delta(&out, &p, &log_r).unwrap().to_vec1().unwrap();
        let l4 = 0.25f64.ln();
        let expected = [
            1.0 + l4 - 2.0,
            2.0 + l4 - 3.0 + 2f64.ln(),
            3.0 + 0.5f64.ln() - l,
        ];
        for (d, e) in delta.iter().zip(expected) {
            assert!((*d as f64 - e).abs() < 1e-4, "{delta:?} vs {expected:?}");
        }
        let loss: f32 = db_loss(&Tensor::new(&[1f32, 2.0, 3.0], &dev).unwrap(), &p)
            .unwrap()
            .to_scalar()
            .unwrap();
        assert_eq!(loss, 14.0); // (1 + 4 + 9) / 1 trajectory
    }
}
