//! The time discretisation of a diffusion sampler (docs/diffusion.md
//! "Sampler"): T steps of size dt = 1 / T from s_0 = 0 at t = 0 to the
//! sample s_T at t = 1, the fixed Brownian-bridge backward process
//!
//!   P_B(s_i | s_{i+1}) = N(s_{i+1} i / (i + 1), sigma^2 dt i / (i + 1))  (i >= 1),
//!
//! whose last step (to s_0 = 0) is deterministic, and the Gaussian log
//! densities of both directions. Trajectories are host arrays
//! ([`Paths`]); everything here is f64 arithmetic on f32 states.

use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use crate::rng::Rng;

/// ln(2 pi).
pub const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// The time grid and noise scale of a sampler in `dim` dimensions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sde {
    /// Number of steps T.
    pub steps: usize,
    /// State dimension d.
    pub dim: usize,
    /// sigma^2.
    pub t_scale: f64,
}

/// A batch of B complete trajectories s_0 = 0, ..., s_T: `states` is
/// `[T + 1, B, d]` (step-major), f32.
#[derive(Debug, Clone, PartialEq)]
pub struct Paths {
    /// Number of steps T.
    pub steps: usize,
    /// Trajectories B.
    pub batch: usize,
    /// State dimension d.
    pub dim: usize,
    /// `[T + 1, B, d]`.
    pub states: Vec<f32>,
}

impl Paths {
    /// All-zero trajectories (to be filled).
    pub fn zeros(steps: usize, batch: usize, dim: usize) -> Self {
        Self {
            steps,
            batch,
            dim,
            states: vec![0.0; (steps + 1) * batch * dim],
        }
    }

    /// The states at step i `[B, d]`.
    pub fn at(&self, i: usize) -> &[f32] {
        let n = self.batch * self.dim;
        &self.states[i * n..(i + 1) * n]
    }

    /// The states at step i, mutable `[B, d]`.
    pub fn at_mut(&mut self, i: usize) -> &mut [f32] {
        let n = self.batch * self.dim;
        &mut self.states[i * n..(i + 1) * n]
    }

    /// The terminal states s_T `[B, d]`.
    pub fn terminal(&self) -> &[f32] {
        self.at(self.steps)
    }

    /// Every state but the last, s_0 .. s_{T-1} `[T * B * d]` (the inputs of P_F).
    pub fn sources(&self) -> &[f32] {
        &self.states[..self.steps * self.batch * self.dim]
    }

    /// The increments s_{i+1} - s_i of every step `[T * B * d]`.
    pub fn increments(&self) -> Vec<f32> {
        let n = self.batch * self.dim;
        let (a, b) = (&self.states[..self.steps * n], &self.states[n..]);
        a.iter().zip(b).map(|(x, y)| y - x).collect()
    }

    /// Keep only trajectories `keep` (in order).
    pub fn select(&self, keep: &[usize]) -> Self {
        let mut out = Self::zeros(self.steps, keep.len(), self.dim);
        let d = self.dim;
        for i in 0..=self.steps {
            let (src, dst) = (self.at(i).to_vec(), out.at_mut(i));
            for (j, &b) in keep.iter().enumerate() {
                dst[j * d..(j + 1) * d].copy_from_slice(&src[b * d..(b + 1) * d]);
            }
        }
        out
    }
}

impl Sde {
    /// Step size dt = 1 / T.
    pub fn dt(&self) -> f64 {
        1.0 / self.steps as f64
    }

    /// Time t_i = i / T of every forward step's source state, i = 0..T-1.
    pub fn times(&self) -> Vec<f64> {
        (0..self.steps).map(|i| i as f64 * self.dt()).collect()
    }

    /// Backward trajectories from the terminal states `x` `[B, d]`: s_T = x,
    /// then s_{i} ~ P_B(. | s_{i+1}) for i = T-1 down to 1 (noise drawn from
    /// `rng` step by step, then trajectory by trajectory, then coordinate),
    /// and s_0 = 0.
    pub fn bridge(&self, x: &[f32], rng: &mut Rng) -> Paths {
        let (t, d) = (self.steps, self.dim);
        let b = x.len() / d;
        let mut p = Paths::zeros(t, b, d);
        p.at_mut(t).copy_from_slice(x);
        for i in (1..t).rev() {
            let ratio = i as f64 / (i + 1) as f64;
            let std = (self.t_scale * self.dt() * ratio).sqrt();
            let n = b * d;
            let (lo, hi) = p.states.split_at_mut((i + 1) * n);
            let (next, cur) = (&hi[..n], &mut lo[i * n..]);
            for (c, &s) in cur.iter_mut().zip(next) {
                let eps: f64 = StandardNormal.sample(rng);
                *c = (s as f64 * ratio + std * eps) as f32;
            }
        }
        p
    }

