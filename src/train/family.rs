//! The seam between the one training loop and an environment family: what a
//! family does differently (sampling and rebuilding batches, the
//! objectives' view of a batch — log P_F, log P_B, log F(s) — replay, local
//! search, evaluation). The objectives themselves are the family-neutral
//! [`crate::objective`]. One adapter per family implements [`Family`]:
//! `train::grid`, `train::sequence` and `train::diffusion`.

use std::borrow::Cow;

use candle_core::Tensor;

use super::sampler::{Policy, Sampler};
use super::RunError;
use crate::behaviour::teacher::Signals;
use crate::behaviour::teacher::TeacherReward;
use crate::metrics::Metric;
use crate::objective::balance::Balance;
use crate::objective::Trained;
use crate::optim::Adam;

/// A fresh batch and what producing it cost.
pub struct Fresh<B> {
    /// The trajectories.
    pub batch: B,
    /// Reward (oracle) calls made for it, local-search proposals included.
    pub reward_calls: u64,
}

/// Samples of a trained sampler as a table (`runner sample`): the column
/// names and one row of cells per sample.
pub struct SampleTable {
    /// Column names.
    pub columns: Vec<String>,
    /// One row per sample, a cell per column.
    pub rows: Vec<Vec<String>>,
}

/// What the loop passes to an evaluation.
pub struct Counters {
    /// Reward calls for training so far.
    pub reward_calls: u64,
    /// Student optimisation steps so far.
    pub grad_steps: u64,
}

/// What one environment family does inside the one training loop.
pub trait Family: Sync {
    /// The policy network of student and teacher.
    type Net: Policy;
    /// A batch of trajectories.
    type Batch: Sync;
    /// The tensors of a batch for the objective (built once, used by student and teacher).
    type Packed: Sync;

    /// Name of the first column of `metrics.csv` (`step`, `round`, `iteration`).
    const STEP_COLUMN: &'static str;
    /// Name of the column of the learned log Z.
    const LOG_Z_COLUMN: &'static str = "log_z";
    /// The family's columns of `metrics.csv`, after `loss, teacher_loss,
    /// log_z` and before `wall_s`.
    const METRICS: &'static [&'static str];

    /// A fresh network, weights drawn from `rng`.
    fn new_net(&self, rng: &mut crate::rng::Rng) -> Result<Self::Net, RunError>;

    /// Optimisers of auxiliary modules trained with the student's loss and
    /// stepped on its gradients (GAFN's predictor); none by default.
    fn student_aux(&self) -> Result<Vec<Adam>, RunError> {
        Ok(Vec::new())
    }

    /// Called before the batches of training step `i` (nothing by default).
    fn start_step(&mut self, _i: u64) {}

    /// A fresh batch sampled by `net` (with the behaviour's epsilon), refined
    /// by local search when `local_search` (scored by the teacher reward of
    /// `student` when `by_teacher`, where the family supports it); the family
    /// records its discoveries.
    fn sample(
        &mut self,
        net: &Self::Net,
        local_search: bool,
        by_teacher: bool,
        student: &Sampler<Self::Net>,
    ) -> Result<Fresh<Self::Batch>, RunError>;

    /// A batch replayed from the buffer; `None` when there is no buffer or it
    /// cannot give a batch yet.
    fn replay(&mut self) -> Result<Option<Self::Batch>, RunError>;

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

    /// The student's residuals and loss: by default its objective on
    /// [`Family::balance`] towards log R (GAFN augments it).
    fn student_loss(
        &self,
        student: &Sampler<Self::Net>,
        packed: &Self::Packed,
        batch: &Self::Batch,
    ) -> Result<Trained, RunError> {
        student.train_loss(
            &self.balance(&student.net, packed)?,
            &self.log_rewards(batch),
        )
    }

    /// The teacher's loss on `batch` towards `target` `[B]`, or `None` to
    /// skip its step: by default its objective on the student's batch.
    fn teacher_loss(
        &self,
        teacher: &Sampler<Self::Net>,
        packed: &Self::Packed,
        _batch: &Self::Batch,
        target: &[f64],
    ) -> Result<Option<Tensor>, RunError> {
        let balance = self.balance(&teacher.net, packed)?;
        Ok(Some(teacher.train_loss(&balance, target)?.loss))
    }

    /// Family rules applied to the teacher signals of `batch` computed from
    /// the student's residuals (the diffusion energies' threshold); none by
    /// default.
    fn adjust_signals(&self, _batch: &Self::Batch, _signals: &mut Signals) {}

    /// The teacher's target log-reward of every entry of `batch` `[B]`: by
    /// default from each entry's signal and log R.
    fn teacher_target(
        &self,
        reward: &TeacherReward,
        signals: &Signals,
        batch: &Self::Batch,
    ) -> Vec<f64> {
        signals
            .per_entry
            .iter()
            .zip(self.log_rewards(batch).iter())
            .map(|(&s, &lr)| reward.log_target(s, lr))
            .collect()
    }

    /// Bookkeeping after a batch: a fresh batch enters the buffer, a
    /// replayed one may update its entries' priorities.
    fn remember(&mut self, batch: Self::Batch, fresh: bool, delta: &[f32], signals: &Signals);

    /// Evaluate `student` after `step` steps: the values of
    /// [`Family::METRICS`], named and in that order.
    fn evaluate(
        &mut self,
        step: u64,
        student: &Sampler<Self::Net>,
        counters: &Counters,
    ) -> Result<Vec<Metric>, RunError>;

    /// The family's training state for a checkpoint, encoded
    /// ([`super::checkpoint::encode`]): everything sampling, replay,
    /// bookkeeping and evaluation change (RNG streams, the replay buffer,
    /// discoveries, counters). What the family builds from its plan alone is
    /// left out; networks are the samplers'.
    fn save_state(&self) -> Result<Vec<u8>, RunError>;

    /// Restore what [`Family::save_state`] wrote, over a family just built
    /// from the same plan.
    fn load_state(&mut self, state: &[u8]) -> Result<(), RunError>;

    /// `n` fresh samples of `net` without exploration, drawn with `rng` in
    /// chunks of the evaluation batch size (`runner sample`): each sample's
    /// terminal state, its reward, and with `log_pf` the log P_F of the
    /// trajectory that produced it.
    fn draw_samples(
        &self,
        net: &Self::Net,
        n: usize,
        log_pf: bool,
        rng: &mut crate::rng::Rng,
    ) -> Result<SampleTable, RunError>;

    /// A short progress message, e.g. `goals 12`.
    fn progress(&self) -> String;

    /// The run's headline result in words.
    fn headline(&self) -> String;
}
