//! The replay seam: a family's buffer, as the trainer drives it — a batch
//! replayed for a `buffer` source, and every learned batch remembered
//! (fresh batches enter, replayed ones may update their priorities).

use super::family::Family;
use super::RunError;
use crate::behaviour::teacher::Signals;

/// A family's replay buffer.
pub trait Replay: Family {
    /// A batch replayed from the buffer; `None` when there is no buffer or it
    /// cannot give a batch yet.
    fn replay(&mut self) -> Result<Option<Self::Batch>, RunError>;

    /// Bookkeeping after a batch: a fresh batch enters the buffer, a
    /// replayed one may update its entries' priorities (`delta`: the
    /// student's residuals, `signals`: its teacher signals). A family whose
    /// local search feeds the buffer (diffusion's MALA) runs it here.
    fn remember(&mut self, batch: Self::Batch, fresh: bool, delta: &[f32], signals: &Signals);
}