    /// Sum over each trajectory of log P_B(s_i | s_{i+1}) `[B]` (the step to
    /// s_0 contributes 0), summed in step order.
    pub fn log_pb(&self, p: &Paths) -> Vec<f64> {
        let (t, b) = (p.steps, p.batch);
        let steps = self.log_pb_steps(p);
        (0..b)
            .map(|j| (0..t).fold(0.0, |acc, i| acc + steps[i * b + j]))
            .collect()
    }

    /// log P_B(s_i | s_{i+1}) of every step of every trajectory `[T, B]`
    /// time-major (0 for the step to s_0, which is fixed).
    pub fn log_pb_steps(&self, p: &Paths) -> Vec<f64> {
        let (b, d) = (p.batch, p.dim);
        let mut out = vec![0.0; p.steps * b];
        // Steps in parallel; the step to s_0 (i = 0) stays 0.
        out.par_chunks_mut(b)
            .enumerate()
            .skip(1)
            .for_each(|(i, row)| {
                let ratio = i as f64 / (i + 1) as f64;
                let var = self.t_scale * self.dt() * ratio;
                let (cur, next) = (p.at(i), p.at(i + 1));
                for (j, o) in row.iter_mut().enumerate() {
                    let mut sq = 0.0;
                    for k in j * d..(j + 1) * d {
                        let r = cur[k] as f64 - next[k] as f64 * ratio;
                        sq += r * r;
                    }
                    *o = -0.5 * (sq / var + d as f64 * (LN_2PI + var.ln()));
                }
            });
        out
    }

    /// The log-variance of every forward step without learned variance:
    /// ln sigma^2.
    pub fn log_var(&self) -> f64 {
        self.t_scale.ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{stream, Stream};

    /// A backward trajectory from x ends at 0, and its s_i has the bridge's
    /// law: mean x i / T and variance sigma^2 (i / T)(1 - i / T) (for a
    /// Brownian motion pinned at 0 and x; here sigma^2 = 2, T = 10, i = 3:
    /// mean 0.3 x, variance 2 * 0.3 * 0.7 = 0.42).
    #[test]
    fn bridge_ends_at_zero_with_the_bridge_variance() {
        let sde = Sde {
            steps: 10,
            dim: 1,
            t_scale: 2.0,
        };
        let n = 40_000;
        let x = vec![5.0f32; n];
        let p = sde.bridge(&x, &mut stream(0, Stream::Buffer));
        assert!(p.at(0).iter().all(|&v| v == 0.0));
        assert!(p.terminal().iter().all(|&v| v == 5.0));
        let s3 = p.at(3);
        let mean = s3.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
        let var = s3.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n as f64;
        // Standard errors: sqrt(0.42 / n) = 0.0032 for the mean, 0.42 sqrt(2 / n) = 0.003 for the variance.
        assert!((mean - 1.5).abs() < 0.015, "mean {mean}");
        assert!((var - 0.42).abs() < 0.015, "var {var}");
    }

    /// log P_B of a hand-built 2-step trajectory 0 -> s_1 -> s_2 in 1-d
    /// (T = 2, dt = 0.5, sigma^2 = 1): only the step s_2 -> s_1 counts, with
    /// P_B(s_1 | s_2) = N(s_2 / 2, 0.25).
    #[test]
    fn log_pb_of_a_hand_trajectory() {
        let sde = Sde {
            steps: 2,
            dim: 1,
            t_scale: 1.0,
        };
        let p = Paths {
            steps: 2,
            batch: 1,
            dim: 1,
            states: vec![0.0, 0.3, 1.0],
        };
        let r: f64 = 0.3 - 0.5;
        let expected = -0.5 * (r * r / 0.25 + LN_2PI + 0.25f64.ln());
        assert!((sde.log_pb(&p)[0] - expected).abs() < 1e-6);
        assert_eq!(p.increments(), vec![0.3, 0.7]);
        assert_eq!(p.sources(), &[0.0, 0.3]);
    }
}
