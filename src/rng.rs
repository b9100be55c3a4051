//! Seeded random-number streams.
//!
//! Every random draw of a run comes from one of these streams, so a run is a
//! pure function of its config and seed (candle's own CPU RNG cannot be
//! seeded, so no tensor randomness is used anywhere). Each concern gets its own
//! stream: changing how many numbers one concern draws (for example the number
//! of evaluation samples) does not shift the numbers any other concern sees.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The generator type used everywhere.
pub type Rng = ChaCha8Rng;

/// The named random streams of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Initial weights of the student network.
    InitStudent = 1,
    /// Initial weights of the teacher network.
    InitTeacher = 2,
    /// Actions of training rollouts (student and teacher).
    Sampling = 3,
    /// Actions of evaluation rollouts.
    Eval = 4,
    /// Backward trajectories (replay) and buffer draws.
    Buffer = 5,
    /// Local search.
    LocalSearch = 6,
    /// Auxiliary networks (e.g. GAFN's random network distillation).
    InitAux = 7,
    /// Exact samples of a target and their backward trajectories (evaluation data).
    ExactSamples = 8,
    /// Samples of a trained sampler drawn by `runner sample` (seeded by its `--seed`).
    Export = 9,
}

/// The streams a family draws from while it trains and evaluates, kept
/// together so that a checkpoint saves (and a resume restores) them whole.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Streams {
    /// [`Stream::Sampling`].
    pub sampling: Rng,
    /// [`Stream::Eval`].
    pub eval: Rng,
    /// [`Stream::Buffer`].
    pub buffer: Rng,
    /// [`Stream::LocalSearch`].
    pub local_search: Rng,
}

impl Streams {
    /// The streams of the run seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            sampling: stream(seed, Stream::Sampling),
            eval: stream(seed, Stream::Eval),
            buffer: stream(seed, Stream::Buffer),
            local_search: stream(seed, Stream::LocalSearch),
        }
    }
}

/// A generator for `stream` of the run seeded with `seed`.
pub fn stream(seed: u64, stream: Stream) -> Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream as u64);
    rng
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng as _;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: u64 = stream(7, Stream::Sampling).random();
        let b: u64 = stream(7, Stream::Sampling).random();
        let c: u64 = stream(7, Stream::Eval).random();
        let d: u64 = stream(8, Stream::Sampling).random();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }
}
