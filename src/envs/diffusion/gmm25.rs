//! `gmm25` (2-d): a grid of 25 equally likely Gaussian modes with centres
//! (a, b), a, b ∈ {-10, -5, 0, 5, 10}, each with covariance 0.3·I.
//!
//! Its log reward is the *normalised* log density, so log Z = 0. Because the
//! centres form a product grid and the covariance is isotropic, the mixture
//! factorises into the product of two identical 1-d mixtures of 5 modes; the
//! log density is evaluated that way, with a log-sum-exp over the 5 modes of
//! each coordinate (equal, up to rounding, to a log-sum-exp over all 25
//! components, and finite far from every mode).
//!
//! Exact samples pick a component uniformly at random for every sample
//! independently (so the component counts are multinomial and the output is
//! not grouped by component), then add √0.3·N(0, I).

use rand::Rng as _;
use rand_distr::StandardNormal;

use super::target::{rows, Picture, Target, TargetError};
use crate::rng::Rng;

/// Per-coordinate positions of the 25GMM mode grid.
const GMM_CENTRES: [f64; 5] = [-10.0, -5.0, 0.0, 5.0, 10.0];

/// Per-coordinate variance of every 25GMM component.
const GMM_VAR: f64 = 0.3;

/// 2-d mixture of 25 equally weighted Gaussians on the grid
/// {-10, -5, 0, 5, 10}², covariance 0.3·I; normalised (log Z = 0).
#[derive(Debug, Clone, Copy, Default)]
pub struct Gmm25;

impl Gmm25 {
    /// log R(x) of one point.
    fn point(x: &[f64]) -> f64 {
        assert_eq!(x.len(), 2, "point has the wrong dimension");
        x.iter().map(|&xd| gmm_axis(xd).0).sum()
    }
}

impl Target for Gmm25 {
    fn name(&self) -> &str {
        "gmm25"
    }

    fn dim(&self) -> usize {
        2
    }

    fn log_reward_batch(&self, xs: &[f64]) -> Result<Vec<f64>, TargetError> {
        Ok(rows(2, xs, Self::point))
    }

    fn log_reward(&self, x: &[f64]) -> Result<f64, TargetError> {
        Ok(Self::point(x))
    }

    fn has_gradient(&self) -> bool {
        true
    }

    fn grad_log_reward(&self, x: &[f64], out: &mut [f64]) -> Result<(), TargetError> {
        assert_eq!(x.len(), 2, "point has the wrong dimension");
        assert_eq!(out.len(), 2, "gradient buffer has the wrong dimension");
        for (o, &xd) in out.iter_mut().zip(x) {
            *o = gmm_axis(xd).1;
        }
        Ok(())
    }

    /// Draw order, per sample: the component index (uniform over 0..25),
    /// then the two standard normals of x₀ and x₁.
    fn sample(&self, n: usize, rng: &mut Rng) -> Option<Vec<f64>> {
        let mut out = Vec::with_capacity(n * 2);
        let sd = GMM_VAR.sqrt();
        for _ in 0..n {
            let c = rng.random_range(0..GMM_CENTRES.len() * GMM_CENTRES.len());
            let (ca, cb) = (c / GMM_CENTRES.len(), c % GMM_CENTRES.len());
            let z0: f64 = rng.sample(StandardNormal);
            let z1: f64 = rng.sample(StandardNormal);
            out.push(GMM_CENTRES[ca] + sd * z0);
            out.push(GMM_CENTRES[cb] + sd * z1);
        }
        Some(out)
    }

    fn log_z(&self) -> Option<f64> {
        Some(0.0)
    }

    fn picture(&self) -> Picture {
        Picture::Density {
            range: (-15.0, 15.0),
        }
    }
}

/// One coordinate's factor of the 25GMM density: (log density of the 1-d
/// mixture (1/5)·Σ_c N(x; c, 0.3), its derivative in x).
fn gmm_axis(x: f64) -> (f64, f64) {
    let mut e = [0.0; 5];
    let mut max = f64::NEG_INFINITY;
    for (ek, &c) in e.iter_mut().zip(&GMM_CENTRES) {
        let d = x - c;
        *ek = -d * d / (2.0 * GMM_VAR);
        max = max.max(*ek);
    }
    let mut sum = 0.0;
    let mut weighted = 0.0;
    for (ek, &c) in e.iter().zip(&GMM_CENTRES) {
        let w = (ek - max).exp();
        sum += w;
        weighted += w * (c - x);
    }
    let log_norm =
        (GMM_CENTRES.len() as f64).ln() + 0.5 * (2.0 * std::f64::consts::PI * GMM_VAR).ln();
    (max + sum.ln() - log_norm, weighted / (sum * GMM_VAR))
}

