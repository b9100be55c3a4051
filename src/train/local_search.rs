//! The local-search seam of the training loop: what a `+ls` source of the
//! behaviour's schedule does beside plain sampling. The loop asks the
//! family how many fresh trajectories such a batch starts from, samples
//! them ([`Family::sample`]), lets the family refine them before they are
//! learned ([`LocalSearch::refine`]: back-and-forth on the discrete tasks,
//! [`crate::search::back_and_forth`]), and once the batch is remembered
//! lets it move its buffer ([`LocalSearch::search_buffer`]: MALA on the
//! energies, [`crate::search::mala`]). A family without local search
//! configured keeps every default: its `+ls` batches are plain batches.

use super::family::{Draw, Family, Fresh};
use super::sampler::Sampler;
use super::RunError;

/// A family's local search, as the loop drives it.
pub trait LocalSearch: Family {
    /// How many fresh trajectories a `+ls` batch of `batch` starts from
    /// (default `batch`: the search refines in place).
    fn search_start(&self, batch: usize) -> usize {
        batch
    }

    /// `fresh` refined by `net` before it is learned (`student` scores a
    /// teacher's batch where the family supports it); the proposals' reward
    /// calls are added to the batch's. Default: unchanged.
    fn refine(
        &mut self,
        _net: &Self::Net,
        fresh: Fresh<Self::Batch>,
        _draw: Draw,
        _student: &Sampler<Self::Net>,
    ) -> Result<Fresh<Self::Batch>, RunError> {
        Ok(fresh)
    }

    /// After a `+ls` batch is remembered: move the buffer's samples.
    /// Default: nothing.
    fn search_buffer(&mut self) -> Result<(), RunError> {
        Ok(())
    }
}
