//! Training objectives and the batch layout they consume.

pub mod tb;

use candle_core::Tensor;

/// Additive logit for a masked (invalid) action, as the reference's `-1e9`.
pub const MASKED_LOGIT: f32 = -1e9;

/// A batch of trajectories as tensors, packed without padding: every state of
/// every trajectory is one row (N rows), every transition one entry (M entries).
/// Per-trajectory sums are matrix products with 0/1 segment matrices, so the
/// whole batch is a handful of tensor ops whatever the trajectory lengths.
pub struct PackedBatch {
    /// Number of trajectories B.
    pub batch: usize,
    /// Network input of every state: `[N, obs_dim]` f32, or `[N, k]` u32
    /// positions of the ones of a one-hot observation (see `Mlp::forward`).
    pub obs: Tensor,
    /// `[N, A]` additive mask of invalid forward actions (0 or `MASKED_LOGIT`).
    pub fwd_mask: Tensor,
    /// `[M]` u32: `row * A + action` of every transition, into the flattened `[N * A]` log-probs.
    pub pf_index: Tensor,
    /// `[B, M]` 1 where transition m belongs to trajectory b.
    pub pf_segment: Tensor,
    /// Backward log-probabilities.
    pub log_pb: LogPb,
}

/// How sum log P_B of each trajectory is obtained.
pub enum LogPb {
    /// Uniform P_B: the sums are constants computed on the host, `[B]`.
    Fixed(Tensor),
    /// Learned P_B from the network's backward logits (`Ab` of them).
    Learned {
        /// `[N, Ab]` additive mask of invalid parents.
        mask: Tensor,
        /// `[M']` u32: `row(s_{t+1}) * Ab + action` of every non-stop transition.
        index: Tensor,
        /// `[B, M']` segment matrix of those transitions.
        segment: Tensor,
    },
}
