//! The family-neutral view of a batch that every objective consumes.
//!
//! A batch holds B entries: complete trajectories s_0 -> ... -> s_n = x, or
//! (the grid's transition buffer) single transitions that may stop short of
//! a terminal state. Entry b has n_b transitions and n_b + 1 states; the
//! batch has M transitions and N = M + B states in all. What an objective
//! needs of it, per transition t of an entry, is log P_F(s_{t+1} | s_t) and
//! log P_B(s_t | s_{t+1}); per state, the learned log F(s) (DB, SubTB); per
//! entry, whether its last state is terminal (its flow is then log R(x),
//! which the caller passes, so that the student and the teacher can use one
//! view towards different rewards). Where the transitions sit in the `[M]`
//! tensors is the [`Layout`]: each family keeps the order its network
//! produces, and the layout tells the objectives how to sum per entry.

use std::borrow::Cow;

use candle_core::{Device, Result, Tensor};

use crate::flops::matmul;

/// Where the transitions and states of each entry sit in the `[M]` and `[N]` tensors.
pub enum Layout {
    /// Entries of any length, packed one after another (the grid): entry
    /// b's transitions are the `lengths[b]` positions after those of the
    /// entries before it, its states the `lengths[b] + 1` rows after theirs.
    Packed {
        /// `[B, M]` f32: 1 where transition m belongs to entry b (per-entry
        /// sums are one product with it).
        segment: Tensor,
        /// `[M]` u32: the row of s_t among the N states.
        src_row: Tensor,
        /// `[M]` u32: the row of s_{t+1}.
        next_row: Tensor,
        /// `[M]` f32: 1 where the transition reaches the terminal state of its entry.
        ends: Tensor,
        /// Transitions of each entry `[B]`.
        lengths: Vec<usize>,
    },
    /// Every entry has `steps` transitions, entry-major: transitions
    /// `[B, T]`, states `[B, T + 1]` (the sequence tasks).
    EntryMajor {
        /// Transitions per entry T.
        steps: usize,
    },
    /// Every entry has `steps` transitions, time-major: transitions
    /// `[T, B]`, states `[T + 1, B]` (the diffusion sampler).
    TimeMajor {
        /// Transitions per entry T.
        steps: usize,
    },
}

/// The view of one batch under one sampler's network.
pub struct Balance {
    /// Number of entries B.
    pub batch: usize,
    /// Where each entry's transitions and states are.
    pub layout: Layout,
    /// The network's part of log P_F of every transition `[M]`.
    pub log_pf: Tensor,
    /// The tensor part of log P_B of every transition `[M]` (a learned
    /// P_B, or constants the family keeps on the device); `None` when P_B
    /// is wholly in `fixed`.
    pub log_pb: Option<Tensor>,
    /// Host constants of log P_F - log P_B of every transition `[M]` (a
    /// uniform P_B, a Gaussian's normaliser), in f64; empty when there are
    /// none.
    pub fixed: Vec<f64>,
    /// log F(s) of every state `[N]` from the network's flow head (the
    /// values at terminal states are never read); `None` without a head.
    pub log_flow: Option<Tensor>,
    /// Whether the last state of each entry is terminal `[B]`.
    pub terminal: Vec<bool>,
}

impl Balance {
    /// The device of the tensors.
    pub fn device(&self) -> &Device {
        self.log_pf.device()
    }

