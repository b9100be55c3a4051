//! `gmm40` (2-d): the mixture of 40 Gaussians of the flow-annealed
//! importance sampling benchmark (Midgley et al., 2023), since used by many
//! diffusion-sampler papers.
//!
//! 40 equally weighted components N(μ_k, s²·I) with one scale for all,
//! s = softplus(1) = ln(1 + e) = 1.3132616875 (the benchmark draws a log
//! variance parameter of 1 for every component and uses its softplus as the
//! standard deviation, so the variance is s² = 1.7246559). The means are the
//! benchmark's: 80 uniforms of PyTorch's CPU generator seeded with 0, taken
//! as (u - 0.5)·2·40 in single precision, row by row — so they lie in
//! [-40, 40]². [`GMM40_MEANS`] holds them exactly (as the single-precision
//! values they are); a test regenerates them from the seeded Mersenne
//! Twister draw (the same 40 pairs are printed to 4 decimals in public code
//! that hard-codes them as "the GMM experiment of the paper").
//!
//! The log reward is the normalised log density,
//! log R(x) = log Σ_k exp(-|x - μ_k|² / (2s²)) - ln 40 - ln(2π s²),
//! evaluated with a log-sum-exp, so log Z = 0; its gradient is
//! Σ_k w_k(x) (μ_k - x) / s² with the responsibilities w_k(x) (softmax of the
//! exponents). Most modes are isolated (a few pairs overlap: the closest
//! two means are 1.18 apart) and far from the origin where the samplers
//! start, which makes it a test of mode coverage.
//!
//! Exact samples pick a component uniformly at random for every sample, then
//! add s·N(0, I).

use rand::Rng as _;
use rand_distr::StandardNormal;

use super::target::{rows, Picture, Target, TargetError};
use crate::rng::Rng;

/// The standard deviation s = softplus(1) = ln(1 + e) of every component
/// (per coordinate).
pub const GMM40_SCALE: f64 = 1.313_261_687_518_222_8;

/// The 40 means μ_k of the benchmark (PyTorch's CPU generator seeded with 0:
/// `(rand(40, 2) - 0.5) * 2 * 40` in single precision), exactly.
pub const GMM40_MEANS: [[f64; 2]; 40] = [
    [-0.2994728088378906, 21.457744598388672],
    [-32.92180633544922, -29.43756103515625],
    [-15.406174659729004, 10.72629451751709],
    [-0.7925271987915039, 31.715579986572266],
    [-3.5497617721557617, 10.584502220153809],
    [-12.088522911071777, -7.862615585327148],
    [-38.21393966674805, -26.491283416748047],
    [-16.488924026489258, 1.4817428588867188],
    [15.813407897949219, 24.000911712646484],
    [-27.117643356323242, -17.418514251708984],
    [14.528684616088867, 33.215518951416016],
    [-8.232007026672363, 29.932470321655273],
    [-6.447334289550781, 4.2325639724731445],
    [36.21904754638672, -37.106815338134766],
    [-25.1815185546875, -10.126609802246094],
    [-15.591998100280762, 34.56003189086914],
    [-25.92718505859375, -18.413314819335938],
    [-27.94561767578125, -37.462440490722656],
    [-23.349618911743164, 34.3839225769043],
    [17.848735809326172, 19.38690185546875],
    [2.1036624908447266, -20.507339477539062],
    [6.767387390136719, -37.3477897644043],
    [-28.90264892578125, -20.621200561523438],
    [25.237518310546875, 23.452850341796875],
    [-17.73980140686035, -1.4432954788208008],
    [25.582427978515625, 39.765323638916016],
    [15.875287055969238, 5.403714179992676],
    [26.819454193115234, -23.552093505859375],
    [7.453761100769043, -31.01222038269043],
    [-27.723445892333984, -20.663341522216797],
    [18.098922729492188, 16.086416244506836],
    [-23.69409942626953, 12.084283828735352],
    [21.958881378173828, -5.048694610595703],
    [1.527261734008789, 9.2681884765625],
    [24.8150634765625, 38.40776443481445],
    [-30.82494354248047, -14.65878963470459],
    [15.720396041870117, 33.14197540283203],
    [34.808292388916016, 35.29426956176758],
    [7.9605817794799805, -34.78330612182617],
    [3.6796998977661133, -25.024213790893555],
];

/// 2-d mixture of 40 equally weighted Gaussians with the benchmark's means
/// in [-40, 40]² and standard deviation softplus(1); normalised (log Z = 0).
#[derive(Debug, Clone, Copy, Default)]
pub struct Gmm40;

/// The exponents e_k = -|x - μ_k|² / (2s²) of `x` and their maximum.
fn exponents(x: &[f64]) -> ([f64; 40], f64) {
    assert_eq!(x.len(), 2, "point has the wrong dimension");
    let mut e = [0.0; 40];
    let mut max = f64::NEG_INFINITY;
    for (ek, mu) in e.iter_mut().zip(&GMM40_MEANS) {
        let (d0, d1) = (x[0] - mu[0], x[1] - mu[1]);
        *ek = -(d0 * d0 + d1 * d1) / (2.0 * GMM40_SCALE * GMM40_SCALE);
        max = max.max(*ek);
    }
    (e, max)
}