#[cfg(test)]
mod tests {
    use super::super::target::testing::*;
    use super::*;
    use rand::SeedableRng;

    fn rng(seed: u64) -> Rng {
        Rng::seed_from_u64(seed)
    }

    #[test]
    fn log_z_and_dim() {
        assert_eq!(Gmm25.log_z(), Some(0.0));
        assert_eq!(Gmm25.dim(), 2);
    }

    #[test]
    fn gmm25_density_integrates_to_one() {
        // 2-d Simpson over [-15, 15]^2, h = 0.05 (the modes have sd 0.55).
        let total = integral_2d(&Gmm25, -15.0, 15.0, 600);
        assert!((total - 1.0).abs() < 1e-4, "integral = {total}");
    }

    #[test]
    fn gmm25_matches_direct_logsumexp_over_25_components() {
        let mut r = rng(3);
        let mut points: Vec<[f64; 2]> = (0..200)
            .map(|_| [r.random_range(-14.0..14.0), r.random_range(-14.0..14.0)])
            .collect();
        points.push([100.0, -80.0]);
        points.push([-1e3, 0.3]);
        for x in points {
            let mut e = Vec::new();
            for a in GMM_CENTRES {
                for b in GMM_CENTRES {
                    let d2 = (x[0] - a).powi(2) + (x[1] - b).powi(2);
                    e.push(
                        -d2 / (2.0 * GMM_VAR)
                            - (2.0 * std::f64::consts::PI * GMM_VAR).ln()
                            - 25f64.ln(),
                    );
                }
            }
            let m = e.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let direct = m + e.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
            let got = Gmm25.log_reward(&x).unwrap();
            assert!(got.is_finite());
            assert!(
                (got - direct).abs() <= 1e-10 * (1.0 + direct.abs()),
                "{x:?}: {got} vs {direct}"
            );
        }
    }

    #[test]
    fn gmm25_gradients_match_finite_differences() {
        let mut r = rng(11);
        for _ in 0..200 {
            let x = [r.random_range(-12.0..12.0), r.random_range(-12.0..12.0)];
            check_gradient(&Gmm25, &x, 1e-5);
        }
    }

    #[test]
    fn gmm25_batch_matches_pointwise_and_sampling_is_reproducible() {
        check_batch_matches_pointwise(&Gmm25, &mut rng(5));
        check_reproducible(&Gmm25);
    }

    #[test]
    fn gmm25_exact_samples_moments() {
        let n = 20_000;
        let xs = Gmm25.sample(n, &mut rng(1)).unwrap();
        assert_eq!(xs.len(), 2 * n);
        for d in 0..2 {
            let col = column(&xs, 2, d);
            let (mean, var, se_mean, se_var) = moments(&col);
            assert!(mean.abs() < 4.0 * se_mean, "coord {d}: mean {mean}");
            assert!((var - 50.3).abs() < 4.0 * se_var, "coord {d}: var {var}");
            // Not grouped by component: both halves of the output are centred.
            let half = &col[..n / 2];
            let (hm, _, hse, _) = moments(half);
            assert!(hm.abs() < 4.0 * hse, "first half mean {hm}");
        }
        // Component counts are multinomial(n, 1/25).
        let mut counts = [0usize; 25];
        for p in xs.chunks_exact(2) {
            let idx = |v: f64| ((v / 5.0).round() + 2.0).clamp(0.0, 4.0) as usize;
            counts[idx(p[0]) * 5 + idx(p[1])] += 1;
        }
        let expect = n as f64 / 25.0;
        let sd = (n as f64 * (1.0 / 25.0) * (24.0 / 25.0)).sqrt();
        for c in counts {
            assert!((c as f64 - expect).abs() < 4.5 * sd, "count {c}");
        }
    }
}
