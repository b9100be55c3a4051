//! The hypergrid reward of Bengio et al. 2021 ("Flow network based generative
//! models for non-iterative diverse candidate generation"), with x_i =
//! s_i/(H-1) and a_i = |x_i - 0.5| (docs/grid.md "Reward"):
//!
//! R(s) = R0 + R1 prod_i[a_i > 0.25] + R2 prod_i[0.3 < a_i < 0.4].
//!
//! The comparisons are strict and exact: a_i = |2 s_i - (H-1)| / (2 (H-1)) is
//! compared in integers, so a coordinate on a boundary (a_i = 0.25, 0.3 or
//! 0.4 exactly, e.g. s_i = 2 on H = 21) is outside the region, whatever the
//! rounding of s_i/(H-1) in floating point would say.

use super::{GridConfig, GridReward, GridRewardFamily};
use crate::check::Invalid;

/// Default R0.
pub const R0: f64 = 0.1;
/// Default R1.
pub const R1: f64 = 0.5;
/// Default R2.
pub const R2: f64 = 2.0;

/// The original hypergrid reward with its three levels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Original {
    /// Reward of every state (> 0).
    pub r0: f64,
    /// Added in the outer region (every a_i > 0.25).
    pub r1: f64,
    /// Added in the band (every 0.3 < a_i < 0.4).
    pub r2: f64,
}

impl Original {
    /// Whether coordinate `c` of a grid of side `horizon` lies in the outer
    /// region (a > 0.25) and in the band (0.3 < a < 0.4): with h1 = H-1 and
    /// m = |2c - h1| (a = m / (2 h1)), a > 0.25 is 2m > h1 and 0.3 < a < 0.4
    /// is 3 h1 < 5m < 4 h1.
    fn regions(c: u16, horizon: usize) -> (bool, bool) {
        let h1 = horizon as u64 - 1;
        let m = (2 * c as u64).abs_diff(h1);
        (2 * m > h1, 3 * h1 < 5 * m && 5 * m < 4 * h1)
    }
}

impl GridReward for Original {
    fn reward(&self, s: &[u16], horizon: usize) -> f64 {
        let (mut outer, mut band) = (true, true);
        for &c in s {
            let (o, b) = Self::regions(c, horizon);
            outer &= o;
            band &= b;
        }
        let mut r = self.r0;
        if outer {
            r += self.r1;
        }
        if band {
            r += self.r2;
        }
        r
    }
}

