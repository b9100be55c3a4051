//! The evaluation seam: a family's columns of `metrics.csv`, the values of
//! one evaluation of the student, and its words for the progress bar and
//! the run's summary.

use super::family::Family;
use super::sampler::Sampler;
use super::RunError;
use crate::metrics::Metric;

/// What the loop passes to an evaluation.
pub struct Counters {
    /// Reward calls for training so far.
    pub reward_calls: u64,
    /// Student optimisation steps so far.
    pub grad_steps: u64,
}

/// How a family evaluates its student.
pub trait Evaluator: Family {
    /// Name of the first column of `metrics.csv` (`step`, `round`, `iteration`).
    const STEP_COLUMN: &'static str;
    /// Name of the column of the learned log Z.
    const LOG_Z_COLUMN: &'static str = "log_z";
    /// The family's columns of `metrics.csv`, after `loss, teacher_loss,
    /// log_z` and before `wall_s`.
    const METRICS: &'static [&'static str];

    /// Evaluate `student` after `step` steps: the values of
    /// [`Evaluator::METRICS`], named and in that order.
    fn evaluate(
        &mut self,
        step: u64,
        student: &Sampler<Self::Net>,
        counters: &Counters,
    ) -> Result<Vec<Metric>, RunError>;

    /// Record what a fresh batch (after its local search) discovered; its
    /// counts go into the next evaluation. Default: nothing.
    fn observe(&mut self, _batch: &Self::Batch) {}

    /// A short progress message, e.g. `goals 12`.
    fn progress(&self) -> String;

    /// The run's headline result in words.
    fn headline(&self) -> String;
}
