//! The deceptive reward of the paper (docs/grid.md "Reward"): high in a ring
//! of small cells near every corner, a deceptive plateau in the middle, and
//! nearly nothing in the corners. Its constants are fixed: it has no keys.

use super::{GridConfig, GridReward, GridRewardFamily};
use crate::check::Invalid;

/// R(s) = -0.1 prod[u_i > 0.2] + 2 prod[0.6 < u_i < 0.8] + 0.1 + 1e-5,
/// u_i = |2 s_i / (H-1) - 1|.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Deceptive;

impl GridReward for Deceptive {
    fn reward(&self, s: &[u16], horizon: usize) -> f64 {
        let (mut outer, mut ring) = (true, true);
        for &c in s {
            let u = (c as f64 / (horizon - 1) as f64 * 2.0 - 1.0).abs();
            outer &= u > 0.2;
            ring &= u > 0.6 && u < 0.8;
        }
        -0.1 * (outer as u8 as f64) + 2.0 * (ring as u8 as f64) + 0.1 + 1e-5
    }
}

impl GridRewardFamily for Deceptive {
    const KEYS: &'static [&'static str] = &[];

    fn from_config(_cfg: &GridConfig) -> Result<Self, Invalid> {
        Ok(Deceptive)
    }
}
