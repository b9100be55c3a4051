//! `funnel` (10-d): Neal's funnel, as in the diffusion-sampler benchmarks
//! (the "hard" funnel of the reference code).
//!
//! x₀ ~ N(0, 3²) and, given x₀, x₁..x₉ are independent N(0, e^{x₀}) (the
//! variance is e^{x₀}, the standard deviation e^{x₀/2}). The log reward is
//! the normalised log density
//!
//! log R(x) = log N(x₀; 0, 9) + Σ_{i=1}^{9} log N(x_i; 0, e^{x₀})
//!          = -½ ln 2π - ln 3 - x₀²/18 + Σ_i (-½ ln 2π - x₀/2 - x_i² e^{-x₀}/2),
//!
//! so log Z = 0. Its gradient: ∂/∂x₀ = -x₀/9 - 9/2 + ½ e^{-x₀} Σ_i x_i², and
//! ∂/∂x_i = -x_i e^{-x₀}. The neck (x₀ ≪ 0, where the x_i are squeezed to a
//! width e^{x₀/2}) and the mouth (x₀ ≫ 0) differ in scale by orders of
//! magnitude, which makes the funnel hard for samplers with a fixed step size.
//!
//! Exact samples are ancestral: x₀ = 3 z₀, then x_i = e^{x₀/2} z_i.

use rand::Rng as _;
use rand_distr::StandardNormal;

use super::target::{rows, Picture, Target, TargetError};
use crate::rng::Rng;

/// Dimension of the funnel: x₀ and 9 coordinates whose variance it sets.
const FUNNEL_DIM: usize = 10;

/// Standard deviation of x₀.
const FUNNEL_X0_SCALE: f64 = 3.0;

/// ½ ln 2π.
const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// 10-d Neal's funnel: x₀ ~ N(0, 3²), x₁..x₉ | x₀ ~ N(0, e^{x₀}); normalised
/// (log Z = 0).
#[derive(Debug, Clone, Copy, Default)]
pub struct Funnel;

/// Σ_i x_i² e^{-x₀}, with 0 for x_i all zero (whatever x₀).
fn scaled_square_sum(x0: f64, rest: &[f64]) -> f64 {
    let ss: f64 = rest.iter().map(|v| v * v).sum();
    match ss == 0.0 {
        true => 0.0,
        false => ss * (-x0).exp(),
    }
}

impl Funnel {
    /// log R(x) of one point.
    fn point(x: &[f64]) -> f64 {
        assert_eq!(x.len(), FUNNEL_DIM, "point has the wrong dimension");
        let (x0, rest) = (x[0], &x[1..]);
        let k = rest.len() as f64;
        let head = -HALF_LN_2PI
            - FUNNEL_X0_SCALE.ln()
            - 0.5 * x0 * x0 / (FUNNEL_X0_SCALE * FUNNEL_X0_SCALE);
        head - k * (HALF_LN_2PI + 0.5 * x0) - 0.5 * scaled_square_sum(x0, rest)
    }
}

impl Target for Funnel {
    fn name(&self) -> &str {
        "funnel"
    }

    fn dim(&self) -> usize {
        FUNNEL_DIM
    }

    fn log_reward_batch(&self, xs: &[f64]) -> Result<Vec<f64>, TargetError> {
        Ok(rows(FUNNEL_DIM, xs, Self::point))
    }

    fn log_reward(&self, x: &[f64]) -> Result<f64, TargetError> {
        Ok(Self::point(x))
    }

    fn has_gradient(&self) -> bool {
        true
    }

    fn grad_log_reward(&self, x: &[f64], out: &mut [f64]) -> Result<(), TargetError> {
        assert_eq!(x.len(), FUNNEL_DIM, "point has the wrong dimension");
        assert_eq!(
            out.len(),
            FUNNEL_DIM,
            "gradient buffer has the wrong dimension"
        );
        let (x0, rest) = (x[0], &x[1..]);
        let k = rest.len() as f64;
        out[0] =
            -x0 / (FUNNEL_X0_SCALE * FUNNEL_X0_SCALE) - 0.5 * k + 0.5 * scaled_square_sum(x0, rest);
        let inv_var = (-x0).exp();
        for (o, &v) in out[1..].iter_mut().zip(rest) {
            *o = match v == 0.0 {
                true => 0.0,
                false => -v * inv_var,
            };
        }
        Ok(())
    }

    /// Draw order, per sample: the standard normal z₀ of x₀ = 3 z₀, then the
    /// nine standard normals z_i of x_i = e^{x₀/2} z_i, in coordinate order.
    fn sample(&self, n: usize, rng: &mut Rng) -> Option<Vec<f64>> {
        let mut out = Vec::with_capacity(n * FUNNEL_DIM);
        for _ in 0..n {
            let z0: f64 = rng.sample(StandardNormal);
            let x0 = FUNNEL_X0_SCALE * z0;
            let sd = (0.5 * x0).exp();
            out.push(x0);
            for _ in 1..FUNNEL_DIM {
                let z: f64 = rng.sample(StandardNormal);
                out.push(sd * z);
            }
        }
        Some(out)
    }

    fn log_z(&self) -> Option<f64> {
        Some(0.0)
    }