impl GridRewardFamily for Original {
    const KEYS: &'static [&'static str] = &["r0", "r1", "r2"];

    fn from_config(cfg: &GridConfig) -> Result<Self, Invalid> {
        let r0 = cfg.r0.unwrap_or(R0);
        if !(r0.is_finite() && r0 > 0.0) {
            return Err(Invalid::new(
                "env.r0",
                format!(
                    "must be a finite number > 0 (every state's reward is at least R0), found {r0}"
                ),
            ));
        }
        for (key, v) in [
            ("env.r1", cfg.r1.unwrap_or(R1)),
            ("env.r2", cfg.r2.unwrap_or(R2)),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Invalid::new(
                    key,
                    format!("must be a finite number >= 0, found {v}"),
                ));
            }
        }
        Ok(Original {
            r0,
            r1: cfg.r1.unwrap_or(R1),
            r2: cfg.r2.unwrap_or(R2),
        })
    }

    fn fill_defaults(cfg: &mut GridConfig) {
        cfg.r0.get_or_insert(R0);
        cfg.r1.get_or_insert(R1);
        cfg.r2.get_or_insert(R2);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Grid, GridConfig, GridRewardKind};

    fn original(ndim: usize, horizon: usize) -> GridConfig {
        GridConfig {
            reward: GridRewardKind::Original,
            ..GridConfig::new(ndim, horizon)
        }
    }

    /// Hand-computed rewards with the defaults R0 = 0.1, R1 = 0.5, R2 = 2 on
    /// H = 32 (a = |s/31 - 0.5|): the corner s = 0 has a = 0.5 > 0.25 in
    /// every coordinate and is outside the band (0.5 >= 0.4): R0 + R1 = 0.6;
    /// s_i = 5 has a = 0.339 (in the band, and > 0.25); the centre 15 has
    /// a = 0.016: R0 alone.
    #[test]
    fn rewards_at_named_states() {
        let g = Grid::new(&original(2, 32));
        for (s, want) in [
            ([0u16, 0], 0.6),
            ([31, 0], 0.6),
            ([5, 5], 2.6),
            ([26, 5], 2.6),
            ([15, 15], 0.1),
            ([16, 16], 0.1),
            ([0, 5], 0.6), // outer in both, band only in one
            ([5, 15], 0.1),
        ] {
            assert!(
                (g.reward(&s) - want).abs() < 1e-12,
                "{s:?}: {}",
                g.reward(&s)
            );
        }
        assert!(g.is_goal(&[5, 5]) && g.is_goal(&[26, 4]) && !g.is_goal(&[0, 0]));
        // d = 4: the state of the score example.
        let g4 = Grid::new(&original(4, 32));
        assert!((g4.reward(&[0, 0, 31, 5]) - 0.6).abs() < 1e-12);
        assert!((g4.reward(&[4, 27, 6, 25]) - 2.6).abs() < 1e-12);
        // Own constants and beta = 2: (0.2 + 1 + 3)^2 in the band.
        let c = GridConfig {
            r0: Some(0.2),
            r1: Some(1.0),
            r2: Some(3.0),
            beta: 2.0,
            ..original(2, 32)
        };
        let g = Grid::new(&c);
        assert!((g.reward(&[5, 5]) - 4.2f64.powi(2)).abs() < 1e-12);
        assert!((g.reward(&[15, 0]) - 0.04).abs() < 1e-12);
    }

    /// A coordinate exactly on a boundary is outside: on H = 21, s = 2 has
    /// a = 0.4, s = 4 has a = 0.3 and s = 5 has a = 0.25 exactly; s = 3
    /// (a = 0.35) is in the band.
    #[test]
    fn boundaries_are_strict_and_exact() {
        let g = Grid::new(&original(1, 21));
        assert!((g.reward(&[2]) - 0.6).abs() < 1e-12);
        assert!((g.reward(&[3]) - 2.6).abs() < 1e-12);
        assert!((g.reward(&[4]) - 0.6).abs() < 1e-12);
        assert!((g.reward(&[5]) - 0.1).abs() < 1e-12);
        // The mirror images: 18 (a = 0.4) and 17 (a = 0.35).
        assert!((g.reward(&[18]) - 0.6).abs() < 1e-12);
        assert!((g.reward(&[17]) - 2.6).abs() < 1e-12);
    }

    /// Goals and the target on small grids, by hand. H = 8 (a = |2s - 7|/14):
    /// outer s in {0, 1, 6, 7}, band s in {1, 6}: 2^2 = 4 goals (R = 2.6);
    /// the terminal set has 63 states (not (7,7)), 15 of them outer, so
    /// Z = 63 * 0.1 + 15 * 0.5 + 4 * 2 = 21.8. H = 6 has no band: the goals
    /// are the outer states of the terminal set, {0, 1, 4, 5}^2 without
    /// (5,5): 15 (R = 0.6). H = 32: the band is s in {4, 5, 6, 25, 26, 27},
    /// 36 goals for d = 2 and 1296 for d = 4.
    #[test]
    fn goal_counts_by_hand() {
        let g = Grid::new(&original(2, 8));
        assert_eq!(g.n_goals, 4);
        assert_eq!(g.true_density.len(), 63);
        let z: f64 = g.terminal_reward.iter().sum();
        assert!((z - 21.8).abs() < 1e-9, "{z}");
        let i = g.terminal_index(&[1, 6]).unwrap();
        assert!((g.true_density[i] - 2.6 / 21.8).abs() < 1e-12);
        let g = Grid::new(&original(2, 6));
        assert_eq!(g.n_goals, 15);
        assert!(g.is_goal(&[5, 4]) && !g.is_goal(&[5, 5]) && !g.is_goal(&[2, 0]));
        assert_eq!(Grid::new(&original(2, 32)).n_goals, 36);
        assert_eq!(Grid::new(&original(4, 32)).n_goals, 1296);
    }
}
