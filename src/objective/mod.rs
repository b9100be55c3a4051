//! Training objectives and the batch layout they consume.

pub mod db;
pub mod tb;

use crate::flops::matmul;
use candle_core::{Device, Result, Tensor, D};

/// Additive logit for a masked (invalid) action, as the reference's `-1e9`.
pub const MASKED_LOGIT: f32 = -1e9;

/// A batch as tensors, packed without padding: every state of every entry
/// (a trajectory, or a single replayed transition) is one row (N rows), every
/// transition one position (M positions). Per-entry sums are products with a
/// 0/1 segment matrix, so a whole batch is a handful of tensor ops whatever
/// the trajectory lengths.
pub struct PackedBatch {
    /// Number of entries B.
    pub batch: usize,
    /// Network input of every state: `[N, obs_dim]` f32, or `[N, k]` u32
    /// positions of the ones of a one-hot observation (see `Mlp::forward`).
    pub obs: Tensor,
    /// `[N, A]` additive mask of invalid forward actions (0 or `MASKED_LOGIT`).
    pub fwd_mask: Tensor,
    /// `[M]` u32: `row(s_t) * A + a_t`, into the flattened `[N * A]` log-probs.
    pub pf_index: Tensor,
    /// `[M]` u32: row of s_t.
    pub src_row: Tensor,
    /// `[M]` u32: row of s_{t+1}.
    pub next_row: Tensor,
    /// `[B, M]`: 1 where transition m belongs to entry b.
    pub segment: Tensor,
    /// Backward log-probabilities.
    pub log_pb: LogPb,
    /// `[M]` f32: 1 where the transition reaches the terminal state of its entry.
    pub ends_entry: Tensor,
    /// `[M]` f32: 1 where GAFN augments the backward factor (non-stop
    /// transitions into a state that is not the terminal state of the entry).
    pub augmentable: Tensor,
}

/// How log P_B(s_t | s_{t+1}) of each transition is obtained.
pub enum LogPb {
    /// Uniform P_B: constants computed on the host, `[M]` (0 for stop actions).
    Fixed(Tensor),
    /// Learned P_B from the network's backward logits (`Ab` of them, after the A forward ones).
    Learned {
        /// `[N, Ab]` additive mask of invalid parents.
        mask: Tensor,
        /// `[M]` u32: `row(s_{t+1}) * Ab + a_t` (0 for stop actions).
        index: Tensor,
        /// `[M]` f32: 0 for stop actions (probability 1), else 1.
        valid: Tensor,
    },
}

impl PackedBatch {
    /// log P_F(s_{t+1} | s_t) of every transition `[M]` from outputs `[N, out]`.
    pub fn log_pf(&self, out: &Tensor) -> Result<Tensor> {
        let a_dim = self.fwd_mask.dim(1)?;
        // [N, A] -> log-softmax over valid actions -> [N*A] -> [M]
        let lp =
            candle_nn::ops::log_softmax(&(out.narrow(1, 0, a_dim)? + &self.fwd_mask)?, D::Minus1)?;
        lp.flatten_all()?.index_select(&self.pf_index, 0)
    }

    /// log P_B(s_t | s_{t+1}) of every transition `[M]`.
    pub fn log_pb(&self, out: &Tensor) -> Result<Tensor> {
        match &self.log_pb {
            LogPb::Fixed(t) => Ok(t.clone()),
            LogPb::Learned { mask, index, valid } => {
                let (a_dim, b_dim) = (self.fwd_mask.dim(1)?, mask.dim(1)?);
                let lp = candle_nn::ops::log_softmax(
                    &(out.narrow(1, a_dim, b_dim)? + mask)?,
                    D::Minus1,
                )?;
                lp.flatten_all()?.index_select(index, 0)? * valid
            }
        }
    }

    /// Per-entry sums of a per-transition quantity: `[M] -> [B]`.
    pub fn per_entry(&self, x: &Tensor) -> Result<Tensor> {
        matmul(&self.segment, &x.unsqueeze(1)?)?.squeeze(1)
    }
}

/// One transition of a batch being packed (see `TransitionIndex`).
pub struct TransitionRow {
    /// Entry (trajectory) index.
    pub traj: usize,
    /// Row of s_t (s_{t+1} is the next row).
    pub row: usize,
    /// Forward action a_t.
    pub action: u32,
    /// Number of forward actions A.
    pub a_dim: usize,
    /// Number of backward actions Ab.
    pub b_dim: usize,
    /// Whether a_t is the stop action.
    pub stop: bool,
    /// log P_B under the uniform backward policy.
    pub log_pb: f32,
    /// Whether s_{t+1} is the terminal state of the entry.
    pub ends_entry: bool,
    /// Whether GAFN augments this backward factor.
    pub augmentable: bool,
}

/// Host-side builder of the per-transition tensors of a `PackedBatch`.
pub struct TransitionIndex {
    batch: usize,
    rows: Vec<TransitionRow>,
}

impl TransitionIndex {
    /// An empty index for `batch` entries and about `m` transitions.
    pub fn with_capacity(batch: usize, m: usize) -> Self {
        Self {
            batch,
            rows: Vec::with_capacity(m),
        }
    }

    /// Add the next transition (entries in order, transitions in order).
    pub fn push(&mut self, t: TransitionRow) {
        self.rows.push(t);
    }

    /// Build the batch; `learned_pb` carries the `[N, Ab]` parent mask when P_B is learned.
    pub fn into_packed(
        self,
        obs: Tensor,
        fwd_mask: Tensor,
        learned_pb: Option<(Vec<f32>, usize, usize)>,
        device: &Device,
    ) -> Result<PackedBatch> {
        let (b, m) = (self.batch, self.rows.len());
        let mut segment = vec![0f32; b * m];
        let f32s = |f: &dyn Fn(&TransitionRow) -> f32| -> Result<Tensor> {
            Tensor::from_vec(self.rows.iter().map(f).collect::<Vec<f32>>(), m, device)
        };
        let u32s = |f: &dyn Fn(&TransitionRow) -> u32| -> Result<Tensor> {
            Tensor::from_vec(self.rows.iter().map(f).collect::<Vec<u32>>(), m, device)
        };
        for (k, t) in self.rows.iter().enumerate() {
            segment[t.traj * m + k] = 1.0;
        }
        let log_pb = match learned_pb {
            None => LogPb::Fixed(f32s(&|t| t.log_pb)?),
            Some((mask, n, ab)) => LogPb::Learned {
                mask: Tensor::from_vec(mask, (n, ab), device)?,
                index: u32s(&|t| {
                    if t.stop {
                        0
                    } else {
                        ((t.row + 1) * t.b_dim) as u32 + t.action
                    }
                })?,
                valid: f32s(&|t| if t.stop { 0.0 } else { 1.0 })?,
            },
        };
        Ok(PackedBatch {
            batch: b,
            obs,
            fwd_mask,
            pf_index: u32s(&|t| (t.row * t.a_dim) as u32 + t.action)?,
            src_row: u32s(&|t| t.row as u32)?,
            next_row: u32s(&|t| t.row as u32 + 1)?,
            segment: Tensor::from_vec(segment, (b, m), device)?,
            log_pb,
            ends_entry: f32s(&|t| t.ends_entry as u8 as f32)?,
            augmentable: f32s(&|t| t.augmentable as u8 as f32)?,
        })
    }
}
