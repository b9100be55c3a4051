//! `many_well` (32-d): 16 independent copies of a 2-d double well.
//!
//! Coordinates pair up as (a, b) = (x_{2k}, x_{2k+1}), k = 0..15, and each
//! pair contributes -a⁴ + 6a² + a/2 - b²/2 to the log reward. The `a` factor
//! is an asymmetric double well (modes near a ≈ -1.7 and a ≈ +1.7, the right
//! one heavier), the `b` factor an unnormalised standard normal. Hence
//! log Z = 16·(ln Z₁ + ½ ln 2π), where Z₁ = ∫ exp(-a⁴ + 6a² + a/2) da =
//! 11784.50927 (the value the reference code hard-codes; the tests recompute
//! it by quadrature) and ½ ln 2π is the log normaliser of exp(-b²/2). That
//! gives log Z = 164.69567532. The 2^16 modes make it a test of mode coverage.
//!
//! Exact samples draw b ~ N(0, 1) and draw a by rejection sampling with the
//! proposal q = 0.2·N(-1.7, 0.5²) + 0.8·N(1.7, 0.5²) and envelope
//! 3·Z₁·q(y) ≥ exp(-y⁴ + 6y² + y/2) (checked on a fine grid by the tests; the
//! acceptance rate is 1/3).

use rand::Rng as _;
use rand_distr::StandardNormal;

use super::target::{rows, Picture, Target, TargetError};
use crate::rng::Rng;

/// Z₁ = ∫ exp(-a⁴ + 6a² + a/2) da, the normaliser of one Manywell double-well
/// factor (value used by the reference implementation; verified by quadrature
/// in the tests).
pub const MANYWELL_Z1: f64 = 11784.50927;

/// Number of independent double wells in the 32-d Manywell target.
const MANYWELL_WELLS: usize = 16;

/// Weight of the left component (mean -1.7) of the Manywell rejection proposal.
const PROPOSAL_LEFT_WEIGHT: f64 = 0.2;

/// Absolute mean of the two Manywell rejection-proposal components.
const PROPOSAL_MEAN: f64 = 1.7;

/// Standard deviation of the two Manywell rejection-proposal components.
const PROPOSAL_SCALE: f64 = 0.5;

/// Envelope factor M of the rejection sampler: target/Z₁ ≤ M·q.
const ENVELOPE_FACTOR: f64 = 3.0;

/// 32-d Manywell: 16 independent double wells -a⁴ + 6a² + a/2 - b²/2;
/// log Z = 16·(ln Z₁ + ½ ln 2π) = 164.69567532.
#[derive(Debug, Clone, Copy, Default)]
pub struct ManyWell;

impl ManyWell {
    /// log R(x) of one point.
    fn point(x: &[f64]) -> f64 {
        assert_eq!(x.len(), 2 * MANYWELL_WELLS, "point has the wrong dimension");
        x.chunks_exact(2)
            .map(|p| well_log(p[0]) - 0.5 * p[1] * p[1])
            .sum()
    }
}

impl Target for ManyWell {
    fn name(&self) -> &str {
        "many_well"
    }

    fn dim(&self) -> usize {
        2 * MANYWELL_WELLS
    }

    fn log_reward_batch(&self, xs: &[f64]) -> Result<Vec<f64>, TargetError> {
        Ok(rows(self.dim(), xs, Self::point))
    }

    fn log_reward(&self, x: &[f64]) -> Result<f64, TargetError> {
        Ok(Self::point(x))
    }

    fn has_gradient(&self) -> bool {
        true
    }

    fn grad_log_reward(&self, x: &[f64], out: &mut [f64]) -> Result<(), TargetError> {
        assert_eq!(x.len(), self.dim(), "point has the wrong dimension");
        assert_eq!(
            out.len(),
            self.dim(),
            "gradient buffer has the wrong dimension"
        );
        for (o, p) in out.chunks_exact_mut(2).zip(x.chunks_exact(2)) {
            let a = p[0];
            o[0] = -4.0 * a * a * a + 12.0 * a + 0.5;
            o[1] = -p[1];
        }
        Ok(())
    }

    /// Draw order, per sample and per well k in order: the rejection-sampling
    /// proposals of a = x_{2k} (each: a uniform for the proposal component, a
    /// standard normal, a uniform for the acceptance test, until one is
    /// accepted), then the standard normal b = x_{2k+1}.
    fn sample(&self, n: usize, rng: &mut Rng) -> Option<Vec<f64>> {
        let mut out = Vec::with_capacity(n * self.dim());
        for _ in 0..n * MANYWELL_WELLS {
            out.push(sample_well(rng));
            out.push(rng.sample(StandardNormal));
        }
        Some(out)
    }

    /// 16·(ln Z₁ + ½ ln 2π) = 164.69567532.
    fn log_z(&self) -> Option<f64> {
        Some(MANYWELL_WELLS as f64 * (MANYWELL_Z1.ln() + 0.5 * (2.0 * std::f64::consts::PI).ln()))
    }

    /// The marginals (x0, x1) and (x0, x2) over (-3, 3).
    fn picture(&self) -> Picture {
        Picture::Marginals {
            range: (-3.0, 3.0),
            pairs: vec![(0, 1), (0, 2)],
        }
    }
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
    use super::super::target::testing::*;
    use super::*;
    use rand::SeedableRng;

    fn rng(seed: u64) -> Rng {
        Rng::seed_from_u64(seed)
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
    fn log_z_and_dim() {
        assert!((ManyWell.log_z().unwrap() - 164.69567532).abs() < 1e-6);
        assert_eq!(ManyWell.dim(), 32);
    }

    #[test]
    fn manywell_gradients_match_finite_differences() {
        let mut r = rng(11);
        for _ in 0..50 {
            let x: Vec<f64> = (0..32)
                .map(|_| 1.5 * r.sample::<f64, _>(StandardNormal))
                .collect();
            check_gradient(&ManyWell, &x, 1e-5);
        }
    }

    #[test]
    fn manywell_batch_matches_pointwise_and_sampling_is_reproducible() {
        check_batch_matches_pointwise(&ManyWell, &mut rng(5));
        check_reproducible(&ManyWell);
    }

    #[test]
    fn manywell_exact_samples_moments() {
        let n = 20_000;
        let xs = ManyWell.sample(n, &mut rng(2)).unwrap();
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
}
