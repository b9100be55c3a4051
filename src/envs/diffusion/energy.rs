//! Target energies of the diffusion-sampler experiments (the two continuous
//! targets of "Adaptive Teachers for Amortized Samplers").
//!
//! Each target is known only through its unnormalised log density, called the
//! log reward here (log R(x) = -E(x)). Both targets also have an exact sampler,
//! used to build evaluation data, and a known log partition function
//! log Z = log ∫ R(x) dx, against which the samplers' log Z estimates are scored.
//!
//! * [`Energy::Gmm25`] (2-d): a grid of 25 equally likely Gaussian modes with
//!   centres (a, b), a, b ∈ {-10, -5, 0, 5, 10}, each with covariance 0.3·I.
//!   Its log reward is the *normalised* log density, so log Z = 0. Because the
//!   centres form a product grid and the covariance is isotropic, the mixture
//!   factorises into the product of two identical 1-d mixtures of 5 modes; the
//!   log density is evaluated that way, with a log-sum-exp over the 5 modes of
//!   each coordinate (equal, up to rounding, to a log-sum-exp over all 25
//!   components, and finite far from every mode).
//! * [`Energy::ManyWell`] (32-d): 16 independent copies of a 2-d double well.
//!   Coordinates pair up as (a, b) = (x_{2k}, x_{2k+1}), k = 0..15, and each pair
//!   contributes -a⁴ + 6a² + a/2 - b²/2 to the log reward. The `a` factor is an
//!   asymmetric double well (modes near a ≈ -1.7 and a ≈ +1.7, the right one
//!   heavier), the `b` factor an unnormalised standard normal. Hence
//!   log Z = 16·(ln Z₁ + ½ ln 2π), where Z₁ = ∫ exp(-a⁴ + 6a² + a/2) da =
//!   11784.50927 (the value the reference code hard-codes; the tests recompute
//!   it by quadrature) and ½ ln 2π is the log normaliser of exp(-b²/2). That gives
//!   log Z = 164.69567532. The 2^16 modes make it a test of mode coverage.
//!
//! Exact samples: `Gmm25` picks a component uniformly at random for every
//! sample independently (so the component counts are multinomial and the
//! output is not grouped by component), then adds √0.3·N(0, I). `ManyWell`
//! draws b ~ N(0, 1) and draws a by rejection sampling with the proposal
//! q = 0.2·N(-1.7, 0.5²) + 0.8·N(1.7, 0.5²) and envelope 3·Z₁·q(y) ≥
//! exp(-y⁴ + 6y² + y/2) (checked on a fine grid by the tests; the acceptance
//! rate is 1/3).

use rand::Rng as _;
use rand_distr::StandardNormal;

use crate::rng::Rng;

/// Z₁ = ∫ exp(-a⁴ + 6a² + a/2) da, the normaliser of one Manywell double-well
/// factor (value used by the reference implementation; verified by quadrature
/// in the tests).
pub const MANYWELL_Z1: f64 = 11784.50927;

/// Number of independent double wells in the 32-d Manywell target.
const MANYWELL_WELLS: usize = 16;

/// Per-coordinate positions of the 25GMM mode grid.
const GMM_CENTRES: [f64; 5] = [-10.0, -5.0, 0.0, 5.0, 10.0];

/// Per-coordinate variance of every 25GMM component.
const GMM_VAR: f64 = 0.3;

/// Weight of the left component (mean -1.7) of the Manywell rejection proposal.
const PROPOSAL_LEFT_WEIGHT: f64 = 0.2;

/// Absolute mean of the two Manywell rejection-proposal components.
const PROPOSAL_MEAN: f64 = 1.7;

/// Standard deviation of the two Manywell rejection-proposal components.
const PROPOSAL_SCALE: f64 = 0.5;

/// Envelope factor M of the rejection sampler: target/Z₁ ≤ M·q.
const ENVELOPE_FACTOR: f64 = 3.0;

/// A target energy of the diffusion-sampler experiments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Energy {
    /// 2-d mixture of 25 equally weighted Gaussians on the grid
    /// {-10, -5, 0, 5, 10}², covariance 0.3·I; normalised (log Z = 0).
    Gmm25,
    /// 32-d Manywell: 16 independent double wells -a⁴ + 6a² + a/2 - b²/2.
    ManyWell,
}