    /// Transitions of each entry `[B]`.
    pub fn lengths(&self) -> Cow<'_, [usize]> {
        match &self.layout {
            Layout::Packed { lengths, .. } => Cow::Borrowed(lengths),
            Layout::EntryMajor { steps } | Layout::TimeMajor { steps } => {
                Cow::Owned(vec![*steps; self.batch])
            }
        }
    }

    /// Position in the `[M]` tensors of transition t of every entry, entry by
    /// entry: `transition_positions()[b][t]`.
    pub fn transition_positions(&self) -> Vec<Vec<usize>> {
        self.positions(0)
    }

    /// Row in the `[N]` states of state k of every entry: `state_rows()[b][k]`.
    pub fn state_rows(&self) -> Vec<Vec<usize>> {
        self.positions(1)
    }

    /// The layout's positions of `n_b + extra` items per entry: its
    /// transitions (`extra` 0) or its states (`extra` 1).
    fn positions(&self, extra: usize) -> Vec<Vec<usize>> {
        let b_dim = self.batch;
        match &self.layout {
            Layout::Packed { lengths, .. } => {
                let mut start = 0;
                lengths
                    .iter()
                    .map(|&n| {
                        start += n + extra;
                        (start - n - extra..start).collect()
                    })
                    .collect()
            }
            Layout::EntryMajor { steps } => {
                let per = steps + extra;
                (0..b_dim)
                    .map(|b| (0..per).map(|k| b * per + k).collect())
                    .collect()
            }
            Layout::TimeMajor { steps } => (0..b_dim)
                .map(|b| (0..steps + extra).map(|k| k * b_dim + b).collect())
                .collect(),
        }
    }

    /// Per-entry sums of a per-transition quantity: `[M] -> [B]`.
    pub fn sum_per_entry(&self, x: &Tensor) -> Result<Tensor> {
        match &self.layout {
            Layout::Packed { segment, .. } => matmul(segment, &x.unsqueeze(1)?)?.squeeze(1),
            Layout::EntryMajor { steps } => x.reshape((self.batch, *steps))?.sum(1),
            Layout::TimeMajor { steps } => x.reshape((*steps, self.batch))?.sum(0),
        }
    }

    /// A per-entry quantity at each of the entry's transitions: `[B] -> [M]`.
    pub fn per_transition(&self, v: &Tensor) -> Result<Tensor> {
        let b = self.batch;
        match &self.layout {
            Layout::Packed { segment, .. } => matmul(&segment.t()?, &v.unsqueeze(1)?)?.squeeze(1),
            Layout::EntryMajor { steps } => v
                .unsqueeze(1)?
                .broadcast_as((b, *steps))?
                .contiguous()?
                .flatten_all(),
            Layout::TimeMajor { steps } => v
                .unsqueeze(0)?
                .broadcast_as((*steps, b))?
                .contiguous()?
                .flatten_all(),
        }
    }

    /// Rows of s_t and s_{t+1} of every transition `[M]` u32, and `[M]` f32
    /// 1 where the transition reaches the terminal state of its entry.
    pub fn transition_rows(&self) -> Result<(Tensor, Tensor, Tensor)> {
        if let Layout::Packed {
            src_row,
            next_row,
            ends,
            ..
        } = &self.layout
        {
            return Ok((src_row.clone(), next_row.clone(), ends.clone()));
        }
        let m: usize = self.lengths().iter().sum();
        let (mut src, mut next, mut ends) = (vec![0u32; m], vec![0u32; m], vec![0f32; m]);
        for ((pos, rows), &terminal) in self
            .transition_positions()
            .iter()
            .zip(self.state_rows())
            .zip(&self.terminal)
        {
            for (t, &p) in pos.iter().enumerate() {
                src[p] = rows[t] as u32;
                next[p] = rows[t + 1] as u32;
                ends[p] = (terminal && t + 1 == pos.len()) as u8 as f32;
            }
        }
        let dev = self.device();
        Ok((
            Tensor::from_vec(src, m, dev)?,
            Tensor::from_vec(next, m, dev)?,
            Tensor::from_vec(ends, m, dev)?,
        ))
    }

    /// The fixed part of every transition as a `[M]` f32 tensor (`None` when empty).
    pub fn fixed_tensor(&self) -> Result<Option<Tensor>> {
        if self.fixed.is_empty() {
            return Ok(None);
        }
        let v: Vec<f32> = self.fixed.iter().map(|&x| x as f32).collect();
        Ok(Some(Tensor::from_vec(v, self.fixed.len(), self.device())?))
    }

    /// Sum of the fixed part over each entry `[B]`, f64, in transition order
    /// (zeros when there is none).
    pub fn fixed_per_entry(&self) -> Vec<f64> {
        if self.fixed.is_empty() {
            return vec![0.0; self.batch];
        }
        self.transition_positions()
            .iter()
            .map(|pos| pos.iter().map(|&p| self.fixed[p]).sum())
            .collect()
    }

    /// The whole log P_F - log P_B of every transition `[M]`: network
    /// parts, then the host constants.
    pub fn log_ratio(&self) -> Result<Tensor> {
        let mut r = match &self.log_pb {
            Some(pb) => (&self.log_pf - pb)?,
            None => self.log_pf.clone(),
        };
        if let Some(f) = self.fixed_tensor()? {
            r = (r + f)?;
        }
        Ok(r)
    }

    /// Which entry each transition belongs to and whether it is its entry's
    /// last, in `[M]` order (for per-transition residuals).
    pub fn transition_owners(&self) -> (Vec<usize>, Vec<bool>) {
        let m: usize = self.lengths().iter().sum();
        let (mut owner, mut last) = (vec![0; m], vec![false; m]);
        for (b, pos) in self.transition_positions().iter().enumerate() {
            for (t, &p) in pos.iter().enumerate() {
                owner[p] = b;
                last[p] = t + 1 == pos.len();
            }
        }
        (owner, last)
    }
}

/// A host vector as a `[len]` f32 tensor.
pub fn f32_tensor(v: &[f64], device: &Device) -> Result<Tensor> {
    let n = v.len();
    Tensor::from_vec(v.iter().map(|&x| x as f32).collect::<Vec<f32>>(), n, device)
}