impl Gmm40 {
    /// log R(x) of one point.
    fn point(x: &[f64]) -> f64 {
        let (e, max) = exponents(x);
        let sum: f64 = e.iter().map(|ek| (ek - max).exp()).sum();
        let log_norm = (GMM40_MEANS.len() as f64).ln()
            + (2.0 * std::f64::consts::PI * GMM40_SCALE * GMM40_SCALE).ln();
        max + sum.ln() - log_norm
    }
}

impl Target for Gmm40 {
    fn name(&self) -> &str {
        "gmm40"
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
        assert_eq!(out.len(), 2, "gradient buffer has the wrong dimension");
        let (e, max) = exponents(x);
        let (mut sum, mut g0, mut g1) = (0.0, 0.0, 0.0);
        for (ek, mu) in e.iter().zip(&GMM40_MEANS) {
            let w = (ek - max).exp();
            sum += w;
            g0 += w * (mu[0] - x[0]);
            g1 += w * (mu[1] - x[1]);
        }
        let var = GMM40_SCALE * GMM40_SCALE;
        out[0] = g0 / (sum * var);
        out[1] = g1 / (sum * var);
        Ok(())
    }

    /// Draw order, per sample: the component index (uniform over 0..40), then
    /// the two standard normals of x₀ and x₁.
    fn sample(&self, n: usize, rng: &mut Rng) -> Option<Vec<f64>> {
        let mut out = Vec::with_capacity(n * 2);
        for _ in 0..n {
            let mu = GMM40_MEANS[rng.random_range(0..GMM40_MEANS.len())];
            let z0: f64 = rng.sample(StandardNormal);
            let z1: f64 = rng.sample(StandardNormal);
            out.push(mu[0] + GMM40_SCALE * z0);
            out.push(mu[1] + GMM40_SCALE * z1);
        }
        Some(out)
    }

    fn log_z(&self) -> Option<f64> {
        Some(0.0)
    }