    /// The marginals (x0, x1) (the funnel's profile) and (x0, x2) over (-10, 10).
    fn picture(&self) -> Picture {
        Picture::Marginals {
            range: (-10.0, 10.0),
            pairs: vec![(0, 1), (0, 2)],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::target::testing::*;
    use super::*;
    use rand::SeedableRng;
    use std::f64::consts::PI;

    fn rng(seed: u64) -> Rng {
        Rng::seed_from_u64(seed)
    }

    /// At the origin: log N(0; 0, 9) + 9 log N(0; 0, 1)
    /// = -½ ln(2π·9) - 4.5 ln(2π).
    #[test]
    fn funnel_at_the_origin() {
        let want = -0.5 * (2.0 * PI * 9.0).ln() - 4.5 * (2.0 * PI).ln();
        let got = Funnel.log_reward(&[0.0; 10]).unwrap();
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        // The gradient there: -9/2 on x0 (the nine variances pull x0 down), 0 elsewhere.
        let mut g = [1.0; 10];
        Funnel.grad_log_reward(&[0.0; 10], &mut g).unwrap();
        assert_eq!(g[0], -4.5);
        assert!(g[1..].iter().all(|&v| v == 0.0));
    }

    /// At x0 = 2, x1..x9 = 1: -½ ln(2π·9) - 4/18 + 9 (-½ ln(2π) - 1 - e^{-2}/2).
    #[test]
    fn funnel_at_a_named_point() {
        let mut x = [1.0; 10];
        x[0] = 2.0;
        let want = -0.5 * (2.0 * PI * 9.0).ln() - 4.0 / 18.0
            + 9.0 * (-0.5 * (2.0 * PI).ln() - 1.0 - 0.5 * (-2.0f64).exp());
        let got = Funnel.log_reward(&x).unwrap();
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        assert_eq!(Funnel.log_z(), Some(0.0));
        assert_eq!(Funnel.dim(), 10);
    }

    /// The density integrates to 1: the conditional of x1..x9 given x0 is a
    /// normalised Gaussian (checked in 1-d by quadrature at a few x0), and the
    /// marginal of x0 is N(0, 9) (quadrature over x0).
    #[test]
    fn funnel_density_integrates_to_one() {
        for x0 in [-3.0, 0.0, 2.5] {
            let sd = (0.5f64 * x0).exp();
            // log R at (x0, v, 0, ..., 0) minus its value at (x0, 0, ..., 0)
            // is the log of N(v; 0, e^{x0}) up to its normaliser.
            let base = Funnel.log_reward(&[x0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
            let base = base.unwrap();
            let f = |v: f64| {
                let mut x = [0.0; 10];
                x[0] = x0;
                x[1] = v;
                (Funnel.log_reward(&x).unwrap() - base).exp()
            };
            let z = simpson(f, -12.0 * sd, 12.0 * sd, 4000);
            let want = (2.0 * PI).sqrt() * sd;
            assert!((z / want - 1.0).abs() < 1e-9, "x0 = {x0}: {z} vs {want}");
        }
        // Integrating the nine Gaussians out leaves log N(x0; 0, 9): the
        // density at x1..x9 = 0 times (2π e^{x0})^{9/2}.
        let marginal = |x0: f64| {
            let mut x = [0.0; 10];
            x[0] = x0;
            (Funnel.log_reward(&x).unwrap() + 4.5 * (2.0 * PI * x0.exp()).ln()).exp()
        };
        let total = simpson(marginal, -40.0, 40.0, 8000);
        assert!((total - 1.0).abs() < 1e-10, "integral = {total}");
    }

    #[test]
    fn funnel_gradients_match_finite_differences() {
        let mut r = rng(12);
        for _ in 0..100 {
            let x0: f64 = r.random_range(-4.0..4.0);
            let mut x = vec![x0];
            let sd = (0.5 * x0).exp();
            x.extend((1..10).map(|_| sd * r.sample::<f64, _>(StandardNormal)));
            check_gradient(&Funnel, &x, 1e-5);
        }
    }

    #[test]
    fn funnel_batch_matches_pointwise_and_sampling_is_reproducible() {
        check_batch_matches_pointwise(&Funnel, &mut rng(5));
        check_reproducible(&Funnel);
    }

    /// x0 has mean 0 and variance 9; x_i e^{-x0/2} is a standard normal
    /// independent of x0 (mean 0, variance 1).
    #[test]
    fn funnel_exact_samples_moments() {
        let n = 40_000;
        let xs = Funnel.sample(n, &mut rng(3)).unwrap();
        assert_eq!(xs.len(), 10 * n);
        let x0 = column(&xs, 10, 0);
        let (m, v, se_m, se_v) = moments(&x0);
        assert!(m.abs() < 4.0 * se_m, "x0 mean {m}");
        assert!((v - 9.0).abs() < 4.0 * se_v, "x0 var {v}");
        for d in 1..10 {
            let z: Vec<f64> = xs
                .chunks_exact(10)
                .map(|r| r[d] * (-0.5 * r[0]).exp())
                .collect();
            let (m, v, se_m, se_v) = moments(&z);
            assert!(m.abs() < 4.0 * se_m, "z{d} mean {m}");
            assert!((v - 1.0).abs() < 4.0 * se_v, "z{d} var {v}");
        }
        // The first coordinate of the draw is 3 z0 of the stream's first normal.
        let mut r = rng(3);
        let z0: f64 = r.sample(StandardNormal);
        assert_eq!(xs[0], 3.0 * z0);
    }

    /// Far in the neck the density is finite and tiny, not NaN, also at x_i = 0.
    #[test]
    fn funnel_far_in_the_neck() {
        let mut x = [0.0; 10];
        x[0] = -800.0;
        assert!(Funnel.log_reward(&x).unwrap().is_finite());
        let mut g = [0.0; 10];
        Funnel.grad_log_reward(&x, &mut g).unwrap();
        assert!(g.iter().all(|v| v.is_finite()));
        x[1] = 1.0;
        assert_eq!(Funnel.log_reward(&x).unwrap(), f64::NEG_INFINITY);
    }
}