impl Energy {
    /// The registry name of the energy (`env.kind`).
    pub fn name(self) -> &'static str {
        match self {
            Energy::Gmm25 => "gmm25",
            Energy::ManyWell => "many_well",
        }
    }

    /// Dimension of the target's sample space (2 for `Gmm25`, 32 for `ManyWell`).
    pub fn dim(self) -> usize {
        match self {
            Energy::Gmm25 => 2,
            Energy::ManyWell => 2 * MANYWELL_WELLS,
        }
    }

    /// The true log partition function log ∫ R(x) dx: 0 for `Gmm25` (its log
    /// reward is normalised) and 16·(ln Z₁ + ½ ln 2π) = 164.69567532 for `ManyWell`.
    pub fn true_log_z(self) -> f64 {
        match self {
            Energy::Gmm25 => 0.0,
            Energy::ManyWell => {
                MANYWELL_WELLS as f64 * (MANYWELL_Z1.ln() + 0.5 * (2.0 * std::f64::consts::PI).ln())
            }
        }
    }

    /// log R(x) of one point (`x.len() == self.dim()`).
    pub fn log_reward(self, x: &[f64]) -> f64 {
        assert_eq!(x.len(), self.dim(), "point has the wrong dimension");
        match self {
            Energy::Gmm25 => x.iter().map(|&xd| gmm_axis(xd).0).sum(),
            Energy::ManyWell => x
                .chunks_exact(2)
                .map(|p| well_log(p[0]) - 0.5 * p[1] * p[1])
                .sum(),
        }
    }

    /// Writes ∇ log R(x) into `out` (both of length `self.dim()`).
    pub fn grad_log_reward(self, x: &[f64], out: &mut [f64]) {
        assert_eq!(x.len(), self.dim(), "point has the wrong dimension");
        assert_eq!(
            out.len(),
            self.dim(),
            "gradient buffer has the wrong dimension"
        );
        match self {
            Energy::Gmm25 => {
                for (o, &xd) in out.iter_mut().zip(x) {
                    *o = gmm_axis(xd).1;
                }
            }
            Energy::ManyWell => {
                for (o, p) in out.chunks_exact_mut(2).zip(x.chunks_exact(2)) {
                    let a = p[0];
                    o[0] = -4.0 * a * a * a + 12.0 * a + 0.5;
                    o[1] = -p[1];
                }
            }
        }
    }

    /// log R of each row of `xs` (`[n, dim]`, row-major) -> `[n]`.
    pub fn log_reward_batch(self, xs: &[f64]) -> Vec<f64> {
        let dim = self.dim();
        assert_eq!(xs.len() % dim, 0, "batch length is not a multiple of dim");
        xs.chunks_exact(dim).map(|x| self.log_reward(x)).collect()
    }

    /// `n` independent exact samples of the normalised target, `[n, dim]` row-major.
    ///
    /// Draw order (fixed, so the output is a function of the generator state):
    /// `Gmm25`, per sample: the component index (uniform over 0..25), then the two
    /// standard normals of x₀ and x₁. `ManyWell`, per sample and per well k in
    /// order: the rejection-sampling proposals of a = x_{2k} (each: a uniform for
    /// the proposal component, a standard normal, a uniform for the acceptance
    /// test, until one is accepted), then the standard normal b = x_{2k+1}.
    pub fn sample(self, n: usize, rng: &mut Rng) -> Vec<f64> {
        let dim = self.dim();
        let mut out = Vec::with_capacity(n * dim);
        match self {
            Energy::Gmm25 => {
                let sd = GMM_VAR.sqrt();
                for _ in 0..n {
                    let c = rng.random_range(0..GMM_CENTRES.len() * GMM_CENTRES.len());
                    let (ca, cb) = (c / GMM_CENTRES.len(), c % GMM_CENTRES.len());
                    let z0: f64 = rng.sample(StandardNormal);
                    let z1: f64 = rng.sample(StandardNormal);
                    out.push(GMM_CENTRES[ca] + sd * z0);
                    out.push(GMM_CENTRES[cb] + sd * z1);
                }
            }
            Energy::ManyWell => {
                for _ in 0..n * MANYWELL_WELLS {
                    out.push(sample_well(rng));
                    out.push(rng.sample(StandardNormal));
                }
            }
        }
        out
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

/// Unnormalised log density of the Manywell double-well factor: -a⁴ + 6a² + a/2.
fn well_log(a: f64) -> f64 {
    let a2 = a * a;
    -a2 * a2 + 6.0 * a2 + 0.5 * a
}

/// log q(y) of the normalised rejection proposal
/// q = 0.2·N(-1.7, 0.5²) + 0.8·N(1.7, 0.5²).
fn proposal_log_density(y: f64) -> f64 {
    let log_comp = |mean: f64, weight: f64| {
        let z = (y - mean) / PROPOSAL_SCALE;
        weight.ln() - 0.5 * z * z - PROPOSAL_SCALE.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln()
    };
    let l = log_comp(-PROPOSAL_MEAN, PROPOSAL_LEFT_WEIGHT);
    let r = log_comp(PROPOSAL_MEAN, 1.0 - PROPOSAL_LEFT_WEIGHT);
    let m = l.max(r);
    m + ((l - m).exp() + (r - m).exp()).ln()
}

/// One exact draw of the double-well coordinate a ∝ exp(-a⁴ + 6a² + a/2), by
/// rejection sampling: accept y ~ q with probability exp(well_log(y)) / (3·Z₁·q(y)).
fn sample_well(rng: &mut Rng) -> f64 {
    let log_k = (ENVELOPE_FACTOR * MANYWELL_Z1).ln();
    loop {
        let mean = if rng.random::<f64>() < PROPOSAL_LEFT_WEIGHT {
            -PROPOSAL_MEAN
        } else {
            PROPOSAL_MEAN
        };
        let z: f64 = rng.sample(StandardNormal);
        let y = mean + PROPOSAL_SCALE * z;
        let u: f64 = rng.random();
        if u.ln() < well_log(y) - log_k - proposal_log_density(y) {
            return y;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng(seed: u64) -> Rng {
        Rng::seed_from_u64(seed)
    }

    /// Composite Simpson rule of `f` on [lo, hi] with `n` (even) intervals.
    fn simpson(f: impl Fn(f64) -> f64, lo: f64, hi: f64, n: usize) -> f64 {
        assert!(n.is_multiple_of(2));
        let h = (hi - lo) / n as f64;
        let mut s = f(lo) + f(hi);
        for i in 1..n {
            let w = if i % 2 == 1 { 4.0 } else { 2.0 };
            s += w * f(lo + i as f64 * h);
        }
        s * h / 3.0
    }

    /// ∫ g(a) exp(well_log(a)) da / Z₁ by quadrature.
    fn well_expectation(g: impl Fn(f64) -> f64) -> f64 {
        let z = simpson(|a| well_log(a).exp(), -6.0, 6.0, 24_000);
        simpson(|a| g(a) * well_log(a).exp(), -6.0, 6.0, 24_000) / z
    }

    #[test]
    fn manywell_one_dim_normaliser_matches_quadrature() {
        let z1 = simpson(|a| well_log(a).exp(), -6.0, 6.0, 24_000);
        assert!(
            ((z1 - MANYWELL_Z1) / MANYWELL_Z1).abs() < 1e-6,
            "quadrature Z1 = {z1}"
        );
        let log_z = 16.0 * (z1.ln() + 0.5 * (2.0 * std::f64::consts::PI).ln());
        assert!((log_z - 164.69567532).abs() < 1e-6, "log Z = {log_z}");
    }

    #[test]
    fn log_z_constants() {
        assert_eq!(Energy::Gmm25.true_log_z(), 0.0);
        assert!((Energy::ManyWell.true_log_z() - 164.69567532).abs() < 1e-6);
        assert_eq!(Energy::Gmm25.dim(), 2);
        assert_eq!(Energy::ManyWell.dim(), 32);
    }

    #[test]
    fn gmm25_density_integrates_to_one() {
        // 2-d Simpson over [-15, 15]^2, h = 0.05 (the modes have sd 0.55).
        let (lo, hi, n) = (-15.0, 15.0, 600usize);
        let h = (hi - lo) / n as f64;
        let w = |i: usize| {
            if i == 0 || i == n {
                1.0
            } else if i % 2 == 1 {
                4.0
            } else {
                2.0
            }
        };
        let mut total = 0.0;
        for i in 0..=n {
            for j in 0..=n {
                let x = [lo + i as f64 * h, lo + j as f64 * h];
                total += w(i) * w(j) * Energy::Gmm25.log_reward(&x).exp();
            }
        }
        total *= h * h / 9.0;
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
            let got = Energy::Gmm25.log_reward(&x);
            assert!(got.is_finite());
            assert!(
                (got - direct).abs() <= 1e-10 * (1.0 + direct.abs()),
                "{x:?}: {got} vs {direct}"
            );
        }
    }

    fn check_gradient(energy: Energy, x: &[f64]) {
        let dim = energy.dim();
        let mut g = vec![0.0; dim];
        energy.grad_log_reward(x, &mut g);
        let h = 1e-5;
        let mut xp = x.to_vec();
        for d in 0..dim {
            xp[d] = x[d] + h;
            let up = energy.log_reward(&xp);
            xp[d] = x[d] - h;
            let down = energy.log_reward(&xp);
            xp[d] = x[d];
            let fd = (up - down) / (2.0 * h);
            assert!(
                (fd - g[d]).abs() <= 1e-5 * (1.0 + g[d].abs()),
                "{energy:?} coord {d} at {x:?}: analytic {} vs fd {fd}",
                g[d]
            );
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let mut r = rng(11);
        for _ in 0..200 {
            let x = [r.random_range(-12.0..12.0), r.random_range(-12.0..12.0)];
            check_gradient(Energy::Gmm25, &x);
        }
        for _ in 0..50 {
            let x: Vec<f64> = (0..32)
                .map(|_| 1.5 * r.sample::<f64, _>(StandardNormal))
                .collect();
            check_gradient(Energy::ManyWell, &x);
        }
    }

    #[test]
    fn log_reward_batch_matches_pointwise() {
        for energy in [Energy::Gmm25, Energy::ManyWell] {
            let xs = energy.sample(37, &mut rng(5));
            let batch = energy.log_reward_batch(&xs);
            assert_eq!(batch.len(), 37);
            for (x, lr) in xs.chunks_exact(energy.dim()).zip(&batch) {
                assert_eq!(*lr, energy.log_reward(x));
            }
        }
    }

    /// (mean, variance, standard error of the mean, standard error of the variance).
    fn moments(v: &[f64]) -> (f64, f64, f64, f64) {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let m2 = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let m4 = v.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n;
        (mean, m2, (m2 / n).sqrt(), ((m4 - m2 * m2) / n).sqrt())
    }

    #[test]
    fn gmm25_exact_samples_moments() {
        let n = 20_000;
        let xs = Energy::Gmm25.sample(n, &mut rng(1));
        assert_eq!(xs.len(), 2 * n);
        for d in 0..2 {
            let col: Vec<f64> = xs.iter().skip(d).step_by(2).cloned().collect();
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

    #[test]
    fn manywell_exact_samples_moments() {
        let n = 20_000;
        let xs = Energy::ManyWell.sample(n, &mut rng(2));
        assert_eq!(xs.len(), 32 * n);
        let a: Vec<f64> = xs.iter().step_by(2).cloned().collect();
        let b: Vec<f64> = xs.iter().skip(1).step_by(2).cloned().collect();

        let (mb, vb, se_mb, se_vb) = moments(&b);
        assert!(mb.abs() < 4.0 * se_mb, "b mean {mb}");
        assert!((vb - 1.0).abs() < 4.0 * se_vb, "b var {vb}");

        let want_mean = well_expectation(|x| x);
        let want_sq = well_expectation(|x| x * x);
        let (ma, _, se_ma, _) = moments(&a);
        assert!(
            (ma - want_mean).abs() < 4.0 * se_ma,
            "a mean {ma} vs {want_mean}"
        );
        let sq: Vec<f64> = a.iter().map(|x| x * x).collect();
        let (msq, _, se_msq, _) = moments(&sq);
        assert!(
            (msq - want_sq).abs() < 4.0 * se_msq,
            "a^2 mean {msq} vs {want_sq}"
        );
        // Every well samples both of its modes in roughly the right proportion.
        let want_right = simpson(|x| well_log(x).exp(), 0.0, 6.0, 12_000) / MANYWELL_Z1;
        for k in 0..16 {
            let right = a.iter().skip(k).step_by(16).filter(|&&x| x > 0.0).count() as f64;
            let se = (want_right * (1.0 - want_right) / n as f64).sqrt();
            assert!((right / n as f64 - want_right).abs() < 4.5 * se, "well {k}");
        }
    }

    #[test]
    fn manywell_rejection_envelope_is_valid() {
        // target(y) / Z1 <= 3 q(y) on a fine grid over [-5, 5].
        let mut worst = 0.0f64;
        let steps = 100_000;
        for i in 0..=steps {
            let y = -5.0 + 10.0 * i as f64 / steps as f64;
            let ratio = (well_log(y) - MANYWELL_Z1.ln() - proposal_log_density(y)).exp();
            worst = worst.max(ratio);
        }
        assert!(worst <= ENVELOPE_FACTOR, "max target/(Z1 q) = {worst}");
    }

    #[test]
    fn sampling_is_reproducible() {
        for energy in [Energy::Gmm25, Energy::ManyWell] {
            let a = energy.sample(50, &mut rng(9));
            let b = energy.sample(50, &mut rng(9));
            let c = energy.sample(50, &mut rng(10));
            assert_eq!(a, b);
            assert_ne!(a, c);
        }
    }
}
