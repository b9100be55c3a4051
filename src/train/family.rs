//! The seam between the one training loop and an environment family: what
//! truly differs between the discrete and the continuous samplers — their
//! network, how a batch is sampled and packed, and the objectives' view of
//! it (log P_F, log P_B, log F(s)). The objectives themselves are the
//! family-neutral [`crate::objective`]; the other concerns the trainer
//! drives are seams of their own: replay ([`super::replay::Replay`]),
//! local search ([`super::local_search::LocalSearch`]),
//! evaluation ([`super::evaluate::Evaluator`]), checkpoint state
//! ([`super::checkpoint::Checkpointed`]), `runner sample`
//! ([`super::sample::DrawSamples`]), and the behaviour's hooks
//! ([`crate::behaviour::hooks`]). One adapter per family implements them:
//! `train::grid`, `train::sequence` and `train::diffusion`.

use std::borrow::Cow;

use super::sampler::{Policy, Sampler};
use super::RunError;
use crate::behaviour::hooks::Teaching;
use crate::objective::balance::Balance;

/// A fresh batch and what producing it cost.
pub struct Fresh<B> {
    /// The trajectories.
    pub batch: B,
    /// Reward (oracle) calls made for it, local-search proposals included.
    pub reward_calls: u64,
}

/// What the loop asks of a fresh batch.
#[derive(Debug, Clone, Copy)]
pub struct Draw {
    /// The training step the batch is for (the diffusion exploration's schedule).
    pub step: u64,
    /// How many trajectories to sample.
    pub size: usize,
    /// The batch is for local search ([`super::local_search::LocalSearch`]).
    pub local_search: bool,
    /// The teacher samples the batch (with a teacher): local search scores
    /// by the student's teacher reward where the family supports it.
    pub by_teacher: bool,
}

/// What one environment family does inside the one training loop.
pub trait Family: Sync {
    /// The policy network of student and teacher.
    type Net: Policy;
    /// A batch of trajectories.
    type Batch: Sync;
    /// The tensors of a batch for the objective (built once, used by student and teacher).
    type Packed: Sync;

    /// A fresh network, weights drawn from `rng`.
    fn new_net(&self, rng: &mut crate::rng::Rng) -> Result<Self::Net, RunError>;

    /// A fresh batch of `draw.size` trajectories sampled by `net` (with the
    /// behaviour's epsilon), as `draw` asks (`student` is the student, whose
    /// state some families' teacher batches depend on).
    fn sample(
        &mut self,
        net: &Self::Net,
        draw: Draw,
        student: &Sampler<Self::Net>,
    ) -> Result<Fresh<Self::Batch>, RunError>;

    /// The tensors of `batch`.
    fn pack(&self, batch: &Self::Batch) -> Result<Self::Packed, RunError>;

    /// Number of states of `batch` (the cost driver, for the benchmark).
    fn n_states(&self, batch: &Self::Batch) -> usize;

    /// log R of every entry of `batch` `[B]`.
    fn log_rewards<'b>(&self, batch: &'b Self::Batch) -> Cow<'b, [f64]>;

    /// R of every entry of `batch` `[B]` (linear, for the teacher reward's
    /// R^alpha): by default exp of [`Family::log_rewards`].
    fn rewards<'b>(&self, batch: &'b Self::Batch) -> Cow<'b, [f64]> {
        Cow::Owned(self.log_rewards(batch).iter().map(|lr| lr.exp()).collect())
    }

    /// The objectives' view of `packed` under `net` (log P_F, log P_B, log
    /// F(s) and the layout of the entries).
    fn balance(&self, net: &Self::Net, packed: &Self::Packed) -> Result<Balance, RunError>;

    /// The family's data for the teacher on `batch` (see [`Teaching`]): by
    /// default the teacher trains on the student's tensors, every entry,
    /// and the signals are the objective's.
    fn teaching<'a>(
        &'a self,
        _batch: &'a Self::Batch,
        packed: &'a Self::Packed,
    ) -> Teaching<'a, Self::Packed> {
        Teaching::all(packed)
    }
}
