//! The seam of `runner sample` (`train::sample`): how a family writes
//! samples of a trained network as a table.

use super::family::Family;
use super::RunError;

/// Samples of a trained sampler as a table (`runner sample`): the column
/// names and one row of cells per sample.
pub struct SampleTable {
    /// Column names.
    pub columns: Vec<String>,
    /// One row per sample, a cell per column.
    pub rows: Vec<Vec<String>>,
}

/// How a family writes samples of a trained network (`runner sample`).
pub trait DrawSamples: Family {
    /// `n` fresh samples of `net` without exploration, drawn with `rng` in
    /// chunks of the evaluation batch size: each sample's terminal state,
    /// its reward, and with `log_pf` the log P_F of the trajectory that
    /// produced it.
    fn draw_samples(
        &self,
        net: &Self::Net,
        n: usize,
        log_pf: bool,
        rng: &mut crate::rng::Rng,
    ) -> Result<SampleTable, RunError>;
}
