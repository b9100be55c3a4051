//! Metrics of the grid (docs/grid.md "Metrics"): goals found and empirical L1 errors.

use std::collections::VecDeque;

use rand::Rng as _;

use crate::envs::grid::Grid;
use crate::envs::Trajectories;
use crate::rng::Rng;

/// Distinct goals visited by freshly sampled training trajectories, and the
/// window of the most recent training terminal states.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct GridDiscovery {
    found: Vec<bool>,
    n_found: usize,
    window: VecDeque<u32>,
    window_size: usize,
}

impl GridDiscovery {
    /// Tracks `grid`'s terminal set with a window of `window_size` samples.
    pub fn new(grid: &Grid, window_size: usize) -> Self {
        Self {
            found: vec![false; grid.terminal_reward.len()],
            n_found: 0,
            window: VecDeque::with_capacity(window_size),
            window_size,
        }
    }

    /// Record the terminal states of freshly sampled trajectories.
    pub fn record(&mut self, grid: &Grid, trajs: &Trajectories) {
        for b in 0..trajs.len() {
            let x = trajs.terminal(b);
            let Some(i) = grid.terminal_index(x) else {
                continue;
            };
            if grid.is_goal(x) && !self.found[i] {
                self.found[i] = true;
                self.n_found += 1;
            }
            if self.window.len() == self.window_size {
                self.window.pop_front();
            }
            self.window.push_back(i as u32);
        }
    }

    /// Number of distinct goals found so far.
    pub fn n_goals_found(&self) -> usize {
        self.n_found
    }

    /// `(empirical_l1, empirical_w_l1)` of the window (NaN when empty).
    pub fn window_l1(&self, grid: &Grid) -> (f64, f64) {
        empirical_l1(grid, self.window.iter().map(|&i| i as usize))
    }
}

/// `(L1, weighted L1)` between the empirical distribution of `samples`
/// (terminal-set indices) and p(x): see [`l1_to_target`]. NaN for no samples.
pub fn empirical_l1(grid: &Grid, samples: impl Iterator<Item = usize>) -> (f64, f64) {
    let mut counts = vec![0u64; grid.true_density.len()];
    let mut n = 0u64;
    for i in samples {
        counts[i] += 1;
        n += 1;
    }
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    l1_to_target(grid, counts.iter().map(|&c| c as f64 / n as f64))
}

/// `(L1, weighted L1)` between a distribution q over the terminal set (in
/// the order of `true_density`) and p(x): the mean over the terminal set of
/// |q(x) - p(x)|, and of |q(x) - p(x)| * R(x).
pub fn l1_to_target(grid: &Grid, q: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut l1, mut wl1) = (0.0, 0.0);
    for ((q, &p), &r) in q.zip(&grid.true_density).zip(&grid.terminal_reward) {
        let diff = (q - p).abs();
        l1 += diff;
        wl1 += diff * r;
    }
    let m = grid.true_density.len() as f64;
    (l1 / m, wl1 / m)
}

/// `n` independent draws (indices) from the distribution `q` (normalised
/// here: its sum may be off by rounding), one uniform of `rng` each, by
/// inverse CDF.
pub fn sample_from(q: &[f64], n: usize, rng: &mut Rng) -> Vec<usize> {
    let mut cdf = Vec::with_capacity(q.len());
    let mut acc = 0.0;
    for &p in q {
        acc += p;
        cdf.push(acc);
    }
    (0..n)
        .map(|_| {
            let u = rng.random::<f64>() * acc;
            cdf.partition_point(|&c| c <= u).min(q.len() - 1)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envs::grid::GridConfig;

    /// d=1, H=3: terminal set {0, 1, 2}; R = (1e-5, 0.10001, 1e-5)
    /// (u = 1, 0, 1: the outer term cancels the 0.1 at both ends).
    #[test]
    fn l1_hand_case() {
        let g = Grid::new(&GridConfig::new(1, 3));
        let z: f64 = 0.10001 + 2e-5;
        let p: [f64; 3] = [1e-5 / z, 0.10001 / z, 1e-5 / z];
        // Samples: two of state 0, two of state 1 -> p_hat = (0.5, 0.5, 0).
        let (l1, wl1) = empirical_l1(&g, [0usize, 0, 1, 1].into_iter());
        let diffs = [(0.5 - p[0]).abs(), (0.5 - p[1]).abs(), p[2]];
        assert!((l1 - diffs.iter().sum::<f64>() / 3.0).abs() < 1e-12);
        let w = diffs[0] * 1e-5 + diffs[1] * 0.10001 + diffs[2] * 1e-5;
        assert!((wl1 - w / 3.0).abs() < 1e-12);
        assert!(empirical_l1(&g, std::iter::empty()).0.is_nan());
    }

    /// The L1 of a distribution equals the empirical L1 of samples with
    /// those frequencies; inverse-CDF draws land where the mass is (a zero
    /// entry never, a mass of 0.75 about 3/4 of the time).
    #[test]
    fn exact_l1_and_draws() {
        let g = Grid::new(&GridConfig::new(1, 3));
        let q = [0.5, 0.5, 0.0];
        assert_eq!(
            l1_to_target(&g, q.into_iter()),
            empirical_l1(&g, [0usize, 0, 1, 1].into_iter())
        );
        let mut rng = crate::rng::stream(0, crate::rng::Stream::Eval);
        let draws = sample_from(&[0.25, 0.0, 0.75], 40_000, &mut rng);
        assert!(draws.iter().all(|&i| i != 1));
        let share = draws.iter().filter(|&&i| i == 2).count() as f64 / 40_000.0;
        // 4.5 standard errors of a share of 0.75 in 40,000 draws.
        assert!(
            (share - 0.75).abs() < 4.5 * (0.75f64 * 0.25 / 40_000.0).sqrt(),
            "{share}"
        );
        // Unnormalised input is normalised.
        let draws = sample_from(&[2.0, 2.0], 1000, &mut rng);
        assert!(draws.contains(&0) && draws.contains(&1));
    }

    #[test]
    fn discovery_counts_distinct_goals_and_windows() {
        let g = Grid::new(&GridConfig::new(2, 32));
        let mut d = GridDiscovery::new(&g, 2);
        let mut t = Trajectories {
            state_dim: 2,
            ..Default::default()
        };
        // Two trajectories ending (by stop) at goal (4,4) and one at (0,0).
        for _ in 0..2 {
            // The path (0,0)->(1,0)->(1,1)->...->(4,4), then stop.
            let (mut states, mut actions) = (Vec::new(), Vec::new());
            let mut s = [0u16, 0];
            states.extend_from_slice(&s);
            for k in 0..8 {
                let a = k % 2;
                s[a] += 1;
                states.extend_from_slice(&s);
                actions.push(a as u32);
            }
            states.extend_from_slice(&s);
            actions.push(2);
            t.push(&states, &actions, g.reward(&s));
        }
        t.push(&[0, 0, 0, 0], &[2], g.reward(&[0, 0]));
        d.record(&g, &t);
        assert_eq!(d.n_goals_found(), 1);
        assert_eq!(d.window.len(), 2); // window keeps the 2 newest
    }
}