    fn picture(&self) -> Picture {
        Picture::Density {
            range: (-50.0, 50.0),
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

    /// The 32-bit Mersenne Twister MT19937 (the generator behind PyTorch's
    /// CPU `rand`), seeded like `torch.manual_seed`.
    struct Mt19937 {
        state: [u32; 624],
        index: usize,
    }

    impl Mt19937 {
        fn new(seed: u32) -> Self {
            let mut state = [0u32; 624];
            state[0] = seed;
            for i in 1..624 {
                let prev = state[i - 1];
                state[i] = 1_812_433_253u32
                    .wrapping_mul(prev ^ (prev >> 30))
                    .wrapping_add(i as u32);
            }
            Self { state, index: 624 }
        }

        fn next_u32(&mut self) -> u32 {
            if self.index >= 624 {
                for k in 0..624 {
                    let y =
                        (self.state[k] & 0x8000_0000) | (self.state[(k + 1) % 624] & 0x7fff_ffff);
                    let mut v = self.state[(k + 397) % 624] ^ (y >> 1);
                    if y & 1 == 1 {
                        v ^= 0x9908_b0df;
                    }
                    self.state[k] = v;
                }
                self.index = 0;
            }
            let mut y = self.state[self.index];
            self.index += 1;
            y ^= y >> 11;
            y ^= (y << 7) & 0x9d2c_5680;
            y ^= (y << 15) & 0xefc6_0000;
            y ^= y >> 18;
            y
        }
    }

    /// The means are PyTorch's `(rand(40, 2) - 0.5) * 2 * 40` after
    /// `manual_seed(0)`: a float32 uniform is the low 24 bits of one 32-bit
    /// Mersenne Twister output times 2^-24, and the arithmetic is float32.
    #[test]
    fn gmm40_means_are_the_seeded_draw() {
        let mut mt = Mt19937::new(0);
        // The textbook first output of MT19937 seeded with 0.
        assert_eq!(Mt19937::new(0).next_u32(), 2_357_136_044);
        for (k, mu) in GMM40_MEANS.iter().enumerate() {
            for (d, &m) in mu.iter().enumerate() {
                let u = (mt.next_u32() & 0x00ff_ffff) as f32 / (1u32 << 24) as f32;
                let v = (u - 0.5f32) * 2.0f32 * 40.0f32;
                assert_eq!(v as f64, m, "mean {k}, coordinate {d}");
            }
        }
        // torch.manual_seed(0); torch.rand(2) is [0.4963, 0.7682].
        assert!((GMM40_MEANS[0][0] / 80.0 + 0.5 - 0.4963).abs() < 1e-4);
        assert!((GMM40_MEANS[0][1] / 80.0 + 0.5 - 0.7682).abs() < 1e-4);
        assert!(GMM40_MEANS
            .iter()
            .flatten()
            .all(|v| (-40.0..40.0).contains(v)));
    }

    #[test]
    fn gmm40_scale_is_softplus_of_one() {
        assert!((GMM40_SCALE - 1f64.exp().ln_1p()).abs() < 1e-15);
        assert_eq!(Gmm40.dim(), 2);
        assert_eq!(Gmm40.log_z(), Some(0.0));
    }

    /// At the first mean the other modes are at least 10 apart (their terms
    /// are below e^-30): log R = -ln 40 - ln(2π s²) to 1e-12.
    #[test]
    fn gmm40_at_a_mode() {
        let want = -(40f64).ln() - (2.0 * PI).ln() - 2.0 * GMM40_SCALE.ln();
        let got = Gmm40.log_reward(&GMM40_MEANS[0]).unwrap();
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        let mut g = [1.0; 2];
        Gmm40.grad_log_reward(&GMM40_MEANS[0], &mut g).unwrap();
        assert!(g.iter().all(|v| v.abs() < 1e-10), "{g:?}");
        // One s from the mode along x0: the exponent drops by 1/2.
        let x = [GMM40_MEANS[0][0] + GMM40_SCALE, GMM40_MEANS[0][1]];
        let got = Gmm40.log_reward(&x).unwrap();
        assert!(
            (got - (want - 0.5)).abs() < 1e-12,
            "{got} vs {}",
            want - 0.5
        );
    }

    #[test]
    fn gmm40_matches_direct_sum_of_densities() {
        let mut r = rng(4);
        for _ in 0..100 {
            let x = [r.random_range(-45.0..45.0), r.random_range(-45.0..45.0)];
            let direct: f64 = GMM40_MEANS
                .iter()
                .map(|mu| {
                    let d2 = (x[0] - mu[0]).powi(2) + (x[1] - mu[1]).powi(2);
                    let var = GMM40_SCALE * GMM40_SCALE;
                    (-d2 / (2.0 * var)).exp() / (2.0 * PI * var) / 40.0
                })
                .sum();
            if direct > 1e-250 {
                let got = Gmm40.log_reward(&x).unwrap();
                assert!(
                    (got - direct.ln()).abs() < 1e-9 * (1.0 + got.abs()),
                    "{x:?}"
                );
            }
        }
        // Far from every mode: finite.
        assert!(Gmm40.log_reward(&[1e3, -1e3]).unwrap().is_finite());
    }

    #[test]
    fn gmm40_density_integrates_to_one() {
        // 2-d Simpson over [-50, 50]^2, h = 0.1 (the modes have sd 1.31 and
        // lie within 40 of the origin).
        let total = integral_2d(&Gmm40, -50.0, 50.0, 1000);
        assert!((total - 1.0).abs() < 1e-6, "integral = {total}");
    }

    #[test]
    fn gmm40_gradients_match_finite_differences() {
        let mut r = rng(13);
        for _ in 0..200 {
            let x = [r.random_range(-45.0..45.0), r.random_range(-45.0..45.0)];
            check_gradient(&Gmm40, &x, 1e-5);
        }
    }

    #[test]
    fn gmm40_batch_matches_pointwise_and_sampling_is_reproducible() {
        check_batch_matches_pointwise(&Gmm40, &mut rng(5));
        check_reproducible(&Gmm40);
    }

    /// Exact samples: mean and variance per coordinate match the mixture's
    /// (mean of the means; variance of the means plus s²), and every
    /// component is picked about n/40 times.
    #[test]
    fn gmm40_exact_samples_moments() {
        let n = 40_000;
        let xs = Gmm40.sample(n, &mut rng(6)).unwrap();
        assert_eq!(xs.len(), 2 * n);
        for d in 0..2 {
            let mus: Vec<f64> = GMM40_MEANS.iter().map(|m| m[d]).collect();
            let want_mean = mus.iter().sum::<f64>() / 40.0;
            let want_var = mus.iter().map(|m| (m - want_mean).powi(2)).sum::<f64>() / 40.0
                + GMM40_SCALE * GMM40_SCALE;
            let (mean, var, se_mean, se_var) = moments(&column(&xs, 2, d));
            assert!(
                (mean - want_mean).abs() < 4.0 * se_mean,
                "coord {d}: mean {mean}"
            );
            assert!(
                (var - want_var).abs() < 4.0 * se_var,
                "coord {d}: var {var}"
            );
        }
        let mut counts = [0usize; 40];
        for p in xs.chunks_exact(2) {
            let nearest = (0..40)
                .min_by(|&a, &b| {
                    let d = |k: usize| {
                        (p[0] - GMM40_MEANS[k][0]).powi(2) + (p[1] - GMM40_MEANS[k][1]).powi(2)
                    };
                    d(a).total_cmp(&d(b))
                })
                .unwrap();
            counts[nearest] += 1;
        }
        let expect = n as f64 / 40.0;
        let sd = (n as f64 * (1.0 / 40.0) * (39.0 / 40.0)).sqrt();
        for (k, c) in counts.iter().enumerate() {
            // Overlapping neighbours (the closest means are 1.18 apart) trade
            // points by nearest-mean assignment: 6 sd of slack.
            assert!((*c as f64 - expect).abs() < 6.0 * sd, "component {k}: {c}");
        }
    }
}
